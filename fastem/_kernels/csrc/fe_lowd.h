/* The dense Lloyd pass over a chunk at low D (d <= FE_LOWD_MAX_D), without
 * GEMM and without a distance block: _lloyd.pyx calls it where
 * _kmeans_common.pxd's lowd_path says so.
 *
 * What it computes, per row i of the chunk, in the data's precision T:
 *
 *     t_j  = (x_j - s_j) - c_j                (s: the frame shift, 0 if none)
 *     dist = ((t_0 t_0 + t_1 t_1) + t_2 t_2) + ...        (j in order)
 *
 * for every centre c, from exact differences: no cancellation, unlike the
 * GEMM path's ||x||^2 - 2 x.c + ||c||^2, so the distances are the more
 * accurate ones (x - s is the value the GEMM path's shifted copy of the
 * chunk holds; the shift is applied on the fly, no copy is made). The label
 * is the first centre with the smallest dist (a strict '<' scan over
 * c = 0, 1, ...). Then, row by row in order, in float64:
 *
 *     sums[c, j] += w (x_j - s_j),  wsum[c] += w,  inertia += w dist_min,
 *     norms += w ||x - s||^2 (with_norms; the lanes of fe_sqdist_*),
 *
 * with the chunk's inertia, label changes and norms added to tail[0..2] at
 * the end (the tail of a Lloyd pass's partition slot).
 *
 * fe_lowd_chunk_ref_f32 / _f64 is the plain C reference. With AVX2 (the
 * x86-64-v3/v4 builds) fe_lowd_chunk_f32 / _f64 take 8 (float) / 4 (double)
 * rows at a time, one row per lane: the block's shifted columns are
 * gathered once, then every centre's distance is computed in all lanes by
 * the reference's operations in the reference's order (the first term is
 * t_0 t_0 itself, which is 0 + t_0 t_0 exactly), and the running minimum
 * and its index move where the new distance is strictly smaller. Two such
 * chains (centres [0, h) and [h, k)) keep the compare-and-blend latency
 * off the critical path; the second one's minimum replaces the first's only
 * where it is strictly smaller, which is again the first index of the
 * minimum. The float64 updates are then the reference's, row by row, and
 * rows past the last whole block go through the reference. Same bits in
 * every build (tests/kernels/test_csrc_references.py). */
#ifndef FE_LOWD_H
#define FE_LOWD_H
#include "csrc/fe_kmeans.h"

/* the widest rows of the low-D path (the gathered columns of one block) */
#define FE_LOWD_MAX_D 16

/* One row's float64 updates (shared by the reference and the AVX2 path).
 * acc: the chunk's [inertia, changed, norms]. */
#define FE_DEFINE_LOWD_UPDATE(SUF, T, SQDIST)                                \
static inline __attribute__((always_inline)) void                            \
fe_lowd_update_##SUF(const T *xr, const T *shift, ptrdiff_t d, double w,     \
                     ptrdiff_t c, T best, int with_norms, double *sums,      \
                     double *wsum, int32_t *label, double *acc)              \
{                                                                           \
    double *sr = sums + c * d;                                              \
    ptrdiff_t j;                                                            \
    if (shift != NULL)                                                      \
        for (j = 0; j < d; j++)                                             \
            sr[j] += w * (double)(T)(xr[j] - shift[j]);                     \
    else                                                                    \
        for (j = 0; j < d; j++)                                             \
            sr[j] += w * (double)xr[j];                                     \
    wsum[c] += w;                                                           \
    acc[0] += w * (double)best;                                             \
    if (with_norms)                                                         \
        acc[2] += w * (double)SQDIST(xr, shift, d);                         \
    if (*label != (int32_t)c) {                                             \
        acc[1] += 1.0;                                                      \
        *label = (int32_t)c;                                                \
    }                                                                       \
}

/* The reference: every row by the scan described above. */
#define FE_DEFINE_LOWD_REF(SUF, T)                                           \
static inline void                                                          \
fe_lowd_rows_ref_##SUF(const T *x, ptrdiff_t nb, ptrdiff_t d, ptrdiff_t k,   \
                       const T *sw, const T *shift, const T *centres,        \
                       int with_norms, int32_t *labels, double *sums,        \
                       double *wsum, double *acc)                            \
{                                                                           \
    ptrdiff_t i, j, c;                                                      \
    for (i = 0; i < nb; i++) {                                              \
        const T *xr = x + i * d;                                            \
        T best = (T)0;                                                      \
        ptrdiff_t arg = 0;                                                  \
        for (c = 0; c < k; c++) {                                           \
            const T *cr = centres + c * d;                                  \
            T dist = (T)0;                                                  \
            for (j = 0; j < d; j++) {                                       \
                T t = (T)(xr[j] - (shift != NULL ? shift[j] : (T)0)) - cr[j]; \
                dist += t * t;                                              \
            }                                                               \
            if (c == 0 || dist < best) {                                    \
                best = dist;                                                \
                arg = c;                                                    \
            }                                                               \
        }                                                                   \
        fe_lowd_update_##SUF(xr, shift, d, sw != NULL ? (double)sw[i] : 1.0, \
                             arg, best, with_norms, sums, wsum, labels + i,  \
                             acc);                                          \
    }                                                                       \
}                                                                           \
                                                                            \
static inline void                                                          \
fe_lowd_chunk_ref_##SUF(const T *x, ptrdiff_t nb, ptrdiff_t d, ptrdiff_t k,  \
                        const T *sw, const T *shift, const T *centres,       \
                        int with_norms, int32_t *labels, double *sums,       \
                        double *wsum, double *tail)                          \
{                                                                           \
    double acc[3] = {0.0, 0.0, 0.0};                                        \
    fe_lowd_rows_ref_##SUF(x, nb, d, k, sw, shift, centres, with_norms,     \
                           labels, sums, wsum, acc);                        \
    tail[0] += acc[0];                                                      \
    tail[1] += acc[1];                                                      \
    tail[2] += acc[2];                                                      \
}

FE_DEFINE_LOWD_UPDATE(f32, float, fe_sqdist_f32)
FE_DEFINE_LOWD_UPDATE(f64, double, fe_sqdist_f64)
FE_DEFINE_LOWD_REF(f32, float)
FE_DEFINE_LOWD_REF(f64, double)

#if FE_AVX2
#include <immintrin.h>

/* One block of 8 float rows (x: its first row): the reference's distances
 * to every centre in the lanes, the running minimum and its first index;
 * then the rows' updates. d is a compile-time constant at the call sites
 * of fe_lowd_chunk_f32 for d <= 8 (the column loops unroll). */
static inline __attribute__((always_inline)) void
fe_lowd_block8_f32(const float *x, ptrdiff_t d, ptrdiff_t k, const float *sw,
                   const float *shift, const float *centres, int with_norms,
                   int32_t *labels, double *sums, double *wsum, double *acc)
{
    __m256 xt[FE_LOWD_MAX_D];
    ptrdiff_t j, c, r, h = k / 2;
    const __m256i rows = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                            _mm256_set1_epi32((int)d));
    for (j = 0; j < d; j++)
        xt[j] = _mm256_sub_ps(_mm256_i32gather_ps(x + j, rows, 4),
                              _mm256_set1_ps(shift != NULL ? shift[j] : 0.0f));
#define FE_LOWD_DIST8(OUT, CR)                                               \
    do {                                                                      \
        const float *cr_ = (CR);                                              \
        __m256 t_ = _mm256_sub_ps(xt[0], _mm256_set1_ps(cr_[0]));             \
        OUT = _mm256_mul_ps(t_, t_);                                          \
        for (j = 1; j < d; j++) {                                             \
            t_ = _mm256_sub_ps(xt[j], _mm256_set1_ps(cr_[j]));                \
            OUT = _mm256_add_ps(OUT, _mm256_mul_ps(t_, t_));                  \
        }                                                                     \
    } while (0)
#define FE_LOWD_STEP8(M, I, C)                                               \
    do {                                                                      \
        __m256 v_;                                                            \
        FE_LOWD_DIST8(v_, centres + (C) * d);                                 \
        __m256 lt_ = _mm256_cmp_ps(v_, M, _CMP_LT_OQ);                        \
        M = _mm256_blendv_ps(M, v_, lt_);                                     \
        I = _mm256_blendv_ps(I, _mm256_castsi256_ps(_mm256_set1_epi32((int)(C))), lt_); \
    } while (0)
    __m256 ma, mb;
    __m256 ia = _mm256_castsi256_ps(_mm256_setzero_si256());
    FE_LOWD_DIST8(ma, centres);
    if (h > 0) {
        __m256 ib = _mm256_castsi256_ps(_mm256_set1_epi32((int)h));
        FE_LOWD_DIST8(mb, centres + h * d);
        for (c = 1; c < h; c++) {
            FE_LOWD_STEP8(ma, ia, c);
            FE_LOWD_STEP8(mb, ib, h + c);
        }
        if (h + c < k)  /* k odd: the second chain's last centre */
            FE_LOWD_STEP8(mb, ib, h + c);
        __m256 lt = _mm256_cmp_ps(mb, ma, _CMP_LT_OQ);
        ma = _mm256_blendv_ps(ma, mb, lt);
        ia = _mm256_blendv_ps(ia, ib, lt);
    }
#undef FE_LOWD_STEP8
#undef FE_LOWD_DIST8
    float best[8];
    int32_t arg[8];
    _mm256_storeu_ps(best, ma);
    _mm256_storeu_si256((__m256i *)arg, _mm256_castps_si256(ia));
    for (r = 0; r < 8; r++)
        fe_lowd_update_f32(x + r * d, shift, d, sw != NULL ? (double)sw[r] : 1.0,
                           arg[r], best[r], with_norms, sums, wsum, labels + r, acc);
}

/* The same for 4 double rows. */
static inline __attribute__((always_inline)) void
fe_lowd_block4_f64(const double *x, ptrdiff_t d, ptrdiff_t k, const double *sw,
                   const double *shift, const double *centres, int with_norms,
                   int32_t *labels, double *sums, double *wsum, double *acc)
{
    __m256d xt[FE_LOWD_MAX_D];
    ptrdiff_t j, c, r, h = k / 2;
    const __m128i rows = _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3),
                                         _mm_set1_epi32((int)d));
    for (j = 0; j < d; j++)
        xt[j] = _mm256_sub_pd(_mm256_i32gather_pd(x + j, rows, 8),
                              _mm256_set1_pd(shift != NULL ? shift[j] : 0.0));
#define FE_LOWD_DIST4(OUT, CR)                                               \
    do {                                                                      \
        const double *cr_ = (CR);                                             \
        __m256d t_ = _mm256_sub_pd(xt[0], _mm256_set1_pd(cr_[0]));            \
        OUT = _mm256_mul_pd(t_, t_);                                          \
        for (j = 1; j < d; j++) {                                             \
            t_ = _mm256_sub_pd(xt[j], _mm256_set1_pd(cr_[j]));                \
            OUT = _mm256_add_pd(OUT, _mm256_mul_pd(t_, t_));                  \
        }                                                                     \
    } while (0)
#define FE_LOWD_STEP4(M, I, C)                                               \
    do {                                                                      \
        __m256d v_;                                                           \
        FE_LOWD_DIST4(v_, centres + (C) * d);                                 \
        __m256d lt_ = _mm256_cmp_pd(v_, M, _CMP_LT_OQ);                       \
        M = _mm256_blendv_pd(M, v_, lt_);                                     \
        I = _mm256_blendv_pd(I, _mm256_castsi256_pd(_mm256_set1_epi64x((long long)(C))), lt_); \
    } while (0)
    __m256d ma, mb;
    __m256d ia = _mm256_castsi256_pd(_mm256_setzero_si256());
    FE_LOWD_DIST4(ma, centres);
    if (h > 0) {
        __m256d ib = _mm256_castsi256_pd(_mm256_set1_epi64x((long long)h));
        FE_LOWD_DIST4(mb, centres + h * d);
        for (c = 1; c < h; c++) {
            FE_LOWD_STEP4(ma, ia, c);
            FE_LOWD_STEP4(mb, ib, h + c);
        }
        if (h + c < k)
            FE_LOWD_STEP4(mb, ib, h + c);
        __m256d lt = _mm256_cmp_pd(mb, ma, _CMP_LT_OQ);
        ma = _mm256_blendv_pd(ma, mb, lt);
        ia = _mm256_blendv_pd(ia, ib, lt);
    }
#undef FE_LOWD_STEP4
#undef FE_LOWD_DIST4
    double best[4];
    long long arg[4];
    _mm256_storeu_pd(best, ma);
    _mm256_storeu_si256((__m256i *)arg, _mm256_castpd_si256(ia));
    for (r = 0; r < 4; r++)
        fe_lowd_update_f64(x + r * d, shift, d, sw != NULL ? sw[r] : 1.0,
                           (ptrdiff_t)arg[r], best[r], with_norms, sums, wsum,
                           labels + r, acc);
}

/* The blocks of a chunk, d a constant for d <= 8 (FE_LOWD_CASE) */
#define FE_LOWD_CASE(BLOCK, D)                                               \
    case D:                                                                   \
        for (; i + R <= nb; i += R)                                           \
            BLOCK(x + i * D, D, k, sw != NULL ? sw + i : NULL, shift, centres, \
                  with_norms, labels + i, sums, wsum, acc);                   \
        break
#define FE_LOWD_SWITCH(BLOCK)                                                \
    switch (d) {                                                              \
    FE_LOWD_CASE(BLOCK, 1); FE_LOWD_CASE(BLOCK, 2); FE_LOWD_CASE(BLOCK, 3);   \
    FE_LOWD_CASE(BLOCK, 4); FE_LOWD_CASE(BLOCK, 5); FE_LOWD_CASE(BLOCK, 6);   \
    FE_LOWD_CASE(BLOCK, 7); FE_LOWD_CASE(BLOCK, 8);                           \
    default:                                                                  \
        for (; i + R <= nb; i += R)                                           \
            BLOCK(x + i * d, d, k, sw != NULL ? sw + i : NULL, shift, centres, \
                  with_norms, labels + i, sums, wsum, acc);                   \
    }

#define FE_DEFINE_LOWD_CHUNK(SUF, T, BLOCK, ROWS)                            \
static inline void                                                          \
fe_lowd_chunk_##SUF(const T *x, ptrdiff_t nb, ptrdiff_t d, ptrdiff_t k,      \
                    const T *sw, const T *shift, const T *centres,           \
                    int with_norms, int32_t *labels, double *sums,           \
                    double *wsum, double *tail)                              \
{                                                                           \
    double acc[3] = {0.0, 0.0, 0.0};                                        \
    ptrdiff_t i = 0;                                                        \
    const ptrdiff_t R = ROWS;                                               \
    if (d <= FE_LOWD_MAX_D) {                                               \
        FE_LOWD_SWITCH(BLOCK)                                               \
    }                                                                       \
    fe_lowd_rows_ref_##SUF(x + i * d, nb - i, d, k,                         \
                           sw != NULL ? sw + i : NULL, shift, centres,      \
                           with_norms, labels + i, sums, wsum, acc);        \
    tail[0] += acc[0];                                                      \
    tail[1] += acc[1];                                                      \
    tail[2] += acc[2];                                                      \
}
FE_DEFINE_LOWD_CHUNK(f32, float, fe_lowd_block8_f32, 8)
FE_DEFINE_LOWD_CHUNK(f64, double, fe_lowd_block4_f64, 4)
#undef FE_LOWD_SWITCH
#undef FE_LOWD_CASE

#else
#define fe_lowd_chunk_f32 fe_lowd_chunk_ref_f32
#define fe_lowd_chunk_f64 fe_lowd_chunk_ref_f64
#endif

#endif
