package dev.sdserve.api.a1111;

import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.GenerationService;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.ServeException;
import dev.sdserve.job.SloClass;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A test double of the service for the A1111 mapping logic: records every request, runs each job on its own thread
 * with a fixed step time, makes one solid-colour PNG per image whose colour encodes the seed, and honours cancel.
 */
class ScriptedService implements GenerationService {
    final List<GenerationRequest> requests = new CopyOnWriteArrayList<>();
    final Map<String, Job> jobs = new ConcurrentHashMap<>();
    private final AtomicInteger ids = new AtomicInteger();
    volatile long stepMillis = 2;
    /** Jobs asked to finish early, and the step each stopped at. */
    final Map<String, Integer> stoppedAt = new ConcurrentHashMap<>();
    private final java.util.Set<String> finishEarly = ConcurrentHashMap.newKeySet();

    static byte[] png(int rgb, int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                img.setRGB(x, y, rgb);
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            ImageIO.write(img, "png", out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    static int colourOf(long seed) {
        return (int) ((seed * 2654435761L) & 0xffffff);
    }

    @Override
    public Job submit(GenerationRequest r, boolean detached) {
        requests.add(r);
        int steps = r.steps() == null ? 5 : r.steps();
        if (steps < 1 || steps > 150) {
            throw ServeException.invalid("steps", "must be in 1..150, got " + steps);
        }
        if (r.guidance() != null && (r.guidance() < 0 || r.guidance() > 30)) {
            throw ServeException.invalid("guidance_scale", "must be in 0..30");
        }
        if (r.model() != null && !r.model().equals("embedded") && !r.model().equals("v1-5-pruned-emaonly")) {
            throw ServeException.notFound("model '" + r.model() + "' not found");
        }
        // as admission does: the prompt's <lora:…> tags become LoRAs
        dev.sdserve.job.PromptLoras tags = dev.sdserve.job.PromptLoras.parse(r.prompt());
        ResolvedRequest rr = new ResolvedRequest(r.prompt() == null ? "" : r.prompt(), r.negativePrompt() == null ? "" : r.negativePrompt(),
                r.model() == null ? "embedded" : r.model(), dev.sdserve.job.PromptLoras.merge(r.loras(), tags.loras()), r.width() == null ? 16 : r.width(),
                r.height() == null ? 16 : r.height(), steps, r.sampler() == null ? "euler_a" : r.sampler(),
                r.guidance() == null ? 7.5 : r.guidance(), r.seed() == null ? 1234 : r.seed(),
                r.clipSkip() == null ? 1 : r.clipSkip(), r.images() == null ? 1 : r.images(),
                r.preview() == null ? PreviewOptions.OFF : r.preview(), SloClass.STANDARD, 0, 0, null, false);
        Job job = new Job("job-" + ids.incrementAndGet(), rr, detached, System.currentTimeMillis());
        jobs.put(job.id(), job);
        job.publish(new JobEvent.Queued(job.id(), 0, System.currentTimeMillis()));
        Thread t = new Thread(() -> run(job), "scripted-" + job.id());
        t.setDaemon(true);
        t.start();
        return job;
    }

    private void run(Job job) {
        ResolvedRequest r = job.request();
        try {
            Thread.sleep(stepMillis);
            job.publish(new JobEvent.Started(job.id(), System.currentTimeMillis()));
            job.setState(JobState.DENOISING);
            int stopped = -1;
            for (int i = 1; i <= r.steps(); i++) {
                if (finishEarly.contains(job.id()) && i > 1) {
                    stopped = i - 1;
                    stoppedAt.put(job.id(), stopped);
                    break;
                }
                Thread.sleep(stepMillis);
                if (job.cancelRequested()) {
                    job.publish(new JobEvent.Ended(job.id(), JobState.CANCELLED,
                            new ServeException(ServeException.Code.CANCELLED, "cancelled")));
                    return;
                }
                boolean withPreview = r.preview().enabled() && i % r.preview().everySteps() == 0;
                job.publish(new JobEvent.Step(job.id(), i, r.steps(), withPreview ? png(i * 10, 4, 4) : null, "png", stepMillis));
            }
            List<byte[]> images = new ArrayList<>();
            List<Long> seeds = new ArrayList<>();
            for (int k = 0; k < r.images(); k++) {
                byte[] png = png(colourOf(r.seedOf(k)), r.width(), r.height());
                if (stopped >= 0) { // as the scheduler marks an image that stopped early
                    png = dev.sdserve.image.PngText.withText(png, dev.sdserve.image.InfoText.KEYWORD,
                            dev.sdserve.image.InfoText.withParameter(dev.sdserve.image.InfoText.format(r, r.seedOf(k), null),
                                    dev.sdserve.image.InfoText.STEPS_DONE, stopped + "/" + r.steps()));
                }
                images.add(png);
                seeds.add(r.seedOf(k));
            }
            job.publish(new JobEvent.Completed(job.id(), images, seeds, r, Map.of("total", 1.0)));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public Optional<Job> find(String jobId) {
        return Optional.ofNullable(jobs.get(jobId));
    }

    @Override
    public boolean cancel(String jobId) {
        Job j = jobs.get(jobId);
        if (j == null) {
            throw ServeException.notFound("no job " + jobId);
        }
        if (j.state().terminal()) {
            return false;
        }
        j.requestCancel();
        return true;
    }

    @Override
    public boolean finishEarly(String jobId) {
        Job j = jobs.get(jobId);
        if (j == null) {
            throw ServeException.notFound("no job " + jobId);
        }
        if (j.state().terminal()) {
            return false;
        }
        finishEarly.add(jobId);
        return true;
    }

    @Override
    public Collection<Job> jobs() {
        return jobs.values();
    }
}
