package dev.sdserve.scheduler;

import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.projection.LatentProjection;
import dev.sdserve.engine.projection.PreviewProjections;
import dev.sdserve.engine.projection.ProjectionFitter;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.Mailbox;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ServeException;
import dev.sdserve.job.SloClass;
import dev.sdserve.model.Half;
import dev.sdserve.sampler.SamplerState;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The scheduler's previews (issue 14) on the fake engine: the denoised estimate x̂0 of every image by default (x_t on
 * request), through the model's fitted projection (fitted off the scheduler thread, the SD 1.x factors until then),
 * raw float16 latents with shape and projection, and full previews planned as decodes (batched, counted by admission,
 * skipped under overload).
 */
class PreviewPublishingTest {
    private static GenerationRequest request(int images, int steps, PreviewOptions p) {
        return new GenerationRequest("a red fox", null, null, null, null, null, steps, "euler", null, 7L, null, images,
                p, null, null, null, null, null);
    }

    /** Runs the job to its end; its step events by index. */
    private static TreeMap<Integer, JobEvent.Step> run(Harness h, Job job) {
        Mailbox m = job.watch();
        TreeMap<Integer, JobEvent.Step> steps = new TreeMap<>();
        List<JobEvent> ev = new ArrayList<>(Harness.drain(m));
        while (h.service.runOnce()) {
            ev.addAll(Harness.drain(m));
        }
        ev.addAll(Harness.drain(m));
        for (JobEvent e : ev) {
            if (e instanceof JobEvent.Step s) {
                assertNull(steps.put(s.index(), s), "step " + s.index() + " twice");
            }
        }
        return steps;
    }

    private static float[] half(byte[] data) {
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[data.length / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = Half.toFloat(b.getShort());
        }
        return out;
    }

    @Test
    void denoisedPreviewsAreEachImagesEstimateAndNoisyOnesTheSample() {
        int steps = 5;
        PreviewOptions denoised = new PreviewOptions(1, PreviewOptions.LATENT, 0, PreviewOptions.DENOISED, 0);
        PreviewOptions noisy = new PreviewOptions(1, PreviewOptions.LATENT, 0, PreviewOptions.NOISY, 0);
        Harness h1 = new Harness();
        h1.build();
        TreeMap<Integer, JobEvent.Step> d = run(h1, h1.service.submit(request(2, steps, denoised), false));
        Harness h2 = new Harness();
        h2.build();
        TreeMap<Integer, JobEvent.Step> n = run(h2, h2.service.submit(request(2, steps, noisy), false));
        assertEquals(steps, d.size());
        assertEquals(steps, n.size());

        // Euler's sigmas, read from a sampler of its own
        SamplerState probe = h1.config.samplers.find("euler").start(steps, new float[4], new dev.sdserve.sampler.TorchGenerator(1));
        double[] sigma = new double[steps + 1];
        for (int k = 0; k < steps; k++) {
            sigma[k] = probe.sigma();
            probe.advance(new float[4]);
        }
        for (int k = 1; k <= steps; k++) {
            JobEvent.Step s = d.get(k);
            assertEquals(2, s.previews().size(), "a preview of every image at step " + k);
            for (int img = 0; img < 2; img++) {
                JobEvent.Preview p = s.previews().get(img);
                assertEquals(img, p.image());
                assertEquals("latent", p.format());
                assertEquals(PreviewOptions.DENOISED, p.content());
                JobEvent.LatentInfo li = p.latent();
                assertNotNull(li);
                assertEquals(li.channels() * li.height() * li.width() * 2, p.data().length);
                assertArrayEquals(LatentProjection.SD1_CHEAP.bias(), li.bias(), 0f, "no fit: the SD 1.x factors");
                assertEquals(PreviewOptions.NOISY, n.get(k).previews().get(img).content());
            }
            assertFalse(java.util.Arrays.equals(s.previews().get(0).data(), s.previews().get(1).data()),
                    "two images, two seeds, two previews");
        }
        // Euler: x_{k+1} = x_k + (σ_{k+1} − σ_k)·(x_k − x̂0_k)/σ_k, so x̂0_k = x_k − σ_k·(x_{k+1} − x_k)/(σ_{k+1} − σ_k):
        // the denoised preview of step k from the noisy previews of steps k − 1 and k
        for (int k = 2; k <= steps; k++) {
            for (int img = 0; img < 2; img++) {
                float[] x0 = half(d.get(k).previews().get(img).data());
                float[] before = half(n.get(k - 1).previews().get(img).data());
                float[] after = half(n.get(k).previews().get(img).data());
                double sk = sigma[k - 1], sn = k < steps ? sigma[k] : 0;
                double err = 0, mag = 0;
                for (int i = 0; i < x0.length; i++) {
                    double expect = before[i] - sk * (after[i] - before[i]) / (sn - sk);
                    err += Math.abs(expect - x0[i]);
                    mag += Math.abs(x0[i]);
                }
                assertTrue(err / x0.length < 0.02 * Math.max(1, mag / x0.length),
                        "step " + k + " image " + img + ": x̂0 off by " + err / x0.length + " (mean |x̂0| " + mag / x0.length + ")");
            }
        }
        // the last step: x̂0 of Euler's last evaluation is the final latent, the noisy sample of the same step
        assertArrayEquals(half(n.get(steps).previews().get(1).data()), half(d.get(steps).previews().get(1).data()), 2e-2f);
    }

    @Test
    void previewsUseTheModelsFittedProjectionOnceFittedOffTheSchedulerThread() throws Exception {
        LatentProjection red = new LatentProjection(new float[4][3], new float[]{1, 0, 0}, "test-red");
        AtomicReference<String> fitThread = new AtomicReference<>();
        Harness h = new Harness();
        h.config.previewProjections = new PreviewProjections(null, m -> null, model -> {
            fitThread.set(Thread.currentThread().getName());
            return new ProjectionFitter.Result(red, 0, 0, 1, 1, new LatentShape(4, 1, 1), 1, 1, 1, null, Double.NaN);
        });
        h.build();
        PreviewOptions png = new PreviewOptions(1, "png", 16);
        TreeMap<Integer, JobEvent.Step> first = run(h, h.service.submit(request(1, 3, png), false));
        assertEquals(3, first.size());
        String model = h.service.find(first.firstEntry().getValue().jobId()).orElseThrow().request().model();
        for (int i = 0; i < 200 && !"fitted".equals(h.config.previewProjections.entry(model).origin()); i++) {
            Thread.sleep(10); // the first preview asked for the fit; it runs on its own thread
        }
        assertEquals("fitted", h.config.previewProjections.entry(model).origin());
        assertNotEquals(Thread.currentThread().getName(), fitThread.get());
        assertEquals("sdserve-projection-fit", fitThread.get());

        TreeMap<Integer, JobEvent.Step> second = run(h, h.service.submit(request(2, 3, png), false));
        for (JobEvent.Step s : second.values()) {
            assertEquals(2, s.previews().size());
            for (JobEvent.Preview p : s.previews()) {
                BufferedImage img = ImageIO.read(new ByteArrayInputStream(p.data()));
                assertEquals(0xFF0000, img.getRGB(img.getWidth() / 2, img.getHeight() / 2) & 0xFFFFFF,
                        "the fitted projection's colour at step " + s.index());
            }
        }
        PreviewOptions lat = new PreviewOptions(1, PreviewOptions.LATENT, 0);
        JobEvent.LatentInfo li = run(h, h.service.submit(request(1, 2, lat), false)).get(1).previews().get(0).latent();
        assertEquals("test-red", li.projectionSource());
        assertArrayEquals(new float[]{1, 0, 0}, li.bias(), 0f);
    }

    @Test
    void fullPreviewsAreDecodesBatchedAcrossRequests() throws Exception {
        Harness h = new Harness();
        h.build();
        PreviewOptions full = new PreviewOptions(1, "png", 32, PreviewOptions.DENOISED, 2);
        for (List<JobEvent> ev : twoRequests(h, full, 6)) {
            List<JobEvent.Step> steps = ev.stream().filter(e -> e instanceof JobEvent.Step).map(e -> (JobEvent.Step) e).toList();
            assertEquals(List.of(1, 2, 3, 4, 5, 6), steps.stream().map(JobEvent.Step::index).toList(), "every step, in order");
            for (JobEvent.Step s : steps) {
                boolean expectFull = s.index() == 2 || s.index() == 4; // not at the last step: the final decode follows
                assertFalse(s.previews().isEmpty(), "step " + s.index());
                for (JobEvent.Preview p : s.previews()) {
                    assertEquals(expectFull, p.full(), "step " + s.index());
                    BufferedImage img = ImageIO.read(new ByteArrayInputStream(p.data()));
                    assertEquals(32, Math.max(img.getWidth(), img.getHeight()));
                }
            }
            assertTrue(ev.get(ev.size() - 1) instanceof JobEvent.Completed, "completed after its steps");
        }
        // two full previews of both requests, each pair in one decode call with the other request's, + one final decode
        // (both requests finish at the same step and decode together)
        assertEquals(3, h.service.stats().decodeCalls.get());
    }

    @Test
    void latentFormatSendsFullPreviewsAsPng() throws Exception {
        Harness h = new Harness();
        h.build();
        TreeMap<Integer, JobEvent.Step> st = run(h, h.service.submit(request(1, 4,
                new PreviewOptions(1, PreviewOptions.LATENT, 0, PreviewOptions.DENOISED, 2)), false));
        JobEvent.Preview full = st.get(2).previews().get(0);
        assertTrue(full.full());
        assertEquals("png", full.format());
        assertEquals(64, ImageIO.read(new ByteArrayInputStream(full.data())).getWidth(), "the decode, at image size");
        JobEvent.Preview lat = st.get(3).previews().get(0);
        assertEquals("latent", lat.format());
        assertNotNull(lat.latent());
    }

    @Test
    void fullPreviewsAreCountedByAdmissionAndSkippedFirstUnderOverload() {
        // 1 image, 6 steps: encode 5 + 6 × 42 + decode 20 = 277 ms; five full previews add 5 × 20 ms
        Harness h = new Harness();
        h.build();
        long now = h.clock.currentTimeMillis();
        PreviewOptions every = new PreviewOptions(1, "png", 16, PreviewOptions.DENOISED, 1);
        GenerationRequest tight = request(1, 6, every).withDeadline(SloClass.INTERACTIVE, now + 330, false);
        ServeException e = assertThrows(ServeException.class, () -> h.service.submit(tight, false));
        assertEquals(ServeException.Code.RESOURCE_EXHAUSTED, e.code(), e.getMessage());
        h.service.submit(request(1, 6, new PreviewOptions(1, "png", 16)).withDeadline(SloClass.INTERACTIVE, now + 330, false), false);
        h.runAll();

        // admitted with room for its previews; then the machine falls behind (the clock jumps): the full previews
        // are skipped, each step still arrives with its projected preview, marked dropped
        Harness o = new Harness();
        o.config.dropLateRequests = false;
        o.build();
        List<JobEvent> ev = fallingBehindAfterStepTwo(o, every);
        List<JobEvent.Step> steps = ev.stream().filter(x -> x instanceof JobEvent.Step).map(x -> (JobEvent.Step) x).toList();
        assertEquals(6, steps.size());
        assertTrue(steps.get(0).previews().get(0).full(), "step 1: time to spare, a full preview");
        assertTrue(steps.get(1).previews().get(0).full(), "step 2: a full preview");
        // steps 3 and 4 (step 5's skip and step 6 reach the mailbox in one iteration: it keeps the newer preview)
        for (JobEvent.Step late : steps.subList(2, 4)) {
            assertFalse(late.previews().get(0).full(), "step " + late.index() + ": overloaded, the projection instead");
            assertTrue(late.previewDropped(), "the skipped full preview is marked");
        }
        assertTrue(ev.get(ev.size() - 1) instanceof JobEvent.Completed);
    }

    /** A service whose fake engine has a decoder trunk and whose model's fit has a green readout it prefers. */
    private static Harness decoderHarness() {
        LatentProjection red = new LatentProjection(new float[4][3], new float[]{1, 0, 0}, "test-red");
        LatentProjection green = new LatentProjection(new float[4][3], new float[]{0, 1, 0}, LatentProjection.DECODER);
        Harness h = new Harness();
        h.engine.config().decoderTrunk = true;
        h.config.previewProjections = new PreviewProjections(null, m -> null, model ->
                new ProjectionFitter.Result(red, 20, 40, 1, 1, new LatentShape(4, 1, 1), 1, 1, 1, green, 5));
        h.build();
        Job j = h.service.submit(request(1, 1, PreviewOptions.OFF), false); // which model requests resolve to
        h.runAll();
        assertTrue(h.config.previewProjections.ensure(j.request().model()).decoderPreferred());
        return h;
    }

    private static int centre(JobEvent.Preview p) throws Exception {
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(p.data()));
        return img.getRGB(img.getWidth() / 2, img.getHeight() / 2) & 0xFFFFFF;
    }

    @Test
    void decoderPreviewsAreEngineCallsBatchedAcrossRequestsForEveryImage() throws Exception {
        Harness h = decoderHarness();
        PreviewOptions auto = new PreviewOptions(1, "png", 16);
        for (List<JobEvent> ev : twoRequests(h, auto, 4)) {
            List<JobEvent.Step> steps = ev.stream().filter(e -> e instanceof JobEvent.Step).map(e -> (JobEvent.Step) e).toList();
            assertEquals(List.of(1, 2, 3, 4), steps.stream().map(JobEvent.Step::index).toList(), "every step, in order");
            for (JobEvent.Step s : steps) {
                assertFalse(s.previews().isEmpty(), "step " + s.index());
                assertFalse(s.previewDropped());
                for (JobEvent.Preview p : s.previews()) {
                    assertEquals(0x00FF00, centre(p), "the readout's colour at step " + s.index());
                    assertFalse(p.full(), "a decoder preview is not a VAE decode");
                }
            }
            assertTrue(ev.get(ev.size() - 1) instanceof JobEvent.Completed);
        }
        // both requests at the same step: one trunk call per step with all three images
        assertEquals(List.of(3, 3, 3, 3), h.engine.decoderPreviewBatches);

        // the affine map on request: no engine call, the affine colour
        h.engine.decoderPreviewBatches.clear();
        TreeMap<Integer, JobEvent.Step> affine = run(h, h.service.submit(request(1, 3,
                new PreviewOptions(1, "png", 16, PreviewOptions.DENOISED, 0, PreviewOptions.AFFINE)), false));
        assertEquals(3, affine.size());
        for (JobEvent.Step s : affine.values()) {
            assertEquals(0xFF0000, centre(s.previews().get(0)), "affine at step " + s.index());
        }
        assertTrue(h.engine.decoderPreviewBatches.isEmpty());
        // the latent format sends the latent (and the affine map): no trunk call either
        run(h, h.service.submit(request(1, 2, new PreviewOptions(1, PreviewOptions.LATENT, 0)), false));
        assertTrue(h.engine.decoderPreviewBatches.isEmpty());
    }

    @Test
    void decoderPreviewsAreCountedByAdmissionAndSkippedUnderOverload() throws Exception {
        // 1 image, 6 steps: encode 5 + 6 × 42 + decode 20 = 277 ms; six decoder previews add 6 × 3 ms
        Harness h = decoderHarness();
        long now = h.clock.currentTimeMillis();
        PreviewOptions auto = new PreviewOptions(1, "png", 16);
        PreviewOptions affine = new PreviewOptions(1, "png", 16, PreviewOptions.DENOISED, 0, PreviewOptions.AFFINE);
        double withPreviews = -1, without = -1;
        for (long deadline = 250; deadline <= 400 && (withPreviews < 0 || without < 0); deadline++) {
            if (without < 0 && admitted(h, request(1, 6, affine).withDeadline(SloClass.INTERACTIVE, h.clock.currentTimeMillis() + deadline, false))) {
                without = deadline;
            }
            if (withPreviews < 0 && admitted(h, request(1, 6, auto).withDeadline(SloClass.INTERACTIVE, h.clock.currentTimeMillis() + deadline, false))) {
                withPreviews = deadline;
            }
        }
        assertTrue(without > 0 && withPreviews > 0, without + " / " + withPreviews);
        // the shortest deadline admitted is longer by about the previews' predicted cost (6 × 3 ms)
        assertTrue(withPreviews - without >= 15 && withPreviews - without <= 21, without + " vs " + withPreviews);

        // admitted with room for its previews; then the machine falls behind: the trunk calls are skipped, each step
        // still arrives with its affine preview, marked dropped
        Harness o = decoderHarness();
        o.config.dropLateRequests = false;
        List<JobEvent> ev = fallingBehindAfterStepTwo(o, auto);
        List<JobEvent.Step> steps = ev.stream().filter(x -> x instanceof JobEvent.Step).map(x -> (JobEvent.Step) x).toList();
        assertEquals(6, steps.size());
        assertEquals(0x00FF00, centre(steps.get(0).previews().get(0)), "step 1: time to spare, the readout");
        for (JobEvent.Step late : steps.subList(2, 4)) {
            assertEquals(0xFF0000, centre(late.previews().get(0)), "step " + late.index() + ": overloaded, the affine map");
            assertTrue(late.previewDropped(), "the skipped decoder preview is marked");
        }
        assertTrue(ev.get(ev.size() - 1) instanceof JobEvent.Completed);
    }

    /** Whether the service admits the request now (then runs it to its end, so the next try starts idle). */
    private static boolean admitted(Harness h, GenerationRequest r) {
        try {
            h.service.submit(r, false);
        } catch (ServeException e) {
            assertEquals(ServeException.Code.RESOURCE_EXHAUSTED, e.code(), e.getMessage());
            return false;
        }
        h.runAll();
        return true;
    }

    /**
     * A 6-step request admitted with 2 s to spare; once step 2 is out the clock jumps 1.9 s (the machine fell
     * behind), so the rest runs overloaded. Its events.
     */
    private static List<JobEvent> fallingBehindAfterStepTwo(Harness o, PreviewOptions p) {
        Job j = o.service.submit(request(1, 6, p).withDeadline(SloClass.INTERACTIVE,
                o.clock.currentTimeMillis() + 2000, false), false);
        Mailbox m = j.watch();
        List<JobEvent> ev = new ArrayList<>();
        boolean jumped = false;
        while (o.service.runOnce()) {
            ev.addAll(Harness.drain(m));
            if (!jumped && ev.stream().anyMatch(x -> x instanceof JobEvent.Step s && s.index() == 2)) {
                jumped = true;
                o.clock.advanceMillis(1900);
            }
        }
        ev.addAll(Harness.drain(m));
        return ev;
    }

    /** Two requests (2 images and 1 image, {@code steps} steps each) submitted together and run to their end: each one's events. */
    private static List<List<JobEvent>> twoRequests(Harness h, PreviewOptions p, int steps) {
        Job a = h.service.submit(request(2, steps, p), false);
        Job b = h.service.submit(request(1, steps, p), false);
        Mailbox ma = a.watch(), mb = b.watch();
        List<JobEvent> ea = new ArrayList<>(), eb = new ArrayList<>();
        while (h.service.runOnce()) {
            ea.addAll(Harness.drain(ma));
            eb.addAll(Harness.drain(mb));
        }
        ea.addAll(Harness.drain(ma));
        eb.addAll(Harness.drain(mb));
        return List.of(ea, eb);
    }
}
