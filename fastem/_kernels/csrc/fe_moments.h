/* Column moments of a chunk of rows about a reference point, in float64
 * (_stats.pyx's column_moments: the data's mean and variance, hence the
 * K-means frame shift and tolerance, in one pass over X):
 *
 *     s0 += w,  s1[j] += w (x_j - ref_j),  s2[j] += w ((x_j - ref_j)^2)
 *
 * row after row, each sum taking the rows in order (w = 1 without weights;
 * w * t is then t exactly).
 *
 * fe_moments_rows_ref_* is that loop as written: every += is a load, an
 * addition and a store of the slot, so at low D each row waits on the
 * previous row's stores (about 80 ms for 1e7 rows of 4 floats on two
 * threads, more than three Lloyd passes of the same data). fe_moments_rows_*
 * runs the same loop with D a compile-time constant for D <= FE_MOMENTS_MAX_D
 * (a switch over D, as fe_lowd.h does), the 1 + 2 D sums in local variables
 * that the compiler keeps in registers from the first row of the chunk to
 * the last: the same additions in the same order, hence the same bits
 * (tests/kernels/test_csrc_references.py). Wider rows keep the reference,
 * whose 2 D independent sums per row already overlap. */
#ifndef FE_MOMENTS_H
#define FE_MOMENTS_H
#include "csrc/fe_platform.h"

#define FE_MOMENTS_MAX_D 16
#if defined(__GNUC__) && !defined(__clang__)
#define FE_MOMENTS_NO_LOOP_VEC static __attribute__((noinline, \
    optimize("no-trapping-math", "no-tree-loop-vectorize")))
#else
#define FE_MOMENTS_NO_LOOP_VEC static
#endif

#define FE_DEFINE_MOMENTS_ROWS(SUF, T)                                        \
static inline void                                                           \
fe_moments_rows_ref_##SUF(const T *x, ptrdiff_t nb, ptrdiff_t d, const T *sw, \
                          const double *ref, double *s0, double *s1,          \
                          double *s2)                                         \
{                                                                            \
    for (ptrdiff_t i = 0; i < nb; i++) {                                     \
        const double w = sw != NULL ? (double)sw[i] : 1.0;                   \
        s0[0] += w;                                                          \
        for (ptrdiff_t j = 0; j < d; j++) {                                  \
            const double t = (double)x[i * d + j] - ref[j];                  \
            s1[j] += w * t;                                                  \
            s2[j] += w * (t * t);                                            \
        }                                                                    \
    }                                                                        \
}                                                                            \
                                                                             \
/* d: a constant (one function per d, D below), so the arrays a1, a2       \
 * become registers; the j loop unrolls and is vectorised across columns     \
 * (SLP). Not across rows: GCC would, holding the sums in scalars spilled    \
 * to the stack (float64, d = 8 and 16: slower than the plain loop). */      \
FE_INLINE void                                                               \
fe_moments_rows_fixed_##SUF(const T *restrict x, ptrdiff_t nb, const int d,  \
                            const T *restrict sw, const double *restrict ref, \
                            double *restrict s0, double *restrict s1,        \
                            double *restrict s2)                             \
{                                                                            \
    double a0 = s0[0], a1[FE_MOMENTS_MAX_D], a2[FE_MOMENTS_MAX_D];           \
    for (int j = 0; j < d; j++) {                                            \
        a1[j] = s1[j];                                                       \
        a2[j] = s2[j];                                                       \
    }                                                                        \
    for (ptrdiff_t i = 0; i < nb; i++) {                                     \
        const double w = sw != NULL ? (double)sw[i] : 1.0;                   \
        a0 += w;                                                             \
        for (int j = 0; j < d; j++) {                                        \
            const double t = (double)x[i * d + j] - ref[j];                  \
            a1[j] += w * t;                                                  \
            a2[j] += w * (t * t);                                            \
        }                                                                    \
    }                                                                        \
    s0[0] = a0;                                                              \
    for (int j = 0; j < d; j++) {                                            \
        s1[j] = a1[j];                                                       \
        s2[j] = a2[j];                                                       \
    }                                                                        \
}                                                                            \
FE_MOMENTS_FIXED(SUF, T, 1) FE_MOMENTS_FIXED(SUF, T, 2)                      \
FE_MOMENTS_FIXED(SUF, T, 3) FE_MOMENTS_FIXED(SUF, T, 4)                      \
FE_MOMENTS_FIXED(SUF, T, 5) FE_MOMENTS_FIXED(SUF, T, 6)                      \
FE_MOMENTS_FIXED(SUF, T, 7) FE_MOMENTS_FIXED(SUF, T, 8)                      \
FE_MOMENTS_FIXED(SUF, T, 9) FE_MOMENTS_FIXED(SUF, T, 10)                     \
FE_MOMENTS_FIXED(SUF, T, 11) FE_MOMENTS_FIXED(SUF, T, 12)                    \
FE_MOMENTS_FIXED(SUF, T, 13) FE_MOMENTS_FIXED(SUF, T, 14)                    \
FE_MOMENTS_FIXED(SUF, T, 15) FE_MOMENTS_FIXED(SUF, T, 16)                    \
                                                                             \
static inline void                                                           \
fe_moments_rows_##SUF(const T *x, ptrdiff_t nb, ptrdiff_t d, const T *sw,    \
                      const double *ref, double *s0, double *s1, double *s2) \
{                                                                            \
    switch (d) {                                                             \
    FE_FOR_D_1_TO_16(FE_MOMENTS_CASE, SUF)                                   \
    default:                                                                 \
        fe_moments_rows_ref_##SUF(x, nb, d, sw, ref, s0, s1, s2);            \
    }                                                                        \
}
/* the row loop for one d, loop vectorisation off (see above) */
#define FE_MOMENTS_FIXED(SUF, T, D)                                           \
FE_MOMENTS_NO_LOOP_VEC void                                                  \
fe_moments_rows_d##D##_##SUF(const T *x, ptrdiff_t nb, const T *sw,          \
                             const double *ref, double *s0, double *s1,      \
                             double *s2)                                     \
{                                                                            \
    fe_moments_rows_fixed_##SUF(x, nb, D, sw, ref, s0, s1, s2);              \
}
#define FE_MOMENTS_CASE(SUF, D)                                               \
    case D:                                                                  \
        fe_moments_rows_d##D##_##SUF(x, nb, sw, ref, s0, s1, s2);            \
        break;

FE_DEFINE_MOMENTS_ROWS(f32, float)
FE_DEFINE_MOMENTS_ROWS(f64, double)
#undef FE_MOMENTS_CASE

#endif
