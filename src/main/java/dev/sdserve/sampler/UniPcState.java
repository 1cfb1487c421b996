package dev.sdserve.sampler;

/**
 * UniPCMultistepScheduler: UniP predictor and UniC corrector (B(h) = bh1 or bh2), data (predict_x0) or noise
 * prediction, order up to 3 with warm-up and lower_order_final. The sample is VP-scaled.
 */
final class UniPcState extends BaseState {
    private final int order;
    /** Converted model outputs; outputs[order − 1] is the newest. */
    private final double[][] outputs;
    private double[] spare;
    private final double[] lastSample;
    private boolean hasLast;
    private int thisOrder;
    private int lowerOrderNums;

    UniPcState(DiffusersSampler s, SamplingPlan plan, float[] noise) {
        super(s, plan, noise);
        order = cfg.solverOrder;
        outputs = new double[order][];
        for (int j = 0; j < order; j++) {
            outputs[j] = new double[size];
        }
        spare = new double[size];
        lastSample = new double[size];
    }

    @Override
    void step(float[] eps) {
        int n = plan.evaluations();
        boolean useCorrector = k > 0 && !disabled(k - 1) && hasLast;
        double sigma = plan.sigma(k);
        double alpha = alphaOf(sigma), sig = sigma * alpha;
        boolean v = cfg.vPrediction();
        double[] conv = spare;
        for (int i = 0; i < size; i++) {
            double xi = x[i], e = eps[i];
            if (cfg.predictX0) {
                conv[i] = v ? alpha * xi - sig * e : (xi - sig * e) / alpha;
            } else {
                conv[i] = v ? alpha * e + sig * xi : e;
            }
        }
        if (useCorrector && plan.sigma(k) != plan.sigma(k - 1)) {
            correct(conv, distinct(thisOrder, k - 1));
        }
        spare = outputs[0];
        System.arraycopy(outputs, 1, outputs, 0, order - 1);
        outputs[order - 1] = conv;
        int o = cfg.lowerOrderFinal ? Math.min(order, n - k) : order;
        thisOrder = Math.min(o, lowerOrderNums + 1);
        System.arraycopy(x, 0, lastSample, 0, size);
        hasLast = true;
        if (plan.sigma(k + 1) != plan.sigma(k)) {
            predict(distinct(thisOrder, k)); // (a zero-length step is the identity; its formulas would divide 0 by 0)
        }
        if (lowerOrderNums < order) {
            lowerOrderNums++;
        }
    }

    /**
     * The order usable at base index {@code base}: the history must have distinct sigmas (rounded timesteps can
     * coincide at very many steps, and a zero λ-difference would divide by zero).
     */
    private int distinct(int p, int base) {
        for (int i = 1; i < p; i++) {
            if (plan.sigma(base - i) == plan.sigma(base - i + 1)) {
                return i;
            }
        }
        return p;
    }

    private boolean disabled(int step) {
        for (int d : cfg.disableCorrector) {
            if (d == step) {
                return true;
            }
        }
        return false;
    }

    /** Coefficients R (p×p) and b (p) of the UniPC linear system for ratios rks (the last one 1). */
    private double[] bVector(double hh, int p, double bh) {
        double[] b = new double[p];
        double hPhi1 = Math.expm1(hh);
        double hPhiK = hPhi1 / hh - 1;
        double factorial = 1;
        for (int i = 1; i <= p; i++) {
            b[i - 1] = hPhiK * factorial / bh;
            factorial *= i + 1;
            hPhiK = hPhiK / hh - 1 / factorial;
        }
        return b;
    }

    private static double[] solve(double[] rks, double[] b, int p) {
        // R[i][j] = rks[j]^i, solve R·rho = b (p ≤ 3) by Gaussian elimination with partial pivoting
        double[][] a = new double[p][p + 1];
        for (int i = 0; i < p; i++) {
            for (int j = 0; j < p; j++) {
                a[i][j] = Math.pow(rks[j], i);
            }
            a[i][p] = b[i];
        }
        for (int c = 0; c < p; c++) {
            int piv = c;
            for (int r = c + 1; r < p; r++) {
                if (Math.abs(a[r][c]) > Math.abs(a[piv][c])) {
                    piv = r;
                }
            }
            double[] t = a[c];
            a[c] = a[piv];
            a[piv] = t;
            for (int r = c + 1; r < p; r++) {
                double f = a[r][c] / a[c][c];
                for (int j = c; j <= p; j++) {
                    a[r][j] -= f * a[c][j];
                }
            }
        }
        double[] xs = new double[p];
        for (int r = p - 1; r >= 0; r--) {
            double s = a[r][p];
            for (int j = r + 1; j < p; j++) {
                s -= a[r][j] * xs[j];
            }
            xs[r] = s / a[r][r];
        }
        return xs;
    }

    /** multistep_uni_p_bh_update: x ← predictor(x) from σ_k to σ_{k+1}. */
    private void predict(int p) {
        combine(x, coefficients(k, p, false), p, null);
    }

    /** multistep_uni_c_bh_update: corrects x (the sample at σ_k) with the new model output conv. */
    private void correct(double[] conv, int p) {
        combine(lastSample, coefficients(k - 1, p, true), p, conv);
    }

    /** The update's scalars: x_t = cx·base + cm·m0 + cres·Σ_i rho_i·(m_i − m0)/r_i (+ the corrector's own term). */
    private record Coefficients(double cx, double cm, double cres, double[] rks, double[] rhos) {
    }

    /**
     * The step from σ of evaluation {@code newest} to the next σ, with the λ ratios r_i of the {@code p − 1} older
     * outputs; the corrector solves for one more rho (its own model output's).
     */
    private Coefficients coefficients(int newest, int p, boolean corrector) {
        double s0 = plan.sigma(newest), st = plan.sigma(newest + 1);
        double at = alphaOf(st), a0 = alphaOf(s0);
        double sigT = st * at, sig0 = s0 * a0;
        double l0 = lambdaOf(s0);
        double h = lambdaOf(st) - l0;
        double[] rks = new double[p];
        for (int i = 1; i < p; i++) {
            rks[i - 1] = (lambdaOf(plan.sigma(newest - i)) - l0) / h;
        }
        rks[p - 1] = 1.0;
        double hh = cfg.predictX0 ? -h : h;
        double hPhi1 = Math.expm1(hh);
        double bh = cfg.solverType.equals("bh1") ? hh : Math.expm1(hh);
        double[] rhos;
        if (corrector) {
            rhos = p == 1 ? new double[] {0.5} : solve(rks, bVector(hh, p, bh), p);
        } else {
            rhos = p == 1 ? new double[0] : p == 2 ? new double[] {0.5} : solve(rks, bVector(hh, p, bh), p - 1);
        }
        if (cfg.predictX0) {
            return new Coefficients(sigT / sig0, -at * hPhi1, -at * bh, rks, rhos);
        }
        return new Coefficients(at / a0, -sigT * hPhi1, -sigT * bh, rks, rhos);
    }

    /** x ← the update from {@code base}; {@code conv} (the corrector's fresh model output) may be null. */
    private void combine(double[] base, Coefficients c, int p, double[] conv) {
        double[] m0 = outputs[order - 1];
        double[] cd = new double[p - 1];
        for (int i = 0; i < p - 1; i++) {
            cd[i] = c.cres() * c.rhos()[i] / c.rks()[i];
        }
        double ct = conv == null ? 0 : c.cres() * c.rhos()[p - 1];
        for (int e = 0; e < size; e++) {
            double mm = m0[e];
            double acc = c.cx() * base[e] + c.cm() * mm;
            if (conv != null) {
                acc += ct * (conv[e] - mm);
            }
            for (int i = 0; i < p - 1; i++) {
                acc += cd[i] * (outputs[order - 2 - i][e] - mm);
            }
            x[e] = acc;
        }
    }
}
