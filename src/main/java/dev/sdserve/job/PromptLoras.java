package dev.sdserve.job;

import dev.sdserve.engine.LoraWeight;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * AUTOMATIC1111's extra-network syntax in prompts: {@code <lora:name>}, {@code <lora:name:weight>},
 * {@code <lora:name:te_weight:unet_weight>} and the named forms {@code te=…}, {@code unet=…}. {@code <lyco:…>} is
 * read as {@code <lora:…>}. The tags are removed from the prompt text (the text encoder never sees them) and become
 * {@link LoraWeight}s; a LoRA named twice gets the sum of its weights (LoRA deltas add linearly). Other extra
 * networks ({@code <hypernet:…>}, …) are refused rather than silently ignored.
 *
 * @param prompt the prompt without the tags (whitespace left by a removed tag is tidied, the rest kept as written)
 * @param loras  the LoRAs in order of first appearance
 */
public record PromptLoras(String prompt, List<LoraWeight> loras) {
    /** A1111's extra-network pattern ({@code re_extra_net}): {@code <type:params>}. */
    private static final Pattern TAG = dev.sdserve.prompt.ExtraNetworks.TAG;

    public PromptLoras {
        loras = List.copyOf(loras);
    }

    /**
     * Splits a prompt into its text and its LoRA tags.
     *
     * @throws ServeException INVALID_ARGUMENT (field {@code prompt}) for a malformed tag or an unsupported network
     */
    public static PromptLoras parse(String prompt) {
        return parse(prompt, "prompt");
    }

    /** As {@link #parse(String)}, naming {@code field} in errors (e.g. "negative_prompt"). */
    public static PromptLoras parse(String prompt, String field) {
        if (prompt == null || prompt.indexOf('<') < 0) {
            return new PromptLoras(prompt == null ? "" : prompt, List.of());
        }
        Map<String, Double> weights = new LinkedHashMap<>();
        StringBuilder text = new StringBuilder();
        Matcher m = TAG.matcher(prompt);
        int last = 0;
        while (m.find()) {
            text.append(prompt, last, m.start());
            last = m.end();
            String type = m.group(1).toLowerCase(Locale.ROOT);
            if (!type.equals("lora") && !type.equals("lyco")) {
                throw ServeException.invalid(field, "unsupported extra network " + m.group()
                        + ": only LoRAs are supported, written <lora:name:weight>");
            }
            LoraWeight lw = tag(m.group(), m.group(2), field);
            weights.merge(lw.name(), lw.weight(), Double::sum);
            // Tidy the gap the tag leaves: "a cat, <lora:x:1> on a mat" -> "a cat, on a mat".
            boolean nextIsSpaceOrEnd = last >= prompt.length() || Character.isWhitespace(prompt.charAt(last))
                    || prompt.charAt(last) == ',';
            while (nextIsSpaceOrEnd && text.length() > 0 && text.charAt(text.length() - 1) == ' ') {
                text.setLength(text.length() - 1);
            }
        }
        text.append(prompt, last, prompt.length());
        List<LoraWeight> loras = new ArrayList<>();
        weights.forEach((n, w) -> loras.add(new LoraWeight(n, w)));
        return new PromptLoras(text.toString().strip(), loras);
    }

    private static LoraWeight tag(String whole, String params, String field) {
        String[] parts = params.split(":", -1);
        String name = parts[0].strip();
        if (name.isEmpty()) {
            throw ServeException.invalid(field, "LoRA tag " + whole + " has no name; write <lora:name:weight>");
        }
        List<String> positional = new ArrayList<>();
        Map<String, String> named = new LinkedHashMap<>();
        for (int i = 1; i < parts.length; i++) {
            String p = parts[i].strip();
            int eq = p.indexOf('=');
            if (eq > 0) {
                named.put(p.substring(0, eq).strip().toLowerCase(Locale.ROOT), p.substring(eq + 1).strip());
            } else {
                positional.add(p);
            }
        }
        for (String k : named.keySet()) {
            if (!k.equals("te") && !k.equals("unet")) {
                throw ServeException.invalid(field, "LoRA tag " + whole + ": parameter '" + k
                        + "' is not supported (only a weight, or te=/unet= with equal values)");
            }
        }
        if (positional.size() > 2) {
            throw ServeException.invalid(field, "LoRA tag " + whole + " has too many parts; write <lora:name:weight>");
        }
        double te = number(named.getOrDefault("te", positional.size() > 0 ? positional.get(0) : "1"), whole, field);
        double unet = number(named.getOrDefault("unet", positional.size() > 1 ? positional.get(1) : null), whole, field, te);
        if (te != unet) {
            throw ServeException.invalid(field, "LoRA tag " + whole + " gives different text-encoder (" + fmt(te)
                    + ") and UNet (" + fmt(unet) + ") weights; sd-serve applies one weight to both");
        }
        return new LoraWeight(name, te);
    }

    private static double number(String s, String whole, String field, double def) {
        return s == null ? def : number(s, whole, field);
    }

    private static double number(String s, String whole, String field) {
        try {
            double d = Double.parseDouble(s);
            if (!Double.isFinite(d)) {
                throw new NumberFormatException();
            }
            return d;
        } catch (NumberFormatException e) {
            throw ServeException.invalid(field, "LoRA weight '" + s + "' in " + whole + " is not a number");
        }
    }

    /**
     * LoRAs given as a list (gRPC/REST field) plus those in the prompt: one entry per name, weights summed, list
     * entries first.
     */
    public static List<LoraWeight> merge(List<LoraWeight> listed, List<LoraWeight> fromPrompt) {
        Map<String, Double> w = new LinkedHashMap<>();
        for (LoraWeight l : listed) {
            w.merge(l.name(), l.weight(), Double::sum);
        }
        for (LoraWeight l : fromPrompt) {
            w.merge(l.name(), l.weight(), Double::sum);
        }
        List<LoraWeight> out = new ArrayList<>();
        w.forEach((n, x) -> out.add(new LoraWeight(n, x)));
        return out;
    }

    /** The prompt with its LoRAs written back as tags (as A1111 infotexts show them), e.g. "a cat <lora:x:0.8>". */
    public static String withTags(String prompt, List<LoraWeight> loras) {
        StringBuilder sb = new StringBuilder(prompt == null ? "" : prompt);
        for (LoraWeight l : loras) {
            if (sb.length() > 0 && !Character.isWhitespace(sb.charAt(sb.length() - 1))) {
                sb.append(' ');
            }
            sb.append("<lora:").append(l.name()).append(':').append(fmt(l.weight())).append('>');
        }
        return sb.toString();
    }

    /**
     * The prompt as written, with tags appended for the LoRAs (or the part of a LoRA's weight) that its own tags do
     * not carry, e.g. those given in a request's LoRA list: "a <lora:x:0.5> cat" with x at 0.8 in all →
     * "a <lora:x:0.5> cat <lora:x:0.3>". A prompt whose tags carry every LoRA is returned unchanged.
     */
    public static String withMissingTags(String prompt, List<LoraWeight> loras) {
        Map<String, Double> inPrompt = new LinkedHashMap<>();
        for (LoraWeight l : parse(prompt).loras()) {
            inPrompt.put(l.name(), l.weight());
        }
        List<LoraWeight> missing = new ArrayList<>();
        for (LoraWeight l : loras) {
            // in decimal, so 1.0 − 0.8 prints as 0.2
            double rest = new BigDecimal(Double.toString(l.weight()))
                    .subtract(new BigDecimal(Double.toString(inPrompt.getOrDefault(l.name(), 0.0)))).doubleValue();
            if (Math.abs(rest) > 1e-9 * Math.max(1, Math.abs(l.weight()))) {
                missing.add(new LoraWeight(l.name(), rest));
            }
        }
        return withTags(prompt, missing);
    }

    /** A number as A1111 prints it: no trailing ".0" ({@code 1}, {@code 0.8}, {@code 7.5}). */
    public static String fmt(double d) {
        if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            return Long.toString((long) d);
        }
        return new BigDecimal(Double.toString(d)).stripTrailingZeros().toPlainString();
    }
}
