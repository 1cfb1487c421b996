package dev.sdserve.scheduler;

import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.Stage;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.image.ImageDecoding;
import dev.sdserve.image.ImageInputs;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.ImageInput;
import dev.sdserve.job.ImageOptions;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.PreparedImage;
import dev.sdserve.job.ServeException;
import dev.sdserve.sampler.ImageDraws;
import dev.sdserve.sampler.ImageInit;
import dev.sdserve.sampler.LibrarySamplers;
import dev.sdserve.sampler.SamplerState;
import dev.sdserve.sampler.TorchGenerator;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * img2img and inpainting through admission and the scheduler on the fake engine (simulated clock): the image-encode
 * stage, fewer steps at a strength, shared UNet batches with txt2img, the result against a hand computation from
 * the fake engine's reference functions, 9-channel extra inputs, the overlay, and admission's refusals by field.
 */
class ImageServingTest {

    /** A 64×48 picture: a left-to-right red ramp over blue, green rows. */
    static byte[] png(int w, int h, java.util.function.IntBinaryOperator rgb) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                img.setRGB(x, y, rgb.applyAsInt(x, y));
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            ImageIO.write(img, "png", out);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return out.toByteArray();
    }

    static byte[] picture(int w, int h) {
        return png(w, h, (x, y) -> (x * 255 / (w - 1)) << 16 | (y % 2 == 0 ? 0x40 : 0x90) << 8 | 0xc0);
    }

    /** White (repaint) inside the square [x0, x1) × [y0, y1), black elsewhere. */
    static byte[] squareMask(int w, int h, int x0, int y0, int x1, int y1) {
        return png(w, h, (x, y) -> x >= x0 && x < x1 && y >= y0 && y < y1 ? 0xffffff : 0);
    }

    static ImageInput img2img(byte[] init, double strength) {
        return new ImageInput(init, null, strength, null, null, null, null, null, null);
    }

    static ImageInput inpaint(byte[] init, byte[] mask, double strength, int blur) {
        return new ImageInput(init, mask, strength, null, blur, null, null, null, null);
    }

    private final Harness h = new Harness();
    private final Map<Job, List<float[]>> images = new IdentityHashMap<>();

    private SchedulerService build() {
        h.config.imageListener = images::put;
        return h.build();
    }

    private static GenerationRequest req(String prompt, long seed, int steps) {
        return Harness.req(prompt, seed, steps).withSampler("euler");
    }

    @Test
    void img2imgAndTxt2imgShareUnetBatchesAndImg2imgRunsTheStrengthsSteps() {
        SchedulerService s = build();
        Job txt = s.submit(req("a lighthouse", 1, 10), false);
        Job img = s.submit(req("a lighthouse at dusk", 2, 10).withImage(img2img(picture(64, 64), 0.5)), false);
        h.runAll();
        Harness.completed(txt);
        Harness.completed(img);
        assertEquals(1, h.engine.stats().imageEncodeCalls.get());
        assertEquals(1, h.engine.stats().imageEncodeItems.get(), "img2img encodes its init image once per image");
        assertEquals(5, img.lastStep().total(), "strength 0.5 of 10 euler steps keeps 5 (diffusers' get_timesteps)");
        assertEquals(5, img.lastStep().index());
        // 10 + 5 evaluations; sharing means fewer UNet calls than that
        long calls = h.engine.stats().denoiseCalls.get();
        assertEquals(10, calls, "the 5 img2img steps ran inside the txt2img job's 10 calls");
        assertEquals(15, h.engine.stats().denoiseItems.get());
        assertFalse(s.costModel().measurements("embedded", Stage.IMAGE_ENCODE, new LatentShape(4, 8, 8)).isEmpty(),
                "the image-encode stage's cost is measured");
    }

    @Test
    void img2imgImageEqualsTheHandComputation() {
        SchedulerService s = build();
        byte[] init = picture(84, 64); // no size given: 80×64 from the image (rounded down to a multiple of 8)
        double strength = 0.6;
        Job j = s.submit(req("a red barn", 7, 8).withGuidance(5.0).withImage(img2img(init, strength)), false);
        h.runAll();
        Harness.completed(j);
        assertEquals(80, j.request().width());
        assertEquals(64, j.request().height());
        float[] got = images.get(j).get(0);

        ModelInfo info = h.engine.describe("embedded");
        LatentShape shape = new LatentShape(4, 8, 10);
        PreparedImage p = ImageInputs.prepare(ImageDecoding.decode(init, 1 << 20), null, 80, 64, 8, ImageOptions.DEFAULTS);
        TorchGenerator g = new TorchGenerator(7);
        ImageDraws d = ImageDraws.img2img(g, shape.size());
        float[] latent = FakeEngine.latentOf(info, shape, p.pixels(), d.imagePosterior());
        SamplerState st = new LibrarySamplers().find("euler").start(8, ImageInit.img2img(latent, d.latentNoise(), strength), g);
        float[] cond = FakeEngine.conditioning(info, new EncodeItem("a red barn", 1, List.of()));
        float[] uncond = FakeEngine.conditioning(info, new EncodeItem("", 1, List.of()));
        int evals = 0;
        while (!st.done()) {
            st.advance(FakeEngine.eps(new DenoiseItem(st.modelInput().clone(), st.timestep(), cond, uncond, 5.0, List.of())));
            evals++;
        }
        assertEquals(4, evals, "int(8 · 0.6) = 4 steps kept");
        assertArrayEquals(FakeEngine.image(info, shape, st.latents()), got, 0f);
    }

    @Test
    void inpaintingOnANormalModelKeepsTheUnmaskedPixelsAndRepaintsTheSquare() {
        SchedulerService s = build();
        byte[] init = picture(64, 64);
        byte[] mask = squareMask(64, 64, 16, 16, 48, 48);
        Job j = s.submit(req("a red circle", 3, 6).withImage(inpaint(init, mask, 1.0, 0)), false);
        h.runAll();
        Harness.completed(j);
        float[] got = images.get(j).get(0);
        float[] orig = ImageDecoding.decode(init, 1 << 20).toRgb(0xffffff).toFloats();
        double outside = 0, inside = 0;
        for (int y = 0; y < 64; y++) {
            for (int x = 0; x < 64; x++) {
                boolean in = x >= 16 && x < 48 && y >= 16 && y < 48;
                for (int c = 0; c < 3; c++) {
                    double e = Math.abs(got[(y * 64 + x) * 3 + c] - orig[(y * 64 + x) * 3 + c]);
                    if (in) {
                        inside = Math.max(inside, e);
                    } else {
                        outside = Math.max(outside, e);
                    }
                }
            }
        }
        assertEquals(0, outside, 1e-6, "A1111's overlay pastes the original back outside the (unblurred) mask");
        assertTrue(inside > 0.05, "the masked square is repainted (largest change " + inside + ")");
        assertEquals(1, h.engine.stats().imageEncodeItems.get(), "a 4-channel UNet encodes the init image only");
    }

    @Test
    void nineChannelModelGetsMaskAndMaskedImageLatentAsExtraChannels() {
        h.engine.config().models.put("inpaint", new ModelInfo("inpaint", 4, 8, 8, 16, 0.18215, "fake-sd1", 64, 9));
        SchedulerService s = build();
        byte[] init = picture(64, 64);
        Job full = s.submit(req("a red circle", 3, 6).withModel("inpaint")
                .withImage(inpaint(init, squareMask(64, 64, 0, 0, 32, 64), 1.0, 4)), false);
        Job half = s.submit(req("a red circle", 4, 6).withModel("inpaint")
                .withImage(inpaint(init, squareMask(64, 64, 0, 0, 32, 64), 0.5, 4)), false);
        h.runAll();
        Harness.completed(full);
        Harness.completed(half);
        // strength 1: the masked image only; 0.5: the init image and the masked image (the fake engine refuses a
        // 9-channel sample without its 5 extra channels, so completing proves they reached the UNet)
        assertEquals(3, h.engine.stats().imageEncodeItems.get());
        ServeException e = assertThrows(ServeException.class,
                () -> s.submit(req("x", 1, 4).withModel("inpaint").withImage(img2img(init, 0.5)), false));
        assertEquals("mask_image", e.field());
        e = assertThrows(ServeException.class, () -> s.submit(req("x", 1, 4).withModel("inpaint"), false));
        assertEquals("mask_image", e.field());
    }

    @Test
    void admissionRefusesBadImagesNamingTheField() {
        SchedulerService s = build();
        byte[] init = picture(64, 64);
        List<Object[]> cases = new ArrayList<>();
        cases.add(new Object[]{img2img("not an image".getBytes(), 0.5), "init_image"});
        cases.add(new Object[]{img2img(init, 0.0), "strength"});
        cases.add(new Object[]{img2img(init, 1.5), "strength"});
        cases.add(new Object[]{img2img(init, Double.NaN), "strength"});
        cases.add(new Object[]{img2img(init, 0.01), "strength"}); // keeps no step of 8
        cases.add(new Object[]{inpaint(init, squareMask(32, 64, 0, 0, 8, 8), 0.5, 4), "mask_image"});
        cases.add(new Object[]{inpaint(init, "no png".getBytes(), 0.5, 4), "mask_image"});
        cases.add(new Object[]{inpaint(init, squareMask(64, 64, 0, 0, 8, 8), 0.5, 65), "mask_blur"});
        cases.add(new Object[]{new ImageInput(init, null, 0.5, 3, null, null, null, null, null), "resize_mode"});
        cases.add(new Object[]{new ImageInput(init, squareMask(64, 64, 0, 0, 8, 8), 0.5, null, null, 4, null, null, null), "inpainting_fill"});
        cases.add(new Object[]{new ImageInput(init, squareMask(64, 64, 0, 0, 8, 8), 0.5, null, null, null, null, true, null), "inpaint_full_res"});
        cases.add(new Object[]{new ImageInput(null, squareMask(64, 64, 0, 0, 8, 8), null, null, null, null, null, null, null), "init_image"});
        cases.add(new Object[]{new ImageInput(null, null, 0.5, null, null, null, null, null, null), "strength"});
        cases.add(new Object[]{img2img(picture(40, 40), 0.5), "init_image"}); // size from the image below 64
        for (Object[] c : cases) {
            ServeException e = assertThrows(ServeException.class,
                    () -> s.submit(req("x", 1, 8).withImage((ImageInput) c[0]), false), () -> "case " + c[1]);
            assertEquals(ServeException.Code.INVALID_ARGUMENT, e.code(), e.getMessage());
            assertEquals(c[1], e.field(), e.getMessage());
        }
        h.config.admission.maxInitImageBytes = 100;
        ServeException e = assertThrows(ServeException.class, () -> s.submit(req("x", 1, 8).withImage(img2img(init, 0.5)), false));
        assertEquals("init_image", e.field(), e.getMessage());
        h.config.admission.maxInitImageBytes = 1 << 20;
        // an explicit size resizes a small image
        Job ok = s.submit(req("x", 1, 4).withSize(64, 64).withImage(img2img(picture(40, 40), 0.5)), false);
        h.runAll();
        Harness.completed(ok);
    }
}
