package dev.sdserve.prompt;

import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * AUTOMATIC1111's prompt editing and alternation ({@code get_learned_conditioning_prompt_schedules}):
 * <ul>
 *   <li>{@code [from:to:when]}: {@code from} up to step {@code when}, {@code to} after it;</li>
 *   <li>{@code [to:when]}: nothing, then {@code to}; {@code [from::when]}: {@code from}, then nothing;</li>
 *   <li>{@code when} with a decimal point is a fraction of the steps ({@code 0.25}, {@code .5}), without one a step
 *       number ({@code 3}); it is truncated to an integer and capped at the step count;</li>
 *   <li>{@code [a|b|c]}: a, b, c, a, … one per step (an empty alternative is allowed: {@code [fe|]male});</li>
 *   <li>they nest, and combine with the attention syntax, which is left in the texts for {@link PromptAttention};</li>
 *   <li>text that does not parse (an unbalanced bracket) stays as written.</li>
 * </ul>
 * A schedule is a list of (end step, text): entry i is used for steps up to and including its end step
 * (A1111's {@code reconstruct_cond_batch}, steps counted from 0 as its denoiser counts its calls).
 *
 * <p>A1111 parses with a lark (Earley) grammar; this is a recursive-descent reading of the same grammar that takes,
 * at the top level, the longest bracketed construct that parses. It agrees with A1111 on its documented examples
 * and on 17,996 of 18,000 random strings over {@code a b [ ] ( ) : | 1 . \} and spaces; the four others are
 * ambiguous in the grammar (a schedule followed by {@code :} and an unopened {@code )}, as in {@code [b:2]:)}),
 * where lark keeps the text as written and this reads the schedule. A1111's hires-fix step offsets are not
 * supported (sd-serve has no hires pass).
 */
public final class PromptSchedule {
    /** One text of a schedule, used for steps ≤ {@code endAtStep}. */
    public record Entry(int endAtStep, String text) {
    }

    private static final Pattern PLAIN = Pattern.compile("([^\\\\\\[\\]():|]|\\\\.)+");
    private static final Pattern SPACE = Pattern.compile(PromptAttention.PY_SPACE + "+");
    /** lark's common.SIGNED_NUMBER. */
    private static final Pattern NUMBER = Pattern.compile(
            "[+-]?(?:[0-9]+[eE][+-]?[0-9]+|(?:[0-9]+\\.(?:[0-9]+)?|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+)");

    private PromptSchedule() {
    }

    /** The schedule of a prompt over {@code steps} steps; a prompt without editing is one entry. */
    public static List<Entry> of(String prompt, int steps) {
        if (steps < 1) {
            throw new IllegalArgumentException("steps " + steps + " < 1");
        }
        String text = prompt == null ? "" : prompt;
        List<Node> nodes = new Parser(text).top();
        if (nodes == null) {
            return List.of(new Entry(steps, text));
        }
        TreeSet<Integer> ends = new TreeSet<>();
        ends.add(steps);
        collect(nodes, steps, ends);
        List<Entry> out = new ArrayList<>();
        for (int t : ends) {
            StringBuilder sb = new StringBuilder();
            render(nodes, t, steps, sb);
            out.add(new Entry(t, sb.toString()));
        }
        return List.copyOf(out);
    }

    /** Whether the prompt changes during sampling (more than one entry for some step count). */
    public static boolean isScheduled(String prompt) {
        return prompt != null && prompt.indexOf('[') >= 0 && of(prompt, 1000).size() > 1;
    }

    /**
     * The entry used at a step (from 0): the first whose end step is ≥ {@code step}, else the first entry
     * (A1111's {@code reconstruct_cond_batch}).
     */
    public static int indexAt(List<Entry> schedule, int step) {
        for (int i = 0; i < schedule.size(); i++) {
            if (step <= schedule.get(i).endAtStep()) {
                return i;
            }
        }
        return 0;
    }

    // ------------------------------------------------------------------ tree

    private sealed interface Node permits Text, Seq, Scheduled, Alternate {
    }

    private record Text(String text) implements Node {
    }

    private record Seq(List<Node> nodes) implements Node {
    }

    /** {@code before} null when absent ({@code [to:when]}). */
    private record Scheduled(List<Node> before, List<Node> after, String number) implements Node {
        int when(int steps) {
            double v = Double.parseDouble(number);
            if (number.indexOf('.') >= 0) {
                v = v * steps;
            }
            return (int) Math.min(steps, truncate(v));
        }
    }

    /** Python's int() of a float, capped to the int range (only compared with the step count). */
    private static double truncate(double v) {
        double t = v < 0 ? Math.ceil(v) : Math.floor(v);
        return Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, t));
    }

    private record Alternate(List<List<Node>> options) implements Node {
    }

    private static void collect(List<Node> nodes, int steps, TreeSet<Integer> ends) {
        for (Node n : nodes) {
            if (n instanceof Seq s) {
                collect(s.nodes(), steps, ends);
            } else if (n instanceof Scheduled s) {
                int w = s.when(steps);
                if (w >= 1) {
                    ends.add(w);
                }
                if (s.before() != null) {
                    collect(s.before(), steps, ends);
                }
                collect(s.after(), steps, ends);
            } else if (n instanceof Alternate a) {
                for (int i = 1; i <= steps; i++) {
                    ends.add(i);
                }
                a.options().forEach(o -> collect(o, steps, ends));
            }
        }
    }

    private static void render(List<Node> nodes, int step, int steps, StringBuilder sb) {
        for (Node n : nodes) {
            if (n instanceof Text t) {
                sb.append(t.text());
            } else if (n instanceof Seq s) {
                render(s.nodes(), step, steps, sb);
            } else if (n instanceof Scheduled s) {
                if (step <= s.when(steps)) {
                    if (s.before() != null) {
                        render(s.before(), step, steps, sb);
                    }
                } else {
                    render(s.after(), step, steps, sb);
                }
            } else if (n instanceof Alternate a) {
                render(a.options().get((step - 1) % a.options().size()), step, steps, sb);
            }
        }
    }

    // ------------------------------------------------------------------ parser

    /**
     * The grammar: {@code start: (prompt | one of "[]():")*}; {@code prompt: (emphasized | scheduled | alternate |
     * plain | whitespace)*}; {@code emphasized: "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"};
     * {@code scheduled: "[" [prompt ":"] prompt ":" [ws] NUMBER [ws] "]"}; {@code alternate: "[" prompt ("|"
     * [prompt])+ "]"}; plain text is anything but {@code \ [ ] ( ) : |}, or a backslash and any character.
     */
    private static final class Parser {
        private final String s;

        Parser(String s) {
            this.s = s;
        }

        /** The whole text as a sequence, or null when it does not parse (A1111 then keeps the prompt). */
        List<Node> top() {
            List<Node> out = new ArrayList<>();
            int i = 0;
            while (i < s.length()) {
                int[] end = new int[1];
                List<Node> p = prompt(i, end);
                if (end[0] > i) {
                    out.addAll(p);
                    i = end[0];
                } else if ("[]():".indexOf(s.charAt(i)) >= 0) {
                    out.add(new Text(String.valueOf(s.charAt(i))));
                    i++;
                } else {
                    return null; // a '|' or a lone trailing backslash outside any bracket
                }
            }
            return out;
        }

        /** A (possibly empty) sequence of items from i; end[0] = where it stops. */
        private List<Node> prompt(int i, int[] end) {
            List<Node> out = new ArrayList<>();
            while (true) {
                int[] next = new int[1];
                Node n = item(i, next);
                if (n == null) {
                    end[0] = i;
                    return out;
                }
                out.add(n);
                i = next[0];
            }
        }

        private Node item(int i, int[] next) {
            if (i >= s.length()) {
                return null;
            }
            char c = s.charAt(i);
            int[] j = new int[1];
            if (c == '(') {
                List<Node> p = prompt(i + 1, j);
                if (at(j[0], ')')) {
                    next[0] = j[0] + 1;
                    return seq(new Text("("), p, new Text(")"));
                }
                if (at(j[0], ':')) {
                    int[] k = new int[1];
                    List<Node> q = prompt(j[0] + 1, k);
                    if (at(k[0], ')')) {
                        next[0] = k[0] + 1;
                        List<Node> inner = new ArrayList<>(p);
                        inner.add(new Text(":"));
                        inner.addAll(q);
                        return seq(new Text("("), inner, new Text(")"));
                    }
                }
                return null;
            }
            if (c == '[') {
                List<Node> p = prompt(i + 1, j);
                if (at(j[0], ']')) {
                    next[0] = j[0] + 1;
                    return seq(new Text("["), p, new Text("]"));
                }
                if (at(j[0], ':')) {
                    String[] num = new String[1];
                    int e = scheduleTail(j[0] + 1, num);
                    if (e > 0) {
                        next[0] = e;
                        return new Scheduled(null, p, num[0]);
                    }
                    int[] k = new int[1];
                    List<Node> q = prompt(j[0] + 1, k);
                    if (at(k[0], ':')) {
                        e = scheduleTail(k[0] + 1, num);
                        if (e > 0) {
                            next[0] = e;
                            return new Scheduled(p, q, num[0]);
                        }
                    }
                    return null;
                }
                if (at(j[0], '|')) {
                    List<List<Node>> options = new ArrayList<>();
                    options.add(p);
                    int at = j[0];
                    while (at(at, '|')) {
                        int[] k = new int[1];
                        options.add(prompt(at + 1, k));
                        at = k[0];
                    }
                    if (at(at, ']')) {
                        next[0] = at + 1;
                        return new Alternate(options);
                    }
                }
                return null;
            }
            Matcher m = PLAIN.matcher(s).region(i, s.length());
            if (m.lookingAt()) {
                next[0] = m.end();
                return new Text(m.group());
            }
            return null;
        }

        /** {@code [ws] NUMBER [ws] "]"} from i: the index after "]", or -1. */
        private int scheduleTail(int i, String[] num) {
            i = skip(SPACE, i);
            Matcher m = NUMBER.matcher(s).region(i, s.length());
            if (!m.lookingAt()) {
                return -1;
            }
            num[0] = m.group();
            i = skip(SPACE, m.end());
            return at(i, ']') ? i + 1 : -1;
        }

        private int skip(Pattern p, int i) {
            Matcher m = p.matcher(s).region(i, s.length());
            return m.lookingAt() ? m.end() : i;
        }

        private boolean at(int i, char c) {
            return i < s.length() && s.charAt(i) == c;
        }

        private static Seq seq(Node open, List<Node> inner, Node close) {
            List<Node> all = new ArrayList<>();
            all.add(open);
            all.addAll(inner);
            all.add(close);
            return new Seq(all);
        }
    }
}
