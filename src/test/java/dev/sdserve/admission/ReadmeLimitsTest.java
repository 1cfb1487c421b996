package dev.sdserve.admission;

import org.junit.jupiter.api.Test;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The README's limits table (after {@code <!-- limits -->}) states the enforced values: each constant a row names
 * (last column) has its value written in that row, every constant of {@link Limits} is in the table, and each
 * {@code key=value} a row quotes is what application.properties sets.
 */
class ReadmeLimitsTest {
    @Test
    void theTableStatesTheConstantsValues() throws Exception {
        String readme = Files.readString(Path.of("README.md"));
        int at = readme.indexOf("<!-- limits -->");
        assertTrue(at >= 0, "README has a <!-- limits --> table");
        List<String> rows = new ArrayList<>();
        for (String line : readme.substring(at).lines().skip(1).toList()) {
            if (!line.startsWith("|")) {
                break;
            }
            rows.add(line);
        }
        assertTrue(rows.size() > 10, rows.toString());
        Set<String> named = new HashSet<>();
        List<String> failures = new ArrayList<>();
        Pattern constant = Pattern.compile("`([A-Z][A-Z_]+)`");
        for (String row : rows.subList(2, rows.size())) {
            String[] cells = row.split("\\|");
            String limit = cells[2];
            Matcher m = constant.matcher(cells[3]);
            while (m.find()) {
                Field f = Limits.class.getField(m.group(1));
                named.add(f.getName());
                String value = new BigDecimal(f.get(null).toString()).stripTrailingZeros().toPlainString();
                if (!Pattern.compile("(?<![0-9.])" + Pattern.quote(value) + "(?![0-9])").matcher(limit).find()) {
                    failures.add(f.getName() + " = " + value + " is not in: " + limit);
                }
            }
        }
        for (Field f : Limits.class.getFields()) {
            if (Modifier.isStatic(f.getModifiers()) && !named.contains(f.getName())) {
                failures.add("Limits." + f.getName() + " is not in the README's table");
            }
        }
        String props = Files.readString(Path.of("src/main/resources/application.properties"));
        Matcher kv = Pattern.compile("`((?:quarkus|sdserve)\\.[a-z.-]+=[^`]+)`").matcher(String.join("\n", rows));
        int quoted = 0;
        while (kv.find()) {
            quoted++;
            if (!props.lines().anyMatch(l -> l.strip().equals(kv.group(1)))) {
                failures.add("application.properties does not set " + kv.group(1));
            }
        }
        assertTrue(quoted >= 4, "properties quoted: " + quoted);
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }
}
