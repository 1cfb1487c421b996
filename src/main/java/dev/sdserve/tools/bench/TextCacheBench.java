package dev.sdserve.tools.bench;

import dev.sdserve.app.Assembly;
import dev.sdserve.engine.Conditioning;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.job.GenerationRequest;

import java.io.PrintStream;
import java.util.List;

/**
 * The text-embedding cache's part of {@code bench --savings}, on the savings bench's model, prompts and seeds: each
 * request with the cache paused (its prompt and empty negative encoded together, as without the cache) against the
 * same request with the cache on, alternated prompt by prompt, in two cases: every prompt cached (a repeated
 * request: the encoder is skipped) and only the negative cached (a new prompt with the usual negative: the prompt is
 * encoded alone; its text gets a trailing space, which tokenises alike, so it is a miss with the same picture). The
 * table gives the summed request times, the text-encoding stage's mean ms per request, the speed-up, and the image
 * difference; then the largest |Δ| between a prompt's conditioning encoded alone and encoded in a batch with the
 * empty prompt (what a cached entry computed in another batch can differ by).
 */
final class TextCacheBench {
    private TextCacheBench() {
    }

    static void run(Assembly asm, SavingsBench.Setup setup, PrintStream out) throws Exception {
        // a checkpoint file: the conditioning's difference only (its encoder's share is the line above the table)
        List<String> prompts = setup.model() == null ? setup.prompts() : List.of();
        if (!prompts.isEmpty()) {
            table(asm, setup, prompts, out);
        }
        asm.service().pauseTextCache(true);
        String model = asm.service().config().admission.defaultModel;
        double maxDelta = 0;
        for (String p : setup.prompts()) {
            List<Conditioning> solo = asm.engine().encodeConditioning(model, List.of(new EncodeItem(p)));
            List<Conditioning> batched = asm.engine().encodeConditioning(model,
                    List.of(new EncodeItem(p), EncodeItem.negative("", 1, List.of())));
            maxDelta = Math.max(maxDelta, maxAbs(solo.get(0).context(), batched.get(0).context()));
        }
        out.printf("conditioning encoded alone vs in a batch with the empty prompt: max |delta| = %.3g%n", maxDelta);
    }

    private static void table(Assembly asm, SavingsBench.Setup setup, List<String> prompts, PrintStream out)
            throws Exception {
        out.printf("%ntext-embedding cache (64 MiB): the same requests with the cache paused and on, %d prompt(s)%n",
                prompts.size());
        out.printf("%-20s %9s %9s %8s %10s %10s %8s %8s%n", "case", "full s", "cached s", "speed-up", "te ms full",
                "te ms on", "MAE", "PSNR dB");
        for (boolean promptCached : new boolean[]{true, false}) {
            double fullS = 0, onS = 0, teFull = 0, teOn = 0, mae = 0, psnr = 0;
            for (int i = 0; i < prompts.size(); i++) {
                GenerationRequest base = setup.request(prompts.get(i), 1000 + i);
                GenerationRequest on = promptCached ? base : base.withPrompt(prompts.get(i) + " ");
                // fill the cache with a cheap request (one step, the smallest size): the same encode items
                asm.service().pauseTextCache(false);
                SavingsBench.generate(asm, (promptCached ? on : base.withPrompt("warm " + i)).withSteps(1).withSize(64, 64));
                SavingsBench.Timed a = null, b = null;
                for (int k = 0; k < 2; k++) {
                    boolean fullNow = (k == 0) == (i % 2 == 0);
                    asm.service().pauseTextCache(fullNow);
                    SavingsBench.Timed t = SavingsBench.generateTimed(asm, fullNow ? base : on);
                    if (fullNow) {
                        a = t;
                    } else {
                        b = t;
                    }
                }
                fullS += a.result().seconds();
                onS += b.result().seconds();
                teFull += a.stages().get("encode");
                teOn += b.stages().get("encode");
                double[] d = SavingsBench.difference(a.result().png(), b.result().png());
                mae += d[0];
                psnr += Math.min(d[1], 99);
            }
            int n = prompts.size();
            out.printf("%-20s %9.2f %9.2f %7.2fx %10.1f %10.1f %8.3f %8.1f%n",
                    promptCached ? "prompt+negative hit" : "negative hit only", fullS, onS, fullS / onS, teFull / n,
                    teOn / n, mae / n, psnr / n);
        }
    }

    static double maxAbs(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }
}
