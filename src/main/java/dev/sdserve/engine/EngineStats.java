package dev.sdserve.engine;

import java.util.concurrent.atomic.AtomicLong;

/** Call and sample counters per stage, read by tests, metrics and the cost model. */
public final class EngineStats {
    public final AtomicLong encodeCalls = new AtomicLong();
    public final AtomicLong encodeItems = new AtomicLong();
    public final AtomicLong denoiseCalls = new AtomicLong();
    public final AtomicLong denoiseItems = new AtomicLong();
    public final AtomicLong unetSamples = new AtomicLong();
    public final AtomicLong decodeCalls = new AtomicLong();
    public final AtomicLong decodeItems = new AtomicLong();
    /** VAE encoder calls and images (img2img, inpainting). */
    public final AtomicLong imageEncodeCalls = new AtomicLong();
    public final AtomicLong imageEncodeItems = new AtomicLong();

    /** Mean requests per UNet call since start. */
    public double meanDenoiseBatch() {
        long calls = denoiseCalls.get();
        return calls == 0 ? 0 : (double) denoiseItems.get() / calls;
    }

    public void recordEncode(int items) {
        encodeCalls.incrementAndGet();
        encodeItems.addAndGet(items);
    }

    public void recordDenoise(DenoiseBatch b) {
        denoiseCalls.incrementAndGet();
        denoiseItems.addAndGet(b.items().size());
        unetSamples.addAndGet(b.unetSamples());
    }

    public void recordDecode(int items) {
        decodeCalls.incrementAndGet();
        decodeItems.addAndGet(items);
    }

    public void recordImageEncode(int items) {
        imageEncodeCalls.incrementAndGet();
        imageEncodeItems.addAndGet(items);
    }
}
