package dev.sdserve.train;

import dev.sdserve.engine.tf.Conv3x3;
import dev.sdserve.engine.tf.LinearHook;
import dev.sdserve.engine.tf.Nn;
import dev.sdserve.engine.tf.UNetNet;
import dev.sdserve.engine.tf.WeightBinder;
import dev.sdserve.engine.tf.Weights;
import dev.sdserve.model.UNetConfig;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Op;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gradients;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.core.VarHandleOp;
import org.tensorflow.op.linalg.MatMul;
import org.tensorflow.proto.ConfigProto;
import org.tensorflow.types.TFloat32;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Pattern;

/**
 * LoRA training of the UNet's attention projections in one TF graph (graph mode). For every projection
 * {@code to_q, to_k, to_v, to_out.0} of {@code attn1}/{@code attn2} of every transformer block, two trainable
 * resource variables {@code down} A [r, in] and {@code up} B [out, r} add {@code x·Aᵀ·Bᵀ·(alpha/r)} to the frozen
 * projection (base weights are fed as inputs, as for inference).
 *
 * <p>One {@link #step} is: {@code x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε} (SD's scaled-linear schedule, 1000 steps), predict ε,
 * mean-squared error; gradients by TF's graph gradients; AdamW (decoupled weight decay, bias-corrected moments) as
 * graph ops assigning to the parameter and moment variables, all in one session run. The batch, timesteps and noise
 * of step {@code s} come from a generator seeded by (seed, s) only, so a run resumed from a checkpoint at step s
 * continues exactly as the uninterrupted run.
 *
 * <p>Not thread-safe: one caller at a time.
 */
public final class LoraTrainer implements AutoCloseable {
    /** The attention projections trained (LDM keys). */
    static final Pattern TARGET = Pattern.compile(
            "model\\.diffusion_model\\..*\\.transformer_blocks\\.\\d+\\.(attn[12])\\.(to_q|to_k|to_v|to_out\\.0)\\.weight");
    public static final int TRAIN_TIMESTEPS = 1000;

    /** Hyper-parameters. */
    public record Config(int rank, double alpha, double learningRate, double weightDecay, double beta1, double beta2,
                         double epsilon, int batchSize, long seed) {
        public Config {
            if (rank < 1) {
                throw new IllegalArgumentException("LoRA rank must be >= 1, got " + rank);
            }
            if (batchSize < 1) {
                throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
            }
            if (!(learningRate > 0)) {
                throw new IllegalArgumentException("learning rate must be > 0, got " + learningRate);
            }
        }

        public static Config of(int rank, double alpha, double learningRate, int batchSize, long seed) {
            return new Config(rank, alpha, learningRate, 1e-2, 0.9, 0.999, 1e-8, batchSize, seed);
        }

        public double scale() {
            return alpha / rank;
        }
    }

    /** One trained module: the LDM module path (weight key without {@code .weight}) and its sizes. */
    public record Module(String prefix, int in, int out) {
        public String weightKey() {
            return prefix + ".weight";
        }
    }

    /** One training example: a scaled VAE latent (NCHW) and the text-encoder hidden states of its caption. */
    public record Example(float[] latent, float[] context) {
    }

    /** The LoRA parameters and optimiser state, as plain arrays (row-major), in {@link #modules()} order. */
    public record State(long step, List<float[]> down, List<float[]> up, List<float[]> downM, List<float[]> downV,
                        List<float[]> upM, List<float[]> upV) {
    }

    private final UNetConfig unet;
    private final Config cfg;
    private final int height, width, tokens, ctxDim;
    private final List<Module> modules;
    private final Graph graph;
    private final Session session;
    private final WeightBinder binder;
    private final float[] sqrtAlphaBar = new float[TRAIN_TIMESTEPS];
    private final float[] sqrtOneMinusAlphaBar = new float[TRAIN_TIMESTEPS];

    // graph handles
    private Placeholder<TFloat32> x0, noise, t, sa, s1a, ctx, lr, bc1, bc2;
    private Operand<TFloat32> loss;
    private Op trainOp;
    private Gradients gradients;
    /** Per variable (in order: down, up, downM, downV, upM, upV per module): its read op, a setter feed, an assign. */
    private final List<Var> vars = new ArrayList<>();
    private long step;

    private record Var(String name, long[] shape, Operand<?> handle, Operand<TFloat32> read, Placeholder<TFloat32> feed,
                       Op assign) {
    }

    public LoraTrainer(Weights weights, UNetConfig unet, int latentH, int latentW, int tokens, int ctxDim, Config cfg) {
        this(weights, unet, latentH, latentW, tokens, ctxDim, cfg, List.of());
    }

    /**
     * @param targets which attention projections to train, by name: {@code to_q}, {@code to_k}, {@code to_v},
     *                {@code to_out} select projection kinds, {@code attn1} (self-attention) and {@code attn2}
     *                (cross-attention) select blocks; an empty list (or an empty kind / block selection) means all
     */
    public LoraTrainer(Weights weights, UNetConfig unet, int latentH, int latentW, int tokens, int ctxDim, Config cfg,
                       List<String> targets) {
        this.unet = unet;
        this.cfg = cfg;
        this.height = latentH;
        this.width = latentW;
        this.tokens = tokens;
        this.ctxDim = ctxDim;
        this.modules = modules(weights, targets);
        if (modules.isEmpty()) {
            throw new IllegalArgumentException("the UNet has no attention projections to train (no "
                    + "transformer_blocks.*.attn1/attn2.to_q/k/v/out.0 weights)");
        }
        schedule(sqrtAlphaBar, sqrtOneMinusAlphaBar);
        this.graph = new Graph();
        this.binder = new WeightBinder(weights);
        try {
            build(Ops.create(graph));
            int threads = Integer.getInteger("sdserve.threads", Runtime.getRuntime().availableProcessors());
            dev.sdserve.engine.tf.Lanes.perSessionPools(); // the process's pool setting, before its first session
            this.session = new Session(graph, ConfigProto.newBuilder().setIntraOpParallelismThreads(threads)
                    .setInterOpParallelismThreads(1).build());
        } catch (RuntimeException e) {
            graph.close();
            throw e;
        }
        setState(initialState());
    }

    /** The names {@link #modules(Weights, List)} accepts as targets. */
    public static final List<String> TARGET_NAMES = List.of("to_q", "to_k", "to_v", "to_out", "attn1", "attn2");

    /** The trained projections of a checkpoint's UNet, in key order. */
    public static List<Module> modules(Weights w) {
        return modules(w, List.of());
    }

    /** The projections selected by {@code targets} (see the constructor), in key order. */
    public static List<Module> modules(Weights w, List<String> targets) {
        for (String t : targets) {
            if (!TARGET_NAMES.contains(t)) {
                throw new IllegalArgumentException("unknown target module '" + t + "' (known: " + TARGET_NAMES + ")");
            }
        }
        List<String> kinds = targets.stream().filter(t -> t.startsWith("to_")).toList();
        List<String> blocks = targets.stream().filter(t -> t.startsWith("attn")).toList();
        List<Module> out = new ArrayList<>();
        for (String k : w.keys()) {
            java.util.regex.Matcher mt = TARGET.matcher(k);
            if (mt.matches() && (kinds.isEmpty() || kinds.contains(mt.group(2).replace(".0", "")))
                    && (blocks.isEmpty() || blocks.contains(mt.group(1)))) {
                long[] s = w.shape(k);
                out.add(new Module(k.substring(0, k.length() - ".weight".length()), (int) s[1], (int) s[0]));
            }
        }
        return out;
    }

    /** SD's scaled-linear β schedule (0.00085 → 0.012 in √ space, 1000 steps): √ᾱ and √(1−ᾱ) per timestep. */
    static void schedule(float[] sa, float[] s1a) {
        double lo = Math.sqrt(0.00085), hi = Math.sqrt(0.012);
        double prod = 1;
        int n = sa.length;
        for (int i = 0; i < n; i++) {
            double b = lo + (hi - lo) * i / (n - 1);
            prod *= 1 - b * b;
            sa[i] = (float) Math.sqrt(prod);
            s1a[i] = (float) Math.sqrt(1 - prod);
        }
    }

    private void build(Ops tf) {
        Nn nn = new Nn(tf, binder, Conv3x3.Method.NATIVE); // differentiable convolutions
        int c = unet.inChannels();
        x0 = tf.withName("x0").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, c, height, width)));
        noise = tf.withName("noise").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, c, height, width)));
        t = tf.withName("t").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)));
        sa = tf.withName("sqrt_ab").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)));
        s1a = tf.withName("sqrt_1mab").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)));
        ctx = tf.withName("ctx").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, tokens, ctxDim)));
        lr = tf.withName("lr").placeholder(TFloat32.class, Placeholder.shape(Shape.scalar()));
        bc1 = tf.withName("bc1").placeholder(TFloat32.class, Placeholder.shape(Shape.scalar()));
        bc2 = tf.withName("bc2").placeholder(TFloat32.class, Placeholder.shape(Shape.scalar()));

        Map<String, Operand<TFloat32>[]> lora = new LinkedHashMap<>();
        List<Operand<TFloat32>> params = new ArrayList<>();
        int r = cfg.rank();
        for (int i = 0; i < modules.size(); i++) {
            Module m = modules.get(i);
            Var down = variable(tf, "lora" + i + ".down", new long[]{r, m.in()});
            Var up = variable(tf, "lora" + i + ".up", new long[]{m.out(), r});
            @SuppressWarnings("unchecked")
            Operand<TFloat32>[] pair = new Operand[]{down.read(), up.read()};
            lora.put(m.prefix(), pair);
            params.add(down.read());
            params.add(up.read());
        }
        // moments after the parameters, so that vars = [down0, up0, down1, up1, ..., then m/v per parameter]
        List<Var> moments = new ArrayList<>();
        for (int i = 0; i < params.size(); i++) {
            Var p = vars.get(i);
            moments.add(variable(tf, p.name() + ".m", p.shape()));
            moments.add(variable(tf, p.name() + ".v", p.shape()));
        }

        float scale = (float) cfg.scale();
        // the networks' LoRA hook (the one serving uses too): x·Aᵀ·Bᵀ·scale on every trained projection
        LinearHook hook = (n, weightKey, x2, d, out) -> {
            Operand<TFloat32>[] p = weightKey.endsWith(".weight")
                    ? lora.get(weightKey.substring(0, weightKey.length() - ".weight".length())) : null;
            if (p == null) {
                return null;
            }
            Operand<TFloat32> y = tf.linalg.matMul(x2, p[0], MatMul.transposeB(true));
            y = tf.linalg.matMul(y, p[1], MatMul.transposeB(true));
            return n.scale(y, scale);
        };
        nn.linearHook(hook);

        Operand<TFloat32> xt = tf.math.add(tf.math.mul(x0, tf.reshape(sa, tf.constant(new long[]{-1, 1, 1, 1}))),
                tf.math.mul(noise, tf.reshape(s1a, tf.constant(new long[]{-1, 1, 1, 1}))));
        Operand<TFloat32> eps = UNetNet.apply(nn, unet, xt, t, ctx);
        Operand<TFloat32> diff = tf.math.sub(eps, noise);
        loss = tf.withName("loss").math.mean(tf.math.square(diff), tf.constant(new int[]{0, 1, 2, 3}));

        Gradients g = tf.gradients(loss, params);
        List<Op> updates = new ArrayList<>();
        float b1 = (float) cfg.beta1(), b2 = (float) cfg.beta2();
        for (int i = 0; i < params.size(); i++) {
            Var p = vars.get(i);
            Var m = moments.get(2 * i);
            Var v = moments.get(2 * i + 1);
            Operand<TFloat32> grad = g.dy(i);
            Operand<TFloat32> m2 = tf.math.add(tf.math.mul(m.read(), tf.constant(b1)), tf.math.mul(grad, tf.constant(1 - b1)));
            Operand<TFloat32> v2 = tf.math.add(tf.math.mul(v.read(), tf.constant(b2)),
                    tf.math.mul(tf.math.square(grad), tf.constant(1 - b2)));
            Operand<TFloat32> adam = tf.math.div(tf.math.mul(m2, bc1),
                    tf.math.add(tf.math.sqrt(tf.math.mul(v2, bc2)), tf.constant((float) cfg.epsilon())));
            Operand<TFloat32> decay = tf.math.mul(p.read(), tf.constant((float) cfg.weightDecay()));
            Operand<TFloat32> p2 = tf.math.sub(p.read(), tf.math.mul(lr, tf.math.add(adam, decay)));
            updates.add(tf.assignVariableOp(m.handle(), m2));
            updates.add(tf.assignVariableOp(v.handle(), v2));
            updates.add(tf.assignVariableOp(p.handle(), p2));
        }
        trainOp = tf.withControlDependencies(updates).withName("train").noOp();
        gradients = g;
    }


    private Var variable(Ops tf, String name, long[] shape) {
        // a unique shared name per variable: without it every VarHandleOp of a graph names the same resource
        VarHandleOp h = tf.withName("var." + name).varHandleOp(TFloat32.class, Shape.of(shape),
                VarHandleOp.sharedName("sdserve.train." + name));
        Placeholder<TFloat32> feed = tf.withName("set." + name).placeholder(TFloat32.class,
                Placeholder.shape(Shape.of(shape)));
        Op assign = tf.withName("assign." + name).assignVariableOp(h, feed);
        Operand<TFloat32> read = tf.withName("read." + name).readVariableOp(h, TFloat32.class);
        Var v = new Var(name, shape, h, read, feed, assign);
        vars.add(v);
        return v;
    }

    // ---------------------------------------------------------------- state

    public List<Module> modules() {
        return modules;
    }

    public Config config() {
        return cfg;
    }

    /** Steps taken so far (the next step's index). */
    public long step() {
        return step;
    }

    /** Standard LoRA init: A ~ U(±1/√in) (Kaiming-uniform with a = √5), B = 0, moments 0, step 0. */
    public State initialState() {
        Random rnd = new Random(cfg.seed() ^ 0x5DEECE66DL);
        List<float[]> down = new ArrayList<>(), up = new ArrayList<>(), dm = new ArrayList<>(), dv = new ArrayList<>(),
                um = new ArrayList<>(), uv = new ArrayList<>();
        for (Module m : modules) {
            float[] a = new float[cfg.rank() * m.in()];
            double bound = 1.0 / Math.sqrt(m.in());
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
            }
            down.add(a);
            up.add(new float[m.out() * cfg.rank()]);
            dm.add(new float[a.length]);
            dv.add(new float[a.length]);
            um.add(new float[m.out() * cfg.rank()]);
            uv.add(new float[m.out() * cfg.rank()]);
        }
        return new State(0, down, up, dm, dv, um, uv);
    }

    /** Loads parameters and optimiser state into the graph's variables. */
    public void setState(State st) {
        int n = modules.size();
        if (st.down().size() != n || st.up().size() != n) {
            throw new IllegalArgumentException("state has " + st.down().size() + " modules, the trainer " + n);
        }
        List<float[]> values = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            values.add(st.down().get(i));
            values.add(st.up().get(i));
        }
        for (int i = 0; i < n; i++) {
            values.add(st.downM().get(i));
            values.add(st.downV().get(i));
            values.add(st.upM().get(i));
            values.add(st.upV().get(i));
        }
        List<TFloat32> open = new ArrayList<>();
        try {
            Session.Runner r = session.runner();
            for (int i = 0; i < vars.size(); i++) {
                Var v = vars.get(i);
                float[] d = values.get(i);
                if (d.length != Shape.of(v.shape()).size()) {
                    throw new IllegalArgumentException(v.name() + ": " + d.length + " values for shape "
                            + java.util.Arrays.toString(v.shape()));
                }
                TFloat32 ten = TFloat32.tensorOf(Shape.of(v.shape()), b -> b.copyFrom(DataBuffers.of(d, true, false)));
                open.add(ten);
                r.feed(v.feed(), ten).addTarget(v.assign());
            }
            r.run().close();
        } finally {
            open.forEach(TFloat32::close);
        }
        this.step = st.step();
    }

    /** Reads parameters and optimiser state out of the graph. */
    public State state() {
        Session.Runner r = session.runner();
        for (Var v : vars) {
            r.fetch(v.read());
        }
        List<float[]> all = new ArrayList<>();
        try (Result res = r.run()) {
            for (int i = 0; i < vars.size(); i++) {
                TFloat32 ten = (TFloat32) res.get(i);
                float[] d = new float[Math.toIntExact(ten.shape().size())];
                ten.copyTo(DataBuffers.of(d, false, false));
                all.add(d);
            }
        }
        int n = modules.size();
        List<float[]> down = new ArrayList<>(), up = new ArrayList<>(), dm = new ArrayList<>(), dv = new ArrayList<>(),
                um = new ArrayList<>(), uv = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            down.add(all.get(2 * i));
            up.add(all.get(2 * i + 1));
            int base = 2 * n + 4 * i;
            dm.add(all.get(base));
            dv.add(all.get(base + 1));
            um.add(all.get(base + 2));
            uv.add(all.get(base + 3));
        }
        return new State(step, down, up, dm, dv, um, uv);
    }

    // ---------------------------------------------------------------- batches

    /** A concrete batch: clean latents, noise, integer timesteps, contexts. */
    public record Batch(List<float[]> latents, List<float[]> noise, int[] timesteps, List<float[]> contexts) {
    }

    /** The batch of step {@code s}: examples, timesteps and noise drawn from a generator seeded by (seed, s) only. */
    public Batch batch(List<Example> data, long s) {
        if (data.isEmpty()) {
            throw new IllegalArgumentException("no training examples");
        }
        Random rnd = new Random(cfg.seed() * 0x9E3779B97F4A7C15L + s * 0xBF58476D1CE4E5B9L + 1);
        int b = cfg.batchSize();
        List<float[]> lat = new ArrayList<>(), nz = new ArrayList<>(), cx = new ArrayList<>();
        int[] ts = new int[b];
        for (int i = 0; i < b; i++) {
            Example e = data.get(rnd.nextInt(data.size()));
            lat.add(e.latent());
            cx.add(e.context());
            ts[i] = rnd.nextInt(TRAIN_TIMESTEPS);
            float[] n = new float[e.latent().length];
            for (int j = 0; j < n.length; j++) {
                n[j] = (float) rnd.nextGaussian();
            }
            nz.add(n);
        }
        return new Batch(lat, nz, ts, cx);
    }

    // ---------------------------------------------------------------- running

    /** One AdamW step on the batch of the current step index; returns the batch loss (before the update). */
    public float step(List<Example> data) {
        Batch b = batch(data, step);
        long k = step + 1;
        float c1 = (float) (1 / (1 - Math.pow(cfg.beta1(), k)));
        float c2 = (float) (1 / (1 - Math.pow(cfg.beta2(), k)));
        float l = run(b, true, c1, c2);
        step = k;
        return l;
    }

    /** The loss of a batch with the current parameters (no update). */
    public float loss(Batch b) {
        return run(b, false, 1, 1);
    }

    /** Gradients of the loss of a batch w.r.t. every parameter (no update), in variable order [down0, up0, ...]. */
    public List<float[]> gradients(Batch b) {
        List<TFloat32> open = feeds(b, 1, 1);
        try {
            Session.Runner r = runner(open);
            for (int i = 0; i < 2 * modules.size(); i++) {
                r.fetch(gradients.dy(i));
            }
            List<float[]> out = new ArrayList<>();
            try (Result res = r.run()) {
                for (int i = 0; i < 2 * modules.size(); i++) {
                    TFloat32 ten = (TFloat32) res.get(i);
                    float[] d = new float[Math.toIntExact(ten.shape().size())];
                    ten.copyTo(DataBuffers.of(d, false, false));
                    out.add(d);
                }
            }
            return out;
        } finally {
            open.forEach(TFloat32::close);
        }
    }

    private float run(Batch b, boolean train, float c1, float c2) {
        List<TFloat32> open = feeds(b, c1, c2);
        try {
            Session.Runner r = runner(open).fetch(loss);
            if (train) {
                r.addTarget(trainOp);
            }
            try (Result res = r.run()) {
                return ((TFloat32) res.get(0)).getFloat();
            }
        } finally {
            open.forEach(TFloat32::close);
        }
    }

    private List<TFloat32> feeds(Batch b, float c1, float c2) {
        int n = b.latents().size();
        int c = unet.inChannels();
        float[] tf = new float[n], sav = new float[n], s1av = new float[n];
        for (int i = 0; i < n; i++) {
            int ts = b.timesteps()[i];
            tf[i] = ts;
            sav[i] = sqrtAlphaBar[ts];
            s1av[i] = sqrtOneMinusAlphaBar[ts];
        }
        List<TFloat32> open = new ArrayList<>();
        open.add(tensor(b.latents(), n, c, height, width));
        open.add(tensor(b.noise(), n, c, height, width));
        open.add(TFloat32.vectorOf(tf));
        open.add(TFloat32.vectorOf(sav));
        open.add(TFloat32.vectorOf(s1av));
        open.add(tensor(b.contexts(), n, tokens, ctxDim));
        open.add(TFloat32.scalarOf((float) cfg.learningRate()));
        open.add(TFloat32.scalarOf(c1));
        open.add(TFloat32.scalarOf(c2));
        return open;
    }

    private Session.Runner runner(List<TFloat32> open) {
        Session.Runner r = session.runner();
        Placeholder<?>[] ins = {x0, noise, t, sa, s1a, ctx, lr, bc1, bc2};
        for (int i = 0; i < ins.length; i++) {
            r.feed(ins[i], open.get(i));
        }
        Weights w = binder.weights();
        for (var e : binder.bound().entrySet()) {
            r.feed(e.getValue(), w.tensor(e.getKey())); // float32, or half (the binder casts it in the graph)
        }
        return r;
    }

    private static TFloat32 tensor(List<float[]> items, long... shape) {
        long per = 1;
        for (int i = 1; i < shape.length; i++) {
            per *= shape[i];
        }
        float[] flat = new float[Math.toIntExact(per * items.size())];
        for (int i = 0; i < items.size(); i++) {
            float[] it = items.get(i);
            if (it.length != per) {
                throw new IllegalArgumentException("item " + i + " has " + it.length + " floats, expected " + per);
            }
            System.arraycopy(it, 0, flat, (int) (i * per), it.length);
        }
        return TFloat32.tensorOf(Shape.of(shape), d -> d.copyFrom(DataBuffers.of(flat, true, false)));
    }

    @Override
    public void close() {
        session.close();
        graph.close();
    }
}
