"""K-means kernels: chunked, OpenMP-parallel passes over the rows of X.

Every kernel walks X in chunks of ``chunk_rows`` consecutive rows (the last
chunk may be shorter). Chunks are processed in *rounds* of ``ROUND_CHUNKS``
chunks: inside a round the chunks run in parallel (``prange``, static
schedule) and each writes its partial statistics into its own slot; after the
round the slots are added into the totals in slot order. The summation order
therefore depends only on the chunk size, never on the number of threads, and
1 and N threads give bit-identical results.

Distances use the expansion ``||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2`` with
the cross term from one GEMM per chunk (float32 data stays float32 there).
Cancellation in that expansion grows with ``||x||``, so the chunk is first
shifted by ``shift`` (the data mean) into a per-thread buffer, and centres
are passed in the same shifted frame. Sums, weights and squared errors are
accumulated in float64.

No kernel validates its inputs: the Python layer does (``fastem._validation``).
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from fastem._kernels._blas cimport floating, gemm_rowmajor
from fastem._kernels._openmp cimport omp_get_thread_num

cdef extern from "_argmin.h" nogil:
    void fastem_argmin_f32(const float *dist, const float *csq, float *best,
                           int32_t *lab, Py_ssize_t nb, Py_ssize_t n_centres)
    void fastem_argmin_f64(const double *dist, const double *csq, double *best,
                           int64_t *lab, Py_ssize_t nb, Py_ssize_t n_centres)

# Chunks per reduction round. Fixed (not tied to the thread count) so that the
# order of floating-point additions is reproducible; large enough that a
# round keeps all cores busy, small enough that the slots stay cache-sized.
cdef enum:
    ROUND_CHUNKS = 32

ROUND = ROUND_CHUNKS


cdef inline double _sqdist(const floating *a, const floating *b,
                           Py_ssize_t n) noexcept nogil:
    """sum_j (a_j - b_j)^2 in float64, four independent accumulators.

    The four partial sums break the add-latency chain and let the compiler
    pack them into SIMD registers; their combination order is fixed, so the
    result is deterministic.
    """
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, d0, d1, d2, d3
    cdef Py_ssize_t j = 0
    while j + 4 <= n:
        d0 = <double>a[j] - <double>b[j]
        d1 = <double>a[j + 1] - <double>b[j + 1]
        d2 = <double>a[j + 2] - <double>b[j + 2]
        d3 = <double>a[j + 3] - <double>b[j + 3]
        s0 += d0 * d0
        s1 += d1 * d1
        s2 += d2 * d2
        s3 += d3 * d3
        j += 4
    while j < n:
        d0 = <double>a[j] - <double>b[j]
        s0 += d0 * d0
        j += 1
    return (s0 + s1) + (s2 + s3)


cdef inline double _sqnorm(const floating *a, Py_ssize_t n) noexcept nogil:
    """sum_j a_j^2 in float64, four independent accumulators (see _sqdist)."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef Py_ssize_t j = 0
    while j + 4 <= n:
        s0 += <double>a[j] * a[j]
        s1 += <double>a[j + 1] * a[j + 1]
        s2 += <double>a[j + 2] * a[j + 2]
        s3 += <double>a[j + 3] * a[j + 3]
        j += 4
    while j < n:
        s0 += <double>a[j] * a[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


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
                       floating *xbuf, floating *dist, floating *best, void *lab,
                       double *sums, double *wsum, double *inertia,
                       Py_ssize_t *changed) noexcept nogil:
    """One chunk of a Lloyd pass: assign rows, fill this chunk's slot.

    dist (k x nb) = -2 C X^T by GEMM: the centre index is the slow axis, so
    the argmin over centres is a vertical, vectorisable update per sample.
    best_i = min_k ||c_k||^2 - 2 x_i.c_k, so ||x_i - c||^2 = best_i + ||x_i||^2.

    Slot outputs (zeroed here): sums[k, :] = sum w x (shifted frame),
    wsum[k] = sum w, inertia = sum w ||x - c_label||^2.
    """
    cdef Py_ssize_t i, j, c, n_changed = 0
    cdef double w, dsq, acc = 0.0
    cdef const floating *rows = _in_frame(x, shift, nb, d, xbuf)
    cdef const floating *xr
    cdef double *sr
    cdef int32_t *lab32 = <int32_t *>lab
    cdef int64_t *lab64 = <int64_t *>lab

    gemm_rowmajor(False, True, <int>k, <int>nb, <int>d, <floating>-2.0,
                  centres, <int>d, rows, <int>d, <floating>0.0, dist, <int>nb)
    if floating is float:
        fastem_argmin_f32(dist, csq, best, lab32, nb, k)
    else:
        fastem_argmin_f64(dist, csq, best, lab64, nb, k)

    memset(sums, 0, k * d * sizeof(double))
    memset(wsum, 0, k * sizeof(double))
    for i in range(nb):
        if floating is float:
            c = lab32[i]
        else:
            c = lab64[i]
        xr = rows + i * d
        sr = sums + c * d
        dsq = best[i] + _sqnorm(xr, d)
        if dsq < 0.0:  # rounding in the expansion
            dsq = 0.0
        if sw != NULL:
            w = sw[i]
            for j in range(d):
                sr[j] += w * xr[j]
            acc += w * dsq
            wsum[c] += w
        else:
            for j in range(d):
                sr[j] += xr[j]
            acc += dsq
            wsum[c] += 1.0
        if labels[i] != c:
            n_changed += 1
            labels[i] = <int32_t>c
    inertia[0] = acc
    changed[0] = n_changed


def lloyd_pass(const floating[:, ::1] X,
               const floating[::1] sample_weight,
               const floating[::1] shift,
               const floating[:, ::1] centres,
               int32_t[::1] labels,
               double[:, ::1] sums,
               double[::1] weights,
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
    chunk_rows : rows per chunk (fixes the summation order)
    n_threads : OpenMP threads

    Returns
    -------
    n_changed : int
        Rows whose label differs from the one passed in.
    inertia : float
        sum_i w_i ||x_i - c_{label_i}||^2 for the centres passed in.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centres.shape[0]
    cdef Py_ssize_t nbmax = chunk_rows
    cdef Py_ssize_t n_chunks = (n + nbmax - 1) // nbmax
    cdef Py_ssize_t per_thread = nbmax * d + k * nbmax + nbmax
    cdef Py_ssize_t slot_len = k * d + k + 1
    cdef Py_ssize_t rnd, r0, nr, s, tid, c, start, nb, e, total_changed = 0
    cdef double inertia = 0.0
    cdef const floating *xp = &X[0, 0]
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef floating *work = <floating *>malloc(n_threads * per_thread * sizeof(floating) + k * sizeof(floating))
    cdef int64_t *labwork = <int64_t *>malloc(n_threads * nbmax * sizeof(int64_t))
    cdef double *slots = <double *>malloc(ROUND_CHUNKS * slot_len * sizeof(double))
    cdef Py_ssize_t *changed = <Py_ssize_t *>malloc(ROUND_CHUNKS * sizeof(Py_ssize_t))
    cdef floating *csq
    cdef floating *tw
    cdef double *slot
    if work == NULL or labwork == NULL or slots == NULL or changed == NULL:
        free(work); free(labwork); free(slots); free(changed)
        raise MemoryError("fastem: could not allocate the Lloyd pass workspace")
    csq = work + n_threads * per_thread
    with nogil:
        memset(&sums[0, 0], 0, k * d * sizeof(double))
        memset(&weights[0], 0, k * sizeof(double))
        _centre_sqnorms(&centres[0, 0], k, d, csq)
        for rnd in range((n_chunks + ROUND_CHUNKS - 1) // ROUND_CHUNKS):
            r0 = rnd * ROUND_CHUNKS
            nr = min(<Py_ssize_t>ROUND_CHUNKS, n_chunks - r0)
            for s in prange(nr, schedule='static', num_threads=n_threads):
                tid = omp_get_thread_num()
                c = r0 + s
                start = c * nbmax
                nb = min(nbmax, n - start)
                tw = work + tid * per_thread
                slot = slots + s * slot_len
                _lloyd_chunk(xp + start * d, nb, d, k,
                             swp + start if swp != NULL else NULL,
                             shp, &centres[0, 0], csq, &labels[start],
                             tw, tw + nbmax * d, tw + nbmax * d + k * nbmax,
                             labwork + tid * nbmax,
                             slot, slot + k * d, slot + k * d + k,
                             &changed[s])
            # fixed-order reduction of this round's slots
            for s in range(nr):
                slot = slots + s * slot_len
                for e in range(k * d):
                    (&sums[0, 0])[e] += slot[e]
                for e in range(k):
                    weights[e] += slot[k * d + e]
                inertia += slot[k * d + k]
                total_changed += changed[s]
    free(work); free(labwork); free(slots); free(changed)
    return total_changed, inertia


def assigned_sqdist(const floating[:, ::1] X,
                    const floating[:, ::1] centres,
                    const int32_t[::1] labels,
                    double[::1] out,
                    int n_threads):
    """out[i] = ||x_i - centres[labels[i]]||^2 in float64 (same frame for both)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], i
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            out[i] = _sqdist(&X[i, 0], &centres[labels[i], 0], d)


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


# ---------------------------------------------------------------------------
# Greedy k-means++ seeding
#
# Each step draws candidates with probability proportional to
# w_i * D(x_i)^2 (D = distance to the closest chosen centre), evaluates the
# potential sum_i w_i min(D(x_i)^2, ||x_i - cand||^2) of every candidate in
# one pass, keeps the best, and updates D in a second pass. Sampling needs a
# cumulative sum over all rows; instead of an O(n) cumsum per step, the update
# pass records each chunk's potential, so a draw first picks a chunk from the
# (n_chunks,) cumulative sums and then a row inside it.
# ---------------------------------------------------------------------------

def kpp_update_closest(const floating[:, ::1] X,
                       const floating[::1] sample_weight,
                       const floating[::1] centre,
                       floating[::1] closest,
                       double[::1] chunk_pot,
                       bint first,
                       Py_ssize_t chunk_rows,
                       int n_threads):
    """closest[i] = min(closest[i], ||x_i - centre||^2); chunk potentials.

    With ``first`` the old ``closest`` is ignored. ``chunk_pot[c]`` receives
    sum_{i in chunk c} w_i closest[i] (float64, fixed order).
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t nbmax = chunk_rows
    cdef Py_ssize_t n_chunks = (n + nbmax - 1) // nbmax
    cdef Py_ssize_t c, start
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    with nogil:
        for c in prange(n_chunks, schedule='static', num_threads=n_threads):
            start = c * nbmax
            chunk_pot[c] = _kpp_update_chunk(
                &X[start, 0], min(nbmax, n - start), d,
                swp + start if swp != NULL else NULL,
                &centre[0], &closest[start], first)


cdef double _kpp_update_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                              const floating *sw, const floating *centre,
                              floating *closest, bint first) noexcept nogil:
    """Update one chunk's closest distances; return its weighted potential."""
    cdef Py_ssize_t i
    cdef double dist, pot = 0.0
    for i in range(nb):
        dist = _sqdist(x + i * d, centre, d)
        if not first and closest[i] < dist:
            dist = closest[i]
        closest[i] = <floating>dist
        pot += (sw[i] if sw != NULL else 1.0) * <double>closest[i]
    return pot


def kpp_candidate_potentials(const floating[:, ::1] X,
                             const floating[::1] sample_weight,
                             const floating[::1] shift,
                             const floating[:, ::1] candidates,
                             const floating[::1] closest,
                             double[::1] potentials,
                             Py_ssize_t chunk_rows,
                             int n_threads):
    """potentials[l] = sum_i w_i min(closest[i], ||x_i - cand_l||^2).

    ``candidates`` are in the shifted frame. Cross terms come from one GEMM
    per chunk, (nb x d) @ (d x L).
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], L = candidates.shape[0]
    cdef Py_ssize_t nbmax = chunk_rows
    cdef Py_ssize_t n_chunks = (n + nbmax - 1) // nbmax
    cdef Py_ssize_t per_thread = nbmax * d + nbmax * L
    cdef Py_ssize_t rnd, r0, nr, s, c, start, nb, i, l, tid
    cdef double xsq, dist, w, cur
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef floating *work = <floating *>malloc(n_threads * per_thread * sizeof(floating))
    cdef double *slots = <double *>malloc(ROUND_CHUNKS * L * sizeof(double))
    cdef double *csq = <double *>malloc(L * sizeof(double))
    cdef floating *xc
    cdef floating *dots
    cdef double *slot
    if work == NULL or slots == NULL or csq == NULL:
        free(work); free(slots); free(csq)
        raise MemoryError("fastem: could not allocate the k-means++ workspace")
    with nogil:
        for l in range(L):
            csq[l] = _sqnorm(&candidates[l, 0], d)
            potentials[l] = 0.0
        for rnd in range((n_chunks + ROUND_CHUNKS - 1) // ROUND_CHUNKS):
            r0 = rnd * ROUND_CHUNKS
            nr = min(<Py_ssize_t>ROUND_CHUNKS, n_chunks - r0)
            for s in prange(nr, schedule='static', num_threads=n_threads):
                tid = omp_get_thread_num()
                c = r0 + s
                start = c * nbmax
                nb = min(nbmax, n - start)
                dots = work + tid * per_thread + nbmax * d
                slot = slots + s * L
                xc = <floating *>_in_frame(&X[start, 0], shp, nb, d,
                                           work + tid * per_thread)
                gemm_rowmajor(False, True, <int>nb, <int>L, <int>d,
                              <floating>1.0, xc, <int>d, &candidates[0, 0],
                              <int>d, <floating>0.0, dots, <int>L)
                for l in range(L):
                    slot[l] = 0.0
                for i in range(nb):
                    xsq = _sqnorm(xc + i * d, d)
                    w = swp[start + i] if swp != NULL else 1.0
                    cur = closest[start + i]
                    for l in range(L):
                        dist = xsq + csq[l] - 2.0 * dots[i * L + l]
                        if dist > cur:
                            dist = cur
                        if dist < 0.0:
                            dist = 0.0
                        slot[l] += w * dist
            for s in range(nr):
                for l in range(L):
                    potentials[l] += slots[s * L + l]
    free(work); free(slots); free(csq)
