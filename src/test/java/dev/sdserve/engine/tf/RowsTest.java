package dev.sdserve.engine.tf;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

class RowsTest {
    @Test
    void picksRowsInTheOrderGivenAndKeepsAbsentInputsAbsent() {
        int[] rows = Rows.of(List.of(2, 0));
        assertArrayEquals(new int[]{2, 0}, rows);
        assertEquals(List.of("c", "a"), Rows.pick(List.of("a", "b", "c"), rows));
        assertArrayEquals(new float[]{3f, 1f}, Rows.pick(new float[]{1f, 2f, 3f}, rows));
        float[] a = {1f}, b = {2f}, c = {3f};
        float[][] picked = Rows.pick(new float[][]{a, b, c}, rows);
        assertEquals(2, picked.length);
        assertSame(c, picked[0], "rows are shared, not copied");
        assertSame(a, picked[1]);
        assertEquals(0, Rows.pick(List.of("a"), new int[0]).size());
        assertNull(Rows.pick((List<String>) null, rows));
        assertNull(Rows.pick((float[][]) null, rows));
    }
}
