/* Small SIMD building blocks of the K-means kernels, written in C where
 * Cython cannot say what the vectoriser needs.
 *
 * Every result here is the same bit for bit in every build (baseline,
 * x86-64-v3, x86-64-v4, portable; setup.py compiles them all with
 * -ffp-contract=off): where a vector path exists (AVX2 intrinsics, in the
 * builds whose ISA has AVX2 unless FE_PORTABLE, see fe_platform.h), the
 * plain C reference beside it (fe_<name>_ref_f32 / _f64) does the same
 * operations in the same order, and is what every other build runs.
 * tests/kernels/test_csrc_references.py compares each pair.
 *
 * 1. Squared norms and distances of short vectors, in the data's precision,
 *    in a fixed number of lanes (FE_LANES_F32 = 8 for float,
 *    FE_LANES_F64 = 4 for double, whatever the ISA): lane l sums the
 *    coordinates j = l mod lanes in order, and the lanes are added by a
 *    fixed tree, ((0+1)+(2+3))+((4+5)+(6+7)) or (0+1)+(2+3). The lanes
 *    are one generic vector (GCC left the lane loop scalar), so any width
 *    gives the same result; the AVX2 k-means++ pass below uses the same
 *    lanes and tree.
 *
 * 2. Argmin over one row of a distance block, with AVX2 intrinsics in the
 *    x86-64-v3 builds and AVX-512 ones in the x86-64-v4 builds (GCC does
 *    not vectorise an argmin by itself).
 *
 * 3. The row loop of the k-means++ candidate pass, measuring a row against
 *    all candidates at once (AVX2 in the x86-64-v3/v4 builds), and the
 *    quantised lower bound that spares it most rows (integer dot products
 *    of 7-bit codes, exact in any order).
 */
#ifndef FE_KMEANS_H
#define FE_KMEANS_H
#include "csrc/fe_platform.h"

#define FE_LANES_F32 8
#define FE_LANES_F64 4

static inline float fe_lanes_sum_f32(const float *a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static inline double fe_lanes_sum_f64(const double *a)
{
    return (a[0] + a[1]) + (a[2] + a[3]);
}

/* sum_j (a_j - b_j)^2 (b == NULL: sum_j a_j^2) in LANES lanes, see 1. above:
 * lane l adds the terms j = l mod LANES in order, then LANES_SUM adds the
 * lanes. fe_sqdist_* takes the whole runs of LANES values as one generic
 * vector of LANES lanes (GCC does not vectorise the lane loop by itself: it
 * ran as LANES scalar chains, 3.5x slower at D = 32); the reference
 * fe_sqdist_ref_* (and builds without generic vectors) does the same
 * operations lane by lane. */
#define FE_SQDIST_RUNS_PLAIN(T, LANES, acc, a, b, n, j)                     \
    for (; j + LANES <= n; j += LANES)                                      \
        for (int l = 0; l < LANES; l++) {                                   \
            T d = a[j + l] - (b != NULL ? b[j + l] : (T)0);                 \
            acc[l] += d * d;                                                \
        }
#define FE_SQDIST_RUNS_VEC(T, LANES, acc, a, b, n, j)                       \
    do {                                                                    \
        typedef T fe_sqdist_v __attribute__((vector_size(LANES * sizeof(T)))); \
        fe_sqdist_v va = {0}, vb = {0}, vs = {0};                           \
        for (; j + LANES <= n; j += LANES) {                                \
            memcpy(&va, a + j, sizeof va);                                  \
            if (b != NULL)                                                  \
                memcpy(&vb, b + j, sizeof vb);                              \
            const fe_sqdist_v dv = va - vb;                                 \
            vs += dv * dv;                                                  \
        }                                                                   \
        memcpy(acc, &vs, sizeof vs);                                        \
    } while (0)
#define FE_DEFINE_SQDIST(NAME, T, LANES, LANES_SUM, RUNS)                   \
static inline T NAME(const T *a, const T *b, ptrdiff_t n)                  \
{                                                                           \
    T acc[LANES] = {0};                                                     \
    ptrdiff_t j = 0;                                                       \
    RUNS(T, LANES, acc, a, b, n, j);                                        \
    for (int l = 0; j + l < n; l++) {                                       \
        T d = a[j + l] - (b != NULL ? b[j + l] : (T)0);                     \
        acc[l] += d * d;                                                    \
    }                                                                       \
    return LANES_SUM(acc);                                                  \
}
FE_DEFINE_SQDIST(fe_sqdist_ref_f32, float, FE_LANES_F32, fe_lanes_sum_f32, FE_SQDIST_RUNS_PLAIN)
FE_DEFINE_SQDIST(fe_sqdist_ref_f64, double, FE_LANES_F64, fe_lanes_sum_f64, FE_SQDIST_RUNS_PLAIN)
#if FE_VECTOR_EXT
FE_DEFINE_SQDIST(fe_sqdist_f32, float, FE_LANES_F32, fe_lanes_sum_f32, FE_SQDIST_RUNS_VEC)
FE_DEFINE_SQDIST(fe_sqdist_f64, double, FE_LANES_F64, fe_lanes_sum_f64, FE_SQDIST_RUNS_VEC)
#else
#define fe_sqdist_f32 fe_sqdist_ref_f32
#define fe_sqdist_f64 fe_sqdist_ref_f64
#endif

/* The bounds a bounded Lloyd pass (_bounded.pyx) gives the n rows it
 * searched, from the expansion ||x' - c||^2 = ||x'||^2 + (||c||^2 - 2 x'.c):
 * with xsq[p] = ||x'_p||^2, best[p] and second[p] the tiles' two smallest
 * values ||c||^2 - 2 x'.c, and err2 = err_scale (xsq[p] + csq_max) the bound
 * on the expansion's rounding,
 *     best[p]   <- sqrt(best[p] + xsq[p] + err2) (1 + 1e-6)    (upper)
 *     second[p] <- sqrt(second[p] + xsq[p] - err2) (1 - 1e-6)  (lower)
 * (0 where the radicand is not positive), rounded to T. One row per lane
 * and no sum across rows, so the compiler vectorises the loop (square roots
 * eight or sixteen at a time; FE_HOT and not inline, so that its
 * no-trapping-math holds and the select before the root is vectorised) and
 * every build gives the same bits. Row by row, each row's sum, root and
 * product waited on one another. */
#define FE_DEFINE_EXPANSION_BOUNDS(NAME, T)                                  \
FE_HOT static void NAME(T *restrict best, T *restrict second,              \
                        const double *restrict xsq, ptrdiff_t n,            \
                        double err_scale, double csq_max)                   \
{                                                                           \
    for (ptrdiff_t p = 0; p < n; ++p) {                                     \
        const double err2 = err_scale * (xsq[p] + csq_max);                 \
        const double vu = ((double)best[p] + xsq[p]) + err2;                \
        const double vl = ((double)second[p] + xsq[p]) - err2;              \
        /* a select, then the root of a non-negative value: no branch      \
         * around the root, so the loop vectorises (sqrt(0) = 0) */         \
        const double ru = vu > 0.0 ? vu : 0.0, rl = vl > 0.0 ? vl : 0.0;   \
        best[p] = (T)(sqrt(ru) * (1.0 + 1e-6));                             \
        second[p] = (T)(sqrt(rl) * (1.0 - 1e-6));                           \
    }                                                                       \
}
FE_DEFINE_EXPANSION_BOUNDS(fe_expansion_bounds_f32, float)
FE_DEFINE_EXPANSION_BOUNDS(fe_expansion_bounds_f64, double)

/* Step 1 of a bounded Lloyd pass (_bounded.pyx) where the centres form one
 * group (Hamerly's bounds: one lower bound per row, lower[i * lcols]):
 * every row's bounds moved with the centres and stored, and the rows whose
 * label they do not settle listed. For row i of centre a = labels[i],
 *     u = upper[i] + drift[a],   l = lower[i * lcols] - g_a,
 *     m = max(min(l, inf), half_sep[a])
 * with g_a the largest drift of the other centres (second if a == arg,
 * else mx); upper[i] <- u (1 + eps) and lower <- l (1 - eps) (1 + eps
 * where l <= 0) rounded to T, eps the rounding of T. Row i fails where
 * u > m: its index goes to rows[] and m to m_out[], both in row order
 * from the start; returns their count, or -1 if a label is outside
 * [0, k) (the bounds are then garbage: the pass refuses them).
 *
 * The operations of the row loop of _bounded_chunk for t groups, row by
 * row (the same bits in every build), as two loops: the first, with no
 * branch (a select for g_a, gathers for drift[a] and half_sep[a]), leaves
 * m_out[i] = m where row i fails and NaN elsewhere, and vectorises; the
 * second compacts the failing rows, with a store per row and no branch.
 * K1's shape (N = 1e6, D = 32, K = 64, 2 threads), a pass whose centres
 * did not move (step 1 alone): 2.8 -> 1.35 ms; one whose centres moved so
 * that 5.6 % of rows are searched: 7.6 -> 5.8 ms. */
#define FE_DEFINE_MOVED_BOUNDS(NAME, T, EPS)                                 \
FE_HOT static ptrdiff_t NAME(const int32_t *restrict labels,               \
                             T *restrict upper, T *restrict lower,          \
                             ptrdiff_t lcols, ptrdiff_t nb, ptrdiff_t k,    \
                             const double *restrict drift,                  \
                             const double *restrict half_sep, double mx,    \
                             double second, ptrdiff_t arg,                  \
                             int32_t *restrict rows, double *restrict m_out) \
{                                                                           \
    const double up = 1.0 + EPS, down = 1.0 - EPS;                          \
    ptrdiff_t bad = 0, n = 0;                                               \
    for (ptrdiff_t i = 0; i < nb; ++i) {                                    \
        const int32_t label = labels[i];                                    \
        const int ok = label >= 0 && label < k;                             \
        const int32_t a = ok ? label : 0;                                   \
        bad += !ok;                                                         \
        const double u = (double)upper[i] + drift[a];                       \
        double l = (double)lower[i * lcols] - (a == arg ? second : mx);     \
        lower[i * lcols] = (T)(l * (l > 0.0 ? down : up));                  \
        l = l < INFINITY ? l : INFINITY;                                    \
        const double m = l > half_sep[a] ? l : half_sep[a];                 \
        upper[i] = (T)(u * up);                                             \
        m_out[i] = u > m ? m : NAN;                                         \
    }                                                                       \
    if (bad)                                                                \
        return -1;                                                          \
    for (ptrdiff_t i = 0; i < nb; ++i) {                                    \
        rows[n] = (int32_t)i;                                               \
        m_out[n] = m_out[i];                                                \
        n += m_out[i] == m_out[i];                                          \
    }                                                                       \
    return n;                                                               \
}
FE_DEFINE_MOVED_BOUNDS(fe_moved_bounds_f32, float, 2.4e-7)
FE_DEFINE_MOVED_BOUNDS(fe_moved_bounds_f64, double, 4.5e-16)

/* ||(x - shift) - c||^2 in float64 from exact differences (shift may be
 * NULL): four sums over j mod 4 (the terms past the last four go to the
 * first), then (s0 + s1) + (s2 + s3); a bounded pass's exact distance to a
 * row's own centre (_bounded.pyx). fe_frame_sqdist_* holds the four sums
 * as the lanes of one vector of doubles, the reference fe_frame_sqdist_ref_*
 * (and builds without generic vectors) as four scalars: the same
 * operations lane by lane. */
#define FE_FRAME_SQDIST_RUNS_PLAIN(T, s, x, shift, c, d, j)                 \
    for (; j + 4 <= d; j += 4)                                              \
        for (int l = 0; l < 4; ++l) {                                       \
            double t = (double)x[j + l];                                    \
            if (shift != NULL)                                              \
                t = t - (double)shift[j + l];                               \
            t = t - (double)c[j + l];                                       \
            s[l] += t * t;                                                  \
        }
#define FE_FRAME_SQDIST_RUNS_VEC(T, s, x, shift, c, d, j)                   \
    do {                                                                    \
        typedef T fe_fs_in __attribute__((vector_size(4 * sizeof(T))));     \
        typedef double fe_fs_v __attribute__((vector_size(32)));            \
        fe_fs_in vx, vs = {0}, vc;                                          \
        fe_fs_v acc = {0};                                                  \
        for (; j + 4 <= d; j += 4) {                                        \
            memcpy(&vx, x + j, sizeof vx);                                  \
            memcpy(&vc, c + j, sizeof vc);                                  \
            fe_fs_v t = __builtin_convertvector(vx, fe_fs_v);               \
            if (shift != NULL) {                                            \
                memcpy(&vs, shift + j, sizeof vs);                          \
                t = t - __builtin_convertvector(vs, fe_fs_v);               \
            }                                                               \
            t = t - __builtin_convertvector(vc, fe_fs_v);                   \
            acc += t * t;                                                   \
        }                                                                   \
        memcpy(s, &acc, sizeof acc);                                        \
    } while (0)
#define FE_DEFINE_FRAME_SQDIST(NAME, T, RUNS)                                \
static inline double NAME(const T *x, const T *shift, const T *c, ptrdiff_t d) \
{                                                                           \
    double s[4] = {0};                                                      \
    ptrdiff_t j = 0;                                                        \
    RUNS(T, s, x, shift, c, d, j);                                          \
    for (; j < d; ++j) {                                                    \
        double t = (double)x[j];                                            \
        if (shift != NULL)                                                  \
            t = t - (double)shift[j];                                       \
        t = t - (double)c[j];                                               \
        s[0] += t * t;                                                      \
    }                                                                       \
    return (s[0] + s[1]) + (s[2] + s[3]);                                   \
}
FE_DEFINE_FRAME_SQDIST(fe_frame_sqdist_ref_f32, float, FE_FRAME_SQDIST_RUNS_PLAIN)
FE_DEFINE_FRAME_SQDIST(fe_frame_sqdist_ref_f64, double, FE_FRAME_SQDIST_RUNS_PLAIN)
#if FE_VECTOR_EXT
FE_DEFINE_FRAME_SQDIST(fe_frame_sqdist_f32, float, FE_FRAME_SQDIST_RUNS_VEC)
FE_DEFINE_FRAME_SQDIST(fe_frame_sqdist_f64, double, FE_FRAME_SQDIST_RUNS_VEC)
#else
#define fe_frame_sqdist_f32 fe_frame_sqdist_ref_f32
#define fe_frame_sqdist_f64 fe_frame_sqdist_ref_f64
#endif

static inline float fe_sqnorm_f32(const float *a, ptrdiff_t n)
{
    return fe_sqdist_f32(a, NULL, n);
}

static inline double fe_sqnorm_f64(const double *a, ptrdiff_t n)
{
    return fe_sqdist_f64(a, NULL, n);
}

/* k-means++ seeding: squared distances from one row x to each of several
 * candidate rows c_0, c_1, ... (stored one after another, d values each),
 * sum_j (x_j - c_lj)^2 in the data's precision (fe_kpp_rows_*), and to
 * one centre (fe_sqdist_*, used to apply the chosen one).
 *
 * With AVX2 (the x86-64-v3/v4 builds), each block of 8 (float) or 4
 * (double) coordinates of x is loaded once and used for up to 8 / 4
 * candidates, each with its own vector accumulator (acc_l += diff * diff,
 * rounded twice like the plain C, blocks in order; the ragged end of a row
 * is a masked load, whose zero lanes add exactly 0). The accumulators are reduced together by a
 * transposing hadd tree, which adds the lanes of every candidate in the same
 * fixed order, ((0+1)+(2+3))+((4+5)+(6+7)) (float) or (0+1)+(2+3) (double),
 * whatever its slot or the number of candidates: a distance does not depend
 * on which other candidates were measured with it, so fe_sqdist (one
 * candidate) gives bit for bit the value the candidate pass compared. On
 * typical data a row that one candidate may beat is not ruled out for most
 * of the others either, so measuring all candidates in one sweep (sharing
 * the loads of x and the reductions, with no unpredictable branch per
 * candidate) beats measuring only the candidates a bound does not rule out.
 * The lanes and the tree are those of fe_sqdist_* (1. above), which is
 * the plain C reference of this pass (fe_kpp_rows_ref_*). */

/* The candidate pass over the rows todo[0..n_todo) of a chunk that the
 * pruning bounds kept (see _kpp_candidates_chunk in _kmeans.pyx): improves[i]
 * gets bit fe_cand_bit(l) for each candidate l with ||x_i - q_l||^2 <
 * closest_i, and sums[l] = sum_t w_i min(closest_i, ||x_i - q_l||^2), the
 * rows' closest distances if q_l were chosen, summed in double in the order
 * of todo. Squared distances of float64 data are rounded to float32 first in
 * sums (as closest will be), and kept in double in pots (the potentials that
 * choose the candidate). Squared distances of float64 data are first
 * multiplied by ``scale`` (a power of two chosen from the data's spread,
 * see greedy_kmeans_plusplus): exact, and it keeps them inside float32's
 * range whatever the data's scale. Rows are prefetched
 * FE_KPP_PREFETCH_ROWS ahead: after pruning they no longer form the
 * sequential stream the hardware prefetcher follows. The loops that do
 * less per row (the bounded Lloyd pass's exact distances, applying a
 * chosen centre) prefetch FE_PREFETCH_ROWS ahead. Measured with the whole
 * lines prefetched (fe_prefetch_row), greedy k-means++ at N=1e6, D=64,
 * K=1024 float32, 2 threads on 2 Zen 5 cores, 8 / 16 / 32 rows ahead:
 * 9.1 / 8.3 / 8.2 s (12.0 s before fe_prefetch_row took the rows' last
 * lines); the bounded passes of compare.py's kmeans workload (N=1e6,
 * D=32, K=64, 20 iterations) 196 / 197-210 / 212-215 ms. */
#define FE_KPP_PREFETCH_ROWS 32
#define FE_PREFETCH_ROWS 16

static inline uint16_t fe_cand_bit(ptrdiff_t l)
{
    /* candidates 15 and up share the last bit */
    return (uint16_t)(1u << (l < 15 ? l : 15));
}

/* Every cache line that bytes row .. row + nbytes - 1 touch, from the line
 * holding the first byte: numpy aligns arrays to 16 bytes only, and a row
 * that does not start on a line boundary spans one line more than
 * nbytes / 64 (prefetching row + 0, 64, 128 and 192 of a 256-byte row at
 * offset 16 left its fifth line to a demand miss on every row). */
static inline void fe_prefetch_row(const void *row, ptrdiff_t nbytes)
{
    const char *line = (const char *)((uintptr_t)row & ~(uintptr_t)63);
    const char *end = (const char *)row + nbytes;
    for (; line < end; line += 64)
        FE_PREFETCH_L1(line);
}

/* k-means++: the quantised lower bound on a row's candidate distances.
 *
 * Each row x of the data has a 7-bit code x~ (codes, one byte per feature,
 * zero-padded to dp, a multiple of FE_KPP_QBLOCK bytes) with
 * x = lo + step * x~ + r_x (lo per feature, step one scalar for all
 * features), its integer squared norm |x~|^2 (cnorm) and an upper bound on
 * |r_x| (cerr, rounded up). For a candidate q (a row too, its code q~ as
 * int8: the same values 0..127), lo cancels in x - q, so by the triangle
 * inequality
 *
 *     |x - q| >= step |x~ - q~| - |r_x| - |r_q|,
 *
 * and |x~ - q~|^2 = |x~|^2 + |q~|^2 - 2 x~.q~ exactly in int32 (127^2 per
 * product; pairs of products fit int16 for _mm256_maddubs_epi16). A
 * candidate cannot beat the row's closest distance cur (its computed
 * squared distance v is >= cur, so min(v, cur) = cur) when
 *
 *     |x~ - q~|^2 >= ((sqrt(cur * cur_factor) + |r_x| + |r_q|) / step)^2 * FE_KPP_QSLACK
 *
 * where cur_factor = margin / scale covers the rounding of v (computed in
 * the data's precision, then multiplied by scale) and FE_KPP_QSLACK the
 * float32 rounding of the right-hand side (a few ulps). The test reads 1/4
 * (float32) or 1/8 (float64) of the row's bytes; maybe[t] = 0 when no
 * candidate can beat row todo[t], 1 when it has to be measured. Integer
 * sums are exact in any order and the float32 operations are the same in
 * the reference and the vector path, so both give the same maybe. The
 * candidate arrays (qcodes, qnorm, qerr) hold L rows padded to a multiple
 * of 8 (the vector path reads 8 at a time and ignores the padding). */
#define FE_KPP_QBLOCK 32
#define FE_KPP_QSLACK 1.00001f

static inline float fe_kpp_qbase(float cur, double cur_factor, float err)
{
    return (float)sqrt((double)cur * cur_factor) + err;
}

static inline float fe_kpp_qthreshold(float base, float qerr, float inv_step)
{
    float u = (base + qerr) * inv_step;
    return (u * u) * FE_KPP_QSLACK;
}

static inline void fe_kpp_qbound_ref(const uint8_t *codes, ptrdiff_t dp,
                                     const int32_t *cnorm, const float *cerr,
                                     const int32_t *todo, ptrdiff_t n_todo,
                                     const float *closest, double cur_factor,
                                     const int8_t *qcodes, const int32_t *qnorm,
                                     const float *qerr, ptrdiff_t L, float inv_step,
                                     uint8_t *maybe)
{
    ptrdiff_t t, l, j;
    for (t = 0; t < n_todo; t++) {
        ptrdiff_t i = todo[t];
        const uint8_t *x = codes + i * dp;
        float base = fe_kpp_qbase(closest[i], cur_factor, cerr[i]);
        int any = 0;
        for (l = 0; l < L; l++) {
            const int8_t *q = qcodes + l * dp;
            int32_t dot = 0;
            for (j = 0; j < dp; j++)
                dot += (int32_t)x[j] * (int32_t)q[j];
            int32_t dt = cnorm[i] + qnorm[l] - 2 * dot;
            any |= (float)dt < fe_kpp_qthreshold(base, qerr[l], inv_step);
        }
        maybe[t] = (uint8_t)any;
    }
}

/* The plain C candidate pass: every candidate by fe_sqdist_* */
#define FE_KPP_ROWS_GENERIC(T, SQDIST)                                    \
    ptrdiff_t t, l;                                                          \
    for (l = 0; l < L; l++) {                                                 \
        sums[l] = 0.0;                                                        \
        if (pots != NULL)                                                     \
            pots[l] = 0.0;                                                    \
    }                                                                         \
    for (t = 0; t < n_todo; t++) {                                            \
        if (t + FE_KPP_PREFETCH_ROWS < n_todo)                                \
            fe_prefetch_row(x + (ptrdiff_t)todo[t + FE_KPP_PREFETCH_ROWS] * d, \
                                d * (ptrdiff_t)sizeof(T));                   \
        ptrdiff_t i = todo[t];                                               \
        double cur = closest[i];                                              \
        double w = sw != NULL ? (double)sw[i] : 1.0;                          \
        uint16_t mask = 0;                                                    \
        for (l = 0; l < L; l++) {                                             \
            T v = (T)(scale * SQDIST(x + i * d, cand + l * d, d));            \
            float f = (float)v;                                               \
            if (v < cur)                                                      \
                mask |= fe_cand_bit(l);                                   \
            if (pots != NULL)                                                 \
                pots[l] += w * (v < cur ? (double)v : cur);                   \
            sums[l] += w * (f < cur ? (double)f : cur);                       \
        }                                                                     \
        improves[i] = mask;                                                   \
    }

static inline void fe_kpp_rows_ref_f32(const float *x, ptrdiff_t d, const int32_t *todo,
                                           ptrdiff_t n_todo, const float *closest,
                                           const float *sw, const float *cand, ptrdiff_t L,
                                           uint16_t *improves, double *sums)
{
    double *pots = NULL;
    const double scale = 1.0;
    FE_KPP_ROWS_GENERIC(float, fe_sqdist_f32)
}

static inline void fe_kpp_rows_ref_f64(const double *x, ptrdiff_t d, const int32_t *todo,
                                           ptrdiff_t n_todo, const float *closest,
                                           const double *sw, const double *cand, ptrdiff_t L,
                                           uint16_t *improves, double *sums, double *pots,
                                           double scale)
{
    FE_KPP_ROWS_GENERIC(double, fe_sqdist_f64)
}


#if FE_AVX2
#include <immintrin.h>

static inline __m256i fe_tail_mask8(ptrdiff_t r)
{
    /* lanes 0..r-1 set, 0 <= r < 8 */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256i fe_tail_mask4(ptrdiff_t r)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)r),
                              _mm256_setr_epi64x(0, 1, 2, 3));
}

#define FE_SQD_BLOCK_F32(A, XV, CV)                                        \
    do {                                                                      \
        __m256 df_ = _mm256_sub_ps(XV, CV);                                   \
        A = _mm256_add_ps(A, _mm256_mul_ps(df_, df_));                        \
    } while (0)

/* The 8 candidate sums in a vector, lane l for candidate l (0 in lanes l >=
 * nc). nc in 1..8, a compile-time constant at every call site below so that
 * the accumulators stay in registers. */
static inline __attribute__((always_inline)) __m256
fe_sqdist8_f32(const float *x, const float *c, ptrdiff_t d, int nc)
{
#if defined(__AVX512F__) && defined(__AVX512DQ__)
    /* AVX-512: the same 8 lanes per candidate, two candidates per register
     * (candidate 2p in the low half, 2p + 1 in the high half, x in both),
     * so each sub / mul / add does two candidates' work; the lane sums are
     * then split back into the 8-lane accumulators of the AVX2 path below
     * and reduced by the same tree: the same operations on the same values,
     * bit for bit. */
    __m512 p0 = _mm512_setzero_ps(), p1 = p0, p2 = p0, p3 = p0;
    ptrdiff_t j = 0, r = d & 7;
#define FE_SQD_PAIR_F32(P, XV, C0, C1)                                       \
    do {                                                                      \
        __m512 cv_ = _mm512_insertf32x8(_mm512_castps256_ps512(C0), C1, 1);   \
        __m512 df_ = _mm512_sub_ps(XV, cv_);                                  \
        P = _mm512_add_ps(P, _mm512_mul_ps(df_, df_));                        \
    } while (0)
#define FE_SQD_PAIRS_F32(LOAD)                                               \
    do {                                                                      \
        __m512 xw = _mm512_broadcast_f32x8(xv);                               \
        __m256 zero_ = _mm256_setzero_ps();                                   \
        FE_SQD_PAIR_F32(p0, xw, LOAD(c + j),                                  \
                        nc > 1 ? LOAD(c + d + j) : zero_);                    \
        if (nc > 2) FE_SQD_PAIR_F32(p1, xw, LOAD(c + 2 * d + j),              \
                                    nc > 3 ? LOAD(c + 3 * d + j) : zero_);    \
        if (nc > 4) FE_SQD_PAIR_F32(p2, xw, LOAD(c + 4 * d + j),              \
                                    nc > 5 ? LOAD(c + 5 * d + j) : zero_);    \
        if (nc > 6) FE_SQD_PAIR_F32(p3, xw, LOAD(c + 6 * d + j),              \
                                    nc > 7 ? LOAD(c + 7 * d + j) : zero_);    \
    } while (0)
#define FE_LOADU_PS(p) _mm256_loadu_ps(p)
#define FE_MASKLOAD_PS(p) _mm256_maskload_ps(p, tm)
    for (; j + 8 <= d; j += 8) {
        __m256 xv = _mm256_loadu_ps(x + j);
        FE_SQD_PAIRS_F32(FE_LOADU_PS);
    }
    if (r) {
        __m256i tm = fe_tail_mask8(r);
        __m256 xv = _mm256_maskload_ps(x + j, tm);
        FE_SQD_PAIRS_F32(FE_MASKLOAD_PS);
    }
#undef FE_SQD_PAIRS_F32
#undef FE_SQD_PAIR_F32
#undef FE_LOADU_PS
#undef FE_MASKLOAD_PS
    /* the high half of a pair whose second candidate is beyond nc summed
     * (x - 0)^2: those lanes are set to 0, as in the AVX2 path */
    __m256 a0 = _mm512_castps512_ps256(p0);
    __m256 a1 = nc > 1 ? _mm512_extractf32x8_ps(p0, 1) : _mm256_setzero_ps();
    __m256 a2 = _mm512_castps512_ps256(p1);
    __m256 a3 = nc > 3 ? _mm512_extractf32x8_ps(p1, 1) : _mm256_setzero_ps();
    __m256 a4 = _mm512_castps512_ps256(p2);
    __m256 a5 = nc > 5 ? _mm512_extractf32x8_ps(p2, 1) : _mm256_setzero_ps();
    __m256 a6 = _mm512_castps512_ps256(p3);
    __m256 a7 = nc > 7 ? _mm512_extractf32x8_ps(p3, 1) : _mm256_setzero_ps();
#else
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0,
           a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    ptrdiff_t j = 0, r = d & 7;
#define FE_SQD_ALL_F32(LOAD)                                               \
    do {                                                                      \
        FE_SQD_BLOCK_F32(a0, xv, LOAD(c + j));                            \
        if (nc > 1) FE_SQD_BLOCK_F32(a1, xv, LOAD(c + d + j));            \
        if (nc > 2) FE_SQD_BLOCK_F32(a2, xv, LOAD(c + 2 * d + j));        \
        if (nc > 3) FE_SQD_BLOCK_F32(a3, xv, LOAD(c + 3 * d + j));        \
        if (nc > 4) FE_SQD_BLOCK_F32(a4, xv, LOAD(c + 4 * d + j));        \
        if (nc > 5) FE_SQD_BLOCK_F32(a5, xv, LOAD(c + 5 * d + j));        \
        if (nc > 6) FE_SQD_BLOCK_F32(a6, xv, LOAD(c + 6 * d + j));        \
        if (nc > 7) FE_SQD_BLOCK_F32(a7, xv, LOAD(c + 7 * d + j));        \
    } while (0)
#define FE_LOADU_PS(p) _mm256_loadu_ps(p)
#define FE_MASKLOAD_PS(p) _mm256_maskload_ps(p, tm)
    for (; j + 8 <= d; j += 8) {
        __m256 xv = _mm256_loadu_ps(x + j);
        FE_SQD_ALL_F32(FE_LOADU_PS);
    }
    if (r) {
        __m256i tm = fe_tail_mask8(r);
        __m256 xv = _mm256_maskload_ps(x + j, tm);
        FE_SQD_ALL_F32(FE_MASKLOAD_PS);
    }
#undef FE_SQD_ALL_F32
#undef FE_LOADU_PS
#undef FE_MASKLOAD_PS
#endif
    __m256 t0 = _mm256_hadd_ps(a0, a1);
    __m256 t1 = _mm256_hadd_ps(a2, a3);
    __m256 t2 = _mm256_hadd_ps(a4, a5);
    __m256 t3 = _mm256_hadd_ps(a6, a7);
    t0 = _mm256_hadd_ps(t0, t1);
    t2 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(t0, t2, 0x20),
                         _mm256_permute2f128_ps(t0, t2, 0x31));
}

#define FE_SQD_BLOCK_F64(A, XV, CV)                                        \
    do {                                                                      \
        __m256d df_ = _mm256_sub_pd(XV, CV);                                  \
        A = _mm256_add_pd(A, _mm256_mul_pd(df_, df_));                        \
    } while (0)

/* The 4 candidate sums in a vector; nc in 1..4, a compile-time constant */
static inline __attribute__((always_inline)) __m256d
fe_sqdist4_f64(const double *x, const double *c, ptrdiff_t d, int nc)
{
    ptrdiff_t j = 0, r = d & 3;
#if defined(__AVX512F__)
    /* two candidates per register, as fe_sqdist8_f32 */
    __m512d p0 = _mm512_setzero_pd(), p1 = p0;
#define FE_SQD_PAIR_F64(P, XV, C0, C1)                                       \
    do {                                                                      \
        __m512d cv_ = _mm512_insertf64x4(_mm512_castpd256_pd512(C0), C1, 1);  \
        __m512d df_ = _mm512_sub_pd(XV, cv_);                                 \
        P = _mm512_add_pd(P, _mm512_mul_pd(df_, df_));                        \
    } while (0)
#define FE_SQD_PAIRS_F64(LOAD)                                               \
    do {                                                                      \
        __m512d xw = _mm512_broadcast_f64x4(xv);                              \
        __m256d zero_ = _mm256_setzero_pd();                                  \
        FE_SQD_PAIR_F64(p0, xw, LOAD(c + j), nc > 1 ? LOAD(c + d + j) : zero_); \
        if (nc > 2) FE_SQD_PAIR_F64(p1, xw, LOAD(c + 2 * d + j),              \
                                    nc > 3 ? LOAD(c + 3 * d + j) : zero_);    \
    } while (0)
#define FE_LOADU_PD(p) _mm256_loadu_pd(p)
#define FE_MASKLOAD_PD(p) _mm256_maskload_pd(p, tm)
    for (; j + 4 <= d; j += 4) {
        __m256d xv = _mm256_loadu_pd(x + j);
        FE_SQD_PAIRS_F64(FE_LOADU_PD);
    }
    if (r) {
        __m256i tm = fe_tail_mask4(r);
        __m256d xv = _mm256_maskload_pd(x + j, tm);
        FE_SQD_PAIRS_F64(FE_MASKLOAD_PD);
    }
#undef FE_SQD_PAIRS_F64
#undef FE_SQD_PAIR_F64
#undef FE_LOADU_PD
#undef FE_MASKLOAD_PD
    __m256d a0 = _mm512_castpd512_pd256(p0);
    __m256d a1 = nc > 1 ? _mm512_extractf64x4_pd(p0, 1) : _mm256_setzero_pd();
    __m256d a2 = _mm512_castpd512_pd256(p1);
    __m256d a3 = nc > 3 ? _mm512_extractf64x4_pd(p1, 1) : _mm256_setzero_pd();
#else
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
#define FE_SQD_ALL_F64(LOAD)                                               \
    do {                                                                      \
        FE_SQD_BLOCK_F64(a0, xv, LOAD(c + j));                            \
        if (nc > 1) FE_SQD_BLOCK_F64(a1, xv, LOAD(c + d + j));            \
        if (nc > 2) FE_SQD_BLOCK_F64(a2, xv, LOAD(c + 2 * d + j));        \
        if (nc > 3) FE_SQD_BLOCK_F64(a3, xv, LOAD(c + 3 * d + j));        \
    } while (0)
#define FE_LOADU_PD(p) _mm256_loadu_pd(p)
#define FE_MASKLOAD_PD(p) _mm256_maskload_pd(p, tm)
    for (; j + 4 <= d; j += 4) {
        __m256d xv = _mm256_loadu_pd(x + j);
        FE_SQD_ALL_F64(FE_LOADU_PD);
    }
    if (r) {
        __m256i tm = fe_tail_mask4(r);
        __m256d xv = _mm256_maskload_pd(x + j, tm);
        FE_SQD_ALL_F64(FE_MASKLOAD_PD);
    }
#undef FE_SQD_ALL_F64
#undef FE_LOADU_PD
#undef FE_MASKLOAD_PD
#endif
    /* [a0_01, a1_01 | a0_23, a1_23] and [a2_01, a3_01 | a2_23, a3_23] */
    __m256d t0 = _mm256_hadd_pd(a0, a1);
    __m256d t1 = _mm256_hadd_pd(a2, a3);
    return _mm256_add_pd(_mm256_permute2f128_pd(t0, t1, 0x20),
                         _mm256_permute2f128_pd(t0, t1, 0x31));
}

/* Up to 8 (float) / 4 (double) candidates with a runtime count */
static inline __m256 fe_sqdist8n_f32(const float *x, const float *c,
                                         ptrdiff_t d, ptrdiff_t nc)
{
    switch (nc) {
    case 1: return fe_sqdist8_f32(x, c, d, 1);
    case 2: return fe_sqdist8_f32(x, c, d, 2);
    case 3: return fe_sqdist8_f32(x, c, d, 3);
    case 4: return fe_sqdist8_f32(x, c, d, 4);
    case 5: return fe_sqdist8_f32(x, c, d, 5);
    case 6: return fe_sqdist8_f32(x, c, d, 6);
    case 7: return fe_sqdist8_f32(x, c, d, 7);
    default: return fe_sqdist8_f32(x, c, d, 8);
    }
}

static inline __m256d fe_sqdist4n_f64(const double *x, const double *c,
                                          ptrdiff_t d, ptrdiff_t nc)
{
    switch (nc) {
    case 1: return fe_sqdist4_f64(x, c, d, 1);
    case 2: return fe_sqdist4_f64(x, c, d, 2);
    case 3: return fe_sqdist4_f64(x, c, d, 3);
    default: return fe_sqdist4_f64(x, c, d, 4);
    }
}

static inline __attribute__((always_inline)) void
fe_kpp_rows8_f32(const float *x, ptrdiff_t d, const int32_t *todo,
                     ptrdiff_t n_todo, const float *closest, const float *sw,
                     const float *cand, int nc, uint16_t *improves, double *sums)
{
    ptrdiff_t t;
    int l;
    const int lanes = (1 << nc) - 1;
    /* sums of candidates 0-3 and 4-7, one lane each */
    __m256d k_lo = _mm256_setzero_pd(), k_hi = k_lo;
    double out[8];
    for (t = 0; t < n_todo; t++) {
        if (t + FE_KPP_PREFETCH_ROWS < n_todo)
            fe_prefetch_row(x + (ptrdiff_t)todo[t + FE_KPP_PREFETCH_ROWS] * d,
                                d * (ptrdiff_t)sizeof(float));
        ptrdiff_t i = todo[t];
        __m256 curv = _mm256_set1_ps(closest[i]);
        __m256 dv = fe_sqdist8_f32(x + i * d, cand, d, nc);
        improves[i] = (uint16_t)(_mm256_movemask_ps(_mm256_cmp_ps(dv, curv, _CMP_LT_OQ))
                                 & lanes);
        /* min_ps(a, b) is a < b ? a : b, the same test as the mask's */
        __m256 nv = _mm256_min_ps(dv, curv);
        __m256d wv = _mm256_set1_pd(sw != NULL ? (double)sw[i] : 1.0);
        k_lo = _mm256_add_pd(k_lo, _mm256_mul_pd(wv, _mm256_cvtps_pd(_mm256_castps256_ps128(nv))));
        if (nc > 4)
            k_hi = _mm256_add_pd(k_hi,
                                 _mm256_mul_pd(wv, _mm256_cvtps_pd(_mm256_extractf128_ps(nv, 1))));
    }
    _mm256_storeu_pd(out, k_lo);
    _mm256_storeu_pd(out + 4, k_hi);
    for (l = 0; l < nc; l++)
        sums[l] = out[l];
}

static inline void fe_kpp_rows_f32(const float *x, ptrdiff_t d, const int32_t *todo,
                                       ptrdiff_t n_todo, const float *closest,
                                       const float *sw, const float *cand, ptrdiff_t L,
                                       uint16_t *improves, double *sums)
{
    ptrdiff_t t, g, l;
    switch (L) {
    case 1: fe_kpp_rows8_f32(x, d, todo, n_todo, closest, sw, cand, 1, improves, sums); return;
    case 2: fe_kpp_rows8_f32(x, d, todo, n_todo, closest, sw, cand, 2, improves, sums); return;
    case 3: fe_kpp_rows8_f32(x, d, todo, n_todo, closest, sw, cand, 3, improves, sums); return;
    case 4: fe_kpp_rows8_f32(x, d, todo, n_todo, closest, sw, cand, 4, improves, sums); return;
    case 5: fe_kpp_rows8_f32(x, d, todo, n_todo, closest, sw, cand, 5, improves, sums); return;
    case 6: fe_kpp_rows8_f32(x, d, todo, n_todo, closest, sw, cand, 6, improves, sums); return;
    case 7: fe_kpp_rows8_f32(x, d, todo, n_todo, closest, sw, cand, 7, improves, sums); return;
    case 8: fe_kpp_rows8_f32(x, d, todo, n_todo, closest, sw, cand, 8, improves, sums); return;
    default: break;
    }
    /* more than 8 candidates: groups of 8, the last one partial */
    for (l = 0; l < L; l++)
        sums[l] = 0.0;
    for (t = 0; t < n_todo; t++) {
        if (t + FE_KPP_PREFETCH_ROWS < n_todo)
            fe_prefetch_row(x + (ptrdiff_t)todo[t + FE_KPP_PREFETCH_ROWS] * d,
                                d * (ptrdiff_t)sizeof(float));
        ptrdiff_t i = todo[t];
        float cur = closest[i];
        double w = sw != NULL ? (double)sw[i] : 1.0;
        uint16_t mask = 0;
        for (g = 0; g < L; g += 8) {
            ptrdiff_t nc = L - g < 8 ? L - g : 8;
            float dl[8];
            _mm256_storeu_ps(dl, fe_sqdist8n_f32(x + i * d, cand + g * d, d, nc));
            for (l = 0; l < nc; l++) {
                float v = dl[l];
                if (v < cur)
                    mask |= fe_cand_bit(g + l);
                else
                    v = cur;
                sums[g + l] += w * (double)v;
            }
        }
        improves[i] = mask;
    }
}

static inline void fe_kpp_rows_f64(const double *x, ptrdiff_t d, const int32_t *todo,
                                       ptrdiff_t n_todo, const float *closest,
                                       const double *sw, const double *cand, ptrdiff_t L,
                                       uint16_t *improves, double *sums, double *pots,
                                       double scale)
{
    ptrdiff_t t, g, l;
    for (l = 0; l < L; l++)
        sums[l] = pots[l] = 0.0;
    for (t = 0; t < n_todo; t++) {
        if (t + FE_KPP_PREFETCH_ROWS < n_todo)
            fe_prefetch_row(x + (ptrdiff_t)todo[t + FE_KPP_PREFETCH_ROWS] * d,
                                d * (ptrdiff_t)sizeof(double));
        ptrdiff_t i = todo[t];
        double cur = closest[i];
        double w = sw != NULL ? sw[i] : 1.0;
        uint16_t mask = 0;
        for (g = 0; g < L; g += 4) {
            ptrdiff_t nc = L - g < 4 ? L - g : 4;
            double dl[4];
            _mm256_storeu_pd(dl, fe_sqdist4n_f64(x + i * d, cand + g * d, d, nc));
            for (l = 0; l < nc; l++) {
                double v = scale * dl[l];
                float f = (float)v;
                if (v < cur)
                    mask |= fe_cand_bit(g + l);
                pots[g + l] += w * (v < cur ? v : cur);
                sums[g + l] += w * (f < cur ? (double)f : cur);
            }
        }
        improves[i] = mask;
    }
}

/* The quantised bound (see fe_kpp_qbound_ref) for up to 8 candidates at a
 * time: each 32-byte block of x~ is loaded once and multiplied with every
 * candidate's block (u8 x s8 products, pairs summed to int16, then pairs
 * of those to int32 lanes), and the 8 accumulators are reduced by one
 * transposing hadd tree to the 8 dot products, lane l for candidate l. */
static inline __attribute__((always_inline)) __m256i
fe_kpp_qdots8(const uint8_t *x, const int8_t *q, ptrdiff_t dp, int nc)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    __m256i a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    ptrdiff_t j;
    for (j = 0; j < dp; j += FE_KPP_QBLOCK) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)(x + j));
#define FE_QDOT(A, L_)                                                         \
        A = _mm256_add_epi32(A, _mm256_madd_epi16(_mm256_maddubs_epi16(        \
                xv, _mm256_loadu_si256((const __m256i *)(q + (L_) * dp + j))), ones))
        FE_QDOT(a0, 0);
        if (nc > 1) FE_QDOT(a1, 1);
        if (nc > 2) FE_QDOT(a2, 2);
        if (nc > 3) FE_QDOT(a3, 3);
        if (nc > 4) FE_QDOT(a4, 4);
        if (nc > 5) FE_QDOT(a5, 5);
        if (nc > 6) FE_QDOT(a6, 6);
        if (nc > 7) FE_QDOT(a7, 7);
#undef FE_QDOT
    }
    /* [a0 a1 a2 a3 lane sums of lanes 0-3 | the same of lanes 4-7], ... */
    __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a4, a5), _mm256_hadd_epi32(a6, a7));
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20),
                            _mm256_permute2x128_si256(h0, h1, 0x31));
}

/* Bit l set where candidate g + l of one group of 8 may beat the row
 * (lanes m and up ignored) */
static inline __attribute__((always_inline)) int
fe_kpp_qmask8(const uint8_t *x, const int8_t *q, ptrdiff_t dp, int nc, int m,
              __m256i xn, __m256 base, const int32_t *qnorm, const float *qerr,
              __m256 inv)
{
    __m256i dots = fe_kpp_qdots8(x, q, dp, nc);
    __m256i dt = _mm256_sub_epi32(
        _mm256_add_epi32(xn, _mm256_loadu_si256((const __m256i *)qnorm)),
        _mm256_add_epi32(dots, dots));
    __m256 u = _mm256_mul_ps(_mm256_add_ps(base, _mm256_loadu_ps(qerr)), inv);
    __m256 thr = _mm256_mul_ps(_mm256_mul_ps(u, u), _mm256_set1_ps(FE_KPP_QSLACK));
    return _mm256_movemask_ps(_mm256_cmp_ps(_mm256_cvtepi32_ps(dt), thr, _CMP_LT_OQ))
           & ((1 << m) - 1);
}

/* nc < 8: L = nc candidates, one group; nc == 8: L >= 8 candidates in
 * groups of 8, the last one partial (its padding rows are measured, their
 * lanes ignored) */
static inline __attribute__((always_inline)) void
fe_kpp_qbound8(const uint8_t *codes, ptrdiff_t dp, const int32_t *cnorm,
               const float *cerr, const int32_t *todo, ptrdiff_t n_todo,
               const float *closest, double cur_factor, const int8_t *qcodes,
               const int32_t *qnorm, const float *qerr, ptrdiff_t L, int nc,
               float inv_step, uint8_t *maybe)
{
    ptrdiff_t t, g;
    const __m256 inv = _mm256_set1_ps(inv_step);
    for (t = 0; t < n_todo; t++) {
        if (t + FE_KPP_PREFETCH_ROWS < n_todo)
            fe_prefetch_row(codes + (ptrdiff_t)todo[t + FE_KPP_PREFETCH_ROWS] * dp, dp);
        ptrdiff_t i = todo[t];
        const uint8_t *x = codes + i * dp;
        __m256 base = _mm256_set1_ps(fe_kpp_qbase(closest[i], cur_factor, cerr[i]));
        __m256i xn = _mm256_set1_epi32(cnorm[i]);
        int any;
        if (nc < 8 || L == 8) {
            any = fe_kpp_qmask8(x, qcodes, dp, nc, nc, xn, base, qnorm, qerr, inv);
        } else {
            any = 0;
            for (g = 0; g < L; g += 8)
                any |= fe_kpp_qmask8(x, qcodes + g * dp, dp, 8, L - g < 8 ? (int)(L - g) : 8,
                                     xn, base, qnorm + g, qerr + g, inv);
        }
        maybe[t] = (uint8_t)(any != 0);
    }
}

static inline void fe_kpp_qbound(const uint8_t *codes, ptrdiff_t dp, const int32_t *cnorm,
                                 const float *cerr, const int32_t *todo, ptrdiff_t n_todo,
                                 const float *closest, double cur_factor,
                                 const int8_t *qcodes, const int32_t *qnorm,
                                 const float *qerr, ptrdiff_t L, float inv_step,
                                 uint8_t *maybe)
{
#define FE_QB(NC) fe_kpp_qbound8(codes, dp, cnorm, cerr, todo, n_todo, closest,  \
                                 cur_factor, qcodes, qnorm, qerr, L, NC, inv_step, maybe)
    switch (L) {
    case 1: FE_QB(1); return;
    case 2: FE_QB(2); return;
    case 3: FE_QB(3); return;
    case 4: FE_QB(4); return;
    case 5: FE_QB(5); return;
    case 6: FE_QB(6); return;
    case 7: FE_QB(7); return;
    default: FE_QB(8); return;  /* groups of 8, the last one partial */
    }
#undef FE_QB
}

#else
#define fe_kpp_rows_f32 fe_kpp_rows_ref_f32
#define fe_kpp_rows_f64 fe_kpp_rows_ref_f64
#define fe_kpp_qbound fe_kpp_qbound_ref
#endif

/* Index of the smallest dist[j] + csq[j] over one row (first one on ties,
 * as a plain scan with a strict '<' would give); *best receives the value.
 * Reference: the plain scan. With AVX2: a vector min, then a vector search
 * for the first lane equal to it; values are recomputed identically, so the
 * equality test is exact. */
#define FE_DEFINE_ROW_ARGMIN_REF(NAME, T)                                    \
static inline ptrdiff_t NAME(const T *dist, const T *csq, ptrdiff_t k,      \
                             T *best)                                       \
{                                                                           \
    ptrdiff_t j, arg = 0;                                                   \
    T m = dist[0] + csq[0];                                                 \
    for (j = 1; j < k; j++) {                                               \
        T v = dist[j] + csq[j];                                             \
        if (v < m) {                                                        \
            m = v;                                                          \
            arg = j;                                                        \
        }                                                                   \
    }                                                                       \
    *best = m;                                                              \
    return arg;                                                             \
}
FE_DEFINE_ROW_ARGMIN_REF(fe_row_argmin_ref_f32, float)
FE_DEFINE_ROW_ARGMIN_REF(fe_row_argmin_ref_f64, double)

/* Like fe_row_argmin_*, and also the second smallest value (a tie with
 * the smallest counts: then *second == *best). Used for the lower bounds of
 * the bounded Lloyd passes. float64 has no vector path: fe_row_argmin2_f64
 * is its reference. */
#define FE_DEFINE_ROW_ARGMIN2_REF(NAME, T)                                   \
static inline ptrdiff_t NAME(const T *dist, const T *csq, ptrdiff_t k,      \
                             T *best, T *second)                            \
{                                                                           \
    T m1 = dist[0] + csq[0], m2 = (T)INFINITY;                              \
    ptrdiff_t j, arg = 0;                                                   \
    for (j = 1; j < k; j++) {                                               \
        T v = dist[j] + csq[j];                                             \
        if (v < m1) { m2 = m1; m1 = v; arg = j; }                           \
        else if (v < m2) m2 = v;                                            \
    }                                                                       \
    *best = m1;                                                             \
    *second = m2;                                                           \
    return arg;                                                             \
}
FE_DEFINE_ROW_ARGMIN2_REF(fe_row_argmin2_ref_f32, float)
FE_DEFINE_ROW_ARGMIN2_REF(fe_row_argmin2_ref_f64, double)
#define fe_row_argmin2_f64 fe_row_argmin2_ref_f64

#if FE_AVX2
#include <immintrin.h>

static inline float fe_hmin_ps(__m256 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

#if defined(__AVX512F__)
static inline int fe_reduce_min_epi32_256(__m256i v)
{
    __m128i m = _mm_min_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    m = _mm_min_epi32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm_min_epi32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(m);
}
#endif

static inline double fe_hmin_pd(__m256d v)
{
    __m128d m = _mm_min_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    m = _mm_min_sd(m, _mm_unpackhi_pd(m, m));
    return _mm_cvtsd_f64(m);
}

#if defined(__AVX512F__)
/* AVX-512 (the x86-64-v4 builds): one pass over the row in 16 (float) or
 * 8 (double) lanes. Each lane keeps the smallest value it saw, the index
 * where it first saw it (strict <, as the reference) and, for argmin2, its
 * runner-up (min(m2, max(m1, v)): a value equal to the lane's minimum
 * counts). Then the lanes are merged: the smallest value; the smallest
 * index among the lanes holding it, which is the row's first occurrence
 * (lane l only sees indices j = l mod 16); the second smallest among all
 * runners-up and the minima of the other lanes. The values are the
 * reference's additions dist[j] + csq[j], and min and max are exact, so
 * the results are the reference's. The tail is read by a masked load, +inf
 * past k (a lane that saw nothing keeps +inf and index 0, which merges as
 * the reference's scan of a row of +inf does). */
#include <limits.h>
#define FE_DEFINE_ROW_ARGMIN_512(NAME, T, VT, IT, W, MASK, LOADU, MLOADU,      \
                                 ADD, MINV, MAXV, SET1, CMP_MASK, REDUCE_MIN,  \
                                 IMOV, IADD, ISET1, IREDUCE_MIN, ICMPEQ, FMOV,  \
                                 LANE_INDICES)                                 \
static inline ptrdiff_t NAME(const T *dist, const T *csq, ptrdiff_t k,        \
                             T *best, T *second)                              \
{                                                                             \
    const VT inf = SET1((T)INFINITY);                                         \
    VT m1 = inf, m2 = inf;                                                    \
    IT idx = ISET1(0), jv = LANE_INDICES;                                     \
    const IT step = ISET1(W);                                                 \
    ptrdiff_t j = 0;                                                          \
    for (; j < k; j += W) {                                                   \
        VT v;                                                                 \
        if (j + W <= k) {                                                     \
            v = ADD(LOADU(dist + j), LOADU(csq + j));                         \
        } else {                                                              \
            MASK tail = (MASK)((1u << (k - j)) - 1u);                         \
            v = ADD(MLOADU(inf, tail, dist + j), MLOADU(inf, tail, csq + j)); \
        }                                                                     \
        MASK lt = CMP_MASK(v, m1, _CMP_LT_OQ);                                \
        if (second != NULL)                                                   \
            m2 = MINV(m2, MAXV(m1, v));                                       \
        m1 = FMOV(m1, lt, v);                                                 \
        idx = IMOV(idx, lt, jv);                                              \
        jv = IADD(jv, step);                                                  \
    }                                                                         \
    T b = REDUCE_MIN(m1);                                                     \
    MASK at = CMP_MASK(m1, SET1(b), _CMP_EQ_OQ);                              \
    int arg = IREDUCE_MIN(IMOV(ISET1(INT_MAX), at, idx));                     \
    if (second != NULL) {                                                     \
        MASK lane = at & ICMPEQ(idx, ISET1(arg));                             \
        T r = REDUCE_MIN(m2), o = REDUCE_MIN(FMOV(m1, lane, inf));            \
        *second = o < r ? o : r;                                              \
    }                                                                         \
    *best = b;                                                                \
    return arg;                                                               \
}
FE_DEFINE_ROW_ARGMIN_512(fe_row_argmin_512_f32, float, __m512, __m512i, 16, __mmask16,
                         _mm512_loadu_ps, _mm512_mask_loadu_ps, _mm512_add_ps,
                         _mm512_min_ps, _mm512_max_ps, _mm512_set1_ps,
                         _mm512_cmp_ps_mask, _mm512_reduce_min_ps,
                         _mm512_mask_mov_epi32, _mm512_add_epi32, _mm512_set1_epi32,
                         _mm512_reduce_min_epi32, _mm512_cmpeq_epi32_mask,
                         _mm512_mask_mov_ps,
                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                           13, 14, 15))
FE_DEFINE_ROW_ARGMIN_512(fe_row_argmin_512_f64, double, __m512d, __m256i, 8, __mmask8,
                         _mm512_loadu_pd, _mm512_mask_loadu_pd, _mm512_add_pd,
                         _mm512_min_pd, _mm512_max_pd, _mm512_set1_pd,
                         _mm512_cmp_pd_mask, _mm512_reduce_min_pd,
                         _mm256_mask_mov_epi32, _mm256_add_epi32, _mm256_set1_epi32,
                         fe_reduce_min_epi32_256, _mm256_cmpeq_epi32_mask,
                         _mm512_mask_mov_pd, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#endif

static inline ptrdiff_t fe_row_argmin_f32(const float *dist, const float *csq,
                                          ptrdiff_t k, float *best)
{
#if defined(__AVX512F__)
    return fe_row_argmin_512_f32(dist, csq, k, best, NULL);
#endif
    ptrdiff_t j, arg = 0;
    float m;
    if (k >= 8) {
        __m256 vmin = _mm256_add_ps(_mm256_loadu_ps(dist), _mm256_loadu_ps(csq));
        for (j = 8; j + 8 <= k; j += 8)
            vmin = _mm256_min_ps(vmin, _mm256_add_ps(_mm256_loadu_ps(dist + j),
                                                     _mm256_loadu_ps(csq + j)));
        m = fe_hmin_ps(vmin);
        for (; j < k; j++) {
            float v = dist[j] + csq[j];
            if (v < m)
                m = v;
    }
    __m256 target = _mm256_set1_ps(m);
    for (j = 0; j + 8 <= k; j += 8) {
        __m256 v = _mm256_add_ps(_mm256_loadu_ps(dist + j), _mm256_loadu_ps(csq + j));
        int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, target, _CMP_EQ_OQ));
        if (mask) {
            *best = m;
            return j + __builtin_ctz(mask);
        }
    }
    for (; j < k; j++)
        if (dist[j] + csq[j] == m)
            break;
    *best = m;
    return j;
    }
    /* fewer than 8: the scan of the reference */
    m = dist[0] + csq[0];
    for (j = 1; j < k; j++) {
        float v = dist[j] + csq[j];
        if (v < m) {
            m = v;
            arg = j;
        }
    }
    *best = m;
    return arg;
}

static inline ptrdiff_t fe_row_argmin_f64(const double *dist, const double *csq,
                                          ptrdiff_t k, double *best)
{
#if defined(__AVX512F__)
    return fe_row_argmin_512_f64(dist, csq, k, best, NULL);
#endif
    ptrdiff_t j, arg = 0;
    double m;
    if (k >= 4) {
        __m256d vmin = _mm256_add_pd(_mm256_loadu_pd(dist), _mm256_loadu_pd(csq));
        for (j = 4; j + 4 <= k; j += 4)
            vmin = _mm256_min_pd(vmin, _mm256_add_pd(_mm256_loadu_pd(dist + j),
                                                     _mm256_loadu_pd(csq + j)));
        m = fe_hmin_pd(vmin);
        for (; j < k; j++) {
            double v = dist[j] + csq[j];
            if (v < m)
                m = v;
    }
    __m256d target = _mm256_set1_pd(m);
    for (j = 0; j + 4 <= k; j += 4) {
        __m256d v = _mm256_add_pd(_mm256_loadu_pd(dist + j), _mm256_loadu_pd(csq + j));
        int mask = _mm256_movemask_pd(_mm256_cmp_pd(v, target, _CMP_EQ_OQ));
        if (mask) {
            *best = m;
            return j + __builtin_ctz(mask);
        }
    }
    for (; j < k; j++)
        if (dist[j] + csq[j] == m)
            break;
    *best = m;
    return j;
    }
    /* fewer than 4: the scan of the reference */
    m = dist[0] + csq[0];
    for (j = 1; j < k; j++) {
        double v = dist[j] + csq[j];
        if (v < m) {
            m = v;
            arg = j;
        }
    }
    *best = m;
    return arg;
}

static inline ptrdiff_t fe_row_argmin2_f32(const float *dist, const float *csq,
                                           ptrdiff_t k, float *best, float *second)
{
#if defined(__AVX512F__)
    return fe_row_argmin_512_f32(dist, csq, k, best, second);
#endif
    if (k >= 8) {
        ptrdiff_t j, k8 = k & ~(ptrdiff_t)7;
        __m256 v1 = _mm256_set1_ps(INFINITY), v2 = v1;
        for (j = 0; j < k8; j += 8) {
            __m256 v = _mm256_add_ps(_mm256_loadu_ps(dist + j), _mm256_loadu_ps(csq + j));
            v2 = _mm256_min_ps(v2, _mm256_max_ps(v1, v));
            v1 = _mm256_min_ps(v1, v);
        }
        float m1 = fe_hmin_ps(v1);
        /* second: the lanes' runners-up, and the other lanes' minima */
        int lane = __builtin_ctz(_mm256_movemask_ps(
            _mm256_cmp_ps(v1, _mm256_set1_ps(m1), _CMP_EQ_OQ)));
        float lanes[8];
        _mm256_storeu_ps(lanes, v1);
        lanes[lane] = INFINITY;
        float m2 = fminf(fe_hmin_ps(v2), fe_hmin_ps(_mm256_loadu_ps(lanes)));
        for (j = k8; j < k; j++) {
            float v = dist[j] + csq[j];
            if (v < m1) { m2 = m1; m1 = v; }
            else if (v < m2) m2 = v;
        }
        *second = m2;
        float ignored;
        ptrdiff_t arg = fe_row_argmin_f32(dist, csq, k, &ignored);
        *best = m1;
        return arg;
    }
    /* fewer than 8: the scan of the reference */
    float m1 = dist[0] + csq[0], m2 = INFINITY;
    ptrdiff_t j, arg = 0;
    for (j = 1; j < k; j++) {
        float v = dist[j] + csq[j];
        if (v < m1) { m2 = m1; m1 = v; arg = j; }
        else if (v < m2) m2 = v;
    }
    *best = m1; *second = m2; return arg;
}
#else
#define fe_row_argmin_f32 fe_row_argmin_ref_f32
#define fe_row_argmin_f64 fe_row_argmin_ref_f64
#define fe_row_argmin2_f32 fe_row_argmin2_ref_f32
#endif

#endif
