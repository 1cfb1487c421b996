package dev.sdserve.api.rest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.admission.Limits;
import dev.sdserve.sampler.Samplers;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The OpenAPI document carries the request limits (read from {@link Limits} and the sampler registry here, not copied
 * numbers), and a client that validates requests against it — a small JSON-schema validator standing in for a
 * generated client — refuses exactly what the server refuses, naming the same field.
 */
@QuarkusTest
class OpenApiLimitsTest {
    static final ObjectMapper M = new ObjectMapper();

    private static JsonNode doc() throws Exception {
        return M.readTree(given().accept(ContentType.JSON).get("/q/openapi?format=json").then().statusCode(200)
                .extract().asString());
    }

    private static void assertRange(JsonNode p, String name, Number min, Number max) {
        assertEquals(0, new BigDecimal(min.toString()).compareTo(p.get("minimum").decimalValue()), name + " minimum: " + p);
        assertEquals(0, new BigDecimal(max.toString()).compareTo(p.get("maximum").decimalValue()), name + " maximum: " + p);
    }

    @Test
    void theSchemaStatesTheValidationsOwnLimits() throws Exception {
        JsonNode schemas = doc().at("/components/schemas");
        JsonNode g = schemas.at("/GenerationJson/properties");
        assertRange(g.get("steps"), "steps", 1, Limits.MAX_STEPS);
        for (String edge : List.of("width", "height")) {
            assertRange(g.get(edge), edge, Limits.MIN_IMAGE_SIZE, Limits.MAX_IMAGE_SIZE);
            assertEquals(Limits.SIZE_MULTIPLE, g.get(edge).get("multipleOf").asInt());
        }
        assertRange(g.get("guidance_scale"), "guidance_scale", 0, Limits.MAX_GUIDANCE);
        assertRange(g.get("seed"), "seed", 0, Limits.MAX_SEED);
        assertRange(g.get("clip_skip"), "clip_skip", 1, Limits.MAX_CLIP_SKIP);
        assertRange(g.get("images"), "images", 1, Limits.MAX_IMAGES);
        assertRange(g.get("priority"), "priority", -Limits.MAX_PRIORITY, Limits.MAX_PRIORITY);
        assertRange(g.get("deadline_ms"), "deadline_ms", 1, Limits.MAX_DEADLINE_MILLIS);
        assertRange(g.get("mask_blur"), "mask_blur", 0, Limits.MAX_MASK_BLUR);
        assertRange(g.get("resize_mode"), "resize_mode", 0, 2);
        assertRange(g.get("inpainting_fill"), "inpainting_fill", 0, 3);
        assertTrue(g.at("/init_image/description").asText().contains(Integer.toString(Limits.MAX_INIT_IMAGE_BYTES)));
        assertEquals(Limits.MAX_PROMPT_CHARS, g.at("/prompt/maxLength").asInt());
        assertEquals(Limits.MAX_PROMPT_CHARS, g.at("/negative_prompt/maxLength").asInt());
        assertEquals(Limits.MAX_TENANT_CHARS, g.at("/tenant/maxLength").asInt());
        assertEquals(Limits.MAX_LORAS, g.at("/loras/maxItems").asInt());
        Set<String> samplers = new HashSet<>();
        g.at("/sampler/enum").forEach(n -> samplers.add(n.asText()));
        assertTrue(samplers.containsAll(Samplers.ids()), "every sampler id: " + samplers);
        Samplers.list().forEach(s -> assertTrue(samplers.contains(s.displayName()), s.displayName()));
        assertEquals(List.of("interactive", "standard", "batch"), M.convertValue(g.at("/slo_class/enum"), List.class));

        JsonNode lora = schemas.at("/LoraJson/properties");
        assertRange(lora.get("weight"), "weight", -Limits.MAX_LORA_WEIGHT, Limits.MAX_LORA_WEIGHT);
        assertEquals(Limits.MAX_NAME_CHARS, lora.at("/name/maxLength").asInt());
        JsonNode preview = schemas.at("/PreviewJson/properties");
        assertRange(preview.get("every_steps"), "every_steps", 0, Limits.MAX_STEPS);
        assertRange(preview.get("max_edge"), "max_edge", Limits.MIN_PREVIEW_EDGE, Limits.MAX_PREVIEW_EDGE);

        JsonNode a1111 = schemas.at("/Txt2ImgJson/properties");
        assertRange(a1111.get("steps"), "steps", 1, Limits.MAX_STEPS);
        assertRange(a1111.get("cfg_scale"), "cfg_scale", 0, Limits.MAX_GUIDANCE);
        assertRange(a1111.get("batch_size"), "batch_size", 1, Limits.MAX_IMAGES);
        assertRange(a1111.get("n_iter"), "n_iter", 1, Limits.MAX_N_ITER);
        assertRange(a1111.get("seed"), "seed", -1, Limits.MAX_SEED);
        assertEquals("#/components/schemas/Txt2ImgJson",
                doc().at("/paths/~1sdapi~1v1~1txt2img/post/requestBody/content/application~1json/schema/$ref").asText());
    }

    /** A request and the field the server refuses it for (null: accepted). */
    record Case(String json, String field) {
    }

    @Test
    void aClientValidatingAgainstTheSchemaRefusesWhatTheServerRefuses() throws Exception {
        JsonNode root = doc();
        JsonNode schema = root.at("/components/schemas/GenerationJson");
        String ok = "\"prompt\":\"a fox\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":1";
        List<Case> cases = new ArrayList<>();
        cases.add(new Case("{" + ok + "}", null));
        cases.add(new Case("{\"prompt\":\"a fox\",\"steps\":" + Limits.MAX_STEPS + ",\"width\":" + Limits.MAX_IMAGE_SIZE
                + ",\"height\":" + Limits.MIN_IMAGE_SIZE + ",\"guidance_scale\":" + Limits.MAX_GUIDANCE + ",\"seed\":"
                + Limits.MAX_SEED + ",\"sampler\":\"DPM++ 2M Karras\",\"preview\":{\"off\":true},\"best_effort\":true}", null));
        cases.add(new Case("{" + ok + ",\"loras\":[{\"name\":\"film\",\"weight\":" + Limits.MAX_LORA_WEIGHT + "}]}", null));
        cases.add(new Case("{" + ok + ",\"steps\":0}", "steps"));
        cases.add(new Case("{" + ok + ",\"steps\":" + (Limits.MAX_STEPS + 1) + "}", "steps"));
        cases.add(new Case("{" + ok + ",\"width\":" + (Limits.MIN_IMAGE_SIZE - Limits.SIZE_MULTIPLE) + "}", "width"));
        cases.add(new Case("{" + ok + ",\"height\":" + (Limits.MAX_IMAGE_SIZE + Limits.SIZE_MULTIPLE) + "}", "height"));
        cases.add(new Case("{" + ok + ",\"width\":" + (Limits.MIN_IMAGE_SIZE + 1) + "}", "width"));
        cases.add(new Case("{" + ok + ",\"guidance_scale\":" + (Limits.MAX_GUIDANCE + 0.5) + "}", "guidance_scale"));
        cases.add(new Case("{" + ok + ",\"guidance_scale\":-0.5}", "guidance_scale"));
        cases.add(new Case("{" + ok + ",\"seed\":" + (Limits.MAX_SEED + 1) + "}", "seed"));
        cases.add(new Case("{" + ok + ",\"seed\":-2}", "seed"));
        cases.add(new Case("{" + ok + ",\"clip_skip\":" + (Limits.MAX_CLIP_SKIP + 1) + "}", "clip_skip"));
        cases.add(new Case("{" + ok + ",\"images\":" + (Limits.MAX_IMAGES + 1) + "}", "images"));
        cases.add(new Case("{" + ok + ",\"images\":0}", "images"));
        cases.add(new Case("{" + ok + ",\"sampler\":\"warp_drive\"}", "sampler"));
        cases.add(new Case("{" + ok + ",\"slo_class\":\"urgent\"}", "slo_class"));
        cases.add(new Case("{" + ok + ",\"priority\":" + (Limits.MAX_PRIORITY + 1) + "}", "priority"));
        cases.add(new Case("{" + ok + ",\"deadline_ms\":0}", "deadline_ms"));
        cases.add(new Case("{" + ok + ",\"tenant\":\"" + "t".repeat(Limits.MAX_TENANT_CHARS + 1) + "\"}", "tenant"));
        cases.add(new Case("{" + ok.replace("a fox", "x".repeat(Limits.MAX_PROMPT_CHARS + 1)) + "}", "prompt"));
        cases.add(new Case("{" + ok + ",\"model\":\"" + "m".repeat(Limits.MAX_NAME_CHARS + 1) + "\"}", "model"));
        cases.add(new Case("{" + ok + ",\"loras\":[{\"name\":\"film\",\"weight\":" + (Limits.MAX_LORA_WEIGHT + 0.5) + "}]}",
                "loras[0].weight"));
        cases.add(new Case("{" + ok + ",\"loras\":[{\"weight\":1}]}", "loras[0].name"));
        StringBuilder many = new StringBuilder("[");
        for (int i = 0; i <= Limits.MAX_LORAS; i++) {
            many.append(i == 0 ? "" : ",").append("{\"name\":\"l").append(i).append("\"}");
        }
        cases.add(new Case("{" + ok + ",\"loras\":" + many + "]}", "loras"));
        cases.add(new Case("{" + ok + ",\"preview\":{\"every_steps\":" + (Limits.MAX_STEPS + 1) + "}}", "preview.every_steps"));
        cases.add(new Case("{" + ok + ",\"preview\":{\"max_edge\":" + (Limits.MIN_PREVIEW_EDGE - 1) + "}}", "preview.max_edge"));
        cases.add(new Case("{" + ok + ",\"preview\":{\"format\":\"gif\"}}", "preview.format"));

        List<String> failures = new ArrayList<>();
        for (Case c : cases) {
            List<String> schemaErrors = new ArrayList<>();
            validate(M.readTree(c.json()), schema, root, "", schemaErrors);
            Response r = given().contentType(ContentType.JSON).body(c.json()).post("/v1/generations");
            String serverField = r.statusCode() == 400 ? r.jsonPath().getString("error.field") : null;
            if (r.statusCode() == 202) {
                given().delete("/v1/generations/" + r.jsonPath().getString("id"));
            }
            String label = c.json().length() > 120 ? c.json().substring(0, 120) + "…" : c.json();
            if (c.field() == null) {
                if (r.statusCode() != 202 || !schemaErrors.isEmpty()) {
                    failures.add("valid " + label + ": server " + r.statusCode() + " " + r.asString() + ", schema " + schemaErrors);
                }
            } else if (!c.field().equals(serverField) || !schemaErrors.contains(c.field())) {
                failures.add(label + ": expected " + c.field() + "; server " + r.statusCode() + " field=" + serverField
                        + ", schema flagged " + schemaErrors);
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    /** JSON-schema checks a generated client makes: $ref, type, range, multipleOf, lengths, enum, required. */
    static void validate(JsonNode v, JsonNode s, JsonNode root, String path, List<String> errors) {
        if (s.has("$ref")) {
            s = root.at(s.get("$ref").asText().substring(1));
        }
        String type = s.path("type").asText("");
        boolean bad = switch (type) {
            case "integer" -> !v.isIntegralNumber();
            case "number" -> !v.isNumber();
            case "string" -> !v.isTextual();
            case "boolean" -> !v.isBoolean();
            case "array" -> !v.isArray();
            case "object" -> !v.isObject();
            default -> false;
        };
        if (bad) {
            errors.add(path);
            return;
        }
        if (v.isNumber()) {
            BigDecimal d = v.decimalValue();
            if (s.has("minimum") && d.compareTo(s.get("minimum").decimalValue()) < 0
                    || s.has("maximum") && d.compareTo(s.get("maximum").decimalValue()) > 0
                    || s.has("multipleOf") && d.remainder(s.get("multipleOf").decimalValue()).signum() != 0) {
                errors.add(path);
            }
        }
        if (v.isTextual() && s.has("maxLength") && v.asText().codePointCount(0, v.asText().length()) > s.get("maxLength").asInt()) {
            errors.add(path);
        }
        if (s.has("enum")) {
            boolean found = false;
            for (JsonNode e : s.get("enum")) {
                found |= e.equals(v);
            }
            if (!found) {
                errors.add(path);
            }
        }
        if (v.isArray()) {
            if (s.has("maxItems") && v.size() > s.get("maxItems").asInt()) {
                errors.add(path);
            }
            for (int i = 0; i < v.size(); i++) {
                validate(v.get(i), s.get("items"), root, path + "[" + i + "]", errors);
            }
        }
        if (v.isObject()) {
            for (JsonNode req : s.path("required")) {
                if (!v.has(req.asText())) {
                    errors.add(path.isEmpty() ? req.asText() : path + "." + req.asText());
                }
            }
            Iterator<Map.Entry<String, JsonNode>> it = v.fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> e = it.next();
                JsonNode ps = s.path("properties").get(e.getKey());
                if (ps != null) {
                    validate(e.getValue(), ps, root, path.isEmpty() ? e.getKey() : path + "." + e.getKey(), errors);
                }
            }
        }
    }
}
