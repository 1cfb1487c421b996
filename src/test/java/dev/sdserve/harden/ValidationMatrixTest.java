package dev.sdserve.harden;

import dev.sdserve.api.grpc.ProtoMapper;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.grpc.v1.Generation;
import dev.sdserve.api.grpc.v1.LoraRef;
import dev.sdserve.api.grpc.v1.PreviewOptions;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GrpcClient;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Every bad value of every request field, on all three transports: gRPC (INVALID_ARGUMENT + {@code field} trailer),
 * REST (400 + {@code error.field}) and the A1111 route (422 + {@code detail[0].loc}). A null transport entry means the
 * field does not exist on that transport. Limits are the defaults of {@code AdmissionConfig}.
 */
@QuarkusTest
class ValidationMatrixTest {
    @GrpcClient("sdserve")
    Generation client;

    /**
     * @param field   the service field name expected on gRPC and REST
     * @param grpc    how to spoil a valid gRPC request, or null
     * @param rest    extra REST JSON members (no braces), or null
     * @param a1111   extra A1111 JSON members, or null
     * @param a1111Loc the expected A1111 location after "body", comma-joined
     */
    record Case(String field, UnaryOperator<GenerateRequest.Builder> grpc, String rest, String a1111, String a1111Loc) {
    }

    static final String LONG = "x".repeat(4001);
    static final String NINE_LORAS = "a <lora:l1:1><lora:l2:1><lora:l3:1><lora:l4:1><lora:l5:1><lora:l6:1><lora:l7:1><lora:l8:1><lora:l9:1>";

    static List<Case> cases() {
        List<Case> c = new ArrayList<>();
        // sizes: multiples of 8 within 64..2048
        for (int bad : new int[]{65, 56, 2056, 4096, 100}) {
            c.add(new Case("width", b -> b.setWidth(bad), "\"width\":" + bad, "\"width\":" + bad, "width"));
            c.add(new Case("height", b -> b.setHeight(bad), "\"height\":" + bad, "\"height\":" + bad, "height"));
        }
        c.add(new Case("width", b -> b.setWidth(-8), "\"width\":-8", "\"width\":-8", "width"));
        // steps 1..150
        c.add(new Case("steps", b -> b.setSteps(151), "\"steps\":151", "\"steps\":151", "steps"));
        c.add(new Case("steps", b -> b.setSteps(-1), "\"steps\":-1", "\"steps\":-1", "steps"));
        c.add(new Case("steps", null, "\"steps\":0", "\"steps\":0", "steps"));
        c.add(new Case("steps", b -> b.setSteps(Integer.MAX_VALUE), "\"steps\":2147483647", "\"steps\":2147483647", "steps"));
        // guidance finite within 0..30
        c.add(new Case("guidance_scale", b -> b.setGuidanceScale(30.5), "\"guidance_scale\":30.5", "\"cfg_scale\":30.5", "cfg_scale"));
        c.add(new Case("guidance_scale", b -> b.setGuidanceScale(-0.5), "\"guidance_scale\":-0.5", "\"cfg_scale\":-0.5", "cfg_scale"));
        c.add(new Case("guidance_scale", b -> b.setGuidanceScale(Double.NaN), null, "\"cfg_scale\":\"NaN\"", "cfg_scale"));
        c.add(new Case("guidance_scale", b -> b.setGuidanceScale(Double.POSITIVE_INFINITY), "\"guidance_scale\":1e400", "\"cfg_scale\":1e400", "cfg_scale"));
        c.add(new Case("guidance_scale", b -> b.setGuidanceScale(Double.NEGATIVE_INFINITY), "\"guidance_scale\":-1e400", "\"cfg_scale\":\"-Infinity\"", "cfg_scale"));
        // prompt length
        c.add(new Case("prompt", b -> b.setPrompt(LONG), "\"prompt\":\"" + LONG + "\"", "\"prompt\":\"" + LONG + "\"", "prompt"));
        c.add(new Case("negative_prompt", b -> b.setNegativePrompt(LONG), "\"negative_prompt\":\"" + LONG + "\"",
                "\"negative_prompt\":\"" + LONG + "\"", "negative_prompt"));
        // seed 0..2^32-1
        c.add(new Case("seed", b -> b.setSeed(-2), "\"seed\":-2", "\"seed\":-2", "seed"));
        c.add(new Case("seed", b -> b.setSeed(1L << 32), "\"seed\":4294967296", "\"seed\":4294967296", "seed"));
        c.add(new Case("seed", b -> b.setSeed(0xFFFF_FFFFL).setImages(2), "\"seed\":4294967295,\"images\":2",
                "\"seed\":4294967295,\"batch_size\":2", "seed"));
        c.add(new Case("seed", null, null, "\"seed\":4294967290,\"n_iter\":8", "seed"));
        // LoRAs: at most 8, weights finite within ±10
        // ... counted over the listed ones and the prompt's <lora:…> tags together: tags are named as "prompt"
        c.add(new Case("prompt", b -> b.setPrompt(NINE_LORAS), "\"prompt\":\"" + NINE_LORAS + "\"", "\"prompt\":\"" + NINE_LORAS + "\"", "prompt"));
        c.add(new Case("loras", b -> {
            for (int i = 0; i < 9; i++) {
                b.addLoras(LoraRef.newBuilder().setName("l" + i).setWeight(1));
            }
            return b;
        }, "\"loras\":[" + "{\"name\":\"a\"},".repeat(8) + "{\"name\":\"a\"}]", null, null));
        // names that are not plain names (admission, before any lookup)
        c.add(new Case("loras[0].name", b -> b.addLoras(LoraRef.newBuilder().setName("../../secret").setWeight(1)),
                "\"loras\":[{\"name\":\"../../secret\"}]", null, null));
        c.add(new Case("prompt", b -> b.setPrompt("x <lora:../../secret:1>"), "\"prompt\":\"x <lora:../../secret:1>\"",
                "\"prompt\":\"x <lora:../../secret:1>\"", "prompt"));
        c.add(new Case("model", b -> b.setModel("../../secret"), "\"model\":\"../../secret\"",
                "\"override_settings\":{\"sd_model_checkpoint\":\"../../secret\"}", "override_settings,sd_model_checkpoint"));
        c.add(new Case("loras[0].weight", b -> b.addLoras(LoraRef.newBuilder().setName("a").setWeight(Double.NaN)),
                "\"loras\":[{\"name\":\"a\",\"weight\":1e400}]", "\"prompt\":\"x <lora:a:11>\"", "prompt"));
        c.add(new Case("loras[0].weight", b -> b.addLoras(LoraRef.newBuilder().setName("a").setWeight(-10.5)),
                "\"loras\":[{\"name\":\"a\",\"weight\":-10.5}]", "\"prompt\":\"x <lora:a:-10.5>\"", "prompt"));
        c.add(new Case("loras[0].name", b -> b.addLoras(LoraRef.newBuilder().setName(" ").setWeight(1)),
                "\"loras\":[{\"name\":\"\",\"weight\":1}]", null, null));
        // images per request 1..8
        c.add(new Case("images", b -> b.setImages(9), "\"images\":9", "\"batch_size\":9", "batch_size"));
        c.add(new Case("images", b -> b.setImages(-1), "\"images\":-1", "\"batch_size\":-1", "batch_size"));
        c.add(new Case("images", null, "\"images\":0", "\"batch_size\":0", "batch_size"));
        c.add(new Case("n_iter", null, null, "\"n_iter\":65", "n_iter"));
        c.add(new Case("n_iter", null, null, "\"n_iter\":0", "n_iter"));
        // clip skip 1..12
        c.add(new Case("clip_skip", b -> b.setClipSkip(13), "\"clip_skip\":13",
                "\"override_settings\":{\"CLIP_stop_at_last_layers\":13}", "override_settings,CLIP_stop_at_last_layers"));
        // preview options
        c.add(new Case("preview.every_steps", b -> b.setPreview(PreviewOptions.newBuilder().setEverySteps(151)),
                "\"preview\":{\"every_steps\":151}", null, null));
        c.add(new Case("preview.every_steps", b -> b.setPreview(PreviewOptions.newBuilder().setEverySteps(-1)),
                "\"preview\":{\"every_steps\":-1}", null, null));
        c.add(new Case("preview.max_edge", b -> b.setPreview(PreviewOptions.newBuilder().setMaxEdge(8)),
                "\"preview\":{\"max_edge\":8}", null, null));
        c.add(new Case("preview.max_edge", b -> b.setPreview(PreviewOptions.newBuilder().setMaxEdge(4096)),
                "\"preview\":{\"max_edge\":4096}", null, null));
        c.add(new Case("preview.format", null, "\"preview\":{\"format\":\"gif\"}", null, null));
        // sampler, scheduling fields
        c.add(new Case("sampler", b -> b.setSampler("no-such-sampler"), "\"sampler\":\"no-such-sampler\"", null, null));
        c.add(new Case("priority", b -> b.setPriority(1001), "\"priority\":1001", null, null));
        c.add(new Case("priority", b -> b.setPriority(Integer.MIN_VALUE), "\"priority\":-2147483648", null, null));
        c.add(new Case("tenant", b -> b.setTenant("t".repeat(129)), "\"tenant\":\"" + "t".repeat(129) + "\"", null, null));
        c.add(new Case("tenant", b -> b.setTenant("a\nb"), "\"tenant\":\"a\\nb\"", null, null));
        c.add(new Case("deadline_ms", b -> b.setDeadlineMs(-1), "\"deadline_ms\":9223372036854775807", null, null));
        c.add(new Case("deadline_ms", null, "\"deadline_ms\":-5", null, null));
        c.add(new Case("slo_class", null, "\"slo_class\":\"urgent\"", null, null));
        // img2img / inpainting fields: strength without an init image, bytes that are no image, strength out of range
        c.add(new Case("strength", b -> b.setStrength(0.5), "\"strength\":0.5", null, null));
        c.add(new Case("init_image", b -> b.setInitImage(com.google.protobuf.ByteString.copyFromUtf8("nope")),
                "\"init_image\":\"bm9wZQ==\"", null, null));
        c.add(new Case("init_image", b -> b.setMaskImage(com.google.protobuf.ByteString.copyFromUtf8("nope")),
                "\"mask_image\":\"bm9wZQ==\"", null, null));
        // DeepCache's interval: 0..20 (A1111: override_settings, an integer)
        c.add(new Case("deep_cache_interval", b -> b.setDeepCacheInterval(21), "\"deep_cache_interval\":21",
                "\"override_settings\":{\"deep_cache_interval\":21}", "deep_cache_interval"));
        c.add(new Case("deep_cache_interval", b -> b.setDeepCacheInterval(-1), "\"deep_cache_interval\":-1", null, null));
        c.add(new Case("deep_cache_interval", null, null, "\"override_settings\":{\"deep_cache_interval\":\"2\"}",
                "override_settings,deep_cache_interval"));
        return c;
    }

    @Test
    void everyBadValueOnEveryTransport() {
        int grpc = 0, rest = 0, a1111 = 0;
        List<String> failures = new ArrayList<>();
        for (Case c : cases()) {
            if (c.grpc() != null) {
                grpc++;
                GenerateRequest req = c.grpc().apply(GenerateRequest.newBuilder().setPrompt("x").setSteps(2)
                        .setWidth(64).setHeight(64).setSeed(1)).build();
                try {
                    client.generate(req).collect().asList().await().atMost(Duration.ofSeconds(30));
                    failures.add("gRPC accepted " + c);
                } catch (StatusRuntimeException e) {
                    if (e.getStatus().getCode() != Status.Code.INVALID_ARGUMENT
                            || !c.field().equals(e.getTrailers().get(ProtoMapper.FIELD))) {
                        failures.add("gRPC " + c.field() + ": " + e.getStatus() + " field=" + e.getTrailers().get(ProtoMapper.FIELD));
                    }
                }
            }
            if (c.rest() != null) {
                rest++;
                Response r = given().contentType(ContentType.JSON)
                        .body("{\"prompt\":\"x\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":1," + c.rest() + "}")
                        .post("/v1/generations");
                String f = r.statusCode() == 400 ? r.jsonPath().getString("error.field") : null;
                if (r.statusCode() != 400 || !c.field().equals(f)) {
                    failures.add("REST " + c.field() + " (" + abbreviate(c.rest()) + "): " + r.statusCode() + " " + abbreviate(r.asString()));
                }
            }
            if (c.a1111() != null) {
                a1111++;
                Response r = given().contentType(ContentType.JSON)
                        .body("{\"prompt\":\"x\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":1," + c.a1111() + "}")
                        .post("/sdapi/v1/txt2img");
                List<Object> loc = r.statusCode() == 422 ? r.jsonPath().getList("detail[0].loc") : null;
                String expected = "body," + c.a1111Loc();
                if (r.statusCode() != 422 || loc == null || !expected.equals(String.join(",", loc.stream().map(String::valueOf).toList()))) {
                    failures.add("A1111 " + c.a1111Loc() + " (" + abbreviate(c.a1111()) + "): " + r.statusCode() + " " + abbreviate(r.asString()));
                }
            }
        }
        System.out.printf("ValidationMatrixTest: %d cases, %d gRPC + %d REST + %d A1111 = %d requests%n",
                cases().size(), grpc, rest, a1111, grpc + rest + a1111);
        assertTrue(failures.isEmpty(), failures.size() + " failures:\n" + String.join("\n", failures));
    }

    private static String abbreviate(String s) {
        return s.length() > 160 ? s.substring(0, 160) + "…" : s;
    }
}
