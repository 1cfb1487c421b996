package dev.sdserve.api;

import dev.sdserve.job.ServeException;

/** Maps internal failures to the public error model (ServeException) with safe messages. */
public final class ErrorMessages {
    private ErrorMessages() {
    }

    public static ServeException toServe(Throwable t) {
        if (t instanceof ServeException se) {
            return se;
        }
        if (t instanceof IllegalArgumentException iae) {
            return new ServeException(ServeException.Code.INVALID_ARGUMENT, iae.getMessage());
        }
        return new ServeException(ServeException.Code.INTERNAL, "internal error: " + t.getClass().getSimpleName()
                + (t.getMessage() == null ? "" : ": " + t.getMessage()));
    }
}
