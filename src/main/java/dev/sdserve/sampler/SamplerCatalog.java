package dev.sdserve.sampler;

import java.util.List;

/** The samplers the service offers, for listings (ids, A1111 names). */
public final class SamplerCatalog {
    public record Entry(String id, String displayName, boolean stochastic) {
    }

    private SamplerCatalog() {
    }

    public static List<Entry> entries() {
        // Filled from the sampler registry once it exists.
        return List.of();
    }
}
