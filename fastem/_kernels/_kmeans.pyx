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
from libc.stdint cimport int32_t, int64_t, uint16_t
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memset

from fastem._kernels._blas cimport floating, gemm_rowmajor
from fastem._kernels._openmp cimport omp_get_thread_num

cdef extern from "_simd.h" nogil:
    float fastem_sqdist_f32(const float *a, const float *b, Py_ssize_t n)
    double fastem_sqdist_f64(const double *a, const double *b, Py_ssize_t n)
    float fastem_sqnorm_f32(const float *a, Py_ssize_t n)
    double fastem_sqnorm_f64(const double *a, Py_ssize_t n)
    void fastem_sqdist_many_f32(const float *x, const float *qt, Py_ssize_t d,
                                Py_ssize_t lp, float *d2)
    void fastem_sqdist_many_f64(const double *x, const double *qt, Py_ssize_t d,
                                Py_ssize_t lp, double *d2)
    void fastem_argmin_f32(const float *dist, const float *csq, float *best,
                           int32_t *lab, Py_ssize_t nb, Py_ssize_t n_centres)
    void fastem_argmin_f64(const double *dist, const double *csq, double *best,
                           int64_t *lab, Py_ssize_t nb, Py_ssize_t n_centres)

# Partitions of a pass: the chunks are split into at most MAX_PARTITIONS
# contiguous runs, each accumulated sequentially into its own slot by
# whichever thread takes it (dynamic schedule, so a descheduled thread does
# not stall the pass), then the slots are added in partition order. The split
# depends only on the number of chunks and the slot size, never on the thread
# count, so the order of every floating-point sum is fixed.
cdef enum:
    MAX_PARTITIONS = 64
    # slots of all partitions together stay below this many doubles (64 MiB)
    MAX_SLOT_DOUBLES = 8 * 1024 * 1024


cdef inline Py_ssize_t n_partitions(Py_ssize_t n_chunks,
                                    Py_ssize_t slot_len) noexcept nogil:
    cdef Py_ssize_t p = MAX_PARTITIONS
    if p * slot_len > MAX_SLOT_DOUBLES:
        p = max(<Py_ssize_t>8, MAX_SLOT_DOUBLES // slot_len)
    return max(<Py_ssize_t>1, min(p, n_chunks))


cdef inline Py_ssize_t partition_start(Py_ssize_t p, Py_ssize_t n_parts,
                                       Py_ssize_t n_chunks) noexcept nogil:
    """First chunk of partition p: an even split of n_chunks into n_parts."""
    return (p * n_chunks) // n_parts


cdef inline double _sqdist(const floating *a, const floating *b,
                           Py_ssize_t n) noexcept nogil:
    """sum_j (a_j - b_j)^2, vectorised, in the data's precision."""
    if floating is float:
        return fastem_sqdist_f32(a, b, n)
    else:
        return fastem_sqdist_f64(a, b, n)


cdef inline double _sqnorm(const floating *a, Py_ssize_t n) noexcept nogil:
    """sum_j a_j^2, vectorised, in the data's precision."""
    if floating is float:
        return fastem_sqnorm_f32(a, n)
    else:
        return fastem_sqnorm_f64(a, n)


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
                       double *changed) noexcept nogil:
    """One chunk of a Lloyd pass: assign rows, fill this chunk's slot.

    dist (k x nb) = -2 C X^T by GEMM: the centre index is the slow axis, so
    the argmin over centres is a vertical, vectorisable update per sample.
    best_i = min_k ||c_k||^2 - 2 x_i.c_k, so ||x_i - c||^2 = best_i + ||x_i||^2.

    Adds into the partition's slot: sums[k, :] += w x (shifted frame),
    wsum[k] += w, inertia += w ||x - c_label||^2, changed += labels changed.
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
    inertia[0] += acc
    changed[0] += n_changed


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
    cdef Py_ssize_t slot_len = k * d + k + 2
    cdef Py_ssize_t n_parts = n_partitions(n_chunks, slot_len)
    cdef Py_ssize_t p, c, c0, c1, tid, start, nb, e, total_changed = 0
    cdef double inertia = 0.0
    cdef const floating *xp = &X[0, 0]
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef floating *work = <floating *>malloc(n_threads * per_thread * sizeof(floating) + k * sizeof(floating))
    cdef int64_t *labwork = <int64_t *>malloc(n_threads * nbmax * sizeof(int64_t))
    cdef double *slots = <double *>calloc(n_parts * slot_len, sizeof(double))
    cdef floating *csq
    cdef floating *tw
    cdef double *slot
    if work == NULL or labwork == NULL or slots == NULL:
        free(work); free(labwork); free(slots)
        raise MemoryError("fastem: could not allocate the Lloyd pass workspace")
    csq = work + n_threads * per_thread
    with nogil:
        _centre_sqnorms(&centres[0, 0], k, d, csq)
        for p in prange(n_parts, schedule='dynamic', num_threads=n_threads):
            tid = omp_get_thread_num()
            tw = work + tid * per_thread
            slot = slots + p * slot_len
            c0 = partition_start(p, n_parts, n_chunks)
            c1 = partition_start(p + 1, n_parts, n_chunks)
            for c in range(c0, c1):
                start = c * nbmax
                nb = min(nbmax, n - start)
                _lloyd_chunk(xp + start * d, nb, d, k,
                             swp + start if swp != NULL else NULL,
                             shp, &centres[0, 0], csq, &labels[start],
                             tw, tw + nbmax * d, tw + nbmax * d + k * nbmax,
                             labwork + tid * nbmax,
                             slot, slot + k * d, slot + k * d + k,
                             slot + k * d + k + 1)
        # fixed-order reduction of the partitions' slots
        memset(&sums[0, 0], 0, k * d * sizeof(double))
        memset(&weights[0], 0, k * sizeof(double))
        for p in range(n_parts):
            slot = slots + p * slot_len
            for e in range(k * d):
                (&sums[0, 0])[e] += slot[e]
            for e in range(k):
                weights[e] += slot[k * d + e]
            inertia += slot[k * d + k]
            total_changed += <Py_ssize_t>slot[k * d + k + 1]
    free(work); free(labwork); free(slots)
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
# Each step draws L candidates with probability proportional to w_i D(x_i)^2
# (D = distance to the closest chosen centre), evaluates the potential
# sum_i w_i min(D(x_i)^2, ||x_i - q||^2) of every candidate q in one pass,
# keeps the best, and updates D in a second pass.
#
# Sampling needs a cumulative sum over all rows; instead of an O(n) cumsum
# per step, the update pass records each chunk's potential, so a draw first
# picks a chunk from the (n_chunks,) cumulative sums, then a row inside it.
#
# Two exact savings keep the passes from re-reading all of X every step:
#
# * Pruning. Every row remembers which chosen centre a is closest to. By the
#   triangle inequality ||x - q|| >= ||q - a|| - ||x - a||, so when
#   ||q - a||^2 / 4 >= ||x - a||^2 = D(x)^2, q cannot beat a for x and
#   min(D(x)^2, ||x - q||^2) = D(x)^2 without reading x. The caller passes
#   the table ||c_a - q||^2 / 4; a relative margin PRUNE_MARGIN keeps the
#   test on the safe side of rounding. Rows for which every candidate is
#   pruned cost two loads.
# * Improvement masks. The candidate pass records, per row, a bit for each
#   candidate that is closer than D(x). The update pass then recomputes a
#   distance only for rows whose bit is set for the chosen candidate (a few
#   percent of the rows after the first steps) and otherwise reads only the
#   row's D(x) to refresh the chunk potentials.
# ---------------------------------------------------------------------------

cdef double PRUNE_MARGIN = 1.0 + 1e-4

# bit of candidate l in the uint16 improvement mask; candidates 15 and up
# share the last bit (their rows are simply recomputed when one is chosen)
cdef inline uint16_t _cand_bit(Py_ssize_t l) noexcept nogil:
    return <uint16_t>(1 << (l if l < 15 else 15))


def kpp_update_closest(const floating[:, ::1] X,
                       const floating[::1] sample_weight,
                       const floating[::1] centre,
                       int32_t centre_index,
                       Py_ssize_t candidate,
                       floating[::1] closest,
                       int32_t[::1] nearest,
                       const uint16_t[::1] improves,
                       double[::1] chunk_pot,
                       Py_ssize_t chunk_rows,
                       int n_threads):
    """Take a new centre into account: closest distances and chunk potentials.

    Parameters
    ----------
    X : (n, d) data
    sample_weight : (n,) or length 0 for unit weights
    centre : (d,) the new centre
    centre_index : its index among the chosen centres; 0 for the first, when
        ``closest`` and ``nearest`` are initialised rather than updated
    candidate : which candidate of the last candidate pass it was (selects
        the bit of ``improves``); ignored for the first centre
    closest : (n,) in/out, squared distance to the closest chosen centre
    nearest : (n,) int32 in/out, index of that centre
    improves : (n,) uint16, the candidate pass's improvement masks
    chunk_pot : (n_chunks,) out, sum_{i in chunk} w_i closest_i
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t nbmax = chunk_rows
    cdef Py_ssize_t n_chunks = (n + nbmax - 1) // nbmax
    cdef Py_ssize_t c, start
    cdef uint16_t bit = _cand_bit(candidate)
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    with nogil:
        for c in prange(n_chunks, schedule='dynamic', chunksize=4,
                        num_threads=n_threads):
            start = c * nbmax
            chunk_pot[c] = _kpp_update_chunk(
                &X[start, 0], min(nbmax, n - start), d,
                swp + start if swp != NULL else NULL, &centre[0],
                centre_index, bit, &improves[start], &closest[start],
                &nearest[start])


cdef double _kpp_update_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                              const floating *sw, const floating *centre,
                              int32_t index, uint16_t bit,
                              const uint16_t *improves, floating *closest,
                              int32_t *nearest) noexcept nogil:
    """Update one chunk's closest distances; return its weighted potential."""
    cdef Py_ssize_t i
    cdef double dist, pot = 0.0
    for i in range(nb):
        if index == 0:
            closest[i] = <floating>_sqdist(x + i * d, centre, d)
            nearest[i] = 0
        elif improves[i] & bit:
            dist = _sqdist(x + i * d, centre, d)
            if dist < closest[i]:
                closest[i] = <floating>dist
                nearest[i] = index
        pot += (sw[i] if sw != NULL else 1.0) * <double>closest[i]
    return pot


def kpp_candidate_potentials(const floating[:, ::1] X,
                             const floating[::1] sample_weight,
                             const floating[:, ::1] candidates_t,
                             const double[:, ::1] quarter_sqdist,
                             const floating[::1] closest,
                             const int32_t[::1] nearest,
                             uint16_t[::1] improves,
                             double[::1] potentials,
                             Py_ssize_t chunk_rows,
                             int n_threads):
    """potentials[l] = sum_i w_i min(closest_i, ||x_i - q_l||^2).

    Parameters
    ----------
    candidates_t : (d, lp) the L candidates transposed, zero-padded to lp
        columns (lp >= L, a multiple of the SIMD width)
    quarter_sqdist : (n_centres, L) ||c_a - q_l||^2 / 4 for every chosen
        centre a (the pruning bounds)
    improves : (n,) uint16 out, bit l set where candidate l is closer than
        closest_i (see ``_cand_bit``)
    potentials : (L,) out
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t L = quarter_sqdist.shape[1], lp = candidates_t.shape[1]
    cdef Py_ssize_t nbmax = chunk_rows
    cdef Py_ssize_t n_chunks = (n + nbmax - 1) // nbmax
    cdef Py_ssize_t c, start, l, tid
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    # one slot of L potentials per chunk: small, and the reduction below runs
    # in chunk order whatever the thread count
    cdef double *slots = <double *>malloc(n_chunks * L * sizeof(double))
    cdef floating *d2 = <floating *>malloc(n_threads * lp * sizeof(floating))
    if slots == NULL or d2 == NULL:
        free(slots); free(d2)
        raise MemoryError("fastem: could not allocate the k-means++ workspace")
    with nogil:
        for c in prange(n_chunks, schedule='dynamic', chunksize=4,
                        num_threads=n_threads):
            tid = omp_get_thread_num()
            start = c * nbmax
            _kpp_candidates_chunk(&X[start, 0], min(nbmax, n - start), d,
                                  swp + start if swp != NULL else NULL,
                                  &candidates_t[0, 0], L, lp,
                                  &quarter_sqdist[0, 0], &closest[start],
                                  &nearest[start], &improves[start],
                                  d2 + tid * lp, slots + c * L)
        for l in range(L):
            potentials[l] = 0.0
        for c in range(n_chunks):
            for l in range(L):
                potentials[l] += slots[c * L + l]
    free(slots); free(d2)


cdef void _kpp_candidates_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                                const floating *sw, const floating *qt,
                                Py_ssize_t L, Py_ssize_t lp, const double *qd,
                                const floating *closest, const int32_t *nearest,
                                uint16_t *improves, floating *d2,
                                double *pot) noexcept nogil:
    """One chunk of the candidate pass (see kpp_candidate_potentials)."""
    cdef Py_ssize_t i, l
    cdef double w, cur, bound
    cdef const double *qrow
    cdef bint needed
    cdef uint16_t mask
    for l in range(L):
        pot[l] = 0.0
    for i in range(nb):
        w = sw[i] if sw != NULL else 1.0
        cur = closest[i]
        bound = cur * PRUNE_MARGIN
        qrow = qd + nearest[i] * L
        needed = False
        for l in range(L):
            if qrow[l] < bound:
                needed = True
                break
        mask = 0
        if needed:
            if floating is float:
                fastem_sqdist_many_f32(x + i * d, qt, d, lp, d2)
            else:
                fastem_sqdist_many_f64(x + i * d, qt, d, lp, d2)
            for l in range(L):
                if d2[l] < cur:
                    mask |= _cand_bit(l)
                    pot[l] += w * d2[l]
                else:
                    pot[l] += w * cur
        else:
            for l in range(L):
                pot[l] += w * cur
        improves[i] = mask
