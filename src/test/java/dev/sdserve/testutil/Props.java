package dev.sdserve.testutil;

import java.util.function.Supplier;

/** System properties set for the length of a call. */
public final class Props {
    private Props() {
    }

    /** {@code body}'s result with the system property {@code key} set to {@code value} (null: cleared), then restored. */
    public static <T> T with(String key, String value, Supplier<T> body) {
        String old = System.getProperty(key);
        if (value == null) {
            System.clearProperty(key);
        } else {
            System.setProperty(key, value);
        }
        try {
            return body.get();
        } finally {
            if (old == null) {
                System.clearProperty(key);
            } else {
                System.setProperty(key, old);
            }
        }
    }
}
