"""K-means kernels on CSR rows: assignment, centre sums, distances, k-means++.

X arrives as its three CSR arrays (``data``, ``indices``, ``indptr``; int32
or int64 indices, float32 or float64 data), already validated and
canonicalised by ``fastem._sparse.check_csr``: indptr monotone from 0 to
nnz, indices in range, sorted and unique within each row, data finite.
Nothing of size n x d is ever formed.

Distances use the expansion ``||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2``.
The cross terms of one row against every centre come from its non-zeros
alone: the centres are stored feature-major (``centres_t``, d x kp, kp the
number of centres rounded up to a multiple of TILE, the padding zero), so
non-zero (j, v) adds v * centres_t[j, :] to the row's kp dot products, one
contiguous run per non-zero. ``_row_dots`` keeps TILE of the dot products in
registers for a sweep over the row's non-zeros, four non-zeros at a time
into four accumulators added in a fixed order at the end. Every product and
sum is float64, also for float32 data.

Rows are not shifted to the data mean as the dense kernels do: a shifted
sparse row is dense. The rounding error of the expansion is about
eps64 (||x||^2 + ||c||^2), small for the usual sparse data (TF-IDF,
one-hot: unit-scale rows around the origin).

Parallel passes go over row chunks (``chunk_rows``); per-chunk results go to
partition slots (``_partition.pxd``) added in partition order, and centre
sums are accumulated centre by centre over the rows in increasing order:
results are bit-identical for any thread count. ``interrupted`` is checked
between chunks (between centres for the sums).

Arguments: the three CSR arrays are typed parameters (their dtypes pick the
fused specialisation, ``floating`` x ``index_t``); operands that travel
together come as the NamedTuples of ``_kmeans_args`` (``FeatureMajorCentres``,
``CentreMoves``, ``RowBounds`` with float64 bounds, ``KppPoints``) and
outputs as an ``out`` tuple, unpacked inside into typed memoryviews (a
dtype or layout mismatch raises ValueError). Every length a kernel indexes
by is checked against n (``len(indptr) - 1``) or k before compiled code
runs; what would cost a pass over the non-zeros (column indices below d,
labels in [0, k)) the callers guarantee (``fastem._sparse``). Each kernel
allocates its own workspaces.
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport calloc, malloc, free
from libc.float cimport FLT_MAX
from libc.math cimport INFINITY
from libc.string cimport memset

from libc.math cimport sqrt

from fastem._kernels._common cimport (
    Carver, Partitions, carve, carved_size, chunk_len, first_chunk, floating,
    n_partitions, partition_start, partitions_free, partitions_init,
    partitions_sum, require, slot_of, slot_open, workspaces_alloc)
from fastem._kernels._openmp cimport omp_get_thread_num
from fastem._kernels._interrupt cimport interrupted, raise_pending

# the argument tuples (re-exported: callers use _sparse.FeatureMajorCentres...)
from fastem._kernels._kmeans_args import (
    CentreMoves, FeatureMajorCentres, KppPoints, RowBounds)

ctypedef fused index_t:
    int32_t
    int64_t

cdef enum:
    # dot products kept in registers per sweep over a row's non-zeros; the
    # feature-major centre arrays have a multiple of TILE columns
    TILE = 8

# for the Python side, which pads the feature-major centre arrays
TILE_COLUMNS = TILE


cdef int _check_len(str kernel, str what, Py_ssize_t got, Py_ssize_t need,
                    bint or_empty) except -1:
    """ValueError unless got == need (or got == 0 where ``or_empty``)."""
    return require(got == need or (or_empty and got == 0),
                   f"{kernel}: {what} has {got} entries; it needs {need}"
                   + (" (or 0)" if or_empty else ""))


cdef int _check_centres(str kernel, Py_ssize_t k, Py_ssize_t kp,
                        Py_ssize_t min_k) except -1:
    """The feature-major centres' shape: min_k <= k <= kp, kp % TILE == 0
    (``_row_dots`` reads whole tiles of columns)."""
    if k < min_k or k > kp or kp % TILE != 0:
        raise ValueError(
            f"{kernel}: centres need {min_k} <= k = len(csq) <= kp = "
            f"centres_t.shape[1] with kp a multiple of {TILE}; got k = {k}, kp = {kp}")
    return 0


cdef inline void _row_dots(const floating *data, const index_t *indices,
                           Py_ssize_t p0, Py_ssize_t p1, const floating *ct,
                           Py_ssize_t kp, double *dot) noexcept nogil:
    """dot[c] = sum_{p0 <= p < p1} data[p] ct[indices[p], c] for c < kp.

    Non-zero p goes to accumulator (p - p0) % 4 (four independent chains of
    additions); the four are added as (a0 + a1) + (a2 + a3). The order
    depends only on the row, so a centre gives the same value in whichever
    column it sits (k-means++ relies on it).
    """
    cdef double a0[TILE]
    cdef double a1[TILE]
    cdef double a2[TILE]
    cdef double a3[TILE]
    cdef double v0, v1, v2, v3
    cdef const floating *r0
    cdef const floating *r1
    cdef const floating *r2
    cdef const floating *r3
    cdef Py_ssize_t c0 = 0, t, p
    while c0 < kp:
        for t in range(TILE):
            a0[t] = 0.0
            a1[t] = 0.0
            a2[t] = 0.0
            a3[t] = 0.0
        p = p0
        while p + 4 <= p1:
            v0 = data[p]
            v1 = data[p + 1]
            v2 = data[p + 2]
            v3 = data[p + 3]
            r0 = ct + <Py_ssize_t>indices[p] * kp + c0
            r1 = ct + <Py_ssize_t>indices[p + 1] * kp + c0
            r2 = ct + <Py_ssize_t>indices[p + 2] * kp + c0
            r3 = ct + <Py_ssize_t>indices[p + 3] * kp + c0
            for t in range(TILE):
                a0[t] += v0 * <double>r0[t]
                a1[t] += v1 * <double>r1[t]
                a2[t] += v2 * <double>r2[t]
                a3[t] += v3 * <double>r3[t]
            p += 4
        if p < p1:
            v0 = data[p]
            r0 = ct + <Py_ssize_t>indices[p] * kp + c0
            for t in range(TILE):
                a0[t] += v0 * <double>r0[t]
        if p + 1 < p1:
            v1 = data[p + 1]
            r1 = ct + <Py_ssize_t>indices[p + 1] * kp + c0
            for t in range(TILE):
                a1[t] += v1 * <double>r1[t]
        if p + 2 < p1:
            v2 = data[p + 2]
            r2 = ct + <Py_ssize_t>indices[p + 2] * kp + c0
            for t in range(TILE):
                a2[t] += v2 * <double>r2[t]
        for t in range(TILE):
            dot[c0 + t] = (a0[t] + a1[t]) + (a2[t] + a3[t])
        c0 += TILE


cdef extern from "csrc/fe_platform.h" nogil:
    # a read prefetch into L2 (__builtin_prefetch, _mm_prefetch or nothing)
    void FE_PREFETCH_L2(const void *addr)


cdef inline void _prefetch_rows(const index_t *indices, Py_ssize_t p0, Py_ssize_t p1,
                                const void *ct, Py_ssize_t row_bytes) noexcept nogil:
    """Ask for the centre rows the non-zeros p0..p1-1 will read (into L2):
    they are scattered over the d rows of the feature-major centres, so the
    hardware prefetcher cannot guess them; the next row's are requested
    while the current one is computed."""
    cdef Py_ssize_t p, off
    cdef const char *row
    for p in range(p0, p1):
        row = <const char *>ct + <Py_ssize_t>indices[p] * row_bytes
        off = 0
        while off < row_bytes:
            FE_PREFETCH_L2(row + off)
            off += 64


cdef inline double _row_sqnorm(const floating *data, Py_ssize_t p0,
                               Py_ssize_t p1) noexcept nogil:
    """sum_p data[p]^2 in float64, in ``_row_dots``'s order: the dot product
    of a row with itself as a centre equals its squared norm exactly."""
    cdef double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, v
    cdef Py_ssize_t p = p0
    while p + 4 <= p1:
        a0 += <double>data[p] * <double>data[p]
        a1 += <double>data[p + 1] * <double>data[p + 1]
        a2 += <double>data[p + 2] * <double>data[p + 2]
        a3 += <double>data[p + 3] * <double>data[p + 3]
        p += 4
    if p < p1:
        a0 += <double>data[p] * <double>data[p]
    if p + 1 < p1:
        a1 += <double>data[p + 1] * <double>data[p + 1]
    if p + 2 < p1:
        a2 += <double>data[p + 2] * <double>data[p + 2]
    return (a0 + a1) + (a2 + a3)


def row_sqnorms(const floating[::1] data, const index_t[::1] indptr,
                double[::1] out, int n_threads):
    """out[i] = ||x_i||^2 in float64 (order of ``_row_sqnorm``)."""
    cdef Py_ssize_t n = out.shape[0], i
    _check_len("row_sqnorms", "indptr", indptr.shape[0], n + 1, False)
    cdef int cancel = 0
    cdef const floating *dp = &data[0] if data.shape[0] > 0 else NULL
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            if cancel or ((i & 4095) == 0 and interrupted(&cancel)):
                continue
            out[i] = _row_sqnorm(dp, indptr[i], indptr[i + 1])
    raise_pending(cancel)


# ---------------------------------------------------------------------------
# Assignment: nearest centre of every row
# ---------------------------------------------------------------------------

cdef void _assign_chunk(const floating *data, const index_t *indices,
                        const index_t *indptr, Py_ssize_t r0, Py_ssize_t r1,
                        const floating *sw, const double *xsq,
                        const floating *ct, const double *csq, Py_ssize_t k,
                        Py_ssize_t kp, int32_t *labels, double *mindist,
                        double *dot, double *slot) noexcept nogil:
    """Rows r0..r1-1: label = argmin_c ||c||^2 - 2 x.c (first on ties);
    slot[0] += w ||x - c_label||^2, slot[1] += labels changed."""
    cdef Py_ssize_t i, c, arg, n_changed = 0
    cdef double best, v, acc = 0.0
    for i in range(r0, r1):
        if i + 1 < r1:
            _prefetch_rows(indices, indptr[i + 1], indptr[i + 2], ct, kp * sizeof(floating))
        _row_dots(data, indices, indptr[i], indptr[i + 1], ct, kp, dot)
        arg = 0
        best = csq[0] - 2.0 * dot[0]
        for c in range(1, k):
            v = csq[c] - 2.0 * dot[c]
            if v < best:
                best = v
                arg = c
        # rounding of the expansion can leave a hair below zero
        v = xsq[i] + best
        if v < 0.0:
            v = 0.0
        if mindist != NULL:
            mindist[i] = v
        acc += (<double>sw[i] if sw != NULL else 1.0) * v
        if labels[i] != arg:
            n_changed += 1
            labels[i] = <int32_t>arg
    slot[0] += acc
    slot[1] += n_changed


def assign_pass(const floating[::1] data, const index_t[::1] indices,
                const index_t[::1] indptr, const floating[::1] sample_weight,
                const double[::1] xsq, centres, out, Py_ssize_t chunk_rows,
                int n_threads):
    """Nearest centre of every row, and the inertia.

    Parameters
    ----------
    data, indices, indptr : CSR arrays of X (n = len(indptr) - 1 rows);
        float32 or float64 data, int32 or int64 indices
    sample_weight : (n,) X's dtype, or length 0 for unit weights
    xsq : (n,) float64, ||x_i||^2 from ``row_sqnorms``
    centres : FeatureMajorCentres
        ``centres_t`` (d, kp) in X's dtype, the k >= 1 centres
        feature-major (kp = k rounded up to TILE), and ``csq`` (k,)
        float64, their squared norms.
    out : tuple (labels, mindist)
        labels (n,) int32, in: the previous labels (any values), out: the
        nearest centre (first on ties); mindist (n,) float64, out:
        ||x_i - c_label||^2, or length 0 when not wanted.
    chunk_rows : int >= 1, rows per chunk (fixes the summation order)
    n_threads : int

    Returns
    -------
    n_changed : int, inertia : float
    """
    cdef const floating[:, ::1] centres_t = centres.centres_t
    cdef const double[::1] csq = centres.csq
    cdef int32_t[::1] labels = out[0]
    cdef double[::1] mindist = out[1]
    cdef Py_ssize_t n = indptr.shape[0] - 1, k = csq.shape[0], kp = centres_t.shape[1]
    _check_centres("assign_pass", k, kp, 1)
    _check_len("assign_pass", "labels", labels.shape[0], n, False)
    _check_len("assign_pass", "mindist", mindist.shape[0], n, True)
    _check_len("assign_pass", "xsq", xsq.shape[0], n, False)
    _check_len("assign_pass", "sample_weight", sample_weight.shape[0], n, True)
    require(chunk_rows >= 1, f"assign_pass: chunk_rows must be >= 1, got {chunk_rows}")
    cdef Py_ssize_t n_chunks = (n + chunk_rows - 1) // chunk_rows
    cdef Py_ssize_t n_parts = n_partitions(n_chunks, 2)
    cdef Py_ssize_t p, c, start
    cdef double inertia = 0.0, changed = 0.0
    cdef int cancel = 0
    cdef const floating *dp = &data[0] if data.shape[0] > 0 else NULL
    cdef const index_t *ip = &indices[0] if indices.shape[0] > 0 else NULL
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef double *mdp = &mindist[0] if mindist.shape[0] > 0 else NULL
    cdef double *dots = <double *>malloc(n_threads * kp * sizeof(double))
    cdef double *slots = <double *>calloc(n_parts * 2, sizeof(double))
    if dots == NULL or slots == NULL:
        free(dots); free(slots)
        raise MemoryError("fastem: could not allocate the sparse assignment workspace")
    with nogil:
        for p in prange(n_parts, schedule='dynamic', num_threads=n_threads):
            for c in range(partition_start(p, n_parts, n_chunks),
                           partition_start(p + 1, n_parts, n_chunks)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                _assign_chunk(dp, ip, &indptr[0], start, min(start + chunk_rows, n),
                              swp, &xsq[0], &centres_t[0, 0], &csq[0], k, kp,
                              &labels[0], mdp, dots + omp_get_thread_num() * kp,
                              slots + 2 * p)
        for p in range(n_parts):
            inertia += slots[2 * p]
            changed += slots[2 * p + 1]
    free(dots); free(slots)
    raise_pending(cancel)
    return <Py_ssize_t>changed, inertia


# ---------------------------------------------------------------------------
# Centre sums: scattered from the non-zeros, centre by centre
#
# Per-chunk or per-partition copies of the (k, d) sums would cost k d doubles
# each (80 MB at k = 100, d = 1e5). Instead the rows are grouped by label
# (a counting sort, O(n)), and each centre's sum is accumulated by one
# thread over its rows in increasing row order: the sums exist once, and
# their order of summation is that of the rows, whatever the thread count.
# ---------------------------------------------------------------------------

def centre_sums(const floating[::1] data, const index_t[::1] indices,
                const index_t[::1] indptr, const floating[::1] sample_weight,
                const int32_t[::1] labels, out, int n_threads):
    """sums[c] = sum_{label_i = c} w_i x_i, weights[c] = sum_{label_i = c} w_i.

    Parameters
    ----------
    data, indices, indptr : CSR arrays of X (n rows, d columns)
    sample_weight : (n,) X's dtype, or length 0 for unit weights
    labels : (n,) int32, each in [0, k)
    out : tuple (sums, weights)
        sums (k, d) float64 and weights (k,) float64, overwritten.
    n_threads : int
    """
    cdef double[:, ::1] sums = out[0]
    cdef double[::1] weights = out[1]
    cdef Py_ssize_t n = indptr.shape[0] - 1, k = sums.shape[0], d = sums.shape[1]
    _check_len("centre_sums", "labels", labels.shape[0], n, False)
    _check_len("centre_sums", "weights", weights.shape[0], k, False)
    _check_len("centre_sums", "sample_weight", sample_weight.shape[0], n, True)
    cdef Py_ssize_t i, c, r, p
    cdef double w, wt
    cdef int cancel = 0
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef double *srow
    # rows grouped by label: order (n,), starts (k + 1,)
    cdef int64_t *order = <int64_t *>malloc(max(n, 1) * sizeof(int64_t))
    cdef int64_t *starts = <int64_t *>malloc((k + 1) * sizeof(int64_t))
    if order == NULL or starts == NULL:
        free(order); free(starts)
        raise MemoryError("fastem: could not allocate the sparse centre sums workspace")
    with nogil:
        # counting sort of the rows by label, stable (rows stay increasing)
        memset(starts, 0, (k + 1) * sizeof(int64_t))
        for i in range(n):
            starts[labels[i] + 1] += 1
        for c in range(k):
            starts[c + 1] += starts[c]
        for i in range(n):
            order[starts[labels[i]]] = i
            starts[labels[i]] += 1
        for c in range(k - 1, 0, -1):
            starts[c] = starts[c - 1]
        starts[0] = 0
        memset(&sums[0, 0], 0, k * d * sizeof(double))
        for c in prange(k, schedule='dynamic', num_threads=n_threads):
            if interrupted(&cancel):
                continue
            srow = &sums[0, 0] + c * d
            wt = 0.0
            for r in range(starts[c], starts[c + 1]):
                i = order[r]
                w = <double>swp[i] if swp != NULL else 1.0
                wt = wt + w
                for p in range(indptr[i], indptr[i + 1]):
                    srow[indices[p]] += w * <double>data[p]
            weights[c] = wt
    free(order); free(starts)
    raise_pending(cancel)


def update_centres(const double[:, ::1] sums, const double[::1] weights,
                   double[:, ::1] centres, floating[:, ::1] centres_t,
                   double[::1] csq, double[::1] drift):
    """Move the centres to their means; returns sum_c ||new_c - old_c||^2.

    centres (k, d) float64 in/out: c = sums[c] / weights[c] where
    weights[c] > 0 (the others stay). centres_t (d, kp) in: the old centres
    feature-major in the data's dtype; out: the new ones (padding columns
    untouched); csq (k,) out: their squared norms in float64, from the
    rounded values. drift (k,) out, or length 0: drift[c]^2 = the squared
    distance between the old and the new *rounded* centre c (what the
    kernels see), summed in float64 from exact differences for float32
    (the caller rounds its root up). One pass over the k x d values, eight
    centres at a time so that every write to centres_t fills a cache line.
    """
    cdef Py_ssize_t k = centres.shape[0], d = centres.shape[1], kp = centres_t.shape[1]
    _check_centres("update_centres", k, kp, 1)
    _check_len("update_centres", "csq", csq.shape[0], k, False)
    _check_len("update_centres", "weights", weights.shape[0], k, False)
    _check_len("update_centres", "drift", drift.shape[0], k, True)
    if sums.shape[0] != k or sums.shape[1] != d or centres_t.shape[0] != d:
        raise ValueError(
            f"update_centres: sums ({sums.shape[0]}, {sums.shape[1]}), centres ({k}, {d}) "
            f"and centres_t ({centres_t.shape[0]}, {kp}) disagree (need (k, d), (k, d), "
            f"(d, kp))")
    cdef Py_ssize_t c0, c, j
    cdef bint with_drift = drift.shape[0] > 0
    cdef double v, diff, shift = 0.0, wc
    cdef floating f
    with nogil:
        for c in range(k):
            csq[c] = 0.0
            if with_drift:
                drift[c] = 0.0
            if weights[c] > 0.0:
                wc = weights[c]
                for j in range(d):
                    v = sums[c, j] / wc
                    diff = v - centres[c, j]
                    shift += diff * diff
                    centres[c, j] = v
        c0 = 0
        while c0 < k:
            for j in range(d):
                for c in range(c0, min(c0 + TILE, k)):
                    f = <floating>centres[c, j]
                    if with_drift:
                        diff = <double>f - <double>centres_t[j, c]
                        drift[c] += diff * diff
                    centres_t[j, c] = f
                    csq[c] += <double>f * <double>f
            c0 += TILE
    return shift


# ---------------------------------------------------------------------------
# Bounded assignment (Hamerly's algorithm): the labels of the plain pass
# without computing most rows' cross terms.
#
# Every row keeps an upper bound u >= ||x - c_a|| on the distance to its
# centre a and a lower bound l <= min_{j != a} ||x - c_j|| on the others
# (c: the centres as the kernels see them, rounded to X's dtype). When the
# centres move by drift_j, u + drift_a and l - max_{j != a} drift_j stay
# valid (triangle inequality), and so does 2 s_a - u, s_a half the distance
# from c_a to its nearest other centre. Let m = max(l, 2 s_a - u).
#
# The plain pass picks argmin_c v_c, v_c = csq_c - 2 x.c as rounded; v_c
# differs from ||x - c||^2 - ||x||^2 by at most E = err_scale (||x||^2 +
# max_c ||c||^2) (sums of at most d float64 products; err_scale =
# 2 (d + 8) * 2.3e-16 is twice the classic bound, covering the roundings of
# the test itself). So if u^2 + 2E < m^2, the plain pass would pick a, and
# strictly (no tie): the row is skipped, without reading its non-zeros.
# Otherwise u is tightened from one dot product with c_a (1/k of the row's
# work) and the test repeated; rows that still fail get the plain pass's
# full search (``_row_dots``, the same argmin, first on ties), which
# also resets both bounds. The labels are those of the plain pass bit for
# bit; bounds are rounded outward (ROUND) when stored.
# ---------------------------------------------------------------------------

cdef double ROUND = 1e-14  # relative outward rounding of the stored bounds


cdef inline double _row_dot1(const floating *data, const index_t *indices,
                             Py_ssize_t p0, Py_ssize_t p1, const floating *ct,
                             Py_ssize_t kp, Py_ssize_t a) noexcept nogil:
    """The dot product of the row with centre a (column a of ct), summed in
    ``_row_dots``' order: the value ``_row_dots`` gives in column a."""
    cdef double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
    cdef Py_ssize_t p = p0
    ct = ct + a
    while p + 4 <= p1:
        a0 += data[p] * <double>ct[<Py_ssize_t>indices[p] * kp]
        a1 += data[p + 1] * <double>ct[<Py_ssize_t>indices[p + 1] * kp]
        a2 += data[p + 2] * <double>ct[<Py_ssize_t>indices[p + 2] * kp]
        a3 += data[p + 3] * <double>ct[<Py_ssize_t>indices[p + 3] * kp]
        p += 4
    if p < p1:
        a0 += data[p] * <double>ct[<Py_ssize_t>indices[p] * kp]
    if p + 1 < p1:
        a1 += data[p + 1] * <double>ct[<Py_ssize_t>indices[p + 1] * kp]
    if p + 2 < p1:
        a2 += data[p + 2] * <double>ct[<Py_ssize_t>indices[p + 2] * kp]
    return (a0 + a1) + (a2 + a3)


cdef inline bint _certain(double u, double m, double e2) noexcept nogil:
    """u^2 + e2 < m^2 with room for the rounding of the test itself."""
    return m > 0.0 and u * u * (1.0 + ROUND) + e2 < m * m * (1.0 - ROUND)


cdef struct BoundWs:
    # One thread's workspace of a bounded pass (returned by value: private
    # to the thread inside a prange)
    double *dot         # kp dot products of a full search
    int32_t *todo       # chunk rows that need more than their bounds
    double *mrow        # their max(l, 2 s_a - u)


cdef inline BoundWs _bound_workspace(Carver *cv, Py_ssize_t chunk_rows,
                                     Py_ssize_t kp) noexcept nogil:
    """Carve one thread's workspace, or with cv.base NULL measure it."""
    cdef BoundWs w
    w.dot = <double *>carve(cv, kp, sizeof(double))
    w.todo = <int32_t *>carve(cv, chunk_rows, sizeof(int32_t))
    w.mrow = <double *>carve(cv, chunk_rows, sizeof(double))
    return w


cdef struct Drifts:
    const double *drift     # (k,) how far each centre moved
    double max_             # the largest drift, its centre, the second largest
    Py_ssize_t arg
    double second
    const double *half_sep  # (k,) s_a (0 where not computed)
    double csq_max
    double err_scale


cdef Py_ssize_t _bound_test(const Drifts *dr, Py_ssize_t r0, Py_ssize_t r1,
                            const double *xsq, double *upper, double *lower,
                            const int32_t *labels, int32_t *todo,
                            double *mrow) noexcept nogil:
    """Step 1 (bounds only): move the bounds by the drifts; rows r0..r1-1
    whose label is certain are done, the others go to todo (with m)."""
    cdef Py_ssize_t i, a, n_todo = 0
    cdef double u, l, dl, m, e2
    for i in range(r0, r1):
        a = labels[i]
        e2 = 2.0 * dr.err_scale * (xsq[i] + dr.csq_max)
        u = (upper[i] + dr.drift[a]) * (1.0 + ROUND)
        dl = dr.second if a == dr.arg else dr.max_
        l = (lower[i] - dl) - ROUND * (lower[i] + dl)
        l = l if l > 0.0 else 0.0
        upper[i] = u
        lower[i] = l
        m = (2.0 * dr.half_sep[a] - u) - ROUND * (2.0 * dr.half_sep[a] + u)
        m = m if m > l else l
        if not _certain(u, m, e2):
            todo[n_todo] = <int32_t>(i - r0)
            mrow[n_todo] = m
            n_todo += 1
    return n_todo


cdef void _bounded_chunk(const floating *data, const index_t *indices,
                         const index_t *indptr, Py_ssize_t r0, Py_ssize_t r1,
                         const double *xsq, const floating *ct, const double *csq,
                         Py_ssize_t k, Py_ssize_t kp, const Drifts *dr, bint fresh,
                         double *upper, double *lower, int32_t *labels,
                         BoundWs ws, double *slot) noexcept nogil:
    """Rows r0..r1-1 of a bounded pass (see the note above); slot[0] +=
    labels changed, slot[1] += full searches, slot[2] += tightened rows."""
    cdef Py_ssize_t i, t, c, arg, n_todo, n_full = 0, n_changed = 0
    cdef double best, second, v, e
    if fresh:
        n_todo = r1 - r0
        for t in range(n_todo):
            ws.todo[t] = <int32_t>t
        n_full = n_todo
    else:
        n_todo = _bound_test(dr, r0, r1, xsq, upper, lower, labels, ws.todo, ws.mrow)
        # step 2: tighten u from the own centre; the rows still uncertain
        # are compacted to the front of todo
        for t in range(n_todo):
            i = r0 + ws.todo[t]
            e = dr.err_scale * (xsq[i] + dr.csq_max)
            v = xsq[i] + csq[labels[i]] - 2.0 * _row_dot1(
                data, indices, indptr[i], indptr[i + 1], ct, kp, labels[i]) + e
            upper[i] = sqrt(v if v > 0.0 else 0.0) * (1.0 + ROUND)
            if not _certain(upper[i], ws.mrow[t], 2.0 * e):
                ws.todo[n_full] = ws.todo[t]
                n_full += 1
    # step 3: the plain pass's full search, which also resets both bounds
    for t in range(n_full):
        i = r0 + ws.todo[t]
        if t + 1 < n_full:
            _prefetch_rows(indices, indptr[r0 + ws.todo[t + 1]],
                           indptr[r0 + ws.todo[t + 1] + 1], ct, kp * sizeof(floating))
        _row_dots(data, indices, indptr[i], indptr[i + 1], ct, kp, ws.dot)
        arg = 0
        best = csq[0] - 2.0 * ws.dot[0]
        second = INFINITY
        for c in range(1, k):
            v = csq[c] - 2.0 * ws.dot[c]
            if v < best:
                second = best
                best = v
                arg = c
            elif v < second:
                second = v
        e = dr.err_scale * (xsq[i] + dr.csq_max)
        v = xsq[i] + best + e
        upper[i] = sqrt(v if v > 0.0 else 0.0) * (1.0 + ROUND)
        v = xsq[i] + second - e
        lower[i] = sqrt(v) * (1.0 - ROUND) if v > 0.0 else 0.0
        if labels[i] != arg:
            n_changed += 1
            labels[i] = <int32_t>arg
    slot[0] += n_changed
    slot[1] += n_full
    slot[2] += n_todo if not fresh else 0


def bounded_pass(const floating[::1] data, const index_t[::1] indices,
                 const index_t[::1] indptr, const double[::1] xsq, centres,
                 moves, bounds, Py_ssize_t chunk_rows, int n_threads):
    """One bounded assignment pass (see the note above).

    Parameters
    ----------
    data, indices, indptr, xsq, centres : as for ``assign_pass`` (k >= 2
        centres)
    moves : CentreMoves
        ``half_sep`` (k,) float64: lower bounds on half the distance from
        each centre to its nearest other centre (zeros: no such bound);
        ``drift`` (k,) float64: upper bounds on how far each centre moved
        since the bounds were last valid; ``fresh``: every row gets a full
        search and its bounds are set from scratch (the labels in may then
        be -1, and the bounds any values).
    bounds : RowBounds
        ``upper``, ``lower`` (n,) float64 (not X's dtype, unlike the dense
        pass: the margins are float64 roundings) and ``labels`` (n,) int32,
        all in/out; without ``fresh`` the labels in must lie in [0, k).
    chunk_rows : int >= 1, rows per chunk (fixes the order of the counts)
    n_threads : int

    Returns
    -------
    n_changed, n_full, n_tightened : int
        Labels changed; rows that needed all k cross terms; rows whose
        bounds alone did not decide (0 when fresh).
    """
    cdef const floating[:, ::1] centres_t = centres.centres_t
    cdef const double[::1] csq = centres.csq
    cdef const double[::1] half_sep = moves.half_sep
    cdef const double[::1] drift = moves.drift
    cdef bint fresh = moves.fresh
    cdef double[::1] upper = bounds.upper
    cdef double[::1] lower = bounds.lower
    cdef int32_t[::1] labels = bounds.labels
    cdef Py_ssize_t n = indptr.shape[0] - 1, k = csq.shape[0], kp = centres_t.shape[1]
    _check_centres("bounded_pass", k, kp, 2)
    _check_len("bounded_pass", "moves.half_sep", half_sep.shape[0], k, False)
    _check_len("bounded_pass", "moves.drift", drift.shape[0], k, False)
    _check_len("bounded_pass", "bounds.upper", upper.shape[0], n, False)
    _check_len("bounded_pass", "bounds.lower", lower.shape[0], n, False)
    _check_len("bounded_pass", "bounds.labels", labels.shape[0], n, False)
    _check_len("bounded_pass", "xsq", xsq.shape[0], n, False)
    require(chunk_rows >= 1, f"bounded_pass: chunk_rows must be >= 1, got {chunk_rows}")
    cdef Py_ssize_t d = centres_t.shape[0], p, c, j, tid, start, per_thread
    cdef double counts[3]
    cdef int cancel = 0
    cdef const floating *dp = &data[0] if data.shape[0] > 0 else NULL
    cdef const index_t *ip = &indices[0] if indices.shape[0] > 0 else NULL
    cdef void *raw = NULL
    cdef char *wsp = NULL
    cdef Carver cv = Carver(NULL, 0)
    cdef Carver tc
    cdef BoundWs tw
    cdef Partitions pt
    cdef Drifts dr
    dr.drift = &drift[0]
    dr.half_sep = &half_sep[0]
    dr.max_ = 0.0
    dr.second = 0.0
    dr.arg = 0
    dr.csq_max = 0.0
    dr.err_scale = 2.0 * (d + 8) * 2.3e-16
    for j in range(k):
        dr.csq_max = max(dr.csq_max, csq[j])
        if drift[j] > dr.max_:
            dr.second = dr.max_
            dr.max_ = drift[j]
            dr.arg = j
        elif drift[j] > dr.second:
            dr.second = drift[j]
    _bound_workspace(&cv, chunk_rows, kp)
    per_thread = carved_size(&cv)
    if partitions_init(&pt, n, chunk_rows, 3) == 0:
        wsp = workspaces_alloc(per_thread, n_threads, &raw)
    if wsp == NULL:
        free(raw); partitions_free(&pt)
        raise MemoryError("fastem: could not allocate the sparse bounded pass workspace")
    with nogil:
        for p in prange(pt.n_parts, schedule='dynamic', num_threads=n_threads):
            tid = omp_get_thread_num()
            tc = Carver(wsp + tid * per_thread, 0)
            tw = _bound_workspace(&tc, chunk_rows, kp)
            slot_open(&pt, p)
            for c in range(first_chunk(&pt, p), first_chunk(&pt, p + 1)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                _bounded_chunk(dp, ip, &indptr[0], start, start + chunk_len(&pt, c),
                               &xsq[0], &centres_t[0, 0], &csq[0], k, kp, &dr, fresh,
                               &upper[0], &lower[0], &labels[0], tw, slot_of(&pt, p))
        memset(counts, 0, 3 * sizeof(double))
        partitions_sum(&pt, 0, 3, counts)
    free(raw); partitions_free(&pt)
    raise_pending(cancel)
    return <Py_ssize_t>counts[0], <Py_ssize_t>counts[1], <Py_ssize_t>counts[2]


cdef double _inertia_chunk(const floating *data, const index_t *indices,
                           const index_t *indptr, Py_ssize_t r0, Py_ssize_t r1,
                           const floating *sw, const double *xsq, const floating *ct,
                           const double *csq, Py_ssize_t kp,
                           const int32_t *labels) noexcept nogil:
    """sum_i w_i max(||x_i||^2 + csq_a - 2 x_i.c_a, 0) over rows r0..r1-1, a
    = label_i: each term and the sum as ``_assign_chunk`` forms them."""
    cdef Py_ssize_t i, a
    cdef double v, acc = 0.0
    for i in range(r0, r1):
        a = labels[i]
        v = xsq[i] + (csq[a] - 2.0 * _row_dot1(data, indices, indptr[i], indptr[i + 1],
                                               ct, kp, a))
        if v < 0.0:
            v = 0.0
        acc += (<double>sw[i] if sw != NULL else 1.0) * v
    return acc


def assigned_inertia(const floating[::1] data, const index_t[::1] indices,
                     const index_t[::1] indptr, const floating[::1] sample_weight,
                     const double[::1] xsq, centres, const int32_t[::1] labels,
                     Py_ssize_t chunk_rows, int n_threads):
    """The inertia of given labels: one dot product per row.

    When the labels are the nearest centres, it equals the inertia
    ``assign_pass`` returns bit for bit (same terms, chunks, partitions and
    order of summation).

    Parameters
    ----------
    data, indices, indptr, sample_weight, xsq, centres, chunk_rows,
    n_threads : as for ``assign_pass``
    labels : (n,) int32, each in [0, k)

    Returns
    -------
    inertia : float
    """
    cdef const floating[:, ::1] centres_t = centres.centres_t
    cdef const double[::1] csq = centres.csq
    cdef Py_ssize_t n = indptr.shape[0] - 1, kp = centres_t.shape[1], p, c, start
    _check_centres("assigned_inertia", csq.shape[0], kp, 1)
    _check_len("assigned_inertia", "labels", labels.shape[0], n, False)
    _check_len("assigned_inertia", "xsq", xsq.shape[0], n, False)
    _check_len("assigned_inertia", "sample_weight", sample_weight.shape[0], n, True)
    require(chunk_rows >= 1, f"assigned_inertia: chunk_rows must be >= 1, got {chunk_rows}")
    cdef double inertia = 0.0
    cdef int cancel = 0
    cdef const floating *dp = &data[0] if data.shape[0] > 0 else NULL
    cdef const index_t *ip = &indices[0] if indices.shape[0] > 0 else NULL
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef Partitions pt
    # two doubles per slot: the partitions of assign_pass
    if partitions_init(&pt, n, chunk_rows, 2) != 0:
        raise MemoryError("fastem: could not allocate the sparse inertia slots")
    with nogil:
        for p in prange(pt.n_parts, schedule='dynamic', num_threads=n_threads):
            slot_open(&pt, p)
            for c in range(first_chunk(&pt, p), first_chunk(&pt, p + 1)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                slot_of(&pt, p)[0] += _inertia_chunk(
                    dp, ip, &indptr[0], start, start + chunk_len(&pt, c), swp, &xsq[0],
                    &centres_t[0, 0], &csq[0], kp, &labels[0])
        partitions_sum(&pt, 0, 1, &inertia)
    partitions_free(&pt)
    raise_pending(cancel)
    return inertia


def move_rows(const floating[::1] data, const index_t[::1] indices,
              const index_t[::1] indptr, const floating[::1] sample_weight,
              const int64_t[::1] rows, const int32_t[::1] old,
              const int32_t[::1] labels, double[:, ::1] sums, int n_threads):
    """Hamerly's incremental sums: sums[old[i]] -= w_i x_i and
    sums[labels[i]] += w_i x_i for each row i of ``rows``.

    Each centre's row of ``sums`` is updated by one thread, over its moved
    rows in increasing row order (grouped by a stable counting sort into a
    workspace of 2 len(rows) + k + 1 integers): the order of the additions
    does not depend on the thread count.

    Parameters
    ----------
    data, indices, indptr : CSR arrays of X (n rows, d columns)
    sample_weight : (n,) X's dtype, or length 0 for unit weights
    rows : (m,) int64, increasing row indices in [0, n)
    old, labels : (n,) int32, the labels before and after; old[i] !=
        labels[i] for the rows moved, both in [0, k)
    sums : (k, d) float64 in/out, the per-centre sums of w x
    n_threads : int
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1
    cdef Py_ssize_t m = rows.shape[0], k = sums.shape[0], d = sums.shape[1]
    _check_len("move_rows", "old", old.shape[0], n, False)
    _check_len("move_rows", "labels", labels.shape[0], n, False)
    _check_len("move_rows", "sample_weight", sample_weight.shape[0], n, True)
    cdef Py_ssize_t t, i, c, r, p, e
    cdef double w
    cdef int cancel = 0
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef double *srow
    # moved rows grouped by centre: order (2 m,), starts (k + 1,)
    cdef int64_t *order = <int64_t *>malloc(max(2 * m, 1) * sizeof(int64_t))
    cdef int64_t *starts = <int64_t *>malloc((k + 1) * sizeof(int64_t))
    if order == NULL or starts == NULL:
        free(order); free(starts)
        raise MemoryError("fastem: could not allocate the sparse move_rows workspace")
    with nogil:
        # entry 2 i + 1: row i joins the centre; 2 i: it leaves
        memset(starts, 0, (k + 1) * sizeof(int64_t))
        for t in range(m):
            starts[old[rows[t]] + 1] += 1
            starts[labels[rows[t]] + 1] += 1
        for c in range(k):
            starts[c + 1] += starts[c]
        for t in range(m):
            i = rows[t]
            order[starts[old[i]]] = 2 * i
            starts[old[i]] += 1
            order[starts[labels[i]]] = 2 * i + 1
            starts[labels[i]] += 1
        for c in range(k - 1, 0, -1):
            starts[c] = starts[c - 1]
        starts[0] = 0
        for c in prange(k, schedule='dynamic', num_threads=n_threads):
            if interrupted(&cancel):
                continue
            srow = &sums[0, 0] + c * d
            for r in range(starts[c], starts[c + 1]):
                e = order[r]
                i = e >> 1
                w = <double>swp[i] if swp != NULL else 1.0
                if (e & 1) == 0:
                    w = -w
                for p in range(indptr[i], indptr[i + 1]):
                    srow[indices[p]] += w * <double>data[p]
    free(order); free(starts)
    raise_pending(cancel)


# ---------------------------------------------------------------------------
# Distances to every centre (transform)
# ---------------------------------------------------------------------------

def pairwise_sqdist(const floating[::1] data, const index_t[::1] indices,
                    const index_t[::1] indptr, const double[::1] xsq, centres,
                    floating[:, ::1] out, int n_threads):
    """out[i, c] = max(||x_i||^2 - 2 x_i.c + ||c||^2, 0), row by row.

    Parameters
    ----------
    data, indices, indptr, xsq, centres : as for ``assign_pass``
    out : (n, k) X's dtype, overwritten
    n_threads : int
    """
    cdef const floating[:, ::1] centres_t = centres.centres_t
    cdef const double[::1] csq = centres.csq
    cdef Py_ssize_t n = out.shape[0], k = out.shape[1], kp = centres_t.shape[1]
    _check_centres("pairwise_sqdist", csq.shape[0], kp, 1)
    _check_len("pairwise_sqdist", "out's columns", k, csq.shape[0], False)
    _check_len("pairwise_sqdist", "indptr", indptr.shape[0], n + 1, False)
    _check_len("pairwise_sqdist", "xsq", xsq.shape[0], n, False)
    cdef Py_ssize_t i, c
    cdef double v
    cdef double *dot
    cdef int cancel = 0
    cdef const floating *dp = &data[0] if data.shape[0] > 0 else NULL
    cdef const index_t *ip = &indices[0] if indices.shape[0] > 0 else NULL
    cdef double *dots = <double *>malloc(n_threads * kp * sizeof(double))
    if dots == NULL:
        raise MemoryError("fastem: could not allocate the sparse distance workspace")
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            if cancel or ((i & 1023) == 0 and interrupted(&cancel)):
                continue
            dot = dots + omp_get_thread_num() * kp
            _row_dots(dp, ip, indptr[i], indptr[i + 1], &centres_t[0, 0], kp, dot)
            for c in range(k):
                v = xsq[i] + csq[c] - 2.0 * dot[c]
                out[i, c] = <floating>(v if v > 0.0 else 0.0)
    free(dots)
    raise_pending(cancel)


# ---------------------------------------------------------------------------
# Greedy k-means++ (the algorithm of fastem._init and _kmeans.pyx, on CSR)
#
# One pass per step over row chunks measures every row against a few dense
# points stored feature-major (``points_t``, d x mp): column 0 the centre
# chosen last (applied first: closest_i = min(closest_i, its distance);
# applying it twice changes nothing), the other columns this step's
# candidates. Per chunk and candidate it returns the chunk potential that
# choosing the candidate would leave, from the very float32 values closest
# will hold, so the chosen candidate's column is the next step's chunk
# potentials. Squared distances are scaled by ``scale`` (a power of two,
# exact) and stored in float32, as in the dense algorithm.
# ---------------------------------------------------------------------------

cdef inline float _to_float32(double v) noexcept nogil:
    return <float>(v if v < FLT_MAX else FLT_MAX)


cdef inline void _point_dots(const floating *data, const index_t *indices,
                             Py_ssize_t p0, Py_ssize_t p1, const floating *pt,
                             Py_ssize_t mp, const unsigned char *present,
                             double *dot) noexcept nogil:
    """``_row_dots`` against the few k-means++ points, reading the points
    only at the non-zeros whose column one of them has (``present``; a
    d-byte map that stays in cache, where the d x mp points do not). The
    others would add exact zeros, and every non-zero keeps its accumulator
    ((p - p0) % 4) and its place in it: the values are those of
    ``_row_dots``, so ``_row_sqnorm`` still equals a row's dot product with
    itself."""
    cdef double acc[4][TILE]
    cdef Py_ssize_t c0 = 0, t, p, ch
    cdef double v
    cdef const floating *r
    while c0 < mp:
        for ch in range(4):
            for t in range(TILE):
                acc[ch][t] = 0.0
        for p in range(p0, p1):
            if present[indices[p]]:
                v = data[p]
                r = pt + <Py_ssize_t>indices[p] * mp + c0
                ch = (p - p0) & 3
                for t in range(TILE):
                    acc[ch][t] += v * <double>r[t]
        for t in range(TILE):
            dot[c0 + t] = (acc[0][t] + acc[1][t]) + (acc[2][t] + acc[3][t])
        c0 += TILE


cdef void _kpp_chunk(const floating *data, const index_t *indices,
                     const index_t *indptr, Py_ssize_t r0, Py_ssize_t r1,
                     const floating *sw, const double *xsq, const floating *pt,
                     const unsigned char *present,
                     const double *psq, Py_ssize_t m, Py_ssize_t mp, bint apply,
                     double scale, float *closest, double *dot,
                     double *chunk_cur, double *chunk_pots,
                     double *pots) noexcept nogil:
    """Rows r0..r1-1 (see the note above). Adds into chunk_cur[0] the
    chunk's potential after applying column 0; chunk_pots[l] (float32
    distances) and pots[l] (unrounded) the potentials with candidate l."""
    cdef Py_ssize_t i, l, first = 1 if apply else 0
    cdef double w, v, cur
    cdef float f
    for i in range(r0, r1):
        _point_dots(data, indices, indptr[i], indptr[i + 1], pt, mp, present, dot)
        w = <double>sw[i] if sw != NULL else 1.0
        if apply:
            v = xsq[i] + psq[0] - 2.0 * dot[0]
            f = _to_float32(scale * (v if v > 0.0 else 0.0))
            if f < closest[i]:
                closest[i] = f
        cur = closest[i]
        chunk_cur[0] += w * cur
        for l in range(first, m):
            v = xsq[i] + psq[l] - 2.0 * dot[l]
            v = scale * (v if v > 0.0 else 0.0)
            f = _to_float32(v)
            chunk_pots[l - first] += w * (<double>f if f < cur else cur)
            pots[l - first] += w * (v if v < cur else cur)


def kpp_pass(const floating[::1] data, const index_t[::1] indices,
             const index_t[::1] indptr, const floating[::1] sample_weight,
             const double[::1] xsq, points, float[::1] closest, out,
             Py_ssize_t chunk_rows, int n_threads):
    """One k-means++ pass over the rows of ``indptr`` (see the note above).

    Parameters
    ----------
    data, indices, indptr : CSR arrays of the rows (n = len(indptr) - 1;
        indptr may be a slice of X's: its values index data and indices)
    sample_weight : (n,) X's dtype, or length 0 for unit weights
    xsq : (n,) float64, ||x_i||^2
    points : KppPoints
        ``points_t`` (d, mp) X's dtype, feature-major, mp a multiple of
        TILE: columns 0..m-1 are the points (m = len(psq) <= mp), column 0
        the last chosen centre if ``apply``, the others the candidates;
        ``present`` (d,) uint8, non-zero where some column of points_t is
        (every row of points_t where it is 0 must be zero); ``psq`` (m,)
        float64, the points' squared norms; ``apply``: whether column 0 is
        applied to ``closest`` first; ``scale``: the power of two that
        multiplies every squared distance (exact; 1 for float32 data).
    closest : (n,) float32 in/out, scaled squared distance to the closest
        chosen centre (FLT_MAX before the first)
    out : tuple (chunk_cur, chunk_pots, potentials), float64, overwritten
        chunk_cur (n_chunks,): sum_i w_i closest_i per chunk after the
        update; chunk_pots (n_chunks, L), L = m - apply: per chunk sum_i
        w_i min(closest_i, float32(scaled distance to candidate l));
        potentials (L,): float32 data, the sums of chunk_pots; float64
        data, the same sums without rounding the distances to float32 (the
        dense algorithm's choice), added in chunk order.
    chunk_rows : int >= 1, rows per chunk (n_chunks = ceil(n / chunk_rows))
    n_threads : int
    """
    cdef const floating[:, ::1] points_t = points.points_t
    cdef const unsigned char[::1] present = points.present
    cdef const double[::1] psq = points.psq
    cdef bint apply = points.apply
    cdef double scale = points.scale
    cdef double[::1] chunk_cur = out[0]
    cdef double[:, ::1] chunk_pots = out[1]
    cdef double[::1] potentials = out[2]
    cdef Py_ssize_t n = indptr.shape[0] - 1, m = psq.shape[0], mp = points_t.shape[1]
    cdef Py_ssize_t L = m - apply
    require(chunk_rows >= 1, f"kpp_pass: chunk_rows must be >= 1, got {chunk_rows}")
    cdef Py_ssize_t n_chunks = (n + chunk_rows - 1) // chunk_rows
    if L < 0 or m > mp or mp % TILE != 0:
        raise ValueError(
            f"kpp_pass: points need m = len(psq) >= apply and m <= mp = "
            f"points_t.shape[1], mp a multiple of {TILE}; got m = {m}, mp = {mp}")
    _check_len("kpp_pass", "points.present", present.shape[0], points_t.shape[0], False)
    _check_len("kpp_pass", "closest", closest.shape[0], n, False)
    _check_len("kpp_pass", "xsq", xsq.shape[0], n, False)
    _check_len("kpp_pass", "sample_weight", sample_weight.shape[0], n, True)
    _check_len("kpp_pass", "out's chunk_cur", chunk_cur.shape[0], n_chunks, False)
    _check_len("kpp_pass", "out's chunk_pots", chunk_pots.shape[0], n_chunks, False)
    _check_len("kpp_pass", "out's chunk_pots columns", chunk_pots.shape[1], L, False)
    _check_len("kpp_pass", "out's potentials", potentials.shape[0], L, False)
    cdef Py_ssize_t c, l, start
    cdef int cancel = 0
    cdef const floating *dp = &data[0] if data.shape[0] > 0 else NULL
    cdef const index_t *ip = &indices[0] if indices.shape[0] > 0 else NULL
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef double *dots = <double *>malloc(n_threads * mp * sizeof(double))
    cdef double *pots = <double *>calloc(n_chunks * L + 1, sizeof(double))
    if dots == NULL or pots == NULL:
        free(dots); free(pots)
        raise MemoryError("fastem: could not allocate the sparse k-means++ workspace")
    with nogil:
        for c in prange(n_chunks, schedule='dynamic', num_threads=n_threads):
            if interrupted(&cancel):
                continue
            start = c * chunk_rows
            chunk_cur[c] = 0.0
            for l in range(L):
                chunk_pots[c, l] = 0.0
            _kpp_chunk(dp, ip, &indptr[0], start, min(start + chunk_rows, n), swp,
                       &xsq[0], &points_t[0, 0], &present[0], &psq[0], m, mp,
                       apply, scale,
                       &closest[0], dots + omp_get_thread_num() * mp,
                       &chunk_cur[c], &chunk_pots[c, 0] if L > 0 else NULL,
                       pots + c * L)
        for l in range(L):
            potentials[l] = 0.0
            for c in range(n_chunks):
                potentials[l] += pots[c * L + l] if floating is double else chunk_pots[c, l]
    free(dots); free(pots)
    raise_pending(cancel)
