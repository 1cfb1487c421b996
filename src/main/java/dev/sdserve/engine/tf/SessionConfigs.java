package dev.sdserve.engine.tf;

import org.tensorflow.proto.ConfigProto;
import org.tensorflow.proto.GraphOptions;
import org.tensorflow.proto.OptimizerOptions;

/** Session settings for CPU inference. */
public final class SessionConfigs {
    private SessionConfigs() {
    }

    /**
     * {@code threads} intra-op threads (the parallelism inside MatMul etc.), and {@code interOp} threads for running
     * independent ops at once. Graph-level optimisation L1 (constant folding, common subexpressions); no XLA JIT
     * (it made the UNet slower here).
     */
    public static ConfigProto cpu(int threads, int interOp) {
        Lanes.perSessionPools(); // the process's pool setting, before its first session
        return ConfigProto.newBuilder()
                .setIntraOpParallelismThreads(threads)
                .setInterOpParallelismThreads(interOp)
                .setGraphOptions(GraphOptions.newBuilder().setOptimizerOptions(
                        OptimizerOptions.newBuilder().setOptLevel(OptimizerOptions.Level.L1)
                                .setGlobalJitLevel(OptimizerOptions.GlobalJitLevel.OFF)))
                .build();
    }

    public static ConfigProto cpu(int threads) {
        return cpu(threads, 1);
    }
}
