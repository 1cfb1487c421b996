package dev.sdserve.engine.tf;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;

/**
 * Rows of a batch picked by index, in the order given: the inputs of the rows that one graph call runs (a LoRA set,
 * a context length, a DeepCache pass). A null input (one the batch does not have) picks as null.
 */
final class Rows {
    private Rows() {
    }

    static <T> List<T> pick(List<T> list, int[] rows) {
        if (list == null) {
            return null;
        }
        List<T> out = new ArrayList<>(rows.length);
        for (int r : rows) {
            out.add(list.get(r));
        }
        return out;
    }

    static <T> T[] pick(T[] array, int[] rows) {
        if (array == null) {
            return null;
        }
        T[] out = Arrays.copyOf(array, rows.length);
        for (int j = 0; j < rows.length; j++) {
            out[j] = array[rows[j]];
        }
        return out;
    }

    static float[] pick(float[] array, int[] rows) {
        float[] out = new float[rows.length];
        for (int j = 0; j < rows.length; j++) {
            out[j] = array[rows[j]];
        }
        return out;
    }

    /** A list of row indices as an array. */
    static int[] of(Collection<Integer> rows) {
        return rows.stream().mapToInt(Integer::intValue).toArray();
    }
}
