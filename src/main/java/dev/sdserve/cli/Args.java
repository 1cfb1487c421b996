package dev.sdserve.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Minimal GNU-style option parsing: {@code --name value}, {@code --name=value}, flags, positionals; unknown options
 * are an error naming them.
 */
public final class Args {
    private final Map<String, List<String>> options = new LinkedHashMap<>();
    private final List<String> positionals = new ArrayList<>();

    private Args() {
    }

    /**
     * @param valued names of options that take a value
     * @param flags  names of options without a value
     */
    public static Args parse(List<String> args, Set<String> valued, Set<String> flags) {
        Args a = new Args();
        for (int i = 0; i < args.size(); i++) {
            String s = args.get(i);
            if (s.startsWith("--")) {
                String name = s.substring(2);
                String value = null;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    value = name.substring(eq + 1);
                    name = name.substring(0, eq);
                }
                if (flags.contains(name) && value == null) {
                    a.options.computeIfAbsent(name, k -> new ArrayList<>()).add("true");
                } else if (valued.contains(name)) {
                    if (value == null) {
                        if (i + 1 >= args.size()) {
                            throw new IllegalArgumentException("option --" + name + " needs a value");
                        }
                        value = args.get(++i);
                    }
                    a.options.computeIfAbsent(name, k -> new ArrayList<>()).add(value);
                } else {
                    throw new IllegalArgumentException("unknown option --" + name);
                }
            } else {
                a.positionals.add(s);
            }
        }
        return a;
    }

    public boolean has(String name) {
        return options.containsKey(name);
    }

    public String get(String name, String def) {
        List<String> v = options.get(name);
        return v == null ? def : v.get(v.size() - 1);
    }

    public List<String> all(String name) {
        return options.getOrDefault(name, List.of());
    }

    public Integer integer(String name, Integer def) {
        String v = get(name, null);
        if (v == null) {
            return def;
        }
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be an integer, got '" + v + "'");
        }
    }

    public Double decimal(String name, Double def) {
        String v = get(name, null);
        if (v == null) {
            return def;
        }
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be a number, got '" + v + "'");
        }
    }

    public List<String> positionals() {
        return positionals;
    }
}
