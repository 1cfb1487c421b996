package dev.sdserve.cli;

import dev.sdserve.job.PreviewOptions;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * {@code generate --preview FILE}: each step's preview replaces FILE (atomically, so an image viewer that reloads
 * it never reads half a file), and the picture forms there while the command runs.
 */
final class PreviewFile {
    static final String HELP = """
              --preview FILE       write each step's preview to FILE as the image forms (the model's estimate of the
                                   final image, through its fitted colour projection)
              --preview-full N     every N steps the preview is a VAE decode (exact colours; costs a decode)
              --preview-projection auto|affine|decoder
                                   how previews get their colours: the fitted affine map (free), the decoder's
                                   first layers and a fitted readout (a small engine call), or the model's choice
            """;

    private final Path file;

    private PreviewFile(Path file) {
        this.file = file;
    }

    /** The --preview option's file, or null when it is not given. */
    static PreviewFile of(Args a) {
        String f = a.get("preview", null);
        return f == null ? null : new PreviewFile(Path.of(f));
    }

    /** --preview-full N (0 when not given); checked. */
    static int fullEvery(Args a) {
        Integer n = a.integer("preview-full", 0);
        if (n < 0) {
            throw new IllegalArgumentException("--preview-full must be 0 (never) or a number of steps, got " + n);
        }
        return n;
    }

    /** --preview-projection (auto when not given); checked. */
    static String projection(Args a) {
        String p = a.get("preview-projection", PreviewOptions.AUTO).trim().toLowerCase(java.util.Locale.ROOT);
        if (!PreviewOptions.PROJECTIONS.contains(p)) {
            throw new IllegalArgumentException("--preview-projection must be auto, affine or decoder, got '" + p + "'");
        }
        return p;
    }

    void write(byte[] png) {
        if (png == null || png.length == 0) {
            return;
        }
        try {
            Path dir = file.toAbsolutePath().getParent();
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, ".preview", ".tmp");
            Files.write(tmp, png);
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the preview " + file + ": " + e.getMessage(), e);
        }
    }
}
