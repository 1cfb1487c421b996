package dev.sdserve.engine;

import java.util.List;

/**
 * One prompt to text-encode.
 *
 * @param prompt   the text, in AUTOMATIC1111's syntax (weights, BREAK, chunks of 75 tokens; extra-network tags
 *                 such as {@code <lora:…>} are dropped by the engine)
 * @param clipSkip 1 = the family's own layer (SD 1.x: the last; SD 2.x and SDXL: the penultimate, which they were
 *                 trained on), 2 = one layer before that, …
 * @param loras    LoRAs whose text-encoder part applies
 * @param group    the texts encoded together with this one, this one included (duplicates count): the texts of one
 *                 prompt schedule, which AUTOMATIC1111 encodes as one batch, padded to one chunk count with the
 *                 emphasis means shared (see {@code dev.sdserve.prompt.PromptEncoder}); {@code [prompt]} alone by
 *                 default. Items with the same group and settings are encoded once.
 * @param negative the request's negative prompt: an empty one is the zero conditioning for SDXL (diffusers'
 *                 {@code force_zeros_for_empty_prompt}, AUTOMATIC1111 likewise), an encoded "" otherwise
 */
public record EncodeItem(String prompt, int clipSkip, List<LoraWeight> loras, List<String> group, boolean negative) {
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

    /** A prompt encoded with the texts of its schedule. */
    public EncodeItem(String prompt, int clipSkip, List<LoraWeight> loras, List<String> group) {
        this(prompt, clipSkip, loras, group, false);
    }

    /** A prompt or negative prompt encoded alone. */
    public EncodeItem(String prompt, int clipSkip, List<LoraWeight> loras, boolean negative) {
        this(prompt, clipSkip, loras, null, negative);
    }

    public EncodeItem(String prompt, int clipSkip, List<LoraWeight> loras) {
        this(prompt, clipSkip, loras, null, false);
    }

    public EncodeItem(String prompt) {
        this(prompt, 1, List.of());
    }

    /** A negative prompt. */
    public static EncodeItem negative(String prompt, int clipSkip, List<LoraWeight> loras) {
        return new EncodeItem(prompt, clipSkip, loras, true);
    }
}
