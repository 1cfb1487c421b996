package dev.sdserve.scheduler;

import dev.sdserve.engine.EncodeItem;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.prompt.PromptEncoder;
import dev.sdserve.prompt.ScheduledPrompt;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A request's conditioning over its run, as AUTOMATIC1111 schedules it: what its text encoding encodes (each distinct
 * text of the prompt's schedule once, as one group; the negative prompt's likewise when guided; the empty prompt when
 * {@code pad_cond_uncond} pads) and, per model evaluation, the context of the prompt and of the negative prompt at
 * that evaluation ({@link ScheduledPrompt}: {@code [from:to:when]} editing, {@code [a|b]} alternation).
 *
 * <p>A prompt without a schedule is encoded as written, one item, exactly as before schedules existed. Filled once
 * by the text encoding ({@link #encoded}); read by the planner for every denoise step. Under the scheduler's lock.
 */
final class PromptConditioning {
    private final ScheduledPrompt prompt;
    /** Null without classifier-free guidance. */
    private final ScheduledPrompt negative;
    private final boolean pad;
    private final List<EncodeItem> items = new ArrayList<>();
    private final int promptItems;
    private final int negativeItems;
    private final Map<String, float[]> cond = new HashMap<>();
    private final Map<String, float[]> uncond = new HashMap<>();
    private float[] emptyChunk;

    /**
     * @param evaluations the sampler's model evaluations for the request's steps (a second-order sampler's schedule
     *                    counts twice the steps, as A1111's does)
     */
    PromptConditioning(ResolvedRequest req, boolean guided, int evaluations) {
        int scheduleSteps = ScheduledPrompt.scheduleSteps(req.steps(), evaluations);
        this.prompt = ScheduledPrompt.of(req.prompt(), scheduleSteps);
        this.negative = guided ? ScheduledPrompt.of(req.negativePrompt(), scheduleSteps) : null;
        this.pad = guided && req.padCondUncond();
        promptItems = addItems(req.prompt(), prompt, req, false);
        negativeItems = guided ? addItems(req.negativePrompt(), negative, req, true) : 0;
        if (pad) {
            // A1111 pads with its model's encoding of the empty prompt (no extra networks in it)
            items.add(new EncodeItem("", req.clipSkip(), List.of()));
        }
    }

    private int addItems(String written, ScheduledPrompt s, ResolvedRequest req, boolean isNegative) {
        if (!s.changes()) {
            items.add(new EncodeItem(written, req.clipSkip(), req.loras(), null, isNegative));
            return 1;
        }
        List<String> texts = s.distinctTexts();
        for (String t : texts) {
            items.add(new EncodeItem(t, req.clipSkip(), req.loras(), s.group(), isNegative));
        }
        return texts.size();
    }

    /** The index in {@link #items()} of the negative prompt's first item (SDXL's pooled embedding of that side). */
    int negativeIndex() {
        return promptItems;
    }

    /** What the text encoding encodes for this request, in order: the prompt's, the negative's, the empty prompt. */
    List<EncodeItem> items() {
        return items;
    }

    /** Takes the text encoding's contexts, one per {@link #items()} entry. */
    void encoded(float[][] contexts) {
        if (contexts.length != items.size()) {
            throw new IllegalStateException(contexts.length + " contexts for " + items.size() + " prompts");
        }
        fill(cond, prompt, contexts, 0, promptItems);
        if (negative != null) {
            fill(uncond, negative, contexts, promptItems, negativeItems);
        }
        if (pad) {
            emptyChunk = contexts[promptItems + negativeItems];
        }
    }

    private static void fill(Map<String, float[]> into, ScheduledPrompt s, float[][] contexts, int from, int n) {
        if (!s.changes()) {
            into.put(s.textAt(0), contexts[from]);
            return;
        }
        List<String> texts = s.distinctTexts();
        for (int i = 0; i < n; i++) {
            into.put(texts.get(i), contexts[from + i]);
        }
    }

    /** Whether the conditioning changes during the run (editing or alternation in either prompt). */
    boolean scheduled() {
        return prompt.changes() || negative != null && negative.changes();
    }

    /** The prompt's context at model evaluation {@code evaluation} (0-based), padded as the request asks. */
    float[] cond(int evaluation) {
        return pair(evaluation)[0];
    }

    /** The negative prompt's context at {@code evaluation}; null without guidance. */
    float[] uncond(int evaluation) {
        return negative == null ? null : pair(evaluation)[1];
    }

    /** The texts conditioning evaluation {@code evaluation}: the prompt's, the negative's (null unguided). */
    String[] textsAt(int evaluation) {
        return new String[]{prompt.textAt(evaluation), negative == null ? null : negative.textAt(evaluation)};
    }

    private float[][] pair(int evaluation) {
        float[] c = cond.get(prompt.textAt(evaluation));
        float[] u = negative == null ? null : uncond.get(negative.textAt(evaluation));
        if (c == null || negative != null && u == null) {
            throw new IllegalStateException("no conditioning for evaluation " + evaluation + " (not encoded yet)");
        }
        if (pad && c.length != u.length) {
            return PromptEncoder.padPair(c, u, emptyChunk);
        }
        return new float[][]{c, u};
    }
}
