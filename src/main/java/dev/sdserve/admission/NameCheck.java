package dev.sdserve.admission;

import dev.sdserve.engine.LoraWeight;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.PromptLoras;
import dev.sdserve.job.ServeException;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * Model and LoRA names, checked at admission before a job exists: a name that is not a plain name (a path, {@code ..},
 * control characters, too long) is INVALID_ARGUMENT; a name the server does not have is NOT_FOUND listing what it
 * has. Either names the request field: {@code model}, {@code loras[i].name} for a listed LoRA, {@code prompt} for a
 * {@code <lora:…>} tag. The listed LoRAs and the prompt's tags are checked together here (form, weights, count,
 * existence, architecture), so nothing admission could have refused reaches the engine (where a missing LoRA used to
 * fail the job after it was accepted).
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

    private final AdmissionConfig config;
    private final Names names;

    /** @param config the LoRA limits and {@link AdmissionConfig#names} (what the server has; null: names' form only) */
    public NameCheck(AdmissionConfig config) {
        this.config = config;
        this.names = config.names;
    }

    /**
     * The listed LoRAs (fields {@code loras[i].…}) and the prompt's tags (field {@code prompt}): names' form, weights
     * and count. One entry per name, weights summed, listed ones first. Whether the server has them is checked
     * after every other field ({@link #lorasExist}).
     */
    public List<LoraWeight> loras(List<LoraWeight> listed, List<LoraWeight> tags) {
        if (listed.size() > config.maxLoras) {
            throw ServeException.invalid("loras", "at most " + config.maxLoras + " LoRAs per request, got " + listed.size());
        }
        List<LoraWeight> trimmed = new ArrayList<>();
        for (int i = 0; i < listed.size(); i++) {
            LoraWeight l = listed.get(i);
            if (l == null || l.name() == null || l.name().isBlank()) {
                throw ServeException.invalid("loras[" + i + "].name", "must name a LoRA");
            }
            loraName(l.name().trim(), "loras[" + i + "].name", false);
            checkWeight(l.weight(), "loras[" + i + "].weight", "");
            trimmed.add(new LoraWeight(l.name().trim(), l.weight()));
        }
        for (LoraWeight t : tags) {
            loraName(t.name(), "prompt", true);
            checkWeight(t.weight(), "prompt", "the weight of <lora:" + t.name() + ":…> ");
        }
        List<LoraWeight> all = PromptLoras.merge(trimmed, tags);
        if (all.size() > config.maxLoras) {
            throw ServeException.invalid("prompt", "at most " + config.maxLoras + " LoRAs per request (listed and "
                    + "<lora:…> tags together), got " + all.size());
        }
        for (LoraWeight l : all) { // a LoRA both listed and tagged: the sum counts
            checkWeight(l.weight(), loraField(trimmed, tags, l.name(), ".weight"), "the summed weight of LoRA '" + l.name() + "' ");
        }
        return all;
    }

    /**
     * NOT_FOUND (naming the field) for a LoRA the server does not have; INVALID_ARGUMENT for one made for another
     * architecture than the model's.
     */
    public void lorasExist(List<LoraWeight> listed, List<LoraWeight> tags, String model, ModelInfo info) {
        for (int i = 0; i < listed.size(); i++) {
            String name = listed.get(i).name().trim();
            loraExists(name, "loras[" + i + "].name", false);
            loraFits(name, "loras[" + i + "].name", false, model, info.architecture());
        }
        for (LoraWeight t : tags) {
            loraExists(t.name(), "prompt", true);
            loraFits(t.name(), "prompt", true, model, info.architecture());
        }
    }

    /** {@code prompt} if a tag names it, else the listed entry's field. */
    private static String loraField(List<LoraWeight> listed, List<LoraWeight> tags, String name, String suffix) {
        if (tags.stream().anyMatch(t -> t.name().equals(name))) {
            return "prompt";
        }
        for (int i = 0; i < listed.size(); i++) {
            if (listed.get(i).name().equals(name)) {
                return "loras[" + i + "]" + suffix;
            }
        }
        return "loras";
    }

    private void checkWeight(double w, String field, String what) {
        if (!Double.isFinite(w) || Math.abs(w) > config.maxLoraWeight) {
            throw ServeException.invalid(field, what + "must be finite within -" + config.maxLoraWeight + ".."
                    + config.maxLoraWeight + ", got " + w);
        }
    }


    /**
     * The request's model: a plain name (no '/': checkpoints sit at the top of the models directory) that the server
     * has; then what the engine says about it. NOT_FOUND names the field {@code model} and lists the models.
     */
    public ModelInfo model(String name, java.util.function.Function<String, ModelInfo> describe) {
        String field = "model";
        String problem = problem(name, false);
        if (problem != null) {
            throw ServeException.invalid(field, "'" + shown(name) + "' is not a model name: " + problem
                    + " (GET /v1/models lists the names)");
        }
        if (names != null && !exists(() -> names.hasModel(name), field)) {
            throw unknownModel(name, field, null);
        }
        try {
            return describe.apply(name);
        } catch (ServeException e) {
            if (e.code() == ServeException.Code.NOT_FOUND) {
                throw unknownModel(name, field, e.getMessage());
            }
            throw e;
        }
    }

    /** NOT_FOUND for a model, listing the server's models ({@code engineMessage}: what the engine said, if no list). */
    private ServeException unknownModel(String name, String field, String engineMessage) {
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
            return "it is longer than " + Limits.MAX_NAME_CHARS + " characters";
        }
        if (name == null || name.isBlank()) {
            return "it is empty";
        }
        if (name.chars().anyMatch(Character::isISOControl)) {
            return "it contains control characters";
        }
        // the models directory's own lookups refuse these too (ModelRegistry); admission says so before a job exists
        if (name.startsWith("/") || name.contains("\\") || name.contains(":")) {
            return "it must be a plain name inside the models directory, not a path";
        }
        for (String seg : name.split("/", -1)) {
            if (seg.isEmpty() || seg.equals(".") || seg.equals("..")) {
                return "it has an empty, '.' or '..' path segment";
            }
        }
        if (!subfolders && name.contains("/")) {
            return "it must be a file name at the top of the models directory, without '/'";
        }
        return null;
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
