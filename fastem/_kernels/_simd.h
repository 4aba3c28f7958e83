/* Small SIMD building blocks of the kernels, written in C where Cython
 * cannot say what the vectoriser needs.
 *
 * 1. Squared norms and distances of short vectors: a reduction, which the
 *    compiler only vectorises when told it may reassociate the sum. '#pragma
 *    omp simd reduction' says exactly that for this loop and nowhere else
 *    (no -ffast-math); the association is fixed by the binary, so results
 *    stay deterministic. Sums run in the data's precision.
 *
 * 2. Branch-free running argmin over the rows of a (K x nb) distance block.
 *
 * For every column i (a sample), find the row k (a centre) minimising
 * dist[k, i] + csq[k]; ties go to the smallest k, as in a plain loop with a
 * strict '<'. Walking k in the outer loop makes the inner loop a vertical,
 * independent update per sample, which the compiler vectorises once the
 * select is written with integer masks: a floating-point '?:' select needs
 * -ffinite-math-only before GCC will vectorise it, and we do not want that
 * flag anywhere near the kernels.
 *
 * The float32 variant uses 32-bit labels (the lanes line up with the floats);
 * the float64 one uses 64-bit labels for the same reason.
 */
#ifndef FASTEM_SIMD_H
#define FASTEM_SIMD_H
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

/* d2[l] = ||x - q_l||^2 for all candidates q_l at once. The candidates are
 * stored transposed, qt[j * lp + l], with lp a multiple of 8, so the inner
 * loop runs across 8 candidates: one broadcast of x_j and one vector update,
 * no horizontal reduction per distance. Four accumulators (for j mod 4)
 * break the add-latency chain; they are combined in a fixed order. */
#define FASTEM_SQDIST_MANY(NAME, T)                                          \
static inline void NAME(const T *x, const T *qt, Py_ssize_t d,              \
                        Py_ssize_t lp, T *d2)                               \
{                                                                           \
    Py_ssize_t j, l, l0;                                                    \
    for (l0 = 0; l0 < lp; l0 += 8) {                                       \
        T a0[8] = {0}, a1[8] = {0}, a2[8] = {0}, a3[8] = {0};               \
        const T *q = qt + l0;                                               \
        for (j = 0; j + 4 <= d; j += 4) {                                   \
            const T x0 = x[j], x1 = x[j + 1], x2 = x[j + 2], x3 = x[j + 3]; \
            const T *r0 = q + j * lp, *r1 = r0 + lp, *r2 = r1 + lp,         \
                    *r3 = r2 + lp;                                          \
            _Pragma("omp simd")                                             \
            for (l = 0; l < 8; l++) {                                       \
                T t0 = x0 - r0[l], t1 = x1 - r1[l];                         \
                T t2 = x2 - r2[l], t3 = x3 - r3[l];                         \
                a0[l] += t0 * t0;                                           \
                a1[l] += t1 * t1;                                           \
                a2[l] += t2 * t2;                                           \
                a3[l] += t3 * t3;                                           \
            }                                                               \
        }                                                                   \
        for (; j < d; j++) {                                                \
            const T xj = x[j];                                              \
            const T *r = q + j * lp;                                        \
            _Pragma("omp simd")                                             \
            for (l = 0; l < 8; l++) {                                       \
                T t = xj - r[l];                                            \
                a0[l] += t * t;                                             \
            }                                                               \
        }                                                                   \
        for (l = 0; l < 8; l++)                                             \
            d2[l0 + l] = (a0[l] + a1[l]) + (a2[l] + a3[l]);                 \
    }                                                                       \
}

FASTEM_SQDIST_MANY(fastem_sqdist_many_f32, float)
FASTEM_SQDIST_MANY(fastem_sqdist_many_f64, double)

static void fastem_argmin_f32(const float *dist, const float *csq,
                              float *best, int32_t *lab,
                              Py_ssize_t nb, Py_ssize_t n_centres)
{
    Py_ssize_t i, k;
    for (i = 0; i < nb; i++) {
        best[i] = dist[i] + csq[0];
        lab[i] = 0;
    }
    for (k = 1; k < n_centres; k++) {
        const float *row = dist + k * nb;
        const float c = csq[k];
        const int32_t kk = (int32_t)k;
        for (i = 0; i < nb; i++) {
            float v = row[i] + c, b = best[i];
            int32_t m = -(int32_t)(v < b), vb, bb, r;
            memcpy(&vb, &v, 4);
            memcpy(&bb, &b, 4);
            r = (vb & m) | (bb & ~m);
            memcpy(&best[i], &r, 4);
            lab[i] = (lab[i] & ~m) | (kk & m);
        }
    }
}

static void fastem_argmin_f64(const double *dist, const double *csq,
                              double *best, int64_t *lab,
                              Py_ssize_t nb, Py_ssize_t n_centres)
{
    Py_ssize_t i, k;
    for (i = 0; i < nb; i++) {
        best[i] = dist[i] + csq[0];
        lab[i] = 0;
    }
    for (k = 1; k < n_centres; k++) {
        const double *row = dist + k * nb;
        const double c = csq[k];
        const int64_t kk = (int64_t)k;
        for (i = 0; i < nb; i++) {
            double v = row[i] + c, b = best[i];
            int64_t m = (v < b) ? -1 : 0, vb, bb, r;
            memcpy(&vb, &v, 8);
            memcpy(&bb, &b, 8);
            r = (vb & m) | (bb & ~m);
            memcpy(&best[i], &r, 8);
            lab[i] = (lab[i] & ~m) | (kk & m);
        }
    }
}
#endif
