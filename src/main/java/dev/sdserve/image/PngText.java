package dev.sdserve.image;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Text chunks in PNG byte arrays, without re-encoding the image. Writing follows what PIL (and so A1111) does: a
 * {@code tEXt} chunk when the text is Latin-1, else an uncompressed {@code iTXt} chunk in UTF-8. Reading understands
 * {@code tEXt}, {@code zTXt} and {@code iTXt}.
 */
public final class PngText {
    private static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    private PngText() {
    }

    /**
     * A copy of {@code png} carrying {@code text} under {@code keyword}: any text chunk with that keyword is removed
     * and one new chunk is placed right after IHDR (so readers that stop early still find it).
     *
     * @throws IllegalArgumentException if {@code png} is not a well-formed PNG chunk sequence or the keyword is invalid
     */
    public static byte[] withText(byte[] png, String keyword, String text) {
        checkKeyword(keyword);
        ByteArrayOutputStream out = new ByteArrayOutputStream(png.length + text.length() + 64);
        out.writeBytes(SIGNATURE);
        boolean inserted = false;
        for (Chunk c : chunks(png)) {
            if (isText(c.type) && keyword.equals(keywordOf(png, c))) {
                continue;
            }
            out.write(png, c.offset, 12 + c.length);
            if (!inserted && c.type.equals("IHDR")) {
                writeTextChunk(out, keyword, text);
                inserted = true;
            }
        }
        return out.toByteArray();
    }

    /** Every text chunk of a PNG, keyword → text (the first chunk of a keyword wins). */
    public static Map<String, String> read(byte[] png) {
        Map<String, String> m = new LinkedHashMap<>();
        for (Chunk c : chunks(png)) {
            if (isText(c.type)) {
                m.putIfAbsent(keywordOf(png, c), textOf(png, c));
            }
        }
        return m;
    }

    public static Optional<String> get(byte[] png, String keyword) {
        return Optional.ofNullable(read(png).get(keyword));
    }

    private static boolean isText(String type) {
        return type.equals("tEXt") || type.equals("iTXt") || type.equals("zTXt");
    }

    private static void checkKeyword(String k) {
        if (k == null || k.isEmpty() || k.length() > 79 || k.startsWith(" ") || k.endsWith(" ") || k.contains("  ")) {
            throw new IllegalArgumentException("PNG text keyword must be 1-79 characters without leading, trailing or double spaces: '" + k + "'");
        }
        for (char ch : k.toCharArray()) {
            if (ch < 32 || (ch > 126 && ch < 161) || ch > 255) {
                throw new IllegalArgumentException("PNG text keyword must be printable Latin-1: '" + k + "'");
            }
        }
    }

    private static void writeTextChunk(ByteArrayOutputStream out, String keyword, String text) {
        CharsetEncoder latin1 = StandardCharsets.ISO_8859_1.newEncoder();
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        String type;
        data.writeBytes(keyword.getBytes(StandardCharsets.ISO_8859_1));
        data.write(0);
        if (latin1.canEncode(text) && text.indexOf('\0') < 0) {
            type = "tEXt";
            data.writeBytes(text.getBytes(StandardCharsets.ISO_8859_1));
        } else {
            type = "iTXt";
            data.write(0); // compression flag: uncompressed
            data.write(0); // compression method
            data.write(0); // language tag: empty
            data.write(0); // translated keyword: empty
            data.writeBytes(text.replace("\0", "").getBytes(StandardCharsets.UTF_8));
        }
        byte[] body = data.toByteArray();
        byte[] typeBytes = type.getBytes(StandardCharsets.US_ASCII);
        writeInt(out, body.length);
        out.writeBytes(typeBytes);
        out.writeBytes(body);
        CRC32 crc = new CRC32();
        crc.update(typeBytes);
        crc.update(body);
        writeInt(out, (int) crc.getValue());
    }

    private static void writeInt(ByteArrayOutputStream out, int v) {
        out.write(v >>> 24);
        out.write(v >>> 16);
        out.write(v >>> 8);
        out.write(v);
    }

    private record Chunk(int offset, int length, String type) {
        int dataStart() {
            return offset + 8;
        }
    }

    private static int readInt(byte[] b, int off) {
        return ((b[off] & 0xff) << 24) | ((b[off + 1] & 0xff) << 16) | ((b[off + 2] & 0xff) << 8) | (b[off + 3] & 0xff);
    }

    /** The chunks of a PNG, checked for bounds, IHDR first and IEND last. */
    private static java.util.List<Chunk> chunks(byte[] png) {
        if (png == null || png.length < SIGNATURE.length + 12) {
            throw new IllegalArgumentException("not a PNG: too short");
        }
        for (int i = 0; i < SIGNATURE.length; i++) {
            if (png[i] != SIGNATURE[i]) {
                throw new IllegalArgumentException("not a PNG: bad signature");
            }
        }
        java.util.List<Chunk> list = new java.util.ArrayList<>();
        int pos = SIGNATURE.length;
        while (pos < png.length) {
            if (pos + 12 > png.length) {
                throw new IllegalArgumentException("truncated PNG chunk header at byte " + pos);
            }
            int len = readInt(png, pos);
            if (len < 0 || (long) pos + 12 + len > png.length) {
                throw new IllegalArgumentException("PNG chunk at byte " + pos + " claims " + (len & 0xffffffffL)
                        + " bytes, past the end of the file");
            }
            String type = new String(png, pos + 4, 4, StandardCharsets.ISO_8859_1);
            if (list.isEmpty() && !type.equals("IHDR")) {
                throw new IllegalArgumentException("PNG does not start with IHDR (found " + type + ")");
            }
            list.add(new Chunk(pos, len, type));
            pos += 12 + len;
            if (type.equals("IEND")) {
                break;
            }
        }
        if (list.isEmpty() || !list.get(list.size() - 1).type.equals("IEND")) {
            throw new IllegalArgumentException("PNG has no IEND chunk");
        }
        return list;
    }

    private static int nul(byte[] b, int from, int end) {
        for (int i = from; i < end; i++) {
            if (b[i] == 0) {
                return i;
            }
        }
        return -1;
    }

    private static String keywordOf(byte[] png, Chunk c) {
        int end = c.dataStart() + c.length;
        int z = nul(png, c.dataStart(), end);
        return new String(png, c.dataStart(), (z < 0 ? end : z) - c.dataStart(), StandardCharsets.ISO_8859_1);
    }

    private static String textOf(byte[] png, Chunk c) {
        int start = c.dataStart();
        int end = start + c.length;
        int z = nul(png, start, end);
        if (z < 0) {
            return "";
        }
        switch (c.type) {
            case "tEXt":
                return new String(png, z + 1, end - z - 1, StandardCharsets.ISO_8859_1);
            case "zTXt":
                return new String(inflate(png, z + 2, end - z - 2), StandardCharsets.ISO_8859_1);
            default: { // iTXt
                int flag = z + 1 < end ? png[z + 1] : 0;
                int lang = nul(png, z + 3, end);
                int trans = lang < 0 ? -1 : nul(png, lang + 1, end);
                if (trans < 0) {
                    return "";
                }
                byte[] body = flag == 1 ? inflate(png, trans + 1, end - trans - 1)
                        : java.util.Arrays.copyOfRange(png, trans + 1, end);
                return new String(body, StandardCharsets.UTF_8);
            }
        }
    }

    private static byte[] inflate(byte[] b, int off, int len) {
        Inflater inf = new Inflater();
        try {
            inf.setInput(b, off, Math.max(0, len));
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[8192];
            while (!inf.finished()) {
                int n = inf.inflate(buf);
                if (n == 0 && (inf.needsInput() || inf.needsDictionary())) {
                    break;
                }
                out.write(buf, 0, n);
                if (out.size() > 16 << 20) {
                    throw new IllegalArgumentException("compressed PNG text chunk inflates past 16 MiB");
                }
            }
            return out.toByteArray();
        } catch (DataFormatException e) {
            throw new UncheckedIOException(new IOException("corrupt compressed PNG text chunk", e));
        } finally {
            inf.end();
        }
    }
}
