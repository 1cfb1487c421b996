package dev.sdserve.sampler;

import java.util.List;

/** The sampler room's registry ({@link Samplers}: diffusers-exact samplers on SD 1.5's scheduler config). */
public final class LibrarySamplers implements SamplerCatalog {
    @Override
    public Sampler find(String idOrName) {
        try {
            return Samplers.create(idOrName);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    @Override
    public List<String> ids() {
        return Samplers.list().stream().map(Samplers.Info::id).toList();
    }
}
