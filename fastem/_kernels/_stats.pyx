"""Column moments of X in one parallel pass (float64 accumulation)."""
from cython.parallel cimport prange
from libc.stdlib cimport calloc, free

from fastem._kernels._blas cimport floating
from fastem._kernels._interrupt cimport interrupted, raise_pending
from fastem._kernels._partition cimport n_partitions, partition_start


cdef void _moments_rows(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                        const floating *sw, const double *ref,
                        double *s0, double *s1, double *s2) noexcept nogil:
    """Add w, w (x - ref) and w (x - ref)^2 of nb rows into the slot."""
    cdef Py_ssize_t i, j
    cdef double t, w
    for i in range(nb):
        w = sw[i] if sw != NULL else 1.0
        s0[0] += w
        for j in range(d):
            t = <double>x[i * d + j] - ref[j]
            s1[j] += w * t
            s2[j] += w * (t * t)


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
    cdef Py_ssize_t n_chunks = (n + chunk_rows - 1) // chunk_rows
    cdef Py_ssize_t slot_len = 2 * d + 1
    cdef Py_ssize_t n_parts = n_partitions(n_chunks, slot_len)
    cdef Py_ssize_t p, c, start, j
    cdef double total = 0.0
    cdef int cancel = 0
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef double *slots = <double *>calloc(n_parts * slot_len, sizeof(double))
    cdef double *slot
    if slots == NULL:
        raise MemoryError("fastem: could not allocate the column-moment workspace")
    with nogil:
        for p in prange(n_parts, schedule='dynamic', num_threads=n_threads):
            slot = slots + p * slot_len
            for c in range(partition_start(p, n_parts, n_chunks),
                           partition_start(p + 1, n_parts, n_chunks)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                _moments_rows(&X[start, 0], min(chunk_rows, n - start), d,
                              swp + start if swp != NULL else NULL, &ref[0],
                              slot, slot + 1, slot + 1 + d)
        for j in range(d):
            s1[j] = 0.0
            s2[j] = 0.0
        for p in range(n_parts):
            slot = slots + p * slot_len
            total += slot[0]
            for j in range(d):
                s1[j] += slot[1 + j]
                s2[j] += slot[1 + d + j]
    free(slots)
    raise_pending(cancel)
    return total
