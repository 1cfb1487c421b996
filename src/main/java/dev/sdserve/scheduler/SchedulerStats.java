package dev.sdserve.scheduler;

import java.util.concurrent.atomic.AtomicLong;

/** Counters of the scheduler (read by tests, the simulator and metrics). */
public final class SchedulerStats {
    public final AtomicLong iterations = new AtomicLong();
    public final AtomicLong encodeCalls = new AtomicLong();
    public final AtomicLong denoiseCalls = new AtomicLong();
    public final AtomicLong decodeCalls = new AtomicLong();
    /** Jobs (requests) in denoise calls, summed over calls. */
    public final AtomicLong denoiseJobs = new AtomicLong();
    /** UNet latent samples in denoise calls, summed over calls. */
    public final AtomicLong denoiseLatents = new AtomicLong();
    public final AtomicLong admitted = new AtomicLong();
    public final AtomicLong rejectedQueueFull = new AtomicLong();
    public final AtomicLong rejectedDeadline = new AtomicLong();
    /** Requests admitted although the deadline check refused them: idle server, stale cost figures. */
    public final AtomicLong admittedProbe = new AtomicLong();
    public final AtomicLong rejectedDraining = new AtomicLong();
    public final AtomicLong admittedBestEffort = new AtomicLong();
    public final AtomicLong completed = new AtomicLong();
    public final AtomicLong cancelled = new AtomicLong();
    public final AtomicLong failed = new AtomicLong();
    public final AtomicLong deadlineExceeded = new AtomicLong();
    public final AtomicLong stalledWatchersCancelled = new AtomicLong();
    /** Best-effort jobs left out of a batch (paused) for urgent work, and resumed afterwards. */
    public final AtomicLong pauses = new AtomicLong();
    public final AtomicLong resumes = new AtomicLong();
    /** Engine calls retried split in halves after a failure. */
    public final AtomicLong splitRetries = new AtomicLong();
    /** Nanoseconds (of {@link ServiceConfig#statsTimer}) in sampler maths: initial noise, model inputs, updates. */
    public final AtomicLong samplerNanos = new AtomicLong();
    /** Nanoseconds spent planning iterations (housekeeping, ordering, batch choice). */
    public final AtomicLong planningNanos = new AtomicLong();
    /** Nanoseconds spent inside engine calls (the rest of an iteration is scheduler overhead). */
    public final AtomicLong engineNanos = new AtomicLong();
    /** Text-embedding cache ({@link ServiceConfig#textCacheBytes}): items found, items encoded, entries evicted. */
    public final AtomicLong textCacheHits = new AtomicLong();
    public final AtomicLong textCacheMisses = new AtomicLong();
    public final AtomicLong textCacheEvictions = new AtomicLong();
    /** The text-embedding cache's bytes and entries now. */
    public final AtomicLong textCacheBytes = new AtomicLong();
    public final AtomicLong textCacheEntries = new AtomicLong();

    /** Mean jobs per denoise call. */
    public double meanDenoiseJobs() {
        long c = denoiseCalls.get();
        return c == 0 ? 0 : denoiseJobs.get() / (double) c;
    }

    /** Mean UNet latent samples per denoise call. */
    public double meanDenoiseLatents() {
        long c = denoiseCalls.get();
        return c == 0 ? 0 : denoiseLatents.get() / (double) c;
    }

    public long rejected() {
        return rejectedQueueFull.get() + rejectedDeadline.get() + rejectedDraining.get();
    }
}
