package dev.sdserve.auth;

import dev.sdserve.api.grpc.ProtoMapper;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.job.ServeException;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GlobalInterceptor;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

/**
 * gRPC side of {@link Auth}: every call of the sd-serve services needs a key (health and reflection stay open);
 * calls that start a generation take a rate token and a concurrency slot (held until the call closes and the job it
 * started ends: the service hands the slot, found in the call's {@link Context}, to the job), and their
 * {@link GenerateRequest#getTenant() tenant} is replaced by the key's tenant.
 */
@ApplicationScoped
@GlobalInterceptor
public class AuthGrpcInterceptor implements ServerInterceptor {
    static final Metadata.Key<String> API_KEY = Metadata.Key.of("x-api-key", Metadata.ASCII_STRING_MARSHALLER);
    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    /** The call's concurrency slot, for the service to hand to the job it starts. */
    static final Context.Key<Auth.Permit> PERMIT = Context.key("sdserve.permit");

    /** The current call's slot ({@link Auth.Permit#NONE} when auth is off or the call takes none). */
    public static Auth.Permit currentPermit() {
        Auth.Permit p = PERMIT.get();
        return p == null ? Auth.Permit.NONE : p;
    }

    @Inject
    Auth auth;

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        String service = call.getMethodDescriptor().getServiceName();
        if (!auth.enabled() || service == null || service.startsWith("grpc.")) {
            return next.startCall(call, headers); // health, reflection
        }
        Auth.Principal p;
        Auth.Permit permit;
        try {
            p = auth.authenticate(headers.get(API_KEY), headers.get(AUTHORIZATION));
            permit = generates(call) ? auth.acquire(p) : Auth.Permit.NONE;
        } catch (ServeException e) {
            StatusRuntimeException s = ProtoMapper.toStatus(e);
            call.close(s.getStatus(), s.getTrailers() == null ? new Metadata() : s.getTrailers());
            return new ServerCall.Listener<>() {
            };
        }
        ServerCall<Q, R> releasing = new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
            @Override
            public void close(Status status, Metadata trailers) {
                permit.close();
                super.close(status, trailers);
            }
        };
        ServerCall.Listener<Q> delegate;
        try {
            // the slot rides in the call's Context: the service hands it to the job (Auth.Permit#holdUntilEnd)
            delegate = Contexts.interceptCall(Context.current().withValue(PERMIT, permit), releasing, headers, next);
        } catch (RuntimeException e) {
            permit.close();
            throw e;
        }
        String tenant = p.tenant();
        return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(delegate) {
            @Override
            @SuppressWarnings("unchecked")
            public void onMessage(Q message) {
                if (tenant != null && message instanceof GenerateRequest g) {
                    message = (Q) g.toBuilder().setTenant(tenant).build();
                }
                super.onMessage(message);
            }

            @Override
            public void onCancel() {
                permit.close(); // client went away
                super.onCancel();
            }

            @Override
            public void onComplete() {
                super.onComplete();
            }
        };
    }

    private static boolean generates(ServerCall<?, ?> call) {
        String m = call.getMethodDescriptor().getBareMethodName();
        return m != null && m.startsWith("Generate") || "Submit".equals(m);
    }
}
