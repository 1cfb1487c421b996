package dev.sdserve.sampler;

import dev.sdserve.sampler.ResolvedConfig.Family;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The samplers of the service: ids, AUTOMATIC1111 display names, and factories.
 *
 * <p>Each sampler is a diffusers scheduler class plus the overrides that define the variant (e.g. "DPM++ 2M SDE
 * Karras" = DPMSolverMultistepScheduler with {@code algorithm_type=sde-dpmsolver++, use_karras_sigmas=true}), on top
 * of a model's scheduler config, exactly like {@code Scheduler.from_config(pipe.scheduler.config, **overrides)}.
 * {@link #create(String)} uses Stable Diffusion 1.5's config ({@link SchedulerConfig#SD15}).
 */
public final class Samplers {
    /** A registered sampler. */
    public record Info(String id, String displayName, boolean stochastic, String diffusersClass, List<String> aliases,
                       SchedulerConfig overrides) {
    }

    private static final List<Info> ALL = List.of(
            info("euler_a", "Euler a", true, Family.EULER_ANCESTRAL, List.of("euler_ancestral"), Map.of()),
            info("euler", "Euler", false, Family.EULER, List.of(), Map.of("use_karras_sigmas", false)),
            info("euler_karras", "Euler Karras", false, Family.EULER, List.of(), Map.of("use_karras_sigmas", true)),
            info("lms", "LMS", false, Family.LMS, List.of(), Map.of("use_karras_sigmas", false)),
            info("heun", "Heun", false, Family.HEUN, List.of(), Map.of("use_karras_sigmas", false)),
            info("dpmpp_2m", "DPM++ 2M", false, Family.DPM_MULTISTEP, List.of(),
                    Map.of("algorithm_type", "dpmsolver++", "solver_order", 2, "use_karras_sigmas", false)),
            info("dpmpp_2m_karras", "DPM++ 2M Karras", false, Family.DPM_MULTISTEP, List.of(),
                    Map.of("algorithm_type", "dpmsolver++", "solver_order", 2, "use_karras_sigmas", true)),
            info("dpmpp_2m_sde_karras", "DPM++ 2M SDE Karras", true, Family.DPM_MULTISTEP, List.of(),
                    Map.of("algorithm_type", "sde-dpmsolver++", "solver_order", 2, "use_karras_sigmas", true)),
            info("ddim", "DDIM", false, Family.DDIM, List.of(), Map.of()),
            info("pndm", "PLMS", false, Family.PNDM, List.of("plms"), Map.of("skip_prk_steps", true)),
            info("unipc", "UniPC", false, Family.UNIPC, List.of(), Map.of()));

    private static final Map<String, DiffusersSampler> DEFAULTS = new ConcurrentHashMap<>();

    private Samplers() {
    }

    private static Info info(String id, String name, boolean stochastic, Family f, List<String> aliases, Map<String, ?> overrides) {
        return new Info(id, name, stochastic, f.diffusersClass, aliases, SchedulerConfig.of(overrides));
    }

    /** Every sampler, in display order. */
    public static List<Info> list() {
        return ALL;
    }

    /** Ids of every sampler, in display order. */
    public static List<String> ids() {
        return ALL.stream().map(Info::id).toList();
    }

    /** The SD 1.5-config sampler for an id, display name or alias, or null when unknown (for catalogs). */
    public static DiffusersSampler find(String idOrName) {
        try {
            return create(idOrName);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** The sampler with this id, display name or alias (case-insensitive). */
    public static Info info(String idOrName) {
        if (idOrName != null) {
            String q = idOrName.trim().toLowerCase(Locale.ROOT);
            for (Info i : ALL) {
                if (i.id().equals(q) || i.displayName().toLowerCase(Locale.ROOT).equals(q) || i.aliases().contains(q)) {
                    return i;
                }
            }
        }
        List<String> valid = new ArrayList<>();
        for (Info i : ALL) {
            valid.add(i.id() + " (\"" + i.displayName() + "\")");
        }
        throw new IllegalArgumentException("unknown sampler '" + idOrName + "'; valid samplers: " + String.join(", ", valid));
    }

    /** The sampler with Stable Diffusion 1.5's scheduler config (shared instance; samplers are immutable). */
    public static DiffusersSampler create(String idOrName) {
        Info i = info(idOrName);
        return DEFAULTS.computeIfAbsent(i.id(), id -> create(i, SchedulerConfig.SD15));
    }

    /**
     * The sampler over a model's scheduler config (a diffusers scheduler config; keys it lacks take the diffusers
     * class defaults); the variant's own settings (Karras sigmas, algorithm type) override the config's.
     */
    public static DiffusersSampler create(String idOrName, SchedulerConfig config) {
        return create(info(idOrName), config);
    }

    /**
     * The sampler a diffusers scheduler describes: its class ({@code _class_name}, e.g. EulerDiscreteScheduler) and
     * config pick the variant (Karras sigmas, SDE algorithm), so golden pipelines with any name (e.g.
     * "euler_microcond", "eps_pndm") run on the sampler they were made with.
     */
    public static DiffusersSampler forDiffusers(String diffusersClass, SchedulerConfig config) {
        boolean karras = Boolean.TRUE.equals(config.raw("use_karras_sigmas"));
        String algorithm = String.valueOf(config.raw("algorithm_type"));
        String id = switch (diffusersClass) {
            case "EulerDiscreteScheduler" -> karras ? "euler_karras" : "euler";
            case "EulerAncestralDiscreteScheduler" -> "euler_a";
            case "LMSDiscreteScheduler" -> "lms";
            case "HeunDiscreteScheduler" -> "heun";
            case "DPMSolverMultistepScheduler" -> algorithm.startsWith("sde") ? "dpmpp_2m_sde_karras"
                    : karras ? "dpmpp_2m_karras" : "dpmpp_2m";
            case "DDIMScheduler" -> "ddim";
            case "PNDMScheduler" -> "pndm";
            case "UniPCMultistepScheduler" -> "unipc";
            default -> throw new IllegalArgumentException("no sampler for diffusers scheduler class " + diffusersClass);
        };
        Info i = info(id);
        SchedulerConfig own = i.overrides();
        for (var e : own.values().entrySet()) {
            Object given = config.raw(e.getKey());
            if (given != null && !given.equals(e.getValue())) {
                throw new IllegalArgumentException(diffusersClass + " with " + e.getKey() + "=" + given
                        + " is no sampler of this service (" + id + " has " + e.getValue() + ")");
            }
        }
        return create(i, config);
    }

    /** The effective config of a sampler over a base config (base with the variant's overrides). */
    public static SchedulerConfig config(String idOrName, SchedulerConfig base) {
        return base.merge(info(idOrName).overrides());
    }

    private static DiffusersSampler create(Info i, SchedulerConfig base) {
        Family f = Family.valueOf(familyName(i.diffusersClass()));
        return new DiffusersSampler(i.id(), i.displayName(), f, i.stochastic(), base.merge(i.overrides()));
    }

    private static String familyName(String diffusersClass) {
        for (Family f : Family.values()) {
            if (f.diffusersClass.equals(diffusersClass)) {
                return f.name();
            }
        }
        throw new IllegalStateException(diffusersClass);
    }
}
