package dev.sdserve.engine;

import java.util.List;

/**
 * One prompt to text-encode.
 *
 * @param prompt   the text (LoRA tags already removed)
 * @param clipSkip 1 = the family's own layer (SD 1.x: the last; SD 2.x and SDXL: the penultimate, which they were
 *                 trained on), 2 = one layer before that, …
 * @param loras    LoRAs whose text-encoder part applies
 * @param negative the request's negative prompt: an empty one is the zero conditioning for SDXL (diffusers'
 *                 {@code force_zeros_for_empty_prompt}, AUTOMATIC1111 likewise), an encoded "" otherwise
 */
public record EncodeItem(String prompt, int clipSkip, List<LoraWeight> loras, boolean negative) {
    public EncodeItem {
        loras = loras == null ? List.of() : List.copyOf(loras);
        if (clipSkip < 1) {
            throw new IllegalArgumentException("clipSkip must be >= 1");
        }
    }

    public EncodeItem(String prompt, int clipSkip, List<LoraWeight> loras) {
        this(prompt, clipSkip, loras, false);
    }

    public EncodeItem(String prompt) {
        this(prompt, 1, List.of());
    }

    /** A negative prompt. */
    public static EncodeItem negative(String prompt, int clipSkip, List<LoraWeight> loras) {
        return new EncodeItem(prompt, clipSkip, loras, true);
    }
}
