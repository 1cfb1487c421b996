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

    private final java.util.Map<List<String>, Sampler> byModel = new java.util.concurrent.ConcurrentHashMap<>();

    /** The sampler on the scheduler config of the model's family with its prediction type (SchedulerConfig#forModel). */
    @Override
    public Sampler find(String idOrName, String family, String predictionType) {
        Samplers.Info info;
        try {
            info = Samplers.info(idOrName);
        } catch (IllegalArgumentException e) {
            return null;
        }
        String f = family == null ? "sd1" : family;
        String p = predictionType == null ? "epsilon" : predictionType;
        if (f.equals("sd1") && p.equals("epsilon")) {
            return find(idOrName); // SD 1.5's config: the shared instances
        }
        return byModel.computeIfAbsent(List.of(info.id(), f, p),
                k -> Samplers.create(info.id(), SchedulerConfig.forModel(f, p)));
    }

    @Override
    public List<String> ids() {
        return Samplers.list().stream().map(Samplers.Info::id).toList();
    }
}
