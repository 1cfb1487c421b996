package dev.sdserve.ops;

import org.tensorflow.ndarray.Shape;
import org.tensorflow.types.TFloat32;

/**
 * Run as a child process by {@link HugePagesTest}: allocates a 64 MiB TensorFlow tensor, writes every element, prints
 * {@code GLIBC_TUNABLES}, the resident anonymous bytes on huge pages and the relaunch marker, and exits with the code
 * given as its argument.
 */
public final class HugePagesProbe {
    private HugePagesProbe() {
    }

    public static void main(String[] args) {
        try (TFloat32 t = TFloat32.tensorOf(Shape.of(16, 1024, 1024))) {
            float[] row = new float[1024];
            java.util.Arrays.fill(row, 1.5f);
            for (long i = 0; i < 16 * 1024; i++) {
                t.asRawTensor().data().asFloats().offset(i * 1024).write(row);
            }
            long[] r = HugePages.anonymousResident().orElse(new long[]{-1, -1});
            System.out.println("tunables=" + System.getenv("GLIBC_TUNABLES"));
            System.out.println("relaunched=" + System.getenv(HugePages.RELAUNCHED));
            System.out.println("anonHuge=" + r[1]);
            System.out.println("sum=" + t.getFloat(15, 1023, 1023));
        }
        System.out.flush();
        System.exit(Integer.parseInt(args[0]));
    }
}
