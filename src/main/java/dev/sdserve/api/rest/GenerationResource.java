package dev.sdserve.api.rest;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonMappingException;
import dev.sdserve.api.ErrorMessages;
import dev.sdserve.api.EventStreams;
import dev.sdserve.config.SdServeConfig;
import dev.sdserve.job.GenerationService;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.ModelCatalog;
import dev.sdserve.sampler.Samplers;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.DefaultValue;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.sse.OutboundSseEvent;
import jakarta.ws.rs.sse.Sse;
import org.eclipse.microprofile.openapi.annotations.Operation;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static dev.sdserve.api.rest.RestDtos.*;

/** REST transport: the same model as gRPC, in JSON and Server-Sent Events. */
@Path("/v1")
@Produces(MediaType.APPLICATION_JSON)
public class GenerationResource {
    static final String BASE = "/v1/generations/";

    @Inject
    GenerationService service;
    @Inject
    ModelCatalog catalog;
    @Inject
    SdServeConfig config;

    private PreviewOptions defaultPreview() {
        return new PreviewOptions(config.preview().everySteps(), config.preview().format(), config.preview().maxEdge());
    }

    @Inject
    dev.sdserve.auth.Auth auth;
    @Inject
    jakarta.ws.rs.container.ContainerRequestContext requestContext;

    private Job find(String id) {
        return service.find(id).orElseThrow(() -> ServeException.notFound("no job with id '" + id + "'"));
    }

    @POST
    @Path("/generations")
    @Operation(summary = "Submit a generation; returns the job (202) with links to its events and image")
    public Response create(GenerationJson body, @jakarta.ws.rs.HeaderParam("x-api-key") String apiKey,
                           @jakarta.ws.rs.HeaderParam("authorization") String authorization) {
        dev.sdserve.job.GenerationRequest request = RestMapper.toRequest(body, defaultPreview(), System.currentTimeMillis());
        // the key's tenant replaces the body's (the filter already refused missing or bad keys)
        request = dev.sdserve.auth.Auth.applyTenant(request, auth.authenticate(apiKey, authorization));
        Job job = service.submit(request, true);
        // the key's concurrency slot stays taken until the job ends, not just until this response is written
        dev.sdserve.auth.AuthHttpFilter.permit(requestContext).holdUntilEnd(job);
        return Response.accepted(RestMapper.job(job, BASE)).location(URI.create(BASE + job.id())).build();
    }

    @GET
    @Path("/generations/{id}")
    @Operation(summary = "State of a job")
    public JobJson get(@PathParam("id") String id) {
        return RestMapper.job(find(id), BASE);
    }

    @DELETE
    @Path("/generations/{id}")
    @Operation(summary = "Cancel a job")
    public JobJson cancel(@PathParam("id") String id) {
        Job job = find(id);
        service.cancel(id);
        return RestMapper.job(job, BASE);
    }

    @GET
    @Path("/generations/{id}/events")
    @Produces(MediaType.SERVER_SENT_EVENTS)
    @Operation(summary = "Server-Sent Events of a job: queued, started, step (with a base64 preview), completed or ended")
    public Multi<OutboundSseEvent> events(@PathParam("id") String id, @Context Sse sse) {
        Job job = find(id);
        return EventStreams.events(job).map(e -> {
            EventJson j = RestMapper.event(e, BASE);
            return sse.newEventBuilder().name(j.type()).id(j.type().equals("step") ? String.valueOf(j.index()) : j.type())
                    .mediaType(MediaType.APPLICATION_JSON_TYPE).data(EventJson.class, j).build();
        });
    }

    @GET
    @Path("/generations/{id}/image")
    @Produces({"image/png", MediaType.APPLICATION_JSON})
    @Operation(summary = "The PNG of a completed job; ?wait=N waits up to N seconds for it")
    public Uni<Response> image(@PathParam("id") String id, @QueryParam("index") @DefaultValue("0") int index,
                               @QueryParam("wait") @DefaultValue("0") int waitSeconds) {
        Job job = find(id);
        if (job.terminalEvent() == null && waitSeconds > 0) {
            return EventStreams.events(job).select().where(Job::isTerminal).toUni()
                    .ifNoItem().after(Duration.ofSeconds(Math.min(waitSeconds, 600))).recoverWithItem((JobEvent) null)
                    .map(ignored -> imageResponse(job, index));
        }
        return Uni.createFrom().item(imageResponse(job, index));
    }

    private Response imageResponse(Job job, int index) {
        JobEvent term = job.terminalEvent();
        if (term instanceof JobEvent.Completed c) {
            if (index < 0 || index >= c.images().size()) {
                throw ServeException.invalid("index", "must be in 0.." + (c.images().size() - 1));
            }
            return Response.ok(c.images().get(index), "image/png")
                    .header("X-Seed", c.seeds().get(index)).build();
        }
        if (term instanceof JobEvent.Ended e) {
            throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "job " + job.id() + " has no image: it ended "
                    + e.state().name().toLowerCase() + (e.error() == null ? "" : " (" + e.error().getMessage() + ")"));
        }
        JobEvent.Step s = job.lastStep();
        throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "job " + job.id() + " is "
                + job.state().name().toLowerCase() + (s == null ? "" : " (step " + s.index() + " of " + s.total() + ")")
                + "; the image is ready when it completes (or pass ?wait=60)");
    }

    // GET /v1/models (with residency) is in ModelsResource.

    @GET
    @Path("/loras")
    @Operation(summary = "LoRAs the server knows")
    public Map<String, List<ModelCatalog.LoraEntry>> loras() {
        return Map.of("loras", catalog.loras());
    }

    @GET
    @Path("/samplers")
    @Operation(summary = "Samplers (ids and A1111 names)")
    public Map<String, List<Map<String, Object>>> samplers() {
        return Map.of("samplers", Samplers.list().stream()
                .map(s -> Map.<String, Object>of("id", s.id(), "display_name", s.displayName(), "stochastic", s.stochastic()))
                .toList());
    }

    @ServerExceptionMapper
    public Response mapServe(ServeException e) {
        return errorResponse(e);
    }

    @ServerExceptionMapper
    public Response mapJson(JsonProcessingException e) {
        return malformedJson(e);
    }

    /** A 400 naming the JSON path of the malformed part ("body" when there is none). */
    static Response malformedJson(JsonProcessingException e) {
        String field = "body";
        if (e instanceof JsonMappingException m && !m.getPath().isEmpty()) {
            StringBuilder sb = new StringBuilder();
            for (JsonMappingException.Reference r : m.getPath()) {
                if (r.getFieldName() != null) {
                    sb.append(sb.length() == 0 ? "" : ".").append(r.getFieldName());
                } else if (r.getIndex() >= 0) {
                    sb.append('[').append(r.getIndex()).append(']');
                }
            }
            field = sb.toString();
        }
        return errorResponse(ServeException.invalid(field, "malformed JSON: " + e.getOriginalMessage()));
    }

    @ServerExceptionMapper
    public Response mapMismatch(com.fasterxml.jackson.databind.exc.MismatchedInputException e) {
        return mapJson(e);
    }

    @ServerExceptionMapper
    public Response mapParse(com.fasterxml.jackson.core.JsonParseException e) {
        return mapJson(e);
    }

    @ServerExceptionMapper
    public Response mapWebApplication(jakarta.ws.rs.WebApplicationException e) {
        int status = e.getResponse().getStatus();
        if (status == 400) {
            Throwable c = e.getCause();
            if (c instanceof JsonProcessingException jpe) {
                return mapJson(jpe);
            }
            return errorResponse(ServeException.invalid("body", "malformed request: " + e.getMessage()));
        }
        return e.getResponse();
    }

    @ServerExceptionMapper
    public Response mapIllegal(IllegalArgumentException e) {
        return errorResponse(ErrorMessages.toServe(e));
    }

    static Response errorResponse(ServeException e) {
        Response.ResponseBuilder b = Response.status(e.code().http).type(MediaType.APPLICATION_JSON)
                .entity(RestMapper.error(e));
        if (e.retryAfterMillis() != null) {
            b.header("Retry-After", Math.max(1, (e.retryAfterMillis() + 999) / 1000));
        }
        return b.build();
    }
}
