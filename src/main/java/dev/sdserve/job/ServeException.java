package dev.sdserve.job;

/**
 * A failure with a public meaning; transports map {@link Code} to gRPC status / HTTP status.
 * {@code field} names the offending request field for INVALID_ARGUMENT.
 */
public class ServeException extends RuntimeException {
    public enum Code {
        INVALID_ARGUMENT(400), NOT_FOUND(404), RESOURCE_EXHAUSTED(429), DEADLINE_EXCEEDED(504), CANCELLED(499),
        UNAVAILABLE(503), FAILED_PRECONDITION(409), INTERNAL(500), UNAUTHENTICATED(401);

        public final int http;

        Code(int http) {
            this.http = http;
        }
    }

    private final Code code;
    private final String field;
    private final Long retryAfterMillis;

    public ServeException(Code code, String message) {
        this(code, null, message, null);
    }

    public ServeException(Code code, String field, String message, Long retryAfterMillis) {
        super(message);
        this.code = code;
        this.field = field;
        this.retryAfterMillis = retryAfterMillis;
    }

    public static ServeException invalid(String field, String message) {
        return new ServeException(Code.INVALID_ARGUMENT, field, field + ": " + message, null);
    }

    public static ServeException notFound(String what) {
        return new ServeException(Code.NOT_FOUND, what);
    }

    public static ServeException exhausted(String message, long retryAfterMillis) {
        return new ServeException(Code.RESOURCE_EXHAUSTED, null, message, retryAfterMillis);
    }

    public Code code() {
        return code;
    }

    public String field() {
        return field;
    }

    public Long retryAfterMillis() {
        return retryAfterMillis;
    }
}
