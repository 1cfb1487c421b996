package dev.sdserve.scheduler;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.EngineStats;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Fault-injecting wrapper around a real engine, for tests. Each rule sees the call and may throw (any
 * {@link Throwable}: runtime exceptions, {@link OutOfMemoryError}); hooks run inside the call (to cancel a job
 * mid-step). Records every denoise batch's conditionings so tests can see which jobs an engine call carried.
 */
final class FaultyEngine implements Engine {
    final Engine inner;
    /** Returns a throwable to throw for this denoise batch, or null. */
    volatile Function<DenoiseBatch, Throwable> denoiseFault = b -> null;
    volatile Function<List<EncodeItem>, Throwable> encodeFault = i -> null;
    volatile Function<List<float[]>, Throwable> decodeFault = l -> null;
    /** Runs inside every denoise call, before the fault rule. */
    volatile Consumer<DenoiseBatch> duringDenoise = b -> {
    };
    final AtomicInteger denoiseCalls = new AtomicInteger();
    final AtomicInteger faultsThrown = new AtomicInteger();
    /** Sizes (items) of every denoise call, failed or not. */
    final List<Integer> denoiseSizes = Collections.synchronizedList(new ArrayList<>());
    /** Conditioning arrays of every denoise call (identity), in call order. */
    final List<Set<float[]>> denoiseConds = Collections.synchronizedList(new ArrayList<>());

    FaultyEngine(Engine inner) {
        this.inner = inner;
    }

    /** Throws {@code t} exactly once, at the n-th (1-based) denoise call. */
    static Function<DenoiseBatch, Throwable> once(int n, AtomicInteger counter, Throwable t) {
        return b -> counter.incrementAndGet() == n ? t : null;
    }

    private static void raise(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException(t);
    }

    @Override
    public ModelInfo describe(String model) {
        return inner.describe(model);
    }

    @Override
    public float[][] encode(String model, List<EncodeItem> items) {
        Throwable t = encodeFault.apply(items);
        if (t != null) {
            faultsThrown.incrementAndGet();
            raise(t);
        }
        return inner.encode(model, items);
    }

    @Override
    public float[][] denoise(DenoiseBatch batch) {
        denoiseCalls.incrementAndGet();
        denoiseSizes.add(batch.items().size());
        Set<float[]> conds = Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        batch.items().forEach(i -> conds.add(i.cond()));
        denoiseConds.add(conds);
        duringDenoise.accept(batch);
        Throwable t = denoiseFault.apply(batch);
        if (t != null) {
            faultsThrown.incrementAndGet();
            raise(t);
        }
        return inner.denoise(batch);
    }

    @Override
    public float[][] decode(String model, LatentShape shape, List<float[]> latents) {
        Throwable t = decodeFault.apply(latents);
        if (t != null) {
            faultsThrown.incrementAndGet();
            raise(t);
        }
        return inner.decode(model, shape, latents);
    }

    @Override
    public EngineStats stats() {
        return inner.stats();
    }
}
