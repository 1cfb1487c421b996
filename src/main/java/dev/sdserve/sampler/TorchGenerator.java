package dev.sdserve.sampler;

/**
 * A request's seeded noise: reproduces PyTorch's CPU generator, i.e. {@code g = torch.Generator().manual_seed(seed)}
 * followed by {@code torch.randn(shape, generator=g, dtype=torch.float32)} calls, one per {@link #fill}.
 *
 * <p>The engine is mt19937 seeded as torch does ({@code state[0] = seed mod 2^32}, the standard initialisation).
 * For tensors of at least 16 floats, torch first fills the tensor with uniforms {@code (r & 0xFFFFFF) / 2^24} (one
 * 32-bit draw each), then transforms each block of 16 with Box–Muller: {@code u1 = 1 - d[j], u2 = d[j + 8]},
 * {@code d[j] = sqrt(-2 ln u1) cos(2π u2)}, {@code d[j + 8] = sqrt(-2 ln u1) sin(2π u2)} for j &lt; 8; when the size is
 * not a multiple of 16, the last 16 values are redrawn (16 more uniforms) and transformed again. Torch computes the
 * transcendental functions in float32 (SLEEF on AVX2); this class computes them in double and rounds, so a value may
 * differ from torch's in the last bit (measured against the golden set: at most 1.7e-6 absolute).
 *
 * <p>Tensors of fewer than 16 floats take torch's scalar path (double Box–Muller from 53-bit uniforms, the sine
 * half cached in the generator); that path follows torch's source but has no golden reference.
 *
 * <p>In service, {@code g = new TorchGenerator(seed); g.fill(initialNoise); sampler.start(steps, initialNoise, g)}
 * reproduces diffusers' {@code pipe(..., generator=torch.Generator().manual_seed(seed))} for one image in float32:
 * the pipeline draws the initial latent first and the ancestral/SDE samplers then draw each step's noise from the
 * same generator. (A batch of n images in one diffusers call draws one (n,4,h,w) tensor instead, i.e. the images'
 * noises back to back; float16 noise takes another torch path and is not reproduced.)
 *
 * <p>Golden set sd15-tiny: {@code pipe.init_noise} is this generator seeded 1234 after 18,003,486 raw draws
 * ({@code new TorchGenerator(1234).skip(18_003_486)}), i.e. the generating script had used the seeded generator
 * before; the recorded step noise of euler_ancestral and then dpmpp_2m_sde_karras is one generator seeded 1235.
 *
 * <p>Not thread-safe: one instance per request.
 */
public final class TorchGenerator implements NoiseSource {
    private static final int N = 624;
    private static final int M = 397;
    private static final int MATRIX_A = 0x9908b0df;
    private static final int UPPER_MASK = 0x80000000;
    private static final int LOWER_MASK = 0x7fffffff;

    private final long seed;
    private final int[] mt = new int[N];
    private int next;
    private long draws;
    private boolean hasCachedNormal;
    private double cachedNormal;

    /** {@code torch.Generator().manual_seed(seed)} (only the low 32 bits of the seed matter, as in torch). */
    public TorchGenerator(long seed) {
        this.seed = seed;
        mt[0] = (int) seed;
        for (int j = 1; j < N; j++) {
            mt[j] = 1812433253 * (mt[j - 1] ^ (mt[j - 1] >>> 30)) + j;
        }
        next = N;
    }

    public long seed() {
        return seed;
    }

    /** Raw 32-bit draws taken so far. */
    public long draws() {
        return draws;
    }

    /** Discards {@code n} raw 32-bit draws (as if other tensors had been drawn from this generator first). */
    public TorchGenerator skip(long n) {
        for (long i = 0; i < n; i++) {
            nextInt();
        }
        return this;
    }

    /** The next raw 32-bit output of mt19937 (torch's {@code generator->random()}). */
    public int nextInt() {
        if (next >= N) {
            twist();
        }
        int y = mt[next++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >>> 18;
        draws++;
        return y;
    }

    private void twist() {
        for (int i = 0; i < N; i++) {
            int y = (mt[i] & UPPER_MASK) | (mt[(i + 1) % N] & LOWER_MASK);
            int v = mt[(i + M) % N] ^ (y >>> 1);
            if ((y & 1) != 0) {
                v ^= MATRIX_A;
            }
            mt[i] = v;
        }
        next = 0;
    }

    /** torch's float uniform in [0, 1): 24 random bits of one draw. */
    private float uniformFloat() {
        return (nextInt() & 0xFFFFFF) * (1.0f / (1 << 24));
    }

    /** torch's double uniform in [0, 1): 53 random bits of a 64-bit draw (first draw high, second low). */
    private double uniformDouble() {
        long hi = nextInt() & 0xFFFFFFFFL;
        long lo = nextInt() & 0xFFFFFFFFL;
        long r = (hi << 32) | lo;
        return (r & ((1L << 53) - 1)) * 0x1.0p-53;
    }

    /** Fills {@code out} like {@code torch.randn(out.length, generator=g)} (float32). */
    @Override
    public void fill(float[] out) {
        int size = out.length;
        if (size >= 16) {
            for (int i = 0; i < size; i++) {
                out[i] = uniformFloat();
            }
            for (int i = 0; i + 16 <= size; i += 16) {
                boxMuller16(out, i);
            }
            if (size % 16 != 0) {
                int base = size - 16;
                for (int i = 0; i < 16; i++) {
                    out[base + i] = uniformFloat();
                }
                boxMuller16(out, base);
            }
        } else {
            for (int i = 0; i < size; i++) {
                out[i] = (float) normalDouble();
            }
        }
    }

    private static void boxMuller16(float[] d, int off) {
        for (int j = 0; j < 8; j++) {
            float u1 = 1.0f - d[off + j];
            float u2 = d[off + j + 8];
            float radius = (float) Math.sqrt(-2.0 * (float) Math.log(u1));
            float theta = (float) (2.0 * Math.PI * u2);
            d[off + j] = (float) (radius * (double) (float) Math.cos(theta));
            d[off + j + 8] = (float) (radius * (double) (float) Math.sin(theta));
        }
    }

    private double normalDouble() {
        if (hasCachedNormal) {
            hasCachedNormal = false;
            return cachedNormal;
        }
        double u1 = uniformDouble();
        double u2 = uniformDouble();
        double r = Math.sqrt(-2.0 * Math.log1p(-u2));
        double theta = 2.0 * Math.PI * u1;
        cachedNormal = r * Math.sin(theta);
        hasCachedNormal = true;
        return r * Math.cos(theta);
    }
}
