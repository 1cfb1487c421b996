package dev.sdserve.ops;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.sdserve.config.SdServeConfig;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Parses every manifest in k8s/ and checks it against the application's real configuration: ports from
 * application.properties, probe paths of SmallRye Health, environment keys that map to real config properties
 * (application.properties and the SdServeConfig mapping), the grace period against the drain timeout.
 */
class K8sManifestsTest {
    static final Path K8S = Path.of("k8s");
    static final List<JsonNode> DOCS = new ArrayList<>();
    static final Map<JsonNode, Path> FILE = new HashMap<>();
    static Properties props = new Properties();
    /** Environment variable forms of every known property. */
    static final Set<String> ENV_KEYS = new TreeSet<>();

    @BeforeAll
    static void load() throws IOException {
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        List<Path> files;
        try (Stream<Path> s = Files.list(K8S)) {
            files = s.filter(p -> p.toString().endsWith(".yaml") || p.toString().endsWith(".yml")).sorted().toList();
        }
        assertFalse(files.isEmpty(), "no manifests in " + K8S.toAbsolutePath());
        for (Path f : files) {
            try (MappingIterator<JsonNode> it = yaml.readerFor(JsonNode.class).readValues(f.toFile())) {
                while (it.hasNext()) {
                    JsonNode d = it.next();
                    if (d != null && !d.isEmpty()) {
                        DOCS.add(d);
                        FILE.put(d, f);
                    }
                }
            }
        }
        try (InputStream in = K8sManifestsTest.class.getResourceAsStream("/application.properties")) {
            props.load(in);
        }
        for (String k : props.stringPropertyNames()) {
            if (!k.startsWith("%")) {
                ENV_KEYS.add(env(k));
            }
        }
        for (String k : configMappingKeys("sdserve", SdServeConfig.class)) {
            ENV_KEYS.add(env(k));
        }
    }

    /** SmallRye Config's environment variable name of a property: upper case, non-alphanumerics as '_'. */
    static String env(String property) {
        return property.toUpperCase(Locale.ROOT).replaceAll("[^A-Z0-9]", "_");
    }

    /** Property names of a @ConfigMapping interface: methods in kebab case, nested groups as prefixes. */
    static List<String> configMappingKeys(String prefix, Class<?> type) {
        List<String> out = new ArrayList<>();
        for (Method m : type.getDeclaredMethods()) {
            if (m.getParameterCount() != 0 || m.isDefault() || java.lang.reflect.Modifier.isStatic(m.getModifiers())) {
                continue;
            }
            String name = prefix + "." + m.getName().replaceAll("([a-z0-9])([A-Z])", "$1-$2").toLowerCase(Locale.ROOT);
            if (m.getReturnType().isInterface() && m.getReturnType().getEnclosingClass() == type) {
                out.addAll(configMappingKeys(name, m.getReturnType()));
            } else {
                out.add(name);
            }
        }
        return out;
    }

    static List<JsonNode> kind(String kind) {
        return DOCS.stream().filter(d -> kind.equals(d.path("kind").asText())).toList();
    }

    static int prop(String key) {
        String v = props.getProperty(key);
        assertNotNull(v, key + " in application.properties");
        return Integer.parseInt(v.trim());
    }

    static Duration duration(String v) {
        String s = v.trim().toLowerCase(Locale.ROOT);
        if (s.endsWith("ms")) {
            return Duration.ofMillis(Long.parseLong(s.substring(0, s.length() - 2)));
        }
        if (s.endsWith("s")) {
            return Duration.ofSeconds(Long.parseLong(s.substring(0, s.length() - 1)));
        }
        if (s.endsWith("m")) {
            return Duration.ofMinutes(Long.parseLong(s.substring(0, s.length() - 1)));
        }
        return Duration.parse(v);
    }

    @Test
    void everyDocumentIsAKubernetesObject() {
        for (JsonNode d : DOCS) {
            String where = FILE.get(d).toString();
            assertFalse(d.path("apiVersion").asText().isEmpty(), "apiVersion in " + where);
            assertFalse(d.path("kind").asText().isEmpty(), "kind in " + where);
            assertFalse(d.path("metadata").path("name").asText().isEmpty(), "metadata.name in " + where);
        }
        assertEquals(2, kind("Deployment").size(), "CPU and GPU deployments");
        for (String k : List.of("Service", "ConfigMap", "PersistentVolumeClaim", "PodDisruptionBudget", "HorizontalPodAutoscaler")) {
            assertFalse(kind(k).isEmpty(), "a " + k);
        }
    }

    @Test
    void containerPortsAndProbesMatchTheApp() {
        int http = prop("quarkus.http.port");
        int grpc = prop("quarkus.grpc.server.port");
        assertNull(props.getProperty("quarkus.smallrye-health.root-path"), "health endpoints at the default /q/health");
        assertNull(props.getProperty("quarkus.http.non-application-root-path"), "non-application endpoints at the default /q");
        Map<String, String> expectProbe = Map.of("startupProbe", "/q/health/started", "readinessProbe", "/q/health/ready",
                "livenessProbe", "/q/health/live");
        for (JsonNode dep : kind("Deployment")) {
            JsonNode c = dep.at("/spec/template/spec/containers/0");
            Map<String, Integer> ports = new HashMap<>();
            c.path("ports").forEach(p -> ports.put(p.path("name").asText(), p.path("containerPort").asInt()));
            assertEquals(http, ports.get("http"), "http port of " + dep.at("/metadata/name"));
            assertEquals(grpc, ports.get("grpc"), "grpc port of " + dep.at("/metadata/name"));
            expectProbe.forEach((probe, path) -> {
                JsonNode get = c.path(probe).path("httpGet");
                assertEquals(path, get.path("path").asText(), probe + " of " + dep.at("/metadata/name"));
                String port = get.path("port").asText();
                assertTrue(ports.containsKey(port) ? ports.get(port) == http : Integer.parseInt(port) == http,
                        probe + " must hit the HTTP port, not " + port);
            });
            // labels: the selector selects the template
            dep.at("/spec/selector/matchLabels").fields().forEachRemaining(e ->
                    assertEquals(e.getValue().asText(), dep.at("/spec/template/metadata/labels").path(e.getKey()).asText()));
        }
    }

    @Test
    void gracePeriodCoversTheDrain() {
        Duration appDrain = duration(props.getProperty("sdserve.drain-timeout"));
        Duration cmDrain = duration(configMap().path("SDSERVE_DRAIN_TIMEOUT").asText());
        for (JsonNode dep : kind("Deployment")) {
            long grace = dep.at("/spec/template/spec/terminationGracePeriodSeconds").asLong();
            long preStop = 0;
            JsonNode cmd = dep.at("/spec/template/spec/containers/0/lifecycle/preStop/exec/command");
            if (cmd.isArray() && cmd.size() == 2 && cmd.get(0).asText().equals("sleep")) {
                preStop = cmd.get(1).asLong();
            }
            long need = Math.max(appDrain.toSeconds(), cmDrain.toSeconds()) + preStop + 5; // + flush and exit
            assertTrue(grace >= need, dep.at("/metadata/name") + ": terminationGracePeriodSeconds " + grace
                    + " < drain " + cmDrain.toSeconds() + " s + preStop " + preStop + " s + 5 s");
        }
    }

    static JsonNode configMap() {
        List<JsonNode> cms = kind("ConfigMap").stream().filter(d -> d.at("/metadata/name").asText().equals("sd-serve-config")).toList();
        assertEquals(1, cms.size(), "ConfigMap sd-serve-config");
        return cms.get(0).path("data");
    }

    @Test
    void environmentKeysAreRealConfigKeys() {
        JsonNode data = configMap();
        data.fieldNames().forEachRemaining(k -> assertTrue(ENV_KEYS.contains(k),
                "ConfigMap key " + k + " is no property of application.properties or SdServeConfig (known: " + ENV_KEYS + ")"));
        assertEquals(String.valueOf(prop("quarkus.http.port")), data.path("QUARKUS_HTTP_PORT").asText());
        assertEquals(String.valueOf(prop("quarkus.grpc.server.port")), data.path("QUARKUS_GRPC_SERVER_PORT").asText());
        Set<String> runtimeOnly = Set.of("JAVA_OPTS_APPEND", "TF_FORCE_GPU_ALLOW_GROWTH", "GLIBC_TUNABLES"); // read by the image / TF / glibc
        for (JsonNode dep : kind("Deployment")) {
            JsonNode c = dep.at("/spec/template/spec/containers/0");
            c.path("env").forEach(e -> {
                String k = e.path("name").asText();
                assertTrue(ENV_KEYS.contains(k) || runtimeOnly.contains(k), "env " + k + " of " + dep.at("/metadata/name"));
                if (k.equals("GLIBC_TUNABLES")) { // huge pages (HugePages): the tunable glibc reads, with the value 1
                    assertEquals(java.util.Optional.of("1"),
                            HugePages.tunable(java.util.Map.of(k, e.path("value").asText())), "GLIBC_TUNABLES of " + dep.at("/metadata/name"));
                }
            });
            c.path("envFrom").forEach(e -> assertEquals("sd-serve-config", e.at("/configMapRef/name").asText()));
            // the models volume is mounted where SDSERVE_MODELS_DIR points, from the PVC
            String modelsDir = data.path("SDSERVE_MODELS_DIR").asText();
            boolean mounted = false;
            for (JsonNode m : c.path("volumeMounts")) {
                if (m.path("mountPath").asText().equals(modelsDir)) {
                    mounted = true;
                    String vol = m.path("name").asText();
                    JsonNode v = null;
                    for (JsonNode x : dep.at("/spec/template/spec/volumes")) {
                        if (x.path("name").asText().equals(vol)) {
                            v = x;
                        }
                    }
                    assertNotNull(v, "volume " + vol);
                    String claim = v.at("/persistentVolumeClaim/claimName").asText();
                    assertTrue(kind("PersistentVolumeClaim").stream().anyMatch(p -> p.at("/metadata/name").asText().equals(claim)),
                            "PVC " + claim);
                }
            }
            assertTrue(mounted, "models volume mounted at " + modelsDir + " in " + dep.at("/metadata/name"));
        }
        assertEquals("true", props.getProperty("quarkus.otel.sdk.disabled"), "tracing export off by default");
    }

    @Test
    void servicePortsTargetTheContainers() {
        int http = prop("quarkus.http.port");
        int grpc = prop("quarkus.grpc.server.port");
        JsonNode dep = kind("Deployment").get(0);
        for (JsonNode svc : kind("Service")) {
            svc.at("/spec/selector").fields().forEachRemaining(e ->
                    assertEquals(e.getValue().asText(), dep.at("/spec/template/metadata/labels").path(e.getKey()).asText(),
                            "Service " + svc.at("/metadata/name") + " selects the pods"));
            for (JsonNode p : svc.at("/spec/ports")) {
                String target = p.path("targetPort").asText();
                int expect = target.equals("http") ? http : target.equals("grpc") ? grpc : -1;
                assertNotEquals(-1, expect, "targetPort " + target + " names a container port");
                assertEquals(expect, p.path("port").asInt(), "Service port " + p.path("name"));
            }
        }
    }

    @Test
    void gpuDeploymentAsksForAGpuOnGpuNodes() {
        JsonNode gpu = kind("Deployment").stream().filter(d -> d.at("/metadata/name").asText().endsWith("-gpu")).findFirst().orElseThrow();
        JsonNode spec = gpu.at("/spec/template/spec");
        assertEquals(1, spec.at("/containers/0/resources/limits/nvidia.com~1gpu").asInt(), "nvidia.com/gpu limit");
        assertFalse(spec.path("nodeSelector").isEmpty(), "node selector");
        assertTrue(spec.path("tolerations").toString().contains("nvidia.com/gpu"), "toleration of the GPU taint");
        JsonNode cpu = kind("Deployment").stream().filter(d -> !d.at("/metadata/name").asText().endsWith("-gpu")).findFirst().orElseThrow();
        assertTrue(cpu.at("/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu").isMissingNode());
    }

    @Test
    void autoscalingUsesTheQueueDepthMetricAndBudgetsDisruptions() {
        JsonNode hpa = kind("HorizontalPodAutoscaler").get(0);
        String target = hpa.at("/spec/scaleTargetRef/name").asText();
        assertTrue(kind("Deployment").stream().anyMatch(d -> d.at("/metadata/name").asText().equals(target)), "HPA target " + target);
        String metric = hpa.at("/spec/metrics/0/pods/metric/name").asText();
        // the adapter rule turns the app's gauge into that metric
        String rules = DOCS.stream().filter(d -> d.at("/metadata/name").asText().equals("prometheus-adapter-sd-serve-rules"))
                .findFirst().orElseThrow().at("/data/config.yaml").asText();
        assertTrue(rules.contains(ServeMetrics.QUEUE_DEPTH + "{"), "adapter reads " + ServeMetrics.QUEUE_DEPTH);
        assertTrue(rules.contains("as: \"" + metric + "\""), "adapter publishes " + metric);
        for (JsonNode so : kind("ScaledObject")) {
            assertTrue(so.at("/spec/triggers/0/metadata/query").asText().contains(ServeMetrics.QUEUE_DEPTH));
        }
        JsonNode pdb = kind("PodDisruptionBudget").get(0);
        JsonNode dep = kind("Deployment").get(0);
        pdb.at("/spec/selector/matchLabels").fields().forEachRemaining(e ->
                assertEquals(e.getValue().asText(), dep.at("/spec/template/metadata/labels").path(e.getKey()).asText()));
    }
}
