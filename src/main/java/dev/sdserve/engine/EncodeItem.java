package dev.sdserve.engine;

import java.util.List;

/**
 * One prompt to text-encode.
 *
 * @param prompt   the text, in AUTOMATIC1111's syntax (weights, BREAK, chunks of 75 tokens; extra-network tags
 *                 such as {@code <lora:…>} are dropped by the engine)
 * @param clipSkip 1 = last layer (the default), 2 = penultimate layer through the final layer norm, …
 * @param loras    LoRAs whose text-encoder part applies
 * @param group    the texts encoded together with this one, this one included (duplicates count): the texts of one
 *                 prompt schedule, which AUTOMATIC1111 encodes as one batch, padded to one chunk count with the
 *                 emphasis means shared (see {@code dev.sdserve.prompt.PromptEncoder}); {@code [prompt]} alone by
 *                 default. Items with the same group and settings are encoded once.
 */
public record EncodeItem(String prompt, int clipSkip, List<LoraWeight> loras, List<String> group) {
    public EncodeItem {
        loras = loras == null ? List.of() : List.copyOf(loras);
        group = group == null || group.isEmpty() ? List.of(prompt == null ? "" : prompt) : List.copyOf(group);
        if (clipSkip < 1) {
            throw new IllegalArgumentException("clipSkip must be >= 1");
        }
        if (!group.contains(prompt == null ? "" : prompt)) {
            throw new IllegalArgumentException("the group of '" + prompt + "' does not contain it");
        }
    }

    public EncodeItem(String prompt, int clipSkip, List<LoraWeight> loras) {
        this(prompt, clipSkip, loras, null);
    }

    public EncodeItem(String prompt) {
        this(prompt, 1, List.of());
    }
}
