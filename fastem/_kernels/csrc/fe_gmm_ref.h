/* Scalar references of the vector kernels of fe_gmm.h.
 *
 * Each fe_<name>_ref_f32 / _f64 computes what fe_<name>_f32 / _f64 computes
 * with GCC/clang generic vectors, one lane at a time: the same operations on
 * the same operands in the same order, and so (without floating-point
 * contraction) the same results bit for bit. A vector's lane is one row of
 * the chunk in the fused E-steps and in the lane sums of fe_moments and
 * fe_stats_sph_f32, one feature (column) in fe_stats_full and
 * fe_stats_diag_f32, and one of four rows of one feature in
 * fe_stats_diag_T_f64. Included by fe_gmm.h after the vector kernels; where
 * the compiler has no generic vectors (FE_VECTOR_EXT == 0, see
 * fe_platform.h) the vector names below are these references.
 * tests/kernels/test_csrc_references.py compares each pair on edge sizes.
 */
#ifndef FE_GMM_REF_H
#define FE_GMM_REF_H

/* Full covariance statistics (see FE_DEFINE_STATS_FULL): for each pair
 * i <= j < D, S2_k[i, j] = sum over sub-blocks of float64(sum_b gz_bi z_bj)
 * with z_b = x_b - m_k and gz_b = z_b g_b in the data's precision; S1 the
 * same with gz_bj alone. Z and GZ (the vector kernel's scratch) are not
 * used. */
#define FE_DEFINE_STATS_FULL_REF(NAME, T, SUM)                               \
FE_HOT static inline void NAME(const T *restrict xp, ptrdiff_t nb, int D, int Dp,  \
                        int K, const T *restrict mp, const T *restrict gT,  \
                        T *restrict Z, T *restrict GZ, double *restrict slot, \
                        ptrdiff_t P)                                        \
{                                                                           \
    const ptrdiff_t SB = FE_SUBBLOCK(T);                                    \
    (void)Z; (void)GZ;                                                      \
    for (int k = 0; k < K; ++k) {                                           \
        const T *restrict g = gT + (ptrdiff_t)k * nb;                       \
        const T *restrict m = mp + (ptrdiff_t)k * Dp;                       \
        double *restrict out = slot + (ptrdiff_t)k * P;                     \
        out[0] += SUM(g, nb);                                               \
        for (int j = 0; j < D; ++j) {                                       \
            double s1 = 0.0;                                                \
            for (ptrdiff_t b0 = 0; b0 < nb; b0 += SB) {                     \
                const ptrdiff_t b1 = b0 + SB < nb ? b0 + SB : nb;           \
                T acc = 0;                                                  \
                for (ptrdiff_t b = b0; b < b1; ++b)                         \
                    acc += (xp[b * Dp + j] - m[j]) * g[b];                  \
                s1 += (double)acc;                                          \
            }                                                               \
            out[1 + j] += s1;                                               \
        }                                                                   \
        for (int i = 0; i < D; ++i) {                                       \
            double *restrict row = out + 1 + D                              \
                + (ptrdiff_t)i * D - (ptrdiff_t)i * (i - 1) / 2 - i;        \
            for (int j = i; j < D; ++j) {                                   \
                double s2 = 0.0;                                            \
                for (ptrdiff_t b0 = 0; b0 < nb; b0 += SB) {                 \
                    const ptrdiff_t b1 = b0 + SB < nb ? b0 + SB : nb;       \
                    T acc = 0;                                              \
                    for (ptrdiff_t b = b0; b < b1; ++b) {                   \
                        const T gzi = (xp[b * Dp + i] - m[i]) * g[b];       \
                        acc += gzi * (xp[b * Dp + j] - m[j]);               \
                    }                                                       \
                    s2 += (double)acc;                                      \
                }                                                           \
                row[j] += s2;                                               \
            }                                                               \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_STATS_FULL_REF(fe_stats_full_ref_f32, float, fe_sum_f32)
FE_DEFINE_STATS_FULL_REF(fe_stats_full_ref_f64, double, fe_sum_f64)

/* fe_stats_full16_f32 computes the same sums as fe_stats_full_f32 on rows
 * padded to 16 (its rows i >= 8 only take the columns j >= 8 they need) */
static inline void fe_stats_full16_ref_f32(const float *xp, ptrdiff_t nb, int D, int K,
                                    const float *mp, const float *gT, float *GZ,
                                    double *slot, ptrdiff_t P)
{
    fe_stats_full_ref_f32(xp, nb, D, 16, K, mp, gT, NULL, GZ, slot, P);
}

/* Diag / spherical statistics (see FE_DEFINE_STATS_DIAG and
 * fe_stats_diag_T_f64): per feature j and sub-block, four accumulator pairs
 * take the rows b0 + 4q + r (the tail rows go to pair 0) and are added as
 * (0 + 1) + (2 + 3). Element (b, j) of the chunk is xp[b rs + j cs] (rows:
 * rs = Dp, cs = 1; transposed: rs = 1, cs = nb), centre k's feature j is
 * mp[k ms + j]. */
#define FE_DEFINE_STATS_DIAG_STRIDED_REF(NAME, T, SUM)                       \
FE_HOT static inline void NAME(const T *restrict xp, ptrdiff_t rs, ptrdiff_t cs, \
                        ptrdiff_t nb, int D, int K, int spherical,          \
                        const T *restrict mp, ptrdiff_t ms,                 \
                        const T *restrict gT, double *restrict slot,        \
                        ptrdiff_t P)                                        \
{                                                                           \
    const ptrdiff_t SB = FE_SUBBLOCK(T);                                    \
    for (int k = 0; k < K; ++k) {                                           \
        const T *restrict g = gT + (ptrdiff_t)k * nb;                       \
        const T *restrict m = mp + (ptrdiff_t)k * ms;                       \
        double *restrict out = slot + (ptrdiff_t)k * P;                     \
        out[0] += SUM(g, nb);                                               \
        double sph = 0.0;                                                   \
        for (int j = 0; j < D; ++j) {                                       \
            double d1 = 0.0, d2 = 0.0;                                      \
            for (ptrdiff_t b0 = 0; b0 < nb; b0 += SB) {                     \
                const ptrdiff_t b1 = b0 + SB < nb ? b0 + SB : nb;           \
                T s1[4] = {0, 0, 0, 0}, s2[4] = {0, 0, 0, 0};               \
                ptrdiff_t b = b0;                                           \
                for (; b + 4 <= b1; b += 4)                                 \
                    for (int r = 0; r < 4; ++r) {                           \
                        const T z = xp[(b + r) * rs + j * cs] - m[j]; \
                        const T gz = z * g[b + r];                          \
                        s1[r] += gz;                                        \
                        s2[r] += gz * z;                                    \
                    }                                                       \
                for (; b < b1; ++b) {                                       \
                    const T z = xp[b * rs + j * cs] - m[j];         \
                    const T gz = z * g[b];                                  \
                    s1[0] += gz;                                            \
                    s2[0] += gz * z;                                        \
                }                                                           \
                d1 += (double)((s1[0] + s1[1]) + (s1[2] + s1[3]));          \
                d2 += (double)((s2[0] + s2[1]) + (s2[2] + s2[3]));          \
            }                                                               \
            out[1 + j] += d1;                                               \
            if (spherical) sph += d2;                                       \
            else out[1 + D + j] += d2;                                      \
        }                                                                   \
        if (spherical) out[1 + D] += sph;                                   \
    }                                                                       \
}
FE_DEFINE_STATS_DIAG_STRIDED_REF(fe_stats_diag_strided_ref_f32, float, fe_sum_f32)
FE_DEFINE_STATS_DIAG_STRIDED_REF(fe_stats_diag_strided_ref_f64, double, fe_sum_f64)

/* reference of fe_stats_diag_f32 (rows padded to Dp) */
static inline void fe_stats_diag_ref_f32(const float *xp, ptrdiff_t nb, int D, int Dp,
                                         int K, int spherical, const float *mp,
                                         const float *gT, double *slot, ptrdiff_t P)
{
    fe_stats_diag_strided_ref_f32(xp, Dp, 1, nb, D, K, spherical, mp, Dp, gT, slot, P);
}

/* reference of fe_stats_diag_T_f64 (transposed chunk, K x D centres) */
static inline void fe_stats_diag_T_ref_f64(const double *xT, ptrdiff_t nb, int D, int K,
                                           int spherical, const double *mu,
                                           const double *gT, double *slot, ptrdiff_t P)
{
    fe_stats_diag_strided_ref_f64(xT, 1, nb, nb, D, K, spherical, mu, D, gT, slot, P);
}

/* x[0 .. DD) = row b of the transposed chunk xcT (D x nb), zero-padded
 * from D to DD: the row the fused E-step references work on, as the vector
 * kernels hold it in DD lanes. */
#define FE_DEFINE_PADDED_ROW(NAME, T)                                        \
static inline void NAME(const T *restrict xcT, ptrdiff_t nb, ptrdiff_t b,   \
                        int D, int DD, T *restrict x)                       \
{                                                                           \
    for (int i = 0; i < DD; ++i)                                            \
        x[i] = i < D ? xcT[(ptrdiff_t)i * nb + b] : (T)0;                   \
}
FE_DEFINE_PADDED_ROW(fe_padded_row_f64, double)
FE_DEFINE_PADDED_ROW(fe_padded_row_f32, float)

/* Fused E-step of 'full' (see FE_DEFINE_ESTEP_CHOL), one row at a time: x
 * is the row zero-padded to DD, the residual y_kd - crow_kd starts from
 * x_i0 L_k[i0, d] - crow_kd and adds x_i L_k[i, d] over the rest of i <= d
 * (upper factors) or i >= d (lower), in order of i, and the squared
 * residuals add up in order of d. */
#define FE_DEFINE_ESTEP_CHOL_REF(NAME, T, PADDED_ROW)                        \
FE_HOT static inline void NAME(const T *restrict xcT, ptrdiff_t nb, int D, int K,  \
                        int lower, const T *restrict Lp,                    \
                        const T *restrict cp, const double *restrict const_k, \
                        T *restrict lp)                                     \
{                                                                           \
    const int DD = fe_estep_chol_width(D);                                  \
    T x[16];                                                                \
    for (ptrdiff_t b = 0; b < nb; ++b) {                                    \
        PADDED_ROW(xcT, nb, b, D, DD, x);                                   \
        for (int k = 0; k < K; ++k) {                                       \
            const T *restrict L = Lp + (ptrdiff_t)k * DD * DD;              \
            const T *restrict c = cp + (ptrdiff_t)k * DD;                   \
            T acc = 0;                                                      \
            for (int d = 0; d < DD; ++d) {                                  \
                const int i0 = lower ? d : 0;                               \
                T t = x[i0] * L[i0 * DD + d] - c[d];                        \
                for (int i = i0 + 1; i < (lower ? DD : d + 1); ++i)         \
                    t += x[i] * L[i * DD + d];                              \
                acc += t * t;                                               \
            }                                                               \
            lp[(ptrdiff_t)k * nb + b] = (T)const_k[k] - (T)0.5 * acc;       \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_ESTEP_CHOL_REF(fe_estep_chol_ref_f64, double, fe_padded_row_f64)
FE_DEFINE_ESTEP_CHOL_REF(fe_estep_chol_ref_f32, float, fe_padded_row_f32)

/* The 'tied' projection (see FE_DEFINE_TIED_PROJECT), one row at a time:
 * yT[d, b] sums x_i L[i, d] over the factor's triangle, in order of i. */
#define FE_DEFINE_TIED_PROJECT_REF(NAME, T, PADDED_ROW)                      \
FE_HOT static inline void NAME(const T *restrict xcT, ptrdiff_t nb, int D,  \
                        int lower, const T *restrict L, T *restrict yT)     \
{                                                                           \
    const int DD = fe_estep_chol_width(D);                                  \
    T x[16];                                                                \
    for (ptrdiff_t b = 0; b < nb; ++b) {                                    \
        PADDED_ROW(xcT, nb, b, D, DD, x);                                   \
        for (int d = 0; d < D; ++d) {                                       \
            T s = 0;                                                        \
            for (int i = lower ? d : 0; i < (lower ? DD : d + 1); ++i)      \
                s += x[i] * L[i * DD + d];                                  \
            yT[(ptrdiff_t)d * nb + b] = s;                                  \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_TIED_PROJECT_REF(fe_tied_project_ref_f64, double, fe_padded_row_f64)
FE_DEFINE_TIED_PROJECT_REF(fe_tied_project_ref_f32, float, fe_padded_row_f32)

/* Fused E-step of 'diag' / 'spherical' (see FE_DEFINE_ESTEP_DIAG), one row
 * at a time, x zero-padded to DD: float64 sums (x_d u_kd - v_kd)^2, float32
 * sums (x_d - u_kd)^2 v_kd, or with R != NULL stores r = sum_d
 * (x_d - u_kd)^2 in R and takes v_k0 r. */
#define FE_DEFINE_ESTEP_DIAG_REF(NAME, T, FMAFORM, PADDED_ROW)               \
FE_HOT static inline void NAME(const T *restrict xcT, ptrdiff_t nb, int D, int K,  \
                        const T *restrict U, const T *restrict V,           \
                        const double *restrict const_k, T *restrict lp,     \
                        T *restrict R)                                      \
{                                                                           \
    const int DD = fe_estep_chol_width(D);                                  \
    T x[16];                                                                \
    for (ptrdiff_t b = 0; b < nb; ++b) {                                    \
        PADDED_ROW(xcT, nb, b, D, DD, x);                                   \
        for (int k = 0; k < K; ++k) {                                       \
            const T *restrict u = U + (ptrdiff_t)k * DD;                    \
            const T *restrict v = V + (ptrdiff_t)k * DD;                    \
            T acc = 0;                                                      \
            if (R != NULL && !FMAFORM) {                                    \
                for (int d = 0; d < DD; ++d) {                              \
                    const T t = x[d] - u[d];                                \
                    acc += t * t;                                           \
                }                                                           \
                R[(ptrdiff_t)k * nb + b] = acc;                             \
                acc = acc * v[0];                                           \
            } else {                                                        \
                for (int d = 0; d < DD; ++d) {                              \
                    if (FMAFORM) {                                          \
                        const T t = x[d] * u[d] - v[d];                     \
                        acc += t * t;                                       \
                    } else {                                                \
                        const T t = x[d] - u[d];                            \
                        acc += (t * t) * v[d];                              \
                    }                                                       \
                }                                                           \
            }                                                               \
            lp[(ptrdiff_t)k * nb + b] = (T)const_k[k] - (T)0.5 * acc;       \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_ESTEP_DIAG_REF(fe_estep_diag_ref_f64, double, 1, fe_padded_row_f64)
FE_DEFINE_ESTEP_DIAG_REF(fe_estep_diag_ref_f32, float, 0, fe_padded_row_f32)

/* 'tied' statistics of float32 data (see fe_stats_tied_f32): the lane sums
 * acc[k, p, l] one lane at a time */
FE_HOT static inline void fe_stats_tied_ref_f32(const float *restrict gT, ptrdiff_t nb, int D, int K,
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
        /* acc[k, p, l] += sum_v gd[k, 8 v + l] fd[p, 8 v + l], v in order */
        for (int k = 0; k < K; ++k)
            for (ptrdiff_t p = 0; p < P; ++p)
                for (int l = 0; l < VL; ++l) {
                    double *restrict a = acc + ((ptrdiff_t)k * P + p) * VL + l;
                    double t = *a;
                    for (int v = 0; v < NVB; ++v)
                        t += gd[(ptrdiff_t)k * RB + v * VL + l] * fd[p * RB + v * VL + l];
                    *a = t;
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

/* Weighted moments (see FE_DEFINE_MOMENTS): the pair sums in 8 lanes,
 * one pair (i, j >= i) and one lane at a time */
#define FE_DEFINE_MOMENTS_REF(NAME, T)                                      \
FE_HOT static inline void NAME(const T *restrict xcT, ptrdiff_t nb, int D,         \
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
        for (int j = i; j < D; ++j) {                                       \
            const double *restrict xj = xd + (ptrdiff_t)j * nb;             \
            for (int l = 0; l < VL; ++l) lanes[l] = 0.0;                    \
            for (ptrdiff_t b = 0; b < nbv; b += VL)                         \
                for (int l = 0; l < VL; ++l) lanes[l] += a[b + l] * xj[b + l]; \
            double u = 0.0;                                                 \
            for (int l = 0; l < VL; ++l) u += lanes[l];                     \
            for (ptrdiff_t b = nbv; b < nb; ++b) u += a[b] * xj[b];         \
            row[j] += u;                                                    \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_MOMENTS_REF(fe_moments_ref_f64, double)
FE_DEFINE_MOMENTS_REF(fe_moments_ref_f32, float)


/* Spherical float32 statistics from the E-step's r (see fe_stats_sph_f32):
 * the 16-lane float32 sums one lane at a time */
FE_HOT static inline void fe_stats_sph_ref_f32(const float *restrict xcT, ptrdiff_t nb, int D, int K,
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
            for (int l = 0; l < VL; ++l) l0[l] = l1[l] = 0.0f;
            for (ptrdiff_t b = b0; b < b1; b += VL)
                for (int l = 0; l < VL; ++l) {
                    l0[l] += g[b + l];
                    l1[l] += g[b + l] * r[b + l];
                }
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
                for (int l = 0; l < VL; ++l) l0[l] = l1[l] = l2[l] = l3[l] = 0.0f;
                for (ptrdiff_t b = b0; b < b1; b += VL)
                    for (int l = 0; l < VL; ++l) {
                        l0[l] += g[b + l] * x0[b + l];
                        l1[l] += g[b + l] * x1[b + l];
                        l2[l] += g[b + l] * x2[b + l];
                        l3[l] += g[b + l] * x3[b + l];
                    }
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

#if !FE_VECTOR_EXT
/* no generic vectors: the kernels are their references */
#define fe_stats_full_f32 fe_stats_full_ref_f32
#define fe_stats_full_f64 fe_stats_full_ref_f64
#define fe_stats_full16_f32 fe_stats_full16_ref_f32
#define FE_STATS_FULL16 0
#define fe_stats_diag_f32 fe_stats_diag_ref_f32
#define fe_stats_diag_T_f64 fe_stats_diag_T_ref_f64
#define fe_estep_chol_f32 fe_estep_chol_ref_f32
#define fe_estep_chol_f64 fe_estep_chol_ref_f64
#define fe_tied_project_f32 fe_tied_project_ref_f32
#define fe_tied_project_f64 fe_tied_project_ref_f64
#define fe_estep_diag_f32 fe_estep_diag_ref_f32
#define fe_logprob_diag_f32 fe_logprob_diag_ref_f32
#define fe_logprob_diag_f64 fe_logprob_diag_ref_f64
#define fe_estep_diag_f64 fe_estep_diag_ref_f64
#define fe_stats_tied_f32 fe_stats_tied_ref_f32
#define fe_moments_f32 fe_moments_ref_f32
#define fe_moments_f64 fe_moments_ref_f64
#define fe_stats_sph_f32 fe_stats_sph_ref_f32
#define fe_center_T_f64 fe_center_T_ref_f64
#define fe_center_T_f32 fe_center_T_ref_f32
#endif

#endif
