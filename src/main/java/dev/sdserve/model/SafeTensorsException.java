package dev.sdserve.model;

import java.io.IOException;

/** A safetensors file that cannot be read: the message names the file and what is wrong. */
public class SafeTensorsException extends IOException {
    public SafeTensorsException(String message) {
        super(message);
    }

    public SafeTensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
