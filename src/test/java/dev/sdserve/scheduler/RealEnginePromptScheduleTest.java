package dev.sdserve.scheduler;

import dev.sdserve.clock.Clock;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.sampler.NoiseSource;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SamplerState;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

import static dev.sdserve.testutil.Floats.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Scheduled prompts and long prompts through the scheduler on the real engine and the tiny golden model: a prompt
 * edited at step k gives the latents of a two-phase run done by hand (prompt A's context for the first k model
 * evaluations, then B's, one sampler state throughout); pad_cond_uncond gives the run with the shorter context padded
 * by empty-prompt chunks; requests with 77- and 154-token contexts in one batch give their solo results.
 */
class RealEnginePromptScheduleTest {
    private static TfEngine engine;
    private static FaultyEngine recording;
    /** Final latents of every decode call, in order. */
    private static final List<float[]> decoded = Collections.synchronizedList(new ArrayList<>());
    /** The image size the last served request resolved to. */
    private static int width, height;
    /** The last served request's image. */
    private static float[] lastImage;

    @BeforeAll
    static void load() throws Exception {
        Path file = Shared.golden("sd15-tiny").resolve("tiny-sd15.safetensors");
        ModelConfig cfg;
        try (Checkpoint c = Checkpoint.open(file)) {
            cfg = c.config();
        }
        engine = new TfEngine(Map.of("tiny", file), p -> cfg, ClipTokenizer.get());
        engine.ensureLoaded("tiny");
        recording = new FaultyEngine(engine);
        recording.decodeFault = latents -> {
            decoded.addAll(latents);
            return null;
        };
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    private static GenerationRequest req(String prompt, String negative, String sampler, int steps, long seed) {
        return GenerationRequest.ofPrompt(prompt).withNegative(negative).withModel("tiny").withSampler(sampler)
                .withSteps(steps).withGuidance(5.0).withSeed(seed).withPreview(PreviewOptions.OFF);
    }

    private static ServiceConfig config(Map<Job, List<float[]>> images) {
        ServiceConfig sc = new ServiceConfig();
        sc.publishExecutor = Runnable::run;
        sc.imageListener = images::put;
        sc.admission.defaultModel = "tiny";
        return sc;
    }

    /** Runs one request alone through the scheduler; its final latents. */
    private static float[] served(GenerationRequest r) {
        Map<Job, List<float[]>> images = new IdentityHashMap<>();
        try (SchedulerService s = new SchedulerService(recording, config(images), Clock.system())) {
            decoded.clear();
            Job j = s.submit(r, false);
            while (s.runOnce()) {
                // to the end
            }
            assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
            assertEquals(1, decoded.size());
            lastImage = images.get(j).get(0);
            width = j.request().width();
            height = j.request().height();
            return decoded.get(0);
        }
    }

    /**
     * The run by hand: the engine's contexts for {@code phases} (each: a prompt's context, the negative's, and for how
     * many model evaluations), one sampler state from the request's seed.
     */
    private static float[] byHand(GenerationRequest r, List<float[][]> phases, int[] evaluations) {
        ModelInfo info = engine.describe("tiny");
        ServiceConfig sc = new ServiceConfig();
        Sampler sampler = sc.samplers.find(r.sampler());
        LatentShape shape = LatentShape.forImage(info, width, height);
        NoiseSource noise = sc.noise.apply(r.seed());
        float[] init = new float[shape.size()];
        noise.fill(init);
        SamplerState st = sampler.start(r.steps(), init, noise);
        int phase = 0;
        int left = evaluations[0];
        while (!st.done()) {
            while (left == 0) {
                left = evaluations[++phase];
            }
            float[][] c = phases.get(phase);
            DenoiseItem it = new DenoiseItem(st.modelInput(), st.timestep(), c[0], c[1], r.guidance(), List.of());
            st.advance(engine.denoise(new DenoiseBatch("tiny", shape, List.of(it)))[0]);
            left--;
        }
        return st.latents();
    }

    /** One phase: a prompt's and a negative prompt's context. */
    private static List<float[][]> one(float[] cond, float[] uncond) {
        List<float[][]> l = new ArrayList<>();
        l.add(new float[][]{cond, uncond});
        return l;
    }

    @Test
    void aPromptEditedAtStepKEqualsTheTwoPhaseRunByHand() {
        String a = "a big red circle";
        String b = "a big blue square";
        for (String sampler : List.of("euler", "dpmpp_2m")) {
            GenerationRequest r = req("[" + a + ":" + b + ":0.5]", "", sampler, 6, 11);
            float[] got = served(r);
            // A1111: 0.5 of 6 steps ends A's entry at step 3; its call counter (0, 1, …) takes A while ≤ 3: 4 calls
            List<String> group = List.of(a, b);
            float[][] ctx = engine.encode("tiny", List.of(new EncodeItem(a, 1, List.of(), group),
                    new EncodeItem(b, 1, List.of(), group), new EncodeItem("")));
            float[] want = byHand(r, List.of(new float[][]{ctx[0], ctx[2]}, new float[][]{ctx[1], ctx[2]}),
                    new int[]{4, 2});
            double d = maxAbsDiff(want, got);
            assertTrue(d < 1e-5, sampler + ": scheduled run differs from the two-phase run by " + d);
            // and the edit matters: the run with A throughout is elsewhere
            float[] onlyA = byHand(r, one(ctx[0], ctx[2]), new int[]{6});
            assertTrue(maxAbsDiff(onlyA, got) > 1e-3, sampler + ": editing changed nothing");
            System.out.printf("prompt edit at step 4 of 6 (%s): max |Δ| vs two-phase run %.2e, vs no edit %.3f%n",
                    sampler, d, maxAbsDiff(onlyA, got));
        }
    }

    /** Twenty-odd distinct words: about 100 tokens, two chunks. */
    private static final String LONG = "a big red circle in the center, purple background, soft light, tiny dots, "
            + "thin lines, small green triangle at the top left, a yellow star, blue stripes, orange glow, "
            + "grey frame, white border, dark corners, rough paper texture, ink sketch, pencil shading, watercolor "
            + "wash, bright highlights, deep shadows, sharp edges, calm mood, early morning, cold colors, film grain";

    @Test
    void padCondUncondPadsTheShorterHalfWithEmptyChunks() {
        GenerationRequest r = req(LONG, "blurry", "euler", 4, 5);
        float[] own = served(r);
        float[] padded = served(r.withPadCondUncond(true));
        // encoded as the scheduler encodes them (one call each: a text encoder's batch size moves its last bits)
        float[][] ctx = engine.encode("tiny", List.of(new EncodeItem(LONG), new EncodeItem("blurry"),
                new EncodeItem("", 1, List.of())));
        float[][] ownCtx = engine.encode("tiny", List.of(new EncodeItem(LONG), new EncodeItem("blurry")));
        assertEquals(2 * ctx[2].length, ctx[0].length, "the long prompt is two chunks");
        float[] uncondPadded = new float[ctx[0].length];
        System.arraycopy(ctx[1], 0, uncondPadded, 0, ctx[1].length);
        System.arraycopy(ctx[2], 0, uncondPadded, ctx[1].length, ctx[2].length);
        float[] wantPadded = byHand(r, one(ctx[0], uncondPadded), new int[]{4});
        float[] wantOwn = byHand(r, one(ownCtx[0], ownCtx[1]), new int[]{4});
        assertTrue(maxAbsDiff(wantPadded, padded) < 1e-5, "padded: " + maxAbsDiff(wantPadded, padded));
        assertTrue(maxAbsDiff(wantOwn, own) < 1e-5, "own length: " + maxAbsDiff(wantOwn, own));
        assertTrue(maxAbsDiff(own, padded) > 1e-4, "padding changed nothing");
        System.out.printf("pad_cond_uncond: padded vs own-length latents differ by %.4f%n", maxAbsDiff(own, padded));
    }

    @Test
    void requestsWithDifferentContextLengthsShareBatchesAndMatchTheirSoloRuns() {
        List<GenerationRequest> reqs = List.of(
                req("a small blue square", "", "euler", 5, 1),                     // 77 / 77
                req(LONG, "", "dpmpp_2m", 5, 2),                                    // 154 / 77
                req("[a red circle:" + LONG + ":2]", "blurry BREAK ugly", "euler", 5, 3), // 77 → 154 / 154
                req("a green (triangle:1.3)", LONG, "euler", 5, 4));                // 77 / 154
        List<float[]> solo = new ArrayList<>();
        List<float[]> soloImages = new ArrayList<>();
        for (GenerationRequest r : reqs) {
            solo.add(served(r));
            soloImages.add(lastImage);
        }
        Map<Job, List<float[]>> images = new IdentityHashMap<>();
        long calls0 = engine.stats().denoiseCalls.get();
        long items0 = engine.stats().denoiseItems.get();
        try (SchedulerService s = new SchedulerService(recording, config(images), Clock.system())) {
            List<Job> jobs = new ArrayList<>();
            decoded.clear();
            for (GenerationRequest r : reqs) {
                jobs.add(s.submit(r, false));
            }
            while (s.runOnce()) {
                // to the end
            }
            double meanBatch = (engine.stats().denoiseItems.get() - items0)
                    / (double) (engine.stats().denoiseCalls.get() - calls0);
            assertTrue(meanBatch > 1.5, "mean batch " + meanBatch);
            double worstImage = 0;
            double worstLatent = 0;
            for (int i = 0; i < reqs.size(); i++) {
                Job j = jobs.get(i);
                assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
                double d = maxAbsDiff(soloImages.get(i), images.get(j).get(0));
                worstImage = Math.max(worstImage, d);
                assertTrue(d < RealEngineServing.BATCHED_VS_SOLO, reqs.get(i).prompt() + ": batched image differs from solo by " + d);
                // the final latents too, relative to their range (decode order may differ: the solo run's nearest)
                double best = Double.MAX_VALUE;
                for (float[] l : decoded) {
                    best = Math.min(best, maxAbsDiff(solo.get(i), l) / maxAbs(solo.get(i)));
                }
                worstLatent = Math.max(worstLatent, best);
                assertTrue(best < RealEngineServing.BATCHED_VS_SOLO, reqs.get(i).prompt() + ": batched latents differ from solo by " + best);
            }
            System.out.printf("77/154-token contexts and a schedule in one batch: mean batch %.2f jobs, worst |Δ| vs"
                    + " solo: image %.2e, latents %.2e of their range%n", meanBatch, worstImage, worstLatent);
        }
    }

    private static double maxAbs(float[] a) {
        double m = 0;
        for (float x : a) {
            m = Math.max(m, Math.abs(x));
        }
        return m;
    }
}
