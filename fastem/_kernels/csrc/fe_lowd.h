/* The dense Lloyd pass over a chunk at low D, without GEMM and without a
 * distance block: _lloyd.pyx calls it where _kmeans_common.pxd's
 * lowd_path says so (d <= 8 float, d <= 10 double; any d works, d >
 * FE_LOWD_MAX_D by the reference only).
 *
 * What it computes, per row i of the chunk (counted from the chunk's first
 * row), in the data's precision T:
 *
 *     t_j  = (x_j - s_j) - c_j                (s: the frame shift, 0 if none)
 *     dist = ((t_0 t_0 + t_1 t_1) + t_2 t_2) + ...        (j in order)
 *
 * for every centre c, from exact differences: no cancellation, unlike the
 * GEMM path's ||x||^2 - 2 x.c + ||c||^2, so these distances are the more
 * accurate ones. x - s is the value the GEMM path's shifted copy of the
 * chunk holds, computed on the fly: no copy is made. The label is the first
 * centre with the smallest dist (a strict '<' scan over c = 0, 1, ...).
 * Then, in float64, with w the row's weight (1 without weights):
 *
 *     sums[c, j] += w (x_j - s_j),  wsum[c] += w           (rows in order)
 *     inertia[i mod R] += w dist_min
 *     norms[i mod R] += w ||x - s||^2          (with_norms; fe_sqdist_*)
 *
 * R = FE_LOWD_ROWS_* (8 float, 4 double) lanes, the rows of a vector block,
 * so that consecutive rows' additions do not wait on each other; at the end
 * tail[0] += the inertia lanes added by a fixed tree, tail[1] += the labels
 * changed, tail[2] += the norms lanes, the tail of a Lloyd pass's
 * partition slot.
 *
 * fe_lowd_chunk_ref_f32 / _f64 is the plain C reference. With AVX2 (the
 * x86-64-v3/v4 builds) fe_lowd_chunk_f32 / _f64 take whole blocks of R
 * rows, one row per lane: the block's shifted columns are loaded once (a
 * 4 x 4 transpose at d = 4, gathers otherwise) into registers, then every
 * centre's distance is computed in all lanes by the reference's operations
 * in the reference's order (the first term is t_0 t_0 itself, which is
 * 0 + t_0 t_0 exactly), and the running minimum and its index move where
 * the new distance is strictly smaller. Two such chains, centres [0, h)
 * and [h, k) with h = k / 2, keep the compare-and-blend latency off the
 * critical path; the second chain's minimum replaces the first's only
 * where it is strictly smaller, which again gives the first index of the
 * minimum. The block's float64 updates are the reference's element by
 * element, the inertia lanes one vector; rows past the last whole block go
 * through the reference. With AVX-512 (x86-64-v4) float rows go 16 at a
 * time, double rows 8, through the same chains (fe_lowd_block16_f32,
 * fe_lowd_block8_f64: half the vector instructions per row for the
 * distances), then the two halves are updated in row order as two blocks
 * of the AVX2 width would be. Same bits in every build
 * (tests/kernels/test_csrc_references.py). */
#ifndef FE_LOWD_H
#define FE_LOWD_H
#include "csrc/fe_kmeans.h"

/* the widest rows of the low-D path */
#define FE_LOWD_MAX_D 16
/* rows of one vector block, and lanes of the inertia and norms sums */
#define FE_LOWD_ROWS_F32 8
#define FE_LOWD_ROWS_F64 4

/* A chunk's running sums: inertia and norms by row lane (row i of the
 * chunk in lane i mod R), labels changed. */
typedef struct {
    double inertia[8];
    double norms[8];
    double changed;
} fe_lowd_acc;

static inline double fe_lowd_tree(const double *a, int R)
{
    if (R == 8)
        return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    return (a[0] + a[1]) + (a[2] + a[3]);
}

/* tail[0..2] += the chunk's inertia, labels changed, norms */
static inline void fe_lowd_close(const fe_lowd_acc *acc, int R, double *tail)
{
    tail[0] += fe_lowd_tree(acc->inertia, R);
    tail[1] += acc->changed;
    tail[2] += fe_lowd_tree(acc->norms, R);
}

/* The reference: rows i0 .. nb-1 of the chunk (x, sw, labels point at the
 * chunk's first row), each by the scan described above. */
#define FE_DEFINE_LOWD_REF(SUF, T, SQDIST, R)                                \
static inline void                                                          \
fe_lowd_rows_ref_##SUF(const T *x, ptrdiff_t i0, ptrdiff_t nb, ptrdiff_t d,  \
                       ptrdiff_t k, const T *sw, const T *shift,             \
                       const T *centres, int with_norms, int32_t *labels,    \
                       double *sums, double *wsum, fe_lowd_acc *acc)         \
{                                                                           \
    ptrdiff_t i, j, c;                                                      \
    for (i = i0; i < nb; i++) {                                             \
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
        double w = sw != NULL ? (double)sw[i] : 1.0;                        \
        double *sr = sums + arg * d;                                        \
        for (j = 0; j < d; j++)                                             \
            sr[j] += w * (double)(T)(xr[j] - (shift != NULL ? shift[j] : (T)0)); \
        wsum[arg] += w;                                                     \
        acc->inertia[i % R] += w * (double)best;                            \
        if (with_norms)                                                     \
            acc->norms[i % R] += w * (double)SQDIST(xr, shift, d);          \
        if (labels[i] != (int32_t)arg) {                                    \
            acc->changed += 1.0;                                            \
            labels[i] = (int32_t)arg;                                       \
        }                                                                   \
    }                                                                       \
}                                                                           \
                                                                            \
static inline void                                                          \
fe_lowd_chunk_ref_##SUF(const T *x, ptrdiff_t nb, ptrdiff_t d, ptrdiff_t k,  \
                        const T *sw, const T *shift, const T *centres,       \
                        int with_norms, int32_t *labels, double *sums,       \
                        double *wsum, double *tail)                          \
{                                                                           \
    fe_lowd_acc acc;                                                        \
    memset(&acc, 0, sizeof acc);                                            \
    fe_lowd_rows_ref_##SUF(x, 0, nb, d, k, sw, shift, centres, with_norms,  \
                           labels, sums, wsum, &acc);                       \
    fe_lowd_close(&acc, R, tail);                                           \
}

FE_DEFINE_LOWD_REF(f32, float, fe_sqdist_f32, FE_LOWD_ROWS_F32)
FE_DEFINE_LOWD_REF(f64, double, fe_sqdist_f64, FE_LOWD_ROWS_F64)

#if FE_AVX2
#include <immintrin.h>

/* Column J of a block (shifted) in register x<J>, for J < d; d is a
 * compile-time constant at every call (FE_LOWD_SWITCH), so the unused
 * ones vanish and the rest stay in registers. */
#define FE_LOWD_COLS(OP)                                                     \
    OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7)                           \
    OP(8) OP(9) OP(10) OP(11) OP(12) OP(13) OP(14) OP(15)

/* one centre's distances in all lanes: t = x_J - c_J, then v = t t for
 * J = 0 and v += t t for J > 0 (0 + t t is t t exactly) */
#define FE_LOWD_TERM(VEC, SUB, MUL, ADD, SET1, J)                            \
    if (d > J) {                                                              \
        VEC t_ = SUB(x##J, SET1(cr_[J]));                                     \
        v_ = J == 0 ? MUL(t_, t_) : ADD(v_, MUL(t_, t_));                     \
    }

/* The 8 rows of a float block from row i of the chunk after their
 * nearest centres are known (ma: the smallest distances, lab: their
 * first indices): labels, changes, inertia lanes, then the rows' float64
 * updates, the reference's operations element by element. */
static inline __attribute__((always_inline)) void
fe_lowd_update8_f32(const float *x, ptrdiff_t i, ptrdiff_t d, const float *sw,
                    const float *shift, int with_norms, int32_t *labels,
                    double *sums, double *wsum, __m256d *in_lo, __m256d *in_hi,
                    fe_lowd_acc *acc, __m256 ma, __m256i lab)
{
    const float *xb = x + i * d;
    ptrdiff_t r, j;
    /* labels and changes, all 8 rows at once */
    __m256i old = _mm256_loadu_si256((const __m256i *)(labels + i));
    int same = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(lab, old)));
    acc->changed += (double)(8 - __builtin_popcount((unsigned)same));
    _mm256_storeu_si256((__m256i *)(labels + i), lab);
    /* inertia lanes: w * (double)best, lane r for row i + r */
    __m256d wlo = _mm256_set1_pd(1.0), whi = wlo;
    if (sw != NULL) {
        wlo = _mm256_cvtps_pd(_mm_loadu_ps(sw + i));
        whi = _mm256_cvtps_pd(_mm_loadu_ps(sw + i + 4));
    }
    *in_lo = _mm256_add_pd(*in_lo, _mm256_mul_pd(wlo, _mm256_cvtps_pd(_mm256_castps256_ps128(ma))));
    *in_hi = _mm256_add_pd(*in_hi, _mm256_mul_pd(whi, _mm256_cvtps_pd(_mm256_extractf128_ps(ma, 1))));
    /* sums and weights, row by row (4 columns at a time) */
    int32_t arg[8];
    double wr[8];
    _mm256_storeu_si256((__m256i *)arg, lab);
    _mm256_storeu_pd(wr, wlo);
    _mm256_storeu_pd(wr + 4, whi);
    for (r = 0; r < 8; r++) {
        const float *xr = xb + r * d;
        double *sr = sums + (ptrdiff_t)arg[r] * d;
        __m256d w = _mm256_set1_pd(wr[r]);
        for (j = 0; j + 4 <= d; j += 4) {
            __m128 v = _mm_loadu_ps(xr + j);
            if (shift != NULL)
                v = _mm_sub_ps(v, _mm_loadu_ps(shift + j));
            _mm256_storeu_pd(sr + j, _mm256_add_pd(_mm256_loadu_pd(sr + j),
                                                   _mm256_mul_pd(w, _mm256_cvtps_pd(v))));
        }
        for (; j < d; j++)
            sr[j] += wr[r] * (double)(float)(xr[j] - (shift != NULL ? shift[j] : 0.0f));
        wsum[arg[r]] += wr[r];
        if (with_norms)
            acc->norms[r] += wr[r] * (double)fe_sqdist_f32(xr, shift, d);
    }
}

/* The shifted columns of the 8 rows of a float block from xb, in x0..x3
 * (d == 4: two 4 x 4 transposes) or by gathers (x<J> for J < d). */
#define FE_LOWD_LOAD8(xb, d, shift)                                          \
    if (d == 4) {                                                             \
        /* rows r and r + 4 in the two halves, then a 4 x 4 transpose per half */ \
        __m256 a = _mm256_loadu2_m128(xb + 16, xb);                           \
        __m256 b = _mm256_loadu2_m128(xb + 20, xb + 4);                       \
        __m256 e = _mm256_loadu2_m128(xb + 24, xb + 8);                       \
        __m256 f = _mm256_loadu2_m128(xb + 28, xb + 12);                      \
        __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);  \
        __m256 t2 = _mm256_unpacklo_ps(e, f), t3 = _mm256_unpackhi_ps(e, f);  \
        x0 = _mm256_shuffle_ps(t0, t2, 0x44);                                 \
        x1 = _mm256_shuffle_ps(t0, t2, 0xEE);                                 \
        x2 = _mm256_shuffle_ps(t1, t3, 0x44);                                 \
        x3 = _mm256_shuffle_ps(t1, t3, 0xEE);                                 \
        if (shift != NULL) {                                                  \
            x0 = _mm256_sub_ps(x0, _mm256_set1_ps(shift[0]));                 \
            x1 = _mm256_sub_ps(x1, _mm256_set1_ps(shift[1]));                 \
            x2 = _mm256_sub_ps(x2, _mm256_set1_ps(shift[2]));                 \
            x3 = _mm256_sub_ps(x3, _mm256_set1_ps(shift[3]));                 \
        }                                                                     \
    } else {                                                                  \
        const __m256i rows = _mm256_mullo_epi32(                              \
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)d)); \
        FE_LOWD_COLS(FE_LOWD_GATHER8)                                         \
    }
#define FE_LOWD_GATHER8(J)                                                   \
        if (d > J) {                                                          \
            x##J = _mm256_i32gather_ps(xb + J, rows, 4);                      \
            if (shift != NULL)                                                \
                x##J = _mm256_sub_ps(x##J, _mm256_set1_ps(shift[J]));         \
        }

/* The 8 rows of a float block from row i of the chunk: distances to every
 * centre, running minimum and first index in two chains, then
 * fe_lowd_update8_f32. */
static inline __attribute__((always_inline)) void
fe_lowd_block8_f32(const float *x, ptrdiff_t i, ptrdiff_t d, ptrdiff_t k,
                   const float *sw, const float *shift, const float *centres,
                   int with_norms, int32_t *labels, double *sums, double *wsum,
                   __m256d *in_lo, __m256d *in_hi, fe_lowd_acc *acc)
{
    const float *xb = x + i * d;
    ptrdiff_t c, h = k / 2;
#define FE_LOWD_DECL(J) __m256 x##J = _mm256_setzero_ps();
    FE_LOWD_COLS(FE_LOWD_DECL)
#undef FE_LOWD_DECL
    FE_LOWD_LOAD8(xb, d, shift)
#define FE_LOWD_T8(J) FE_LOWD_TERM(__m256, _mm256_sub_ps, _mm256_mul_ps, _mm256_add_ps, \
                                   _mm256_set1_ps, J)
#define FE_LOWD_DIST8(OUT, CR)                                               \
    do {                                                                      \
        const float *cr_ = (CR);                                              \
        __m256 v_ = _mm256_setzero_ps();                                      \
        FE_LOWD_COLS(FE_LOWD_T8)                                              \
        OUT = v_;                                                             \
    } while (0)
    /* min_ps(v, m) is v < m ? v : m: the reference's strict test */
#define FE_LOWD_STEP8(M, I, CV)                                              \
    do {                                                                      \
        __m256 v;                                                             \
        FE_LOWD_DIST8(v, centres + c_ * d);                                   \
        I = _mm256_blendv_ps(I, _mm256_castsi256_ps(CV), _mm256_cmp_ps(v, M, _CMP_LT_OQ)); \
        M = _mm256_min_ps(v, M);                                              \
    } while (0)
    __m256 ma, mb;
    __m256 ia = _mm256_castsi256_ps(_mm256_setzero_si256());
    FE_LOWD_DIST8(ma, centres);
    if (h > 0) {
        const __m256i one = _mm256_set1_epi32(1);
        __m256i ca = _mm256_setzero_si256(), cb = _mm256_set1_epi32((int)h);
        __m256 ib = _mm256_castsi256_ps(cb);
        ptrdiff_t c_;
        FE_LOWD_DIST8(mb, centres + h * d);
        for (c = 1; c < h; c++) {
            ca = _mm256_add_epi32(ca, one);
            cb = _mm256_add_epi32(cb, one);
            c_ = c;
            FE_LOWD_STEP8(ma, ia, ca);
            c_ = h + c;
            FE_LOWD_STEP8(mb, ib, cb);
        }
        if (2 * h < k) {  /* k odd: the second chain's last centre */
            c_ = k - 1;
            FE_LOWD_STEP8(mb, ib, _mm256_set1_epi32((int)(k - 1)));
        }
        __m256 lt = _mm256_cmp_ps(mb, ma, _CMP_LT_OQ);
        ma = _mm256_blendv_ps(ma, mb, lt);
        ia = _mm256_blendv_ps(ia, ib, lt);
    }
#undef FE_LOWD_STEP8
#undef FE_LOWD_DIST8
#undef FE_LOWD_T8
    fe_lowd_update8_f32(x, i, d, sw, shift, with_norms, labels, sums, wsum, in_lo,
                        in_hi, acc, ma, _mm256_castps_si256(ia));
}

#if defined(__AVX512F__)
/* The 16 rows of two float blocks from row i of the chunk (x86-64-v4):
 * fe_lowd_block8_f32's distances and chains with 16 lanes, the columns
 * loaded as two 8-row blocks; then each 8-row half is updated in row order
 * (fe_lowd_update8_f32), as two block8 calls would: the same bits. */
static inline __attribute__((always_inline)) void
fe_lowd_block16_f32(const float *x, ptrdiff_t i, ptrdiff_t d, ptrdiff_t k,
                    const float *sw, const float *shift, const float *centres,
                    int with_norms, int32_t *labels, double *sums, double *wsum,
                    __m256d *in_lo, __m256d *in_hi, fe_lowd_acc *acc)
{
    ptrdiff_t c, h = k / 2;
#define FE_LOWD_DECL(J) __m512 z##J = _mm512_setzero_ps();
    FE_LOWD_COLS(FE_LOWD_DECL)
#undef FE_LOWD_DECL
    {
        const float *xb = x + i * d;
#define FE_LOWD_DECL(J) __m256 x##J = _mm256_setzero_ps();
        FE_LOWD_COLS(FE_LOWD_DECL)
#undef FE_LOWD_DECL
#define FE_LOWD_LOW(J) if (d > J) z##J = _mm512_castps256_ps512(x##J);
#define FE_LOWD_HIGH(J) if (d > J) z##J = _mm512_insertf32x8(z##J, x##J, 1);
        FE_LOWD_LOAD8(xb, d, shift)
        FE_LOWD_COLS(FE_LOWD_LOW)
        xb += 8 * d;
        FE_LOWD_LOAD8(xb, d, shift)
        FE_LOWD_COLS(FE_LOWD_HIGH)
#undef FE_LOWD_LOW
#undef FE_LOWD_HIGH
    }
#define FE_LOWD_T16(J)                                                       \
    if (d > J) {                                                              \
        __m512 t_ = _mm512_sub_ps(z##J, _mm512_set1_ps(cr_[J]));              \
        v_ = J == 0 ? _mm512_mul_ps(t_, t_) : _mm512_add_ps(v_, _mm512_mul_ps(t_, t_)); \
    }
#define FE_LOWD_DIST16(OUT, CR)                                              \
    do {                                                                      \
        const float *cr_ = (CR);                                              \
        __m512 v_ = _mm512_setzero_ps();                                      \
        FE_LOWD_COLS(FE_LOWD_T16)                                             \
        OUT = v_;                                                             \
    } while (0)
    /* min_ps(v, m) is v < m ? v : m: the reference's strict test */
#define FE_LOWD_STEP16(M, I, CV)                                             \
    do {                                                                      \
        __m512 v;                                                             \
        FE_LOWD_DIST16(v, centres + c_ * d);                                  \
        I = _mm512_mask_mov_epi32(I, _mm512_cmp_ps_mask(v, M, _CMP_LT_OQ), CV); \
        M = _mm512_min_ps(v, M);                                              \
    } while (0)
    __m512 ma, mb;
    __m512i ia = _mm512_setzero_si512();
    FE_LOWD_DIST16(ma, centres);
    if (h > 0) {
        const __m512i one = _mm512_set1_epi32(1);
        __m512i ca = _mm512_setzero_si512(), cb = _mm512_set1_epi32((int)h), ib = cb;
        ptrdiff_t c_;
        FE_LOWD_DIST16(mb, centres + h * d);
        for (c = 1; c < h; c++) {
            ca = _mm512_add_epi32(ca, one);
            cb = _mm512_add_epi32(cb, one);
            c_ = c;
            FE_LOWD_STEP16(ma, ia, ca);
            c_ = h + c;
            FE_LOWD_STEP16(mb, ib, cb);
        }
        if (2 * h < k) {  /* k odd: the second chain's last centre */
            c_ = k - 1;
            FE_LOWD_STEP16(mb, ib, _mm512_set1_epi32((int)(k - 1)));
        }
        __mmask16 lt = _mm512_cmp_ps_mask(mb, ma, _CMP_LT_OQ);
        ma = _mm512_mask_mov_ps(ma, lt, mb);
        ia = _mm512_mask_mov_epi32(ia, lt, ib);
    }
#undef FE_LOWD_STEP16
#undef FE_LOWD_DIST16
#undef FE_LOWD_T16
    fe_lowd_update8_f32(x, i, d, sw, shift, with_norms, labels, sums, wsum, in_lo,
                        in_hi, acc, _mm512_castps512_ps256(ma),
                        _mm512_castsi512_si256(ia));
    fe_lowd_update8_f32(x, i + 8, d, sw, shift, with_norms, labels, sums, wsum, in_lo,
                        in_hi, acc, _mm512_extractf32x8_ps(ma, 1),
                        _mm512_extracti32x8_epi32(ia, 1));
}
#endif

/* Whole float blocks from row 0 of the chunk (16 rows at a time with
 * AVX-512, then 8); returns the first row not done. */
static inline __attribute__((always_inline)) ptrdiff_t
fe_lowd_blocks_f32(const float *x, ptrdiff_t nb, ptrdiff_t d, ptrdiff_t k,
                   const float *sw, const float *shift, const float *centres,
                   int with_norms, int32_t *labels, double *sums, double *wsum,
                   __m256d *in_lo, __m256d *in_hi, fe_lowd_acc *acc)
{
    ptrdiff_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= nb; i += 16)
        fe_lowd_block16_f32(x, i, d, k, sw, shift, centres, with_norms, labels, sums,
                            wsum, in_lo, in_hi, acc);
#endif
    for (; i + 8 <= nb; i += 8)
        fe_lowd_block8_f32(x, i, d, k, sw, shift, centres, with_norms, labels, sums,
                           wsum, in_lo, in_hi, acc);
    return i;
}
#undef FE_LOWD_LOAD8
#undef FE_LOWD_GATHER8

/* The 4 rows of a double block from row i of the chunk after their
 * nearest centres are known (ma: the smallest distances, lab: their first
 * indices, 64-bit): inertia lanes, then the rows' updates in order. */
static inline __attribute__((always_inline)) void
fe_lowd_update4_f64(const double *x, ptrdiff_t i, ptrdiff_t d, const double *sw,
                    const double *shift, int with_norms, int32_t *labels,
                    double *sums, double *wsum, __m256d *in_lo, fe_lowd_acc *acc,
                    __m256d ma, __m256i lab)
{
    const double *xb = x + i * d;
    ptrdiff_t r, j;
    long long arg[4];
    double wr[4];
    _mm256_storeu_si256((__m256i *)arg, lab);
    __m256d wv = sw != NULL ? _mm256_loadu_pd(sw + i) : _mm256_set1_pd(1.0);
    _mm256_storeu_pd(wr, wv);
    *in_lo = _mm256_add_pd(*in_lo, _mm256_mul_pd(wv, ma));
    for (r = 0; r < 4; r++) {
        const double *xr = xb + r * d;
        double *sr = sums + (ptrdiff_t)arg[r] * d;
        __m256d w = _mm256_set1_pd(wr[r]);
        for (j = 0; j + 4 <= d; j += 4) {
            __m256d v = _mm256_loadu_pd(xr + j);
            if (shift != NULL)
                v = _mm256_sub_pd(v, _mm256_loadu_pd(shift + j));
            _mm256_storeu_pd(sr + j, _mm256_add_pd(_mm256_loadu_pd(sr + j),
                                                   _mm256_mul_pd(w, v)));
        }
        for (; j < d; j++)
            sr[j] += wr[r] * (xr[j] - (shift != NULL ? shift[j] : 0.0));
        wsum[arg[r]] += wr[r];
        if (with_norms)
            acc->norms[r] += wr[r] * fe_sqdist_f64(xr, shift, d);
        if (labels[i + r] != (int32_t)arg[r]) {
            acc->changed += 1.0;
            labels[i + r] = (int32_t)arg[r];
        }
    }
}

/* The shifted columns of the 4 rows of a double block from xb, in x0..x3
 * (d == 4: a 4 x 4 transpose) or by gathers (x<J> for J < d). */
#define FE_LOWD_LOAD4(xb, d, shift)                                          \
    if (d == 4) {                                                            \
        __m256d a = _mm256_loadu_pd(xb), b = _mm256_loadu_pd(xb + 4);        \
        __m256d e = _mm256_loadu_pd(xb + 8), f = _mm256_loadu_pd(xb + 12);   \
        __m256d t0 = _mm256_unpacklo_pd(a, b), t1 = _mm256_unpackhi_pd(a, b);\
        __m256d t2 = _mm256_unpacklo_pd(e, f), t3 = _mm256_unpackhi_pd(e, f);\
        x0 = _mm256_permute2f128_pd(t0, t2, 0x20);                           \
        x1 = _mm256_permute2f128_pd(t1, t3, 0x20);                           \
        x2 = _mm256_permute2f128_pd(t0, t2, 0x31);                           \
        x3 = _mm256_permute2f128_pd(t1, t3, 0x31);                           \
        if (shift != NULL) {                                                 \
            x0 = _mm256_sub_pd(x0, _mm256_set1_pd(shift[0]));                \
            x1 = _mm256_sub_pd(x1, _mm256_set1_pd(shift[1]));                \
            x2 = _mm256_sub_pd(x2, _mm256_set1_pd(shift[2]));                \
            x3 = _mm256_sub_pd(x3, _mm256_set1_pd(shift[3]));                \
        }                                                                    \
    } else {                                                                 \
        const __m128i rows = _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3),     \
                                             _mm_set1_epi32((int)d));        \
        FE_LOWD_COLS(FE_LOWD_GATHER4)                                        \
    }
#define FE_LOWD_GATHER4(J)                                                   \
        if (d > J) {                                                          \
            x##J = _mm256_i32gather_pd(xb + J, rows, 8);                      \
            if (shift != NULL)                                                \
                x##J = _mm256_sub_pd(x##J, _mm256_set1_pd(shift[J]));         \
        }

/* The 4 rows of a double block from row i of the chunk: distances to every
 * centre, running minimum and first index in two chains, then
 * fe_lowd_update4_f64. */
static inline __attribute__((always_inline)) void
fe_lowd_block4_f64(const double *x, ptrdiff_t i, ptrdiff_t d, ptrdiff_t k,
                   const double *sw, const double *shift, const double *centres,
                   int with_norms, int32_t *labels, double *sums, double *wsum,
                   __m256d *in_lo, __m256d *in_hi, fe_lowd_acc *acc)
{
    const double *xb = x + i * d;
    ptrdiff_t c, h = k / 2;
    (void)in_hi;
#define FE_LOWD_DECL(J) __m256d x##J = _mm256_setzero_pd();
    FE_LOWD_COLS(FE_LOWD_DECL)
#undef FE_LOWD_DECL
    FE_LOWD_LOAD4(xb, d, shift)
#define FE_LOWD_T4(J) FE_LOWD_TERM(__m256d, _mm256_sub_pd, _mm256_mul_pd, _mm256_add_pd, \
                                   _mm256_set1_pd, J)
#define FE_LOWD_DIST4(OUT, CR)                                               \
    do {                                                                      \
        const double *cr_ = (CR);                                             \
        __m256d v_ = _mm256_setzero_pd();                                     \
        FE_LOWD_COLS(FE_LOWD_T4)                                              \
        OUT = v_;                                                             \
    } while (0)
#define FE_LOWD_STEP4(M, I, CV)                                              \
    do {                                                                      \
        __m256d v;                                                            \
        FE_LOWD_DIST4(v, centres + c_ * d);                                   \
        I = _mm256_blendv_pd(I, _mm256_castsi256_pd(CV), _mm256_cmp_pd(v, M, _CMP_LT_OQ)); \
        M = _mm256_min_pd(v, M);                                              \
    } while (0)
    __m256d ma, mb;
    __m256d ia = _mm256_castsi256_pd(_mm256_setzero_si256());
    FE_LOWD_DIST4(ma, centres);
    if (h > 0) {
        const __m256i one = _mm256_set1_epi64x(1);
        __m256i ca = _mm256_setzero_si256(), cb = _mm256_set1_epi64x((long long)h);
        __m256d ib = _mm256_castsi256_pd(cb);
        ptrdiff_t c_;
        FE_LOWD_DIST4(mb, centres + h * d);
        for (c = 1; c < h; c++) {
            ca = _mm256_add_epi64(ca, one);
            cb = _mm256_add_epi64(cb, one);
            c_ = c;
            FE_LOWD_STEP4(ma, ia, ca);
            c_ = h + c;
            FE_LOWD_STEP4(mb, ib, cb);
        }
        if (2 * h < k) {
            c_ = k - 1;
            FE_LOWD_STEP4(mb, ib, _mm256_set1_epi64x((long long)(k - 1)));
        }
        __m256d lt = _mm256_cmp_pd(mb, ma, _CMP_LT_OQ);
        ma = _mm256_blendv_pd(ma, mb, lt);
        ia = _mm256_blendv_pd(ia, ib, lt);
    }
#undef FE_LOWD_STEP4
#undef FE_LOWD_DIST4
#undef FE_LOWD_T4
    fe_lowd_update4_f64(x, i, d, sw, shift, with_norms, labels, sums, wsum, in_lo,
                        acc, ma, _mm256_castpd_si256(ia));
}

#if defined(__AVX512F__)
/* The 8 rows of two double blocks from row i of the chunk (x86-64-v4):
 * fe_lowd_block4_f64's chains with 8 lanes, then each 4-row half updated
 * in row order as two block4 calls would: the same bits. */
static inline __attribute__((always_inline)) void
fe_lowd_block8_f64(const double *x, ptrdiff_t i, ptrdiff_t d, ptrdiff_t k,
                   const double *sw, const double *shift, const double *centres,
                   int with_norms, int32_t *labels, double *sums, double *wsum,
                   __m256d *in_lo, fe_lowd_acc *acc)
{
    ptrdiff_t c, h = k / 2;
#define FE_LOWD_DECL(J) __m512d z##J = _mm512_setzero_pd();
    FE_LOWD_COLS(FE_LOWD_DECL)
#undef FE_LOWD_DECL
    {
        const double *xb = x + i * d;
#define FE_LOWD_DECL(J) __m256d x##J = _mm256_setzero_pd();
        FE_LOWD_COLS(FE_LOWD_DECL)
#undef FE_LOWD_DECL
#define FE_LOWD_LOW(J) if (d > J) z##J = _mm512_castpd256_pd512(x##J);
#define FE_LOWD_HIGH(J) if (d > J) z##J = _mm512_insertf64x4(z##J, x##J, 1);
        FE_LOWD_LOAD4(xb, d, shift)
        FE_LOWD_COLS(FE_LOWD_LOW)
        xb += 4 * d;
        FE_LOWD_LOAD4(xb, d, shift)
        FE_LOWD_COLS(FE_LOWD_HIGH)
#undef FE_LOWD_LOW
#undef FE_LOWD_HIGH
    }
#define FE_LOWD_T8D(J)                                                       \
    if (d > J) {                                                              \
        __m512d t_ = _mm512_sub_pd(z##J, _mm512_set1_pd(cr_[J]));             \
        v_ = J == 0 ? _mm512_mul_pd(t_, t_) : _mm512_add_pd(v_, _mm512_mul_pd(t_, t_)); \
    }
#define FE_LOWD_DIST8D(OUT, CR)                                              \
    do {                                                                      \
        const double *cr_ = (CR);                                             \
        __m512d v_ = _mm512_setzero_pd();                                     \
        FE_LOWD_COLS(FE_LOWD_T8D)                                             \
        OUT = v_;                                                             \
    } while (0)
    /* min_pd(v, m) is v < m ? v : m: the reference's strict test */
#define FE_LOWD_STEP8D(M, I, CV)                                             \
    do {                                                                      \
        __m512d v;                                                            \
        FE_LOWD_DIST8D(v, centres + c_ * d);                                  \
        I = _mm512_mask_mov_epi64(I, _mm512_cmp_pd_mask(v, M, _CMP_LT_OQ), CV); \
        M = _mm512_min_pd(v, M);                                              \
    } while (0)
    __m512d ma, mb;
    __m512i ia = _mm512_setzero_si512();
    FE_LOWD_DIST8D(ma, centres);
    if (h > 0) {
        const __m512i one = _mm512_set1_epi64(1);
        __m512i ca = _mm512_setzero_si512(), cb = _mm512_set1_epi64((long long)h), ib = cb;
        ptrdiff_t c_;
        FE_LOWD_DIST8D(mb, centres + h * d);
        for (c = 1; c < h; c++) {
            ca = _mm512_add_epi64(ca, one);
            cb = _mm512_add_epi64(cb, one);
            c_ = c;
            FE_LOWD_STEP8D(ma, ia, ca);
            c_ = h + c;
            FE_LOWD_STEP8D(mb, ib, cb);
        }
        if (2 * h < k) {  /* k odd: the second chain's last centre */
            c_ = k - 1;
            FE_LOWD_STEP8D(mb, ib, _mm512_set1_epi64((long long)(k - 1)));
        }
        __mmask8 lt = _mm512_cmp_pd_mask(mb, ma, _CMP_LT_OQ);
        ma = _mm512_mask_mov_pd(ma, lt, mb);
        ia = _mm512_mask_mov_epi64(ia, lt, ib);
    }
#undef FE_LOWD_STEP8D
#undef FE_LOWD_DIST8D
#undef FE_LOWD_T8D
    fe_lowd_update4_f64(x, i, d, sw, shift, with_norms, labels, sums, wsum, in_lo, acc,
                        _mm512_castpd512_pd256(ma), _mm512_castsi512_si256(ia));
    fe_lowd_update4_f64(x, i + 4, d, sw, shift, with_norms, labels, sums, wsum, in_lo,
                        acc, _mm512_extractf64x4_pd(ma, 1),
                        _mm512_extracti64x4_epi64(ia, 1));
}
#endif
#undef FE_LOWD_TERM

/* Whole double blocks from row 0 of the chunk (8 rows at a time with
 * AVX-512, then 4); returns the first row not done. */
static inline __attribute__((always_inline)) ptrdiff_t
fe_lowd_blocks_f64(const double *x, ptrdiff_t nb, ptrdiff_t d, ptrdiff_t k,
                   const double *sw, const double *shift, const double *centres,
                   int with_norms, int32_t *labels, double *sums, double *wsum,
                   __m256d *in_lo, __m256d *in_hi, fe_lowd_acc *acc)
{
    ptrdiff_t i = 0;
#if defined(__AVX512F__)
    for (; i + 8 <= nb; i += 8)
        fe_lowd_block8_f64(x, i, d, k, sw, shift, centres, with_norms, labels, sums,
                           wsum, in_lo, acc);
#endif
    for (; i + 4 <= nb; i += 4)
        fe_lowd_block4_f64(x, i, d, k, sw, shift, centres, with_norms, labels, sums,
                           wsum, in_lo, in_hi, acc);
    return i;
}
#undef FE_LOWD_LOAD4
#undef FE_LOWD_GATHER4

/* The chunk: whole blocks with d a compile-time constant, the inertia
 * lanes stored back, the rest of the rows by the reference. */
#define FE_LOWD_CASE(BLOCKS, D)                                              \
    case D:                                                                   \
        i = BLOCKS(x, nb, D, k, sw, shift, centres, with_norms, labels, sums, \
                   wsum, &in_lo, &in_hi, &acc);                               \
        break;
#define FE_DEFINE_LOWD_CHUNK(SUF, T, BLOCKS, R_)                              \
static inline void                                                          \
fe_lowd_chunk_##SUF(const T *x, ptrdiff_t nb, ptrdiff_t d, ptrdiff_t k,      \
                    const T *sw, const T *shift, const T *centres,           \
                    int with_norms, int32_t *labels, double *sums,           \
                    double *wsum, double *tail)                              \
{                                                                           \
    fe_lowd_acc acc;                                                        \
    ptrdiff_t i = 0;                                                        \
    const ptrdiff_t R = R_;                                                 \
    __m256d in_lo = _mm256_setzero_pd(), in_hi = in_lo;                     \
    memset(&acc, 0, sizeof acc);                                            \
    switch (d) {                                                            \
    FE_FOR_D_1_TO_16(FE_LOWD_CASE, BLOCKS)                                  \
    default: break; /* wider rows: the reference */                         \
    }                                                                       \
    _mm256_storeu_pd(acc.inertia, in_lo);                                   \
    _mm256_storeu_pd(acc.inertia + 4, in_hi);                               \
    fe_lowd_rows_ref_##SUF(x, i, nb, d, k, sw, shift, centres, with_norms,  \
                           labels, sums, wsum, &acc);                       \
    fe_lowd_close(&acc, R, tail);                                           \
}
FE_DEFINE_LOWD_CHUNK(f32, float, fe_lowd_blocks_f32, FE_LOWD_ROWS_F32)
FE_DEFINE_LOWD_CHUNK(f64, double, fe_lowd_blocks_f64, FE_LOWD_ROWS_F64)
#undef FE_LOWD_CASE
#undef FE_LOWD_COLS

#else
#define fe_lowd_chunk_f32 fe_lowd_chunk_ref_f32
#define fe_lowd_chunk_f64 fe_lowd_chunk_ref_f64
#endif

#endif
