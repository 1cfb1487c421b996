package dev.sdserve.engine;

import java.util.List;

/**
 * One prompt to text-encode.
 *
 * @param prompt   the text (LoRA tags already removed)
 * @param clipSkip 1 = last layer (the default), 2 = penultimate layer through the final layer norm, …
 * @param loras    LoRAs whose text-encoder part applies
 */
public record EncodeItem(String prompt, int clipSkip, List<LoraWeight> loras) {
    public EncodeItem {
        loras = loras == null ? List.of() : List.copyOf(loras);
        if (clipSkip < 1) {
            throw new IllegalArgumentException("clipSkip must be >= 1");
        }
    }

    public EncodeItem(String prompt) {
        this(prompt, 1, List.of());
    }
}
