package dev.sdserve.api.a1111;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdserve.api.EventStreams;
import dev.sdserve.job.PromptLoras;
import dev.sdserve.config.SdServeConfig;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.image.InfoText;
import dev.sdserve.image.PngText;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.GenerationService;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.ModelCatalog;
import dev.sdserve.sampler.Samplers;
import io.smallrye.mutiny.Uni;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * AUTOMATIC1111's web API on top of {@link GenerationService}: request mapping, the txt2img loop over
 * {@code n_iter} jobs, progress / interrupt over the jobs in flight, and the listings in A1111's shapes.
 * Transport-free (the JAX-RS resource only moves JSON), so it is unit-testable with any GenerationService.
 */
@ApplicationScoped
public class A1111Service {
    static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern TITLE_HASH = Pattern.compile("^(.*?)\\s*\\[([0-9a-fA-F]{8,64})]$");
    private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMddHHmmss");

    private final GenerationService service;
    private final ModelCatalog catalog;
    private final PreviewOptions preview;
    private final Path modelsDir;
    private final ConcurrentLinkedDeque<Task> tasks = new ConcurrentLinkedDeque<>();
    /** The checkpoint set by POST /sdapi/v1/options (A1111's global model), or null for the server default. */
    private volatile String checkpoint;

    @Inject
    public A1111Service(GenerationService service, ModelCatalog catalog, SdServeConfig config) {
        this(service, catalog, new PreviewOptions(Math.max(1, config.preview().everySteps()), config.preview().format(),
                config.preview().maxEdge()), Path.of(config.modelsDir()));
    }

    public A1111Service(GenerationService service, ModelCatalog catalog, PreviewOptions preview, Path modelsDir) {
        this.service = service;
        this.catalog = catalog;
        this.preview = preview;
        this.modelsDir = modelsDir;
    }

    /** One txt2img call: {@code nIter} jobs run one after the other. */
    static final class Task {
        final long startMillis = System.currentTimeMillis();
        final String timestamp = LocalDateTime.now().format(STAMP);
        final int jobCount;
        volatile int jobNo;
        volatile Job current;
        volatile boolean interrupted;
        volatile boolean skipped;
        /** The latest preview of the current job (a job keeps only its latest step, which may have none). */
        volatile byte[] lastPreview;

        Task(int jobCount) {
            this.jobCount = jobCount;
        }
    }

    /** The result of a txt2img call in A1111's response shape. */
    public record Txt2ImgResult(List<String> images, ObjectNode parameters, String info) {
    }

    // ---------------------------------------------------------------- txt2img

    /** Maps the A1111 request to the service's (names resolved; admission reads the prompt's LoRA tags). */
    GenerationRequest toRequest(Txt2ImgRequest r, long seed) {
        PromptLoras neg = PromptLoras.parse(r.negativePrompt(), "negative_prompt");
        if (!neg.loras().isEmpty()) {
            throw A1111Exception.at("LoRA tags belong in the prompt, not the negative prompt", "value_error", "negative_prompt");
        }
        String model = r.checkpoint() != null ? resolveModel(r.checkpoint()) : checkpoint;
        // the prompt stays as written: admission reads its LoRA tags, the engine drops them, the PNG text keeps them
        return new GenerationRequest(r.prompt(), neg.prompt(), model, List.of(), r.width(), r.height(), r.steps(),
                resolveSampler(r.samplerName(), r.scheduler()), r.cfgScale(), seed,
                r.clipSkip() == null ? null : Math.max(1, r.clipSkip()), r.batchSize(), preview, null, null, null, null, null)
                .withPadCondUncond(Txt2ImgRequest.padCondUncond(r.raw()))
                .withDeepCacheInterval(Txt2ImgRequest.deepCacheInterval(r.raw()))
                .withTokenMerging(Txt2ImgRequest.tokenMergingRatio(r.raw()));
    }

    /** Runs a txt2img request to the end: every image, or what was made before an interrupt. */
    public Uni<Txt2ImgResult> txt2img(Txt2ImgRequest r) {
        return txt2img(r, null);
    }

    /** @param tenant the caller's tenant from its API key (replaces any), or null */
    public Uni<Txt2ImgResult> txt2img(Txt2ImgRequest r, String tenant) {
        return txt2img(r, tenant, dev.sdserve.auth.Auth.Permit.NONE);
    }

    /**
     * @param tenant the caller's tenant from its API key (replaces any), or null
     * @param permit the caller's concurrency slot, held by every job this call starts until it ends
     */
    public Uni<Txt2ImgResult> txt2img(Txt2ImgRequest r, String tenant, dev.sdserve.auth.Auth.Permit permit) {
        return generate(r, g -> g, tenant, permit);
    }

    // ---------------------------------------------------------------- img2img

    /**
     * Runs an img2img / inpainting request to the end, as {@link #txt2img} does (n_iter jobs of batch_size images),
     * each job starting from the init image. The response's {@code parameters} carry {@code init_images} and
     * {@code mask} only with {@code include_init_images}, as A1111's do.
     */
    public Uni<Txt2ImgResult> img2img(Img2ImgRequest r, String tenant, dev.sdserve.auth.Auth.Permit permit) {
        dev.sdserve.job.ImageInput image = new dev.sdserve.job.ImageInput(r.initImage(), r.mask(), r.strength(),
                r.resizeMode(), r.maskBlur(), r.inpaintingFill(), r.invertMask(), r.inpaintFullRes(), null);
        return generate(r.base(), g -> g.withImage(image), tenant, permit).map(res -> {
            ObjectNode params = res.parameters();
            if (!r.includeInitImages()) {
                params.putNull("init_images");
                params.putNull("mask");
            }
            params.put("include_init_images", r.includeInitImages());
            return res;
        });
    }

    private Uni<Txt2ImgResult> generate(Txt2ImgRequest r, java.util.function.UnaryOperator<GenerationRequest> image,
                                        String tenant, dev.sdserve.auth.Auth.Permit permit) {
        long span = (long) r.batchSize() * r.nIter(); // seeds used: seed .. seed + span - 1
        long maxSeed = dev.sdserve.admission.Validation.MAX_SEED;
        if (r.seed() != null && (r.seed() < 0 || r.seed() + span - 1 > maxSeed)) {
            throw A1111Exception.at("seed + batch_size * n_iter - 1 must lie within 0.." + maxSeed + ", got seed "
                    + r.seed(), "value_error", "seed");
        }
        long seed = r.seed() != null ? r.seed() : ThreadLocalRandom.current().nextLong(Math.max(1, maxSeed + 1 - span));
        // Validate and map before anything is queued, so a bad request fails as a whole.
        GenerationRequest mapped = image.apply(toRequest(r, seed));
        GenerationRequest first = tenant == null ? mapped : mapped.withTenant(tenant, mapped.priority());
        Task task = new Task(r.nIter());
        tasks.add(task);
        List<byte[]> pngs = new ArrayList<>();
        List<Long> seeds = new ArrayList<>();
        ResolvedRequest[] resolved = new ResolvedRequest[1];
        return iteration(task, first, 0, r.batchSize(), pngs, seeds, resolved, permit)
                .onTermination().invoke(() -> tasks.remove(task))
                .onCancellation().invoke(() -> {
                    task.interrupted = true;
                    Job j = task.current;
                    if (j != null) {
                        service.cancel(j.id());
                    }
                })
                .map(ignored -> result(r, first, pngs, seeds, resolved[0], task));
    }

    private Uni<Void> iteration(Task task, GenerationRequest base, int i, int batch, List<byte[]> pngs, List<Long> seeds,
                                ResolvedRequest[] resolved, dev.sdserve.auth.Auth.Permit permit) {
        if (i >= task.jobCount || task.interrupted) {
            return Uni.createFrom().voidItem();
        }
        Job job;
        try {
            job = service.submit(base.withSeed(base.seed() + (long) i * batch), false);
            permit.holdUntilEnd(job);
        } catch (RuntimeException e) {
            return Uni.createFrom().failure(e);
        }
        task.current = job;
        task.jobNo = i;
        task.skipped = false;
        task.lastPreview = null;
        if (task.interrupted) {
            service.cancel(job.id());
        }
        return EventStreams.events(job).onItem().invoke(e -> {
                    if (e instanceof JobEvent.Step s && s.preview() != null) {
                        task.lastPreview = s.preview();
                    }
                }).select().where(Job::isTerminal).toUni().onItem().transformToUni(e -> {
            if (e instanceof JobEvent.Completed c) {
                pngs.addAll(c.images());
                seeds.addAll(c.seeds());
                resolved[0] = c.request();
            } else if (e instanceof JobEvent.Ended end) {
                boolean byUs = end.state() == JobState.CANCELLED && (task.interrupted || task.skipped);
                if (!byUs) {
                    return Uni.createFrom().failure(end.error() != null ? end.error()
                            : new ServeException(ServeException.Code.INTERNAL, "job " + job.id() + " ended " + end.state()));
                }
                if (resolved[0] == null) {
                    resolved[0] = job.request();
                }
            }
            return iteration(task, base, i + 1, batch, pngs, seeds, resolved, permit);
        });
    }

    private Txt2ImgResult result(Txt2ImgRequest r, GenerationRequest asked, List<byte[]> pngs, List<Long> seeds,
                                 ResolvedRequest rr, Task task) {
        Map<String, String> loraHashes = loraHashes();
        String modelHash = rr == null ? null : modelHash(rr.model());
        List<String> images = new ArrayList<>();
        List<String> infotexts = new ArrayList<>();
        for (int k = 0; k < pngs.size(); k++) {
            String infotext = InfoText.format(rr, seeds.get(k), modelHash, loraHashes);
            byte[] png = pngs.get(k);
            Optional<String> embedded = PngText.get(png, InfoText.KEYWORD);
            if (embedded.isEmpty()) {
                png = PngText.withText(png, InfoText.KEYWORD, infotext);
            } else {
                infotext = embedded.get();
            }
            infotexts.add(infotext);
            if (r.sendImages()) {
                images.add(Base64.getEncoder().encodeToString(png));
            }
        }
        ObjectNode params = r.raw().deepCopy();
        if (rr != null) {
            params.put("prompt", r.prompt());
            params.put("negative_prompt", r.negativePrompt());
            params.putIfAbsent("seed", JSON.getNodeFactory().numberNode(-1));
            params.put("sampler_name", InfoText.samplerName(rr.sampler()));
            params.put("steps", rr.steps());
            params.put("cfg_scale", rr.guidance());
            params.put("width", rr.width());
            params.put("height", rr.height());
            params.put("batch_size", r.batchSize());
            params.put("n_iter", r.nIter());
            params.putIfAbsent("override_settings", JSON.createObjectNode());
            params.putIfAbsent("send_images", JSON.getNodeFactory().booleanNode(true));
        }
        ObjectNode info = JSON.createObjectNode();
        info.put("prompt", r.prompt());
        ArrayNode allPrompts = info.putArray("all_prompts");
        ArrayNode allNeg = JSON.createArrayNode();
        ArrayNode allSeeds = JSON.createArrayNode();
        ArrayNode allSub = JSON.createArrayNode();
        long firstSeed = asked.seed();
        for (int k = 0; k < r.batchSize() * r.nIter(); k++) {
            allPrompts.add(r.prompt());
            allNeg.add(r.negativePrompt());
            allSeeds.add(firstSeed + k);
            allSub.add(firstSeed + k);
        }
        info.put("negative_prompt", r.negativePrompt());
        info.set("all_negative_prompts", allNeg);
        info.put("seed", firstSeed);
        info.set("all_seeds", allSeeds);
        info.put("subseed", firstSeed);
        info.set("all_subseeds", allSub);
        info.put("subseed_strength", 0);
        if (rr != null) {
            info.put("width", rr.width());
            info.put("height", rr.height());
            info.put("sampler_name", InfoText.samplerName(rr.sampler()));
            info.put("cfg_scale", rr.guidance());
            info.put("steps", rr.steps());
            info.put("sd_model_name", InfoText.modelName(rr.model()));
            info.put("clip_skip", rr.clipSkip());
        }
        info.put("batch_size", r.batchSize());
        info.put("restore_faces", false);
        info.putNull("face_restoration_model");
        info.put("sd_model_hash", modelHash);
        info.putNull("sd_vae_name");
        info.putNull("sd_vae_hash");
        info.put("seed_resize_from_w", -1);
        info.put("seed_resize_from_h", -1);
        if (rr != null && rr.image() != null) {
            info.put("denoising_strength", rr.image().strength());
            params.put("denoising_strength", rr.image().strength());
        } else {
            info.putNull("denoising_strength");
        }
        ObjectNode extra = info.putObject("extra_generation_params");
        if (rr != null && !rr.loras().isEmpty()) {
            List<String> lh = new ArrayList<>();
            for (LoraWeight l : rr.loras()) {
                if (loraHashes.containsKey(l.name())) {
                    lh.add(l.name() + ": " + loraHashes.get(l.name()));
                }
            }
            if (!lh.isEmpty()) {
                extra.put("Lora hashes", String.join(", ", lh));
            }
        }
        stepsDone(infotexts).ifPresent(d -> extra.put(InfoText.STEPS_DONE, d));
        info.put("index_of_first_image", 0);
        ArrayNode it = info.putArray("infotexts");
        infotexts.forEach(it::add);
        info.putArray("styles");
        info.put("job_timestamp", task.timestamp);
        info.put("is_using_inpainting_conditioning", false);
        info.put("version", "sd-serve");
        info.put("interrupted", task.interrupted);
        try {
            return new Txt2ImgResult(images, params, JSON.writeValueAsString(info));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    // ---------------------------------------------------------------- progress / interrupt

    /** Where an interrupted or skipped image stopped ("k/n", from its infotext), for the call's info. */
    private static Optional<String> stepsDone(List<String> infotexts) {
        for (String t : infotexts) {
            String d = InfoText.parse(t).parameters().get(InfoText.STEPS_DONE);
            if (d != null) {
                return Optional.of(d);
            }
        }
        return Optional.empty();
    }

    /** The job that progress reports and interrupt stops: the oldest A1111 call in flight, else the oldest running job. */
    private Optional<Current> current() {
        Task t = tasks.peekFirst();
        if (t != null && t.current != null) {
            return Optional.of(new Current(t, t.current));
        }
        return service.jobs().stream().filter(j -> !j.state().terminal())
                .min(Comparator.comparing((Job j) -> j.state() == JobState.QUEUED).thenComparingLong(Job::createdMillis))
                .map(j -> new Current(null, j));
    }

    /** The job in flight and the A1111 call it belongs to (null when it came from another API). */
    private record Current(Task task, Job job) {
    }

    public ObjectNode progress(boolean skipCurrentImage) {
        ObjectNode out = JSON.createObjectNode();
        ObjectNode state = JSON.createObjectNode();
        state.put("skipped", false);
        state.put("interrupted", false);
        state.put("stopping_generation", false);
        state.put("job", "");
        state.put("job_count", 0);
        state.put("job_timestamp", "0");
        state.put("job_no", 0);
        state.put("sampling_step", 0);
        state.put("sampling_steps", 0);
        Optional<Current> cur = current();
        if (cur.isEmpty()) {
            out.put("progress", 0.0);
            out.put("eta_relative", 0.0);
            out.set("state", state);
            out.putNull("current_image");
            out.putNull("textinfo");
            out.putNull("current_task");
            return out;
        }
        Task t = cur.get().task();
        Job j = cur.get().job();
        int jobCount = t == null ? 1 : t.jobCount;
        int jobNo = t == null ? 0 : t.jobNo;
        long start = t == null ? j.createdMillis() : t.startMillis;
        JobEvent.Step step = j.lastStep();
        int total = step != null ? step.total() : j.request().steps();
        int index = step != null ? step.index() : 0;
        double progress = (jobNo + (total > 0 ? (double) index / total : 0)) / jobCount;
        long now = System.currentTimeMillis();
        double elapsed = Math.max(0, now - start) / 1000.0;
        double eta;
        JobEvent.Queued q = j.lastQueued();
        if (index == 0 && q != null && q.estimatedStartMillis() > now) {
            eta = (q.estimatedStartMillis() - now) / 1000.0;
        } else {
            eta = progress > 0 ? elapsed / progress - elapsed : 0;
        }
        state.put("interrupted", t != null && t.interrupted);
        state.put("skipped", t != null && t.skipped);
        state.put("job", j.id());
        state.put("job_count", jobCount);
        state.put("job_timestamp", t == null ? LocalDateTime.now().format(STAMP) : t.timestamp);
        state.put("job_no", jobNo);
        state.put("sampling_step", index);
        state.put("sampling_steps", total);
        out.put("progress", Math.min(1.0, progress));
        out.put("eta_relative", eta);
        out.set("state", state);
        byte[] image = step != null && step.preview() != null ? step.preview() : t != null ? t.lastPreview : null;
        if (!skipCurrentImage && image != null) {
            out.put("current_image", Base64.getEncoder().encodeToString(image));
        } else {
            out.putNull("current_image");
        }
        String text = j.state() == JobState.QUEUED
                ? "Queued" + (q == null ? "" : " (position " + (q.position() + 1) + ")")
                : j.state() == JobState.DENOISING || step != null ? "Step " + index + "/" + total
                : j.state().name().charAt(0) + j.state().name().substring(1).toLowerCase(Locale.ROOT);
        out.put("textinfo", text);
        out.putNull("current_task");
        return out;
    }

    /**
     * Stops the current call: its job finishes with the image as it stands (decoded from the latest step's x̂0, as
     * A1111 returns it), its remaining iterations do not run. Returns whether something was stopped.
     */
    public boolean interrupt() {
        return stopCurrent(true);
    }

    /** Skips the current job of the current call (its image as it stands, as interrupt); the call goes on. */
    public boolean skip() {
        return stopCurrent(false);
    }

    private boolean stopCurrent(boolean interrupt) {
        Optional<Current> cur = current();
        if (cur.isEmpty()) {
            return false;
        }
        Task t = cur.get().task();
        if (t != null) {
            if (interrupt) {
                t.interrupted = true;
            } else {
                t.skipped = true;
            }
        }
        return service.finishEarly(cur.get().job().id()); // A1111 decodes the image as it stands
    }

    // ---------------------------------------------------------------- names

    /**
     * An A1111 sampler name (or sd-serve id) → sd-serve's id. With {@code scheduler} ("Karras", "Exponential"),
     * tries "name scheduler" first, as A1111 ≥ 1.9 splits them. Unknown names: 404 "Sampler not found", as A1111.
     */
    String resolveSampler(String name, String scheduler) {
        if (name == null) {
            return null;
        }
        List<Samplers.Info> entries = Samplers.list();
        boolean explicitScheduler = scheduler != null && !scheduler.equalsIgnoreCase("automatic");
        List<String> tries = new ArrayList<>();
        if (explicitScheduler && !scheduler.equalsIgnoreCase("uniform") && !scheduler.equalsIgnoreCase("normal")) {
            tries.add(name + " " + scheduler);
        } else {
            tries.add(name);
        }
        for (String t : tries) {
            for (Samplers.Info e : entries) {
                if (e.displayName().equalsIgnoreCase(t) || e.id().equalsIgnoreCase(t)
                        || e.aliases().contains(t.toLowerCase(Locale.ROOT))) {
                    return e.id();
                }
            }
        }
        if (explicitScheduler) {
            throw A1111Exception.at("sampler '" + name + "' with scheduler '" + scheduler + "' is not available; "
                    + "sd-serve offers " + String.join(", ", entries.stream().map(Samplers.Info::displayName).toList()),
                    "value_error", "scheduler");
        }
        throw new ServeException(ServeException.Code.NOT_FOUND, "sampler_name", "Sampler not found", null);
    }

    /** A checkpoint as A1111 names it: title "name.safetensors [hash]", file name, model name or hash. */
    String resolveModel(String v) {
        String name = v.strip();
        String hash = null;
        Matcher m = TITLE_HASH.matcher(name);
        if (m.matches()) {
            name = m.group(1);
            hash = m.group(2).toLowerCase(Locale.ROOT);
        }
        String stem = InfoText.modelName(name);
        for (ModelCatalog.ModelEntry e : catalog.models()) {
            if (e.name().equals(name) || InfoText.modelName(e.name()).equals(stem)) {
                return e.name();
            }
        }
        String h = hash != null ? hash : name.toLowerCase(Locale.ROOT);
        for (ModelCatalog.ModelEntry e : catalog.models()) {
            String sh = e.shortHash() == null ? "" : e.shortHash().toLowerCase(Locale.ROOT);
            if (!sh.isEmpty() && h.length() >= 8 && (sh.startsWith(h) || h.startsWith(sh))) {
                return e.name();
            }
        }
        return name; // the service reports it as not found, naming it
    }

    private String modelHash(String model) {
        for (ModelCatalog.ModelEntry e : catalog.models()) {
            if (e.name().equals(model)) {
                return blankToNull(e.shortHash());
            }
        }
        return null;
    }

    private Map<String, String> loraHashes() {
        Map<String, String> m = new HashMap<>();
        for (ModelCatalog.LoraEntry l : catalog.loras()) {
            if (l.shortHash() != null && !l.shortHash().isBlank()) {
                m.put(l.name(), l.shortHash());
            }
        }
        return m;
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s;
    }

    // ---------------------------------------------------------------- listings

    private static String title(ModelCatalog.ModelEntry e) {
        String file = fileName(e.name());
        return e.shortHash() == null || e.shortHash().isBlank() ? file : file + " [" + e.shortHash() + "]";
    }

    private static String fileName(String name) {
        String stem = InfoText.modelName(name);
        return stem.equals("embedded") ? stem : stem + ".safetensors";
    }

    public ArrayNode sdModels() {
        ArrayNode a = JSON.createArrayNode();
        for (ModelCatalog.ModelEntry e : catalog.models()) {
            ObjectNode o = a.addObject();
            o.put("title", title(e));
            o.put("model_name", InfoText.modelName(e.name()));
            o.put("hash", blankToNull(e.shortHash()));
            String sh = e.shortHash() == null ? "" : e.shortHash();
            o.put("sha256", sh.matches("[0-9a-fA-F]{64}") ? sh : null);
            Path p = modelsDir.resolve(fileName(e.name()));
            o.put("filename", Files.exists(p) ? p.toAbsolutePath().toString() : e.name());
            o.putNull("config");
            // sd-serve's additions: what the model is for, and the settings txt2img uses when a request omits them
            o.put("description", e.description());
            ObjectNode rec = o.putObject("recommended");
            dev.sdserve.model.ModelDefaults d = e.defaults();
            if (d.sampler() != null) {
                rec.put("sampler_name", InfoText.samplerName(d.sampler()));
            }
            if (d.steps() != null) {
                rec.put("steps", d.steps());
            }
            if (d.guidanceScale() != null) {
                rec.put("cfg_scale", d.guidanceScale());
            }
            if (d.width() != null) {
                rec.put("width", d.width());
            }
            if (d.height() != null) {
                rec.put("height", d.height());
            }
            if (d.clipSkip() != null) {
                rec.put("CLIP_stop_at_last_layers", d.clipSkip());
            }
        }
        return a;
    }

    public ArrayNode loras() {
        ArrayNode a = JSON.createArrayNode();
        for (ModelCatalog.LoraEntry l : catalog.loras()) {
            ObjectNode o = a.addObject();
            o.put("name", l.name());
            o.put("alias", l.name());
            o.put("path", modelsDir.resolve("loras").resolve(l.name() + ".safetensors").toAbsolutePath().toString());
            ObjectNode md = o.putObject("metadata");
            if (l.rank() > 0) {
                md.put("ss_network_dim", Integer.toString(l.rank()));
            }
        }
        return a;
    }

    public ArrayNode samplers() {
        ArrayNode a = JSON.createArrayNode();
        for (Samplers.Info e : Samplers.list()) {
            ObjectNode o = a.addObject();
            o.put("name", e.displayName());
            ArrayNode aliases = o.putArray("aliases").add(e.id());
            e.aliases().forEach(aliases::add);
            ObjectNode opts = o.putObject("options");
            String dn = e.displayName().toLowerCase(Locale.ROOT);
            if (dn.contains("karras")) {
                opts.put("scheduler", "karras");
            } else if (dn.contains("exponential")) {
                opts.put("scheduler", "exponential");
            }
            if (e.stochastic()) {
                opts.put("uses_ensd", "True");
            }
        }
        return a;
    }

    /** The subset of A1111's options sd-serve knows: the current checkpoint. */
    public ObjectNode options() {
        ObjectNode o = JSON.createObjectNode();
        String current = checkpoint;
        ModelCatalog.ModelEntry match = null;
        for (ModelCatalog.ModelEntry e : catalog.models()) {
            if (current != null ? e.name().equals(current) : e.isDefault()) {
                match = e;
            }
        }
        o.put("sd_model_checkpoint", match != null ? title(match) : current);
        o.put("CLIP_stop_at_last_layers", 1);
        o.put("pad_cond_uncond", false);
        o.put("samples_format", "png");
        o.put("live_previews_image_format", preview.format());
        o.put("show_progress_every_n_steps", preview.everySteps());
        return o;
    }

    /** POST /sdapi/v1/options: sets the checkpoint used by A1111 calls that do not override it. */
    public void setOptions(com.fasterxml.jackson.databind.JsonNode body) {
        if (body == null || !body.isObject()) {
            throw A1111Exception.at("value is not a valid dict", "type_error.dict");
        }
        com.fasterxml.jackson.databind.JsonNode ck = body.get("sd_model_checkpoint");
        if (ck != null && !ck.isNull()) {
            String name = resolveModel(ck.asText());
            boolean known = catalog.models().stream().anyMatch(e -> e.name().equals(name));
            if (!known) {
                throw new ServeException(ServeException.Code.NOT_FOUND, "sd_model_checkpoint",
                        "model '" + ck.asText() + "' not found", null);
            }
            checkpoint = name;
        }
    }
}
