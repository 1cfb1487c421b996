package dev.sdserve.api.rest;

import dev.sdserve.api.ErrorMessages;
import dev.sdserve.config.SdServeConfig;
import dev.sdserve.job.ModelService;
import dev.sdserve.job.ServeException;
import jakarta.inject.Inject;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.eclipse.microprofile.openapi.annotations.Operation;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

import java.util.List;
import java.util.Map;

/**
 * REST transport of model residency: list with state, load, unload, pin, unpin, rescan. Unloading a model that
 * admitted jobs use is refused (409); a model that cannot be loaded is 409 naming file and reason; a load timeout
 * or an open circuit breaker is 503 with {@code Retry-After}.
 */
@Path("/v1/models")
@Produces(MediaType.APPLICATION_JSON)
public class ModelsResource {
    @Inject
    ModelService models;
    @Inject
    SdServeConfig config;

    @GET
    @Operation(summary = "Checkpoints with their residency (resident, pinned, loading, memory, load circuit breaker)")
    public Map<String, List<ModelService.ModelStatus>> list() {
        return Map.of("models", models.models());
    }

    @GET
    @Path("/{name}")
    @Operation(summary = "One checkpoint with its residency")
    public ModelService.ModelStatus get(@PathParam("name") String name) {
        return models.get(name);
    }

    @POST
    @Path("/{name}/load")
    @Operation(summary = "Loads a model; waits up to wait_ms (default: the load timeout; 0 = return at once, 202)")
    public Response load(@PathParam("name") String name, @QueryParam("wait_ms") Long waitMs) {
        long wait = waitMs == null ? config.models().loadTimeout().toMillis() : Math.max(0, waitMs);
        ModelService.ModelStatus s = models.load(name, wait);
        return Response.status(s.resident() ? 200 : 202).entity(s).build();
    }

    @POST
    @Path("/{name}/unload")
    @Operation(summary = "Unloads a resident model (409 while admitted jobs use it)")
    public ModelService.ModelStatus unload(@PathParam("name") String name) {
        return models.unload(name);
    }

    @POST
    @Path("/{name}/pin")
    @Operation(summary = "Pins a model: never evicted; starts its load if it is not resident")
    public ModelService.ModelStatus pin(@PathParam("name") String name) {
        return models.pin(name, true);
    }

    @POST
    @Path("/{name}/unpin")
    @Operation(summary = "Unpins a model (it may be evicted again)")
    public ModelService.ModelStatus unpin(@PathParam("name") String name) {
        return models.pin(name, false);
    }

    @POST
    @Path("/rescan")
    @Operation(summary = "Re-lists the models directory")
    public ModelService.RescanResult rescan() {
        return models.rescan();
    }

    @ServerExceptionMapper
    public Response mapServe(ServeException e) {
        return GenerationResource.errorResponse(e);
    }

    @ServerExceptionMapper
    public Response mapIllegal(IllegalArgumentException e) {
        return GenerationResource.errorResponse(ErrorMessages.toServe(e));
    }
}
