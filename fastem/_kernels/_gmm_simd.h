/* Chunk-level inner loops of the Gaussian-mixture kernel (_gaussian.pyx).
 *
 * Plain C so that the compiler sees restrict-qualified pointers and short,
 * branch-free loops it can vectorise at -O3 without -ffast-math. Every loop
 * that is vectorised runs over independent lanes (the component index k, or
 * the feature index of a row); no floating-point sum is reassociated, so the
 * results do not depend on the vector width or on the thread count.
 *
 * FE_HOT: "no-trapping-math" lets GCC if-convert the comparisons of the
 * clamped exp (it changes no result: it only drops the guarantee on FP
 * exception flags); with GCC on x86-64 Linux the functions are also cloned
 * for AVX-512 / AVX2 and the best clone is picked at load time (ifunc), since
 * the package is built for the baseline ISA.
 */
#ifndef FASTEM_GMM_SIMD_H
#define FASTEM_GMM_SIMD_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__) && (__GNUC__ >= 11)
#define FE_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", \
                                            "default"), optimize("no-trapping-math")))
#define FE_INLINE static inline __attribute__((always_inline, optimize("no-trapping-math")))
#elif defined(__GNUC__) && !defined(__clang__)
#define FE_HOT __attribute__((optimize("no-trapping-math")))
#define FE_INLINE static inline __attribute__((always_inline, optimize("no-trapping-math")))
#else
#define FE_HOT
#define FE_INLINE static inline
#endif

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
FE_INLINE double fe_exp_neg(double x)
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
     * (n + 1023) mod 2^12 in the exponent field: 2^n for n in [-1021, 0]. */
    bits = (bits + 1023u) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    double res = p * scale;
    return x < -708.0 ? 0.0 : res;
}

/* The chunk's log-densities are held component-major: lpT[k * nb + b] for
 * row b, so that every per-row operation below is a loop over rows with
 * independent vector lanes, while each row's own arithmetic (max, sum over
 * k) runs in the fixed order k = 0, 1, ..., K-1.
 *
 * fe_lse_cols: lpT (log w_k + log N(x_b | k)) becomes the responsibilities
 * in place; lse[b] = log sum_k exp(lpT[k, b]) with the row maximum factored
 * out (as scipy.special.logsumexp). m and s are nb-long scratch. */
FE_HOT static void fe_lse_cols(double *restrict lpT, ptrdiff_t nb, int K,
                               double *restrict m, double *restrict s,
                               double *restrict lse)
{
    for (ptrdiff_t b = 0; b < nb; ++b)
        m[b] = lpT[b];
    for (int k = 1; k < K; ++k) {
        const double *restrict r = lpT + (ptrdiff_t)k * nb;
        for (ptrdiff_t b = 0; b < nb; ++b)
            m[b] = r[b] > m[b] ? r[b] : m[b];
    }
    for (ptrdiff_t b = 0; b < nb; ++b)
        s[b] = 0.0;
    for (int k = 0; k < K; ++k) {
        double *restrict r = lpT + (ptrdiff_t)k * nb;
        for (ptrdiff_t b = 0; b < nb; ++b) {
            /* m is finite: at least one weight is positive */
            double e = fe_exp_neg(r[b] - m[b]);
            r[b] = e;
            s[b] += e;
        }
    }
    for (ptrdiff_t b = 0; b < nb; ++b)
        lse[b] = m[b] + log(s[b]);
    for (ptrdiff_t b = 0; b < nb; ++b)
        s[b] = 1.0 / s[b];
    for (int k = 0; k < K; ++k) {
        double *restrict r = lpT + (ptrdiff_t)k * nb;
        for (ptrdiff_t b = 0; b < nb; ++b)
            r[b] *= s[b];
    }
}

/* labels[b] = argmax_k lpT[k, b] (first maximum, as numpy.argmax). */
FE_HOT static void fe_argmax_cols(const double *restrict lpT, ptrdiff_t nb, int K,
                                  double *restrict m, long long *restrict labels)
{
    for (ptrdiff_t b = 0; b < nb; ++b) {
        m[b] = lpT[b];
        labels[b] = 0;
    }
    for (int k = 1; k < K; ++k) {
        const double *restrict r = lpT + (ptrdiff_t)k * nb;
        for (ptrdiff_t b = 0; b < nb; ++b) {
            int better = r[b] > m[b];
            m[b] = better ? r[b] : m[b];
            labels[b] = better ? k : labels[b];
        }
    }
}

/* Centring and transposition: xcT[i, b] = x[b, i] - c[i] (D x nb, in the
 * data's precision), in blocks of 32 rows so that the strided reads stay in
 * L1 and the writes are contiguous. */
#define FE_DEFINE_CENTER_T(NAME, T)                                          \
FE_HOT static void NAME(const T *restrict x, ptrdiff_t nb, int D,           \
                        const T *restrict c, T *restrict xcT)               \
{                                                                           \
    for (ptrdiff_t b0 = 0; b0 < nb; b0 += 32) {                             \
        const ptrdiff_t nblk = nb - b0 < 32 ? nb - b0 : 32;                 \
        const T *restrict xb = x + b0 * D;                                  \
        for (int i = 0; i < D; ++i) {                                       \
            T *restrict out = xcT + (ptrdiff_t)i * nb + b0;                 \
            const T ci = c[i];                                              \
            for (ptrdiff_t b = 0; b < nblk; ++b)                            \
                out[b] = xb[b * D + i] - ci;                                \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_CENTER_T(fe_center_T_d, double)
FE_DEFINE_CENTER_T(fe_center_T_f, float)

/* Quadratic features in float64, transposed (P x nb): FT = [1; xc; q(xc)]
 * with q = vech(xc xc^T) (pairs i <= j, i-major; kind 0), xc^2 (kind 2),
 * |xc|^2 (kind 3) or nothing (kind 1, or quad == 0). Every row is a
 * contiguous loop over the chunk's rows. */
#define FE_DEFINE_FEATURES_T(NAME, T)                                        \
FE_HOT static void NAME(const T *restrict xcT, ptrdiff_t nb, int D,         \
                        int kind, int quad, double *restrict FT)            \
{                                                                           \
    for (ptrdiff_t b = 0; b < nb; ++b) FT[b] = 1.0;                         \
    for (int i = 0; i < D; ++i) {                                           \
        const T *restrict xi = xcT + (ptrdiff_t)i * nb;                     \
        double *restrict f = FT + (ptrdiff_t)(1 + i) * nb;                  \
        for (ptrdiff_t b = 0; b < nb; ++b) f[b] = (double)xi[b];            \
    }                                                                       \
    if (!quad) return;                                                      \
    const double *restrict X1 = FT + nb;                                    \
    double *restrict q = FT + (ptrdiff_t)(1 + D) * nb;                      \
    if (kind == 0) {                                                        \
        for (int i = 0; i < D; ++i) {                                       \
            const double *restrict xi = X1 + (ptrdiff_t)i * nb;             \
            for (int j = i; j < D; ++j) {                                   \
                const double *restrict xj = X1 + (ptrdiff_t)j * nb;         \
                for (ptrdiff_t b = 0; b < nb; ++b) q[b] = xi[b] * xj[b];    \
                q += nb;                                                    \
            }                                                               \
        }                                                                   \
    } else if (kind == 2) {                                                 \
        for (int i = 0; i < D; ++i) {                                       \
            const double *restrict xi = X1 + (ptrdiff_t)i * nb;             \
            double *restrict qi = q + (ptrdiff_t)i * nb;                    \
            for (ptrdiff_t b = 0; b < nb; ++b) qi[b] = xi[b] * xi[b];       \
        }                                                                   \
    } else if (kind == 3) {                                                 \
        for (ptrdiff_t b = 0; b < nb; ++b) q[b] = 0.0;                      \
        for (int i = 0; i < D; ++i) {                                       \
            const double *restrict xi = X1 + (ptrdiff_t)i * nb;             \
            for (ptrdiff_t b = 0; b < nb; ++b) q[b] += xi[b] * xi[b];       \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_FEATURES_T(fe_features_T_d, double)
FE_DEFINE_FEATURES_T(fe_features_T_f, float)

/* Diag / spherical log-densities, computed directly (no expansion, so no
 * cancellation even in float32):
 *   diag:      q[k, b] = sum_d (xcT[d, b] - mu[k, d])^2 p2[k, d]
 *   spherical: q[k, b] = p2[k] sum_d (xcT[d, b] - mu[k, d])^2
 * with mu the shifted means mu_k - c and p2 the precisions (1 / variances);
 * lpT[k, b] = const_k - q[k, b] / 2. Rows are processed in blocks that stay
 * in L1 across the K components; sums over d run in order. */
#define FE_ROW_BLOCK 256
#define FE_DEFINE_LOGPROB_DIAG(NAME, T)                                      \
FE_HOT static void NAME(const T *restrict xcT, ptrdiff_t nb, int K, int D,  \
                        int spherical, const T *restrict mu,                \
                        const T *restrict p2, const double *restrict const_k, \
                        T *restrict acc, double *restrict lpT)              \
{                                                                           \
    for (ptrdiff_t b0 = 0; b0 < nb; b0 += FE_ROW_BLOCK) {                   \
        const ptrdiff_t nblk = nb - b0 < FE_ROW_BLOCK ? nb - b0 : FE_ROW_BLOCK; \
        for (int k = 0; k < K; ++k) {                                       \
            for (ptrdiff_t b = 0; b < nblk; ++b) acc[b] = 0;                \
            for (int d = 0; d < D; ++d) {                                   \
                const T *restrict x = xcT + (ptrdiff_t)d * nb + b0;         \
                const T m = mu[(ptrdiff_t)k * D + d];                       \
                if (spherical) {                                            \
                    for (ptrdiff_t b = 0; b < nblk; ++b) {                  \
                        T t = x[b] - m;                                     \
                        acc[b] += t * t;                                    \
                    }                                                       \
                } else {                                                    \
                    const T p = p2[(ptrdiff_t)k * D + d];                   \
                    for (ptrdiff_t b = 0; b < nblk; ++b) {                  \
                        T t = x[b] - m;                                     \
                        acc[b] += (t * t) * p;                              \
                    }                                                       \
                }                                                           \
            }                                                               \
            double *restrict out = lpT + (ptrdiff_t)k * nb + b0;            \
            const double ck = const_k[k];                                   \
            const double pk = spherical ? (double)p2[k] : 1.0;              \
            for (ptrdiff_t b = 0; b < nblk; ++b)                            \
                out[b] = ck - 0.5 * (pk * (double)acc[b]);                  \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_LOGPROB_DIAG(fe_logprob_diag_d, double)
FE_DEFINE_LOGPROB_DIAG(fe_logprob_diag_f, float)

/* Full / tied log-densities from the transposed GEMM output YT:
 *   full (W = K*D rows, d-major: row d*K + k of YT holds ((x_b - c)^T L_k)_d
 *         for all b):  q[k, b] = sum_d (YT[d*K + k, b] - crow[d*K + k])^2
 *   tied (W = D rows): q[k, b] = sum_d (YT[d, b] - crow[d*K + k])^2
 * with crow = (mu_k - c)^T L_k; lpT[k, b] = const_k - q[k, b] / 2. Each sum
 * runs over d in order (vectorised over rows b). acc: nb scratch. */
#define FE_DEFINE_LOGPROB_CHOL(NAME, T)                                      \
FE_HOT static void NAME(const T *restrict YT, ptrdiff_t nb, int K, int D,   \
                        int tied, const T *restrict crow,                   \
                        const double *restrict const_k,                     \
                        T *restrict acc, double *restrict lpT)              \
{                                                                           \
    for (int k = 0; k < K; ++k) {                                           \
        for (ptrdiff_t b = 0; b < nb; ++b) acc[b] = 0;                      \
        for (int d = 0; d < D; ++d) {                                       \
            const ptrdiff_t j = (ptrdiff_t)d * K + k;                       \
            const T *restrict y = YT + (tied ? (ptrdiff_t)d : j) * nb;      \
            const T c = crow[j];                                            \
            for (ptrdiff_t b = 0; b < nb; ++b) {                            \
                T t = y[b] - c;                                             \
                acc[b] += t * t;                                            \
            }                                                               \
        }                                                                   \
        double *restrict out = lpT + (ptrdiff_t)k * nb;                     \
        const double ck = const_k[k];                                       \
        for (ptrdiff_t b = 0; b < nb; ++b)                                  \
            out[b] = ck - 0.5 * (double)acc[b];                             \
    }                                                                       \
}
FE_DEFINE_LOGPROB_CHOL(fe_logprob_chol_d, double)
FE_DEFINE_LOGPROB_CHOL(fe_logprob_chol_f, float)

#endif
