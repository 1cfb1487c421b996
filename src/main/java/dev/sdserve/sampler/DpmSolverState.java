package dev.sdserve.sampler;

/**
 * DPMSolverMultistepScheduler: DPM-Solver(++) multistep of order 1–3 (midpoint or heun second-order form), and the
 * SDE variants (noise drawn at every step, the last included, as diffusers does). The sample is VP-scaled.
 */
final class DpmSolverState extends BaseState {
    private final NoiseSource noise;
    private final float[] z;
    private final int order;
    private final boolean plusPlus;
    private final boolean sde;
    private final boolean midpoint;
    /** Converted model outputs; outputs[order − 1] is the newest. */
    private final double[][] outputs;
    private int lowerOrderNums;

    DpmSolverState(DiffusersSampler s, SamplingPlan plan, float[] initialNoise, NoiseSource noise) {
        super(s, plan, initialNoise);
        this.order = cfg.solverOrder;
        this.plusPlus = cfg.algorithmType.endsWith("dpmsolver++");
        this.sde = cfg.algorithmType.startsWith("sde");
        this.midpoint = "midpoint".equals(cfg.solverType);
        this.noise = noise;
        this.z = sde ? new float[size] : null;
        this.outputs = new double[order][];
        for (int j = 0; j < order; j++) {
            outputs[j] = new double[size];
        }
    }

    @Override
    void step(float[] eps) {
        int n = plan.evaluations();
        boolean lowerOrderFinal = k == n - 1
                && (cfg.eulerAtFinal || (cfg.lowerOrderFinal && n < 15) || cfg.finalSigmasType.equals("zero"));
        boolean lowerOrderSecond = k == n - 2 && cfg.lowerOrderFinal && n < 15;

        // convert_model_output, then shift the history
        double[] m = outputs[0];
        System.arraycopy(outputs, 1, outputs, 0, order - 1);
        outputs[order - 1] = m;
        double sigma = plan.sigma(k);
        double alpha = alphaOf(sigma), sig = sigma * alpha;
        boolean v = cfg.vPrediction();
        for (int i = 0; i < size; i++) {
            double xi = x[i], e = eps[i];
            if (plusPlus) {
                m[i] = v ? alpha * xi - sig * e : (xi - sig * e) / alpha;
            } else {
                m[i] = v ? alpha * e + sig * xi : e;
            }
        }
        if (sde) {
            noise.fill(z);
        }
        int use;
        if (order == 1 || lowerOrderNums < 1 || lowerOrderFinal) {
            use = 1;
        } else if (order == 2 || lowerOrderNums < 2 || lowerOrderSecond) {
            use = 2;
        } else {
            use = 3;
        }
        // Repeated sigmas (rounded timesteps that coincide at very many steps) would divide by a zero λ-difference
        // (NaN in diffusers): a step uses only the history of distinct sigmas.
        if (use >= 2 && plan.sigma(k - 1) == plan.sigma(k)) {
            use = 1;
        } else if (use == 3 && plan.sigma(k - 2) == plan.sigma(k - 1)) {
            use = 2;
        }
        if (plan.sigma(k + 1) == plan.sigma(k)) {
            // a zero-length step (Karras sigmas with final_sigmas_type sigma_min repeat the last sigma): the exact
            // solution is the identity, while the order-2/3 formulas divide 0 by 0
        } else if (use == 1) {
            firstOrder();
        } else if (use == 2) {
            secondOrder();
        } else {
            thirdOrder();
        }
        if (lowerOrderNums < order) {
            lowerOrderNums++;
        }
    }

    private void firstOrder() {
        double st = plan.sigma(k + 1), ss = plan.sigma(k);
        double at = alphaOf(st), as = alphaOf(ss);
        double sigT = st * at, sigS = ss * as;
        double h = lambdaOf(st) - lambdaOf(ss);
        double[] m0 = outputs[order - 1];
        double cx, cm, cz = 0;
        if (plusPlus && !sde) {
            cx = sigT / sigS;
            cm = -at * (Math.exp(-h) - 1.0);
        } else if (plusPlus) {
            cx = sigT / sigS * Math.exp(-h);
            cm = at * (1 - Math.exp(-2.0 * h));
            cz = sigT * Math.sqrt(1.0 - Math.exp(-2.0 * h));
        } else if (!sde) {
            cx = at / as;
            cm = -sigT * (Math.exp(h) - 1.0);
        } else {
            cx = at / as;
            cm = -2.0 * sigT * (Math.exp(h) - 1.0);
            cz = sigT * Math.sqrt(Math.exp(2 * h) - 1.0);
        }
        for (int i = 0; i < size; i++) {
            x[i] = cx * x[i] + cm * m0[i] + (sde ? cz * z[i] : 0);
        }
    }

    private void secondOrder() {
        double st = plan.sigma(k + 1), s0 = plan.sigma(k), s1 = plan.sigma(k - 1);
        double at = alphaOf(st), a0 = alphaOf(s0);
        double sigT = st * at, sig0 = s0 * a0;
        double lt = lambdaOf(st), l0 = lambdaOf(s0), l1 = lambdaOf(s1);
        double h = lt - l0, h0 = l0 - l1;
        double r0 = h0 / h;
        double[] m0 = outputs[order - 1], m1 = outputs[order - 2];
        // x_t = cx·x + c0·D0 + c1·D1 + cz·z, D0 = m0, D1 = (m0 − m1)/r0
        double cx, c0, c1, cz = 0;
        if (plusPlus && !sde) {
            cx = sigT / sig0;
            c0 = -at * (Math.exp(-h) - 1.0);
            c1 = midpoint ? -0.5 * (at * (Math.exp(-h) - 1.0)) : at * ((Math.exp(-h) - 1.0) / h + 1.0);
        } else if (plusPlus) {
            cx = sigT / sig0 * Math.exp(-h);
            c0 = at * (1 - Math.exp(-2.0 * h));
            c1 = midpoint ? 0.5 * (at * (1 - Math.exp(-2.0 * h))) : at * ((1.0 - Math.exp(-2.0 * h)) / (-2.0 * h) + 1.0);
            cz = sigT * Math.sqrt(1.0 - Math.exp(-2.0 * h));
        } else if (!sde) {
            cx = at / a0;
            c0 = -sigT * (Math.exp(h) - 1.0);
            c1 = midpoint ? -0.5 * (sigT * (Math.exp(h) - 1.0)) : -(sigT * ((Math.exp(h) - 1.0) / h - 1.0));
        } else {
            cx = at / a0;
            c0 = -2.0 * (sigT * (Math.exp(h) - 1.0));
            c1 = midpoint ? -(sigT * (Math.exp(h) - 1.0)) : -2.0 * (sigT * ((Math.exp(h) - 1.0) / h - 1.0));
            cz = sigT * Math.sqrt(Math.exp(2 * h) - 1.0);
        }
        double c1r = c1 / r0;
        for (int i = 0; i < size; i++) {
            double d0 = m0[i];
            x[i] = cx * x[i] + c0 * d0 + c1r * (d0 - m1[i]) + (sde ? cz * z[i] : 0);
        }
    }

    private void thirdOrder() {
        double st = plan.sigma(k + 1), s0 = plan.sigma(k), s1 = plan.sigma(k - 1), s2 = plan.sigma(k - 2);
        double at = alphaOf(st), a0 = alphaOf(s0);
        double sigT = st * at, sig0 = s0 * a0;
        double lt = lambdaOf(st), l0 = lambdaOf(s0), l1 = lambdaOf(s1), l2 = lambdaOf(s2);
        double h = lt - l0, h0 = l0 - l1, h1 = l1 - l2;
        double r0 = h0 / h, r1 = h1 / h;
        double[] m0 = outputs[order - 1], m1 = outputs[order - 2], m2 = outputs[order - 3];
        double cx, c0, c1, c2;
        if (plusPlus) {
            cx = sigT / sig0;
            c0 = -at * (Math.exp(-h) - 1.0);
            c1 = at * ((Math.exp(-h) - 1.0) / h + 1.0);
            c2 = -at * ((Math.exp(-h) - 1.0 + h) / (h * h) - 0.5);
        } else {
            cx = at / a0;
            c0 = -sigT * (Math.exp(h) - 1.0);
            c1 = -sigT * ((Math.exp(h) - 1.0) / h - 1.0);
            c2 = -sigT * ((Math.exp(h) - 1.0 - h) / (h * h) - 0.5);
        }
        double w = r0 / (r0 + r1), inv = 1.0 / (r0 + r1);
        for (int i = 0; i < size; i++) {
            double d10 = (m0[i] - m1[i]) / r0;
            double d11 = (m1[i] - m2[i]) / r1;
            double d1 = d10 + w * (d10 - d11);
            double d2 = inv * (d10 - d11);
            x[i] = cx * x[i] + c0 * m0[i] + c1 * d1 + c2 * d2;
        }
    }
}
