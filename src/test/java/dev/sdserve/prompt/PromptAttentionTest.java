package dev.sdserve.prompt;

import dev.sdserve.prompt.PromptAttention.Fragment;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A1111's parse_prompt_attention doctests (modules/prompt_parser.py) and the rules around them. */
class PromptAttentionTest {
    private static List<Fragment> p(String s) {
        return PromptAttention.parse(s);
    }

    private static Fragment f(String t, double w) {
        return new Fragment(t, w);
    }

    @Test
    void a1111Doctests() {
        assertEquals(List.of(f("normal text", 1.0)), p("normal text"));
        assertEquals(List.of(f("an ", 1.0), f("important", 1.1), f(" word", 1.0)), p("an (important) word"));
        assertEquals(List.of(f("unbalanced", 1.1)), p("(unbalanced"));
        assertEquals(List.of(f("(literal]", 1.0)), p("\\(literal\\]"));
        assertEquals(List.of(f("unnecessaryparens", 1.1)), p("(unnecessary)(parens)"));
        // the doctest's weights are Python's products: 1.3 * 1.1 * 1.1 = 1.5730000000000004, 1.1^4 = 1.4641000000000006
        assertEquals(List.of(f("a ", 1.0), f("house", 1.5730000000000004), f(" ", 1.1), f("on", 1.0), f(" a ", 1.1),
                f("hill", 0.55), f(", sun, ", 1.1), f("sky", 1.4641000000000006), f(".", 1.1)),
                p("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")); 
    }

    @Test
    void squareBracketsDivideAndWeightsAllowSpaces() {
        assertEquals(List.of(f("a ", 1.0), f("b", 1 / 1.1)), p("a [b]"));
        assertEquals(List.of(f("x", 0.8)), p("(x: 0.8 )"));
        assertEquals(List.of(f("x", -1.5)), p("(x:-1.5)"));
        // a closing bracket never opened is text; an opening one never closed weights the rest
        assertEquals(List.of(f("a) b", 1.0)), p("a) b"));
        assertEquals(List.of(f("a ", 1.0), f("b", 1 / 1.1)), p("a [b"));
    }

    @Test
    void escapesAndLoneBackslash() {
        assertEquals(List.of(f("a (b) [c] \\ d", 1.0)), p("a \\(b\\) \\[c\\] \\\\ d"));
        assertEquals(List.of(f("an", 1.0)), p("a\\n")); // a lone backslash is dropped, as in A1111
    }

    @Test
    void breakIsAWholeUpperCaseWord() {
        List<Fragment> r = p("a cat BREAK a dog");
        assertEquals(List.of(f("a cat", 1.0), f("BREAK", -1), f("a dog", 1.0)), r);
        assertTrue(r.get(1).isBreak());
        assertEquals(List.of(f("a BREAKfast, break", 1.0)), p("a BREAKfast, break"));
        // a BREAK inside brackets is weighted, and then it is the word
        List<Fragment> w = p("(a BREAK b)");
        assertFalse(w.stream().anyMatch(Fragment::isBreak));
        assertEquals(List.of(f("", 1.0), f("BREAK", -1), f("", 1.0)), p("BREAK"));
    }

    @Test
    void emptyPromptIsOneEmptyRun() {
        assertEquals(List.of(f("", 1.0)), p(""));
        assertEquals(List.of(f("", 1.0)), p("()"));
    }

    @Test
    void aWeightThatIsNotANumberIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p("(a:1.2.3)"));
        assertTrue(e.getMessage().contains("1.2.3"), e.getMessage());
    }
}
