package dev.sdserve.auth;

import dev.sdserve.job.ServeException;
import jakarta.inject.Inject;
import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.container.ContainerRequestFilter;
import jakarta.ws.rs.container.ContainerResponseContext;
import jakarta.ws.rs.container.ContainerResponseFilter;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.ext.Provider;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * HTTP side of {@link Auth}: the API under {@code /v1/} and {@code /sdapi/} needs a key ({@code x-api-key} or
 * {@code Authorization: Bearer}); health, metrics, OpenAPI and the web page stay open. Generation POSTs
 * ({@code /v1/generations}, {@code /sdapi/v1/txt2img}) take a rate token and a concurrency slot, held until the
 * response is written and every job the call started has ended (the resource hands the slot, {@link #permit}, to its
 * jobs with {@link Auth.Permit#holdUntilEnd}). The principal is left in the request property {@link #PRINCIPAL}.
 */
@Provider
public class AuthHttpFilter implements ContainerRequestFilter, ContainerResponseFilter {
    public static final String PRINCIPAL = "sdserve.principal";
    private static final String PERMIT = "sdserve.permit";

    @Inject
    Auth auth;

    /** The call's concurrency slot ({@link Auth.Permit#NONE} when auth is off or the call takes none). */
    public static Auth.Permit permit(ContainerRequestContext req) {
        return req.getProperty(PERMIT) instanceof Auth.Permit p ? p : Auth.Permit.NONE;
    }

    static boolean protectedPath(String path) {
        String p = path.startsWith("/") ? path : "/" + path;
        return p.startsWith("/v1/") || p.equals("/v1") || p.startsWith("/sdapi/");
    }

    static boolean generation(String method, String path) {
        String p = path.startsWith("/") ? path : "/" + path;
        return "POST".equals(method) && (p.equals("/v1/generations") || p.equals("/sdapi/v1/txt2img"));
    }

    @Override
    public void filter(ContainerRequestContext req) {
        if (!auth.enabled()) {
            return;
        }
        String path = req.getUriInfo().getPath();
        if (!protectedPath(path)) {
            return;
        }
        try {
            Auth.Principal p = auth.authenticate(req.getHeaderString("x-api-key"), req.getHeaderString("authorization"));
            req.setProperty(PRINCIPAL, p);
            if (generation(req.getMethod(), path)) {
                req.setProperty(PERMIT, auth.acquire(p));
            }
        } catch (ServeException e) {
            req.abortWith(response(e, path));
        }
    }

    @Override
    public void filter(ContainerRequestContext req, ContainerResponseContext resp) {
        Object permit = req.getProperty(PERMIT);
        if (permit instanceof Auth.Permit p) {
            p.close();
        }
    }

    /**
     * The refusal in the shape of the route's API: A1111's ({@code {"error", "detail", "body", "errors"}}) under
     * {@code /sdapi/}, else {@code {"error": {code, message, retry_after_ms}}}. A 401 names the schemes that work:
     * {@code Bearer} everywhere, and {@code Basic} on A1111's routes when Basic users are configured (A1111 answers
     * {@code WWW-Authenticate: Basic}, which tools and browsers answer with the user's credentials; the web page,
     * which sends its key to {@code /v1/}, never gets a Basic challenge, so the browser shows no login dialog).
     */
    Response response(ServeException e, String path) {
        boolean a1111 = path.startsWith("/sdapi/") || path.startsWith("sdapi/");
        Response.ResponseBuilder b;
        if (a1111) {
            b = Response.fromResponse(dev.sdserve.api.a1111.A1111Resource.error(e));
        } else {
            Map<String, Object> err = new LinkedHashMap<>();
            err.put("code", e.code().name());
            err.put("message", e.getMessage());
            if (e.retryAfterMillis() != null) {
                err.put("retry_after_ms", e.retryAfterMillis());
            }
            b = Response.status(e.code().http).type(MediaType.APPLICATION_JSON).entity(Map.of("error", err));
            if (e.retryAfterMillis() != null) {
                b.header("Retry-After", Math.max(1, (e.retryAfterMillis() + 999) / 1000));
            }
        }
        if (e.code() == ServeException.Code.UNAUTHENTICATED) {
            b.header("WWW-Authenticate", "Bearer realm=\"sd-serve\"");
            if (a1111 && auth.basicEnabled()) {
                b.header("WWW-Authenticate", "Basic realm=\"sd-serve\", charset=\"UTF-8\"");
            }
        }
        return b.build();
    }
}
