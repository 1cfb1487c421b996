package dev.sdserve.scheduler;

import dev.sdserve.clock.Clock;
import dev.sdserve.engine.Conditioning;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.Stage;
import dev.sdserve.job.ServeException;
import dev.sdserve.sampler.NoiseSource;
import dev.sdserve.sampler.SamplerState;
import dev.sdserve.scheduler.StepPlan.DecodeMember;
import dev.sdserve.scheduler.StepPlan.DenoiseMember;
import dev.sdserve.scheduler.StepPlan.EncodeMember;
import dev.sdserve.scheduler.StepResult.EngineCall;
import dev.sdserve.scheduler.StepResult.Outcome;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntConsumer;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.IntStream;

/**
 * Runs a {@link StepPlan} on the {@link Engine} and answers with a {@link StepResult}; decides nothing. Around the
 * engine call it does the per-image sampler maths (initial noise and sampler states after text encoding; model
 * inputs and updates around a denoising step), spread over cores for large batches.
 *
 * <p>Failure isolation: an engine failure (a runtime exception, or an OutOfMemoryError: a batch too large for the
 * device) splits the batch in halves, down to single requests; a single request that fails is retried once before
 * it fails, so a transient fault costs a step and a poisonous request fails alone. Engine calls happen before any
 * state is advanced, so a retry repeats the same step. Runs on the scheduler thread, outside the scheduler's lock.
 */
final class StepExecutor {
    private static final Logger LOG = Logger.getLogger(StepExecutor.class.getName());

    private final Engine engine;
    private final ServiceConfig config;
    private final Clock clock;
    private final SchedulerStats stats;

    StepExecutor(Engine engine, ServiceConfig config, Clock clock, SchedulerStats stats) {
        this.engine = engine;
        this.config = config;
        this.clock = clock;
        this.stats = stats;
    }

    StepResult execute(StepPlan plan) {
        Outcome[] out = new Outcome[plan.members().size()];
        List<EngineCall> calls = new ArrayList<>();
        List<Integer> all = new ArrayList<>(out.length);
        for (int i = 0; i < out.length; i++) {
            all.add(i);
        }
        switch (plan.stage()) {
            case ENCODE -> isolated(all, ix -> encode(plan, ix, out, calls), "text encoding", out);
            case DENOISE -> isolated(all, ix -> denoise(plan, ix, out, calls), "a denoising step", out);
            case DECODE -> isolated(all, ix -> decode(plan, ix, out, calls), "decoding", out);
        }
        return new StepResult(Arrays.asList(out), calls);
    }

    /** One engine call for some of the plan's members (their indices). */
    private interface Call {
        void run(List<Integer> members);
    }

    private void isolated(List<Integer> members, Call call, String what, Outcome[] out) {
        isolated(members, call, what, false, out);
    }

    private void isolated(List<Integer> members, Call call, String what, boolean retried, Outcome[] out) {
        try {
            call.run(members);
        } catch (RuntimeException | OutOfMemoryError e) {
            if (members.size() > 1 && config.splitFailedBatches) {
                stats.splitRetries.incrementAndGet();
                LOG.log(Level.WARNING, what + " of " + members.size() + " jobs failed (" + e + "); retrying split in halves");
                int h = members.size() / 2;
                isolated(new ArrayList<>(members.subList(0, h)), call, what, false, out);
                isolated(new ArrayList<>(members.subList(h, members.size())), call, what, false, out);
            } else if (!retried && config.splitFailedBatches) {
                stats.splitRetries.incrementAndGet();
                LOG.log(Level.WARNING, what + " of " + members.size() + " job(s) failed (" + e + "); retrying once");
                isolated(members, call, what, true, out);
            } else {
                LOG.log(Level.WARNING, what + " failed for " + members.size() + " job(s)", e);
                // a ServeException from the engine (unknown LoRA, LoRA for another architecture, model that cannot
                // be loaded) keeps its code and message
                ServeException error = e instanceof ServeException se ? se
                        : new ServeException(ServeException.Code.INTERNAL, "the engine failed during " + what + ": " + e.getMessage());
                for (int i : members) {
                    out[i] = Outcome.failed(error);
                }
            }
        }
    }

    private void encode(StepPlan plan, List<Integer> ix, Outcome[] out, List<EngineCall> calls) {
        List<EncodeMember> ms = new ArrayList<>(ix.size());
        List<EncodeItem> items = new ArrayList<>();
        for (int i : ix) {
            EncodeMember m = (EncodeMember) plan.members().get(i);
            ms.add(m);
            items.addAll(m.prompts());
        }
        long t0 = clock.nanoTime();
        long r0 = config.statsTimer.getAsLong();
        List<Conditioning> encoded = engine.encodeConditioning(plan.model(), items);
        float[][] conds = encoded.stream().map(Conditioning::context).toArray(float[][]::new);
        float[][] pooled = pooled(encoded);
        stats.engineNanos.addAndGet(config.statsTimer.getAsLong() - r0);
        double millis = clock.millisSince(t0);
        calls.add(new EngineCall(Stage.ENCODE, plan.model(), null, items.size(), millis, clock.nanoTime()));
        stats.encodeCalls.incrementAndGet();
        if (conds.length != items.size()) {
            throw new IllegalStateException("engine returned " + conds.length + " conditionings for " + items.size() + " prompts");
        }
        long s0 = config.statsTimer.getAsLong();
        List<SamplerState[]> states = new ArrayList<>(ms.size());
        for (EncodeMember m : ms) {
            SamplerState[] st = new SamplerState[m.seeds().size()];
            for (int i = 0; i < st.length; i++) {
                NoiseSource noise = config.noise.apply(m.seeds().get(i));
                float[] init = new float[m.shape().size()];
                noise.fill(init);
                st[i] = m.sampler().start(m.steps(), init, noise);
            }
            states.add(st);
        }
        stats.samplerNanos.addAndGet(config.statsTimer.getAsLong() - s0);
        long now = clock.nanoTime();
        int k = 0;
        for (int j = 0; j < ms.size(); j++) {
            int n = ms.get(j).prompts().size();
            out[ix.get(j)] = new Outcome(null, millis, now, Arrays.copyOfRange(conds, k, k + n), states.get(j), null,
                    pooled == null ? null : Arrays.copyOfRange(pooled, k, k + n));
            k += n;
        }
    }

    private void denoise(StepPlan plan, List<Integer> ix, Outcome[] out, List<EngineCall> calls) {
        long s0 = config.statsTimer.getAsLong();
        List<SamplerState> flat = new ArrayList<>();
        List<StepPlan.StepOptions> options = new ArrayList<>();
        for (int i : ix) {
            DenoiseMember m = (DenoiseMember) plan.members().get(i);
            for (SamplerState s : m.states()) {
                flat.add(s);
                options.add(m.options());
            }
        }
        // Sampler maths is per image and independent: spread it over cores for large batches.
        float[][] inputs = new float[flat.size()][];
        forEachImage(flat.size(), i -> inputs[i] = flat.get(i).modelInput());
        List<DenoiseItem> items = new ArrayList<>(flat.size());
        for (int i = 0; i < flat.size(); i++) {
            StepPlan.StepOptions o = options.get(i);
            items.add(new DenoiseItem(inputs[i], flat.get(i).timestep(), o.cond(), o.uncond(), o.guidance(), o.loras()));
        }
        addConditioning(items, options);
        stats.samplerNanos.addAndGet(config.statsTimer.getAsLong() - s0);
        DenoiseBatch batch = new DenoiseBatch(plan.model(), plan.shape(), items);
        long t0 = clock.nanoTime();
        long r0 = config.statsTimer.getAsLong();
        float[][] eps = engine.denoise(batch);
        stats.engineNanos.addAndGet(config.statsTimer.getAsLong() - r0);
        double millis = clock.millisSince(t0);
        calls.add(new EngineCall(Stage.DENOISE, plan.model(), plan.shape(), batch.unetSamples(), millis, clock.nanoTime()));
        stats.denoiseCalls.incrementAndGet();
        stats.denoiseJobs.addAndGet(ix.size());
        stats.denoiseLatents.addAndGet(batch.unetSamples());
        if (eps.length != items.size()) {
            throw new IllegalStateException("engine returned " + eps.length + " predictions for " + items.size() + " samples");
        }
        long s1 = config.statsTimer.getAsLong();
        forEachImage(flat.size(), i -> flat.get(i).advance(eps[i]));
        stats.samplerNanos.addAndGet(config.statsTimer.getAsLong() - s1);
        long now = clock.nanoTime();
        for (int i : ix) {
            out[i] = new Outcome(null, millis, now, null, null, null);
        }
    }

    private void decode(StepPlan plan, List<Integer> ix, Outcome[] out, List<EngineCall> calls) {
        List<float[]> latents = new ArrayList<>();
        for (int i : ix) {
            latents.addAll(((DecodeMember) plan.members().get(i)).latents());
        }
        long t0 = clock.nanoTime();
        long r0 = config.statsTimer.getAsLong();
        float[][] images = engine.decode(plan.model(), plan.shape(), latents);
        stats.engineNanos.addAndGet(config.statsTimer.getAsLong() - r0);
        double millis = clock.millisSince(t0);
        calls.add(new EngineCall(Stage.DECODE, plan.model(), plan.shape(), latents.size(), millis, clock.nanoTime()));
        stats.decodeCalls.incrementAndGet();
        if (images.length != latents.size()) {
            throw new IllegalStateException("engine returned " + images.length + " images for " + latents.size() + " latents");
        }
        long now = clock.nanoTime();
        int k = 0;
        for (int i : ix) {
            int n = ((DecodeMember) plan.members().get(i)).latents().size();
            out[i] = new Outcome(null, millis, now, null, null, List.of(Arrays.copyOfRange(images, k, k + n)));
            k += n;
        }
    }

    /** The pooled embeddings of an encode call, one per item; null when no item has one (SD 1.x / 2.x). */
    private static float[][] pooled(List<Conditioning> encoded) {
        if (encoded.stream().allMatch(c -> c.pooled() == null)) {
            return null;
        }
        return encoded.stream().map(Conditioning::pooled).toArray(float[][]::new);
    }

    /** Gives each item its step options' added conditioning (SDXL's pooled embedding and size, both sides). */
    private static void addConditioning(List<DenoiseItem> items, List<StepPlan.StepOptions> options) {
        for (int i = 0; i < items.size(); i++) {
            StepPlan.StepOptions o = options.get(i);
            if (o.added() != null) {
                DenoiseItem it = items.get(i);
                items.set(i, new DenoiseItem(it.latentInput(), it.timestep(), it.cond(), it.uncond(), it.guidance(),
                        it.loras(), o.added(), o.addedUncond(), it.extraChannels()));
            }
        }
    }

    private void forEachImage(int n, IntConsumer body) {
        if (n >= config.parallelSamplerImages && config.parallelSamplerImages > 0) {
            IntStream.range(0, n).parallel().forEach(body);
        } else {
            for (int i = 0; i < n; i++) {
                body.accept(i);
            }
        }
    }
}
