package dev.sdserve.prompt;

import java.util.regex.Pattern;

/**
 * AUTOMATIC1111's extra-network tags ({@code <lora:name:0.8>}, {@code <hypernet:…>}, any {@code <type:params>}): the
 * text encoder never sees them. They are removed as A1111 removes them (replaced by nothing, the text around left
 * as it is) before the prompt's schedule and attention syntax are read; the tags themselves are read by
 * {@code api.PromptLoras}.
 */
public final class ExtraNetworks {
    /** A1111's {@code re_extra_net}. */
    public static final Pattern TAG = Pattern.compile("<(\\w+):([^>]+)>");

    private ExtraNetworks() {
    }

    /** The prompt without its extra-network tags. */
    public static String strip(String prompt) {
        if (prompt == null) {
            return "";
        }
        return prompt.indexOf('<') < 0 ? prompt : TAG.matcher(prompt).replaceAll("");
    }
}
