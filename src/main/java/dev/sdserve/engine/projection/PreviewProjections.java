package dev.sdserve.engine.projection;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Each model's preview projection, fitted once per model file: in memory by model name and by file hash, and on disk
 * as {@code <dir>/<hash>.json} so a restart (or another name for the same file) does not fit again. Until a model's
 * fit exists, {@link #get} answers with the SD 1.x fallback. Thread-safe; {@link #ensure} blocks (call it where a
 * model loads, off the scheduler's thread).
 */
public final class PreviewProjections {
    private static final Logger LOG = Logger.getLogger(PreviewProjections.class.getName());
    /** The cache files' format (a change of the fit's procedure changes it, so old fits are not reused). */
    public static final String FORMAT = "sd-serve preview projection 2";
    /**
     * "auto" previews go through the decoder readout when its error against the VAE is at most this fraction of the
     * affine map's (on the demo model 0.49; a VAE whose colours are a per-cell linear function gains little and
     * keeps the free projection).
     */
    public static final double DECODER_GAIN = 0.75;

    /** Fits a model (e.g. {@link ProjectionFitter} on the engine). */
    @FunctionalInterface
    public interface Fitter {
        ProjectionFitter.Result fit(String model);
    }

    /** A model's projection and where it came from: "fitted" (now), "cache" (file or memory), "fallback". */
    public record Entry(LatentProjection projection, String origin, String hash, double residualMean255,
                        double fallbackMean255, double fitMillis, LatentProjection decoder, double decoderResidual255) {
        public Entry(LatentProjection projection, String origin, String hash, double residualMean255,
                     double fallbackMean255, double fitMillis) {
            this(projection, origin, hash, residualMean255, fallbackMean255, fitMillis, null, Double.NaN);
        }

        /** Whether "auto" previews use the decoder readout: there is one, and it is clearly closer to the VAE. */
        public boolean decoderPreferred() {
            return decoder != null && decoderResidual255 <= DECODER_GAIN * residualMean255;
        }
    }

    /**
     * The decoder readout a request's previews of the model go through, or null for the affine projection: for
     * {@code choice} "decoder" the model's readout once fitted, for "auto" (or null) the readout when the fit prefers
     * it, for "affine" none. Never blocks.
     */
    public LatentProjection decoderReadout(String model, String choice) {
        Entry e = byName.get(model);
        if (e == null || e.decoder() == null || "affine".equals(choice)) {
            return null;
        }
        return "decoder".equals(choice) || e.decoderPreferred() ? e.decoder() : null;
    }

    private final Path dir;
    private final Function<String, String> hashOf;
    private final Fitter fitter;
    private final ObjectMapper json = new ObjectMapper();
    private final Map<String, Entry> byName = new ConcurrentHashMap<>();
    private final Map<String, Entry> byHash = new ConcurrentHashMap<>();
    private final Map<String, Object> locks = new ConcurrentHashMap<>();
    /** Models whose background fit is queued or running. */
    private final java.util.Set<String> fitting = ConcurrentHashMap.newKeySet();
    private volatile java.util.concurrent.ExecutorService background;

    /**
     * @param dir    cache directory (created when first written), or null for memory only
     * @param hashOf a model's file hash (null when unknown: then the fit is kept in memory by name only)
     * @param fitter runs a fit
     */
    public PreviewProjections(Path dir, Function<String, String> hashOf, Fitter fitter) {
        this.dir = dir;
        this.hashOf = hashOf;
        this.fitter = fitter;
    }

    /** The model's projection now: its fit when one is known, else the SD 1.x fallback. Never blocks. */
    public LatentProjection get(String model) {
        Entry e = byName.get(model);
        return e != null ? e.projection() : LatentProjection.SD1_CHEAP;
    }

    /** What {@link #get} would use, with its origin ("fallback" when there is no fit yet). */
    public Entry entry(String model) {
        Entry e = byName.get(model);
        return e != null ? e : new Entry(LatentProjection.SD1_CHEAP, "fallback", null, Double.NaN, Double.NaN, 0);
    }

    /**
     * The model's fitted projection: from memory, else the cache file of its hash, else a new fit (written to the
     * cache). A failing fit is logged and leaves the fallback in place; it is tried again at the next call.
     */
    public Entry ensure(String model) {
        String hash;
        try {
            hash = hashOf.apply(model);
        } catch (RuntimeException e) {
            hash = null;
        }
        String key = hash != null ? hash : "name:" + model;
        synchronized (locks.computeIfAbsent(key, k -> new Object())) {
            Entry known = byHash.get(key);
            if (known != null) {
                byName.put(model, known);
                return known;
            }
            Entry e = hash != null ? read(hash) : null;
            if (e == null) {
                ProjectionFitter.Result r;
                try {
                    r = fitter.fit(model);
                } catch (RuntimeException ex) {
                    LOG.log(Level.WARNING, "fitting the preview projection of model '" + model + "' failed; previews use the SD 1.x factors", ex);
                    return entry(model);
                }
                e = new Entry(r.projection(), "fitted", hash, r.residualMean255(), r.fallbackMean255(), r.millis(),
                        r.decoder(), r.decoderResidual255());
                LOG.info(String.format(Locale.ROOT, "preview projection of model '%s' fitted in %.0f ms on %d latents "
                                + "(%s): mean |fit − VAE| %.1f/255, SD 1.x factors %.1f/255, decoder readout %.1f/255 (%s)",
                        model, r.millis(), r.latentsDecoded(), r.shape(), r.residualMean255(), r.fallbackMean255(),
                        r.decoderResidual255(), e.decoderPreferred() ? "auto previews use it" : "auto previews stay affine"));
                if (hash != null) {
                    write(hash, e);
                }
            }
            byHash.put(key, e);
            byName.put(model, e);
            return e;
        }
    }

    /**
     * Fits the model's projection on a background thread of its own (never the caller's) unless it is known or a fit
     * is under way; {@link #get} answers with the fallback meanwhile. Called when a model loads and, lazily, at a
     * model's first preview.
     */
    public void fitInBackground(String model) {
        if (byName.containsKey(model) || !fitting.add(model)) {
            return;
        }
        try {
            executor().execute(() -> {
                try {
                    ensure(model);
                } catch (RuntimeException e) {
                    LOG.log(Level.WARNING, "preview projection of model '" + model + "' not fitted", e);
                } finally {
                    fitting.remove(model);
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            fitting.remove(model);
        }
    }

    /** Whether a background fit of the model is queued or running (tests wait on it). */
    public boolean fitting(String model) {
        return fitting.contains(model);
    }

    private java.util.concurrent.ExecutorService executor() {
        java.util.concurrent.ExecutorService e = background;
        if (e == null) {
            synchronized (this) {
                if (background == null) {
                    background = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
                        Thread t = new Thread(r, "sdserve-projection-fit");
                        t.setDaemon(true);
                        t.setPriority(Thread.MIN_PRIORITY);
                        return t;
                    });
                }
                e = background;
            }
        }
        return e;
    }

    /** Forgets a model's name (e.g. its file changed); fits by hash stay. */
    public void forget(String model) {
        byName.remove(model);
    }

    private Path file(String hash) {
        return dir.resolve(hash.replaceAll("[^A-Za-z0-9_-]", "_") + ".json");
    }

    private Entry read(String hash) {
        if (dir == null || !Files.isRegularFile(file(hash))) {
            return null;
        }
        try {
            JsonNode n = json.readTree(file(hash).toFile());
            if (!FORMAT.equals(n.path("format").asText()) || !hash.equals(n.path("model_hash").asText())) {
                return null;
            }
            JsonNode f = n.path("fit");
            JsonNode d = n.path("decoder_readout");
            return new Entry(LatentProjection.fromJson(n.path("projection")), "cache", hash,
                    f.path("residual_mean_abs_255").asDouble(Double.NaN), f.path("fallback_mean_abs_255").asDouble(Double.NaN),
                    f.path("millis").asDouble(0), d.isObject() ? LatentProjection.fromJson(d) : null,
                    f.path("decoder_residual_mean_abs_255").asDouble(Double.NaN));
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "ignoring the unreadable preview projection cache " + file(hash) + ": " + e);
            return null;
        }
    }

    private void write(String hash, Entry e) {
        if (dir == null) {
            return;
        }
        ObjectNode n = json.createObjectNode();
        n.put("format", FORMAT);
        n.put("model_hash", hash);
        n.set("projection", e.projection().toJson(json));
        ObjectNode f = n.putObject("fit");
        f.put("residual_mean_abs_255", e.residualMean255());
        f.put("fallback_mean_abs_255", e.fallbackMean255());
        f.put("millis", e.fitMillis());
        if (e.decoder() != null) {
            n.set("decoder_readout", e.decoder().toJson(json));
            f.put("decoder_residual_mean_abs_255", e.decoderResidual255());
        }
        try {
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, "projection", ".tmp");
            Files.write(tmp, json.writerWithDefaultPrettyPrinter().writeValueAsBytes(n));
            try {
                Files.move(tmp, file(hash), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException ex) {
                Files.move(tmp, file(hash), StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException ex) {
            LOG.log(Level.WARNING, "cannot write the preview projection cache " + file(hash) + ": " + ex);
        }
    }
}
