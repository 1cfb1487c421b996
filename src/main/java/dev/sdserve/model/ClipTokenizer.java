package dev.sdserve.model;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

/**
 * CLIP's byte-level BPE tokenizer, as CLIP's reference {@code SimpleTokenizer} and transformers' CLIPTokenizer
 * compute it, from the vocabulary shipped as the resource {@code clip/bpe_simple_vocab_16e6.txt.gz} (MIT licence in
 * {@code clip/LICENSE}).
 *
 * <p>Cleaning: a small part of ftfy (NFC, curly quotes, Latin ligatures, full-width forms, control characters),
 * HTML unescaping twice, whitespace collapsed, lower case. Then the CLIP pre-tokenizer regex (special tokens,
 * contractions, letter runs, single digits, runs of other symbols), bytes mapped to printable characters, BPE with
 * {@code </w>} marking word ends. Thread-safe.
 */
public final class ClipTokenizer {
    public static final String RESOURCE = "clip/bpe_simple_vocab_16e6.txt.gz";
    public static final String START = "<|startoftext|>";
    public static final String END = "<|endoftext|>";
    /** Tokens SD 1.x conditions on: BOS + 75 + EOS. */
    public static final int CONTEXT = 77;

    private static final Pattern PRE = Pattern.compile(
            "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
            Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE | Pattern.UNICODE_CHARACTER_CLASS);

    private static volatile ClipTokenizer shared;

    private final char[] byteEncoder = new char[256];
    private final Map<Character, Integer> byteDecoder = new HashMap<>();
    private final Map<String, Integer> encoder;
    private final String[] decoder;
    private final Map<Long, Integer> ranks;
    private final Map<String, String[]> cache = new ConcurrentHashMap<>();
    private final int startId;
    private final int endId;

    /** The tokenizer with the shipped CLIP vocabulary (loaded once). */
    public static ClipTokenizer get() {
        ClipTokenizer t = shared;
        if (t == null) {
            synchronized (ClipTokenizer.class) {
                t = shared;
                if (t == null) {
                    try (InputStream in = ClipTokenizer.class.getClassLoader().getResourceAsStream(RESOURCE)) {
                        if (in == null) {
                            throw new IllegalStateException("CLIP vocabulary resource " + RESOURCE + " missing from the classpath");
                        }
                        t = new ClipTokenizer(in);
                    } catch (IOException e) {
                        throw new UncheckedIOException("cannot read " + RESOURCE, e);
                    }
                    shared = t;
                }
            }
        }
        return t;
    }

    /** Reads a gzipped CLIP merges file ({@code bpe_simple_vocab_16e6.txt.gz} format). */
    public ClipTokenizer(InputStream gz) throws IOException {
        // bytes_to_unicode: printable Latin-1 bytes map to themselves, the others to 256, 257, ...
        List<Integer> bs = new ArrayList<>();
        for (int b = '!'; b <= '~'; b++) {
            bs.add(b);
        }
        for (int b = 0xA1; b <= 0xAC; b++) {
            bs.add(b);
        }
        for (int b = 0xAE; b <= 0xFF; b++) {
            bs.add(b);
        }
        List<Integer> cs = new ArrayList<>(bs);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            if (!bs.contains(b)) {
                bs.add(b);
                cs.add(256 + n++);
            }
        }
        List<String> vocab = new ArrayList<>();
        for (int i = 0; i < 256; i++) {
            byteEncoder[bs.get(i)] = (char) (int) cs.get(i);
            byteDecoder.put((char) (int) cs.get(i), bs.get(i));
            vocab.add(String.valueOf((char) (int) cs.get(i)));
        }
        for (int i = 0; i < 256; i++) {
            vocab.add(vocab.get(i) + "</w>");
        }
        List<String[]> merges = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(new GZIPInputStream(gz), StandardCharsets.UTF_8))) {
            r.readLine(); // version line
            String line;
            int max = 49152 - 256 - 2;
            while (merges.size() < max && (line = r.readLine()) != null) {
                String[] pair = line.split(" ");
                if (pair.length != 2) {
                    throw new IOException("bad merge line " + (merges.size() + 2) + ": '" + line + "'");
                }
                merges.add(pair);
            }
            if (merges.size() != max) {
                throw new IOException("CLIP merges file has " + merges.size() + " merges, expected " + max);
            }
        }
        for (String[] m : merges) {
            vocab.add(m[0] + m[1]);
        }
        vocab.add(START);
        vocab.add(END);
        encoder = new HashMap<>(vocab.size() * 2);
        decoder = vocab.toArray(new String[0]);
        for (int i = 0; i < decoder.length; i++) {
            encoder.put(decoder[i], i);
        }
        ranks = new HashMap<>(merges.size() * 2);
        for (int i = 0; i < merges.size(); i++) {
            ranks.put(pairKey(merges.get(i)[0], merges.get(i)[1]), i);
        }
        startId = encoder.get(START);
        endId = encoder.get(END);
        cache.put(START, new String[]{START});
        cache.put(END, new String[]{END});
    }

    public int vocabSize() {
        return decoder.length;
    }

    public int startId() {
        return startId;
    }

    public int endId() {
        return endId;
    }

    /** The id of a vocabulary entry (e.g. {@code ",</w>"}, the comma that ends a word), or -1. */
    public int id(String piece) {
        Integer id = encoder.get(piece);
        return id == null ? -1 : id;
    }

    /** The 77 ids SD 1.x conditions on: BOS, the first 75 tokens, EOS, then EOS as padding. */
    public int[] tokenize(String prompt) {
        return tokenize(prompt, CONTEXT, startId, endId, endId);
    }

    /** Ids for a text encoder: its positions, BOS/EOS/pad ids. */
    public int[] tokenize(String prompt, TextEncoderConfig te) {
        return tokenize(prompt, te.maxPositions(), te.bosToken(), te.eosToken(), te.padToken());
    }

    /** {@code length} ids: bos, the first length − 2 tokens, eos, pad… */
    public int[] tokenize(String prompt, int length, int bos, int eos, int pad) {
        if (length < 2) {
            throw new IllegalArgumentException("length " + length + " leaves no room for BOS and EOS");
        }
        int[] tokens = encode(prompt);
        int[] out = new int[length];
        Arrays.fill(out, pad);
        out[0] = bos;
        int k = Math.min(tokens.length, length - 2);
        System.arraycopy(tokens, 0, out, 1, k);
        out[k + 1] = eos;
        return out;
    }

    /** The BPE token ids of a prompt, without BOS/EOS and without truncation. */
    public int[] encode(String prompt) {
        String text = clean(prompt == null ? "" : prompt);
        List<Integer> ids = new ArrayList<>();
        Matcher m = PRE.matcher(text);
        StringBuilder sb = new StringBuilder();
        while (m.find()) {
            sb.setLength(0);
            for (byte b : m.group().getBytes(StandardCharsets.UTF_8)) {
                sb.append(byteEncoder[b & 0xff]);
            }
            for (String piece : bpe(sb.toString())) {
                Integer id = encoder.get(piece);
                if (id == null) {
                    throw new IllegalStateException("BPE produced '" + piece + "', not in the vocabulary");
                }
                ids.add(id);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Text of ids (special tokens kept, {@code </w>} as a space), as CLIP's decode. */
    public String decode(int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            sb.append(decoder[id]);
        }
        String s = sb.toString();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int i = 0; i < s.length(); i++) {
            Integer b = byteDecoder.get(s.charAt(i));
            if (b != null) {
                bytes.write(b);
            } else {
                bytes.writeBytes(String.valueOf(s.charAt(i)).getBytes(StandardCharsets.UTF_8));
            }
        }
        return bytes.toString(StandardCharsets.UTF_8).replace("</w>", " ");
    }

    private long pairKey(String a, String b) {
        // a merge is keyed by the vocabulary ids of its two symbols
        Integer ia = encoder.get(a);
        Integer ib = encoder.get(b);
        if (ia == null || ib == null) {
            return -1;
        }
        return ((long) ia << 32) | ib;
    }

    private String[] bpe(String token) {
        String[] cached = cache.get(token);
        if (cached != null) {
            return cached;
        }
        List<String> word = new ArrayList<>(token.length());
        for (int i = 0; i < token.length() - 1; i++) {
            word.add(String.valueOf(token.charAt(i)));
        }
        word.add(token.charAt(token.length() - 1) + "</w>");
        while (word.size() > 1) {
            int best = Integer.MAX_VALUE;
            String first = null;
            String second = null;
            for (int i = 0; i + 1 < word.size(); i++) {
                Integer r = ranks.get(pairKey(word.get(i), word.get(i + 1)));
                if (r != null && r < best) {
                    best = r;
                    first = word.get(i);
                    second = word.get(i + 1);
                }
            }
            if (first == null) {
                break;
            }
            List<String> next = new ArrayList<>(word.size());
            int i = 0;
            while (i < word.size()) {
                if (i + 1 < word.size() && word.get(i).equals(first) && word.get(i + 1).equals(second)) {
                    next.add(first + second);
                    i += 2;
                } else {
                    next.add(word.get(i));
                    i++;
                }
            }
            word = next;
        }
        String[] out = word.toArray(new String[0]);
        if (cache.size() < 100_000) {
            cache.put(token, out);
        }
        return out;
    }

    // ---------------------------------------------------------------- cleaning

    /** basic_clean (ftfy subset + html unescape twice + strip), whitespace_clean, lower case. */
    static String clean(String text) {
        String t = fixText(text);
        t = HtmlEntities.unescape(HtmlEntities.unescape(t));
        t = collapseWhitespace(t);
        return t.toLowerCase(Locale.ROOT);
    }

    /** The parts of ftfy.fix_text that matter for prompts. */
    static String fixText(String text) {
        StringBuilder sb = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            switch (cp) {
                case 0x2018, 0x2019, 0x201A, 0x201B -> sb.append('\'');
                case 0x201C, 0x201D, 0x201E, 0x201F -> sb.append('"');
                case 0x3000 -> sb.append(' ');
                case 0x0132, 0x0133, 0x0149, 0x01C4, 0x01C5, 0x01C6, 0x01C7, 0x01C8, 0x01C9, 0x01CA, 0x01CB, 0x01CC,
                        0x01F1, 0x01F2, 0x01F3, 0xFB00, 0xFB01, 0xFB02, 0xFB03, 0xFB04, 0xFB05, 0xFB06 ->
                        sb.append(Normalizer.normalize(new String(Character.toChars(cp)), Normalizer.Form.NFKC));
                default -> {
                    if (cp >= 0xFF01 && cp < 0xFFF0) {
                        sb.append(Normalizer.normalize(new String(Character.toChars(cp)), Normalizer.Form.NFKC));
                    } else if (isRemovedControl(cp)) {
                        // dropped, as ftfy's remove_control_chars
                    } else {
                        sb.appendCodePoint(cp);
                    }
                }
            }
        }
        return Normalizer.normalize(sb, Normalizer.Form.NFC);
    }

    private static boolean isRemovedControl(int cp) {
        return (cp <= 0x08) || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) || cp == 0x7F
                || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFC) || (cp >= 0x206A && cp <= 0x206F);
    }

    /** Python's str.isspace() for the characters that matter. */
    static boolean isSpace(int c) {
        return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680
                || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F
                || c == 0x3000;
    }

    /** re.sub(r'\s+', ' ', text).strip() */
    static String collapseWhitespace(String t) {
        StringBuilder sb = new StringBuilder(t.length());
        boolean pendingSpace = false;
        for (int i = 0; i < t.length(); i++) {
            char c = t.charAt(i);
            if (isSpace(c)) {
                pendingSpace = true;
            } else {
                if (pendingSpace && sb.length() > 0) {
                    sb.append(' ');
                }
                pendingSpace = false;
                sb.append(c);
            }
        }
        return sb.toString();
    }
}
