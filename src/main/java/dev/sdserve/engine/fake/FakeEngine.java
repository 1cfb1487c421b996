package dev.sdserve.engine.fake;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.EngineStats;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.ServeException;
import dev.sdserve.clock.Clock;
import dev.sdserve.engine.CostModel;
import dev.sdserve.engine.DeepCache;
import dev.sdserve.engine.Stage;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A deterministic engine for tests, the simulator and the server's "fake" mode. Its outputs are cheap and
 * recognisable, and every sample's output depends only on that sample's own inputs, so a test can prove that
 * batching never mixes requests:
 * <ul>
 *   <li>encode: the conditioning is a pseudo-random vector seeded by a hash of (prompt, clip skip, LoRAs);</li>
 *   <li>denoise: {@code eps} is computed element-wise from the sample's latent, timestep, conditioning, guidance
 *       scale and LoRAs (see {@link #eps});</li>
 *   <li>decode: pixel (y, x) is a smooth function of the latent cell under it (see {@link #pixel}).</li>
 * </ul>
 * Each call "costs" {@link Config#cost} milliseconds, spent by sleeping on the injected {@link Clock}: on a
 * {@link dev.sdserve.clock.SimClock} that advances simulated time; on the system clock it really sleeps.
 */
public final class FakeEngine implements Engine {

    /** Configuration; all fields have sensible defaults. */
    public static final class Config {
        /** Known models by name. */
        public final Map<String, ModelInfo> models = new LinkedHashMap<>();
        /** Simulated cost of each call. */
        public CostModel cost = CostModel.ZERO;
        /** Clock on which the cost is spent. */
        public Clock clock = Clock.system();
        /**
         * When false, decode returns empty arrays instead of images (the simulator, which only needs timing, uses
         * this to avoid computing millions of pixels).
         */
        public boolean decodePixels = true;
        /**
         * Whether the fake has a decoder trunk for decoder previews ({@link Engine#decoderFeatures}): its features
         * are the latent's own channels, so a readout acts as an affine map; off by default (previews stay affine).
         */
        public boolean decoderTrunk = false;
        /** A prompt containing this marker makes every denoise call that includes it fail (null = never). */
        public String poisonMarker = "<poison>";
        /**
         * Models that start cold, by name → simulated load time (ms on {@link #clock}); the others are resident
         * from the start. A load completes when the clock reaches its start + this time (on a SimClock other work
         * moves the time, so a load overlaps the steps of other models).
         */
        public final Map<String, Double> loadMillis = new java.util.concurrent.ConcurrentHashMap<>();
        /** Models whose loads fail (after their load time), by name → reason. */
        public final Map<String, String> loadFailures = new java.util.concurrent.ConcurrentHashMap<>();
        /** What the engine predicts for a model's load time when it differs from the truth (tests of bad predictions). */
        public final Map<String, Double> predictedLoadMillis = new java.util.concurrent.ConcurrentHashMap<>();
        /** Simulated weight bytes of a resident model. */
        public long bytesPerModel = 1L << 20;

        public Config() {
            models.put("embedded", model("embedded", 8, 64));
        }

        /** Replaces the known models by these names, each SD 1.x-shaped with the given VAE scale and default size. */
        public Config models(int vaeScale, int defaultImageSize, String... names) {
            models.clear();
            for (String n : names) {
                models.put(n, model(n, vaeScale, defaultImageSize));
            }
            return this;
        }

        public Config cost(CostModel c) {
            this.cost = c;
            return this;
        }

        public Config clock(Clock c) {
            this.clock = c;
            return this;
        }

        /** The model starts cold and takes {@code ms} to load. */
        public Config cold(String model, double ms) {
            loadMillis.put(model, ms);
            return this;
        }

        /** Loads of the model fail after its load time with this reason. */
        public Config failLoads(String model, String reason) {
            loadFailures.put(model, reason);
            return this;
        }

        public Config decodePixels(boolean b) {
            this.decodePixels = b;
            return this;
        }

        /** Context of 8 tokens × 16 dims keeps conditionings small. */
        public static ModelInfo model(String name, int vaeScale, int defaultImageSize) {
            return new ModelInfo(name, 4, vaeScale, 8, 16, 0.18215, "fake-sd1", defaultImageSize);
        }
    }

    private final Config config;
    private final EngineStats stats = new EngineStats();
    /** Models loaded (cold models join when their load completes). */
    private final java.util.Set<String> resident = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** Cold models being loaded: clock nanos at which the load completes. */
    private final Map<String, Long> readyAt = new java.util.concurrent.ConcurrentHashMap<>();
    private final java.util.Set<String> pinned = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** Loads started, by model (tests read it). */
    public final Map<String, Integer> loadsStarted = new java.util.concurrent.ConcurrentHashMap<>();

    public FakeEngine() {
        this(new Config());
    }

    public FakeEngine(Config config) {
        this.config = Objects.requireNonNull(config);
    }

    public Config config() {
        return config;
    }

    @Override
    public ModelInfo describe(String model) {
        ModelInfo info = config.models.get(model);
        if (info == null) {
            throw ServeException.notFound("model '" + model + "' is not known (known: " + config.models.keySet() + ")");
        }
        return info;
    }

    // ---------------------------------------------------------------- residency

    @Override
    public boolean isResident(String model) {
        if (!config.loadMillis.containsKey(model) || resident.contains(model)) {
            return true;
        }
        Long t = readyAt.get(model);
        if (t != null && config.clock.nanoTime() >= t && !config.loadFailures.containsKey(model)) {
            resident.add(model);
            return true;
        }
        return false;
    }

    /**
     * Loads a cold model: waits until the clock reaches the load's completion time (polling a SimClock, which other
     * threads move; sleeping on any other clock), then fails with the configured reason or makes it resident.
     */
    @Override
    public void ensureLoaded(String model) {
        describe(model);
        if (isResident(model)) {
            return;
        }
        double ms = config.loadMillis.getOrDefault(model, 0.0);
        long target = readyAt.computeIfAbsent(model, k -> {
            loadsStarted.merge(model, 1, Integer::sum);
            return config.clock.nanoTime() + Math.round(ms * 1e6);
        });
        try {
            while (config.clock.nanoTime() < target) {
                if (config.clock instanceof dev.sdserve.clock.SimClock) {
                    Thread.sleep(1);
                } else {
                    config.clock.sleepNanos(target - config.clock.nanoTime());
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            readyAt.remove(model);
            throw new ServeException(ServeException.Code.UNAVAILABLE, "loading model '" + model + "' was interrupted");
        }
        String failure = config.loadFailures.get(model);
        if (failure != null) {
            readyAt.remove(model);
            throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "model '" + model + "' (" + model
                    + ".safetensors) cannot be loaded: " + failure);
        }
        resident.add(model);
    }

    /** A call for a model that is not loaded is a caller's bug here (the scheduler loads first). */
    private void requireResident(String model) {
        if (!isResident(model)) {
            throw new IllegalStateException("fake engine: model '" + model + "' is not resident");
        }
    }

    @Override
    public boolean unload(String model) {
        describe(model);
        boolean was = isResident(model);
        pinned.remove(model);
        resident.remove(model);
        readyAt.remove(model);
        if (!config.loadMillis.containsKey(model)) {
            config.loadMillis.put(model, 0.0); // reloads are instant for models that started resident
        }
        return was;
    }

    @Override
    public void pin(String model, boolean pin) {
        describe(model);
        if (pin) {
            pinned.add(model);
        } else {
            pinned.remove(model);
        }
    }

    @Override
    public boolean isPinned(String model) {
        return pinned.contains(model);
    }

    @Override
    public long residentBytes(String model) {
        return isResident(model) ? config.bytesPerModel : 0;
    }

    @Override
    public double predictLoadMillis(String model) {
        Double p = config.predictedLoadMillis.get(model);
        return p != null ? p : config.loadMillis.getOrDefault(model, 0.0);
    }

    @Override
    public float[][] encode(String model, List<EncodeItem> items) {
        ModelInfo info = describe(model);
        requireResident(model);
        spend(model, Stage.ENCODE, null, items.size());
        float[][] out = new float[items.size()][];
        for (int i = 0; i < items.size(); i++) {
            EncodeItem it = items.get(i);
            out[i] = conditioning(info, it);
            if (config.poisonMarker != null && it.prompt() != null && it.prompt().contains(config.poisonMarker)) {
                out[i][0] = Float.NaN; // marks the conditioning: denoise calls that include it fail
            }
        }
        stats.recordEncode(items.size());
        return out;
    }

    @Override
    public float[][] denoise(DenoiseBatch batch) {
        return denoise(batch, batch.unetSamples());
    }

    /** The predictions of a batch of which {@code full} UNet samples cost a full step, the rest a shallow one. */
    private float[][] denoise(DenoiseBatch batch, int full) {
        describe(batch.model());
        requireResident(batch.model());
        spendDenoise(batch, full);
        List<DenoiseItem> items = batch.items();
        int extra = describe(batch.model()).extraChannels() * batch.shape().height() * batch.shape().width();
        for (DenoiseItem it : items) {
            int given = it.extraChannels() == null ? 0 : it.extraChannels().length;
            if (given != extra) { // as a real UNet's first convolution would refuse it
                throw new IllegalArgumentException("fake engine: model '" + batch.model() + "' takes " + extra
                        + " extra input values per sample, got " + given);
            }
            if (isPoisoned(it.cond()) || (it.uncond() != null && isPoisoned(it.uncond()))) {
                throw new IllegalStateException("fake engine: poisoned conditioning in a denoise batch of "
                        + items.size());
            }
        }
        float[][] out = new float[items.size()][];
        for (int i = 0; i < items.size(); i++) {
            out[i] = eps(items.get(i));
        }
        stats.recordDenoise(batch);
        return out;
    }

    /**
     * DeepCache on the fake engine: predictions as without it; time as the cost model says, shallow samples at
     * {@link CostModel#predictShallowMillis}; a full step fills each slot with an empty feature per row.
     */
    @Override
    public float[][] denoise(DenoiseBatch batch, List<DeepCache.Step> steps) {
        if (!DeepCache.any(steps)) {
            return denoise(batch);
        }
        int shallow = 0;
        List<DenoiseItem> items = batch.items();
        for (int i = 0; i < items.size(); i++) {
            DenoiseItem it = items.get(i);
            int rows = it.guided() && it.guidance() != 1.0 ? 2 : 1;
            DeepCache.Step s = steps.get(i);
            if (s != null && s.shallow() && s.slot().covers(rows)) {
                shallow += rows;
            } else if (s != null) {
                s.slot().set(new float[rows][0]);
            }
        }
        return denoise(batch, batch.unetSamples() - shallow);
    }

    @Override
    public float[][] decode(String model, LatentShape shape, List<float[]> latents) {
        ModelInfo info = describe(model);
        requireResident(model);
        spend(model, Stage.DECODE, shape, latents.size());
        float[][] out = new float[latents.size()][];
        for (int i = 0; i < latents.size(); i++) {
            float[] z = latents.get(i);
            if (z.length != shape.size()) {
                throw new IllegalArgumentException("latent of " + z.length + " floats for shape " + shape);
            }
            out[i] = config.decodePixels ? image(info, shape, z) : new float[0];
        }
        stats.recordDecode(latents.size());
        return out;
    }

    /** Latent counts of the decoder-preview calls, in order (tests). */
    public final List<Integer> decoderPreviewBatches = java.util.Collections.synchronizedList(new java.util.ArrayList<>());

    @Override
    public float[][] decoderFeatures(String model, LatentShape shape, List<float[]> latents) {
        if (!config.decoderTrunk) {
            return null;
        }
        requireResident(model);
        return latents.stream().map(float[]::clone).toArray(float[][]::new);
    }

    @Override
    public float[][] decoderPreview(String model, LatentShape shape, List<float[]> latents,
                                    dev.sdserve.engine.projection.LatentProjection readout) {
        if (!config.decoderTrunk) {
            return Engine.super.decoderPreview(model, shape, latents, readout);
        }
        requireResident(model);
        spend(model, Stage.PREVIEW, shape, latents.size());
        decoderPreviewBatches.add(latents.size());
        float[][] out = new float[latents.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = readout.toRgb(latents.get(i), shape);
        }
        return out;
    }

    /**
     * Fake VAE encode: each latent cell from the mean of the pixels over it (channel c &lt; 3 the logit of colour c,
     * scaled back as {@link #image} maps it; further channels 0), plus 0.1·noise: roughly the inverse of decode.
     */
    @Override
    public float[][] encodeImage(String model, LatentShape shape, List<float[]> images, List<float[]> noise) {
        ModelInfo info = describe(model);
        requireResident(model);
        spend(model, Stage.IMAGE_ENCODE, shape, images.size());
        float[][] out = new float[images.size()][];
        for (int i = 0; i < images.size(); i++) {
            out[i] = latentOf(info, shape, images.get(i), noise.get(i));
        }
        stats.recordImageEncode(images.size());
        return out;
    }

    /** The fake encoder of one image (HWC in [0, 1]); {@code noise} may be null. */
    public static float[] latentOf(ModelInfo info, LatentShape shape, float[] img, float[] noise) {
        int s = info.vaeScale();
        int w = shape.width() * s;
        if (img.length != shape.height() * s * w * 3) {
            throw new IllegalArgumentException("image of " + img.length + " floats for latent shape " + shape);
        }
        int plane = shape.height() * shape.width();
        float[] z = new float[shape.size()];
        for (int cy = 0; cy < shape.height(); cy++) {
            for (int cx = 0; cx < shape.width(); cx++) {
                for (int c = 0; c < Math.min(3, shape.channels()); c++) {
                    double sum = 0;
                    for (int y = cy * s; y < (cy + 1) * s; y++) {
                        for (int x = cx * s; x < (cx + 1) * s; x++) {
                            sum += img[(y * w + x) * 3 + c];
                        }
                    }
                    double p = Math.min(0.999, Math.max(0.001, sum / (s * s) / 0.9));
                    z[c * plane + cy * shape.width() + cx] = (float) Math.log(p / (1 - p));
                }
            }
        }
        if (noise != null) {
            for (int k = 0; k < z.length; k++) {
                z[k] += 0.1f * noise[k];
            }
        }
        return z;
    }

    @Override
    public EngineStats stats() {
        return stats;
    }

    /**
     * A denoise call's cost: as the real engine runs one UNet call per token merging ratio, one table cost per ratio,
     * scaled by the ratio's cost factor; with DeepCache shallow samples (the rest of {@code full}), full and shallow
     * samples at their costs, scaled by the batch's ratio (the planner gives a call one ratio).
     */
    private void spendDenoise(DenoiseBatch batch, int full) {
        if (full < batch.unetSamples()) {
            double ms = full > 0 ? config.cost.predictMillis(batch.model(), Stage.DENOISE, batch.shape(), full) : 0;
            ms += config.cost.predictShallowMillis(batch.model(), batch.shape(), batch.unetSamples() - full);
            sleepMillis(ms * mergeFactor(batch, batch.items().get(0).tokenMerging()));
            return;
        }
        java.util.Map<Double, Integer> samples = new java.util.LinkedHashMap<>();
        for (DenoiseItem it : batch.items()) {
            samples.merge(it.tokenMerging(), it.guided() && it.guidance() != 1.0 ? 2 : 1, Integer::sum);
        }
        double ms = 0;
        for (java.util.Map.Entry<Double, Integer> e : samples.entrySet()) {
            ms += config.cost.predictMillis(batch.model(), Stage.DENOISE, batch.shape(), e.getValue())
                    * mergeFactor(batch, e.getKey());
        }
        sleepMillis(ms);
    }

    /** The cost model's token merging factor for a batch's samples at {@code ratio} (1 without merging). */
    private double mergeFactor(DenoiseBatch batch, double ratio) {
        return ratio > 0 ? config.cost.tokenMergingFactor(batch.model(), batch.shape(), ratio) : 1.0;
    }

    private void spend(String model, Stage stage, LatentShape shape, int batch) {
        sleepMillis(config.cost.predictMillis(model, stage, shape, batch));
    }

    private void sleepMillis(double ms) {
        if (ms > 0) {
            try {
                config.clock.sleepNanos(Math.round(ms * 1e6));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("fake engine interrupted", e);
            }
        }
    }

    // ---- the reference functions (public so tests can recompute them independently of the scheduler) ----

    /** Conditioning of one prompt: {@code tokens × dim} values in [-1, 1) from a hash-seeded generator. */
    public static float[] conditioning(ModelInfo info, EncodeItem item) {
        long h = fnv(item.prompt());
        h = mix(h ^ item.clipSkip());
        for (LoraWeight l : item.loras()) {
            h = mix(h ^ fnv(l.name()) ^ Double.doubleToLongBits(l.weight()));
        }
        float[] c = new float[info.contextTokens() * info.contextDim()];
        long s = h;
        for (int i = 0; i < c.length; i++) {
            s = mix(s + 0x9E3779B97F4A7C15L);
            c[i] = (float) ((s >>> 40) / (double) (1L << 24) * 2 - 1);
        }
        return c;
    }

    /** The guided noise prediction for one item, element-wise from that item alone. */
    public static float[] eps(DenoiseItem it) {
        float[] x = it.latentInput();
        float[] e = new float[x.length];
        double loraShift = 0;
        for (LoraWeight l : it.loras()) {
            loraShift += l.weight() * ((fnv(l.name()) & 0xFF) / 255.0 - 0.5) * 0.2;
        }
        double t = it.timestep() / 1000.0;
        for (int j = 0; j < x.length; j++) {
            double ec = epsOne(x[j], t, it.cond()[j % it.cond().length], loraShift);
            if (it.guided() && it.guidance() != 1.0) {
                double eu = epsOne(x[j], t, it.uncond()[j % it.uncond().length], loraShift);
                e[j] = (float) (eu + it.guidance() * (ec - eu));
            } else {
                e[j] = (float) ec;
            }
        }
        return e;
    }

    private static double epsOne(float x, double t, float c, double loraShift) {
        return 0.8 * x / (1 + Math.abs(x)) + 0.05 * c * (0.5 + t) + loraShift; // softsign: cheap and bounded
    }

    /** Decoded image, HWC in [0, 1]: each pixel from the latent cell under it. */
    public static float[] image(ModelInfo info, LatentShape shape, float[] z) {
        int s = info.vaeScale();
        int h = shape.height() * s;
        int w = shape.width() * s;
        int plane = shape.height() * shape.width();
        float[] img = new float[h * w * 3];
        int ch = shape.channels();
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int cell = (y / s) * shape.width() + (x / s);
                double fy = (y % s) / (double) s;
                double fx = (x % s) / (double) s;
                for (int c = 0; c < 3; c++) {
                    double v = z[(c % ch) * plane + cell] + (ch > 3 ? 0.5 * z[3 * plane + cell] : 0);
                    img[(y * w + x) * 3 + c] = pixel(v, fx, fy, c);
                }
            }
        }
        return img;
    }

    /** A pixel value from a latent value with a faint in-cell gradient, in [0, 1]. */
    public static float pixel(double latentValue, double fx, double fy, int channel) {
        double g = 0.1 * (channel == 0 ? fx : channel == 1 ? fy : (fx + fy) / 2);
        return (float) (1.0 / (1.0 + Math.exp(-latentValue)) * 0.9 + g);
    }

    private static boolean isPoisoned(float[] c) {
        return c.length > 0 && Float.isNaN(c[0]);
    }

    private static long fnv(String s) {
        long h = 0xcbf29ce484222325L;
        if (s == null) {
            return h;
        }
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xff;
            h *= 0x100000001b3L;
        }
        return h;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /** Names of the known models. */
    public List<String> modelNames() {
        return new ArrayList<>(config.models.keySet());
    }
}
