package dev.sdserve.api.rest;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import dev.sdserve.api.ErrorMessages;
import dev.sdserve.job.ServeException;
import dev.sdserve.train.FineTuneJob;
import dev.sdserve.train.FineTuneManager;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Multi;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.sse.OutboundSseEvent;
import jakarta.ws.rs.sse.Sse;
import org.eclipse.microprofile.openapi.annotations.Operation;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

import java.net.URI;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** REST transport of fine-tune jobs: JSON and Server-Sent Events, mirroring {@code sdserve_train.proto}. */
@Path("/v1/finetunes")
@Produces(MediaType.APPLICATION_JSON)
public class FineTuneResource {
    static final String BASE = "/v1/finetunes/";

    @Inject
    FineTuneManager manager;

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    public record ImageJson(String image, String caption) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    public record FineTuneJson(String name, String baseModel, String dataFolder, List<ImageJson> images, Integer rank,
                               Double alpha, List<String> targetModules, Integer steps, Double learningRate,
                               Integer batchSize, Long seed, Integer resolution) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record StatusJson(String id, String name, String state, long step, int totalSteps, Float loss,
                             Long etaMs, String lora, String detail, Map<String, String> links) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record JobJson(StatusJson status, FineTuneJson request, List<Long> lossSteps, List<Float> lossValues,
                          long createdMs) {
    }

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    @Blocking
    @Operation(summary = "Submit a LoRA fine-tune job (images from a data folder and/or uploaded as base64); 201 with its status")
    public Response create(FineTuneJson body) {
        if (body == null) {
            throw ServeException.invalid("body", "missing JSON body");
        }
        List<FineTuneManager.Upload> uploads = new ArrayList<>();
        if (body.images() != null) {
            for (int i = 0; i < body.images().size(); i++) {
                ImageJson im = body.images().get(i);
                if (im == null || im.image() == null) {
                    throw ServeException.invalid("images[" + i + "].image", "missing base64 image");
                }
                byte[] bytes;
                try {
                    String b64 = im.image();
                    int comma = b64.startsWith("data:") ? b64.indexOf(',') : -1; // data URLs are accepted too
                    bytes = Base64.getMimeDecoder().decode(b64.substring(comma + 1));
                } catch (IllegalArgumentException e) {
                    throw ServeException.invalid("images[" + i + "].image", "not base64: " + e.getMessage());
                }
                uploads.add(new FineTuneManager.Upload(bytes, im.caption()));
            }
        }
        FineTuneManager.Event ev = manager.submit(new FineTuneManager.Request(body.name(), body.baseModel(),
                body.dataFolder(), uploads, body.rank(), body.alpha(), body.targetModules(), body.steps(),
                body.learningRate(), body.batchSize(), body.seed(), body.resolution()));
        return Response.created(URI.create(BASE + ev.id())).entity(status(ev)).build();
    }

    @GET
    @Operation(summary = "All fine-tune jobs (oldest first) with their loss curves")
    public List<JobJson> list() {
        return manager.list().stream().map(FineTuneResource::job).toList();
    }

    @GET
    @Path("/{id}")
    @Operation(summary = "A fine-tune job: status, resolved request, loss curve")
    public JobJson get(@PathParam("id") String id) {
        return job(manager.get(id));
    }

    @DELETE
    @Path("/{id}")
    @Blocking
    @Operation(summary = "Cancel a fine-tune job at the next step boundary (its checkpoint is kept)")
    public StatusJson cancel(@PathParam("id") String id) {
        return status(manager.cancel(id));
    }

    @POST
    @Path("/{id}/pause")
    @Blocking
    @Operation(summary = "Pause a fine-tune job at the next step boundary")
    public StatusJson pause(@PathParam("id") String id) {
        return status(manager.pause(id));
    }

    @POST
    @Path("/{id}/resume")
    @Blocking
    @Operation(summary = "Resume a paused fine-tune job")
    public StatusJson resume(@PathParam("id") String id) {
        return status(manager.resume(id));
    }

    @GET
    @Path("/{id}/events")
    @Produces(MediaType.SERVER_SENT_EVENTS)
    @Operation(summary = "Server-Sent Events of a fine-tune job: its status now, then one per step, until it ends")
    public Multi<OutboundSseEvent> events(@PathParam("id") String id, @Context Sse sse) {
        manager.get(id); // NOT_FOUND before the stream starts
        return dev.sdserve.api.EventStreams.fineTuneEvents(manager, id)
                .map(ev -> sse.newEventBuilder().name(ev.state().name().toLowerCase(Locale.ROOT))
                        .id(Long.toString(ev.step())).mediaType(MediaType.APPLICATION_JSON_TYPE)
                        .data(StatusJson.class, status(ev)).build());
    }

    static StatusJson status(FineTuneManager.Event e) {
        Map<String, String> links = new LinkedHashMap<>();
        links.put("self", BASE + e.id());
        links.put("events", BASE + e.id() + "/events");
        return new StatusJson(e.id(), e.name(), e.state().name().toLowerCase(Locale.ROOT), e.step(), e.totalSteps(),
                Float.isNaN(e.loss()) ? null : e.loss(), e.etaMillis() < 0 ? null : e.etaMillis(), e.lora(), e.detail(),
                links);
    }

    static JobJson job(FineTuneManager.Info i) {
        FineTuneJob.Spec s = i.spec();
        FineTuneJson req = new FineTuneJson(s.name(), s.baseModel(), s.dataFolder(), null, s.rank(), s.alpha(),
                s.targets(), s.steps(), s.learningRate(), s.batchSize(), s.seed(), s.resolution());
        return new JobJson(status(i.status()), req, i.lossSteps(), i.losses(), i.createdMillis());
    }

    // ------------------------------------------------------------------------------------------------ errors

    @ServerExceptionMapper
    public Response mapServe(ServeException e) {
        return GenerationResource.errorResponse(e);
    }

    @ServerExceptionMapper
    public Response mapJson(JsonProcessingException e) {
        return GenerationResource.malformedJson(e);
    }

    @ServerExceptionMapper
    public Response mapWebApplication(jakarta.ws.rs.WebApplicationException e) {
        if (e.getResponse().getStatus() == 400) {
            if (e.getCause() instanceof JsonProcessingException jpe) {
                return mapJson(jpe);
            }
            return GenerationResource.errorResponse(ServeException.invalid("body", "malformed request: " + e.getMessage()));
        }
        return e.getResponse();
    }

    @ServerExceptionMapper
    public Response mapIllegal(IllegalArgumentException e) {
        return GenerationResource.errorResponse(ErrorMessages.toServe(e));
    }
}
