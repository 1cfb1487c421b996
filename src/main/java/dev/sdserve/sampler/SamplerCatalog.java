package dev.sdserve.sampler;

import java.util.List;

/**
 * The samplers the service knows, looked up by id or by AUTOMATIC1111 display name (case-insensitive); by default
 * {@link LibrarySamplers} (the sampler room's registry). Tests may plug in others.
 */
public interface SamplerCatalog {
    /** The sampler for an id or display name, or null when unknown. */
    Sampler find(String idOrName);

    /** Ids of all known samplers. */
    List<String> ids();
}
