package dev.sdserve.admission;

import dev.sdserve.job.ServeException;
import dev.sdserve.model.ModelRegistry;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * Model and LoRA names, checked at admission before a job exists: a name that is not a plain name (a path, {@code ..},
 * control characters, too long) is INVALID_ARGUMENT; a name the server does not have is NOT_FOUND listing what it
 * has. Either names the request field: {@code model}, {@code loras[i].name} for a listed LoRA, {@code prompt} for a
 * {@code <lora:…>} tag. So nothing admission could have refused reaches the engine (where a missing LoRA used to fail
 * the job after it was accepted).
 */
public final class NameCheck {
    /** Names listed in a NOT_FOUND message at most. */
    static final int LIST_LIMIT = 20;

    /** What the server has. */
    public interface Names {
        /** Model names, in listing order. */
        Collection<String> models();

        /** LoRA names (relative to {@code loras/}, without extension). */
        Collection<String> loras();

        /** Whether the model exists now (implementations may ask the disk: a file added since the last scan counts). */
        default boolean hasModel(String name) {
            return models().contains(name);
        }

        /** Whether the LoRA exists now. */
        default boolean hasLora(String name) {
            return loras().contains(name);
        }

        /**
         * The architecture family a LoRA's keys are for: "sdxl", "sd1/sd2", or null / "unknown" when it cannot be
         * told from its header (then nothing is refused for it).
         */
        default String loraFamily(String name) {
            return null;
        }

        static Names of(Supplier<Collection<String>> models, Predicate<String> hasModel,
                        Supplier<Collection<String>> loras, Predicate<String> hasLora,
                        java.util.function.Function<String, String> loraFamily) {
            return new Names() {
                @Override
                public String loraFamily(String name) {
                    return loraFamily.apply(name);
                }

                @Override
                public Collection<String> models() {
                    return models.get();
                }

                @Override
                public Collection<String> loras() {
                    return loras.get();
                }

                @Override
                public boolean hasModel(String name) {
                    return hasModel.test(name);
                }

                @Override
                public boolean hasLora(String name) {
                    return hasLora.test(name);
                }
            };
        }
    }

    private final Names names;

    /** @param names what the server has, or null to check only the names' form */
    public NameCheck(Names names) {
        this.names = names;
    }

    /** A model name: plain (no '/': checkpoints sit at the top of the models directory) and, if known, existing. */
    public void model(String name, String field) {
        String problem = problem(name, false);
        if (problem != null) {
            throw ServeException.invalid(field, "'" + shown(name) + "' is not a model name: " + problem
                    + " (GET /v1/models lists the names)");
        }
        if (names != null && !exists(() -> names.hasModel(name), field)) {
            throw unknownModel(name, field, null);
        }
    }

    /** NOT_FOUND for a model, listing the server's models ({@code engineMessage}: what the engine said, if no list). */
    public ServeException unknownModel(String name, String field, String engineMessage) {
        String has = names != null ? "; the server has " + list(names.models(), "no models")
                : engineMessage != null ? " (" + engineMessage + ")" : "";
        return new ServeException(ServeException.Code.NOT_FOUND, field, field + ": unknown model '" + shown(name) + "'"
                + has + " (GET /v1/models)", null);
    }

    /**
     * A LoRA name's form: plain (subfolders of {@code loras/} allowed).
     *
     * @param tag true when it came from a {@code <lora:…>} tag of the prompt (then {@code field} is "prompt")
     */
    public void loraName(String name, String field, boolean tag) {
        String problem = problem(name, true);
        if (problem != null) {
            throw ServeException.invalid(field, (tag ? "LoRA tag <lora:" + shown(name) + ":…>" : "LoRA '" + shown(name) + "'")
                    + " does not name a LoRA: " + problem + " (GET /v1/loras lists the names)");
        }
    }

    /** A LoRA (whose form was checked) exists, if the server's names are known; else NOT_FOUND listing them. */
    public void loraExists(String name, String field, boolean tag) {
        if (names != null && !exists(() -> names.hasLora(name), field)) {
            throw new ServeException(ServeException.Code.NOT_FOUND, field, field + ": unknown LoRA '" + shown(name)
                    + "'" + (tag ? " in the prompt's <lora:…> tag" : "") + "; the server has "
                    + list(names.loras(), "no LoRAs (they are .safetensors files under <models-dir>/loras)")
                    + " (GET /v1/loras)", null);
        }
    }

    /**
     * A LoRA made for another architecture than the model's (an SDXL LoRA on an SD 1.x model, or the reverse):
     * INVALID_ARGUMENT, told from the LoRA file's header before any weights are read.
     */
    public void loraFits(String name, String field, boolean tag, String model, String modelArchitecture) {
        String lora = names == null ? null : names.loraFamily(name);
        if (lora == null || lora.equals("unknown") || modelArchitecture == null) {
            return;
        }
        boolean loraXl = lora.contains("sdxl");
        boolean modelXl = modelArchitecture.toLowerCase(java.util.Locale.ROOT).contains("sdxl");
        if (loraXl != modelXl) {
            throw ServeException.invalid(field, "LoRA '" + shown(name) + "'" + (tag ? " (in a <lora:…> tag)" : "")
                    + " is for " + (loraXl ? "SDXL" : "SD 1.x/2.x") + " but model '" + shown(model) + "' is "
                    + modelArchitecture);
        }
    }

    private static String problem(String name, boolean subfolders) {
        if (name != null && name.length() > Limits.MAX_NAME_CHARS) {
            return "longer than " + Limits.MAX_NAME_CHARS + " characters";
        }
        String p = ModelRegistry.plainNameProblem(name);
        if (p == null && !subfolders && name.contains("/")) {
            return "must be a file name at the top of the models directory, without '/'";
        }
        return p;
    }

    /** A lookup that may refuse the name itself (a link out of the models directory): INVALID_ARGUMENT on our field. */
    private static boolean exists(java.util.function.BooleanSupplier lookup, String field) {
        try {
            return lookup.getAsBoolean();
        } catch (ServeException e) {
            if (e.code() == ServeException.Code.INVALID_ARGUMENT) {
                throw ServeException.invalid(field, e.getMessage());
            }
            throw e;
        }
    }

    private static String list(Collection<String> all, String none) {
        if (all.isEmpty()) {
            return none;
        }
        List<String> l = new ArrayList<>(all);
        String shown = String.join(", ", l.subList(0, Math.min(LIST_LIMIT, l.size())));
        return l.size() <= LIST_LIMIT ? shown : shown + " … (" + (l.size() - LIST_LIMIT) + " more)";
    }

    private static String shown(String name) {
        String s = name == null ? "" : name.replaceAll("\\p{Cntrl}", "?");
        return s.length() > 80 ? s.substring(0, 80) + "…" : s;
    }
}
