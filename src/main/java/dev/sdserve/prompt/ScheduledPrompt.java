package dev.sdserve.prompt;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;

/**
 * A request's prompt over its sampling run, as AUTOMATIC1111 conditions it: extra-network tags dropped, then the
 * schedule ({@link PromptSchedule}) over A1111's step count, then per model evaluation the schedule's text for it.
 *
 * <p>A1111 counts its schedule in calls of its CFG denoiser: {@code steps} for first-order samplers, twice that for
 * second-order ones (Heun: {@code total_steps = 2·steps}), and looks the conditioning up with the number of calls
 * made so far (0, 1, …). {@link #scheduleSteps} maps a sampler's evaluation count to that.
 *
 * @param schedule the texts and their end steps
 * @param group    the texts as A1111 encodes them together (one per schedule entry, in order)
 */
public record ScheduledPrompt(List<PromptSchedule.Entry> schedule, List<String> group) {
    public ScheduledPrompt {
        schedule = List.copyOf(schedule);
        group = List.copyOf(group);
    }

    /** The schedule of a prompt as written (tags included) over {@code scheduleSteps} steps. */
    public static ScheduledPrompt of(String prompt, int scheduleSteps) {
        List<PromptSchedule.Entry> s = PromptSchedule.of(ExtraNetworks.strip(prompt), scheduleSteps);
        List<String> texts = new ArrayList<>();
        s.forEach(e -> texts.add(e.text()));
        return new ScheduledPrompt(s, texts);
    }

    /**
     * A1111's schedule length for a run of {@code steps} steps that makes {@code evaluations} model calls:
     * {@code 2·steps} for a second-order sampler (two calls a step but the last), else {@code steps}.
     */
    public static int scheduleSteps(int steps, int evaluations) {
        return evaluations >= 2 * steps - 1 && steps > 1 ? 2 * steps : steps;
    }

    /** Whether the text changes during the run. */
    public boolean changes() {
        return distinctTexts().size() > 1;
    }

    /** The texts to encode, each once, in order of first use. */
    public List<String> distinctTexts() {
        return List.copyOf(new LinkedHashSet<>(group));
    }

    /** The text for model evaluation {@code evaluation} (0-based). */
    public String textAt(int evaluation) {
        return schedule.get(PromptSchedule.indexAt(schedule, evaluation)).text();
    }
}
