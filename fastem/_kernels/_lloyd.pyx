"""Lloyd passes and distances: chunked, OpenMP-parallel passes over the rows of X.

Every kernel walks X in chunks of ``chunk_rows`` consecutive rows (the last
chunk may be shorter), in one parallel region per pass. Partial sums go to
slots that belong to a fixed partition of the chunks (never to a thread, see
_common.pxd), and the slots are added in a fixed order after the parallel
region: 1 and N threads give bit-identical results.

Distances use the expansion ``||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2``, the
cross terms and the nearest centre from the register-blocked tiles of
csrc/fe_tiles.h (float32 data stays float32 there; ``tiles_path`` in
_kmeans_common.pxd: every build but the baseline x86-64 one on a CPU without
FMA, which takes one GEMM per chunk and a scan of its K-wide block).
Cancellation in that expansion grows with ``||x||``, so data far from the
origin are shifted chunk by chunk by ``shift`` (their mean) into a
per-thread buffer, with centres passed in the same shifted frame (a length-0
``shift`` means no shift). Sums, weights and inertia accumulate in float64.

Narrow rows (``lowd_path`` in _kmeans_common.pxd: d <= 8 in float32, d <= 10
in float64) take the low-D path instead (csrc/fe_lowd.h): each row's k
distances from exact differences ((x - shift) - c)^2 in registers, the
running minimum kept there too, no GEMM, no K-wide block written and read
back, the shift applied on the fly (no copy). Its distances are the more
accurate ones (no cancellation), so its inertia is the direct sum of the
minimum distances, not ||x||^2 plus the expansion's minimum; labels differ
from the GEMM path's only where two centres are within the GEMM path's
rounding of each other.

The bounded (Hamerly) passes are in _bounded.pyx, greedy k-means++ in
_kmeanspp.pyx; the helpers they share in _kmeans_common.pxd. The Python
layer (``fastem._kmeans``, ``fastem._validation``) checks every shape
before it calls these kernels.
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from fastem._kernels._blas cimport gemm_rowmajor
from fastem._kernels._common cimport (
    chunk_len, first_chunk, floating, partitions_sum, partitions_sum_parallel, require,
    require_pass, slot_open)
from fastem._kernels._openmp cimport omp_get_thread_num
from fastem._kernels._interrupt cimport interrupted, raise_pending
from fastem._kernels._kmeans_common cimport (
    CentrePass, PassWs, _add_row, _centre_sqnorms, _in_frame, _sqdist, _sqnorm,
    centre_pass_close, centre_pass_open, centre_pass_tiles, centre_pass_workspace,
    lowd_path, require_centre_pass, tiles_chunk)
from fastem._kernels._kmeans_c cimport (
    fe_lowd_chunk_f32, fe_lowd_chunk_f64, fe_row_argmin_f32, fe_row_argmin_f64)

cdef void _lloyd_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                       Py_ssize_t k, const floating *sw,
                       const floating *shift, const floating *centres,
                       const floating *csq, const floating *tiles,
                       int32_t *labels, const PassWs *tw, bint with_norms,
                       double *sums, double *wsum, double *acc_best,
                       double *changed, double *acc_norms) noexcept nogil:
    """One chunk of a Lloyd pass: assign rows, add into the partition's slot.

    Per row best = min_k ||c_k||^2 - 2 x.c_k, so ||x - c_best||^2 = best +
    ||x||^2: with ``tiles`` (the tiles path, _kmeans_common.pxd) by
    csrc/fe_tiles.h, which takes the rows in the frame of ``shift`` as they
    are (no copy); otherwise from dist (nb x k) = -2 X C^T by one GEMM of
    the rows copied into the frame (this orientation packs the small centre
    matrix as BLAS's A operand, the faster way round) and a scan of each
    row of it. ``tw``: the thread's workspace (the copy, dist or the tiles'
    outputs).

    Adds into the slot: sums[k, :] += w x (shifted frame), wsum[k] += w,
    acc_best += w best, changed += labels changed, and, if ``with_norms``,
    acc_norms += w ||x||^2. The inertia is their total; the norms do not
    depend on the centres, so the Lloyd loop computes them in its first pass
    only. A row's x - shift is rounded in the data's precision wherever it
    is used, as the copy holds it: both paths give the same sums and norms.
    """
    cdef Py_ssize_t i, j, c, n_changed = 0
    cdef double w, acc = 0.0, acc_n = 0.0
    cdef floating best
    # the tiles read the rows in place; the GEMM needs them in the frame
    cdef const floating *rows = x if tiles != NULL else _in_frame(x, shift, nb, d,
                                                                 <floating *>tw.rows)
    cdef const floating *rshift = shift if tiles != NULL else NULL
    cdef floating *dist = <floating *>tw.dist
    cdef const floating *xr
    cdef double *sr

    if tiles != NULL:
        tiles_chunk(rows, NULL, nb, d, rshift, tiles, k, tw, False, 0, k)
    else:
        gemm_rowmajor(False, True, <int>nb, <int>k, <int>d, <floating>-2.0,
                      rows, <int>d, centres, <int>d, <floating>0.0, dist, <int>k)
    for i in range(nb):
        if tiles != NULL:
            c = tw.near[i]
            best = (<floating *>tw.best)[i]
        elif floating is float:
            c = fe_row_argmin_f32(dist + i * k, csq, k, &best)
        else:
            c = fe_row_argmin_f64(dist + i * k, csq, k, &best)
        xr = rows + i * d
        sr = sums + c * d
        w = sw[i] if sw != NULL else 1.0
        if with_norms:
            acc_n += w * _sqdist(xr, rshift, d)
        _add_row(sr, xr, rshift, d, w, sw != NULL)
        acc += w * best
        wsum[c] += w
        if labels[i] != c:
            n_changed += 1
            labels[i] = <int32_t>c
    acc_best[0] += acc
    acc_norms[0] += acc_n
    changed[0] += n_changed


cdef inline void _lowd_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                             Py_ssize_t k, const floating *sw,
                             const floating *shift, const floating *centres,
                             int32_t *labels, bint with_norms, double *sums,
                             double *wsum, double *tail) noexcept nogil:
    """One chunk of a Lloyd pass at low D (csrc/fe_lowd.h): the slot's
    tail [inertia, n_changed, norms] gets the exact inertia itself."""
    if floating is float:
        fe_lowd_chunk_f32(x, nb, d, k, sw, shift, centres, with_norms, labels,
                          sums, wsum, tail)
    else:
        fe_lowd_chunk_f64(x, nb, d, k, sw, shift, centres, with_norms, labels,
                          sums, wsum, tail)


def uses_lowd_path(Py_ssize_t d, Py_ssize_t itemsize):
    """Whether ``lloyd_pass`` on rows of d values of ``itemsize`` bytes
    computes distances directly (see the module docstring)."""
    return bool(lowd_path(d, itemsize))


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
    cdef Py_ssize_t p, c, start
    cdef double tail[3]
    cdef bint with_norms = norms_total != norms_total  # NaN: compute them
    cdef bint lowd = lowd_path(X.shape[1], sizeof(floating))
    cdef int cancel = 0
    cdef const floating *xp
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef CentrePass run
    cdef PassWs tw
    cdef double *slot
    require_centre_pass(X, sample_weight, shift, centres, labels, sums, weights,
                        chunk_rows, n_threads, "lloyd_pass")
    xp = &X[0, 0]
    # slot: [sums (k x d), weights (k), inertia, n_changed, norms]
    if centre_pass_open(&run, n, d, k, chunk_rows, sizeof(floating), 0,
                        k * d + k + 3, n_threads) != 0 or (
            not lowd and centre_pass_tiles(&run, &centres[0, 0], k, d) != 0):
        centre_pass_close(&run)
        raise MemoryError("fastem: could not allocate the Lloyd pass workspace")
    with nogil:
        for p in prange(run.pt.n_parts, schedule='dynamic', num_threads=n_threads):
            tw = centre_pass_workspace(&run, omp_get_thread_num(), chunk_rows, d, k,
                                       sizeof(floating), 0)
            slot = slot_open(&run.pt, p)
            for c in range(first_chunk(&run.pt, p), first_chunk(&run.pt, p + 1)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                if lowd:
                    _lowd_chunk(xp + start * d, chunk_len(&run.pt, c), d, k,
                                swp + start if swp != NULL else NULL, shp,
                                &centres[0, 0], &labels[start], with_norms,
                                slot, slot + k * d, slot + k * d + k)
                else:
                    _lloyd_chunk(xp + start * d, chunk_len(&run.pt, c), d, k,
                                 swp + start if swp != NULL else NULL,
                                 shp, &centres[0, 0], <floating *>run.csq,
                                 <floating *>run.tiles, &labels[start], &tw,
                                 with_norms,
                                 slot, slot + k * d, slot + k * d + k,
                                 slot + k * d + k + 1, slot + k * d + k + 2)
        # fixed-order reduction of the partitions' slots
        memset(&sums[0, 0], 0, k * d * sizeof(double))
        memset(&weights[0], 0, k * sizeof(double))
        memset(tail, 0, 3 * sizeof(double))
        partitions_sum_parallel(&run.pt, 0, k * d, &sums[0, 0], n_threads)
        partitions_sum(&run.pt, k * d, k, &weights[0])
        partitions_sum(&run.pt, k * d + k, 3, tail)
    centre_pass_close(&run)
    raise_pending(cancel)
    norms = tail[2] if with_norms else norms_total
    total_changed = <Py_ssize_t>tail[1]
    if lowd:  # the slots hold the inertia itself
        return total_changed, tail[0], norms
    # sum_i w_i ||x_i - c||^2 = sum_i w_i ||x_i||^2 + sum_i w_i best_i; rounding
    # of the float32 expansion can leave a hair below zero for a perfect fit
    return total_changed, max(norms + tail[0], 0.0), norms


def assigned_sqdist(const floating[:, ::1] X,
                    const floating[:, ::1] centres,
                    const int32_t[::1] labels,
                    double[::1] out,
                    int n_threads):
    """out[i] = ||x_i - centres[labels[i]]||^2 in float64 (same frame for both)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centres.shape[0], i
    cdef Py_ssize_t n_bad = 0
    cdef int cancel = 0
    require_pass(n, d, 0, 1, n_threads, "assigned_sqdist")
    require(centres.shape[1] == d and labels.shape[0] == n and out.shape[0] == n,
            "assigned_sqdist: centres must be (k, d), labels and out (n,)")
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            # every 4096 rows (a static schedule gives each thread one range)
            if cancel or ((i & 4095) == 0 and interrupted(&cancel)):
                continue
            if <size_t>labels[i] >= <size_t>k:  # counted and refused below
                n_bad += 1
                continue
            out[i] = _sqdist(&X[i, 0], &centres[labels[i], 0], d)
    raise_pending(cancel)
    require(n_bad == 0, "assigned_sqdist: labels must lie in [0, k)")


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
    cdef Py_ssize_t n_chunks = (n + nbmax - 1) // nbmax if nbmax > 0 else 0
    cdef Py_ssize_t c, start, nb, i, j, tid
    cdef double xsq, v
    cdef int cancel = 0
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef floating *work
    cdef floating *xc
    cdef floating *csq
    cdef floating *orow
    require_pass(n, d, 0, chunk_rows, n_threads, "pairwise_sqdist")
    require(shift.shape[0] == 0 or shift.shape[0] == d,
            "pairwise_sqdist: shift must have one entry per column of X (or none)")
    require(k >= 1 and centres.shape[1] == d and out.shape[0] == n and out.shape[1] == k,
            "pairwise_sqdist: centres must be (k, d) with k >= 1, out (n, k)")
    work = <floating *>malloc((n_threads * nbmax * d + k) * sizeof(floating))
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


