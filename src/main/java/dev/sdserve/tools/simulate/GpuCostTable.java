package dev.sdserve.tools.simulate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.CostModel;
import dev.sdserve.engine.Stage;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;

/**
 * Engine call costs measured on a GPU ({@code h200-sd15-step-costs.json}), as a {@link CostModel} for 512² SD 1.5:
 * UNet forward by latent batch, VAE decode by images, text encoding. Between measured batch sizes it interpolates
 * linearly; below the smallest it uses the smallest; above the largest it extrapolates linearly through the last
 * two points.
 *
 * <p>Assumptions where the file has no number: text encoding was measured only at batch 2 (6.75 ms); it is taken
 * as flat up to 8 prompts (launch-bound like the UNet's flat region) and proportional beyond. The compiled table
 * has UNet timings only; its encode/decode costs are the eager ones.
 */
public final class GpuCostTable implements CostModel {
    private final String name;
    private final TreeMap<Integer, Double> unet;
    private final TreeMap<Integer, Double> decode;
    private final double encodeBatch2;

    public GpuCostTable(String name, TreeMap<Integer, Double> unet, TreeMap<Integer, Double> decode, double encodeBatch2) {
        if (unet.isEmpty() || decode.isEmpty()) {
            throw new IllegalArgumentException("cost table " + name + " needs UNet and decode timings");
        }
        this.name = name;
        this.unet = unet;
        this.decode = decode;
        this.encodeBatch2 = encodeBatch2;
    }

    /** Loads the "eager_sdpa" or "torch_compile_cudagraphs" table. */
    public static GpuCostTable load(Path file, String table) throws IOException {
        JsonNode root = new ObjectMapper().readTree(Files.readString(file));
        JsonNode eager = root.path("eager_sdpa");
        JsonNode t = root.path(table);
        if (t.isMissingNode() || eager.isMissingNode()) {
            throw new IllegalArgumentException(file + " has no table '" + table + "' (or no eager_sdpa table)");
        }
        TreeMap<Integer, Double> unet = series(t.path("unet_forward_ms_by_latent_batch"), file, table + ".unet_forward_ms_by_latent_batch");
        JsonNode dec = t.has("vae_decode_512px_ms_by_images") ? t.path("vae_decode_512px_ms_by_images")
                : eager.path("vae_decode_512px_ms_by_images");
        TreeMap<Integer, Double> decode = series(dec, file, "vae_decode_512px_ms_by_images");
        double enc = t.has("text_encode_ms_batch2") ? t.path("text_encode_ms_batch2").asDouble()
                : eager.path("text_encode_ms_batch2").asDouble(6.75);
        return new GpuCostTable(table, unet, decode, enc);
    }

    private static TreeMap<Integer, Double> series(JsonNode n, Path file, String what) {
        if (!n.isObject() || n.isEmpty()) {
            throw new IllegalArgumentException(file + ": missing " + what);
        }
        TreeMap<Integer, Double> m = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            m.put(Integer.parseInt(e.getKey()), e.getValue().asDouble());
        }
        return m;
    }

    public String name() {
        return name;
    }

    public TreeMap<Integer, Double> unetTable() {
        return unet;
    }

    /** Interpolated value of a batch-size series. */
    static double interpolate(TreeMap<Integer, Double> m, double batch) {
        Map.Entry<Integer, Double> lo = m.floorEntry((int) Math.floor(batch));
        Map.Entry<Integer, Double> hi = m.ceilingEntry((int) Math.ceil(batch));
        if (lo == null) {
            return m.firstEntry().getValue();
        }
        if (hi == null) {
            Map.Entry<Integer, Double> last = m.lastEntry();
            Map.Entry<Integer, Double> prev = m.lowerEntry(last.getKey());
            if (prev == null) {
                return last.getValue() * batch / last.getKey();
            }
            double slope = (last.getValue() - prev.getValue()) / (last.getKey() - prev.getKey());
            return last.getValue() + slope * (batch - last.getKey());
        }
        if (lo.getKey().equals(hi.getKey())) {
            return lo.getValue();
        }
        double w = (batch - lo.getKey()) / (hi.getKey() - lo.getKey());
        return lo.getValue() * (1 - w) + hi.getValue() * w;
    }

    public double unetMillis(int latentBatch) {
        return interpolate(unet, latentBatch);
    }

    public double decodeMillis(int images) {
        return interpolate(decode, images);
    }

    public double encodeMillis(int prompts) {
        return encodeBatch2 * Math.max(1.0, prompts / 8.0);
    }

    @Override
    public double predictMillis(String model, Stage stage, LatentShape shape, int batch) {
        return switch (stage) {
            case ENCODE -> encodeMillis(batch);
            case DENOISE -> unetMillis(batch);
            case DECODE -> decodeMillis(batch);
            case IMAGE_ENCODE -> decodeMillis(batch) / 2; // no measurement: the VAE encoder has about half the decoder's work
            case PREVIEW -> decodeMillis(batch) / 10; // no measurement: the decoder's trunk at latent resolution
        };
    }

    /**
     * Token merging at the table's size: its costs were timed at 512² (64×64 latents, 4096 tokens), while the simulated
     * requests run on small stand-in latents; the factor is the one measured on the CPU engine at 64×64 (no GPU
     * measurement of token merging here).
     */
    @Override
    public double tokenMergingFactor(String model, LatentShape shape, double ratio) {
        return dev.sdserve.engine.TokenMerging.costFactor(ratio, TABLE_LATENT);
    }

    /** The latent the table's UNet timings were taken at (SD 1.5, 512²). */
    static final LatentShape TABLE_LATENT = new LatentShape(4, 64, 64);

    /** Latency of one guided 512² image of {@code steps} steps on an idle machine. */
    public double isolatedMillis(int steps) {
        return encodeMillis(2) + steps * unetMillis(2) + decodeMillis(1);
    }
}
