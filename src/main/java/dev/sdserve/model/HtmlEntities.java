package dev.sdserve.model;

import java.util.Map;

/**
 * A small {@code html.unescape}: numeric references ({@code &#39;}, {@code &#x27;}) and the named entities that
 * show up in prompts. Unknown names stay as they are.
 */
final class HtmlEntities {
    private static final Map<String, String> NAMED = Map.ofEntries(
            Map.entry("amp", "&"), Map.entry("lt", "<"), Map.entry("gt", ">"), Map.entry("quot", "\""),
            Map.entry("apos", "'"), Map.entry("nbsp", "\u00a0"), Map.entry("copy", "\u00a9"),
            Map.entry("reg", "\u00ae"), Map.entry("trade", "\u2122"), Map.entry("hellip", "\u2026"),
            Map.entry("mdash", "\u2014"), Map.entry("ndash", "\u2013"), Map.entry("lsquo", "\u2018"),
            Map.entry("rsquo", "\u2019"), Map.entry("ldquo", "\u201c"), Map.entry("rdquo", "\u201d"),
            Map.entry("laquo", "\u00ab"), Map.entry("raquo", "\u00bb"), Map.entry("deg", "\u00b0"),
            Map.entry("times", "\u00d7"), Map.entry("divide", "\u00f7"), Map.entry("middot", "\u00b7"),
            Map.entry("bull", "\u2022"), Map.entry("euro", "\u20ac"), Map.entry("pound", "\u00a3"),
            Map.entry("yen", "\u00a5"), Map.entry("cent", "\u00a2"), Map.entry("sect", "\u00a7"),
            Map.entry("para", "\u00b6"), Map.entry("plusmn", "\u00b1"), Map.entry("micro", "\u00b5"),
            Map.entry("frac12", "\u00bd"), Map.entry("frac14", "\u00bc"), Map.entry("frac34", "\u00be"));

    private HtmlEntities() {
    }

    static String unescape(String s) {
        int amp = s.indexOf('&');
        if (amp < 0) {
            return s;
        }
        StringBuilder sb = new StringBuilder(s.length());
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c != '&') {
                sb.append(c);
                i++;
                continue;
            }
            int semi = s.indexOf(';', i + 1);
            if (semi > i + 1 && semi - i <= 12) {
                String body = s.substring(i + 1, semi);
                String rep = null;
                if (body.startsWith("#x") || body.startsWith("#X")) {
                    rep = codePoint(body.substring(2), 16);
                } else if (body.startsWith("#")) {
                    rep = codePoint(body.substring(1), 10);
                } else {
                    rep = NAMED.get(body);
                }
                if (rep != null) {
                    sb.append(rep);
                    i = semi + 1;
                    continue;
                }
            }
            sb.append(c);
            i++;
        }
        return sb.toString();
    }

    private static String codePoint(String digits, int radix) {
        if (digits.isEmpty()) {
            return null;
        }
        try {
            int cp = Integer.parseInt(digits, radix);
            if (cp <= 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                return "\ufffd";
            }
            return new String(Character.toChars(cp));
        } catch (NumberFormatException e) {
            return null;
        }
    }
}
