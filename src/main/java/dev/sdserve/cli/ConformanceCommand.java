package dev.sdserve.cli;

import dev.sdserve.engine.tf.Conformance;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/** {@code conformance <golden-dir>}: runs a golden set through the TF engine (see {@link Conformance}). */
public final class ConformanceCommand implements CliCommand {
    @Override
    public String name() {
        return "conformance";
    }

    @Override
    public String summary() {
        return "check the engine against a golden set (relative error per case, PASS/FAIL)";
    }

    @Override
    public int run(List<String> args, PrintStream out) throws Exception {
        Args a;
        try {
            a = Args.parse(args, Set.of(), Set.of("help"));
        } catch (IllegalArgumentException e) {
            System.err.println("conformance: " + e.getMessage());
            return 2;
        }
        if (a.has("help") || a.positionals().size() != 1) {
            (a.has("help") ? out : System.err).println("""
                    Usage: sd-serve conformance <golden-dir>

                    Runs every case of a golden set (golden.json + golden.safetensors + the model files beside them) on
                    the TensorFlow engine: tokenizer ids, text encoder (last layer, CLIP skip), UNet (batched timesteps,
                    non-square latents), VAE decode/encode and each sampler's whole trajectory and image, for every model
                    file of the set. Prints one line per case with the relative error ‖out − ref‖/‖ref‖ and PASS/FAIL
                    (float32 files: 1e-4 per call, 1e-3 whole pipelines; float16 files: 1e-2), then
                    `conformance: P passed, F failed`. Exit code 0 when every case passes, 1 otherwise.""");
            return a.has("help") ? 0 : 2;
        }
        Path dir = Path.of(a.positionals().get(0));
        if (!Files.isDirectory(dir)) {
            System.err.println("conformance: " + dir + " is not a directory");
            return 2;
        }
        Conformance.Summary s = new Conformance(dir, out).run();
        return s.failed() == 0 ? 0 : 1;
    }
}
