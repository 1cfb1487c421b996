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
 * Every tensor of a civitai-style single-file checkpoint for a given architecture, in the order such files list
 * them:
 * <ul>
 *   <li>SD 1.x (LDM layout, as {@code sd15-full-layout.txt}): text encoder, UNet, VAE, then the extras
 *       ({@code position_ids} I64 and the 12 LatentDiffusion schedule buffers) that loaders ignore;</li>
 *   <li>SD 2.x (LDM layout): the OpenCLIP tower ({@code cond_stage_model.model.}, with its unused
 *       {@code text_projection} and {@code logit_scale}), UNet, VAE, the schedule buffers;</li>
 *   <li>SDXL (SGM layout, as {@code sdxl-full-layout.txt}, the order diffusers' conversion writes): UNet and VAE in
 *       diffusers' module order (per level the attentions, then the res blocks, then the resampler; the middle block
 *       after the up levels), CLIP-L with its {@code position_ids}, OpenCLIP-bigG (per block out_proj, ln_1, MLP,
 *       ln_2; then ln_final; then every in_proj weight, every in_proj bias; text_projection; logit_scale).</li>
 * </ul>
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

    /** The full layout, in file order (see the class comment). */
    public static List<Entry> full(ModelConfig c, DType dtype) {
        List<Entry> out = new ArrayList<>();
        if (c.sdxl()) {
            out.addAll(unet(c.unet(), dtype, true));
            out.addAll(vae(c.vae(), dtype, true));
            for (TextEncoderConfig t : c.textEncoders()) {
                out.addAll(tower(t, dtype, true));
            }
            return out;
        }
        List<Entry> positionIds = new ArrayList<>();
        for (TextEncoderConfig t : c.textEncoders()) {
            for (Entry e : tower(t, dtype, false)) {
                (e.name().endsWith("embeddings.position_ids") ? positionIds : out).add(e);
            }
        }
        out.addAll(unet(c.unet(), dtype, false));
        out.addAll(vae(c.vae(), dtype, false));
        out.addAll(positionIds);
        for (String b : SCHEDULE_BUFFERS) {
            out.add(new Entry(b, new long[]{TRAIN_TIMESTEPS}, dtype));
        }
        return out;
    }

    /** Only the weights the networks use (what a loader requires), in file order. */
    public static List<Entry> weights(ModelConfig c, DType dtype) {
        return full(c, dtype).stream().filter(e -> !isExtra(e.name())).collect(java.util.stream.Collectors.toList());
    }

    /** position_ids, OpenCLIP's logit_scale and the schedule buffers: in files, ignored by loaders. */
    public static boolean isExtra(String name) {
        return name.endsWith("embeddings.position_ids") || name.endsWith(".logit_scale")
                || SCHEDULE_BUFFERS.contains(name);
    }

    /** The extras of {@link #full} (what {@link #weights} leaves out). */
    public static List<Entry> extras(ModelConfig c, DType dtype) {
        return full(c, dtype).stream().filter(e -> isExtra(e.name())).toList();
    }

    // ---------------------------------------------------------------- text towers

    /** An SD 1.x text encoder's weights (no position_ids). */
    public static List<Entry> textEncoder(TextEncoderConfig t, DType dt) {
        return tower(t, dt, false).stream().filter(e -> !isExtra(e.name())).toList();
    }

    /**
     * Every tensor of a text tower: a CLIP-L tower with its position_ids (I64) last, an OpenCLIP tower with
     * text_projection (when it has one) and logit_scale; {@code sgm}: in the order SDXL files use.
     */
    public static List<Entry> tower(TextEncoderConfig t, DType dt, boolean sgm) {
        return t.openClip() ? openClip(t, dt, sgm) : clip(t, dt);
    }

    private static List<Entry> clip(TextEncoderConfig t, DType dt) {
        L l = new L(t.prefix(), dt);
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
        l.out.add(new Entry(t.prefix() + "embeddings.position_ids", new long[]{1, t.maxPositions()}, DType.I64));
        return l.out;
    }

    private static List<Entry> openClip(TextEncoderConfig t, DType dt, boolean sgm) {
        L l = new L(t.prefix(), dt);
        long d = t.hiddenSize();
        long ff = t.intermediateSize();
        l.add("token_embedding.weight", t.vocabSize(), d);
        l.add("positional_embedding", t.maxPositions(), d);
        for (int i = 0; i < t.layers(); i++) {
            String p = "transformer.resblocks." + i + ".";
            if (!sgm) {
                l.norm(p + "ln_1", d);
                l.add(p + "attn.in_proj_weight", 3 * d, d);
                l.add(p + "attn.in_proj_bias", 3 * d);
            }
            l.linear(p + "attn.out_proj", d, d, true);
            if (sgm) {
                l.norm(p + "ln_1", d);
            }
            if (!sgm) {
                l.norm(p + "ln_2", d);
            }
            l.linear(p + "mlp.c_fc", d, ff, true);
            l.linear(p + "mlp.c_proj", ff, d, true);
            if (sgm) {
                l.norm(p + "ln_2", d);
            }
        }
        l.norm("ln_final", d);
        if (sgm) {
            for (int i = 0; i < t.layers(); i++) {
                l.add("transformer.resblocks." + i + ".attn.in_proj_weight", 3 * d, d);
            }
            for (int i = 0; i < t.layers(); i++) {
                l.add("transformer.resblocks." + i + ".attn.in_proj_bias", 3 * d);
            }
        }
        if (t.projectionDim() > 0) {
            l.add("text_projection", d, t.projectionDim());
        }
        l.add("logit_scale");
        return l.out;
    }

    // ---------------------------------------------------------------- UNet

    /** The UNet in its family's file order (SGM for a UNet with added conditioning, else LDM). */
    public static List<Entry> unet(UNetConfig u, DType dt) {
        return unet(u, dt, u.hasAddedConditioning());
    }

    /**
     * The UNet's tensors; {@code sgm}: in diffusers' module order (SDXL files), else in the LDM order (per block
     * the res block, then its attention; the middle block before the up levels).
     */
    public static List<Entry> unet(UNetConfig u, DType dt, boolean sgm) {
        L l = new L(ModelConfigs.UNET, dt);
        List<Integer> ch = u.blockOutChannels();
        int levels = ch.size();
        int lpb = u.layersPerBlock();
        long base = ch.get(0);
        long temb = u.timeEmbedDim();
        if (sgm) {
            l.conv("input_blocks.0.0", u.inChannels(), base, 3);
        }
        l.linear("time_embed.0", base, temb, true);
        l.linear("time_embed.2", temb, temb, true);
        if (u.hasAddedConditioning()) {
            l.linear("label_emb.0.0", u.addEmbedInputDim(), temb, true);
            l.linear("label_emb.0.2", temb, temb, true);
        }
        if (!sgm) {
            l.conv("input_blocks.0.0", u.inChannels(), base, 3);
        }
        // channels in and out of every block, as the network runs
        Deque<Long> skips = new ArrayDeque<>();
        skips.push(base);
        long c = base;
        int idx = 1;
        for (int lv = 0; lv < levels; lv++) {
            long co = ch.get(lv);
            List<Runnable> attn = new ArrayList<>();
            List<Runnable> res = new ArrayList<>();
            for (int j = 0; j < lpb; j++) {
                String p = "input_blocks." + idx;
                long in = c;
                res.add(() -> resBlock(l, p + ".0", in, co, temb));
                c = co;
                if (u.depthDown().get(lv) > 0) {
                    int depth = u.depthDown().get(lv);
                    attn.add(() -> transformer(l, p + ".1", co, depth, u, sgm));
                }
                if (!sgm) {
                    res.get(j).run();
                    if (!attn.isEmpty()) {
                        attn.get(j).run();
                    }
                }
                skips.push(c);
                idx++;
            }
            if (sgm) {
                attn.forEach(Runnable::run);
                res.forEach(Runnable::run);
            }
            if (lv < levels - 1) {
                l.conv("input_blocks." + idx + ".0.op", c, c, 3);
                skips.push(c);
                idx++;
            }
        }
        long mid = c;
        Runnable middle = () -> {
            if (sgm) {
                if (u.depthMid() > 0) {
                    transformer(l, "middle_block.1", mid, u.depthMid(), u, sgm);
                }
                resBlock(l, "middle_block.0", mid, mid, temb);
                resBlock(l, "middle_block." + (u.depthMid() > 0 ? 2 : 1), mid, mid, temb);
                return;
            }
            resBlock(l, "middle_block.0", mid, mid, temb);
            if (u.depthMid() > 0) {
                transformer(l, "middle_block.1", mid, u.depthMid(), u, sgm);
                resBlock(l, "middle_block.2", mid, mid, temb);
            } else {
                resBlock(l, "middle_block.1", mid, mid, temb);
            }
        };
        if (!sgm) {
            middle.run();
        }
        idx = 0;
        for (int up = 0; up < levels; up++) {
            int lv = levels - 1 - up;
            long co = ch.get(lv);
            List<Runnable> attn = new ArrayList<>();
            List<Runnable> res = new ArrayList<>();
            Runnable upsample = null;
            for (int j = 0; j <= lpb; j++) {
                long skip = skips.pop();
                String p = "output_blocks." + idx + ".";
                long in = c + skip;
                res.add(() -> resBlock(l, p + "0", in, co, temb));
                c = co;
                int sub = 1;
                if (u.depthUp().get(up) > 0) {
                    int depth = u.depthUp().get(up);
                    attn.add(() -> transformer(l, p + "1", co, depth, u, sgm));
                    sub++;
                }
                if (lv > 0 && j == lpb) {
                    String conv = p + sub + ".conv";
                    upsample = () -> l.conv(conv, co, co, 3);
                }
                if (!sgm) {
                    res.get(j).run();
                    if (!attn.isEmpty()) {
                        attn.get(j).run();
                    }
                    if (upsample != null) {
                        upsample.run();
                    }
                }
                idx++;
            }
            if (sgm) {
                attn.forEach(Runnable::run);
                res.forEach(Runnable::run);
                if (upsample != null) {
                    upsample.run();
                }
            }
        }
        if (sgm) {
            middle.run();
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

    /** A spatial transformer: SD 1.x files list each block's attentions, FF, then norms; SGM files module order. */
    private static void transformer(L l, String p, long c, int depth, UNetConfig u, boolean sgm) {
        l.norm(p + ".norm", c);
        if (u.useLinearProjection()) {
            l.linear(p + ".proj_in", c, c, true);
        } else {
            l.conv(p + ".proj_in", c, c, 1);
        }
        long ctx = u.crossAttentionDim();
        for (int t = 0; t < depth; t++) {
            String b = p + ".transformer_blocks." + t + ".";
            if (sgm) {
                l.norm(b + "norm1", c);
                attention(l, b + "attn1", c, c);
                l.norm(b + "norm2", c);
                attention(l, b + "attn2", c, ctx);
                l.norm(b + "norm3", c);
                l.linear(b + "ff.net.0.proj", c, 8 * c, true);
                l.linear(b + "ff.net.2", 4 * c, c, true);
                continue;
            }
            attention(l, b + "attn1", c, c);
            l.linear(b + "ff.net.0.proj", c, 8 * c, true);
            l.linear(b + "ff.net.2", 4 * c, c, true);
            attention(l, b + "attn2", c, ctx);
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

    private static void attention(L l, String p, long c, long kv) {
        l.linear(p + ".to_q", c, c, false);
        l.linear(p + ".to_k", kv, c, false);
        l.linear(p + ".to_v", kv, c, false);
        l.linear(p + ".to_out.0", c, c, true);
    }

    // ---------------------------------------------------------------- VAE

    /** The VAE in the LDM order of SD 1.x/2.x files. */
    public static List<Entry> vae(VaeConfig v, DType dt) {
        return vae(v, dt, false);
    }

    /** The VAE's tensors; {@code sgm}: in diffusers' module order (SDXL files: mid attention first, decoder up levels deepest first, before the middle). */
    public static List<Entry> vae(VaeConfig v, DType dt, boolean sgm) {
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
        vaeMid(l, "encoder.mid", last, sgm);
        l.norm("encoder.norm_out", last);
        l.conv("encoder.conv_out", last, 2 * lat, 3);
        l.conv("decoder.conv_in", lat, last, 3);
        if (!sgm) {
            vaeMid(l, "decoder.mid", last, false);
        }
        for (int k = 0; k < levels; k++) {
            int i = sgm ? levels - 1 - k : k;
            long in = i == levels - 1 ? last : ch.get(i + 1);
            long co = ch.get(i);
            for (int j = 0; j <= v.layersPerBlock(); j++) {
                vaeRes(l, "decoder.up." + i + ".block." + j, j == 0 ? in : co, co);
            }
            if (i > 0) {
                l.conv("decoder.up." + i + ".upsample.conv", co, co, 3);
            }
        }
        if (sgm) {
            vaeMid(l, "decoder.mid", last, true);
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

    private static void vaeMid(L l, String p, long c, boolean sgm) {
        if (!sgm) {
            vaeRes(l, p + ".block_1", c, c);
        }
        l.norm(p + ".attn_1.norm", c);
        for (String x : List.of("q", "k", "v", "proj_out")) {
            l.conv(p + ".attn_1." + x, c, c, 1);
        }
        if (sgm) {
            vaeRes(l, p + ".block_1", c, c);
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
