package dev.sdserve.engine.tf;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.EngineStats;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.TextEncoderConfig;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The TensorFlow (graph mode, fp32, CPU) engine. Models are known by name → checkpoint path and loaded lazily on
 * first use; their architecture comes from {@code configOf} (e.g. detected from the checkpoint's shapes).
 * Classifier-free guidance doubles guided samples inside one UNet batch and combines
 * {@code eps_u + g·(eps_c − eps_u)} per item.
 */
public final class TfEngine implements Engine {
    private final Map<String, Path> checkpoints;
    private final Function<Path, ModelConfig> configOf;
    private final Function<String, int[]> tokenizer;
    private final Map<String, TfModel> loaded = new HashMap<>();
    private final Map<String, ModelConfig> configs = new HashMap<>();
    private final EngineStats stats = new EngineStats();

    /** Models by name → single-file checkpoint; architectures read from the checkpoints (and config JSON beside). */
    public TfEngine(Map<String, Path> checkpoints) {
        this(checkpoints, null);
    }

    /**
     * @param checkpoints model name → single-file checkpoint
     * @param configOf    architecture of a checkpoint, or null to read it from the checkpoint's shapes
     */
    public TfEngine(Map<String, Path> checkpoints, Function<Path, ModelConfig> configOf) {
        this(checkpoints, configOf, null);
    }

    /**
     * @param checkpoints model name → single-file checkpoint
     * @param configOf    architecture of a checkpoint, or null to read it from the checkpoint's shapes
     * @param tokenizer   prompt → token ids, or null for the shipped CLIP tokenizer with each model's
     *                    text-encoder settings (length, BOS/EOS/pad ids)
     */
    public TfEngine(Map<String, Path> checkpoints, Function<Path, ModelConfig> configOf, Function<String, int[]> tokenizer) {
        this.checkpoints = new LinkedHashMap<>(checkpoints);
        this.configOf = configOf;
        this.tokenizer = tokenizer;
    }

    /** The loaded model, loading it on first use; NOT_FOUND for an unknown name. */
    public synchronized TfModel model(String name) {
        TfModel m = loaded.get(name);
        if (m != null) {
            return m;
        }
        Path p = checkpoints.get(name);
        if (p == null) {
            throw ServeException.notFound("unknown model '" + name + "' (known: " + checkpoints.keySet() + ")");
        }
        try {
            m = configOf == null ? TfModel.load(name, p) : TfModel.load(name, p, config(name));
        } catch (IOException | IllegalArgumentException e) {
            throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "model '" + name + "' (" + p + ") cannot be loaded: "
                    + e.getMessage());
        }
        loaded.put(name, m);
        return m;
    }

    /** A model's architecture without loading its weights (the checkpoint header only). */
    public synchronized ModelConfig config(String name) {
        TfModel m = loaded.get(name);
        if (m != null) {
            return m.config();
        }
        ModelConfig c = configs.get(name);
        if (c != null) {
            return c;
        }
        Path p = checkpoints.get(name);
        if (p == null) {
            throw ServeException.notFound("unknown model '" + name + "' (known: " + checkpoints.keySet() + ")");
        }
        if (configOf != null) {
            c = configOf.apply(p);
        } else {
            try (Checkpoint ck = Checkpoint.open(p)) {
                c = ck.config();
            } catch (IOException | IllegalArgumentException e) {
                throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "model '" + name + "' (" + p
                        + ") cannot be read: " + e.getMessage());
            }
        }
        configs.put(name, c);
        return c;
    }

    @Override
    public ModelInfo describe(String model) {
        ModelConfig c = config(model);
        int scale = c.vae().downscale();
        return new ModelInfo(model, c.unet().inChannels(), scale, c.textEncoder().maxPositions(),
                c.unet().crossAttentionDim(), c.vae().scalingFactor(), c.family(), c.unet().sampleSize() * scale);
    }

    @Override
    public float[][] encode(String model, List<EncodeItem> items) {
        TextEncoderConfig te = model(model).config().textEncoder();
        ClipTokenizer clip = tokenizer == null ? ClipTokenizer.get() : null;
        int[][] ids = new int[items.size()][];
        int[] skips = new int[items.size()];
        for (int i = 0; i < items.size(); i++) {
            EncodeItem it = items.get(i);
            rejectLoras(it.loras().isEmpty());
            ids[i] = clip != null ? clip.tokenize(it.prompt(), te) : tokenizer.apply(it.prompt());
            skips[i] = it.clipSkip();
        }
        return encodeTokens(model, ids, skips);
    }

    /** Text-encodes token ids directly (tests, conformance); one CLIP skip per row. */
    float[][] encodeTokens(String model, int[][] ids, int[] clipSkips) {
        TfModel m = model(model);
        float[][] out = new float[ids.length][];
        // one graph run per distinct CLIP skip
        Map<Integer, List<Integer>> bySkip = new LinkedHashMap<>();
        for (int i = 0; i < ids.length; i++) {
            int s = clipSkips[i];
            if (s < 1 || s > m.config().textEncoder().layers()) {
                throw ServeException.invalid("clip_skip", "must be 1.." + m.config().textEncoder().layers() + ", got " + s);
            }
            bySkip.computeIfAbsent(s, k -> new ArrayList<>()).add(i);
        }
        for (var e : bySkip.entrySet()) {
            List<Integer> rows = e.getValue();
            int[][] sub = new int[rows.size()][];
            for (int j = 0; j < sub.length; j++) {
                sub[j] = ids[rows.get(j)];
            }
            float[][] r = m.encodeTokens(sub, e.getKey());
            for (int j = 0; j < sub.length; j++) {
                out[rows.get(j)] = r[j];
            }
        }
        stats.recordEncode(ids.length);
        return out;
    }

    @Override
    public float[][] denoise(DenoiseBatch batch) {
        TfModel m = model(batch.model());
        LatentShape s = batch.shape();
        if (s.channels() != m.config().unet().inChannels()) {
            throw ServeException.invalid("latent", "model '" + batch.model() + "' takes " + m.config().unet().inChannels()
                    + " latent channels, got " + s.channels());
        }
        List<DenoiseItem> items = batch.items();
        List<float[]> xs = new ArrayList<>();
        List<float[]> ctx = new ArrayList<>();
        float[] ts = new float[batch.unetSamples()];
        int[] uncondIndex = new int[items.size()];
        int n = 0;
        for (DenoiseItem it : items) {
            rejectLoras(it.loras().isEmpty());
            xs.add(it.latentInput());
            ctx.add(it.cond());
            ts[n++] = (float) it.timestep();
        }
        for (int i = 0; i < items.size(); i++) {
            DenoiseItem it = items.get(i);
            uncondIndex[i] = -1;
            if (it.guided() && it.guidance() != 1.0) {
                uncondIndex[i] = n;
                xs.add(it.latentInput());
                ctx.add(it.uncond());
                ts[n++] = (float) it.timestep();
            }
        }
        float[][] eps = m.unet(xs, ts, ctx, s.height(), s.width());
        float[][] out = new float[items.size()][];
        for (int i = 0; i < items.size(); i++) {
            if (uncondIndex[i] < 0) {
                out[i] = eps[i];
            } else {
                out[i] = guide(eps[uncondIndex[i]], eps[i], items.get(i).guidance());
            }
        }
        stats.recordDenoise(batch);
        return out;
    }

    /** eps_u + g·(eps_c − eps_u), in float32 as diffusers computes it. */
    static float[] guide(float[] uncond, float[] cond, double guidance) {
        float g = (float) guidance;
        float[] r = new float[cond.length];
        for (int k = 0; k < r.length; k++) {
            r[k] = uncond[k] + g * (cond[k] - uncond[k]);
        }
        return r;
    }

    @Override
    public float[][] decode(String model, LatentShape shape, List<float[]> latents) {
        float[][] r = model(model).decodeImage(latents, shape.height(), shape.width());
        stats.recordDecode(latents.size());
        return r;
    }

    @Override
    public float[][] encodeImage(String model, LatentShape shape, List<float[]> images) {
        TfModel m = model(model);
        int scale = m.config().vae().downscale();
        int h = shape.height() * scale, w = shape.width() * scale;
        int c = m.config().vae().inChannels();
        List<float[]> nchw = new ArrayList<>();
        for (float[] img : images) {
            if (img.length != h * w * c) {
                throw ServeException.invalid("image", "expected " + h + "x" + w + "x" + c + " floats, got " + img.length);
            }
            float[] x = new float[img.length];
            for (int y = 0; y < h; y++) {
                for (int xx = 0; xx < w; xx++) {
                    for (int ch = 0; ch < c; ch++) {
                        x[(ch * h + y) * w + xx] = img[(y * w + xx) * c + ch] * 2f - 1f;
                    }
                }
            }
            nchw.add(x);
        }
        return m.encodeImages(nchw, h, w);
    }

    private static void rejectLoras(boolean none) {
        if (!none) {
            throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "LoRAs are not supported by the TF engine yet");
        }
    }

    @Override
    public EngineStats stats() {
        return stats;
    }

    @Override
    public synchronized void close() {
        for (TfModel m : loaded.values()) {
            m.close();
        }
        loaded.clear();
    }
}
