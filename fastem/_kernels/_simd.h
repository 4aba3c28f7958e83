/* Small SIMD building blocks of the kernels, written in C where Cython
 * cannot say what the vectoriser needs.
 *
 * 1. Squared norms and distances of short vectors: a reduction, which the
 *    compiler only vectorises when told it may reassociate the sum. '#pragma
 *    omp simd reduction' says exactly that for this loop and nowhere else
 *    (no -ffast-math); the association is fixed by the binary, so results
 *    stay deterministic. Sums run in the data's precision.
 *
 * 2. Argmin over one row of a distance block, with AVX2 intrinsics in the
 *    x86-64-v3 build (GCC does not vectorise an argmin by itself).
 */
#ifndef FASTEM_SIMD_H
#define FASTEM_SIMD_H
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float fastem_sqdist_f32(const float *a, const float *b, Py_ssize_t n)
{
    float s = 0.0f;
    Py_ssize_t j;
#pragma omp simd reduction(+:s)
    for (j = 0; j < n; j++) {
        float d = a[j] - b[j];
        s += d * d;
    }
    return s;
}

static inline double fastem_sqdist_f64(const double *a, const double *b, Py_ssize_t n)
{
    double s = 0.0;
    Py_ssize_t j;
#pragma omp simd reduction(+:s)
    for (j = 0; j < n; j++) {
        double d = a[j] - b[j];
        s += d * d;
    }
    return s;
}

static inline float fastem_sqnorm_f32(const float *a, Py_ssize_t n)
{
    float s = 0.0f;
    Py_ssize_t j;
#pragma omp simd reduction(+:s)
    for (j = 0; j < n; j++)
        s += a[j] * a[j];
    return s;
}

static inline double fastem_sqnorm_f64(const double *a, Py_ssize_t n)
{
    double s = 0.0;
    Py_ssize_t j;
#pragma omp simd reduction(+:s)
    for (j = 0; j < n; j++)
        s += a[j] * a[j];
    return s;
}

/* Squared distances from one row x to each of nc rows c_0..c_{nc-1} (stored
 * one after another, d values each), for the k-means++ seeding: out[l] =
 * sum_j (x_j - c_lj)^2 in float32 for float32 data.
 *
 * With AVX2 + FMA (the x86-64-v3 build), each block of 8 (float) or 4
 * (double) coordinates of x is loaded once and used for up to 8 / 4
 * candidates, each with its own vector accumulator (acc_l = fma(diff, diff,
 * acc_l), blocks in order; the ragged end of a row is a masked load, whose
 * zero lanes add exactly 0). The accumulators are reduced together by a
 * transposing hadd tree, which adds the lanes of every candidate in the same
 * fixed order, ((0+1)+(2+3))+((4+5)+(6+7)), whatever its slot or nc: a
 * distance does not depend on which other candidates were measured with it,
 * so fastem_kpp_sqdist (nc = 1) gives the very same value. Elsewhere both
 * are the plain fastem_sqdist_*. */
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static inline __m256i fastem_tail_mask8(Py_ssize_t r)
{
    /* lanes 0..r-1 set, 0 <= r < 8 */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256i fastem_tail_mask4(Py_ssize_t r)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)r),
                              _mm256_setr_epi64x(0, 1, 2, 3));
}

#define FASTEM_SQD_BLOCK_F32(L, XV, CV)                                        \
    do {                                                                      \
        __m256 df_ = _mm256_sub_ps(XV, CV);                                   \
        acc[L] = _mm256_fmadd_ps(df_, df_, acc[L]);                           \
    } while (0)

/* nc in 1..8, a compile-time constant at every call site below so that the
 * candidate loops unroll and acc[] stays in registers */
static inline __attribute__((always_inline)) void
fastem_sqdist8_f32(const float *x, const float *c, Py_ssize_t d, int nc, float *out)
{
    __m256 acc[8];
    Py_ssize_t j = 0, r = d & 7;
    int l;
    for (l = 0; l < 8; l++)
        acc[l] = _mm256_setzero_ps();
    for (; j + 8 <= d; j += 8) {
        __m256 xv = _mm256_loadu_ps(x + j);
        for (l = 0; l < nc; l++)
            FASTEM_SQD_BLOCK_F32(l, xv, _mm256_loadu_ps(c + l * d + j));
    }
    if (r) {
        __m256i tm = fastem_tail_mask8(r);
        __m256 xv = _mm256_maskload_ps(x + j, tm);
        for (l = 0; l < nc; l++)
            FASTEM_SQD_BLOCK_F32(l, xv, _mm256_maskload_ps(c + l * d + j, tm));
    }
    __m256 t0 = _mm256_hadd_ps(acc[0], acc[1]);
    __m256 t1 = _mm256_hadd_ps(acc[2], acc[3]);
    __m256 t2 = _mm256_hadd_ps(acc[4], acc[5]);
    __m256 t3 = _mm256_hadd_ps(acc[6], acc[7]);
    t0 = _mm256_hadd_ps(t0, t1);
    t2 = _mm256_hadd_ps(t2, t3);
    __m256 sum = _mm256_add_ps(_mm256_permute2f128_ps(t0, t2, 0x20),
                               _mm256_permute2f128_ps(t0, t2, 0x31));
    if (nc == 8) {
        _mm256_storeu_ps(out, sum);
    } else {
        float tmp[8];
        _mm256_storeu_ps(tmp, sum);
        for (l = 0; l < nc; l++)
            out[l] = tmp[l];
    }
}

#define FASTEM_SQD_BLOCK_F64(L, XV, CV)                                        \
    do {                                                                      \
        __m256d df_ = _mm256_sub_pd(XV, CV);                                  \
        acc[L] = _mm256_fmadd_pd(df_, df_, acc[L]);                           \
    } while (0)

/* nc in 1..4, a compile-time constant at every call site */
static inline __attribute__((always_inline)) void
fastem_sqdist4_f64(const double *x, const double *c, Py_ssize_t d, int nc, double *out)
{
    __m256d acc[4];
    Py_ssize_t j = 0, r = d & 3;
    int l;
    for (l = 0; l < 4; l++)
        acc[l] = _mm256_setzero_pd();
    for (; j + 4 <= d; j += 4) {
        __m256d xv = _mm256_loadu_pd(x + j);
        for (l = 0; l < nc; l++)
            FASTEM_SQD_BLOCK_F64(l, xv, _mm256_loadu_pd(c + l * d + j));
    }
    if (r) {
        __m256i tm = fastem_tail_mask4(r);
        __m256d xv = _mm256_maskload_pd(x + j, tm);
        for (l = 0; l < nc; l++)
            FASTEM_SQD_BLOCK_F64(l, xv, _mm256_maskload_pd(c + l * d + j, tm));
    }
    /* [a0_01, a1_01 | a0_23, a1_23] and [a2_01, a3_01 | a2_23, a3_23] */
    __m256d t0 = _mm256_hadd_pd(acc[0], acc[1]);
    __m256d t1 = _mm256_hadd_pd(acc[2], acc[3]);
    __m256d sum = _mm256_add_pd(_mm256_permute2f128_pd(t0, t1, 0x20),
                                _mm256_permute2f128_pd(t0, t1, 0x31));
    if (nc == 4) {
        _mm256_storeu_pd(out, sum);
    } else {
        double tmp[4];
        _mm256_storeu_pd(tmp, sum);
        for (l = 0; l < nc; l++)
            out[l] = tmp[l];
    }
}

static inline void fastem_kpp_sqdists_f32(const float *x, const float *c,
                                          Py_ssize_t nc, Py_ssize_t d, float *out)
{
    for (; nc >= 8; nc -= 8, c += 8 * d, out += 8)
        fastem_sqdist8_f32(x, c, d, 8, out);
    switch (nc) {
    case 1: fastem_sqdist8_f32(x, c, d, 1, out); break;
    case 2: fastem_sqdist8_f32(x, c, d, 2, out); break;
    case 3: fastem_sqdist8_f32(x, c, d, 3, out); break;
    case 4: fastem_sqdist8_f32(x, c, d, 4, out); break;
    case 5: fastem_sqdist8_f32(x, c, d, 5, out); break;
    case 6: fastem_sqdist8_f32(x, c, d, 6, out); break;
    case 7: fastem_sqdist8_f32(x, c, d, 7, out); break;
    default: break;
    }
}

static inline void fastem_kpp_sqdists_f64(const double *x, const double *c,
                                          Py_ssize_t nc, Py_ssize_t d, double *out)
{
    for (; nc >= 4; nc -= 4, c += 4 * d, out += 4)
        fastem_sqdist4_f64(x, c, d, 4, out);
    switch (nc) {
    case 1: fastem_sqdist4_f64(x, c, d, 1, out); break;
    case 2: fastem_sqdist4_f64(x, c, d, 2, out); break;
    case 3: fastem_sqdist4_f64(x, c, d, 3, out); break;
    default: break;
    }
}

static inline float fastem_kpp_sqdist_f32(const float *x, const float *c, Py_ssize_t d)
{
    float out;
    fastem_sqdist8_f32(x, c, d, 1, &out);
    return out;
}

static inline double fastem_kpp_sqdist_f64(const double *x, const double *c, Py_ssize_t d)
{
    double out;
    fastem_sqdist4_f64(x, c, d, 1, &out);
    return out;
}
#else
static inline void fastem_kpp_sqdists_f32(const float *x, const float *c,
                                          Py_ssize_t nc, Py_ssize_t d, float *out)
{
    Py_ssize_t l;
    for (l = 0; l < nc; l++)
        out[l] = fastem_sqdist_f32(x, c + l * d, d);
}

static inline void fastem_kpp_sqdists_f64(const double *x, const double *c,
                                          Py_ssize_t nc, Py_ssize_t d, double *out)
{
    Py_ssize_t l;
    for (l = 0; l < nc; l++)
        out[l] = fastem_sqdist_f64(x, c + l * d, d);
}

static inline float fastem_kpp_sqdist_f32(const float *x, const float *c, Py_ssize_t d)
{
    return fastem_sqdist_f32(x, c, d);
}

static inline double fastem_kpp_sqdist_f64(const double *x, const double *c, Py_ssize_t d)
{
    return fastem_sqdist_f64(x, c, d);
}
#endif

/* Index of the smallest dist[j] + csq[j] over one row (first one on ties,
 * as a plain scan with a strict '<' would give); *best receives the value.
 * With AVX2 (the x86-64-v3 build): a vector min, then a vector search for
 * the first lane equal to it; values are recomputed identically, so the
 * equality test is exact. Elsewhere: the plain scan. */
#if defined(__AVX2__)
#include <immintrin.h>

static inline float fastem_hmin_ps(__m256 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline double fastem_hmin_pd(__m256d v)
{
    __m128d m = _mm_min_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    m = _mm_min_sd(m, _mm_unpackhi_pd(m, m));
    return _mm_cvtsd_f64(m);
}
#endif

static inline Py_ssize_t fastem_row_argmin_f32(const float *dist, const float *csq,
                                               Py_ssize_t k, float *best)
{
    Py_ssize_t j, arg = 0;
    float m;
#if defined(__AVX2__)
    if (k >= 8) {
        __m256 vmin = _mm256_add_ps(_mm256_loadu_ps(dist), _mm256_loadu_ps(csq));
        for (j = 8; j + 8 <= k; j += 8)
            vmin = _mm256_min_ps(vmin, _mm256_add_ps(_mm256_loadu_ps(dist + j),
                                                     _mm256_loadu_ps(csq + j)));
        m = fastem_hmin_ps(vmin);
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
#endif
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

static inline Py_ssize_t fastem_row_argmin_f64(const double *dist, const double *csq,
                                               Py_ssize_t k, double *best)
{
    Py_ssize_t j, arg = 0;
    double m;
#if defined(__AVX2__)
    if (k >= 4) {
        __m256d vmin = _mm256_add_pd(_mm256_loadu_pd(dist), _mm256_loadu_pd(csq));
        for (j = 4; j + 4 <= k; j += 4)
            vmin = _mm256_min_pd(vmin, _mm256_add_pd(_mm256_loadu_pd(dist + j),
                                                     _mm256_loadu_pd(csq + j)));
        m = fastem_hmin_pd(vmin);
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
#endif
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

/* Like fastem_row_argmin_*, and also the second smallest value (a tie with
 * the smallest counts: then *second == *best). Used for the lower bounds of
 * the bounded Lloyd passes. */
#define FASTEM_ROW_ARGMIN2_SCALAR(T)                                        \
    T m1 = dist[0] + csq[0], m2 = INFINITY;                                 \
    Py_ssize_t j, arg = 0;                                                  \
    for (j = 1; j < k; j++) {                                               \
        T v = dist[j] + csq[j];                                             \
        if (v < m1) { m2 = m1; m1 = v; arg = j; }                           \
        else if (v < m2) m2 = v;                                            \
    }                                                                       \
    *best = m1; *second = m2; return arg;

static inline Py_ssize_t fastem_row_argmin2_f32(const float *dist, const float *csq,
                                                Py_ssize_t k, float *best, float *second)
{
#if defined(__AVX2__)
    if (k >= 8) {
        Py_ssize_t j, k8 = k & ~(Py_ssize_t)7;
        __m256 v1 = _mm256_set1_ps(INFINITY), v2 = v1;
        for (j = 0; j < k8; j += 8) {
            __m256 v = _mm256_add_ps(_mm256_loadu_ps(dist + j), _mm256_loadu_ps(csq + j));
            v2 = _mm256_min_ps(v2, _mm256_max_ps(v1, v));
            v1 = _mm256_min_ps(v1, v);
        }
        float m1 = fastem_hmin_ps(v1);
        /* second: the lanes' runners-up, and the other lanes' minima */
        int lane = __builtin_ctz(_mm256_movemask_ps(
            _mm256_cmp_ps(v1, _mm256_set1_ps(m1), _CMP_EQ_OQ)));
        float lanes[8];
        _mm256_storeu_ps(lanes, v1);
        lanes[lane] = INFINITY;
        float m2 = fminf(fastem_hmin_ps(v2), fastem_hmin_ps(_mm256_loadu_ps(lanes)));
        for (j = k8; j < k; j++) {
            float v = dist[j] + csq[j];
            if (v < m1) { m2 = m1; m1 = v; }
            else if (v < m2) m2 = v;
        }
        *second = m2;
        float ignored;
        Py_ssize_t arg = fastem_row_argmin_f32(dist, csq, k, &ignored);
        *best = m1;
        return arg;
    }
#endif
    FASTEM_ROW_ARGMIN2_SCALAR(float)
}

static inline Py_ssize_t fastem_row_argmin2_f64(const double *dist, const double *csq,
                                                Py_ssize_t k, double *best, double *second)
{
    FASTEM_ROW_ARGMIN2_SCALAR(double)
}
#endif
