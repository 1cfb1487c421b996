# Reference outputs of Pillow (Debian python3-pil 9.4.0) for ImageResizeTest: run with /usr/bin/python3 in this
# folder. The inputs are made from integer formulas the test repeats; the resize modes follow AUTOMATIC1111's
# modules/images.py resize_image (LANCZOS, no upscaler).
from PIL import Image


def source(w, h):
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = ((x * 37 + y * 11) % 256, (x * x + 3 * y * y) % 256, (x * y * 5 + 40) % 256)
    return im


def a1111(mode, im, width, height):
    L = Image.LANCZOS
    if mode == 0:
        return im.resize((width, height), resample=L)
    ratio = width / height
    src_ratio = im.width / im.height
    if mode == 1:
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
        resized = im.resize((src_w, src_h), resample=L)
        res = Image.new("RGB", (width, height))
        res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
        return res
    src_w = width if ratio < src_ratio else im.width * height // im.height
    src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = im.resize((src_w, src_h), resample=L)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if ratio < src_ratio:
        fill_height = height // 2 - src_h // 2
        if fill_height > 0:
            res.paste(resized.resize((width, fill_height), box=(0, 0, width, 0)), box=(0, 0))
            res.paste(resized.resize((width, fill_height), box=(0, resized.height, width, resized.height)), box=(0, fill_height + src_h))
    elif ratio > src_ratio:
        fill_width = width // 2 - src_w // 2
        if fill_width > 0:
            res.paste(resized.resize((fill_width, height), box=(0, 0, 0, height)), box=(0, 0))
            res.paste(resized.resize((fill_width, height), box=(resized.width, 0, resized.width, height)), box=(fill_width + src_w, 0))
    return res


src = source(37, 23)
src.resize((64, 48), resample=Image.LANCZOS).save("lanczos_37x23_to_64x48.png")
src.resize((16, 11), resample=Image.LANCZOS).save("lanczos_37x23_to_16x11.png")
src.convert("L").save("grey_37x23.png")
src.convert("L").resize((24, 40), resample=Image.LANCZOS).save("lanczos_grey_37x23_to_24x40.png")
for mode in (0, 1, 2):
    a1111(mode, src, 32, 32).save(f"a1111_mode{mode}_32x32.png")
    a1111(mode, src, 24, 40).save(f"a1111_mode{mode}_24x40.png")

# A1111's modules/masking.py fill and processing.py apply_overlay (mask: 255 = repaint)
from PIL import ImageFilter, ImageOps


def mask_image(w, h):
    m = Image.new("L", (w, h))
    px = m.load()
    for y in range(h):
        for x in range(w):
            inside = (10 <= x < 30 and 8 <= y < 25) or (x - 36) ** 2 + (y - 30) ** 2 <= 64
            px[x, y] = 255 if inside else (x * 3) % 50
    return m


def fill(image, mask):
    image_mod = Image.new('RGBA', (image.width, image.height))
    image_masked = Image.new('RGBa', (image.width, image.height))
    image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert('L')))
    image_masked = image_masked.convert('RGBa')
    for radius, repeats in [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]:
        blurred = image_masked.filter(ImageFilter.GaussianBlur(radius)).convert('RGBA')
        for _ in range(repeats):
            image_mod.alpha_composite(blurred)
    return image_mod.convert("RGB")


src2 = source(48, 40)
mask2 = mask_image(48, 40)
mask2.save("mask_48x40.png")
fill(src2, mask2).save("fill_48x40.png")
# apply_overlay: the original pasted back outside the doubled mask
gen = source(40, 48).transpose(Image.Transpose.ROTATE_90)  # any other 48x40 picture
ovl = mask2.point(lambda v: min(255, 2 * v))  # A1111: np.clip(mask * 2, 0, 255)
image_masked = Image.new('RGBa', (src2.width, src2.height))
image_masked.paste(src2.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(ovl.convert('L')))
out = gen.convert('RGBA')
out.alpha_composite(image_masked.convert('RGBA'))
out.convert('RGB').save("overlay_48x40.png")
gen.save("generated_48x40.png")

# decoding: the same 37x23 picture as lossless WebP, lossy WebP, JPEG (quality 95), grey PNG, RGBA PNG
src.save("src_lossless.webp", lossless=True)
src.save("src_lossy.webp", quality=90)
src.save("src_q95.jpg", quality=95)
src.save("src.png")
src.convert("L").save("src_grey.png")
rgba = src.convert("RGBA")
rgba.putalpha(mask_image(37, 23))
rgba.save("src_rgba.png")
rgba.save("src_rgba_lossless.webp", lossless=True)
# Pillow's own decoding of the lossy files (libjpeg-turbo, libwebp), for comparison with ours
Image.open("src_q95.jpg").convert("RGB").save("src_q95_decoded.png")
# a smooth picture (the golden sets' init-image formula), lossy WebP, and Pillow's decoding of it
import math
smooth = Image.new("RGB", (64, 48))
sp = smooth.load()
for y in range(48):
    for x in range(64):
        u, v = x / 63, y / 47
        sp[x, y] = (round(255 * (0.5 + 0.4 * math.sin(2 * math.pi * (1.5 * u + 0.5 * v)))),
                    round(255 * (0.5 + 0.4 * math.cos(2 * math.pi * (0.8 * v - 0.3 * u)))),
                    round(255 * (0.5 + 0.35 * math.sin(2 * math.pi * (2 * u * v + 0.25)))))
smooth.save("smooth_lossy.webp", quality=90)
Image.open("smooth_lossy.webp").convert("RGB").save("smooth_lossy_webp_decoded.png")
