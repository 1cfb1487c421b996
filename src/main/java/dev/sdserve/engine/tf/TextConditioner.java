package dev.sdserve.engine.tf;

import dev.sdserve.engine.Conditioning;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.TextEncoderConfig;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How one architecture family turns prompts into UNet conditioning, on top of its text towers ({@link Towers}: "ids
 * batch → requested hidden state (+ pooled)", so prompt chunking and weighting can sit on top of it):
 * <ul>
 *   <li>SD 1.x: the CLIP tower's last layer through its final norm (CLIP skip N: N − 1 layers earlier);</li>
 *   <li>SD 2.x: the OpenCLIP tower's penultimate layer through {@code ln_final} (LDM's {@code layer: penultimate};
 *       CLIP skip N: N − 1 layers before that);</li>
 *   <li>SDXL: the penultimate layers of CLIP-L and OpenCLIP-bigG WITHOUT final norm, concatenated on the feature
 *       axis (CLIP-L first), and bigG's pooled projected output; an empty negative prompt is zeros, context and
 *       pooled (diffusers' {@code force_zeros_for_empty_prompt}, AUTOMATIC1111 likewise).</li>
 * </ul>
 */
public abstract class TextConditioner {
    /** A model's text towers, as the engine runs them. */
    public interface Towers {
        /** The tower's config (0: the first). */
        TextEncoderConfig tower(int tower);

        /** A prompt's ids for that tower (BOS, up to 75 BPE ids, EOS, then the tower's padding). */
        int[] tokenize(int tower, String prompt);

        /** The tower on a batch of ids with each row's LoRAs (their part for this tower). */
        TfModel.Encoded run(int tower, int[][] ids, ClipTextNet.Request request, List<List<LoraWeight>> rowLoras);
    }

    /** The conditioner of a model's family. */
    public static TextConditioner of(ModelConfig c) {
        return switch (c.family()) {
            case ModelConfig.SDXL -> new Sdxl();
            case ModelConfig.SD2 -> new Sd2();
            default -> new Sd1();
        };
    }

    /** One conditioning per item, in order. */
    public List<Conditioning> encode(Towers towers, List<EncodeItem> items) {
        Conditioning[] out = new Conditioning[items.size()];
        // one run per distinct CLIP skip
        Map<Integer, List<Integer>> bySkip = new LinkedHashMap<>();
        for (int i = 0; i < items.size(); i++) {
            int s = items.get(i).clipSkip();
            int max = maxClipSkip(towers);
            if (s < 1 || s > max) {
                throw ServeException.invalid("clip_skip", "must be 1.." + max + ", got " + s);
            }
            bySkip.computeIfAbsent(s, k -> new ArrayList<>()).add(i);
        }
        for (var e : bySkip.entrySet()) {
            List<EncodeItem> group = new ArrayList<>();
            e.getValue().forEach(i -> group.add(items.get(i)));
            List<Conditioning> r = encode(towers, group, e.getKey());
            for (int j = 0; j < group.size(); j++) {
                out[e.getValue().get(j)] = r.get(j);
            }
        }
        return List.of(out);
    }

    /** Items sharing one CLIP skip. */
    abstract List<Conditioning> encode(Towers towers, List<EncodeItem> items, int clipSkip);

    /** The largest CLIP skip the towers allow. */
    abstract int maxClipSkip(Towers towers);

    static int[][] ids(Towers towers, int tower, List<EncodeItem> items) {
        int[][] ids = new int[items.size()][];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = towers.tokenize(tower, items.get(i).prompt());
        }
        return ids;
    }

    static List<List<LoraWeight>> loras(List<EncodeItem> items) {
        return items.stream().map(EncodeItem::loras).toList();
    }

    /**
     * {@code ids} with everything after the first end-of-text id replaced by the tower's padding (CLIP-L towers pad
     * with EOS, OpenCLIP towers with 0, i.e. {@code !}).
     */
    public static int[] repad(int[] ids, TextEncoderConfig te) {
        int[] out = ids.clone();
        boolean after = false;
        for (int i = 0; i < out.length; i++) {
            if (after) {
                out[i] = te.padToken();
            } else if (out[i] == te.eosToken()) {
                after = true;
            }
        }
        return out;
    }

    /** SD 1.x: CLIP skip N = the hidden state N − 1 layers before the last, through the final layer norm. */
    static final class Sd1 extends TextConditioner {
        @Override
        List<Conditioning> encode(Towers towers, List<EncodeItem> items, int clipSkip) {
            float[][] h = towers.run(0, ids(towers, 0, items), ClipTextNet.Request.clipSkip(clipSkip), loras(items)).hidden();
            return java.util.Arrays.stream(h).map(Conditioning::of).toList();
        }

        @Override
        int maxClipSkip(Towers towers) {
            return towers.tower(0).layers();
        }
    }

    /** SD 2.x: ln_final of the penultimate layer (CLIP skip N: N − 1 layers before it). */
    static final class Sd2 extends TextConditioner {
        @Override
        List<Conditioning> encode(Towers towers, List<EncodeItem> items, int clipSkip) {
            float[][] h = towers.run(0, ids(towers, 0, items), new ClipTextNet.Request(clipSkip + 1, true, false),
                    loras(items)).hidden();
            return java.util.Arrays.stream(h).map(Conditioning::of).toList();
        }

        @Override
        int maxClipSkip(Towers towers) {
            return towers.tower(0).layers() - 1;
        }
    }

    /**
     * SDXL: concat(CLIP-L penultimate, bigG penultimate), no final norm; pooled = bigG's projected end-of-text state
     * of its last layer; an empty negative prompt is all zeros.
     */
    static final class Sdxl extends TextConditioner {
        @Override
        List<Conditioning> encode(Towers towers, List<EncodeItem> items, int clipSkip) {
            TextEncoderConfig t1 = towers.tower(0), t2 = towers.tower(1);
            int w1 = t1.hiddenSize(), w2 = t2.hiddenSize();
            int tokens = t1.maxPositions();
            List<EncodeItem> encoded = new ArrayList<>();
            for (EncodeItem it : items) {
                if (!zero(it)) {
                    encoded.add(it);
                }
            }
            TfModel.Encoded a = null, b = null;
            if (!encoded.isEmpty()) {
                a = towers.run(0, ids(towers, 0, encoded), new ClipTextNet.Request(clipSkip + 1, false, false),
                        loras(encoded));
                b = towers.run(1, ids(towers, 1, encoded), new ClipTextNet.Request(clipSkip + 1, false, true),
                        loras(encoded));
            }
            List<Conditioning> out = new ArrayList<>();
            int k = 0;
            for (EncodeItem it : items) {
                if (zero(it)) {
                    out.add(new Conditioning(new float[tokens * (w1 + w2)], new float[t2.projectionDim()]));
                    continue;
                }
                out.add(new Conditioning(concat(a.hidden()[k], w1, b.hidden()[k], w2), b.pooled()[k]));
                k++;
            }
            return out;
        }

        private static boolean zero(EncodeItem it) {
            return it.negative() && it.prompt().isBlank();
        }

        /** Per token: [x (w1) | y (w2)]. */
        static float[] concat(float[] x, int w1, float[] y, int w2) {
            int tokens = x.length / w1;
            if (y.length != tokens * w2) {
                throw new IllegalStateException("towers gave " + tokens + " and " + y.length / w2 + " tokens");
            }
            float[] out = new float[tokens * (w1 + w2)];
            for (int t = 0; t < tokens; t++) {
                System.arraycopy(x, t * w1, out, t * (w1 + w2), w1);
                System.arraycopy(y, t * w2, out, t * (w1 + w2) + w1, w2);
            }
            return out;
        }

        @Override
        int maxClipSkip(Towers towers) {
            return Math.min(towers.tower(0).layers(), towers.tower(1).layers()) - 1;
        }
    }
}
