package dev.sdserve.engine.tf;

import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.linalg.MatMul;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

import java.util.List;
import java.util.Set;

/**
 * The unmerged LoRA path inside a graph: for each covered linear (or 1×1 conv) weight W [out, in] it adds
 * {@code ((x·Aᵀ) ⊙ gate[sample]) · Bᵀ} to {@code x·Wᵀ}, where A [R, in] stacks the lora_down of every LoRA of the
 * batch that touches W, B [out, R] stacks their lora_up pre-multiplied by alpha/rank, and gate [samples, 1, R] holds
 * each sample's weight for each of those LoRAs (0 for a LoRA the sample does not use). R is dynamic, so one graph
 * serves every LoRA combination touching the same weights. Inputs per key: {@code lora.down.KEY},
 * {@code lora.up.KEY}, {@code lora.gate.KEY}. The serving side of the networks' one LoRA hook ({@link LinearHook}).
 */
public final class LowRank implements LinearHook {
    private final TfGraph.Builder builder;
    private final Set<String> keys;

    /** @param keys the weight keys (e.g. {@code ...attn1.to_q.weight}) that get a low-rank term */
    public LowRank(TfGraph.Builder builder, Set<String> keys) {
        this.builder = builder;
        this.keys = keys;
    }

    public static String down(String key) {
        return "lora.down." + key;
    }

    public static String up(String key) {
        return "lora.up." + key;
    }

    public static String gate(String key) {
        return "lora.gate." + key;
    }

    /**
     * {@code ((x·Aᵀ) ⊙ gate[sample]) · Bᵀ} for a covered weight, else null.
     *
     * @param x2 the linear's input flattened to [samples·L, in]
     * @param d  the input's original dims ([B, in] or [B, ..., in]): L is the product of the middle ones
     */
    @Override
    public Operand<TFloat32> extra(Nn nn, String key, Operand<TFloat32> x2, long[] d, long out) {
        if (!keys.contains(key)) {
            return null;
        }
        var tf = nn.tf();
        long in = d[d.length - 1];
        long l = 1;
        for (int i = 1; i < d.length - 1; i++) {
            l *= d[i];
        }
        Operand<TFloat32> a = builder.input(down(key), tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, in))));
        Operand<TFloat32> b = builder.input(up(key), tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(out, -1))));
        Operand<TFloat32> g = builder.input(gate(key), tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, 1, -1))));
        Operand<TInt32> r = tf.slice(tf.shape(a), tf.constant(new int[]{0}), tf.constant(new int[]{1}));
        boolean half = Shapes.isHalf(x2); // LoRA factors come in float32; cast them when computing in half
        a = Shapes.castTo(tf, a, half);
        b = Shapes.castTo(tf, b, half);
        g = Shapes.castTo(tf, g, half);
        Operand<TFloat32> xa = tf.linalg.matMul(x2, a, MatMul.transposeB(true)); // [B·L, R]
        Operand<TFloat32> xa3 = tf.reshape(xa, tf.concat(List.of(tf.constant(new int[]{-1, (int) l}), r), tf.constant(0)));
        Operand<TFloat32> gated = tf.reshape(tf.math.mul(xa3, g), tf.concat(List.of(tf.constant(new int[]{-1}), r), tf.constant(0)));
        return tf.linalg.matMul(gated, b, MatMul.transposeB(true));
    }
}
