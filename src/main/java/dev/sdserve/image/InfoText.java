package dev.sdserve.image;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.job.PromptLoras;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.sampler.Samplers;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Generation parameters as AUTOMATIC1111 writes them into the {@code parameters} PNG text chunk (its "infotext"),
 * which A1111's "PNG Info" tab, civitai, ComfyUI loaders and other tools read back:
 * <pre>
 * a red fox in snow &lt;lora:film:0.8&gt;
 * Negative prompt: blurry
 * Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42, Size: 512x512, Model hash: 6ce0161689, Model: v1-5, Lora hashes: "film: 1234567890ab"
 * </pre>
 * The prompt line is the prompt exactly as written (attention syntax, BREAK, schedules, its LoRA tags in place),
 * with tags appended for LoRAs given outside it (a request's LoRA list), as {@code <lora:name:weight>};
 * the negative prompt line is left out when empty; values containing {@code ,}, {@code :} or a newline are JSON-quoted.
 */
public final class InfoText {
    /** The PNG text keyword A1111 uses. */
    public static final String KEYWORD = "parameters";

    private static final ObjectMapper JSON = new ObjectMapper();
    /** A1111's {@code re_param}: a key, a colon, a quoted or plain value, a comma. */
    private static final Pattern PARAM = Pattern.compile("\\s*(\\w[\\w \\-/]+):\\s*(\"(?:\\\\.|[^\\\\\"])+\"|[^,]*)(?:,|$)");

    private InfoText() {
    }

    /** The infotext of the image of {@code r} made with {@code seed}, with no LoRA hashes known. */
    public static String format(ResolvedRequest r, long seed, String modelHash) {
        return format(r, seed, modelHash, Map.of());
    }

    /**
     * @param seed       the seed of this image (for image i of a request: {@code r.seedOf(i)})
     * @param modelHash  A1111's short model hash (first 10 hex digits of the file's SHA-256), or null to leave it out
     * @param loraHashes LoRA name → short hash, for the {@code Lora hashes} entry (LoRAs without a hash are skipped)
     */
    public static String format(ResolvedRequest r, long seed, String modelHash, Map<String, String> loraHashes) {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("Steps", Integer.toString(r.steps()));
        p.put("Sampler", samplerName(r.sampler()));
        p.put("CFG scale", PromptLoras.fmt(r.guidance()));
        p.put("Seed", Long.toString(seed));
        p.put("Size", r.width() + "x" + r.height());
        if (modelHash != null && !modelHash.isBlank()) {
            p.put("Model hash", modelHash);
        }
        p.put("Model", modelName(r.model()));
        if (r.image() != null) { // img2img / inpainting, as A1111 writes them
            p.put("Denoising strength", PromptLoras.fmt(r.image().strength()));
            if (r.image().inpainting()) {
                p.put("Mask blur", Integer.toString(r.image().options().maskBlur()));
            }
        }
        if (r.images() > 1) {
            long pos = seed - r.seed();
            p.put("Batch size", Integer.toString(r.images()));
            if (pos >= 0 && pos < r.images()) {
                p.put("Batch pos", Long.toString(pos));
            }
        }
        if (r.clipSkip() > 1) {
            p.put("Clip skip", Integer.toString(r.clipSkip()));
        }
        if (r.padCondUncond()) {
            p.put("Pad conds", "True"); // A1111's infotext for its pad_cond_uncond option
        }
        List<String> hashes = new ArrayList<>();
        for (LoraWeight l : r.loras()) {
            String h = loraHashes.get(l.name());
            if (h != null && !h.isBlank()) {
                hashes.add(l.name() + ": " + h);
            }
        }
        if (!hashes.isEmpty()) {
            p.put("Lora hashes", String.join(", ", hashes));
        }
        p.put("Version", "sd-serve");

        StringBuilder sb = new StringBuilder(PromptLoras.withMissingTags(r.prompt(), r.loras()));
        if (r.negativePrompt() != null && !r.negativePrompt().isEmpty()) {
            sb.append("\nNegative prompt: ").append(r.negativePrompt());
        }
        sb.append('\n');
        boolean first = true;
        for (Map.Entry<String, String> e : p.entrySet()) {
            sb.append(first ? "" : ", ").append(e.getKey()).append(": ").append(quote(e.getValue()));
            first = false;
        }
        return sb.toString();
    }

    /**
     * sd-serve's parameter for an image whose denoising stopped early (A1111 interrupt or skip): "k/n", the
     * sampling step it stopped at out of the steps planned (the {@code sampling_step}/{@code sampling_steps} of
     * A1111's progress, which count model evaluations). A1111 itself records nothing there.
     */
    public static final String STEPS_DONE = "Steps done";

    /** The infotext with one more parameter appended to its parameter line (the value quoted as A1111 does). */
    public static String withParameter(String infotext, String key, String value) {
        return infotext + ", " + key + ": " + quote(value);
    }

    /** The A1111 display name of a sampler id ("dpmpp_2m_karras" → "DPM++ 2M Karras"); unknown names pass through. */
    public static String samplerName(String sampler) {
        if (sampler == null) {
            return "";
        }
        try {
            return Samplers.info(sampler).displayName();
        } catch (IllegalArgumentException unknown) {
            return sampler;
        }
    }

    /** A1111 shows a checkpoint by its file name without directory and extension. */
    public static String modelName(String model) {
        if (model == null) {
            return "";
        }
        String m = model.replace('\\', '/');
        m = m.substring(m.lastIndexOf('/') + 1);
        for (String ext : new String[]{".safetensors", ".ckpt", ".pt", ".bin"}) {
            if (m.toLowerCase(java.util.Locale.ROOT).endsWith(ext)) {
                return m.substring(0, m.length() - ext.length());
            }
        }
        return m;
    }

    /** A1111's {@code quote}: JSON-quotes values that contain a comma, a colon or a newline. */
    static String quote(String v) {
        if (v.indexOf(',') < 0 && v.indexOf(':') < 0 && v.indexOf('\n') < 0) {
            return v;
        }
        try {
            return JSON.writeValueAsString(v);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** An infotext read back: prompt, negative prompt and the key/value parameters in order. */
    public record Parsed(String prompt, String negativePrompt, Map<String, String> parameters) {
    }

    /**
     * Reads an infotext the way A1111's {@code parse_generation_parameters} does: the last line is the parameter line
     * when it holds at least three {@code key: value} pairs; lines before it are the prompt, up to a line starting
     * with {@code Negative prompt:}.
     */
    public static Parsed parse(String text) {
        List<String> lines = new ArrayList<>(List.of(text.strip().split("\n", -1)));
        Map<String, String> params = new LinkedHashMap<>();
        String last = lines.get(lines.size() - 1).strip();
        Matcher m = PARAM.matcher(last);
        List<String[]> found = new ArrayList<>();
        while (m.find()) {
            found.add(new String[]{m.group(1).strip(), m.group(2).strip()});
        }
        if (found.size() >= 3) {
            lines.remove(lines.size() - 1);
            for (String[] kv : found) {
                params.put(kv[0], unquote(kv[1]));
            }
        }
        StringBuilder prompt = new StringBuilder();
        StringBuilder negative = new StringBuilder();
        boolean inNegative = false;
        for (String line : lines) {
            String l = line.strip();
            if (l.startsWith("Negative prompt:")) {
                inNegative = true;
                l = l.substring("Negative prompt:".length()).strip();
            }
            StringBuilder target = inNegative ? negative : prompt;
            if (target.length() > 0) {
                target.append('\n');
            }
            target.append(l);
        }
        return new Parsed(prompt.toString(), negative.toString(), params);
    }

    private static String unquote(String v) {
        if (v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"")) {
            try {
                return JSON.readValue(v, String.class);
            } catch (JsonProcessingException e) {
                return v;
            }
        }
        return v;
    }
}
