/* Branch-free running argmin over the rows of a (K x nb) distance block.
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
#ifndef FASTEM_ARGMIN_H
#define FASTEM_ARGMIN_H
#include <stdint.h>
#include <string.h>

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
