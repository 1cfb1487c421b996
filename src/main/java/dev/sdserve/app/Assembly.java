package dev.sdserve.app;

import dev.sdserve.scheduler.ModelManager;
import dev.sdserve.admission.NameCheck;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.ModelLoader;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.DemoModel;
import dev.sdserve.model.EmbeddedModel;
import dev.sdserve.model.ModelDefaults;
import dev.sdserve.model.ModelCatalog;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.ModelRegistry;
import dev.sdserve.engine.tf.LoraLibrary;
import dev.sdserve.clock.Clock;
import dev.sdserve.engine.CostModel;
import dev.sdserve.scheduler.SchedulerService;
import dev.sdserve.scheduler.ServiceConfig;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Builds the running service from settings, without CDI: the engine, the scheduler (which implements
 * GenerationService) and the model catalog. Used by the server's CDI producer and by in-process CLI commands.
 */
public final class Assembly implements AutoCloseable {
    /** The fake engine's traditional model name (tests); the real embedded default is {@link DemoModel#NAME}. */
    public static final String EMBEDDED = "embedded";

    /** What the assembly needs to know. */
    public static final class Settings {
        public String engine = "tf";
        public Path modelsDir = Path.of("models");
        public String defaultModel = DemoModel.NAME;
        public int threads = 0;
        /** "fp32" or "fp16" ({@link dev.sdserve.engine.tf.ComputeDType}). */
        public String computeDtype = System.getProperty("sdserve.compute-dtype", "fp32");
        public int fakeStepMillis = 0;
        public List<String> fakeModels = new ArrayList<>();
        /** Fake engine: models that start cold, "name:ms" or "name:ms:fail". */
        public List<String> fakeColdModels = new ArrayList<>();
        /** Extra checkpoints by name (e.g. the CLI's --model path). */
        public Map<String, Path> extraModels = new LinkedHashMap<>();
        public ServiceConfig service = ServiceConfig.defaults();
        /** Budget for resident models' weights, MiB (0 = unlimited); least recently used models are evicted. */
        public long memoryBudgetMb = 0;
        /** Seconds between rescans of the models directory (0 = only on demand). */
        public long rescanSeconds = 10;
        /** Fine-tuning (tf engine only); off unless turned on (the server does, from sdserve.train.enabled). */
        public dev.sdserve.train.FineTuneManager.Settings train = trainOff();
        public double trainCostFactor = 1.5;
        public double trainMarginMillis = 1000;
        public double trainBackoffMillis = 10_000;
        /** Fitted preview projections by model file hash (tf engine; null: in memory only). */
        public Path projectionCacheDir = EmbeddedModel.cacheDir().resolve("projections");
    }

    private static dev.sdserve.train.FineTuneManager.Settings trainOff() {
        dev.sdserve.train.FineTuneManager.Settings t = new dev.sdserve.train.FineTuneManager.Settings();
        t.enabled = false;
        return t;
    }

    private final Engine engine;
    private final ModelLoader loader;
    private final SchedulerService service;
    private final ModelCatalog catalog;
    private final ModelManager models;
    private dev.sdserve.train.FineTuneManager fineTunes;
    private dev.sdserve.engine.projection.PreviewProjections previewProjections;

    private Assembly(Engine engine, ModelLoader loader, SchedulerService service, ModelCatalog catalog) {
        this.engine = engine;
        this.loader = loader;
        this.service = service;
        this.catalog = catalog;
        this.models = new ModelManager(catalog, engine, loader, service,
                () -> catalog instanceof ModelRegistry r && r.rescan());
    }

    public static Assembly create(Settings s) {
        if (s.threads > 0) {
            System.setProperty("sdserve.threads", Integer.toString(s.threads));
        }
        // validated here (a clear error at start-up), read by the engine when it loads a model
        System.setProperty(dev.sdserve.engine.tf.ComputeDType.PROPERTY,
                dev.sdserve.engine.tf.ComputeDType.parse(s.computeDtype).name().toLowerCase(Locale.ROOT));
        Engine engine;
        ModelRegistry registry = null;
        Map<String, Path> files = new LinkedHashMap<>();
        switch (s.engine.toLowerCase(Locale.ROOT)) {
            case "fake" -> {
                FakeEngine.Config fc = new FakeEngine.Config();
                java.util.Set<String> names = new java.util.LinkedHashSet<>(List.of(DemoModel.NAME, EMBEDDED));
                names.addAll(s.fakeModels);
                names.addAll(s.extraModels.keySet());
                fc.models(8, 512, names.toArray(String[]::new));
                // the fake stand-in for the embedded model carries its recommended defaults
                ModelDefaults demo = DemoModel.card().defaults();
                s.service.admission.modelDefaults = n -> n.equals(DemoModel.NAME) ? demo : ModelDefaults.NONE;
                if (s.fakeStepMillis > 0) {
                    double ms = s.fakeStepMillis;
                    fc.cost((m, stage, shape, b) -> ms);
                }
                fc.clock(Clock.system());
                for (String c : s.fakeColdModels) {
                    String[] p = c.split(":");
                    if (p.length < 2 || !fc.models.containsKey(p[0])) {
                        throw new IllegalArgumentException("sdserve.fake-cold-models: '" + c + "' is not name:ms[:fail] of a fake model");
                    }
                    fc.cold(p[0], Double.parseDouble(p[1]));
                    if (p.length > 2) {
                        fc.failLoads(p[0], "simulated load failure");
                    }
                }
                engine = new FakeEngine(fc);
            }
            case "tf" -> {
                try {
                    files.put(DemoModel.NAME, DemoModel.path());
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot unpack the embedded model into " + EmbeddedModel.cacheDir() + ": " + e.getMessage(), e);
                }
                files.putAll(s.extraModels);
                ClipTokenizer tok = ClipTokenizer.get();
                TfEngine[] self = new TfEngine[1];
                registry = new ModelRegistry(s.modelsDir, files, s.defaultModel, n -> self[0] != null && self[0].isResident(n));
                ModelRegistry reg = registry;
                TfEngine tfe = new TfEngine(reg::resolveModel, Assembly::configOf, tok, new LoraLibrary.Source() {
                    @Override
                    public Path resolve(String name) {
                        return reg.resolveLora(name);
                    }

                    @Override
                    public String hash(Path file) {
                        return reg.shortHash(file);
                    }
                });
                tfe.memoryBudgetBytes(s.memoryBudgetMb << 20);
                self[0] = tfe;
                engine = tfe;
                reg.startPeriodicRescan(s.rescanSeconds);
                s.service.admission.modelDefaults = reg::defaults;
                // PNG parameters text: civitai short hashes (computed lazily, cached by path/size/mtime)
                s.service.modelHash = name -> {
                    try {
                        return reg.shortHash(reg.resolveModel(name));
                    } catch (RuntimeException e) {
                        return null;
                    }
                };
                // previews in each model's own colours: fitted against its VAE when it loads, cached by file hash
                if (s.service.previewProjections == null) {
                    java.util.function.Function<String, String> hashOf = s.service.modelHash;
                    s.service.previewProjections = new dev.sdserve.engine.projection.PreviewProjections(
                            s.projectionCacheDir, hashOf, model -> dev.sdserve.engine.projection.ProjectionFitter.fit(
                                    tfe, model, dev.sdserve.engine.projection.ProjectionFitter.Settings.defaults()));
                }
                s.service.loraHash = name -> {
                    try {
                        return reg.shortHash(reg.resolveLora(name));
                    } catch (RuntimeException e) {
                        return null;
                    }
                };
            }
            default -> throw new IllegalArgumentException("sdserve.engine must be 'tf' or 'fake', not '" + s.engine + "'");
        }
        ServiceConfig sc = s.service;
        sc.admission.defaultModel = s.defaultModel;
        // admission checks model and LoRA names before a job exists (the fake engine: its models, the LoRA files)
        ModelRegistry names = registry != null ? registry : new ModelRegistry(s.modelsDir, Map.of(), s.defaultModel, null);
        sc.admission.names = registry != null
                ? NameCheck.Names.of(() -> names.modelFiles().keySet(), names::hasModel, () -> names.loraFiles().keySet(),
                        names::hasLora, names::loraArchitecture)
                : NameCheck.Names.of(() -> namesOfFake(engine), n -> namesOfFake(engine).contains(n),
                        () -> names.loraFiles().keySet(), names::hasLora, n -> null);
        ModelLoader loader = new ModelLoader(engine, sc.loadSettings());
        SchedulerService service = new SchedulerService(engine, loader, sc, Clock.system());
        service.start();
        ModelCatalog catalog = registry != null ? registry : catalogOf(engine, files, s, names);
        Assembly a = new Assembly(engine, loader, service, catalog);
        a.previewProjections = sc.previewProjections;
        TrainingWiring.Policy tp = new TrainingWiring.Policy();
        tp.costFactor = s.trainCostFactor;
        tp.marginMillis = s.trainMarginMillis;
        tp.backoffMillis = s.trainBackoffMillis;
        a.fineTunes = TrainingWiring.install(s.train, tp, service, engine instanceof TfEngine t ? t : null, registry,
                s.service.metrics);
        return a;
    }

    /** The models' fitted preview projections (null on the fake engine: the SD 1.x factors). */
    public dev.sdserve.engine.projection.PreviewProjections previewProjections() {
        return previewProjections;
    }

    static ModelConfig configOf(Path p) {
        try (Checkpoint c = Checkpoint.open(p)) {
            return c.config();
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    /** Checkpoints at the top of the models directory, by file name without extension. */
    static Map<String, Path> scan(Path dir) {
        Map<String, Path> out = new LinkedHashMap<>();
        if (dir == null || !Files.isDirectory(dir)) {
            return out;
        }
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.safetensors")) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                out.put(n.substring(0, n.length() - ".safetensors".length()), p.toAbsolutePath());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list models in " + dir + ": " + e.getMessage(), e);
        }
        return out;
    }

    private static ModelCatalog catalogOf(Engine engine, Map<String, Path> files, Settings s, ModelRegistry loras) {
        ModelDefaults.Card demo = DemoModel.card();
        return new ModelCatalog() {
            @Override
            public List<ModelEntry> models() {
                List<ModelEntry> out = new ArrayList<>();
                if (files.isEmpty()) {
                    for (String n : namesOfFake(engine)) {
                        ModelDefaults.Card c = n.equals(DemoModel.NAME) ? demo : ModelDefaults.Card.NONE;
                        out.add(new ModelEntry(n, engine.describe(n).architecture(), 0, "F32", "", true,
                                n.equals(s.defaultModel), c.description(), c.defaults()));
                    }
                    return out;
                }
                for (var e : files.entrySet()) {
                    long size;
                    try {
                        size = Files.size(e.getValue());
                    } catch (IOException ex) {
                        size = -1;
                    }
                    out.add(new ModelEntry(e.getKey(), "sd1", size, "", "", false, e.getKey().equals(s.defaultModel)));
                }
                return out;
            }

            @Override
            public List<LoraEntry> loras() {
                loras.rescan();
                return loras.loras();
            }
        };
    }

    private static List<String> namesOfFake(Engine engine) {
        return engine instanceof FakeEngine f ? new ArrayList<>(f.config().models.keySet()) : List.of();
    }

    public Engine engine() {
        return engine;
    }

    public SchedulerService service() {
        return service;
    }

    public ModelCatalog catalog() {
        return catalog;
    }

    /** Residency management (load, unload, pin, rescan) for the transports. */
    public dev.sdserve.job.ModelService models() {
        return models;
    }

    /** Fine-tune jobs (disabled unless the engine is tf and sdserve.train.enabled). */
    public dev.sdserve.train.FineTuneManager fineTunes() {
        return fineTunes;
    }

    @Override
    public void close() {
        service.close();
        loader.close();
        fineTunes.close();
        engine.close();
        if (catalog instanceof ModelRegistry r) {
            r.close();
        }
    }
}
