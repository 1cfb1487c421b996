package dev.sdserve.scheduler;

import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A1111's prompt editing and alternation through the scheduler, on the fake engine (whose conditioning is a hash of
 * the text, so a recorded context names the text it came from): which text conditions every model evaluation, what
 * the text encoding encodes, and what admission counts.
 */
class PromptScheduleServingTest {

    /** The fake engine with every denoise item and every encode batch recorded. */
    private static final class Recording {
        final Harness h = new Harness();
        final FaultyEngine engine = new FaultyEngine(h.engine);
        final List<DenoiseItem> denoised = Collections.synchronizedList(new ArrayList<>());
        final List<List<EncodeItem>> encoded = Collections.synchronizedList(new ArrayList<>());
        final SchedulerService service;

        Recording() {
            engine.duringDenoise = b -> denoised.addAll(b.items());
            engine.encodeFault = items -> {
                encoded.add(List.copyOf(items));
                return null;
            };
            service = new SchedulerService(engine, h.config, h.clock);
            h.service = service;
        }
    }

    private static String textOf(float[] context, ModelInfo info, List<String> candidates) {
        if (context == null) {
            return null;
        }
        for (String t : candidates) {
            if (Arrays.equals(context, FakeEngine.conditioning(info, new EncodeItem(t)))) {
                return t;
            }
        }
        return "?";
    }

    @Test
    void alternationAndEditingConditionEachEvaluationWithItsOwnText() throws Exception {
        Recording r = new Recording();
        try (SchedulerService s = r.service) {
            GenerationRequest req = Harness.req("a [red|blue] ball", 7, 6).withSampler("euler").withGuidance(5.0)
                    .withNegative("[blurry:ugly:2]");
            Job j = s.submit(req, false);
            r.h.runAll();
            assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
            ModelInfo info = r.h.engine.describe(j.request().model());
            List<String> texts = List.of("a red ball", "a blue ball", "blurry", "ugly");
            List<String> conds = new ArrayList<>();
            List<String> unconds = new ArrayList<>();
            for (DenoiseItem it : r.denoised) {
                conds.add(textOf(it.cond(), info, texts));
                unconds.add(textOf(it.uncond(), info, texts));
            }
            // A1111: alternation entries end at steps 1..6 and its call counter starts at 0 (calls 0 and 1 take the
            // first); [blurry:ugly:2] ends "blurry" at step 2, looked up with the counter ≤ 2
            assertEquals(List.of("a red ball", "a red ball", "a blue ball", "a red ball", "a blue ball", "a red ball"),
                    conds);
            assertEquals(List.of("blurry", "blurry", "blurry", "ugly", "ugly", "ugly"), unconds);
            // one text-encoding call, each distinct text once
            assertEquals(1, r.encoded.size());
            List<String> prompts = r.encoded.get(0).stream().map(EncodeItem::prompt).toList();
            assertEquals(List.of("a red ball", "a blue ball", "blurry", "ugly"), prompts);
            // the schedule's texts are encoded as one group (A1111 encodes a schedule as one batch)
            assertEquals(r.encoded.get(0).get(0).group(), r.encoded.get(0).get(1).group());
        }
    }

    @Test
    void aPlainPromptIsEncodedAsWrittenOnce() throws Exception {
        Recording r = new Recording();
        try (SchedulerService s = r.service) {
            Job j = s.submit(Harness.req("a (red:1.2) ball <lora:x:0.5>", 3, 4).withGuidance(5.0), false);
            r.h.runAll();
            assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
            assertEquals(List.of("a (red:1.2) ball <lora:x:0.5>", ""),
                    r.encoded.get(0).stream().map(EncodeItem::prompt).toList());
            ModelInfo info = r.h.engine.describe(j.request().model());
            float[] want = FakeEngine.conditioning(info, new EncodeItem("a (red:1.2) ball <lora:x:0.5>", 1,
                    j.request().loras()));
            for (DenoiseItem it : r.denoised) {
                assertArrayEquals(want, it.cond());
            }
        }
    }

    @Test
    void admissionCountsTheScheduleEncodes() {
        Harness h = new Harness();
        try (SchedulerService s = h.build()) {
            Job plain = s.submit(Harness.req("a ball", 1, 4).withGuidance(5.0), false);
            Job edited = s.submit(Harness.req("a [cat:dog:0.5] on a [red|green|blue] sofa", 1, 8).withGuidance(5.0)
                    .withNegative("[ugly::3]"), false);
            Job padded = s.submit(Harness.req("a ball", 1, 4).withGuidance(5.0).withPadCondUncond(true), false);
            ModelInfo info = h.engine.describe(plain.request().model());
            var sampler = h.config.samplers.find(plain.request().sampler());
            int evals = sampler.evaluations(8);
            assertEquals(2, new PromptConditioning(plain.request(), true, evals).items().size());
            // cat/dog × red/green/blue: 6 distinct texts; negative "ugly", ""; pad: + the empty prompt
            assertEquals(8, new PromptConditioning(edited.request(), true, evals).items().size());
            assertEquals(3, new PromptConditioning(padded.request(), true, evals).items().size());
            assertNotNull(info);
            h.runAll();
            assertEquals(2 + 8 + 3, h.engine.stats().encodeItems.get());
        }
    }
}
