package dev.sdserve.scheduler;

import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.projection.LatentProjection;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.preview.Previews;
import dev.sdserve.sampler.SamplerState;

import java.util.ArrayList;
import java.util.List;

/**
 * What a request's preview options mean step by step: which steps carry a preview, which of them are full previews
 * (a VAE decode the planner schedules), what latent each image's preview shows, and the rendered previews (off the
 * scheduler thread). Stateless.
 */
final class PreviewPlan {
    private PreviewPlan() {
    }

    /** Whether step {@code index} (1-based, of {@code total} evaluations) carries previews. */
    static boolean due(PreviewOptions p, int index, int total) {
        return p.enabled() && (index % p.everySteps() == 0 || index == total || full(p, index, total));
    }

    /**
     * Whether step {@code index}'s preview is a full one (a VAE decode of x̂0, PNG in the latent format too): every
     * {@code full_every} steps, never at the last step (the final decode follows at once).
     */
    static boolean full(PreviewOptions p, int index, int total) {
        return p.enabled() && p.fullAt(index) && index < total;
    }

    /** Full previews still ahead after {@code done} of {@code total} evaluations (what admission counts). */
    static int fullAhead(PreviewOptions p, int done, int total) {
        if (!p.enabled() || p.fullEvery() <= 0) {
            return 0;
        }
        int n = 0;
        for (int k = (done / p.fullEvery() + 1) * p.fullEvery(); k < total; k += p.fullEvery()) {
            n++;
        }
        return n;
    }

    /**
     * Image previews still ahead after {@code done} of {@code total} evaluations that are not full ones (what goes
     * through the decoder readout when the request's previews use it); none in the latent format.
     */
    static int projectedAhead(PreviewOptions p, int done, int total) {
        if (!p.enabled() || p.latent()) {
            return 0;
        }
        int n = 0;
        for (int k = done + 1; k <= total; k++) {
            n += due(p, k, total) && !full(p, k, total) ? 1 : 0;
        }
        return n;
    }

    /**
     * Each image's latent to preview: the denoised estimate x̂0 of the latest evaluation (the default), or the noisy
     * sample x_t ({@code content=noisy}, and before any evaluation). New arrays.
     */
    static List<float[]> latents(SamplerState[] states, PreviewOptions p) {
        List<float[]> out = new ArrayList<>(states.length);
        boolean noisy = PreviewOptions.NOISY.equals(p.content());
        for (SamplerState s : states) {
            float[] x0 = noisy ? null : s.denoised();
            out.add(x0 != null ? x0 : s.latents());
        }
        return out;
    }

    /** The previews of every image through the projection, or (format "latent") the latents as float16. */
    static List<JobEvent.Preview> project(List<float[]> latents, LatentShape shape, LatentProjection projection,
                                          ResolvedRequest r, PreviewOptions p) {
        List<JobEvent.Preview> out = new ArrayList<>(latents.size());
        JobEvent.LatentInfo info = p.latent() ? new JobEvent.LatentInfo(shape.channels(), shape.height(),
                shape.width(), projection.weights(), projection.bias(), projection.source()) : null;
        for (int i = 0; i < latents.size(); i++) {
            byte[] data = p.latent() ? LatentProjection.float16(latents.get(i))
                    : Previews.encode(latents.get(i), shape, projection, r.width(), r.height(), p.maxEdge(), p.format());
            out.add(new JobEvent.Preview(i, data, p.format(), p.content(), false, info));
        }
        return out;
    }

    /** Decoder previews: each image's RGB per latent cell (the decoder readout's), scaled and encoded. */
    static List<JobEvent.Preview> readout(List<float[]> cells, LatentShape shape, ResolvedRequest r, PreviewOptions p) {
        List<JobEvent.Preview> out = new ArrayList<>(cells.size());
        for (int i = 0; i < cells.size(); i++) {
            out.add(new JobEvent.Preview(i, Previews.encodeCells(cells.get(i), shape, r.width(), r.height(), p.maxEdge(),
                    p.format()), p.format(), p.content(), false, null));
        }
        return out;
    }

    /** Full previews: each image's VAE decode of x̂0, scaled and encoded (PNG when the format is latent). */
    static List<JobEvent.Preview> decoded(List<float[]> images, ResolvedRequest r, PreviewOptions p) {
        List<JobEvent.Preview> out = new ArrayList<>(images.size());
        String format = p.latent() ? "png" : p.format();
        for (int i = 0; i < images.size(); i++) {
            out.add(new JobEvent.Preview(i, Previews.encodeImage(images.get(i), r.width(), r.height(), p.maxEdge(),
                    format), format, p.content(), true, null));
        }
        return out;
    }
}
