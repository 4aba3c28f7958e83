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
