package dev.sdserve.sampler;

import java.util.List;

/**
 * The samplers the service knows, looked up by id or by AUTOMATIC1111 display name (case-insensitive); by default
 * {@link LibrarySamplers} (the sampler room's registry). Tests may plug in others.
 */
public interface SamplerCatalog {
    /** The sampler for an id or display name, or null when unknown. */
    Sampler find(String idOrName);

    /**
     * The sampler for a model: on the scheduler config its family ships ({@code sd1}, {@code sd2}, {@code sdxl}: SDXL's
     * "leading" spacing, SD 2.x's) with the model's prediction type ({@code epsilon}, {@code v_prediction}); null when
     * unknown. The default ignores the model (catalogs of one configuration).
     */
    default Sampler find(String idOrName, String family, String predictionType) {
        return find(idOrName);
    }

    /** Ids of all known samplers. */
    List<String> ids();
}
