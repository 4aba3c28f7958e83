"""K-means kernels: chunked, OpenMP-parallel passes over the rows of X.

Every kernel walks X in chunks of ``chunk_rows`` consecutive rows (the last
chunk may be shorter), in one parallel region per pass. Partial sums go to
slots that belong to a chunk or to a fixed partition of the chunks (never to
a thread), and the slots are added in a fixed order after the parallel
region. The summation order therefore depends only on the data's shape,
never on the number of threads: 1 and N threads give bit-identical results.

Distances use the expansion ``||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2`` with
the cross term from one GEMM per chunk (float32 data stays float32 there).
Cancellation in that expansion grows with ``||x||``, so data far from the
origin are shifted chunk by chunk by ``shift`` (their mean) into a
per-thread buffer, with centres passed in the same shifted frame (a length-0
``shift`` means no shift). Sums, weights and inertia accumulate in float64.

No kernel validates its inputs: the Python layer does (``fastem._validation``).
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, uint16_t
from libc.stdlib cimport calloc, malloc, free
from libc.float cimport FLT_MAX
from libc.math cimport INFINITY, sqrt
from libc.string cimport memset

from fastem._kernels._blas cimport gemm_rowmajor
from fastem._kernels._common cimport (
    Carver, Partitions, carve, carved_size, chunk_len, first_chunk, floating,
    partitions_free, partitions_init, partitions_sum, slot_of, workspaces_alloc)
from fastem._kernels._openmp cimport omp_get_thread_num
from fastem._kernels._interrupt cimport interrupted, raise_pending

cdef extern from "csrc/fe_kmeans.h" nogil:
    float fe_sqdist_f32(const float *a, const float *b, Py_ssize_t n)
    double fe_sqdist_f64(const double *a, const double *b, Py_ssize_t n)
    float fe_sqnorm_f32(const float *a, Py_ssize_t n)
    double fe_sqnorm_f64(const double *a, Py_ssize_t n)
    Py_ssize_t fe_row_argmin_f32(const float *dist, const float *csq,
                                     Py_ssize_t k, float *best)
    Py_ssize_t fe_row_argmin_f64(const double *dist, const double *csq,
                                     Py_ssize_t k, double *best)
    Py_ssize_t fe_row_argmin2_f32(const float *dist, const float *csq,
                                      Py_ssize_t k, float *best, float *second)
    Py_ssize_t fe_row_argmin2_f64(const double *dist, const double *csq,
                                      Py_ssize_t k, double *best, double *second)
    void fe_kpp_rows_f32(const float *x, Py_ssize_t d, const int32_t *todo,
                             Py_ssize_t n_todo, const float *closest,
                             const float *sw, const float *cand, Py_ssize_t L,
                             uint16_t *improves, double *sums)
    # the k-means++ improvement-mask bit of candidate l, and the software
    # prefetch of gathered rows (FE_PREFETCH_ROWS ahead)
    uint16_t fe_cand_bit(Py_ssize_t l)
    void fe_prefetch_row(const void *row, Py_ssize_t nbytes)
    enum: FE_PREFETCH_ROWS
    void fe_kpp_rows_f64(const double *x, Py_ssize_t d, const int32_t *todo,
                             Py_ssize_t n_todo, const float *closest,
                             const double *sw, const double *cand, Py_ssize_t L,
                             uint16_t *improves, double *sums, double *pots,
                             double scale)



cdef inline double _sqdist(const floating *a, const floating *b,
                           Py_ssize_t n) noexcept nogil:
    """sum_j (a_j - b_j)^2 in the data's precision, in the fixed lanes of
    csrc/fe_kmeans.h: the value the k-means++ candidate pass compares, in every build."""
    if floating is float:
        return fe_sqdist_f32(a, b, n)
    else:
        return fe_sqdist_f64(a, b, n)


cdef inline double _sqnorm(const floating *a, Py_ssize_t n) noexcept nogil:
    """sum_j a_j^2 in the data's precision (the lanes of _sqdist)."""
    if floating is float:
        return fe_sqnorm_f32(a, n)
    else:
        return fe_sqnorm_f64(a, n)


cdef inline void _shift_rows(const floating *x, const floating *shift,
                             Py_ssize_t nb, Py_ssize_t d,
                             floating *out) noexcept nogil:
    """out[i, j] = x[i, j] - shift[j] for a chunk of nb rows."""
    cdef Py_ssize_t i, j
    for i in range(nb):
        for j in range(d):
            out[i * d + j] = x[i * d + j] - shift[j]


cdef inline void _centre_sqnorms(const floating *centres, Py_ssize_t k,
                                 Py_ssize_t d, floating *csq) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(k):
        csq[c] = <floating>_sqnorm(centres + c * d, d)


cdef inline const floating *_in_frame(const floating *x, const floating *shift,
                                      Py_ssize_t nb, Py_ssize_t d,
                                      floating *buf) noexcept nogil:
    """The chunk's rows in the shifted frame: x itself when shift is NULL."""
    if shift == NULL:
        return x
    _shift_rows(x, shift, nb, d, buf)
    return buf


cdef void _lloyd_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                       Py_ssize_t k, const floating *sw,
                       const floating *shift, const floating *centres,
                       const floating *csq, int32_t *labels,
                       floating *xbuf, floating *dist, bint with_norms,
                       double *sums, double *wsum, double *acc_best,
                       double *changed, double *acc_norms) noexcept nogil:
    """One chunk of a Lloyd pass: assign rows, add into the partition's slot.

    dist (nb x k) = -2 X C^T by one GEMM (this orientation packs the small
    centre matrix as BLAS's A operand, the faster way round); then per row
    best = min_k ||c_k||^2 - 2 x.c_k, so ||x - c_best||^2 = best + ||x||^2.

    Adds into the slot: sums[k, :] += w x (shifted frame), wsum[k] += w,
    acc_best += w best, changed += labels changed, and, if ``with_norms``,
    acc_norms += w ||x||^2. The inertia is their total; the norms do not
    depend on the centres, so the Lloyd loop computes them in its first pass
    only.
    """
    cdef Py_ssize_t i, j, c, n_changed = 0
    cdef double w, acc = 0.0, acc_n = 0.0
    cdef floating best
    cdef const floating *rows = _in_frame(x, shift, nb, d, xbuf)
    cdef const floating *xr
    cdef double *sr

    gemm_rowmajor(False, True, <int>nb, <int>k, <int>d, <floating>-2.0,
                  rows, <int>d, centres, <int>d, <floating>0.0, dist, <int>k)
    for i in range(nb):
        if floating is float:
            c = fe_row_argmin_f32(dist + i * k, csq, k, &best)
        else:
            c = fe_row_argmin_f64(dist + i * k, csq, k, &best)
        xr = rows + i * d
        sr = sums + c * d
        w = sw[i] if sw != NULL else 1.0
        if with_norms:
            acc_n += w * _sqnorm(xr, d)
        if sw != NULL:
            for j in range(d):
                sr[j] += w * xr[j]
        else:
            for j in range(d):
                sr[j] += xr[j]
        acc += w * best
        wsum[c] += w
        if labels[i] != c:
            n_changed += 1
            labels[i] = <int32_t>c
    acc_best[0] += acc
    acc_norms[0] += acc_n
    changed[0] += n_changed


cdef struct PassWs:
    # One thread's workspace of a Lloyd or bounded pass (void *: a struct
    # cannot hold the fused type). Returned by value, so that inside a
    # prange the variable it is assigned to is private to the thread.
    void *rows          # nb x d: the chunk's rows in the shifted frame
    void *dist          # nb x k: distance block
    int32_t *gathered   # nb: rows gathered for a full search (bounded pass)


cdef inline PassWs _pass_workspace(Carver *cv, Py_ssize_t nb, Py_ssize_t d,
                                   Py_ssize_t k, Py_ssize_t itemsize,
                                   bint bounded) noexcept nogil:
    """Carve one thread's workspace, or with cv.base NULL measure it: the
    only place that knows its layout."""
    cdef PassWs w
    w.rows = carve(cv, nb * d, itemsize)
    w.dist = carve(cv, nb * k, itemsize)
    w.gathered = <int32_t *>carve(cv, nb if bounded else 0, sizeof(int32_t))
    return w


def lloyd_pass(const floating[:, ::1] X,
               const floating[::1] sample_weight,
               const floating[::1] shift,
               const floating[:, ::1] centres,
               int32_t[::1] labels,
               double[:, ::1] sums,
               double[::1] weights,
               double norms_total,
               Py_ssize_t chunk_rows,
               int n_threads):
    """One Lloyd pass over X: labels, inertia and the next centres' statistics.

    Parameters
    ----------
    X : (n, d) float32 or float64, C order
    sample_weight : (n,) same dtype, or length 0 for unit weights
    shift : (d,) frame shift (the data mean): rows are used as x - shift;
        length 0 to use the rows as they are
    centres : (k, d) centres in the same frame (c - shift)
    labels : (n,) int32, in: previous labels (e.g. -1 at first);
        out: index of the nearest centre
    sums : (k, d) float64 out, sum over assigned rows of w (x - shift)
    weights : (k,) float64 out, sum of w over assigned rows
    norms_total : sum_i w_i ||x_i - shift||^2 as returned by an earlier pass
        over the same X, weights and shift; NaN to compute it in this pass
    chunk_rows : rows per chunk (fixes the summation order)
    n_threads : OpenMP threads

    Returns
    -------
    n_changed : int
        Rows whose label differs from the one passed in.
    inertia : float
        sum_i w_i ||x_i - c_{label_i}||^2 for the centres passed in.
    norms_total : float
        sum_i w_i ||x_i - shift||^2 (computed, or passed through).
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centres.shape[0]
    cdef Py_ssize_t p, c, tid, start
    cdef double tail[3]
    cdef bint with_norms = norms_total != norms_total  # NaN: compute them
    cdef int cancel = 0
    cdef const floating *xp = &X[0, 0]
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef floating *csq = <floating *>malloc(k * sizeof(floating))
    cdef void *raw = NULL
    cdef char *ws = NULL
    cdef Carver cv = Carver(NULL, 0)
    cdef Carver tc
    cdef PassWs tw
    cdef Py_ssize_t per_thread
    cdef double *slot
    cdef Partitions pt
    # slot: [sums (k x d), weights (k), inertia, n_changed, norms]
    pt.slots = NULL
    _pass_workspace(&cv, chunk_rows, d, k, sizeof(floating), False)
    per_thread = carved_size(&cv)
    if csq != NULL and partitions_init(&pt, n, chunk_rows, k * d + k + 3) == 0:
        ws = workspaces_alloc(per_thread, n_threads, &raw)
    if ws == NULL:
        free(csq); free(raw); partitions_free(&pt)
        raise MemoryError("fastem: could not allocate the Lloyd pass workspace")
    with nogil:
        _centre_sqnorms(&centres[0, 0], k, d, csq)
        for p in prange(pt.n_parts, schedule='dynamic', num_threads=n_threads):
            tid = omp_get_thread_num()
            tc = Carver(ws + tid * per_thread, 0)
            tw = _pass_workspace(&tc, chunk_rows, d, k, sizeof(floating), False)
            slot = slot_of(&pt, p)
            for c in range(first_chunk(&pt, p), first_chunk(&pt, p + 1)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                _lloyd_chunk(xp + start * d, chunk_len(&pt, c), d, k,
                             swp + start if swp != NULL else NULL,
                             shp, &centres[0, 0], csq, &labels[start],
                             <floating *>tw.rows, <floating *>tw.dist, with_norms,
                             slot, slot + k * d, slot + k * d + k,
                             slot + k * d + k + 1, slot + k * d + k + 2)
        # fixed-order reduction of the partitions' slots
        memset(&sums[0, 0], 0, k * d * sizeof(double))
        memset(&weights[0], 0, k * sizeof(double))
        memset(tail, 0, 3 * sizeof(double))
        partitions_sum(&pt, 0, k * d, &sums[0, 0])
        partitions_sum(&pt, k * d, k, &weights[0])
        partitions_sum(&pt, k * d + k, 3, tail)
    free(csq); free(raw); partitions_free(&pt)
    raise_pending(cancel)
    norms = tail[2] if with_norms else norms_total
    inertia = tail[0]
    total_changed = <Py_ssize_t>tail[1]
    # sum_i w_i ||x_i - c||^2 = sum_i w_i ||x_i||^2 + sum_i w_i best_i; rounding
    # of the float32 expansion can leave a hair below zero for a perfect fit
    return total_changed, max(norms + inertia, 0.0), norms


# ---------------------------------------------------------------------------
# Bounded Lloyd pass (Hamerly's algorithm): the same iterates as Lloyd's,
# without computing most distances.
#
# Every row keeps an upper bound u >= ||x - c_a|| on the distance to its own
# centre a and a lower bound l <= min_{j != a} ||x - c_j|| on the distance to
# every other centre. When the centres move by drift_j, the triangle
# inequality keeps u + drift_a and l - max_{j != a} drift_j valid. If
# u <= max(l, s_a), where s_a is half the distance from c_a to its nearest
# other centre, no centre can be closer than c_a and the row is skipped
# without reading it. Otherwise u is tightened to the exact distance and the
# test repeated; only rows that still fail get all k distances (one GEMM over
# the gathered rows). Sums move incrementally: a row that changes cluster
# takes w x out of its old cluster's sum and into the new one's, so after the
# first iterations a pass reads little more than the bounds.
#
# The bounds must hold for the distances the arithmetic produces: u is taken
# from an exact float64 difference, and l from the GEMM expansion minus a
# bound on its rounding error (err_scale (||x||^2 + max ||c||^2)).
# ---------------------------------------------------------------------------

cdef inline double _frame_sqdist(const floating *x, const floating *shift,
                                 const floating *c, Py_ssize_t d) noexcept nogil:
    """||(x - shift) - c||^2 in float64 with exact differences.

    Four accumulators over j mod 4 (combined in a fixed order) keep the
    additions from waiting on each other. ``shift`` may be NULL.
    """
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, t0, t1, t2, t3
    cdef Py_ssize_t j = 0
    if shift == NULL:
        while j + 4 <= d:
            t0 = <double>x[j] - <double>c[j]
            t1 = <double>x[j + 1] - <double>c[j + 1]
            t2 = <double>x[j + 2] - <double>c[j + 2]
            t3 = <double>x[j + 3] - <double>c[j + 3]
            s0 += t0 * t0
            s1 += t1 * t1
            s2 += t2 * t2
            s3 += t3 * t3
            j += 4
        while j < d:
            t0 = <double>x[j] - <double>c[j]
            s0 += t0 * t0
            j += 1
    else:
        while j + 4 <= d:
            t0 = (<double>x[j] - <double>shift[j]) - <double>c[j]
            t1 = (<double>x[j + 1] - <double>shift[j + 1]) - <double>c[j + 1]
            t2 = (<double>x[j + 2] - <double>shift[j + 2]) - <double>c[j + 2]
            t3 = (<double>x[j + 3] - <double>shift[j + 3]) - <double>c[j + 3]
            s0 += t0 * t0
            s1 += t1 * t1
            s2 += t2 * t2
            s3 += t3 * t3
            j += 4
        while j < d:
            t0 = (<double>x[j] - <double>shift[j]) - <double>c[j]
            s0 += t0 * t0
            j += 1
    return (s0 + s1) + (s2 + s3)


cdef void _bounded_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                         Py_ssize_t k, const floating *sw, const floating *shift,
                         const floating *centres, const floating *csq,
                         double csq_max, const double *half_sep,
                         const double *drift, double drift_max,
                         double drift_second, Py_ssize_t drift_arg,
                         bint fresh, double err_scale,
                         floating *upper, floating *lower, int32_t *labels,
                         floating *xbuf, floating *dist, int32_t *gathered,
                         double *dsums, double *dweights,
                         double *counts) noexcept nogil:
    """One chunk of a bounded pass; adds sum/weight *changes* into the slot."""
    cdef Py_ssize_t i, j, g, c, a, n_full = 0, n_changed = 0
    cdef double u, l, m, w, xsq, second, v, err2
    # stored bounds are rounded outward past the storage precision
    cdef double up = 1.0 + (2.4e-7 if floating is float else 4.5e-16)
    cdef double down = 1.0 - (2.4e-7 if floating is float else 4.5e-16)
    cdef floating best, second_f
    cdef floating *xr
    cdef Py_ssize_t t, n_todo = 0
    # per-row max(l, s_a), kept in the distance buffer (k >= 2 floats per
    # row there: bounded passes are only used with two or more centres)
    cdef double *mrow = <double *>dist
    if fresh:
        for i in range(nb):
            gathered[i] = <int32_t>i
        n_full = nb
    else:
        # 1. bounds only: most rows stop here without their data being read
        for i in range(nb):
            a = labels[i]
            u = upper[i] + drift[a]
            l = lower[i] - (drift_second if a == drift_arg else drift_max)
            m = l if l > half_sep[a] else half_sep[a]
            lower[i] = <floating>(l * (down if l > 0.0 else up))
            if u <= m:
                upper[i] = <floating>(u * up)
            else:
                gathered[n_todo] = <int32_t>i
                mrow[n_todo] = m
                n_todo += 1
        # 2. tighten u to the exact distance for the others (prefetched)
        for t in range(n_todo):
            if t + FE_PREFETCH_ROWS < n_todo:
                fe_prefetch_row(x + gathered[t + FE_PREFETCH_ROWS] * d,
                                    d * sizeof(floating))
            i = gathered[t]
            u = sqrt(_frame_sqdist(x + i * d, shift, centres + labels[i] * d, d))
            upper[i] = <floating>(u * (1.0 + 1e-6))
            if u > mrow[t]:
                gathered[n_full] = <int32_t>i
                n_full += 1
    if n_full == 0:
        return
    for g in range(n_full):
        i = gathered[g]
        for j in range(d):
            xbuf[g * d + j] = x[i * d + j] - (shift[j] if shift != NULL else 0)
    gemm_rowmajor(False, True, <int>n_full, <int>k, <int>d, <floating>-2.0,
                  xbuf, <int>d, centres, <int>d, <floating>0.0, dist, <int>k)
    for g in range(n_full):
        i = gathered[g]
        xr = xbuf + g * d
        if floating is float:
            c = fe_row_argmin2_f32(dist + g * k, csq, k, &best, &second_f)
        else:
            c = fe_row_argmin2_f64(dist + g * k, csq, k, &best, &second_f)
        second = second_f
        xsq = _sqnorm(xr, d)
        err2 = err_scale * (xsq + csq_max)
        # the upper bound rounds up and the lower one down when stored
        upper[i] = <floating>(sqrt(_frame_sqdist(xr, <const floating *>NULL,
                                                 centres + c * d, d)) * (1.0 + 1e-6))
        v = second + xsq - err2
        lower[i] = <floating>(sqrt(v) * (1.0 - 1e-6) if v > 0.0 else 0.0)
        a = labels[i]
        if fresh or c != a:
            w = sw[i] if sw != NULL else 1.0
            for j in range(d):
                dsums[c * d + j] += w * xr[j]
            dweights[c] += w
            if not fresh:
                for j in range(d):
                    dsums[a * d + j] -= w * xr[j]
                dweights[a] -= w
        if c != a:
            n_changed += 1
            labels[i] = <int32_t>c
    counts[0] += n_changed
    counts[1] += n_full


def bounded_pass(const floating[:, ::1] X,
                 const floating[::1] sample_weight,
                 const floating[::1] shift,
                 const floating[:, ::1] centres,
                 const double[::1] half_sep,
                 const double[::1] drift,
                 floating[::1] upper,
                 floating[::1] lower,
                 int32_t[::1] labels,
                 double[:, ::1] sums,
                 double[::1] weights,
                 bint fresh,
                 Py_ssize_t chunk_rows,
                 int n_threads):
    """One bounded Lloyd pass (see the note above); returns (n_changed, n_full).

    With ``fresh`` every row is assigned from scratch and ``sums``/``weights``
    are recomputed; otherwise they are updated by the rows that change
    cluster. ``drift[j]`` is how far centre j moved since the bounds were
    last valid, ``half_sep[j]`` half its distance to the nearest other
    centre (both in float64, rounded outward by the caller). Frames and
    weights as in ``lloyd_pass``.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centres.shape[0]
    cdef int cancel = 0
    cdef Py_ssize_t p, c, j, tid, start, per_thread, drift_arg = 0
    cdef double drift_max = 0.0, drift_second = 0.0, csq_max = 0.0
    cdef double counts[2]
    cdef double err_scale = 2.0 * (d + 4) * (1.2e-7 if floating is float else 2.3e-16)
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef floating *csq = <floating *>malloc(k * sizeof(floating))
    cdef void *raw = NULL
    cdef char *ws = NULL
    cdef Carver cv = Carver(NULL, 0)
    cdef Carver tc
    cdef PassWs tw
    cdef double *slot
    cdef Partitions pt
    # slot: [sums (k x d), weights (k), n_changed, n_full]
    pt.slots = NULL
    _pass_workspace(&cv, chunk_rows, d, k, sizeof(floating), True)
    per_thread = carved_size(&cv)
    if csq != NULL and partitions_init(&pt, n, chunk_rows, k * d + k + 2) == 0:
        ws = workspaces_alloc(per_thread, n_threads, &raw)
    if ws == NULL:
        free(csq); free(raw); partitions_free(&pt)
        raise MemoryError("fastem: could not allocate the bounded pass workspace")
    with nogil:
        _centre_sqnorms(&centres[0, 0], k, d, csq)
        for j in range(k):
            if csq[j] > csq_max:
                csq_max = csq[j]
            if drift[j] > drift_max:
                drift_second = drift_max
                drift_max = drift[j]
                drift_arg = j
            elif drift[j] > drift_second:
                drift_second = drift[j]
        for p in prange(pt.n_parts, schedule='dynamic', num_threads=n_threads):
            tid = omp_get_thread_num()
            tc = Carver(ws + tid * per_thread, 0)
            tw = _pass_workspace(&tc, chunk_rows, d, k, sizeof(floating), True)
            slot = slot_of(&pt, p)
            for c in range(first_chunk(&pt, p), first_chunk(&pt, p + 1)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                _bounded_chunk(&X[start, 0], chunk_len(&pt, c), d, k,
                               swp + start if swp != NULL else NULL, shp,
                               &centres[0, 0], csq, csq_max, &half_sep[0],
                               &drift[0], drift_max, drift_second, drift_arg,
                               fresh, err_scale, &upper[start], &lower[start],
                               &labels[start], <floating *>tw.rows,
                               <floating *>tw.dist, tw.gathered,
                               slot, slot + k * d, slot + k * d + k)
        # fixed-order reduction; without ``fresh`` the slots update the sums
        if fresh:
            memset(&sums[0, 0], 0, k * d * sizeof(double))
            memset(&weights[0], 0, k * sizeof(double))
        memset(counts, 0, 2 * sizeof(double))
        partitions_sum(&pt, 0, k * d, &sums[0, 0])
        partitions_sum(&pt, k * d, k, &weights[0])
        partitions_sum(&pt, k * d + k, 2, counts)
    free(csq); free(raw); partitions_free(&pt)
    raise_pending(cancel)
    return <Py_ssize_t>counts[0], <Py_ssize_t>counts[1]


def assigned_sqdist(const floating[:, ::1] X,
                    const floating[:, ::1] centres,
                    const int32_t[::1] labels,
                    double[::1] out,
                    int n_threads):
    """out[i] = ||x_i - centres[labels[i]]||^2 in float64 (same frame for both)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], i
    cdef int cancel = 0
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            # every 4096 rows (a static schedule gives each thread one range)
            if cancel or ((i & 4095) == 0 and interrupted(&cancel)):
                continue
            out[i] = _sqdist(&X[i, 0], &centres[labels[i], 0], d)
    raise_pending(cancel)


def pairwise_sqdist(const floating[:, ::1] X,
                    const floating[::1] shift,
                    const floating[:, ::1] centres,
                    floating[:, ::1] out,
                    Py_ssize_t chunk_rows,
                    int n_threads):
    """out[i, k] = ||x_i - c_k||^2 (clipped at 0), chunk by chunk.

    ``centres`` are in the shifted frame (c - shift). The GEMM writes each
    chunk's block of ``out`` directly; ``||x||^2`` and ``||c||^2`` are added
    afterwards.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centres.shape[0]
    cdef Py_ssize_t nbmax = chunk_rows
    cdef Py_ssize_t n_chunks = (n + nbmax - 1) // nbmax
    cdef Py_ssize_t c, start, nb, i, j, tid
    cdef double xsq, v
    cdef int cancel = 0
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef floating *work = <floating *>malloc((n_threads * nbmax * d + k) * sizeof(floating))
    cdef floating *xc
    cdef floating *csq
    cdef floating *orow
    if work == NULL:
        raise MemoryError("fastem: could not allocate the distance workspace")
    csq = work + n_threads * nbmax * d
    with nogil:
        _centre_sqnorms(&centres[0, 0], k, d, csq)
        for c in prange(n_chunks, schedule='static', num_threads=n_threads):
            if interrupted(&cancel):
                continue
            tid = omp_get_thread_num()
            start = c * nbmax
            nb = min(nbmax, n - start)
            xc = <floating *>_in_frame(&X[start, 0], shp, nb, d,
                                       work + tid * nbmax * d)
            gemm_rowmajor(False, True, <int>nb, <int>k, <int>d, <floating>-2.0,
                          xc, <int>d, &centres[0, 0], <int>d, <floating>0.0,
                          &out[start, 0], <int>k)
            for i in range(nb):
                xsq = _sqnorm(xc + i * d, d)
                orow = &out[start + i, 0]
                for j in range(k):
                    v = orow[j] + xsq + csq[j]
                    orow[j] = <floating>(v if v > 0.0 else 0.0)
    free(work)
    raise_pending(cancel)


# ---------------------------------------------------------------------------
# Greedy k-means++ seeding
#
# Each step draws L candidates with probability proportional to w_i D(x_i)^2
# (D = distance to the closest chosen centre), evaluates the potential
# sum_i w_i min(D(x_i)^2, ||x_i - q||^2) of every candidate q, keeps the
# best, and updates D. After a first pass that initialises D, each step is
# a single parallel pass over X (the candidate pass), which also applies the
# previous step's update.
#
# Sampling needs a cumulative sum over all rows; instead of an O(n) cumsum
# per step, a draw first picks a chunk from the (n_chunks,) cumulative chunk
# potentials, then a row inside that chunk. The candidate pass returns, for
# every chunk and candidate, the chunk's potential if that candidate were
# chosen, summed in a fixed order from the very float32 values D^2 will
# take; so once a candidate is picked its column is the next step's chunk
# potentials, with no drift and no pass to recompute them.
#
# Three exact savings keep the passes from re-reading all of X every step:
#
# * Pruning. Every row remembers which chosen centre a is closest to. By the
#   triangle inequality ||x - q|| >= ||q - a|| - ||x - a||, so when
#   ||q - a||^2 / 4 >= ||x - a||^2 = D(x)^2, q cannot beat a for x and
#   min(D(x)^2, ||x - q||^2) = D(x)^2 without reading x. The caller passes
#   the table ||c_a - q||^2 / 4; a relative margin PRUNE_MARGIN keeps the
#   test on the safe side of rounding. Rows for which every candidate is
#   pruned cost two loads.
# * Improvement masks. The candidate pass records, per row, a bit for each
#   candidate that is closer than D(x). Taking the chosen one into account
#   only recomputes the rows whose bit is set for it (a few percent of the
#   rows after the first steps).
# * Deferred updates. That recomputation is done by the next candidate pass,
#   chunk by chunk, right before the chunk's rows are tested (the masks are
#   still those of the previous pass at that point), so that no separate
#   pass scans the masks. The only rows read earlier are those of the chunks
#   a draw lands in (``kpp_settle_rows``), which clears their bits.
# ---------------------------------------------------------------------------

cdef double PRUNE_MARGIN = 1.0 + 1e-4

# index of a row's nearest chosen centre: 16 bits when k <= 65535 (the usual
# case; it saves memory on large data), else 32
ctypedef fused centre_index:
    uint16_t
    int32_t


cdef inline float _to_float32(double v) noexcept nogil:
    """Round a squared distance to float32, saturating instead of overflowing."""
    return <float>(v if v < FLT_MAX else FLT_MAX)

def kpp_init_closest(const floating[:, ::1] X,
                     const floating[::1] sample_weight,
                     const floating[::1] centre,
                     float[::1] closest,
                     centre_index[::1] nearest,
                     double[::1] chunk_pot,
                     Py_ssize_t chunk_rows,
                     int n_threads,
                     double scale):
    """Closest distances and chunk potentials for the first centre.

    Parameters
    ----------
    X : (n, d) data
    sample_weight : (n,) or length 0 for unit weights
    centre : (d,) the first centre
    closest : (n,) float32 out, squared distance to the closest chosen
        centre (float32 whatever X's dtype: seeding needs no more, and it
        halves this array's memory for float64 data)
    nearest : (n,) uint16 or int32 out, index of that centre (0)
    chunk_pot : (n_chunks,) out, sum_{i in chunk} w_i closest_i
    scale : power of two multiplying every squared distance (float64 data:
        keeps them inside float32's range; exact, so the draws do not
        depend on it); 1 for float32 data
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t nbmax = chunk_rows
    cdef Py_ssize_t n_chunks = (n + nbmax - 1) // nbmax
    cdef Py_ssize_t c, start, nb, i
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef int cancel = 0
    with nogil:
        for c in prange(n_chunks, schedule='dynamic', chunksize=4,
                        num_threads=n_threads):
            if interrupted(&cancel):
                continue
            start = c * nbmax
            nb = min(nbmax, n - start)
            for i in range(start, start + nb):
                closest[i] = _to_float32(scale * _sqdist(&X[i, 0], &centre[0], d))
                nearest[i] = 0
            chunk_pot[c] = _chunk_potential(&closest[start],
                                            swp + start if swp != NULL else NULL, nb)
    raise_pending(cancel)


cdef inline double _chunk_potential(const float *closest, const floating *sw,
                                    Py_ssize_t nb) noexcept nogil:
    """sum_i w_i closest_i over one chunk, in 8 interleaved partial sums.

    Row i goes to partial sum i % 8 and the partial sums are added in a
    fixed tree at the end: the order depends only on nb, and the 8
    independent chains (which the compiler may keep in vector registers
    without reassociating anything) avoid one long chain of dependent adds.
    """
    cdef double acc[8]
    cdef Py_ssize_t i, k
    for k in range(8):
        acc[k] = 0.0
    i = 0
    if sw == NULL:
        while i + 8 <= nb:
            for k in range(8):
                acc[k] += <double>closest[i + k]
            i += 8
        for k in range(nb - i):
            acc[k] += <double>closest[i + k]
    else:
        while i + 8 <= nb:
            for k in range(8):
                acc[k] += <double>sw[i + k] * <double>closest[i + k]
            i += 8
        for k in range(nb - i):
            acc[k] += <double>sw[i + k] * <double>closest[i + k]
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef inline void _kpp_apply(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                            const floating *centre, int32_t index, uint16_t bit,
                            uint16_t *improves, float *closest,
                            centre_index *nearest, int32_t *todo,
                            double scale) noexcept nogil:
    """Take centre ``index`` (candidate bit ``bit`` of the last pass) into
    account for nb consecutive rows, and clear that bit.

    Only the rows whose mask has the bit can change: they are listed first
    (branch-free), then recomputed with their data prefetched a few rows
    ahead (they are scattered, and few). Recomputing gives bit for bit the
    distance the candidate pass compared (``_kpp_sqdist``), so a row changes
    exactly when the pass found the centre closer.
    """
    cdef Py_ssize_t i, t, n_todo = 0
    cdef double dist
    for i in range(nb):
        todo[n_todo] = <int32_t>i
        n_todo += (improves[i] & bit) != 0
    for t in range(n_todo):
        if t + FE_PREFETCH_ROWS < n_todo:
            fe_prefetch_row(x + todo[t + FE_PREFETCH_ROWS] * d, d * sizeof(floating))
        i = todo[t]
        improves[i] &= ~bit
        dist = _to_float32(scale * _sqdist(x + i * d, centre, d))
        if dist < closest[i]:
            closest[i] = <float>dist
            nearest[i] = <centre_index>index


def kpp_settle_rows(const floating[:, ::1] X,
                    const floating[::1] centre,
                    int32_t centre_index,
                    Py_ssize_t candidate,
                    uint16_t[::1] improves,
                    float[::1] closest,
                    centre_index[::1] nearest,
                    Py_ssize_t start, Py_ssize_t stop,
                    double scale):
    """Apply the deferred update of centre ``centre_index`` (candidate
    ``candidate`` of the last pass) to rows start..stop-1 now.

    For the rows a draw reads before the next candidate pass; clearing their
    bits leaves nothing for that pass to redo there.
    """
    cdef Py_ssize_t d = X.shape[1]
    cdef int32_t *todo
    if stop <= start:
        return
    todo = <int32_t *>malloc((stop - start) * sizeof(int32_t))
    if todo == NULL:
        raise MemoryError("fastem: could not allocate the k-means++ workspace")
    with nogil:
        _kpp_apply(&X[start, 0], stop - start, d, &centre[0], centre_index,
                   fe_cand_bit(candidate), &improves[start], &closest[start],
                   &nearest[start], todo, scale)
    free(todo)


def kpp_candidate_potentials(const floating[:, ::1] X,
                             const floating[::1] sample_weight,
                             const floating[:, ::1] candidates,
                             const double[:, ::1] quarter_sqdist,
                             float[::1] closest,
                             centre_index[::1] nearest,
                             uint16_t[::1] improves,
                             const floating[::1] last_centre,
                             int32_t last_index,
                             Py_ssize_t last_candidate,
                             double[:, ::1] chunk_pots,
                             double[::1] potentials,
                             Py_ssize_t chunk_rows,
                             int n_threads,
                             double scale):
    """potentials[l] = sum_i w_i min(closest_i, ||x_i - q_l||^2).

    Parameters
    ----------
    candidates : (L, d) the candidate rows
    quarter_sqdist : (n_centres, L) ||c_a - q_l||^2 / 4 for every chosen
        centre a (the pruning bounds)
    closest, nearest : (n,) in/out, see ``kpp_init_closest``; the last
        chosen centre is taken into account first (see below)
    improves : (n,) uint16 in/out: on entry the masks of the last pass, on
        exit bit l set where candidate l is closer than closest_i (see
        ``fe_cand_bit``)
    last_centre, last_index, last_candidate : the centre chosen after the
        last pass, its index among the chosen centres, and which candidate
        of that pass it was; last_index = 0 when there is none to apply
        (the first step: ``kpp_init_closest`` did it)
    chunk_pots : (n_chunks, L) out, sum_{i in chunk} w_i min(closest_i,
        float32(||x_i - q_l||^2)): column l holds the chunk potentials that
        choosing candidate l leaves, summed in the order the next step
        relies on (rows no candidate can beat first, in 8 partial sums,
        then the measured rows in order)
    potentials : (L,) out, in chunk order whatever the thread count
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t L = quarter_sqdist.shape[1]
    cdef Py_ssize_t nbmax = chunk_rows
    cdef Py_ssize_t n_chunks = (n + nbmax - 1) // nbmax
    cdef Py_ssize_t c, start, l, tid
    cdef int cancel = 0
    cdef uint16_t last_bit = fe_cand_bit(last_candidate)
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef const floating *lcp = &last_centre[0] if last_index > 0 else NULL
    # float64 data: the potentials measure the distances in float64, one
    # slot of L per chunk (float32 data: they are the chunk potentials)
    cdef double *slots = NULL
    cdef int32_t *todo = <int32_t *>malloc(n_threads * nbmax * sizeof(int32_t))
    cdef Py_ssize_t a, n_centres = quarter_sqdist.shape[0]
    cdef double *qmin = <double *>malloc(n_centres * sizeof(double))
    if floating is double:
        slots = <double *>malloc(n_chunks * L * sizeof(double))
    if todo == NULL or qmin == NULL or (floating is double and slots == NULL):
        free(slots); free(todo); free(qmin)
        raise MemoryError("fastem: could not allocate the k-means++ workspace")
    with nogil:
        for a in range(n_centres):
            qmin[a] = quarter_sqdist[a, 0]
            for l in range(1, L):
                if quarter_sqdist[a, l] < qmin[a]:
                    qmin[a] = quarter_sqdist[a, l]
        # one chunk at a time: a thread that the OS preempts mid-pass
        # strands as little work as possible (the other finishes the rest)
        for c in prange(n_chunks, schedule='dynamic', chunksize=1,
                        num_threads=n_threads):
            if interrupted(&cancel):
                continue
            tid = omp_get_thread_num()
            start = c * nbmax
            _kpp_candidates_chunk(&X[start, 0], min(nbmax, n - start), d,
                                  swp + start if swp != NULL else NULL,
                                  &candidates[0, 0], L,
                                  qmin, &closest[start],
                                  &nearest[start], &improves[start],
                                  lcp, last_index, last_bit,
                                  todo + tid * nbmax, &chunk_pots[c, 0],
                                  slots + c * L if slots != NULL else NULL, scale)
        for l in range(L):
            potentials[l] = 0.0
        for c in range(n_chunks):
            for l in range(L):
                potentials[l] += slots[c * L + l] if slots != NULL else chunk_pots[c, l]
    free(slots); free(todo); free(qmin)
    raise_pending(cancel)


cdef void _kpp_candidates_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                                const floating *sw, const floating *cand,
                                Py_ssize_t L, const double *qmin,
                                float *closest,
                                centre_index *nearest,
                                uint16_t *improves,
                                const floating *last_centre, int32_t last_index,
                                uint16_t last_bit,
                                int32_t *todo, double *sums,
                                double *pots, double scale) noexcept nogil:
    """One chunk of the candidate pass (see kpp_candidate_potentials).

    sums[l] receives sum_i w_i min(closest_i, float32(||x_i - q_l||^2)) and,
    for float64 data, pots[l] the same sum without the rounding to float32.

    First the deferred update of the last chosen centre (``_kpp_apply``).
    Then every row is tested against the pruning bounds (this reads only
    closest and nearest, without branches): ``qmin[a]`` is the smallest bound
    ||c_a - q_l||^2 / 4 of centre a over the candidates, so one comparison
    tells whether any candidate could beat a; rows that none can beat add
    w_i closest_i to every sum (8 interleaved partial sums, added in a fixed
    tree). The other rows are measured against all L candidates in one
    sweep over the row (``fe_kpp_rows_*`` in csrc/fe_kmeans.h): on typical data a
    row that one candidate may beat is not ruled out for most of the others
    either, and measuring them all together shares the loads of x and the
    final reductions, with no unpredictable branch per candidate. Whether a
    candidate beats a row does not depend on whether a valid bound would have
    skipped the measurement.
    """
    cdef Py_ssize_t i, k, l, n_todo = 0
    cdef double acc[8]
    cdef double pruned, cur
    cdef int keep
    if last_centre != NULL:
        _kpp_apply(x, nb, d, last_centre, last_index, last_bit, improves,
                   closest, nearest, todo, scale)
    for k in range(8):
        acc[k] = 0.0
    i = 0
    while i < nb:
        # rows i..i+7 go to partial sums 0..7 (fully unrolled: the partial
        # sums stay in registers)
        for k in range(8):
            if i + k < nb:
                cur = closest[i + k]
                improves[i + k] = 0
                keep = qmin[nearest[i + k]] < cur * PRUNE_MARGIN
                # branch-free: always write, advance only for kept rows; a
                # kept row adds (0 * its potential) = 0 exactly
                todo[n_todo] = <int32_t>(i + k)
                n_todo += keep
                acc[k] += <double>(1 - keep) * ((sw[i + k] if sw != NULL else 1.0) * cur)
        i += 8
    pruned = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
    if floating is float:
        fe_kpp_rows_f32(x, d, todo, n_todo, closest, sw, cand, L, improves, sums)
    else:
        fe_kpp_rows_f64(x, d, todo, n_todo, closest, sw, cand, L, improves,
                            sums, pots, scale)
    for l in range(L):
        sums[l] = pruned + sums[l]
        if pots != NULL:
            pots[l] = pruned + pots[l]
