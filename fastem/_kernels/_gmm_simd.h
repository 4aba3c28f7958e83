/* Per-row inner loops of the Gaussian-mixture kernels (_gaussian.pyx).
 *
 * Plain C so that the compiler sees restrict-qualified pointers and short,
 * branch-free loops that it can vectorise at -O3 without -ffast-math: every
 * loop below vectorises over the component index k (independent lanes), so
 * no floating-point sum is reassociated and results do not depend on the
 * vector width.
 */
#ifndef FASTEM_GMM_SIMD_H
#define FASTEM_GMM_SIMD_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for x <= 0, branch-free and vectorisable.
 *
 * Range reduction: x = n ln2 + r with n = round(x / ln2), |r| <= ln2/2,
 * so e^x = 2^n e^r. n is obtained with the "shifter" trick: adding
 * 1.5 * 2^52 to x/ln2 rounds it to an integer held in the low mantissa bits,
 * which also gives 2^n by moving (n + 1023) into the exponent field.
 * e^r is a degree-13 Taylor polynomial (truncation error < 2e-16 relative on
 * |r| <= 0.347) evaluated by Horner's rule; ln2 is split into a high and a
 * low part (Cody-Waite) so r is exact to about 1 ulp. Overall error: a few
 * ulp. Inputs below -708 (where e^x < 3e-308 would be subnormal) return 0:
 * such terms are below double rounding relative to the row maximum (which
 * contributes e^0 = 1). */
static inline double fe_exp_neg(double x)
{
    const double log2e = 1.4426950408889634074;
    const double ln2hi = 6.93147180369123816490e-01;
    const double ln2lo = 1.90821492927058770002e-10;
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    double xc = x < -708.0 ? -708.0 : x;
    double t = xc * log2e + shifter;
    double n = t - shifter;
    double r = (xc - n * ln2hi) - n * ln2lo;
    double p = 1.0 / 6227020800.0;           /* 1/13! */
    p = p * r + 1.0 / 479001600.0;           /* 1/12! */
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    /* low 52 bits of t are 2^51 + n; adding 1023 and shifting by 52 keeps
     * (n + 1023) mod 2^12 in the exponent field: 2^n for n in [-1022, 0]. */
    bits = (bits + 1023u) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    double res = p * scale;
    return x < -708.0 ? 0.0 : res;
}

/* One row of log-densities lp[0..K) (weighted by log w_k) becomes
 * responsibilities in place; returns log sum_k exp(lp[k]) (log-sum-exp with
 * the row maximum factored out, as scipy.special.logsumexp does). */
static inline double fe_lse_resp(double *restrict lp, int K)
{
    double m = lp[0];
    for (int k = 1; k < K; ++k)
        m = lp[k] > m ? lp[k] : m;
    if (!(m > -INFINITY)) {
        /* every component has zero density: cannot happen with finite
         * parameters; keep the row harmless */
        for (int k = 0; k < K; ++k) lp[k] = 1.0 / K;
        return m;
    }
    for (int k = 0; k < K; ++k)
        lp[k] = fe_exp_neg(lp[k] - m);
    double s = 0.0;
    for (int k = 0; k < K; ++k)
        s += lp[k];
    double inv = 1.0 / s;
    for (int k = 0; k < K; ++k)
        lp[k] *= inv;
    return m + log(s);
}

/* acc[k] = sum_d (y[d*K + k] - c[d*K + k])^2 : squared norms of
 * (x - mu_k)^T L_k for all k, with the stacked factors laid out d-major
 * (column d*K + k of the stacked operand is column d of L_k). */
#define FE_DEFINE_SQNORM(NAME, T)                                            \
static inline void NAME(const T *restrict y, const T *restrict c,           \
                        int K, int D, T *restrict acc)                      \
{                                                                           \
    for (int k = 0; k < K; ++k) acc[k] = 0;                                 \
    for (int d = 0; d < D; ++d) {                                           \
        const T *yd = y + (size_t)d * K;                                    \
        const T *cd = c + (size_t)d * K;                                    \
        for (int k = 0; k < K; ++k) {                                       \
            T t = yd[k] - cd[k];                                            \
            acc[k] += t * t;                                                \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_SQNORM(fe_sqnorm_full_d, double)
FE_DEFINE_SQNORM(fe_sqnorm_full_f, float)

/* Tied: acc[k] = sum_d (y[d] - c[d*K + k])^2 with y = x^T L (one row) and
 * c[d*K + k] = (mu_k^T L)_d. */
#define FE_DEFINE_SQNORM_TIED(NAME, T)                                       \
static inline void NAME(const T *restrict y, const T *restrict c,           \
                        int K, int D, T *restrict acc)                      \
{                                                                           \
    for (int k = 0; k < K; ++k) acc[k] = 0;                                 \
    for (int d = 0; d < D; ++d) {                                           \
        const T yd = y[d];                                                  \
        const T *cd = c + (size_t)d * K;                                    \
        for (int k = 0; k < K; ++k) {                                       \
            T t = yd - cd[k];                                               \
            acc[k] += t * t;                                                \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_SQNORM_TIED(fe_sqnorm_tied_d, double)
FE_DEFINE_SQNORM_TIED(fe_sqnorm_tied_f, float)

#endif
