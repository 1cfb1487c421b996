package dev.sdserve.config;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

import java.util.Optional;

/** The {@code sdserve.*} keys of application.properties. */
@ConfigMapping(prefix = "sdserve")
public interface SdServeConfig {
    /** Directory of checkpoints (top level) and LoRAs ({@code loras/}). */
    @WithDefault("models")
    String modelsDir();

    /** Model used when a request names none; "sd-shapes" is the built-in demonstration model. */
    @WithDefault("sd-shapes")
    String defaultModel();

    /** "tf" or "fake". */
    @WithDefault("tf")
    String engine();

    /** TensorFlow intra-op threads; 0 = all cores. */
    @WithDefault("0")
    int threads();

    /** Precision the networks compute in: "fp32" (default; the fast choice on CPUs) or "fp16" (for GPUs). */
    @WithDefault("fp32")
    String computeDtype();

    /** Budget for resident models, MiB. */
    @WithDefault("8192")
    long memoryBudgetMb();

    /**
     * Guidance truncation for requests that set none: the fraction of the model evaluations that keep
     * classifier-free guidance (1 = off, every evaluation guided).
     */
    @WithDefault("1.0")
    double guidanceCutoff();

    /**
     * Bound of the text-embedding cache, MiB (0 = off): repeated prompts and negative prompts skip the text encoder.
     * An SD 1.5 prompt of up to 75 tokens costs ≈ 231 KiB, an SDXL one ≈ 621 KiB.
     */
    @WithDefault("0")
    long textCacheMb();
    /** DeepCache's interval for requests that set none: a full UNet step every this many evaluations (0/1 = off). */
    @WithDefault("1")
    int deepCacheInterval();
    /** Token merging for requests that set none: the share of the full-resolution self-attention tokens merged (0 = off). */
    @WithDefault("0")
    double tokenMergingRatio();

    Preview preview();

    interface Preview {
        @WithDefault("1")
        int everySteps();

        @WithDefault("256")
        int maxEdge();

        @WithDefault("png")
        String format();
    }

    /**
     * On shutdown (SIGTERM), how long admitted jobs may run to completion before the rest are cancelled. Keep the
     * Kubernetes terminationGracePeriodSeconds above it.
     */
    @WithDefault("30s")
    java.time.Duration drainTimeout();

    Train train();

    /** LoRA fine-tuning co-scheduled with inference (tf engine only). */
    interface Train {
        /** Accept fine-tune jobs. */
        @WithDefault("true")
        boolean enabled();

        /** Jobs' specs, status, checkpoints and uploaded images; jobs found here at start-up resume. */
        @WithDefault("finetunes")
        String stateDir();

        /** Training folders (images + same-name .txt captions) that requests may name. */
        @WithDefault("training-data")
        String dataDir();

        /** Limit on the images uploaded with one request, MiB. */
        @WithDefault("16")
        long maxUploadMb();

        /** Steps between checkpoints. */
        @WithDefault("50")
        int checkpointEvery();

        /** A step runs only if every admitted request's slack exceeds cost-factor × predicted step + margin-ms. */
        @WithDefault("1.5")
        double costFactor();

        @WithDefault("1000")
        double marginMs();

        /** After admission refuses a request for capacity, no training steps for this long (ms). */
        @WithDefault("10000")
        double backoffMs();
    }

    /** Fake engine only: simulated milliseconds per UNet call (0 = as fast as possible). */
    @WithDefault("0")
    int fakeStepMillis();

    /** Optional extra model names the fake engine knows (comma-separated). */
    Optional<String> fakeModels();

    /**
     * Fake engine only: models that start cold, {@code name:ms} (loads take ms) or {@code name:ms:fail} (loads fail
     * after ms), comma-separated.
     */
    Optional<String> fakeColdModels();

    /** Model loading (off the scheduler thread, SmallRye Fault Tolerance). */
    Models models();

    interface Models {
        /** A load that takes longer ends the jobs waiting for it with UNAVAILABLE. */
        @WithDefault("120s")
        java.time.Duration loadTimeout();

        /** Failed loads of a model in a row that open its circuit breaker. */
        @WithDefault("1")
        int breakerFailures();

        /** How long an open breaker refuses requests for its model (with a retry hint) before a trial load. */
        @WithDefault("30s")
        java.time.Duration breakerDelay();
    }

    /**
     * The shared reference data directory (surefire sets {@code sdserve.shared} for tests; the server ignores it).
     * Declared so that strict config-mapping validation accepts the property when Quarkus tests boot.
     */
    Optional<String> shared();
}
