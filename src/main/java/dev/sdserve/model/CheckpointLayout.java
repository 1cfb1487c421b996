package dev.sdserve.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every tensor of a civitai-style single-file SD 1.x checkpoint (original LDM names) for a given architecture, in
 * the order such files list them: text encoder, UNet, VAE, then the extras ({@code position_ids} I64 and the 12
 * LatentDiffusion schedule buffers) that loaders ignore.
 */
public final class CheckpointLayout {
    /** One tensor: name, shape, storage type. */
    public record Entry(String name, long[] shape, DType dtype) {
        public long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        /** One line as in sd15-full-layout.txt: {@code name [a, b] DTYPE}. */
        public String line() {
            return name + " " + Arrays.toString(shape) + " " + dtype;
        }
    }

    public static final String POSITION_IDS = ModelConfigs.TEXT + "embeddings.position_ids";
    /** The LatentDiffusion schedule buffers, in file order. */
    public static final List<String> SCHEDULE_BUFFERS = List.of("betas", "alphas_cumprod", "alphas_cumprod_prev",
            "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
            "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
            "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2");
    public static final int TRAIN_TIMESTEPS = 1000;

    private CheckpointLayout() {
    }

    /** The full layout: text encoder, UNet, VAE weights in {@code dtype}, then position_ids and schedule buffers. */
    public static List<Entry> full(ModelConfig c, DType dtype) {
        List<Entry> out = weights(c, dtype);
        out.addAll(extras(c, dtype));
        return out;
    }

    /** Only the weights the networks use (what a loader requires). */
    public static List<Entry> weights(ModelConfig c, DType dtype) {
        List<Entry> out = new ArrayList<>();
        out.addAll(textEncoder(c.textEncoder(), dtype));
        out.addAll(unet(c.unet(), dtype));
        out.addAll(vae(c.vae(), dtype));
        return out;
    }

    /** position_ids (I64) and the schedule buffers ({@code dtype}). */
    public static List<Entry> extras(ModelConfig c, DType dtype) {
        List<Entry> out = new ArrayList<>();
        out.add(new Entry(POSITION_IDS, new long[]{1, c.textEncoder().maxPositions()}, DType.I64));
        for (String b : SCHEDULE_BUFFERS) {
            out.add(new Entry(b, new long[]{TRAIN_TIMESTEPS}, dtype));
        }
        return out;
    }

    // ---------------------------------------------------------------- text encoder

    public static List<Entry> textEncoder(TextEncoderConfig t, DType dt) {
        L l = new L(ModelConfigs.TEXT, dt);
        long d = t.hiddenSize();
        l.add("embeddings.token_embedding.weight", t.vocabSize(), d);
        l.add("embeddings.position_embedding.weight", t.maxPositions(), d);
        for (int i = 0; i < t.layers(); i++) {
            String p = "encoder.layers." + i + ".";
            for (String proj : List.of("k_proj", "v_proj", "q_proj", "out_proj")) {
                l.linear(p + "self_attn." + proj, d, d, true);
            }
            l.norm(p + "layer_norm1", d);
            l.linear(p + "mlp.fc1", d, t.intermediateSize(), true);
            l.linear(p + "mlp.fc2", t.intermediateSize(), d, true);
            l.norm(p + "layer_norm2", d);
        }
        l.norm("final_layer_norm", d);
        return l.out;
    }

    // ---------------------------------------------------------------- UNet

    public static List<Entry> unet(UNetConfig u, DType dt) {
        L l = new L(ModelConfigs.UNET, dt);
        List<Integer> ch = u.blockOutChannels();
        int levels = ch.size();
        long base = ch.get(0);
        long temb = u.timeEmbedDim();
        l.linear("time_embed.0", base, temb, true);
        l.linear("time_embed.2", temb, temb, true);
        l.conv("input_blocks.0.0", u.inChannels(), base, 3);
        Deque<Long> skips = new ArrayDeque<>();
        skips.push(base);
        long c = base;
        int idx = 1;
        for (int lv = 0; lv < levels; lv++) {
            long co = ch.get(lv);
            for (int j = 0; j < u.layersPerBlock(); j++) {
                resBlock(l, "input_blocks." + idx + ".0", c, co, temb);
                c = co;
                if (u.crossAttnDown().get(lv)) {
                    transformer(l, "input_blocks." + idx + ".1", c, u);
                }
                skips.push(c);
                idx++;
            }
            if (lv < levels - 1) {
                l.conv("input_blocks." + idx + ".0.op", c, c, 3);
                skips.push(c);
                idx++;
            }
        }
        resBlock(l, "middle_block.0", c, c, temb);
        if (u.midAttention()) {
            transformer(l, "middle_block.1", c, u);
            resBlock(l, "middle_block.2", c, c, temb);
        } else {
            resBlock(l, "middle_block.1", c, c, temb);
        }
        idx = 0;
        for (int up = 0; up < levels; up++) {
            int lv = levels - 1 - up;
            long co = ch.get(lv);
            for (int j = 0; j <= u.layersPerBlock(); j++) {
                long skip = skips.pop();
                String p = "output_blocks." + idx + ".";
                resBlock(l, p + "0", c + skip, co, temb);
                c = co;
                int sub = 1;
                if (u.crossAttnUp().get(up)) {
                    transformer(l, p + sub, c, u);
                    sub++;
                }
                if (lv > 0 && j == u.layersPerBlock()) {
                    l.conv(p + sub + ".conv", c, c, 3);
                }
                idx++;
            }
        }
        l.norm("out.0", c);
        l.conv("out.2", c, u.outChannels(), 3);
        return l.out;
    }

    private static void resBlock(L l, String p, long in, long out, long temb) {
        l.norm(p + ".in_layers.0", in);
        l.conv(p + ".in_layers.2", in, out, 3);
        l.linear(p + ".emb_layers.1", temb, out, true);
        l.norm(p + ".out_layers.0", out);
        l.conv(p + ".out_layers.3", out, out, 3);
        if (in != out) {
            l.conv(p + ".skip_connection", in, out, 1);
        }
    }

    private static void transformer(L l, String p, long c, UNetConfig u) {
        l.norm(p + ".norm", c);
        if (u.useLinearProjection()) {
            l.linear(p + ".proj_in", c, c, true);
        } else {
            l.conv(p + ".proj_in", c, c, 1);
        }
        long ctx = u.crossAttentionDim();
        for (int t = 0; t < u.transformerLayers(); t++) {
            String b = p + ".transformer_blocks." + t + ".";
            l.linear(b + "attn1.to_q", c, c, false);
            l.linear(b + "attn1.to_k", c, c, false);
            l.linear(b + "attn1.to_v", c, c, false);
            l.linear(b + "attn1.to_out.0", c, c, true);
            l.linear(b + "ff.net.0.proj", c, 8 * c, true);
            l.linear(b + "ff.net.2", 4 * c, c, true);
            l.linear(b + "attn2.to_q", c, c, false);
            l.linear(b + "attn2.to_k", ctx, c, false);
            l.linear(b + "attn2.to_v", ctx, c, false);
            l.linear(b + "attn2.to_out.0", c, c, true);
            l.norm(b + "norm1", c);
            l.norm(b + "norm2", c);
            l.norm(b + "norm3", c);
        }
        if (u.useLinearProjection()) {
            l.linear(p + ".proj_out", c, c, true);
        } else {
            l.conv(p + ".proj_out", c, c, 1);
        }
    }

    // ---------------------------------------------------------------- VAE

    public static List<Entry> vae(VaeConfig v, DType dt) {
        L l = new L(ModelConfigs.VAE, dt);
        List<Integer> ch = v.blockOutChannels();
        int levels = ch.size();
        long last = ch.get(levels - 1);
        long lat = v.latentChannels();
        l.conv("encoder.conv_in", v.inChannels(), ch.get(0), 3);
        long c = ch.get(0);
        for (int i = 0; i < levels; i++) {
            long co = ch.get(i);
            for (int j = 0; j < v.layersPerBlock(); j++) {
                vaeRes(l, "encoder.down." + i + ".block." + j, c, co);
                c = co;
            }
            if (i < levels - 1) {
                l.conv("encoder.down." + i + ".downsample.conv", c, c, 3);
            }
        }
        vaeMid(l, "encoder.mid", last);
        l.norm("encoder.norm_out", last);
        l.conv("encoder.conv_out", last, 2 * lat, 3);
        l.conv("decoder.conv_in", lat, last, 3);
        vaeMid(l, "decoder.mid", last);
        for (int i = 0; i < levels; i++) {
            long in = i == levels - 1 ? last : ch.get(i + 1);
            long co = ch.get(i);
            for (int j = 0; j <= v.layersPerBlock(); j++) {
                vaeRes(l, "decoder.up." + i + ".block." + j, j == 0 ? in : co, co);
            }
            if (i > 0) {
                l.conv("decoder.up." + i + ".upsample.conv", co, co, 3);
            }
        }
        l.norm("decoder.norm_out", ch.get(0));
        l.conv("decoder.conv_out", ch.get(0), v.outChannels(), 3);
        l.conv("quant_conv", 2 * lat, 2 * lat, 1);
        l.conv("post_quant_conv", lat, lat, 1);
        return l.out;
    }

    private static void vaeRes(L l, String p, long in, long out) {
        l.norm(p + ".norm1", in);
        l.conv(p + ".conv1", in, out, 3);
        l.norm(p + ".norm2", out);
        l.conv(p + ".conv2", out, out, 3);
        if (in != out) {
            l.conv(p + ".nin_shortcut", in, out, 1);
        }
    }

    private static void vaeMid(L l, String p, long c) {
        vaeRes(l, p + ".block_1", c, c);
        l.norm(p + ".attn_1.norm", c);
        for (String x : List.of("q", "k", "v", "proj_out")) {
            l.conv(p + ".attn_1." + x, c, c, 1);
        }
        vaeRes(l, p + ".block_2", c, c);
    }

    /** Accumulates entries under a prefix. */
    private static final class L {
        final String prefix;
        final DType dt;
        final List<Entry> out = new ArrayList<>();

        L(String prefix, DType dt) {
            this.prefix = prefix;
            this.dt = dt;
        }

        void add(String name, long... shape) {
            out.add(new Entry(prefix + name, shape, dt));
        }

        void linear(String p, long in, long outF, boolean bias) {
            add(p + ".weight", outF, in);
            if (bias) {
                add(p + ".bias", outF);
            }
        }

        void conv(String p, long in, long outC, int k) {
            add(p + ".weight", outC, in, k, k);
            add(p + ".bias", outC);
        }

        void norm(String p, long c) {
            add(p + ".weight", c);
            add(p + ".bias", c);
        }
    }

    // ---------------------------------------------------------------- listings

    /** Reads a listing of {@code name [d0, d1, ...] DTYPE} lines (as sd15-full-layout.txt), in file order. */
    public static List<Entry> readListing(Path file) throws IOException {
        List<Entry> out = new ArrayList<>();
        int lineNo = 0;
        for (String line : Files.readAllLines(file)) {
            lineNo++;
            String s = line.strip();
            if (s.isEmpty() || s.startsWith("#")) {
                continue;
            }
            int open = s.indexOf(" [");
            int close = s.indexOf(']', open);
            if (open < 0 || close < 0) {
                throw new IOException(file + ":" + lineNo + ": expected 'name [shape] dtype', got '" + s + "'");
            }
            String name = s.substring(0, open);
            String dims = s.substring(open + 2, close).strip();
            long[] shape = dims.isEmpty() ? new long[0]
                    : Arrays.stream(dims.split(",")).map(String::strip).mapToLong(Long::parseLong).toArray();
            DType dt = DType.parse(s.substring(close + 1).strip());
            out.add(new Entry(name, shape, dt));
        }
        return out;
    }

    /** name → shape of a list of entries. */
    public static Map<String, long[]> shapes(List<Entry> entries) {
        Map<String, long[]> m = new LinkedHashMap<>();
        for (Entry e : entries) {
            m.put(e.name(), e.shape());
        }
        return m;
    }
}
