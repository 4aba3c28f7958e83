/* Chunk-level inner loops of the Gaussian-mixture kernel (_gaussian.pyx).
 *
 * Plain C so that the compiler sees restrict-qualified pointers and short,
 * branch-free loops it can vectorise at -O3 without -ffast-math. Every loop
 * that is vectorised runs over independent lanes (the component index k, or
 * the feature index of a row); no floating-point sum is reassociated, so the
 * results do not depend on the vector width or on the thread count.
 *
 * The vector width is chosen per build, not here: the module is compiled
 * for the baseline ISA and for each SIMD level (setup.py,
 * fastem/_kernels/__init__.py); without floating-point contraction
 * (-ffp-contract=off) and with the fixed 64-byte generic vectors below, all
 * builds give the same results bit for bit.
 *
 * The kernels written with GCC/clang generic vectors (the fused E-steps and
 * the statistics) each have a scalar reference in fe_gmm_ref.h, which does
 * the same operations lane by lane in the same order; compilers without
 * generic vectors (MSVC), and FASTEM_PORTABLE_C=1 builds, use the
 * references (see fe_platform.h). The other kernels are plain C loops that
 * the compiler vectorises by itself, the same source on both paths.
 */
#ifndef FE_GMM_H
#define FE_GMM_H
#include "csrc/fe_platform.h"

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
FE_INLINE double fe_exp_neg_f64(double x)
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


/* expf(x) for x <= 0, the float32 twin of fe_exp_neg_f64: n = round(x / ln2)
 * with the shifter 1.5 * 2^23, r = x - n ln2 (Cody-Waite split of ln2 whose
 * high part has 9 significant bits, so n * ln2hi is exact for |n| <= 2^15),
 * e^r by its degree-7 Taylor polynomial (truncation error < 6e-9 relative
 * on |r| <= 0.347, below float32 rounding), and 2^n from the low mantissa
 * bits of the shifted value. Inputs below -87 (e^x < 1.7e-38, where float32
 * turns subnormal) return 0: negligible against the row maximum's e^0. */
FE_INLINE float fe_exp_neg_f32(float x)
{
    const float log2e = 1.44269504088896341f;
    const float ln2hi = 0.693359375f;
    const float ln2lo = -2.12194440e-4f;
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    float xc = x < -87.0f ? -87.0f : x;
    float t = xc * log2e + shifter;
    float n = t - shifter;
    float r = (xc - n * ln2hi) - n * ln2lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    /* low 23 bits of t are 2^22 + n: (n + 127) mod 2^9 lands in the sign and
     * exponent fields, i.e. 2^n for n in [-126, 0] */
    bits = (bits + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float res = p * scale;
    return x < -87.0f ? 0.0f : res;
}

/* log(s) for 1 <= s < 2^1023 (a row's sum of exponentials, whose largest
 * term is e^0 = 1), branch-free and vectorisable: s = 2^e f with f in
 * [sqrt(1/2), sqrt(2)) and log f = 2 atanh(u) = 2 (u + u^3/3 + u^5/5 + ...),
 * u = (f - 1) / (f + 1), |u| <= 0.1716: the series to u^21 (float32: u^11)
 * is below the format's rounding; ln 2 split high/low as in fe_exp_neg_f64. */
FE_INLINE double fe_log_ge1_f64(double s)
{
    uint64_t bits;
    memcpy(&bits, &s, sizeof bits);
    double e = (double)(int64_t)((bits >> 52) - 1023u);
    uint64_t mb = (bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    double f;
    memcpy(&f, &mb, sizeof f);
    const double big = f > 1.4142135623730951 ? 1.0 : 0.0;
    f *= 1.0 - 0.5 * big;
    e += big;
    const double u = (f - 1.0) / (f + 1.0), u2 = u * u;
    double p = 1.0 / 21.0;
    p = p * u2 + 1.0 / 19.0;
    p = p * u2 + 1.0 / 17.0;
    p = p * u2 + 1.0 / 15.0;
    p = p * u2 + 1.0 / 13.0;
    p = p * u2 + 1.0 / 11.0;
    p = p * u2 + 1.0 / 9.0;
    p = p * u2 + 1.0 / 7.0;
    p = p * u2 + 1.0 / 5.0;
    p = p * u2 + 1.0 / 3.0;
    p = p * u2 + 1.0;
    return e * 6.93147180369123816490e-01 + (2.0 * u * p + e * 1.90821492927058770002e-10);
}
FE_INLINE float fe_log_ge1_f32(float s)
{
    uint32_t bits;
    memcpy(&bits, &s, sizeof bits);
    float e = (float)(int32_t)((bits >> 23) - 127u);
    uint32_t mb = (bits & 0x007FFFFFu) | 0x3F800000u;
    float f;
    memcpy(&f, &mb, sizeof f);
    const float big = f > 1.41421356f ? 1.0f : 0.0f;
    f *= 1.0f - 0.5f * big;
    e += big;
    const float u = (f - 1.0f) / (f + 1.0f), u2 = u * u;
    float p = 1.0f / 11.0f;
    p = p * u2 + 1.0f / 9.0f;
    p = p * u2 + 1.0f / 7.0f;
    p = p * u2 + 1.0f / 5.0f;
    p = p * u2 + 1.0f / 3.0f;
    p = p * u2 + 1.0f;
    return e * 0.693359375f + (2.0f * u * p + e * -2.12194440e-4f);
}

/* sum_b w_b v_b (w: NULL for unit weights) in float64, in 8 lanes (lane l
 * takes rows b = l mod 8 in order), lanes added in order, then the tail. */
#define FE_DEFINE_WSUM(NAME, T)                                              \
FE_HOT static double NAME(const T *restrict v, const T *restrict w, ptrdiff_t nb) \
{                                                                           \
    double lanes[8] = {0};                                                  \
    ptrdiff_t b = 0;                                                        \
    if (w == NULL) {                                                        \
        for (; b + 8 <= nb; b += 8)                                         \
            for (int l = 0; l < 8; ++l) lanes[l] += (double)v[b + l];       \
    } else {                                                                \
        for (; b + 8 <= nb; b += 8)                                         \
            for (int l = 0; l < 8; ++l)                                     \
                lanes[l] += (double)w[b + l] * (double)v[b + l];            \
    }                                                                       \
    double s = 0.0;                                                         \
    for (int l = 0; l < 8; ++l) s += lanes[l];                              \
    for (; b < nb; ++b) s += (w == NULL ? 1.0 : (double)w[b]) * (double)v[b]; \
    return s;                                                               \
}
FE_DEFINE_WSUM(fe_wsum_f64, double)
FE_DEFINE_WSUM(fe_wsum_f32, float)

/* The chunk's log-densities are held component-major: lpT[k * nb + b] for
 * row b, so that every per-row operation below is a loop over rows with
 * independent vector lanes, while each row's own arithmetic (max, sum over
 * k) runs in the fixed order k = 0, 1, ..., K-1.
 */
#define FE_DEFINE_LSE_COLS(NAME, T, EXP, LOG)                               \
FE_HOT static void NAME(T *restrict lpT, ptrdiff_t nb, int K,               \
                        T *restrict m, T *restrict s, T *restrict lse)      \
{                                                                           \
    for (ptrdiff_t b = 0; b < nb; ++b)                                      \
        m[b] = lpT[b];                                                      \
    for (int k = 1; k < K; ++k) {                                           \
        const T *restrict r = lpT + (ptrdiff_t)k * nb;                      \
        for (ptrdiff_t b = 0; b < nb; ++b)                                  \
            m[b] = r[b] > m[b] ? r[b] : m[b];                               \
    }                                                                       \
    for (ptrdiff_t b = 0; b < nb; ++b)                                      \
        s[b] = 0;                                                           \
    for (int k = 0; k < K; ++k) {                                           \
        T *restrict r = lpT + (ptrdiff_t)k * nb;                            \
        for (ptrdiff_t b = 0; b < nb; ++b) {                                \
            /* m is finite: at least one weight is positive */              \
            T e = EXP(r[b] - m[b]);                                         \
            r[b] = e;                                                       \
            s[b] += e;                                                      \
        }                                                                   \
    }                                                                       \
    for (ptrdiff_t b = 0; b < nb; ++b)                                      \
        lse[b] = m[b] + LOG(s[b]);                                          \
    for (ptrdiff_t b = 0; b < nb; ++b)                                      \
        s[b] = (T)1 / s[b];                                                 \
    for (int k = 0; k < K; ++k) {                                           \
        T *restrict r = lpT + (ptrdiff_t)k * nb;                            \
        for (ptrdiff_t b = 0; b < nb; ++b)                                  \
            r[b] *= s[b];                                                   \
    }                                                                       \
}
/* fe_lse_cols_f64: lpT (log w_k + log N(x_b | k)) becomes the responsibilities
 * in place; lse[b] = log sum_k exp(lpT[k, b]) with the row maximum factored
 * out (as scipy.special.logsumexp). m and s are nb-long scratch. float32
 * data get a float32 log-sum-exp (twice the SIMD lanes; the result is then
 * as accurate as the float32 log-densities it starts from). */
FE_DEFINE_LSE_COLS(fe_lse_cols_f64, double, fe_exp_neg_f64, fe_log_ge1_f64)
FE_DEFINE_LSE_COLS(fe_lse_cols_f32, float, fe_exp_neg_f32, fe_log_ge1_f32)

/* labels[b] = argmax_k lpT[k, b] (first maximum, as numpy.argmax). */
#define FE_DEFINE_ARGMAX_COLS(NAME, T)                                       \
FE_HOT static void NAME(const T *restrict lpT, ptrdiff_t nb, int K,         \
                        T *restrict m, long long *restrict labels)          \
{                                                                           \
    for (ptrdiff_t b = 0; b < nb; ++b) {                                    \
        m[b] = lpT[b];                                                      \
        labels[b] = 0;                                                      \
    }                                                                       \
    for (int k = 1; k < K; ++k) {                                           \
        const T *restrict r = lpT + (ptrdiff_t)k * nb;                      \
        for (ptrdiff_t b = 0; b < nb; ++b) {                                \
            int better = r[b] > m[b];                                       \
            m[b] = better ? r[b] : m[b];                                    \
            labels[b] = better ? k : labels[b];                             \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_ARGMAX_COLS(fe_argmax_cols_f64, double)
FE_DEFINE_ARGMAX_COLS(fe_argmax_cols_f32, float)

/* Centring and transposition: xcT[i, b] = x[b, i] - c[i] (D x nb, in the
 * data's precision), in blocks of 32 rows so that the strided reads stay in
 * L1 and the writes are contiguous. c NULL: the plain transpose (x - 0 is x
 * exactly, signed zeros and NaN included). The reference of fe_center_T_*
 * (below, 4 x 4 tiles), which computes the same differences. */
#define FE_DEFINE_CENTER_T(NAME, T)                                          \
FE_HOT static void NAME(const T *restrict x, ptrdiff_t nb, int D,           \
                        const T *restrict c, T *restrict xcT)               \
{                                                                           \
    for (ptrdiff_t b0 = 0; b0 < nb; b0 += 32) {                             \
        const ptrdiff_t nblk = nb - b0 < 32 ? nb - b0 : 32;                 \
        const T *restrict xb = x + b0 * D;                                  \
        for (int i = 0; i < D; ++i) {                                       \
            T *restrict out = xcT + (ptrdiff_t)i * nb + b0;                 \
            const T ci = c != NULL ? c[i] : (T)0;                           \
            for (ptrdiff_t b = 0; b < nblk; ++b)                            \
                out[b] = xb[b * D + i] - ci;                                \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_CENTER_T(fe_center_T_ref_f64, double)
FE_DEFINE_CENTER_T(fe_center_T_ref_f32, float)

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
FE_DEFINE_FEATURES_T(fe_features_T_f64, double)
FE_DEFINE_FEATURES_T(fe_features_T_f32, float)

/* Diag / spherical log-densities, computed directly (no expansion, so no
 * cancellation even in float32). The reference, and the kernel of builds
 * without generic vectors; fe_logprob_diag (below) computes the same in
 * registers:
 *   diag:      q[k, b] = sum_d (xcT[d, b] - mu[k, d])^2 p2[k, d]
 *   spherical: q[k, b] = p2[k] sum_d (xcT[d, b] - mu[k, d])^2
 * with mu the shifted means mu_k - c and p2 the precisions (1 / variances);
 * lpT[k, b] = const_k - q[k, b] / 2, in the data's precision. Rows are processed in blocks that stay
 * in L1 across the K components; sums over d run in order. */
#define FE_ROW_BLOCK 256
#define FE_DEFINE_LOGPROB_DIAG(NAME, T)                                      \
FE_HOT static void NAME(const T *restrict xcT, ptrdiff_t nb, int K, int D,  \
                        int spherical, const T *restrict mu,                \
                        const T *restrict p2, const double *restrict const_k, \
                        T *restrict acc, T *restrict lpT)                   \
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
            T *restrict out = lpT + (ptrdiff_t)k * nb + b0;                 \
            const T ck = (T)const_k[k];                                     \
            const T pk = spherical ? p2[k] : (T)1;                          \
            for (ptrdiff_t b = 0; b < nblk; ++b)                            \
                out[b] = ck - (T)0.5 * (pk * acc[b]);                       \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_LOGPROB_DIAG(fe_logprob_diag_ref_f64, double)
FE_DEFINE_LOGPROB_DIAG(fe_logprob_diag_ref_f32, float)

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
                        T *restrict acc, T *restrict lpT)                   \
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
        T *restrict out = lpT + (ptrdiff_t)k * nb;                          \
        const T ck = (T)const_k[k];                                         \
        for (ptrdiff_t b = 0; b < nb; ++b)                                  \
            out[b] = ck - (T)0.5 * acc[b];                                  \
    }                                                                       \
}
FE_DEFINE_LOGPROB_CHOL(fe_logprob_chol_f64, double)
FE_DEFINE_LOGPROB_CHOL(fe_logprob_chol_f32, float)

/* ---------------------------------------------------------------------------
 * Sufficient statistics centred on each component's own mean.
 *
 * For component k with reference m_k (its current mean, in the data's
 * precision) and weights g_b = w_b gamma_bk of the chunk's rows, with
 * z_b = x_b - m_k:
 *     N_k = sum_b g_b,   S1_k = sum_b g_b z_b,   S2_k = sum_b g_b z_b z_b^T
 * (full: the upper triangle, packed row by row as [1, z, vech(z z^T)]; diag:
 * the squares z_bd^2; spherical: their sum over d). The M-step then needs no
 * large cancelling terms: mean_k = m_k + S1_k / N_k and the scatter about it
 * is S2_k - S1_k S1_k^T / N_k, which stays accurate in float32 whatever the
 * distance of the component from the origin or from the data mean.
 *
 * Vectorisation runs across features: a chunk is copied to rows padded to
 * Dp (a multiple of the vector length) and each row z_b is one or a few
 * vectors. S2 is a sum of rank-1 updates g_b z_b z_b^T; a block of IB = 8
 * rows i of S2 is held in 8 vector accumulators (columns j in the lanes) and
 * updated with acc_i += (g_b z_bi) * z_b[j-vector], a broadcast multiply-add
 * per accumulator per row, so no horizontal sums are needed inside the loop.
 * Sums over rows run in row order: float32 data in float32 over
 * sub-blocks of 64 rows, whose partial sums go to float64 accumulators
 * (float64 data: float64 throughout); the chunk's totals are added to the
 * float64 slot. Vectors are GCC/Clang generic vectors of 64 bytes; each
 * build lowers them to its own ISA (the lanes, and so the results, are the
 * same in all).
 * ------------------------------------------------------------------------- */

/* Padded copies for the statistics kernels: xp (nb x Dp) = the chunk's rows
 * and mp (K x Dp) = the references, both zero beyond column D (padding
 * lanes then contribute exact zeros). */
#define FE_DEFINE_PAD_ROWS(NAME, T)                                          \
FE_HOT static void NAME(const T *restrict x, ptrdiff_t n, int D, int Dp,    \
                        T *restrict xp)                                     \
{                                                                           \
    for (ptrdiff_t b = 0; b < n; ++b) {                                     \
        T *restrict o = xp + b * Dp;                                        \
        const T *restrict r = x + b * D;                                    \
        for (int d = 0; d < D; ++d) o[d] = r[d];                            \
        for (int d = D; d < Dp; ++d) o[d] = 0;                              \
    }                                                                       \
}
FE_DEFINE_PAD_ROWS(fe_pad_rows_f32, float)
FE_DEFINE_PAD_ROWS(fe_pad_rows_f64, double)

/* sum_b g[b] in float64 in a fixed order: lane-wise over groups of 8 rows
 * (vectorised conversion and adds), lanes in order, then the tail. */
#define FE_DEFINE_SUM(NAME, T)                                               \
FE_INLINE double NAME(const T *restrict g, ptrdiff_t nb)                    \
{                                                                           \
    double lanes[8] = {0};                                                  \
    ptrdiff_t b = 0;                                                        \
    for (; b + 8 <= nb; b += 8)                                             \
        for (int l = 0; l < 8; ++l) lanes[l] += (double)g[b + l];           \
    double s = 0.0;                                                         \
    for (int l = 0; l < 8; ++l) s += lanes[l];                              \
    for (; b < nb; ++b) s += (double)g[b];                                  \
    return s;                                                               \
}
FE_DEFINE_SUM(fe_sum_f32, float)
FE_DEFINE_SUM(fe_sum_f64, double)

/* Rows summed in the data's precision before a partial sum is added to its
 * float64 lane accumulator: float32 partial sums of at most 64 terms keep
 * the statistics within ~1e-6 relative of float64 sums (float64 data: the
 * whole chunk). */
#define FE_SUBBLOCK(T) (sizeof(T) == 4 ? 64 : (1 << 30))

/* Scratch of fe_stats_tied_f32 (see there), in doubles. */
#define FE_TIED_RB 64
static inline ptrdiff_t fe_stats_tied_work(ptrdiff_t K, ptrdiff_t D)
{
    return K * (1 + D) * 8 + (K + (1 + D) + 1) * FE_TIED_RB;
}

/* Padded width DD of the fused E-step for D features (0: D > 16, use the
 * GEMM path). */
static inline int fe_estep_chol_width(int D)
{
    return D <= 4 ? 4 : D <= 8 ? 8 : D <= 16 ? 16 : 0;
}

/* Generic vectors of FE_VBYTES bytes: 16 float or 8 double lanes. */
#define FE_VBYTES 64

#if FE_VECTOR_EXT
typedef float fe_vf __attribute__((vector_size(FE_VBYTES)));
typedef double fe_vd __attribute__((vector_size(FE_VBYTES)));

#define FE_DEFINE_VEC_IO(T, VT, SUFFIX)                                      \
FE_INLINE VT fe_vload_##SUFFIX(const T *p) { VT v; memcpy(&v, p, sizeof v); return v; } \
FE_INLINE void fe_vstore_##SUFFIX(T *p, VT v) { memcpy(p, &v, sizeof v); }
FE_DEFINE_VEC_IO(float, fe_vf, f32)
FE_DEFINE_VEC_IO(double, fe_vd, f64)

/* Native-width vectors for the kernels whose lanes are independent (every
 * lane is its own row or its own feature, and no sum runs across lanes):
 * their results do not depend on the width, and a width the registers hold
 * whole avoids spilling 64-byte vectors on AVX2 and SSE2. */
#if defined(__AVX512F__)
#define FE_NBYTES 64
#elif defined(__AVX__)
#define FE_NBYTES 32
#else
#define FE_NBYTES 16
#endif
typedef float fe_nf __attribute__((vector_size(FE_NBYTES)));
typedef double fe_nd __attribute__((vector_size(FE_NBYTES)));
FE_DEFINE_VEC_IO(float, fe_nf, n32)
FE_DEFINE_VEC_IO(double, fe_nd, n64)

/* fe_center_T_ref in 4 x 4 tiles: four rows' runs of four columns are
 * loaded as four vectors, transposed by two rounds of shuffles (pairs of
 * rows interleaved, then pairs of pairs) and stored as four runs of four
 * rows of the output, each minus its column's c; the element-wise
 * differences are those of the reference, the scalar loop takes the rows and
 * columns past the last whole tile. Per tile 4 loads, 8 shuffles, 4
 * subtractions and 4 stores instead of 16 strided scalar loads. */
#define FE_DEFINE_CENTER_T_TILES(NAME, T, V4, SUFFIX)                        \
FE_DEFINE_VEC_IO(T, V4, SUFFIX)                                             \
FE_HOT static void NAME(const T *restrict x, ptrdiff_t nb, int D,           \
                        const T *restrict c, T *restrict xcT)               \
{                                                                           \
    const int D4 = D - D % 4;                                               \
    for (ptrdiff_t b0 = 0; b0 < nb; b0 += 32) {                             \
        const ptrdiff_t nblk = nb - b0 < 32 ? nb - b0 : 32;                 \
        const ptrdiff_t nq = nblk - nblk % 4;                               \
        const T *restrict xb = x + b0 * D;                                  \
        for (int i = 0; i < D; ++i) {                                       \
            const T ci = c != NULL ? c[i] : (T)0;                           \
            T *restrict out = xcT + (ptrdiff_t)i * nb + b0;                 \
            for (ptrdiff_t b = i < D4 ? nq : 0; b < nblk; ++b)              \
                out[b] = xb[b * D + i] - ci;                                \
        }                                                                   \
        for (int i = 0; i < D4; i += 4) {                                   \
            const T c0 = c != NULL ? c[i] : (T)0;                           \
            const T c1 = c != NULL ? c[i + 1] : (T)0;                       \
            const T c2 = c != NULL ? c[i + 2] : (T)0;                       \
            const T c3 = c != NULL ? c[i + 3] : (T)0;                       \
            T *restrict out = xcT + (ptrdiff_t)i * nb + b0;                 \
            for (ptrdiff_t b = 0; b < nq; b += 4) {                         \
                const T *restrict xr = xb + b * D + i;                      \
                const V4 r0 = fe_vload_##SUFFIX(xr);                         \
                const V4 r1 = fe_vload_##SUFFIX(xr + D);                     \
                const V4 r2 = fe_vload_##SUFFIX(xr + 2 * D);                 \
                const V4 r3 = fe_vload_##SUFFIX(xr + 3 * D);                 \
                const V4 a0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5);  \
                const V4 a1 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);  \
                const V4 a2 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5);  \
                const V4 a3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);  \
                fe_vstore_##SUFFIX(out + b,                                  \
                                   __builtin_shufflevector(a0, a2, 0, 1, 4, 5) - c0); \
                fe_vstore_##SUFFIX(out + nb + b,                             \
                                   __builtin_shufflevector(a0, a2, 2, 3, 6, 7) - c1); \
                fe_vstore_##SUFFIX(out + 2 * nb + b,                         \
                                   __builtin_shufflevector(a1, a3, 0, 1, 4, 5) - c2); \
                fe_vstore_##SUFFIX(out + 3 * nb + b,                         \
                                   __builtin_shufflevector(a1, a3, 2, 3, 6, 7) - c3); \
            }                                                               \
        }                                                                   \
    }                                                                       \
}
/* 4-lane vectors: the tiles here, the row lanes of fe_stats_diag_T_f64 */
typedef double fe_d4 __attribute__((vector_size(32)));
typedef float fe_f4 __attribute__((vector_size(16)));
FE_DEFINE_CENTER_T_TILES(fe_center_T_f64, double, fe_d4, d4)
FE_DEFINE_CENTER_T_TILES(fe_center_T_f32, float, fe_f4, f4)

/* Full covariance: slot[k] += [N_k, S1_k, vech(S2_k)] (P = 1 + D + D(D+1)/2).
 * xp: padded chunk rows (nb x Dp), mp: padded references (K x Dp), gT:
 * weights (K x nb), Z and GZ: nb x Dp scratch each. */
#define FE_DEFINE_STATS_FULL(NAME, T, VT, SUFFIX, SUM)                       \
FE_HOT static void NAME(const T *restrict xp, ptrdiff_t nb, int D, int Dp,  \
                        int K, const T *restrict mp, const T *restrict gT,  \
                        T *restrict Z, T *restrict GZ, double *restrict slot, \
                        ptrdiff_t P)                                        \
{                                                                           \
    enum { VL = sizeof(VT) / sizeof(T), IB = 8 };                            \
    const int NV = Dp / VL;                                                 \
    const ptrdiff_t SB = FE_SUBBLOCK(T);                                    \
    T part[IB][VL];                                                         \
    double dacc[IB][VL];                                                    \
    for (int k = 0; k < K; ++k) {                                           \
        const T *restrict g = gT + (ptrdiff_t)k * nb;                       \
        const T *restrict m = mp + (ptrdiff_t)k * Dp;                       \
        double *restrict out = slot + (ptrdiff_t)k * P;                     \
        /* z_b = x_b - m_k and g_b z_b */                                   \
        for (ptrdiff_t b = 0; b < nb; ++b) {                                \
            for (int v = 0; v < NV; ++v) {                                  \
                VT z = fe_vload_##SUFFIX(xp + b * Dp + v * VL)               \
                       - fe_vload_##SUFFIX(m + v * VL);                      \
                fe_vstore_##SUFFIX(Z + b * Dp + v * VL, z);                  \
                fe_vstore_##SUFFIX(GZ + b * Dp + v * VL, z * g[b]);          \
            }                                                               \
        }                                                                   \
        out[0] += SUM(g, nb);                                               \
        for (int v = 0; v < NV; ++v) {                                      \
            for (int l = 0; l < VL; ++l) dacc[0][l] = 0.0;                  \
            for (ptrdiff_t b0 = 0; b0 < nb; b0 += SB) {                     \
                const ptrdiff_t b1 = b0 + SB < nb ? b0 + SB : nb;           \
                VT acc = {0};                                               \
                for (ptrdiff_t b = b0; b < b1; ++b)                         \
                    acc += fe_vload_##SUFFIX(GZ + b * Dp + v * VL);          \
                fe_vstore_##SUFFIX(part[0], acc);                            \
                for (int l = 0; l < VL; ++l) dacc[0][l] += (double)part[0][l]; \
            }                                                               \
            for (int l = 0; l < VL && v * VL + l < D; ++l)                  \
                out[1 + v * VL + l] += dacc[0][l];                          \
        }                                                                   \
        /* S2, blocks of IB rows i against one vector of columns j; blocks  \
         * entirely below the diagonal (all j < i) are skipped */           \
        for (int v = 0; v < NV; ++v) {                                      \
            const int jend = (v + 1) * VL < D ? (v + 1) * VL : D;           \
            for (int i0 = 0; i0 < jend; i0 += IB) {                         \
                for (int ii = 0; ii < IB; ++ii)                             \
                    for (int l = 0; l < VL; ++l) dacc[ii][l] = 0.0;         \
                for (ptrdiff_t b0 = 0; b0 < nb; b0 += SB) {                 \
                    const ptrdiff_t b1 = b0 + SB < nb ? b0 + SB : nb;       \
                    VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};              \
                    VT a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};              \
                    for (ptrdiff_t b = b0; b < b1; ++b) {                   \
                        const VT zj = fe_vload_##SUFFIX(Z + b * Dp + v * VL); \
                        const T *restrict gz = GZ + b * Dp + i0;            \
                        a0 += gz[0] * zj; a1 += gz[1] * zj;                 \
                        a2 += gz[2] * zj; a3 += gz[3] * zj;                 \
                        a4 += gz[4] * zj; a5 += gz[5] * zj;                 \
                        a6 += gz[6] * zj; a7 += gz[7] * zj;                 \
                    }                                                       \
                    fe_vstore_##SUFFIX(part[0], a0); fe_vstore_##SUFFIX(part[1], a1); \
                    fe_vstore_##SUFFIX(part[2], a2); fe_vstore_##SUFFIX(part[3], a3); \
                    fe_vstore_##SUFFIX(part[4], a4); fe_vstore_##SUFFIX(part[5], a5); \
                    fe_vstore_##SUFFIX(part[6], a6); fe_vstore_##SUFFIX(part[7], a7); \
                    for (int ii = 0; ii < IB; ++ii)                         \
                        for (int l = 0; l < VL; ++l)                        \
                            dacc[ii][l] += (double)part[ii][l];             \
                }                                                           \
                for (int ii = 0; ii < IB && i0 + ii < D; ++ii) {            \
                    const int i = i0 + ii;                                  \
                    /* packed upper row i starts after rows 0..i-1 */       \
                    double *restrict row = out + 1 + D                      \
                        + (ptrdiff_t)i * D - (ptrdiff_t)i * (i - 1) / 2 - i; \
                    for (int l = 0; l < VL; ++l) {                          \
                        const int j = v * VL + l;                           \
                        if (j >= i && j < D) row[j] += dacc[ii][l];         \
                    }                                                       \
                }                                                           \
            }                                                               \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_STATS_FULL(fe_stats_full_f32, float, fe_nf, n32, fe_sum_f32)
FE_DEFINE_STATS_FULL(fe_stats_full_f64, double, fe_nd, n64, fe_sum_f64)

/* Whether _gaussian takes fe_stats_full16_f32 for float32 rows of D <= 16:
 * only where a 16-float vector is one register (AVX-512). With 256-bit
 * registers its 24 vector accumulators spill: measured on AVX2 (Zen 3, K = 16,
 * D = 16, 2048 rows) 55 ns per row and component against 14.5 ns for
 * fe_stats_full_f32, which gives the same sums (bit for bit). */
#if defined(__AVX512F__)
#define FE_STATS_FULL16 1
#else
#define FE_STATS_FULL16 0
#endif

/* The full kernel when a row is one vector (float32, D <= 16): per
 * sub-block of rows, g_b z_b is formed and stored (and summed into S1),
 * then z_b is formed again in registers and the stored g_b z_b broadcast
 * element by element against it; rows i < 8 of S2 take full 16-lane
 * updates, rows i >= 8 only need columns j >= 8 and take half-vector
 * (8-lane) updates: 12 full-vector multiply-adds' worth of work per row and
 * component instead of 16. */
typedef float fe_vf8 __attribute__((vector_size(32)));
#if defined(__GNUC__)
#define FE_MEMORY_BARRIER(p) __asm__ __volatile__("" : : "r"(p) : "memory")
#else
#define FE_MEMORY_BARRIER(p) ((void)(p))
#endif
FE_HOT static void fe_stats_full16_f32(const float *restrict xp, ptrdiff_t nb, int D,
                                     int K, const float *restrict mp,
                                     const float *restrict gT, float *restrict GZ,
                                     double *restrict slot, ptrdiff_t P)
{
    enum { VL = 16, HL = 8 };
    const ptrdiff_t SB = FE_SUBBLOCK(float);
    float part[HL][VL], hpart[HL][HL], p1[VL];
    double dacc[HL][VL], dhal[HL][HL], d1[VL];
    for (int k = 0; k < K; ++k) {
        const float *restrict g = gT + (ptrdiff_t)k * nb;
        const fe_vf m = fe_vload_f32(mp + (ptrdiff_t)k * VL);
        double *restrict out = slot + (ptrdiff_t)k * P;
        out[0] += fe_sum_f32(g, nb);
        for (int l = 0; l < VL; ++l) d1[l] = 0.0;
        for (int ii = 0; ii < HL; ++ii) {
            for (int l = 0; l < VL; ++l) dacc[ii][l] = 0.0;
            for (int l = 0; l < HL; ++l) dhal[ii][l] = 0.0;
        }
        for (ptrdiff_t b0 = 0; b0 < nb; b0 += SB) {
            const ptrdiff_t b1 = b0 + SB < nb ? b0 + SB : nb;
            fe_vf s1 = {0}, a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            fe_vf a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
            fe_vf8 h0 = {0}, h1 = {0}, h2 = {0}, h3 = {0};
            fe_vf8 h4 = {0}, h5 = {0}, h6 = {0}, h7 = {0};
            /* g z of the sub-block's rows first, so that the multiply-adds
             * below read them back long after they were stored */
            for (ptrdiff_t b = b0; b < b1; ++b) {
                const fe_vf gz = (fe_vload_f32(xp + b * VL) - m) * g[b];
                fe_vstore_f32(GZ + b * VL, gz);
                s1 += gz;
            }
            /* read g z back from memory: each element then feeds a
             * multiply-add as an embedded broadcast (a load) instead of the
             * register permutes a compiler would otherwise build */
            FE_MEMORY_BARRIER(GZ);
            for (ptrdiff_t b = b0; b < b1; ++b) {
                const fe_vf z = fe_vload_f32(xp + b * VL) - m;
                const float *restrict gzb = GZ + b * VL;
                a0 += gzb[0] * z; a1 += gzb[1] * z; a2 += gzb[2] * z; a3 += gzb[3] * z;
                a4 += gzb[4] * z; a5 += gzb[5] * z; a6 += gzb[6] * z; a7 += gzb[7] * z;
                fe_vf8 zh;
                memcpy(&zh, (const char *)&z + sizeof zh, sizeof zh);
                h0 += gzb[8] * zh; h1 += gzb[9] * zh; h2 += gzb[10] * zh; h3 += gzb[11] * zh;
                h4 += gzb[12] * zh; h5 += gzb[13] * zh; h6 += gzb[14] * zh; h7 += gzb[15] * zh;
            }
            fe_vstore_f32(p1, s1);
            fe_vstore_f32(part[0], a0); fe_vstore_f32(part[1], a1);
            fe_vstore_f32(part[2], a2); fe_vstore_f32(part[3], a3);
            fe_vstore_f32(part[4], a4); fe_vstore_f32(part[5], a5);
            fe_vstore_f32(part[6], a6); fe_vstore_f32(part[7], a7);
            memcpy(hpart[0], &h0, sizeof h0); memcpy(hpart[1], &h1, sizeof h1);
            memcpy(hpart[2], &h2, sizeof h2); memcpy(hpart[3], &h3, sizeof h3);
            memcpy(hpart[4], &h4, sizeof h4); memcpy(hpart[5], &h5, sizeof h5);
            memcpy(hpart[6], &h6, sizeof h6); memcpy(hpart[7], &h7, sizeof h7);
            for (int l = 0; l < VL; ++l) d1[l] += (double)p1[l];
            for (int ii = 0; ii < HL; ++ii) {
                for (int l = 0; l < VL; ++l) dacc[ii][l] += (double)part[ii][l];
                for (int l = 0; l < HL; ++l) dhal[ii][l] += (double)hpart[ii][l];
            }
        }
        for (int j = 0; j < D; ++j) out[1 + j] += d1[j];
        for (int i = 0; i < D; ++i) {
            double *restrict row = out + 1 + D + (ptrdiff_t)i * D
                                   - (ptrdiff_t)i * (i - 1) / 2 - i;
            for (int j = i; j < D; ++j)
                row[j] += i < HL ? dacc[i][j] : dhal[i - HL][j - HL];
        }
    }
}

/* 'tied' statistics of float32 data: N_k and S1_k = sum_b w_b gamma_bk
 * (x_b - c), in float64 arithmetic. Tied covariances come from the data's
 * second moment T0 (computed once) minus the components' between-scatter,
 * which relies on sum_k w_b gamma_bk = w_b: the float32 responsibilities
 * (whose sum over k is 1 only to float32 rounding) are first renormalised
 * in float64, g_bk = gamma_bk w_b / sum_j gamma_bj. Rows go in blocks of
 * RB = 64: the block's weights (K x RB) and features [1; xc] (P x RB,
 * P = 1 + D) are converted to float64 into L1-sized scratch, and every
 * (k, p) accumulates sum_b g_bk F_pb in 8 float64 lanes (lane l takes rows
 * b = l mod 8, in row order); the lanes are added in order at the end.
 * gT: K x nb float32 responsibilities; sw: nb weights or NULL; xcT: D x nb
 * centred chunk; work: fe_stats_tied_work(K, D) float64 scratch; slot:
 * K x P, written (accumulate = 0) or added to. */
FE_HOT static void fe_stats_tied_f32(const float *restrict gT, ptrdiff_t nb, int D, int K,
                                   const float *restrict sw, const float *restrict xcT,
                                   double *restrict work, double *restrict slot,
                                   int accumulate)
{
    enum { VL = 8, RB = FE_TIED_RB, NVB = FE_TIED_RB / 8 };
    const ptrdiff_t P = 1 + D;
    double *restrict acc = work;                 /* K x P x VL */
    double *restrict gd = acc + (ptrdiff_t)K * P * VL;  /* K x RB */
    double *restrict fd = gd + (ptrdiff_t)K * RB;       /* P x RB */
    double *restrict s = fd + P * RB;                   /* RB */
    for (ptrdiff_t e = 0; e < (ptrdiff_t)K * P * VL; ++e) acc[e] = 0.0;
    for (ptrdiff_t b0 = 0; b0 < nb; b0 += RB) {
        const ptrdiff_t nr = nb - b0 < RB ? nb - b0 : RB;
        for (int r = 0; r < RB; ++r) s[r] = 0.0;
        for (int k = 0; k < K; ++k) {
            const float *restrict g = gT + (ptrdiff_t)k * nb + b0;
            for (ptrdiff_t r = 0; r < nr; ++r) s[r] += (double)g[r];
        }
        for (ptrdiff_t r = 0; r < nr; ++r) s[r] = (sw ? (double)sw[b0 + r] : 1.0) / s[r];
        for (ptrdiff_t r = nr; r < RB; ++r) s[r] = 0.0;
        for (int k = 0; k < K; ++k) {
            const float *restrict g = gT + (ptrdiff_t)k * nb + b0;
            double *restrict o = gd + (ptrdiff_t)k * RB;
            for (ptrdiff_t r = 0; r < nr; ++r) o[r] = (double)g[r] * s[r];
            for (ptrdiff_t r = nr; r < RB; ++r) o[r] = 0.0;
        }
        for (int r = 0; r < RB; ++r) fd[r] = 1.0;
        for (int d = 0; d < D; ++d) {
            const float *restrict x = xcT + (ptrdiff_t)d * nb + b0;
            double *restrict o = fd + (ptrdiff_t)(1 + d) * RB;
            for (ptrdiff_t r = 0; r < nr; ++r) o[r] = (double)x[r];
            for (ptrdiff_t r = nr; r < RB; ++r) o[r] = 0.0;
        }
        for (int k = 0; k < K; ++k) {
            fe_vd gv[NVB];
            for (int v = 0; v < NVB; ++v) gv[v] = fe_vload_f64(gd + (ptrdiff_t)k * RB + v * VL);
            /* four (k, p) accumulators at a time: independent chains */
            ptrdiff_t p = 0;
            for (; p + 4 <= P; p += 4) {
                const double *restrict f = fd + p * RB;
                double *restrict a = acc + ((ptrdiff_t)k * P + p) * VL;
                fe_vd t0 = fe_vload_f64(a), t1 = fe_vload_f64(a + VL);
                fe_vd t2 = fe_vload_f64(a + 2 * VL), t3 = fe_vload_f64(a + 3 * VL);
                for (int v = 0; v < NVB; ++v) {
                    t0 += gv[v] * fe_vload_f64(f + v * VL);
                    t1 += gv[v] * fe_vload_f64(f + RB + v * VL);
                    t2 += gv[v] * fe_vload_f64(f + 2 * RB + v * VL);
                    t3 += gv[v] * fe_vload_f64(f + 3 * RB + v * VL);
                }
                fe_vstore_f64(a, t0); fe_vstore_f64(a + VL, t1);
                fe_vstore_f64(a + 2 * VL, t2); fe_vstore_f64(a + 3 * VL, t3);
            }
            for (; p < P; ++p) {
                const double *restrict f = fd + p * RB;
                double *restrict a = acc + ((ptrdiff_t)k * P + p) * VL;
                fe_vd t = fe_vload_f64(a);
                for (int v = 0; v < NVB; ++v) t += gv[v] * fe_vload_f64(f + v * VL);
                fe_vstore_f64(a, t);
            }
        }
    }
    for (int k = 0; k < K; ++k) {
        double *restrict out = slot + (ptrdiff_t)k * P;
        for (ptrdiff_t p = 0; p < P; ++p) {
            const double *restrict a = acc + ((ptrdiff_t)k * P + p) * VL;
            double t = 0.0;
            for (int l = 0; l < VL; ++l) t += a[l];
            out[p] = accumulate ? out[p] + t : t;
        }
    }
}

/* Weighted moments of a chunk (K = 1, gamma = 1): slot += [sum_b w_b,
 * sum_b w_b xc_b, vech(sum_b w_b xc_b xc_b^T)] (upper triangle row by row),
 * in float64: the chunk (xcT, D x nb) is converted to float64 rows x_i and
 * w x_i (work: 2 D nb), and every pair (i, j >= i) accumulates
 * sum_b (w x_i)_b x_jb in 8 lanes (lane l takes rows b = l mod 8, in
 * order), four pairs at a time; lanes are added in order. The data's
 * second moment of 'tied' (once per fit) costs D(D+1)/2 multiply-adds a
 * row this way, instead of quadratic features and a one-row GEMM. */
#define FE_DEFINE_MOMENTS(NAME, T)                                           \
FE_HOT static void NAME(const T *restrict xcT, ptrdiff_t nb, int D,         \
                        const T *restrict sw, double *restrict work,        \
                        double *restrict slot, int accumulate)              \
{                                                                           \
    enum { VL = 8 };                                                        \
    const ptrdiff_t nbv = nb - nb % VL;                                     \
    const ptrdiff_t P = 1 + D + (ptrdiff_t)D * (D + 1) / 2;                 \
    double *restrict xd = work, *restrict wx = work + (ptrdiff_t)D * nb;    \
    for (int i = 0; i < D; ++i) {                                           \
        const T *restrict x = xcT + (ptrdiff_t)i * nb;                      \
        double *restrict o = xd + (ptrdiff_t)i * nb;                        \
        double *restrict ow = wx + (ptrdiff_t)i * nb;                       \
        for (ptrdiff_t b = 0; b < nb; ++b) {                                \
            o[b] = (double)x[b];                                            \
            ow[b] = sw ? (double)sw[b] * (double)x[b] : (double)x[b];       \
        }                                                                   \
    }                                                                       \
    if (!accumulate)                                                        \
        for (ptrdiff_t p = 0; p < P; ++p) slot[p] = 0.0;                    \
    double wsum = 0.0;                                                      \
    if (sw) { for (ptrdiff_t b = 0; b < nb; ++b) wsum += (double)sw[b]; }   \
    else wsum = (double)nb;                                                 \
    slot[0] += wsum;                                                        \
    double lanes[VL];                                                       \
    for (int i = 0; i < D; ++i) {                                           \
        const double *restrict a = wx + (ptrdiff_t)i * nb;                  \
        /* S1_i = sum_b w_b x_ib */                                         \
        double t = 0.0;                                                     \
        for (ptrdiff_t b = 0; b < nb; ++b) t += a[b];                       \
        slot[1 + i] += t;                                                   \
        double *restrict row = slot + 1 + D + (ptrdiff_t)i * D              \
                               - (ptrdiff_t)i * (i - 1) / 2 - i;            \
        for (int j0 = i; j0 < D; j0 += 4) {                                 \
            const int nj = D - j0 < 4 ? D - j0 : 4;                         \
            const double *restrict x0 = xd + (ptrdiff_t)j0 * nb;            \
            const double *restrict x1 = nj > 1 ? x0 + nb : x0;              \
            const double *restrict x2 = nj > 2 ? x0 + 2 * nb : x0;          \
            const double *restrict x3 = nj > 3 ? x0 + 3 * nb : x0;          \
            fe_vd a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                   \
            for (ptrdiff_t b = 0; b < nbv; b += VL) {                       \
                const fe_vd av = fe_vload_f64(a + b);                         \
                a0 += av * fe_vload_f64(x0 + b);                              \
                a1 += av * fe_vload_f64(x1 + b);                              \
                a2 += av * fe_vload_f64(x2 + b);                              \
                a3 += av * fe_vload_f64(x3 + b);                              \
            }                                                               \
            const fe_vd acc[4] = {a0, a1, a2, a3};                          \
            const double *restrict xs[4] = {x0, x1, x2, x3};                \
            for (int jj = 0; jj < nj; ++jj) {                               \
                fe_vstore_f64(lanes, acc[jj]);                                \
                double u = 0.0;                                             \
                for (int l = 0; l < VL; ++l) u += lanes[l];                 \
                for (ptrdiff_t b = nbv; b < nb; ++b) u += a[b] * xs[jj][b]; \
                row[j0 + jj] += u;                                          \
            }                                                               \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_MOMENTS(fe_moments_f64, double)
FE_DEFINE_MOMENTS(fe_moments_f32, float)

/* 'spherical' statistics of float32 data from the E-step's r_kb =
 * |xc_b - mu'_k|^2 (R, K x nb; mu' = mu - c the E-step's shifted means),
 * with no pass over the features for the second moment. About the E-step's
 * reference e_k = c + mu'_k:
 *     N_k = sum_b g_kb,  T1_k = sum_b g_kb (xc_b - mu'_k)
 *                             = sum_b g_kb xc_b - N_k mu'_k,
 *     T2_k = sum_b g_kb r_kb,
 * then moved (exactly, in float64) to the reference m_k = centres[k] of the
 * other statistics kernels: with delta = e_k - m_k (rounding-sized),
 * S1 = T1 + N delta and S2 = T2 + 2 delta.T1 + N |delta|^2. slot[k] +=
 * [N_k, S1_k, S2_k]. Dot products run over rows in 16 float32 lanes, four
 * features at a time, flushed to float64 every 512 rows (32 terms per
 * lane); the tail rows (nb mod 16) are added in float64. */
FE_HOT static void fe_stats_sph_f32(const float *restrict xcT, ptrdiff_t nb, int D, int K,
                                  const float *restrict gT, const float *restrict R,
                                  const float *restrict mu, const float *restrict centres,
                                  const float *restrict shift, double *restrict slot,
                                  ptrdiff_t P)
{
    enum { VL = 16, SB = 512 };  /* 32 rows per lane between flushes */
    const ptrdiff_t nbv = nb - nb % VL;
    float l0[VL], l1[VL], l2[VL], l3[VL];
    for (int k = 0; k < K; ++k) {
        const float *restrict g = gT + (ptrdiff_t)k * nb;
        const float *restrict r = R + (ptrdiff_t)k * nb;
        double *restrict out = slot + (ptrdiff_t)k * P;
        double dn[VL] = {0}, ds2[VL] = {0};
        for (ptrdiff_t b0 = 0; b0 < nbv; b0 += SB) {
            const ptrdiff_t b1 = b0 + SB < nbv ? b0 + SB : nbv;
            fe_vf vn = {0}, vs = {0};
            for (ptrdiff_t b = b0; b < b1; b += VL) {
                const fe_vf gv = fe_vload_f32(g + b);
                vn += gv;
                vs += gv * fe_vload_f32(r + b);
            }
            fe_vstore_f32(l0, vn);
            fe_vstore_f32(l1, vs);
            for (int l = 0; l < VL; ++l) { dn[l] += (double)l0[l]; ds2[l] += (double)l1[l]; }
        }
        double n = 0.0, s2 = 0.0;
        for (int l = 0; l < VL; ++l) { n += dn[l]; s2 += ds2[l]; }
        for (ptrdiff_t b = nbv; b < nb; ++b) {
            n += (double)g[b];
            s2 += (double)g[b] * (double)r[b];
        }
        double t1[4], dot_dt1 = 0.0, dd2 = 0.0;
        out[0] += n;
        for (int d0 = 0; d0 < D; d0 += 4) {
            const int nd = D - d0 < 4 ? D - d0 : 4;
            const float *restrict x0 = xcT + (ptrdiff_t)d0 * nb;
            const float *restrict x1 = nd > 1 ? x0 + nb : x0;
            const float *restrict x2 = nd > 2 ? x0 + 2 * nb : x0;
            const float *restrict x3 = nd > 3 ? x0 + 3 * nb : x0;
            double dd[4][VL] = {{0}};
            for (ptrdiff_t b0 = 0; b0 < nbv; b0 += SB) {
                const ptrdiff_t b1 = b0 + SB < nbv ? b0 + SB : nbv;
                fe_vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                for (ptrdiff_t b = b0; b < b1; b += VL) {
                    const fe_vf gv = fe_vload_f32(g + b);
                    a0 += gv * fe_vload_f32(x0 + b);
                    a1 += gv * fe_vload_f32(x1 + b);
                    a2 += gv * fe_vload_f32(x2 + b);
                    a3 += gv * fe_vload_f32(x3 + b);
                }
                fe_vstore_f32(l0, a0); fe_vstore_f32(l1, a1);
                fe_vstore_f32(l2, a2); fe_vstore_f32(l3, a3);
                for (int l = 0; l < VL; ++l) {
                    dd[0][l] += (double)l0[l]; dd[1][l] += (double)l1[l];
                    dd[2][l] += (double)l2[l]; dd[3][l] += (double)l3[l];
                }
            }
            const float *restrict xs[4] = {x0, x1, x2, x3};
            for (int j = 0; j < nd; ++j) {
                const ptrdiff_t kd = (ptrdiff_t)k * D + d0 + j;
                double t = 0.0;
                for (int l = 0; l < VL; ++l) t += dd[j][l];
                for (ptrdiff_t b = nbv; b < nb; ++b) t += (double)g[b] * (double)xs[j][b];
                t1[j] = t - n * (double)mu[kd];
                const double delta = ((double)shift[d0 + j] + (double)mu[kd]) - (double)centres[kd];
                dot_dt1 += delta * t1[j];
                dd2 += delta * delta;
                out[1 + d0 + j] += t1[j] + n * delta;
            }
        }
        out[1 + D] += s2 + 2.0 * dot_dt1 + n * dd2;
    }
}

/* Diag / spherical: slot[k] += [N_k, S1_k, S2_k] with S2_k the D squares
 * sum_b g z_bd^2 (diag, P = 1 + 2D) or their sum over d (spherical,
 * P = 2 + D). Same layout of xp and mp as the full kernel. */
#define FE_DEFINE_STATS_DIAG(NAME, T, VT, SUFFIX, SUM)                       \
FE_HOT static void NAME(const T *restrict xp, ptrdiff_t nb, int D, int Dp,  \
                        int K, int spherical, const T *restrict mp,         \
                        const T *restrict gT, double *restrict slot,        \
                        ptrdiff_t P)                                        \
{                                                                           \
    enum { VL = sizeof(VT) / sizeof(T) };                                    \
    const int NV = Dp / VL;                                                 \
    const ptrdiff_t SB = FE_SUBBLOCK(T);                                    \
    T l1[VL], l2[VL];                                                       \
    double d1[VL], d2[VL];                                                  \
    for (int k = 0; k < K; ++k) {                                           \
        const T *restrict g = gT + (ptrdiff_t)k * nb;                       \
        double *restrict out = slot + (ptrdiff_t)k * P;                     \
        out[0] += SUM(g, nb);                                               \
        double sph = 0.0;                                                   \
        for (int v = 0; v < NV; ++v) {                                      \
            const VT m = fe_vload_##SUFFIX(mp + (ptrdiff_t)k * Dp + v * VL); \
            for (int l = 0; l < VL; ++l) d1[l] = d2[l] = 0.0;               \
            for (ptrdiff_t b0 = 0; b0 < nb; b0 += SB) {                     \
                const ptrdiff_t b1 = b0 + SB < nb ? b0 + SB : nb;           \
                /* four rows at a time into four accumulator pairs (rows   \
                 * b = r mod 4), added in order: independent chains */      \
                VT s1[4] = {{0}}, s2[4] = {{0}};                            \
                ptrdiff_t b = b0;                                           \
                for (; b + 4 <= b1; b += 4) {                               \
                    for (int r = 0; r < 4; ++r) {                           \
                        const VT z = fe_vload_##SUFFIX(xp + (b + r) * Dp + v * VL) - m; \
                        const VT gz = z * g[b + r];                         \
                        s1[r] += gz;                                        \
                        s2[r] += gz * z;                                    \
                    }                                                       \
                }                                                           \
                for (; b < b1; ++b) {                                       \
                    const VT z = fe_vload_##SUFFIX(xp + b * Dp + v * VL) - m; \
                    const VT gz = z * g[b];                                 \
                    s1[0] += gz;                                            \
                    s2[0] += gz * z;                                        \
                }                                                           \
                fe_vstore_##SUFFIX(l1, (s1[0] + s1[1]) + (s1[2] + s1[3]));   \
                fe_vstore_##SUFFIX(l2, (s2[0] + s2[1]) + (s2[2] + s2[3]));   \
                for (int l = 0; l < VL; ++l) {                              \
                    d1[l] += (double)l1[l];                                 \
                    d2[l] += (double)l2[l];                                 \
                }                                                           \
            }                                                               \
            for (int l = 0; l < VL && v * VL + l < D; ++l) {                \
                out[1 + v * VL + l] += d1[l];                               \
                if (spherical) sph += d2[l];                                \
                else out[1 + D + v * VL + l] += d2[l];                      \
            }                                                               \
        }                                                                   \
        if (spherical) out[1 + D] += sph;                                   \
    }                                                                       \
}
FE_DEFINE_STATS_DIAG(fe_stats_diag_f32, float, fe_nf, n32, fe_sum_f32)

/* float64 diag / spherical statistics from the transposed chunk: the sums of
 * fe_stats_diag (float64) bit for bit, about twice as fast at D = 64, K = 32
 * (a C prototype of both orders, one thread, AVX2: 37-41 ms against 82-87 ms
 * per 1e5 rows).
 *
 * xT: the chunk's raw rows transposed (D x nb, x[b, j] = xT[j nb + b]); mu:
 * the K x D centres (unpadded). fe_stats_diag holds columns in its lanes
 * and gives each column four accumulator pairs that take the rows
 * b = 0, 1, 2, 3 mod 4 (the tail rows, b >= 4 floor(nb / 4), go to pair 0 in
 * order), added as (0 + 1) + (2 + 3). Here a 4-double vector holds rows
 * b .. b + 3 of one column, so its lane r *is* pair r of that column and the
 * association is unchanged: tail rows into lane 0, then the same final
 * additions. What changes is the memory order: every load is a contiguous
 * 4-row run of one column, the weights g[b .. b + 3] are loaded once for
 * four columns, and four columns give eight independent chains (the row
 * kernel strides by a whole row between loads). Eight columns at a time in
 * AVX-512 builds (fe_stats_diag_T8_f64, below), four at a time, then the
 * last ones one at a time. */

#define FE_DEFINE_STATS_DIAG_T_COLS(NAME, CW)                                \
FE_INLINE void NAME(const double *restrict xT, ptrdiff_t nb,                \
                    const double *restrict m, const double *restrict g,     \
                    double *restrict d1, double *restrict d2)               \
{                                                                           \
    const ptrdiff_t nq = nb - nb % 4;                                       \
    fe_d4 s1[CW], s2[CW];                                                   \
    for (int j = 0; j < CW; ++j) s1[j] = s2[j] = (fe_d4){0, 0, 0, 0};       \
    for (ptrdiff_t b = 0; b < nq; b += 4) {                                 \
        const fe_d4 gv = fe_vload_d4(g + b);                                \
        _Pragma("GCC unroll 4")                                             \
        for (int j = 0; j < CW; ++j) {                                      \
            const fe_d4 z = fe_vload_d4(xT + (ptrdiff_t)j * nb + b) - m[j]; \
            const fe_d4 gz = z * gv;                                        \
            s1[j] += gz;                                                    \
            s2[j] += gz * z;                                                \
        }                                                                   \
    }                                                                       \
    for (int j = 0; j < CW; ++j) {                                          \
        double t1 = s1[j][0], t2 = s2[j][0];                                \
        for (ptrdiff_t b = nq; b < nb; ++b) {                               \
            const double z = xT[(ptrdiff_t)j * nb + b] - m[j];              \
            const double gz = z * g[b];                                     \
            t1 += gz;                                                       \
            t2 += gz * z;                                                   \
        }                                                                   \
        /* 0.0 + : fe_stats_diag's float64 lane accumulator, from zero */   \
        d1[j] = 0.0 + ((t1 + s1[j][1]) + (s1[j][2] + s1[j][3]));            \
        d2[j] = 0.0 + ((t2 + s2[j][1]) + (s2[j][2] + s2[j][3]));            \
    }                                                                       \
}
FE_DEFINE_STATS_DIAG_T_COLS(fe_stats_diag_T4_f64, 4)
FE_DEFINE_STATS_DIAG_T_COLS(fe_stats_diag_T1_f64, 1)

#if defined(__AVX512F__)
/* Eight columns at a time with 8-double vectors: a vector holds rows
 * b .. b + 3 of two columns (lanes 0-3 column j, lanes 4-7 column j + 1),
 * so each column keeps its four row lanes and the sums are those of
 * fe_stats_diag_T4_f64 bit for bit, with half the vector operations: per 4
 * rows of two columns one subtraction, two multiplications and two additions
 * on 8 lanes (plus one shuffle joining the two 4-row loads); the four pairs
 * are eight independent chains, as four columns were. Measured at D = 64,
 * K = 256, 112 rows, one thread: 15-20 % less time than four columns at a
 * time (the G3 fit, which also gained from fe_logprob_diag's vector tail:
 * 0.29-0.36 s -> 0.23-0.27 s). */
typedef double fe_d8 __attribute__((vector_size(64)));
FE_INLINE fe_d8 fe_join_d4(fe_d4 lo, fe_d4 hi)
{
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7);
}
FE_INLINE void fe_stats_diag_T8_f64(const double *restrict xT, ptrdiff_t nb,
                                    const double *restrict m,
                                    const double *restrict g,
                                    double *restrict d1, double *restrict d2)
{
    const ptrdiff_t nq = nb - nb % 4;
    fe_d8 s1[4], s2[4], mv[4];
    for (int q = 0; q < 4; ++q) {
        s1[q] = s2[q] = (fe_d8){0};
        mv[q] = (fe_d8){m[2 * q], m[2 * q], m[2 * q], m[2 * q],
                        m[2 * q + 1], m[2 * q + 1], m[2 * q + 1], m[2 * q + 1]};
    }
    for (ptrdiff_t b = 0; b < nq; b += 4) {
        const fe_d4 g4 = fe_vload_d4(g + b);
        const fe_d8 gv = fe_join_d4(g4, g4);
        _Pragma("GCC unroll 4")
        for (int q = 0; q < 4; ++q) {
            const fe_d8 z = fe_join_d4(fe_vload_d4(xT + (ptrdiff_t)(2 * q) * nb + b),
                                       fe_vload_d4(xT + (ptrdiff_t)(2 * q + 1) * nb + b))
                            - mv[q];
            const fe_d8 gz = z * gv;
            s1[q] += gz;
            s2[q] += gz * z;
        }
    }
    /* the lanes through memory: column j's are l1[4 j .. 4 j + 3] */
    double l1[32], l2[32];
    memcpy(l1, s1, sizeof l1);
    memcpy(l2, s2, sizeof l2);
    for (int j = 0; j < 8; ++j) {
        const double *restrict v1 = l1 + 4 * j, *restrict v2 = l2 + 4 * j;
        double t1 = v1[0], t2 = v2[0];
        for (ptrdiff_t b = nq; b < nb; ++b) {
            const double z = xT[(ptrdiff_t)j * nb + b] - m[j];
            const double gz = z * g[b];
            t1 += gz;
            t2 += gz * z;
        }
        d1[j] = 0.0 + ((t1 + v1[1]) + (v1[2] + v1[3]));
        d2[j] = 0.0 + ((t2 + v2[1]) + (v2[2] + v2[3]));
    }
}
#define FE_STATS_DIAG_T_WIDE 8
#else
#define FE_STATS_DIAG_T_WIDE 4
#endif

FE_HOT static void fe_stats_diag_T_f64(const double *restrict xT, ptrdiff_t nb,
                                       int D, int K, int spherical,
                                       const double *restrict mu,
                                       const double *restrict gT,
                                       double *restrict slot, ptrdiff_t P)
{
    double d1[8], d2[8];
    for (int k = 0; k < K; ++k) {
        const double *restrict g = gT + (ptrdiff_t)k * nb;
        const double *restrict m = mu + (ptrdiff_t)k * D;
        double *restrict out = slot + (ptrdiff_t)k * P;
        out[0] += fe_sum_f64(g, nb);
        double sph = 0.0;
        for (int j0 = 0; j0 < D;) {
            const int cw = D - j0 >= FE_STATS_DIAG_T_WIDE ? FE_STATS_DIAG_T_WIDE
                           : D - j0 >= 4 ? 4 : 1;
#if FE_STATS_DIAG_T_WIDE == 8
            if (cw == 8)
                fe_stats_diag_T8_f64(xT + (ptrdiff_t)j0 * nb, nb, m + j0, g, d1, d2);
            else
#endif
            if (cw == 4)
                fe_stats_diag_T4_f64(xT + (ptrdiff_t)j0 * nb, nb, m + j0, g, d1, d2);
            else
                fe_stats_diag_T1_f64(xT + (ptrdiff_t)j0 * nb, nb, m + j0, g, d1, d2);
            for (int j = 0; j < cw; ++j) {
                out[1 + j0 + j] += d1[j];
                if (spherical) sph += d2[j];
                else out[1 + D + j0 + j] += d2[j];
            }
            j0 += cw;
        }
        if (spherical) out[1 + D] += sph;
    }
}

/* Diag / spherical log-densities (see FE_DEFINE_LOGPROB_DIAG, the reference):
 * the same sums with rows in vector lanes, a block of 4 vectors of rows
 * held in registers across the whole d loop (the reference keeps its sums
 * in memory, a load and a store per term). Per row the terms are added in
 * order of d from zero, as there, so the blocking changes no bit. The whole
 * vectors past the last block of 4 go one vector at a time (a chunk of 112
 * rows is 3 blocks and 2 vectors of 8 doubles: by rows they would be 1/7 of
 * the chunk at a fraction of the speed), the last nb mod VL rows one at a
 * time. acc is not used. */
#define FE_DEFINE_LOGPROB_DIAG_VEC(NAME, T, VT, SUFFIX)                      \
/* R vectors of rows from row b0 (R a constant at every call) */            \
FE_INLINE void NAME##_rows(const T *restrict xcT, ptrdiff_t nb, ptrdiff_t b0, \
                           int R, int K, int D, int spherical,              \
                           const T *restrict mu, const T *restrict p2,      \
                           const double *restrict const_k, T *restrict lpT) \
{                                                                           \
    enum { VL = sizeof(VT) / sizeof(T) };                                   \
    for (int k = 0; k < K; ++k) {                                           \
        const T *restrict m = mu + (ptrdiff_t)k * D;                        \
        const T *restrict p = p2 + (ptrdiff_t)k * D;                        \
        VT a[4];                                                            \
        for (int r = 0; r < R; ++r) a[r] = (VT){0};                         \
        if (spherical) {                                                    \
            for (int d = 0; d < D; ++d) {                                   \
                const T *restrict x = xcT + (ptrdiff_t)d * nb + b0;         \
                for (int r = 0; r < R; ++r) {                               \
                    const VT t = fe_vload_##SUFFIX(x + r * VL) - m[d];      \
                    a[r] += t * t;                                          \
                }                                                           \
            }                                                               \
        } else {                                                            \
            for (int d = 0; d < D; ++d) {                                   \
                const T *restrict x = xcT + (ptrdiff_t)d * nb + b0;         \
                for (int r = 0; r < R; ++r) {                               \
                    const VT t = fe_vload_##SUFFIX(x + r * VL) - m[d];      \
                    a[r] += (t * t) * p[d];                                 \
                }                                                           \
            }                                                               \
        }                                                                   \
        const T ck = (T)const_k[k];                                         \
        const T pk = spherical ? p2[k] : (T)1;                              \
        T *restrict out = lpT + (ptrdiff_t)k * nb + b0;                     \
        for (int r = 0; r < R; ++r)                                         \
            fe_vstore_##SUFFIX(out + r * VL, ck - (T)0.5 * (pk * a[r]));    \
    }                                                                       \
}                                                                           \
FE_HOT static void NAME(const T *restrict xcT, ptrdiff_t nb, int K, int D,  \
                        int spherical, const T *restrict mu,                \
                        const T *restrict p2, const double *restrict const_k, \
                        T *restrict acc, T *restrict lpT)                   \
{                                                                           \
    enum { VL = sizeof(VT) / sizeof(T) };                                   \
    const ptrdiff_t nfull = nb - nb % VL;                                   \
    ptrdiff_t b0 = 0;                                                       \
    (void)acc;                                                              \
    for (; b0 + 4 * VL <= nfull; b0 += 4 * VL)                              \
        NAME##_rows(xcT, nb, b0, 4, K, D, spherical, mu, p2, const_k, lpT); \
    for (; b0 < nfull; b0 += VL)                                            \
        NAME##_rows(xcT, nb, b0, 1, K, D, spherical, mu, p2, const_k, lpT); \
    for (int k = 0; k < K; ++k) {                                           \
        const T ck = (T)const_k[k];                                         \
        const T pk = spherical ? p2[k] : (T)1;                              \
        for (ptrdiff_t b = nfull; b < nb; ++b) {                            \
            T q = 0;                                                        \
            for (int d = 0; d < D; ++d) {                                   \
                const T t = xcT[(ptrdiff_t)d * nb + b] - mu[(ptrdiff_t)k * D + d]; \
                q += spherical ? t * t : (t * t) * p2[(ptrdiff_t)k * D + d]; \
            }                                                               \
            lpT[(ptrdiff_t)k * nb + b] = ck - (T)0.5 * (pk * q);            \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_LOGPROB_DIAG_VEC(fe_logprob_diag_f64, double, fe_nd, n64)
FE_DEFINE_LOGPROB_DIAG_VEC(fe_logprob_diag_f32, float, fe_nf, n32)

/* ---------------------------------------------------------------------------
 * Fused E-step of 'full' for triangular factors and D <= 16 ('tied' is
 * fe_tied_project then fe_estep_diag, below).
 *
 * log N(x | k) = const_k - 1/2 sum_d (y_kd - crow_kd)^2 with
 * y_kd = sum_i xc_i L_k[i, d]; an upper factor (every factor fastem
 * computes: the M-step's and those of user-given precisions, as
 * scikit-learn's) has L_k[i, d] = 0 for i > d, a lower one (only a
 * hand-set or loaded precisions_cholesky_, which the fitted-state checks
 * accept) for i < d, so y_kd is a sum over i <= d
 * (resp. i >= d): D(D+1)/2 multiply-adds per component instead of D^2.
 * Rows go in vector lanes: a block of VL rows of the transposed chunk
 * (xcT) is loaded once into DD vectors x_i, then for every component the
 * factor's entries are broadcast against them, the residual squared and
 * accumulated in registers: no GEMM output is written or read back, and
 * the GEMM's packing and zero-filling disappear. DD (4, 8 or 16) is D
 * rounded up, so the loops have constant trip counts and unroll; the padded
 * entries of x, L and crow are zeros and add exact zeros. Each residual
 * y_kd - crow_kd starts from its first term minus crow_kd (the
 * subtraction takes the place of adding that term to zero, so no separate
 * subtraction is left: 16 fewer vector operations per component at D = 16,
 * 152 instead of 168; products and sums are rounded one by one, as the
 * build does not contract them) and adds the other terms in order of i;
 * the squares add up in order of d.
 * Lp: K x DD x DD factors (L[i][d], zero-padded); cp: K x DD residual
 * offsets crow_k = (mu_k - c)^T L_k (zero-padded); lp: K x nb output.
 * ------------------------------------------------------------------------- */
/* x[0..DD) = rows b0 .. b0 + nv of the D x nb chunk xcT, rows in lanes,
 * zero beyond D features and nv rows */
#define FE_LOAD_ROW_BLOCK(T, SUFFIX, DD, x, xcT, nb, b0, nv, D, tmp)        \
    for (int i = 0; i < DD; ++i) {                                          \
        if (i < D && nv == VL) {                                            \
            x[i] = fe_vload_##SUFFIX(xcT + (ptrdiff_t)i * nb + b0);          \
        } else {                                                            \
            for (int l = 0; l < VL; ++l)                                    \
                tmp[l] = (i < D && l < nv) ? xcT[(ptrdiff_t)i * nb + b0 + l] : (T)0; \
            x[i] = fe_vload_##SUFFIX(tmp);                                   \
        }                                                                   \
    }

#define FE_DEFINE_ESTEP_CHOL(NAME, T, VT, SUFFIX, DD)                        \
FE_HOT static void NAME(const T *restrict xcT, ptrdiff_t nb, int D, int K,  \
                        int lower, const T *restrict Lp,                    \
                        const T *restrict cp, const double *restrict const_k, \
                        T *restrict lp)                                     \
{                                                                           \
    enum { VL = sizeof(VT) / sizeof(T) };                                   \
    T tmp[VL];                                                              \
    for (ptrdiff_t b0 = 0; b0 < nb; b0 += VL) {                             \
        const ptrdiff_t nv = nb - b0 < VL ? nb - b0 : VL;                   \
        VT x[DD];                                                           \
        FE_LOAD_ROW_BLOCK(T, SUFFIX, DD, x, xcT, nb, b0, nv, D, tmp)        \
        for (int k = 0; k < K; ++k) {                                       \
            const T *restrict L = Lp + (ptrdiff_t)k * DD * DD;              \
            const T *restrict c = cp + (ptrdiff_t)k * DD;                   \
            VT acc = {0};                                                   \
            if (lower) {                                                    \
                _Pragma("GCC unroll 16")                                    \
                for (int d = 0; d < DD; ++d) {                              \
                    VT t = x[d] * L[d * DD + d] - c[d];                     \
                    _Pragma("GCC unroll 16")                                \
                    for (int i = d + 1; i < DD; ++i) t += x[i] * L[i * DD + d]; \
                    acc += t * t;                                           \
                }                                                           \
            } else {                                                        \
                _Pragma("GCC unroll 16")                                    \
                for (int d = 0; d < DD; ++d) {                              \
                    VT t = x[0] * L[d] - c[d];                              \
                    _Pragma("GCC unroll 16")                                \
                    for (int i = 1; i <= d; ++i) t += x[i] * L[i * DD + d]; \
                    acc += t * t;                                           \
                }                                                           \
            }                                                               \
            const VT out = (T)const_k[k] - (T)0.5 * acc;                    \
            if (nv == VL) {                                                 \
                fe_vstore_##SUFFIX(lp + (ptrdiff_t)k * nb + b0, out);        \
            } else {                                                        \
                fe_vstore_##SUFFIX(tmp, out);                                \
                for (int l = 0; l < nv; ++l) lp[(ptrdiff_t)k * nb + b0 + l] = tmp[l]; \
            }                                                               \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_ESTEP_CHOL(fe_estep_chol4_f64, double, fe_nd, n64, 4)
FE_DEFINE_ESTEP_CHOL(fe_estep_chol8_f64, double, fe_nd, n64, 8)
FE_DEFINE_ESTEP_CHOL(fe_estep_chol16_f64, double, fe_nd, n64, 16)
FE_DEFINE_ESTEP_CHOL(fe_estep_chol4_f32, float, fe_nf, n32, 4)
FE_DEFINE_ESTEP_CHOL(fe_estep_chol8_f32, float, fe_nf, n32, 8)
FE_DEFINE_ESTEP_CHOL(fe_estep_chol16_f32, float, fe_nf, n32, 16)

/* 'tied' for a triangular factor L and D <= 16, first half of the E-step:
 * yT (D x nb) = (xc^T L)^T, rows in vector lanes, each y_d summed over the
 * factor's triangle in order of i (i <= d upper, i >= d lower). The second
 * half is fe_estep_diag on yT with unit scales and the offsets crow_k:
 * t = y_d - crow_kd, q = sum_d t^2, lp = const_k - q / 2 (the unit factor
 * is exact), so one projection per row serves all K components. */
#define FE_DEFINE_TIED_PROJECT(NAME, T, VT, SUFFIX, DD)                      \
FE_HOT static void NAME(const T *restrict xcT, ptrdiff_t nb, int D,         \
                        int lower, const T *restrict L, T *restrict yT)     \
{                                                                           \
    enum { VL = sizeof(VT) / sizeof(T) };                                   \
    T tmp[VL];                                                              \
    for (ptrdiff_t b0 = 0; b0 < nb; b0 += VL) {                             \
        const ptrdiff_t nv = nb - b0 < VL ? nb - b0 : VL;                   \
        VT x[DD];                                                           \
        FE_LOAD_ROW_BLOCK(T, SUFFIX, DD, x, xcT, nb, b0, nv, D, tmp)        \
        _Pragma("GCC unroll 16")                                            \
        for (int d = 0; d < DD; ++d) {                                      \
            if (d >= D) break;                                              \
            VT s = {0};                                                     \
            if (lower) {                                                    \
                _Pragma("GCC unroll 16")                                    \
                for (int i = d; i < DD; ++i) s += x[i] * L[i * DD + d];     \
            } else {                                                        \
                _Pragma("GCC unroll 16")                                    \
                for (int i = 0; i <= d; ++i) s += x[i] * L[i * DD + d];     \
            }                                                               \
            if (nv == VL) {                                                 \
                fe_vstore_##SUFFIX(yT + (ptrdiff_t)d * nb + b0, s);          \
            } else {                                                        \
                fe_vstore_##SUFFIX(tmp, s);                                  \
                for (int l = 0; l < nv; ++l) yT[(ptrdiff_t)d * nb + b0 + l] = tmp[l]; \
            }                                                               \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_TIED_PROJECT(fe_tied_project4_f64, double, fe_nd, n64, 4)
FE_DEFINE_TIED_PROJECT(fe_tied_project8_f64, double, fe_nd, n64, 8)
FE_DEFINE_TIED_PROJECT(fe_tied_project16_f64, double, fe_nd, n64, 16)
FE_DEFINE_TIED_PROJECT(fe_tied_project4_f32, float, fe_nf, n32, 4)
FE_DEFINE_TIED_PROJECT(fe_tied_project8_f32, float, fe_nf, n32, 8)
FE_DEFINE_TIED_PROJECT(fe_tied_project16_f32, float, fe_nf, n32, 16)


#define FE_DEFINE_ESTEP_CHOL_DISPATCH(NAME, T, SFX)                          \
static void NAME(const T *xcT, ptrdiff_t nb, int D, int K, int lower,       \
                 const T *Lp, const T *cp, const double *const_k, T *lp)    \
{                                                                           \
    switch (fe_estep_chol_width(D)) {                                       \
    case 4: fe_estep_chol4_##SFX(xcT, nb, D, K, lower, Lp, cp, const_k, lp); break; \
    case 8: fe_estep_chol8_##SFX(xcT, nb, D, K, lower, Lp, cp, const_k, lp); break; \
    default: fe_estep_chol16_##SFX(xcT, nb, D, K, lower, Lp, cp, const_k, lp); break; \
    }                                                                       \
}
FE_DEFINE_ESTEP_CHOL_DISPATCH(fe_estep_chol_f64, double, f64)
FE_DEFINE_ESTEP_CHOL_DISPATCH(fe_estep_chol_f32, float, f32)

#define FE_DEFINE_TIED_PROJECT_DISPATCH(NAME, T, SFX)                        \
static void NAME(const T *xcT, ptrdiff_t nb, int D, int lower, const T *L,  \
                 T *yT)                                                     \
{                                                                           \
    switch (fe_estep_chol_width(D)) {                                       \
    case 4: fe_tied_project4_##SFX(xcT, nb, D, lower, L, yT); break;        \
    case 8: fe_tied_project8_##SFX(xcT, nb, D, lower, L, yT); break;        \
    default: fe_tied_project16_##SFX(xcT, nb, D, lower, L, yT); break;      \
    }                                                                       \
}
FE_DEFINE_TIED_PROJECT_DISPATCH(fe_tied_project_f64, double, f64)
FE_DEFINE_TIED_PROJECT_DISPATCH(fe_tied_project_f32, float, f32)

/* ---------------------------------------------------------------------------
 * Fused E-step of 'diag' and 'spherical' for D <= 16: a block of VL rows of
 * xcT is loaded once into DD vectors x_d and, for every component,
 *   q = sum_d t_d^2 (float64)  with t_d = x_d u_kd - v_kd, u = sqrt(p),
 *                              v = (mu - c) sqrt(p): two multiplications
 *                              and two additions per term (rounded one by
 *                              one: the build does not contract them);
 *   q = sum_d (x_d - u_kd)^2 v_kd (float32) with u = mu - c, v = p: the
 *                              difference is taken first, so that float32
 *                              keeps its digits for points far from c;
 * accumulates in registers, and lp = const_k - q / 2 is stored. U, V:
 * K x DD, zero-padded (padded terms are exact zeros). Sums run over d in
 * order. Spherical float32 with R != NULL: q = p_k r with r = |x - mu_k|^2
 * (V holds p_k at index 0), and r is stored in R (K x nb) for
 * fe_stats_sph_f32.
 * ------------------------------------------------------------------------- */
#define FE_DEFINE_ESTEP_DIAG(NAME, T, VT, SUFFIX, DD, FMAFORM)               \
FE_HOT static void NAME(const T *restrict xcT, ptrdiff_t nb, int D, int K,  \
                        const T *restrict U, const T *restrict V,           \
                        const double *restrict const_k, T *restrict lp,     \
                        T *restrict R)                                      \
{                                                                           \
    enum { VL = sizeof(VT) / sizeof(T) };                                    \
    T tmp[VL];                                                              \
    for (ptrdiff_t b0 = 0; b0 < nb; b0 += VL) {                             \
        const ptrdiff_t nv = nb - b0 < VL ? nb - b0 : VL;                   \
        VT x[DD];                                                           \
        for (int i = 0; i < DD; ++i) {                                      \
            if (i < D && nv == VL) {                                        \
                x[i] = fe_vload_##SUFFIX(xcT + (ptrdiff_t)i * nb + b0);      \
            } else {                                                        \
                for (int l = 0; l < VL; ++l)                                \
                    tmp[l] = (i < D && l < nv) ? xcT[(ptrdiff_t)i * nb + b0 + l] : (T)0; \
                x[i] = fe_vload_##SUFFIX(tmp);                               \
            }                                                               \
        }                                                                   \
        for (int k = 0; k < K; ++k) {                                       \
            const T *restrict u = U + (ptrdiff_t)k * DD;                    \
            const T *restrict v = V + (ptrdiff_t)k * DD;                    \
            VT acc = {0};                                                   \
            if (R != NULL && !FMAFORM) {                                    \
                /* spherical, float32: r = |x - mu|^2 is kept (the       \
                 * statistics need it) and q = p r */                       \
                _Pragma("GCC unroll 16")                                    \
                for (int d = 0; d < DD; ++d) {                              \
                    const VT t = x[d] - u[d];                               \
                    acc += t * t;                                           \
                }                                                           \
                if (nv == VL) {                                             \
                    fe_vstore_##SUFFIX(R + (ptrdiff_t)k * nb + b0, acc);     \
                } else {                                                    \
                    fe_vstore_##SUFFIX(tmp, acc);                            \
                    for (int l = 0; l < nv; ++l) R[(ptrdiff_t)k * nb + b0 + l] = tmp[l]; \
                }                                                           \
                acc = acc * v[0];                                           \
            } else {                                                        \
                _Pragma("GCC unroll 16")                                    \
                for (int d = 0; d < DD; ++d) {                              \
                    if (FMAFORM) {                                          \
                        const VT t = x[d] * u[d] - v[d];                    \
                        acc += t * t;                                       \
                    } else {                                                \
                        const VT t = x[d] - u[d];                           \
                        acc += (t * t) * v[d];                              \
                    }                                                       \
                }                                                           \
            }                                                               \
            const VT out = (T)const_k[k] - (T)0.5 * acc;                    \
            if (nv == VL) {                                                 \
                fe_vstore_##SUFFIX(lp + (ptrdiff_t)k * nb + b0, out);        \
            } else {                                                        \
                fe_vstore_##SUFFIX(tmp, out);                                \
                for (int l = 0; l < nv; ++l) lp[(ptrdiff_t)k * nb + b0 + l] = tmp[l]; \
            }                                                               \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_ESTEP_DIAG(fe_estep_diag4_f64, double, fe_nd, n64, 4, 1)
FE_DEFINE_ESTEP_DIAG(fe_estep_diag8_f64, double, fe_nd, n64, 8, 1)
FE_DEFINE_ESTEP_DIAG(fe_estep_diag16_f64, double, fe_nd, n64, 16, 1)
FE_DEFINE_ESTEP_DIAG(fe_estep_diag4_f32, float, fe_nf, n32, 4, 0)
FE_DEFINE_ESTEP_DIAG(fe_estep_diag8_f32, float, fe_nf, n32, 8, 0)
FE_DEFINE_ESTEP_DIAG(fe_estep_diag16_f32, float, fe_nf, n32, 16, 0)

#define FE_DEFINE_ESTEP_DIAG_DISPATCH(NAME, T, SFX)                          \
static void NAME(const T *xcT, ptrdiff_t nb, int D, int K, const T *U,       \
                 const T *V, const double *const_k, T *lp, T *R)            \
{                                                                           \
    switch (fe_estep_chol_width(D)) {                                       \
    case 4: fe_estep_diag4_##SFX(xcT, nb, D, K, U, V, const_k, lp, R); break; \
    case 8: fe_estep_diag8_##SFX(xcT, nb, D, K, U, V, const_k, lp, R); break; \
    default: fe_estep_diag16_##SFX(xcT, nb, D, K, U, V, const_k, lp, R); break; \
    }                                                                       \
}
FE_DEFINE_ESTEP_DIAG_DISPATCH(fe_estep_diag_f64, double, f64)
FE_DEFINE_ESTEP_DIAG_DISPATCH(fe_estep_diag_f32, float, f32)

#endif /* FE_VECTOR_EXT */

#include "csrc/fe_gmm_ref.h"
#include "csrc/fe_gram.h"

#endif
