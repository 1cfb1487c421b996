package dev.sdserve.admission;

import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.ModelDefaults;
import dev.sdserve.sampler.SamplerCatalog;

import java.util.function.Function;

/**
 * Fills the fields a request leaves unset with its model's recommended settings ({@link ModelDefaults}: sampler,
 * steps, guidance, size, CLIP skip), before {@link Validation} fills what is still unset with the server's defaults.
 * Explicit values always win.
 *
 * <p>"Unset" is what each transport already maps to null in a {@link GenerationRequest}: an absent or null JSON
 * member (REST, A1111's API); in gRPC a 0 for width / height / steps / clip_skip, an empty sampler and an absent
 * {@code optional guidance_scale}. A width or height of 0 counts as unset here too (REST passes it through).
 */
public final class RecommendedDefaults {
    private RecommendedDefaults() {
    }

    /**
     * @param r        the request as given
     * @param model    the resolved model name
     * @param defaults the models' recommended defaults by name
     * @param samplers to check that a recommended sampler exists (a sidecar naming an unknown one is the model's
     *                 fault, not the caller's: FAILED_PRECONDITION naming the model)
     */
    public static GenerationRequest fill(GenerationRequest r, String model, Function<String, ModelDefaults> defaults,
                                         SamplerCatalog samplers) {
        ModelDefaults d = defaults.apply(model);
        if (d == null || d.isEmpty()) {
            return r;
        }
        String sampler = r.sampler();
        if ((sampler == null || sampler.isBlank()) && d.sampler() != null) {
            if (samplers.find(d.sampler()) == null) {
                throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "model '" + model
                        + "' recommends sampler '" + d.sampler() + "', which this server does not know (known: "
                        + samplers.ids() + "); give a sampler or fix the model's JSON");
            }
            sampler = d.sampler();
        }
        // img2img / inpainting without a size takes the init image's, not the model's recommended one
        boolean fromImage = r.image() != null && r.image().present();
        Integer width = unsetSize(r.width()) && d.width() != null && !fromImage ? d.width() : r.width();
        Integer height = unsetSize(r.height()) && d.height() != null && !fromImage ? d.height() : r.height();
        Integer steps = r.steps() == null ? d.steps() : r.steps();
        Double guidance = r.guidance() == null ? d.guidanceScale() : r.guidance();
        Integer clipSkip = r.clipSkip() == null ? d.clipSkip() : r.clipSkip();
        return new GenerationRequest(r.prompt(), r.negativePrompt(), r.model(), r.loras(), width, height, steps,
                sampler, guidance, r.seed(), clipSkip, r.images(), r.preview(), r.sloClass(), r.deadlineMillis(),
                r.priority(), r.tenant(), r.bestEffort(), r.padCondUncond(), r.image(), r.guidanceCutoff(),
                r.deepCacheInterval(), r.tokenMerging());
    }

    private static boolean unsetSize(Integer v) {
        return v == null || v == 0;
    }
}
