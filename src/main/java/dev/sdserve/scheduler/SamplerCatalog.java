package dev.sdserve.scheduler;

import dev.sdserve.sampler.Sampler;

import java.util.List;

/**
 * The samplers the service knows, looked up by id or by AUTOMATIC1111 display name (case-insensitive). Adapts
 * {@code dev.sdserve.sampler.Samplers} once that lands; {@link InterimSamplers} serves until then.
 */
public interface SamplerCatalog {
    /** The sampler for an id or display name, or null when unknown. */
    Sampler find(String idOrName);

    /** Ids of all known samplers. */
    List<String> ids();
}
