package dev.sdserve.api.a1111;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdserve.api.ErrorMessages;
import dev.sdserve.job.ServeException;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DefaultValue;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * AUTOMATIC1111-compatible routes ({@code /sdapi/v1/…}) so existing scripts and tools work unchanged. Errors use
 * A1111's shapes: 422 {@code {"detail": [{"loc", "msg", "type"}]}} for validation, else
 * {@code {"error", "detail", "body", "errors"}} with the HTTP status of the failure.
 */
@Path("/sdapi/v1")
@Produces(MediaType.APPLICATION_JSON)
@Tag(name = "A1111 compatibility")
public class A1111Resource {
    /** Service field names → A1111 request locations, for validation errors. */
    private static final Map<String, List<Object>> FIELDS = Map.of(
            "guidance", List.of("cfg_scale"),
            "guidance_scale", List.of("cfg_scale"),
            "sampler", List.of("sampler_name"),
            "images", List.of("batch_size"),
            "model", List.of("override_settings", "sd_model_checkpoint"),
            "clip_skip", List.of("override_settings", "CLIP_stop_at_last_layers"),
            "token_merging_ratio", List.of("override_settings", "token_merging_ratio"),
            "negativePrompt", List.of("negative_prompt"));

    @Inject
    A1111Service a1111;

    @Inject
    dev.sdserve.auth.Auth auth;
    @Inject
    jakarta.ws.rs.container.ContainerRequestContext requestContext;

    private static JsonNode parse(String body) {
        if (body == null || body.isBlank()) {
            throw A1111Exception.at("field required", "value_error.missing");
        }
        try {
            return A1111Service.JSON.readTree(body);
        } catch (JsonProcessingException e) {
            long offset = e.getLocation() == null ? 0 : Math.max(0, e.getLocation().getCharOffset());
            throw new A1111Exception(List.of(new A1111Exception.Detail(List.of("body", offset),
                    e.getOriginalMessage(), "value_error.jsondecode")));
        }
    }

    @POST
    @Path("/txt2img")
    @Consumes({MediaType.APPLICATION_JSON, MediaType.WILDCARD})
    @Operation(summary = "A1111 txt2img: images (base64 PNG with a 'parameters' chunk), parameters, info (a JSON string)")
    public Uni<Map<String, Object>> txt2img(@org.eclipse.microprofile.openapi.annotations.parameters.RequestBody(
            content = @org.eclipse.microprofile.openapi.annotations.media.Content(mediaType = MediaType.APPLICATION_JSON,
                    schema = @org.eclipse.microprofile.openapi.annotations.media.Schema(implementation = Txt2ImgJson.class)))
                                            String body, @jakarta.ws.rs.HeaderParam("x-api-key") String apiKey,
                                            @jakarta.ws.rs.HeaderParam("authorization") String authorization) {
        Txt2ImgRequest r = Txt2ImgRequest.from(parse(body));
        // the API key's tenant (auth on) feeds the scheduler's fairness; the filter already refused bad keys
        // the key's concurrency slot: held while this call is open and while any job it started runs
        dev.sdserve.auth.Auth.Permit permit = dev.sdserve.auth.AuthHttpFilter.permit(requestContext);
        return a1111.txt2img(r, auth.authenticate(apiKey, authorization).tenant(), permit)
                .onTermination().invoke(permit::close).map(res -> Map.of("images", res.images(), "parameters", res.parameters(),
                "info", res.info()));
    }

    @POST
    @Path("/img2img")
    @Consumes({MediaType.APPLICATION_JSON, MediaType.WILDCARD})
    @Operation(summary = "A1111 img2img and inpainting: init_images (one base64 image), denoising_strength, mask and"
            + " its options; the answer as txt2img's (infotext with 'Denoising strength')")
    public Uni<Map<String, Object>> img2img(String body, @jakarta.ws.rs.HeaderParam("x-api-key") String apiKey,
                                            @jakarta.ws.rs.HeaderParam("authorization") String authorization) {
        Img2ImgRequest r = Img2ImgRequest.from(parse(body));
        dev.sdserve.auth.Auth.Permit permit = dev.sdserve.auth.AuthHttpFilter.permit(requestContext);
        return answer(a1111.img2img(r, auth.authenticate(apiKey, authorization).tenant(), permit), permit);
    }

    /** A txt2img / img2img result in A1111's shape; the caller's slot is released when the call ends. */
    private static Uni<Map<String, Object>> answer(Uni<A1111Service.Txt2ImgResult> result,
                                                   dev.sdserve.auth.Auth.Permit permit) {
        return result.onTermination().invoke(permit::close).map(res -> Map.of("images", res.images(), "parameters",
                res.parameters(), "info", res.info()));
    }

    @GET
    @Path("/progress")
    @Operation(summary = "A1111 progress of the job in flight: progress, eta_relative, state, current_image (base64 preview), textinfo")
    public ObjectNode progress(@QueryParam("skip_current_image") @DefaultValue("false") boolean skipCurrentImage) {
        return a1111.progress(skipCurrentImage);
    }

    @POST
    @Path("/interrupt")
    @Operation(summary = "A1111 interrupt: the job in flight stops and its txt2img call returns the image as it stood "
            + "(decoded from the latest step's denoised estimate; infotext 'Steps done: k/n'); no further iterations run")
    public Map<String, Object> interrupt() {
        a1111.interrupt();
        return Map.of();
    }

    @POST
    @Path("/skip")
    @Operation(summary = "A1111 skip: the current job stops with its image as it stood (as interrupt); its txt2img call "
            + "goes on with the next iteration")
    public Map<String, Object> skip() {
        a1111.skip();
        return Map.of();
    }

    @GET
    @Path("/sd-models")
    @Operation(summary = "A1111 checkpoint list: title, model_name, hash, sha256, filename, config")
    public ArrayNode sdModels() {
        return a1111.sdModels();
    }

    @GET
    @Path("/loras")
    @Operation(summary = "A1111 LoRA list: name, alias, path, metadata")
    public ArrayNode loras() {
        return a1111.loras();
    }

    @GET
    @Path("/samplers")
    @Operation(summary = "A1111 sampler list: name, aliases, options")
    public ArrayNode samplers() {
        return a1111.samplers();
    }

    @Inject
    dev.sdserve.job.ModelService models;

    @POST
    @Path("/refresh-checkpoints")
    @Operation(summary = "A1111 refresh: re-lists the models directory now (also done every 10 s)")
    public Map<String, Object> refreshCheckpoints() {
        models.rescan();
        return Map.of();
    }

    @POST
    @Path("/refresh-loras")
    @Operation(summary = "A1111 refresh: re-lists the LoRAs now (also done every 10 s)")
    public Map<String, Object> refreshLoras() {
        models.rescan();
        return Map.of();
    }

    @GET
    @Path("/scripts")
    @Operation(summary = "A1111 script list: none (scripts are not supported); clients such as webuiapi ask at start")
    public Map<String, List<String>> scripts() {
        return Map.of("txt2img", List.of(), "img2img", List.of());
    }

    @GET
    @Path("/sd-vae")
    @Operation(summary = "A1111 VAE list: none apart from each checkpoint's own")
    public List<Object> sdVae() {
        return List.of();
    }

    @GET
    @Path("/embeddings")
    @Operation(summary = "A1111 textual-inversion embeddings: none (not supported)")
    public Map<String, Object> embeddings() {
        return Map.of("loaded", Map.of(), "skipped", Map.of());
    }

    @GET
    @Path("/options")
    @Operation(summary = "A1111 options (the subset sd-serve knows: sd_model_checkpoint, …)")
    public ObjectNode options() {
        return a1111.options();
    }

    @POST
    @Path("/options")
    @Consumes({MediaType.APPLICATION_JSON, MediaType.WILDCARD})
    @Operation(summary = "A1111 options: sets sd_model_checkpoint for A1111 calls that do not override it")
    public Map<String, Object> setOptions(String body) {
        a1111.setOptions(parse(body));
        return Map.of();
    }

    // ---------------------------------------------------------------- errors

    @ServerExceptionMapper
    public Response mapValidation(A1111Exception e) {
        return validation(e.details());
    }

    @ServerExceptionMapper
    public Response mapServe(ServeException e) {
        return error(e);
    }

    @ServerExceptionMapper
    public Response mapIllegal(IllegalArgumentException e) {
        return error(ErrorMessages.toServe(e));
    }

    static Response validation(List<A1111Exception.Detail> details) {
        List<Map<String, Object>> list = new ArrayList<>();
        for (A1111Exception.Detail d : details) {
            list.add(Map.of("loc", d.loc(), "msg", d.msg(), "type", d.type()));
        }
        return Response.status(422).type(MediaType.APPLICATION_JSON).entity(Map.of("detail", list)).build();
    }

    /** A failure in A1111's shapes: 422 with detail[].loc for INVALID_ARGUMENT, else {error, detail, body, errors}. */
    public static Response error(ServeException e) {
        if (e.code() == ServeException.Code.INVALID_ARGUMENT) {
            List<Object> loc = new ArrayList<>();
            loc.add("body");
            String f = e.field() == null ? "body" : e.field();
            if (f.startsWith("loras")) {
                loc.add("prompt");
            } else {
                loc.addAll(FIELDS.getOrDefault(f, List.of(f)));
            }
            return validation(List.of(new A1111Exception.Detail(loc, e.getMessage(), "value_error")));
        }
        Map<String, Object> body = new java.util.LinkedHashMap<>();
        body.put("error", e.code().name());
        body.put("detail", e.getMessage());
        body.put("body", "");
        body.put("errors", e.getMessage());
        Response.ResponseBuilder b = Response.status(e.code().http == 499 ? 409 : e.code().http)
                .type(MediaType.APPLICATION_JSON).entity(body);
        if (e.retryAfterMillis() != null) {
            b.header("Retry-After", Math.max(1, (e.retryAfterMillis() + 999) / 1000));
        }
        return b.build();
    }
}
