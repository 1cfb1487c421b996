"""Independent numpy (float64) reference of the demo model's VAE, for DemoVaeRoundTripTest.

Reads first_stage_model.* from shared/demo/sd-shapes-tiny.safetensors and runs the LDM/diffusers AutoencoderKL
as diffusers defines it (GroupNorm 32 groups eps 1e-6, downsample pads (0,1,0,1) before a stride-2 3x3 conv,
single-head mid attention scaled by C^-1/2, quant_conv -> [mean, logvar], post_quant_conv, nearest 2x upsampling).
Prints, for flat 128x128 colours and tile 0 of samples-diffusers.png: the posterior mean x 0.18215 per channel
(spatial mean), the decoded picture's mean RGB and the round trip's mean |delta|.
Usage: python3 demo_vae_reference.py [path/to/shared/demo]   (numpy only; about 30 s)
"""
import json, struct, sys, zlib
import numpy as np

DEMO = sys.argv[1] if len(sys.argv) > 1 else '../shared/demo'
f = open(DEMO + '/sd-shapes-tiny.safetensors', 'rb')
n = struct.unpack('<Q', f.read(8))[0]
H = json.loads(f.read(n))
W = {}
for k, v in H.items():
    if k.startswith('first_stage_model.'):
        s, e = v['data_offsets']
        f.seek(8 + n + s)
        dt = {'F16': np.float16, 'F32': np.float32}[v['dtype']]
        W[k[len('first_stage_model.'):]] = np.frombuffer(f.read(e - s), dt).reshape(v['shape']).astype(np.float64)


def conv(x, p, stride=1):
    w, b = W[p + '.weight'], W[p + '.bias']
    if w.shape[2] == 1:
        return np.einsum('chw,oc->ohw', x, w[:, :, 0, 0]) + b[:, None, None]
    x = np.pad(x, ((0, 0), (1, 1), (1, 1)) if stride == 1 else ((0, 0), (0, 1), (0, 1)))
    ho, wo = (x.shape[1] - 3) // stride + 1, (x.shape[2] - 3) // stride + 1
    out = np.zeros((w.shape[0], ho, wo)) + b[:, None, None]
    for i in range(3):
        for j in range(3):
            out += np.einsum('chw,oc->ohw', x[:, i:i + stride * ho:stride, j:j + stride * wo:stride], w[:, :, i, j])
    return out


def gn(x, p, groups=32, eps=1e-6):
    xr = x.reshape(groups, -1)
    y = ((xr - xr.mean(1, keepdims=True)) / np.sqrt(xr.var(1, keepdims=True) + eps)).reshape(x.shape)
    return y * W[p + '.weight'][:, None, None] + W[p + '.bias'][:, None, None]


def silu(x):
    return x / (1 + np.exp(-x))


def res(x, p):
    h = conv(silu(gn(x, p + '.norm1')), p + '.conv1')
    h = conv(silu(gn(h, p + '.norm2')), p + '.conv2')
    return (conv(x, p + '.nin_shortcut') if p + '.nin_shortcut.weight' in W else x) + h


def attn(x, p):
    c = x.shape[0]
    h = gn(x, p + '.norm')
    q, k, v = (conv(h, p + s).reshape(c, -1) for s in ('.q', '.k', '.v'))
    a = q.T @ k / np.sqrt(c)
    a = np.exp(a - a.max(1, keepdims=True))
    a /= a.sum(1, keepdims=True)
    return x + conv((v @ a.T).reshape(x.shape), p + '.proj_out')


def mid(h, p):
    return res(attn(res(h, p + 'block_1'), p + 'attn_1'), p + 'block_2')


LEVELS = len([k for k in W if k.startswith('encoder.down.') and k.endswith('block.0.conv1.weight')])
LAYERS = len([k for k in W if k.startswith('encoder.down.0.block.') and k.endswith('conv1.weight')])


def encode(x):
    h = conv(x, 'encoder.conv_in')
    for i in range(LEVELS):
        for j in range(LAYERS):
            h = res(h, f'encoder.down.{i}.block.{j}')
        if i < LEVELS - 1:
            h = conv(h, f'encoder.down.{i}.downsample.conv', 2)
    h = mid(h, 'encoder.mid.')
    h = conv(conv(silu(gn(h, 'encoder.norm_out')), 'encoder.conv_out'), 'quant_conv')
    return h[:h.shape[0] // 2]


def decode(z):
    h = conv(conv(z, 'post_quant_conv'), 'decoder.conv_in')
    h = mid(h, 'decoder.mid.')
    for i in range(LEVELS - 1, -1, -1):
        for j in range(LAYERS + 1):
            h = res(h, f'decoder.up.{i}.block.{j}')
        if i:
            h = conv(h.repeat(2, 1).repeat(2, 2), f'decoder.up.{i}.upsample.conv')
    return conv(silu(gn(h, 'decoder.norm_out')), 'decoder.conv_out')


def read_png(path):  # 8-bit RGB, non-interlaced
    d = open(path, 'rb').read()
    i, idat = 8, b''
    while i < len(d):
        ln = struct.unpack('>I', d[i:i + 4])[0]
        t, c = d[i + 4:i + 8], d[i + 8:i + 8 + ln]
        i += 12 + ln
        if t == b'IHDR':
            w, h = struct.unpack('>II', c[:8])
        elif t == b'IDAT':
            idat += c
    raw, st = zlib.decompress(idat), w * 3
    out, prev = np.zeros((h, st), np.int64), np.zeros(st, np.int64)
    for y in range(h):
        ft = raw[y * (st + 1)]
        line = np.frombuffer(raw[y * (st + 1) + 1:(y + 1) * (st + 1)], np.uint8).astype(np.int64)
        cur = np.zeros(st, np.int64)
        for x in range(st):
            a = cur[x - 3] if x >= 3 else 0
            b = prev[x]
            c = prev[x - 3] if x >= 3 else 0
            pr = a + b - c
            pred = [0, a, b, (a + b) // 2,
                    a if abs(pr - a) <= abs(pr - b) and abs(pr - a) <= abs(pr - c) else b if abs(pr - b) <= abs(pr - c) else c][ft]
            cur[x] = (line[x] + pred) & 255
        out[y], prev = cur, cur
    return out.reshape(h, w, 3) / 255.0


def report(name, img):
    m = encode(img * 2 - 1) * 0.18215
    y = np.clip(decode(m / 0.18215) / 2 + 0.5, 0, 1)
    print(f'{name:22s} latent means {np.round(m.mean((1, 2)), 4)} -> rgb {np.round(y.mean((1, 2)), 4)}'
          f' mean|d| {np.abs(y - img).mean():.4f}')


for col in [(0.12, 0.24, 0.78), (0.85, 0.15, 0.12), (0.5, 0.5, 0.5)]:
    report(str(col), np.ones((3, 128, 128)) * np.array(col)[:, None, None])
report('samples tile 0', read_png(DEMO + '/samples-diffusers.png')[:128, :128].transpose(2, 0, 1))
