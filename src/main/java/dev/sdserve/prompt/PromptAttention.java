package dev.sdserve.prompt;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * AUTOMATIC1111's attention syntax ({@code parse_prompt_attention}): a prompt becomes runs of text with a weight each.
 * <ul>
 *   <li>{@code (text)} multiplies the weight of {@code text} by 1.1, {@code [text]} divides it by 1.1; nesting
 *       multiplies ({@code ((text))} = 1.21);</li>
 *   <li>{@code (text:1.3)} multiplies by the number (spaces allowed around it);</li>
 *   <li>{@code \(}, {@code \)}, {@code \[}, {@code \]}, {@code \\} are the literal characters; a lone backslash is
 *       dropped;</li>
 *   <li>an opening bracket never closed applies its factor to everything after it; a closing bracket never opened
 *       is text;</li>
 *   <li>{@code BREAK} (a whole word, upper case) becomes a {@link Fragment#isBreak() break} fragment;</li>
 *   <li>adjacent runs with the same weight are merged; an empty prompt is one empty run of weight 1.</li>
 * </ul>
 * Weights are multiplied in doubles in A1111's order, so they equal its Python floats bit for bit.
 */
public final class PromptAttention {
    /** Python's {@code str.isspace()} characters (what {@code \s} matches in a Python str pattern). */
    static final String PY_SPACE = "[\\t\\n\\u000B\\f\\r\\u001C-\\u001F \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";

    private static final Pattern TOKEN = Pattern.compile(String.join("|",
            "\\\\\\(", "\\\\\\)", "\\\\\\[", "\\\\\\]", "\\\\\\\\", "\\\\", "\\(", "\\[",
            ":" + PY_SPACE + "*([+-]?[.\\p{Nd}]+)" + PY_SPACE + "*\\)",
            "\\)", "\\]", "[^\\\\()\\[\\]:]+", ":"));
    private static final Pattern BREAK = Pattern.compile(PY_SPACE + "*\\bBREAK\\b" + PY_SPACE + "*",
            Pattern.UNICODE_CHARACTER_CLASS);
    private static final double ROUND = 1.1;
    private static final double SQUARE = 1 / 1.1;

    /**
     * One run of text and its weight. A break is the text {@code BREAK} with weight −1 (as A1111 marks it; a BREAK
     * inside brackets gets its weight multiplied and is then read as the word).
     */
    public record Fragment(String text, double weight) {
        public boolean isBreak() {
            return weight == -1 && text.equals("BREAK");
        }
    }

    private PromptAttention() {
    }

    /**
     * The runs of a prompt.
     *
     * @throws IllegalArgumentException for a weight that is not a number (e.g. {@code (a:1.2.3)}), which A1111
     *                                  refuses too
     */
    public static List<Fragment> parse(String text) {
        List<String> texts = new ArrayList<>();
        List<Double> weights = new ArrayList<>();
        List<Integer> round = new ArrayList<>();
        List<Integer> square = new ArrayList<>();
        Matcher m = TOKEN.matcher(text == null ? "" : text);
        while (m.find()) {
            String t = m.group();
            String w = m.group(1);
            if (t.startsWith("\\")) {
                texts.add(t.substring(1));
                weights.add(1.0);
            } else if (t.equals("(")) {
                round.add(texts.size());
            } else if (t.equals("[")) {
                square.add(texts.size());
            } else if (w != null && !round.isEmpty()) {
                multiply(weights, round.remove(round.size() - 1), number(w, t));
            } else if (t.equals(")") && !round.isEmpty()) {
                multiply(weights, round.remove(round.size() - 1), ROUND);
            } else if (t.equals("]") && !square.isEmpty()) {
                multiply(weights, square.remove(square.size() - 1), SQUARE);
            } else {
                String[] parts = BREAK.split(t, -1);
                for (int i = 0; i < parts.length; i++) {
                    if (i > 0) {
                        texts.add("BREAK");
                        weights.add(-1.0);
                    }
                    texts.add(parts[i]);
                    weights.add(1.0);
                }
            }
        }
        for (int pos : round) {
            multiply(weights, pos, ROUND);
        }
        for (int pos : square) {
            multiply(weights, pos, SQUARE);
        }
        if (texts.isEmpty()) {
            texts.add("");
            weights.add(1.0);
        }
        List<Fragment> out = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            int last = out.size() - 1;
            if (last >= 0 && out.get(last).weight() == weights.get(i)) {
                out.set(last, new Fragment(out.get(last).text() + texts.get(i), weights.get(i)));
            } else {
                out.add(new Fragment(texts.get(i), weights.get(i)));
            }
        }
        return out;
    }

    /** The whole prompt as one run of weight 1 (A1111's emphasis "None": brackets and BREAK are text). */
    public static List<Fragment> plain(String text) {
        return List.of(new Fragment(text == null ? "" : text, 1.0));
    }

    private static void multiply(List<Double> weights, int from, double factor) {
        for (int p = from; p < weights.size(); p++) {
            weights.set(p, weights.get(p) * factor);
        }
    }

    /** Python's float() of {@code [+-]?[.\d]+} (any Unicode decimal digit). */
    private static double number(String s, String token) {
        StringBuilder sb = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            sb.append(Character.isDigit(c) ? (char) ('0' + Character.digit(c, 10)) : c);
        }
        String a = sb.toString();
        // float() wants digits on at least one side of at most one point
        if (!a.matches("[+-]?(\\d+\\.?\\d*|\\.\\d+)")) {
            throw new IllegalArgumentException("the weight '" + s + "' in '" + token + "' is not a number");
        }
        return Double.parseDouble(a);
    }
}
