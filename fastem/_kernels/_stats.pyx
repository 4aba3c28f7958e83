"""Column moments of X in one parallel pass (float64 accumulation)."""
from cython.parallel cimport prange

import numpy as np

from fastem._kernels._common cimport (
    Partitions, chunk_len, first_chunk, floating, partitions_free, partitions_init,
    partitions_sum, require, require_pass, slot_open)
from fastem._kernels._interrupt cimport interrupted, raise_pending
from fastem._kernels._kmeans_c cimport fe_moments_rows_f32, fe_moments_rows_f64


def column_moments(const floating[:, ::1] X,
                   const floating[::1] sample_weight,
                   const double[::1] ref,
                   double[::1] s1,
                   double[::1] s2,
                   Py_ssize_t chunk_rows,
                   int n_threads):
    """Weighted first and second moments of the columns about ``ref``.

    s1[j] = sum_i w_i (x_ij - ref_j), s2[j] = sum_i w_i (x_ij - ref_j)^2, in
    float64; returns sum_i w_i. Taking moments about a point inside the data
    (e.g. its first row) keeps var = s2/W - (s1/W)^2 free of the cancellation
    that raw moments suffer far from the origin. ``sample_weight`` of length
    0 means unit weights.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t p, c, start
    cdef int cancel = 0
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef double *slot
    cdef double[::1] sums = np.zeros(2 * d + 1)
    cdef Partitions pt
    require_pass(n, d, sample_weight.shape[0], chunk_rows, n_threads, "column_moments")
    require(ref.shape[0] == d and s1.shape[0] == d and s2.shape[0] == d,
            "column_moments: ref, s1 and s2 must have one entry per column of X")
    # slot: [sum w, sum w (x - ref) (d), sum w (x - ref)^2 (d)]
    if partitions_init(&pt, n, chunk_rows, 2 * d + 1) != 0:
        raise MemoryError("fastem: could not allocate the column-moment workspace")
    with nogil:
        for p in prange(pt.n_parts, schedule='dynamic', num_threads=n_threads):
            slot = slot_open(&pt, p)
            for c in range(first_chunk(&pt, p), first_chunk(&pt, p + 1)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                if floating is float:
                    fe_moments_rows_f32(&X[start, 0], chunk_len(&pt, c), d,
                                        swp + start if swp != NULL else NULL, &ref[0],
                                        slot, slot + 1, slot + 1 + d)
                else:
                    fe_moments_rows_f64(&X[start, 0], chunk_len(&pt, c), d,
                                        swp + start if swp != NULL else NULL, &ref[0],
                                        slot, slot + 1, slot + 1 + d)
        partitions_sum(&pt, 0, 2 * d + 1, &sums[0])
    partitions_free(&pt)
    raise_pending(cancel)
    s1[:] = sums[1:1 + d]
    s2[:] = sums[1 + d:]
    return sums[0]
