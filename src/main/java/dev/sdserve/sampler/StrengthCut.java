package dev.sdserve.sampler;

/**
 * Where a trajectory of {@code steps} inference steps starts at a denoising strength, as diffusers' img2img and
 * inpainting pipelines cut the schedule ({@code get_timesteps}): {@code init_timestep = min(int(steps · strength),
 * steps)} steps are kept, the first {@code t_start = steps − init_timestep} are skipped, and the scheduler begins at
 * plan index {@code t_start · order} (Heun's order is 2: it has two evaluations per step).
 *
 * @param steps          the requested inference steps (the schedule is made for all of them)
 * @param strength       the denoising strength, in (0, 1]
 * @param keptSteps      steps that run (diffusers' {@code init_timestep})
 * @param beginIndex     the plan index of the first evaluation (diffusers' {@code begin_index})
 * @param evaluations    model evaluations that run
 * @param firstTimestep  the timestep of the first evaluation (the one the image latent is noised to)
 */
public record StrengthCut(int steps, double strength, int keptSteps, int beginIndex, int evaluations, double firstTimestep) {

    /** The fraction of the schedule skipped, for messages: t_start = steps − keptSteps. */
    public int skippedSteps() {
        return steps - keptSteps;
    }
}
