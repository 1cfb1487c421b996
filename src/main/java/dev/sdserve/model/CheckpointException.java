package dev.sdserve.model;

import java.io.IOException;

/** A file that cannot be used as a model checkpoint; the message names the file and the problem. */
public class CheckpointException extends IOException {
    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
