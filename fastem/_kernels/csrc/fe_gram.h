/* The mixtures' statistics of a chunk about the global shift without a
 * GEMM: S[k, p] (+)= sum_b G[k, b] F[p, b] for K weights rows G (w gamma,
 * K x nb) and P feature rows F (the quadratic features [1; xc; q(xc)],
 * P x nb), both contiguous over the chunk's nb rows.
 *
 * A GEMM (BLAS) packs F, by far the larger operand, into its own layout on
 * every call: at G1 full's shape (P = 153, K = 16) OpenBLAS's packing took
 * a third of the statistics' time. Both operands are already laid out for
 * dot products over b, so here each (k, p) is a dot product of two
 * contiguous rows, accumulated in vector registers, a tile of features by
 * components at a time (AVX-512: 4 x 4 tiles, each step 8 loads and 16
 * fused multiply-adds; AVX2: 2 x 2), and nothing is packed or written
 * back but the K P results.
 *
 * Every build computes each S[k, p] by the same operations, whatever its
 * vector width, so every build gives the same bits:
 *
 *     a_l = fma(F[p, b], G[k, b], a_l)   for b = l, l + 8, ... < nb8,
 *                                         l = 0..7, each a_l from +0
 *                                         (nb8 = nb rounded down to 8)
 *     a_l += a_{l+4} (l < 4), then a_l += a_{l+2} (l < 2), s = a_0 + a_1
 *     s = fma(F[p, b], G[k, b], s)       for b = nb8, ..., nb - 1
 *     S[k, p] = s, or S[k, p] + s when accumulating
 *
 * (eight lanes of partial sums, then a halving tree: on AVX-512 one 512-bit
 * register, the trees of eight of them computed together by shuffles, on
 * AVX2 two 256-bit ones). The plain C
 * reference fe_gram_ref_f64 states it lane by lane; it runs in every other
 * build, compiled for the FMA instruction in the baseline x86-64 build,
 * where the mixtures use it only if the CPU has FMA (fe_gram_enabled) and
 * otherwise the GEMM, as no other build runs there to compare with.
 * tests/kernels/test_csrc_references.py compares the kernel with the
 * reference bit for bit, and both with numpy.
 *
 * Tiles at the edges (P or K not a multiple of the tile) read the last
 * feature / component again in their empty rows and drop those results. */
#ifndef FE_GRAM_H
#define FE_GRAM_H
#include "csrc/fe_platform.h"

#define FE_GRAM_LANES 8

#define FE_DEFINE_GRAM_REF(NAME, ATTR)                                        \
ATTR static void NAME(const double *restrict G, const double *restrict F,   \
                      ptrdiff_t nb, int P, int K, double *restrict S,       \
                      int accumulate)                                       \
{                                                                           \
    const ptrdiff_t nb8 = nb - nb % FE_GRAM_LANES;                          \
    for (int k = 0; k < K; ++k) {                                           \
        const double *restrict g = G + (ptrdiff_t)k * nb;                   \
        for (int p = 0; p < P; ++p) {                                       \
            const double *restrict f = F + (ptrdiff_t)p * nb;               \
            double a[FE_GRAM_LANES] = {0};                                  \
            for (ptrdiff_t b = 0; b < nb8; b += FE_GRAM_LANES)              \
                for (int l = 0; l < FE_GRAM_LANES; ++l)                     \
                    a[l] = fma(f[b + l], g[b + l], a[l]);                   \
            for (int l = 0; l < 4; ++l) a[l] += a[l + 4];                   \
            for (int l = 0; l < 2; ++l) a[l] += a[l + 2];                   \
            double s = a[0] + a[1];                                         \
            for (ptrdiff_t b = nb8; b < nb; ++b) s = fma(f[b], g[b], s);    \
            double *restrict out = S + (ptrdiff_t)k * P + p;                \
            *out = accumulate ? *out + s : s;                               \
        }                                                                   \
    }                                                                       \
}
FE_DEFINE_GRAM_REF(fe_gram_ref_f64, FE_HOT)

#if !FE_PORTABLE && defined(__x86_64__) && !defined(__FMA__)
/* The baseline x86-64 build: fma() is a library call there; the reference
 * is compiled for the instruction instead and used where the CPU has it
 * (as the K-means tiles, csrc/fe_tiles.h). */
FE_DEFINE_GRAM_REF(fe_gram_hwfma_f64, __attribute__((target("fma"))))
#define fe_gram_f64 fe_gram_hwfma_f64
static inline int fe_gram_enabled(void)
{
    return __builtin_cpu_supports("fma") != 0;
}

#else
static inline int fe_gram_enabled(void)
{
    return 1;
}

#if !FE_PORTABLE && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
#include <immintrin.h>

/* fe_g8: the eight lanes a_0..a_7 (one 512-bit register, or two 256-bit
 * ones holding lanes 0-3 and 4-7); fe_g8_sum: the halving tree above. */
#if defined(__AVX512F__)
enum { FE_GRAM_TP = 4, FE_GRAM_TK = 4 };
typedef __m512d fe_g8;
FE_INLINE fe_g8 fe_g8_zero(void) { return _mm512_setzero_pd(); }
FE_INLINE fe_g8 fe_g8_load(const double *p) { return _mm512_loadu_pd(p); }
FE_INLINE fe_g8 fe_g8_fma(fe_g8 a, fe_g8 b, fe_g8 c) { return _mm512_fmadd_pd(a, b, c); }
FE_INLINE __m256d fe_g8_fold(fe_g8 a)
{
    return _mm256_add_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1));
}
#else
enum { FE_GRAM_TP = 2, FE_GRAM_TK = 2 };
typedef struct { __m256d lo, hi; } fe_g8;
FE_INLINE fe_g8 fe_g8_zero(void)
{
    fe_g8 r = {_mm256_setzero_pd(), _mm256_setzero_pd()};
    return r;
}
FE_INLINE fe_g8 fe_g8_load(const double *p)
{
    fe_g8 r = {_mm256_loadu_pd(p), _mm256_loadu_pd(p + 4)};
    return r;
}
FE_INLINE fe_g8 fe_g8_fma(fe_g8 a, fe_g8 b, fe_g8 c)
{
    fe_g8 r = {_mm256_fmadd_pd(a.lo, b.lo, c.lo), _mm256_fmadd_pd(a.hi, b.hi, c.hi)};
    return r;
}
FE_INLINE __m256d fe_g8_fold(fe_g8 a) { return _mm256_add_pd(a.lo, a.hi); }
#endif

#if defined(__AVX512F__)
/* The tree of eight accumulators A..H at once, each stage one addition of
 * two shuffled vectors (lanes as letters, x' the stage's partial sums):
 *   [A0..3 B0..3] + [A4..7 B4..7]        = [A'0..3 B'0..3]   (a_l + a_{l+4})
 *   [A'01 B'01 C'01 D'01] + [A'23 ...]   = [A"0 A"1 B"0 ...] (+ a_{l+2})
 *   unpacklo + unpackhi of ABCD and EFGH = [A E B F C G D H] (a_0 + a_1)
 * 7 additions and 14 shuffles for 8 sums instead of 8 x 3 additions and
 * 8 x 4 extractions: at G1 full's chunks (112 rows) each accumulator sees
 * only 14 fused multiply-adds. */
FE_INLINE __m512d fe_g8_tree8(const __m512d a[8])
{
    __m512d s1[4], s2[2];
    for (int q = 0; q < 4; ++q)   /* pairs (A, B), (C, D), (E, F), (G, H) */
        s1[q] = _mm512_add_pd(_mm512_shuffle_f64x2(a[2 * q], a[2 * q + 1], 0x44),
                              _mm512_shuffle_f64x2(a[2 * q], a[2 * q + 1], 0xEE));
    for (int q = 0; q < 2; ++q)   /* (AB, CD), (EF, GH) */
        s2[q] = _mm512_add_pd(_mm512_shuffle_f64x2(s1[2 * q], s1[2 * q + 1], 0x88),
                              _mm512_shuffle_f64x2(s1[2 * q], s1[2 * q + 1], 0xDD));
    return _mm512_add_pd(_mm512_unpacklo_pd(s2[0], s2[1]), _mm512_unpackhi_pd(s2[0], s2[1]));
}

/* sums[i][j] = the tree of acc[i][j], two feature rows (8 accumulators) at
 * a time: row i's four components are A..D, row i + 1's E..H. */
FE_INLINE void fe_g8_sums(fe_g8 acc[FE_GRAM_TP][FE_GRAM_TK],
                          double sums[FE_GRAM_TP][FE_GRAM_TK])
{
    for (int i = 0; i < FE_GRAM_TP; i += 2) {
        const __m512d a[8] = {acc[i][0], acc[i][1], acc[i][2], acc[i][3],
                              acc[i + 1][0], acc[i + 1][1], acc[i + 1][2], acc[i + 1][3]};
        double t[8];
        _mm512_storeu_pd(t, fe_g8_tree8(a));   /* [A E B F C G D H] */
        for (int j = 0; j < 4; ++j) {
            sums[i][j] = t[2 * j];
            sums[i + 1][j] = t[2 * j + 1];
        }
    }
}
/* A whole tile without a tail: each tree's [A E B F C G D H] holds, per
 * 128-bit lane j, rows i and i + 1 of component k0 + j, adjacent in S. */
FE_INLINE void fe_g8_store_tile(fe_g8 acc[FE_GRAM_TP][FE_GRAM_TK], double *restrict S,
                                int P, int accumulate)
{
    for (int i = 0; i < FE_GRAM_TP; i += 2) {
        const __m512d a[8] = {acc[i][0], acc[i][1], acc[i][2], acc[i][3],
                              acc[i + 1][0], acc[i + 1][1], acc[i + 1][2], acc[i + 1][3]};
        const __m512d t = fe_g8_tree8(a);
        __m128d pair[4] = {_mm512_castpd512_pd128(t), _mm512_extractf64x2_pd(t, 1),
                           _mm512_extractf64x2_pd(t, 2), _mm512_extractf64x2_pd(t, 3)};
        for (int j = 0; j < 4; ++j) {
            double *out = S + (ptrdiff_t)j * P + i;
            _mm_storeu_pd(out, accumulate ? _mm_add_pd(_mm_loadu_pd(out), pair[j]) : pair[j]);
        }
    }
}
#else
FE_INLINE double fe_g8_sum(fe_g8 a)
{
    const __m256d t4 = fe_g8_fold(a);                       /* a_l + a_{l+4} */
    const __m128d t2 = _mm_add_pd(_mm256_castpd256_pd128(t4),
                                  _mm256_extractf128_pd(t4, 1)); /* + a_{l+2} */
    return _mm_cvtsd_f64(t2) + _mm_cvtsd_f64(_mm_unpackhi_pd(t2, t2));
}

FE_INLINE void fe_g8_sums(fe_g8 acc[FE_GRAM_TP][FE_GRAM_TK],
                          double sums[FE_GRAM_TP][FE_GRAM_TK])
{
    for (int i = 0; i < FE_GRAM_TP; ++i)
        for (int j = 0; j < FE_GRAM_TK; ++j) sums[i][j] = fe_g8_sum(acc[i][j]);
}
#endif

FE_HOT static void fe_gram_f64(const double *restrict G, const double *restrict F,
                               ptrdiff_t nb, int P, int K, double *restrict S,
                               int accumulate)
{
    const ptrdiff_t nb8 = nb - nb % FE_GRAM_LANES;
    for (int p0 = 0; p0 < P; p0 += FE_GRAM_TP) {
        const double *f[FE_GRAM_TP];
        for (int i = 0; i < FE_GRAM_TP; ++i)
            f[i] = F + (ptrdiff_t)(p0 + i < P ? p0 + i : P - 1) * nb;
        for (int k0 = 0; k0 < K; k0 += FE_GRAM_TK) {
            const double *g[FE_GRAM_TK];
            for (int j = 0; j < FE_GRAM_TK; ++j)
                g[j] = G + (ptrdiff_t)(k0 + j < K ? k0 + j : K - 1) * nb;
            fe_g8 acc[FE_GRAM_TP][FE_GRAM_TK];
            _Pragma("GCC unroll 4")
            for (int i = 0; i < FE_GRAM_TP; ++i)
                _Pragma("GCC unroll 4")
                for (int j = 0; j < FE_GRAM_TK; ++j) acc[i][j] = fe_g8_zero();
            for (ptrdiff_t b = 0; b < nb8; b += FE_GRAM_LANES) {
                fe_g8 fv[FE_GRAM_TP], gv[FE_GRAM_TK];
                _Pragma("GCC unroll 4")
                for (int i = 0; i < FE_GRAM_TP; ++i) fv[i] = fe_g8_load(f[i] + b);
                _Pragma("GCC unroll 4")
                for (int j = 0; j < FE_GRAM_TK; ++j) gv[j] = fe_g8_load(g[j] + b);
                _Pragma("GCC unroll 4")
                for (int i = 0; i < FE_GRAM_TP; ++i)
                    _Pragma("GCC unroll 4")
                    for (int j = 0; j < FE_GRAM_TK; ++j)
                        acc[i][j] = fe_g8_fma(fv[i], gv[j], acc[i][j]);
            }
#if defined(__AVX512F__)
            if (nb8 == nb && p0 + FE_GRAM_TP <= P && k0 + FE_GRAM_TK <= K) {
                fe_g8_store_tile(acc, S + (ptrdiff_t)k0 * P + p0, P, accumulate);
                continue;
            }
#endif
            double sums[FE_GRAM_TP][FE_GRAM_TK];
            fe_g8_sums(acc, sums);
            for (int i = 0; i < FE_GRAM_TP && p0 + i < P; ++i) {
                for (int j = 0; j < FE_GRAM_TK && k0 + j < K; ++j) {
                    double s = sums[i][j];
                    for (ptrdiff_t b = nb8; b < nb; ++b)
                        s = fma(f[i][b], g[j][b], s);
                    double *restrict out = S + (ptrdiff_t)(k0 + j) * P + p0 + i;
                    *out = accumulate ? *out + s : s;
                }
            }
        }
    }
}
#else
#define fe_gram_f64 fe_gram_ref_f64
#endif
#endif

#endif
