/*
 * Numerically stable building blocks (twins of losskit.cpu.StableMath), in float64, plus the Java
 * semantics of max/min/signum (NaN propagates; CUDA's fmax would drop it).
 */
#ifndef LOSSKIT_STABLE_MATH_CUH
#define LOSSKIT_STABLE_MATH_CUH

#define LOSSKIT_LN2 0.6931471805599453
#define LOSSKIT_HALF_LOG_2PI 0.9189385332046727
#define LOSSKIT_TWO_PI 6.283185307179586

__device__ __forceinline__ bool lk_isnan(double x) { return x != x; }
/* x − x is 0 for finite x, NaN for ±∞ and NaN. */
__device__ __forceinline__ bool lk_isfinite(double x) { return x - x == 0.0; }

/* Java's Math.max / Math.min: NaN if either operand is NaN. */
__device__ __forceinline__ double jmax(double a, double b) { return a != a ? a : b != b ? b : (a >= b ? a : b); }
__device__ __forceinline__ double jmin(double a, double b) { return a != a ? a : b != b ? b : (a <= b ? a : b); }
/* Java's Math.signum: ±1, ±0 kept, NaN kept. */
__device__ __forceinline__ double jsignum(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x; }

/* log(1 + e^x) without overflow: max(x, 0) + log1p(e^{−|x|}). */
__device__ __forceinline__ double softplus(double x) { return jmax(x, 0.0) + log1p(exp(-fabs(x))); }

/* 1/(1 + e^{−x}) without overflow for large |x|. */
__device__ __forceinline__ double sigmoid(double x) {
    if (x >= 0) {
        return 1.0 / (1.0 + exp(-x));
    }
    const double e = exp(x);
    return e / (1.0 + e);
}

/* PyTorch's binary cross-entropy of a probability: logs clamped at −100 so 0·log 0 stays finite. */
__device__ __forceinline__ double bce_prob(double p, double t) {
    const double logP = jmax(log(p), -100.0);
    const double log1mP = jmax(log1p(-p), -100.0);
    return -(t * logP + (1.0 - t) * log1mP);
}

/* PyTorch's xlogy: x·log y, 0 where x = 0 (and y is not NaN). */
__device__ __forceinline__ double xlogy(double x, double y) { return x == 0 && y == y ? 0.0 : x * log(y); }

/*
 * Online logsumexp state (Liger's online softmax): running max m and Σ e^{x−m}; one read per element.
 * NaN anywhere makes the result NaN; m = +∞ makes it +∞ (as losskit.cpu.RowTerms.logSumExp).
 */
struct LseState {
    double m;
    double s;
    bool nan;
};

__device__ __forceinline__ void lse_add(LseState& st, double v) {
    if (v != v) {
        st.nan = true;
        return;
    }
    if (v > st.m) {
        st.s = st.s * exp(st.m - v) + 1.0;
        st.m = v;
    } else {
        st.s += exp(v - st.m);
    }
}

/* Merges two states; an empty side (m = −∞, s = 0) contributes nothing. */
__device__ __forceinline__ void lse_merge(LseState& st, double m2, double s2, bool nan2) {
    st.nan = st.nan || nan2;
    if (m2 == -INFINITY) {
        return;
    }
    if (st.m == -INFINITY) {
        st.m = m2;
        st.s = s2;
        return;
    }
    const double m = st.m > m2 ? st.m : m2;
    st.s = st.s * exp(st.m - m) + s2 * exp(m2 - m);
    st.m = m;
}

__device__ __forceinline__ double lse_value(const LseState& st) {
    if (st.nan) {
        return NAN;
    }
    return st.m == INFINITY ? st.m : st.m + log(st.s);
}

#endif
