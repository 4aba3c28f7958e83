"""Bounded Lloyd passes (Hamerly's algorithm): the iterates of Lloyd's
algorithm (_lloyd.pyx) without computing most distances. Chunks, partitions
and the fixed reduction order as in _lloyd.pyx; shared helpers in
_kmeans_common.pxd.
"""
from cython.parallel cimport prange
from libc.math cimport INFINITY, sqrt
from libc.stdint cimport int32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from fastem._kernels._blas cimport gemm_rowmajor
from fastem._kernels._common cimport (
    chunk_len, first_chunk, floating, partitions_sum, partitions_sum_parallel, require,
    require_pass, slot_open)
from fastem._kernels._openmp cimport omp_get_thread_num
from fastem._kernels._interrupt cimport interrupted, raise_pending
from fastem._kernels._kmeans_common cimport (
    CentrePass, PassWs, _add_row, _sqdist, centre_pass_close, centre_pass_open,
    centre_pass_tiles, centre_pass_workspace, group_width, lowd_path,
    require_centre_pass, tiles_chunk, tiles_path)
from fastem._kernels._kmeans_c cimport (
    FE_PREFETCH_ROWS, fe_expansion_bounds_f32, fe_expansion_bounds_f64,
    fe_frame_sqdist_f32, fe_frame_sqdist_f64, fe_moved_bounds_f32, fe_moved_bounds_f64,
    fe_prefetch_row, fe_row_argmin2_f32,
    fe_row_argmin2_f64, fe_tile_values_f32, fe_tile_values_f64)

# the argument tuples of bounded_pass (shared with the CSR kernels; the
# dense bounds are in X's dtype)
from fastem._kernels._kmeans_args import CentreMoves, RowBounds

# ---------------------------------------------------------------------------
# Bounded Lloyd pass (Hamerly's algorithm, with Yinyang's groups): the same
# iterates as Lloyd's, without computing most distances.
#
# Every row keeps an upper bound u >= ||x - c_a|| on the distance to its own
# centre a and, for each of t groups of centres (consecutive runs of G
# centres, group_width in _kmeans_common.pxd), a lower bound l_g <=
# min_{j in g, j != a} ||x - c_j|| on the distance to the group's other
# centres (t = 1: Hamerly's single bound; Ding et al. 2015, "Yinyang
# K-means", for t > 1). When the centres move by drift_j, the triangle
# inequality keeps u + drift_a and l_g - max_{j in g, j != a} drift_j valid.
# If u <= max(min_g l_g, s_a), where s_a is half the distance from c_a to its
# nearest other centre, no centre can be closer than c_a and the row is
# skipped without reading it. Otherwise u is tightened to the exact distance
# and the test repeated; a row that still fails is searched in the groups
# whose bound is below u, and always in its own group (so that its own
# centre's value is computed with the others): the groups' rows gathered
# and run against the group's tiles (csrc/fe_tiles.h), or on the GEMM path
# (one group) one GEMM over them. The groups are taken in order of their
# centres and a later group wins only by a strictly smaller value, so the
# label is the lowest index among the smallest values, as a full search
# gives. A searched group's bound becomes the distance to its nearest
# centre, or to its runner-up in the group of the new label; the others
# keep their moved bounds. Sums move incrementally: a row that changes
# cluster takes w x out of its old cluster's sum and into the new one's, so
# after the first iterations a pass reads little more than the bounds.
#
# The bounds must hold for the distances the arithmetic produces: u is
# tightened by an exact float64 difference, and after a search both come
# from the expansion ||x||^2 + (||c||^2 - 2 x.c) plus or minus a bound on its
# rounding error (err_scale (||x||^2 + max ||c||^2)).
# ---------------------------------------------------------------------------

cdef inline double _frame_sqdist(const floating *x, const floating *shift,
                                 const floating *c, Py_ssize_t d) noexcept nogil:
    """||(x - shift) - c||^2 in float64 with exact differences (shift may be
    NULL): four sums over j mod 4, in a fixed order (fe_frame_sqdist_*,
    csrc/fe_kmeans.h)."""
    if floating is float:
        return fe_frame_sqdist_f32(x, shift, c, d)
    else:
        return fe_frame_sqdist_f64(x, shift, c, d)


cdef struct Groups:
    # the t groups of a pass (see the note above): G centres each (the last
    # may be short), and for each group the largest drift of its centres
    # (mx), the centre that has it (arg) and the second largest (second)
    Py_ssize_t t
    Py_ssize_t width
    double *mx
    double *second
    Py_ssize_t *arg


cdef inline double _group_drift(const Groups *gr, Py_ssize_t g, Py_ssize_t a) noexcept nogil:
    """max_{j in g, j != a} drift_j (the bound of group g of a row of centre a)."""
    return gr.second[g] if a == gr.arg[g] else gr.mx[g]


cdef inline double _move_lower_bounds(floating *lr, const Groups *gr,
                                      Py_ssize_t a) noexcept nogil:
    """Move a row of centre a's lower bounds lr[0 .. t) with the centres
    (l_g - max_{j in g, j != a} drift_j), store them rounded outward past
    the storage precision, and return the smallest (unrounded; +inf for
    none)."""
    cdef Py_ssize_t g
    cdef double l, lmin = INFINITY
    cdef double up = 1.0 + (2.4e-7 if floating is float else 4.5e-16)
    cdef double down = 1.0 - (2.4e-7 if floating is float else 4.5e-16)
    for g in range(gr.t):
        l = lr[g] - _group_drift(gr, g, a)
        lr[g] = <floating>(l * (down if l > 0.0 else up))
        if l < lmin:
            lmin = l
    return lmin


cdef int _groups_open(Groups *gr, Py_ssize_t k, Py_ssize_t t_cols, Py_ssize_t itemsize,
                      const double *drift) noexcept nogil:
    """The groups of k centres for t_cols bounds per row (group_width) and
    their drifts; 0, or -1 out of memory."""
    cdef Py_ssize_t g, j
    gr.width = group_width(k, t_cols, itemsize)
    gr.t = (k + gr.width - 1) // gr.width
    gr.mx = <double *>malloc(2 * gr.t * sizeof(double))
    gr.arg = <Py_ssize_t *>malloc(gr.t * sizeof(Py_ssize_t))
    if gr.mx == NULL or gr.arg == NULL:
        _groups_close(gr)
        return -1
    gr.second = gr.mx + gr.t
    for g in range(gr.t):
        gr.mx[g] = 0.0
        gr.second[g] = 0.0
        gr.arg[g] = g * gr.width
    for j in range(k):
        g = j // gr.width
        if drift[j] > gr.mx[g]:
            gr.second[g] = gr.mx[g]
            gr.mx[g] = drift[j]
            gr.arg[g] = j
        elif drift[j] > gr.second[g]:
            gr.second[g] = drift[j]
    return 0


cdef void _groups_close(Groups *gr) noexcept nogil:
    free(gr.mx)
    free(gr.arg)
    gr.mx = NULL
    gr.arg = NULL


cdef bint _search_groups(const floating *x, const floating *shift,
                         const floating *tiles, Py_ssize_t k, Py_ssize_t d,
                         const Groups *gr, Py_ssize_t lcols, bint fresh,
                         const int32_t *labels, const floating *upper,
                         const floating *lower, Py_ssize_t n_full, bint reorder,
                         const PassWs *tw) noexcept nogil:
    """The tiles path's search of the gathered rows (tw.gathered[0 ..
    n_full), with ``reorder`` sorted by their own group first): in the groups whose bound is below the row's upper
    bound, and its own, as one run of the tiles (fe_tiles_chunk with
    groups: a block of four rows visits the groups any of them needs).
    Leaves each row's label, best value and runner-up (over the centres
    visited) in tw.near, tw.best, tw.second, and its minimum in each group
    in tw.group_min (+inf where not visited); returns whether it did the
    last. It does not (one run of all the tiles) with one group, or on a
    fresh pass, where every row needs every group: the groups' minima
    would cost 15 % of the pass there (K3, the first pass: 426 -> 369 ms).
    Where most but not all groups are needed it still pays: the next pass
    starts from them (E1: a fallback to one run when the rows needed more
    than 3/4 of the groups doubled the time of the pass after it, 87 ->
    157-164 ms, for 12 ms saved on K3's second pass)."""
    cdef Py_ssize_t g, p, i, t = gr.t, G = gr.width
    cdef unsigned char *need = tw.need
    cdef int32_t *start = tw.sorted + n_full
    if fresh:
        t = 1
    if t > 1 and reorder:
        # rows of one group side by side (a counting sort by their own
        # group, stable): a block of four then needs about the groups each
        # of its rows needs (E1's fifth pass 96-104 -> 80-88 ms, K3's last
        # five 96, 90, 87, 67 -> 79-82, 75-77, 72-74, 57-60 ms)
        for g in range(t + 1):
            start[g] = 0
        for p in range(n_full):
            start[labels[tw.gathered[p]] // G + 1] += 1
        for g in range(t):
            start[g + 1] += start[g]
        for p in range(n_full):
            g = labels[tw.gathered[p]] // G
            tw.sorted[start[g]] = tw.gathered[p]
            start[g] += 1
        memcpy(tw.gathered, tw.sorted, n_full * sizeof(int32_t))
    if t > 1:
        for p in range(n_full):
            i = tw.gathered[p]
            for g in range(t):
                need[p * t + g] = labels[i] // G == g or lower[i * lcols + g] < upper[i]
    tiles_chunk(x, tw.gathered, n_full, d, shift, tiles, k, tw, True, t, G)
    return t > 1


cdef void _search_gemm(const floating *x, const floating *shift, Py_ssize_t d,
                       Py_ssize_t k, const floating *centres, const floating *csq,
                       Py_ssize_t n_full, const PassWs *tw) noexcept nogil:
    """The GEMM path's search (one group of all k centres): the gathered
    rows copied into the frame (tw.rows), one GEMM, a scan of each row;
    results in tw.near, tw.best, tw.second as _search_groups leaves them."""
    cdef Py_ssize_t g, i, j
    cdef floating *xbuf = <floating *>tw.rows
    cdef floating *dist = <floating *>tw.dist
    cdef floating *best = <floating *>tw.best
    cdef floating *second = <floating *>tw.second
    for g in range(n_full):
        i = tw.gathered[g]
        for j in range(d):
            xbuf[g * d + j] = x[i * d + j] - (shift[j] if shift != NULL else 0)
    gemm_rowmajor(False, True, <int>n_full, <int>k, <int>d, <floating>-2.0,
                  xbuf, <int>d, centres, <int>d, <floating>0.0, dist, <int>k)
    for g in range(n_full):
        if floating is float:
            tw.near[g] = fe_row_argmin2_f32(dist + g * k, csq, k, &best[g], &second[g])
        else:
            tw.near[g] = fe_row_argmin2_f64(dist + g * k, csq, k, &best[g], &second[g])


cdef void _bounded_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                         Py_ssize_t k, const floating *sw, const floating *shift,
                         const floating *centres, const floating *csq,
                         const floating *tiles, double csq_max,
                         const double *half_sep, const double *drift,
                         const Groups *gr, Py_ssize_t lcols,
                         bint fresh, double err_scale,
                         floating *upper, floating *lower, int32_t *labels,
                         const PassWs *tw, double *dsums, double *dweights,
                         double *counts) noexcept nogil:
    """One chunk of a bounded pass; adds sum/weight *changes* into the slot.
    ``lower``: the chunk's rows' bounds, lcols per row (the groups use the
    first gr.t)."""
    cdef Py_ssize_t i, j, g, p, c, a, t = gr.t, G = gr.width, n_full = 0, n_changed = 0
    cdef double u, lmin, m, w, v
    # stored bounds are rounded outward past the storage precision
    cdef double up = 1.0 + (2.4e-7 if floating is float else 4.5e-16)
    cdef int32_t *gathered = tw.gathered
    cdef const floating *xr
    cdef const floating *rshift = shift if tiles != NULL else NULL
    cdef floating *best = <floating *>tw.best
    cdef floating *second = <floating *>tw.second
    cdef const floating *gmin = <const floating *>tw.group_min
    cdef floating *lr
    cdef Py_ssize_t n_todo = 0
    cdef bint grouped = False
    # per-row max(min_g l_g, s_a), kept in the distance buffer (which holds
    # at least one double per row, whatever k and the dtype: _pass_workspace)
    cdef double *mrow = <double *>tw.dist
    if fresh:
        for i in range(nb):
            gathered[i] = <int32_t>i
        n_full = nb
    else:
        # 1. bounds only: most rows stop here without their data being read
        # (a failing row keeps its moved bounds: the search only lowers
        # them where it looked); with one group (Hamerly's bounds) in C,
        # vectorised (fe_moved_bounds)
        if t == 1:
            if floating is float:
                n_todo = fe_moved_bounds_f32(labels, upper, lower, lcols, nb, k, drift,
                                             half_sep, gr.mx[0], gr.second[0], gr.arg[0],
                                             gathered, mrow)
            else:
                n_todo = fe_moved_bounds_f64(labels, upper, lower, lcols, nb, k, drift,
                                             half_sep, gr.mx[0], gr.second[0], gr.arg[0],
                                             gathered, mrow)
            if n_todo < 0:  # a label outside [0, k): a state no pass wrote
                counts[2] += 1
                return
        else:
            for i in range(nb):
                a = labels[i]
                if <size_t>a >= <size_t>k:  # a state no pass wrote: refuse it
                    counts[2] += 1
                    return
                u = upper[i] + drift[a]
                lmin = _move_lower_bounds(lower + i * lcols, gr, a)
                m = lmin if lmin > half_sep[a] else half_sep[a]
                upper[i] = <floating>(u * up)
                if u > m:
                    gathered[n_todo] = <int32_t>i
                    mrow[n_todo] = m
                    n_todo += 1
        # 2. tighten u to the exact distance for the others (prefetched),
        # unless more than 3/4 of the chunk's rows failed: then almost all
        # fail after tightening too (the passes right after the first),
        # and they all go straight to the search, which sets the bounds
        # anew (K1, N=1e6 D=32 K=64: the second pass 26-33 -> 24 ms; a
        # threshold of 1/2 slowed the passes that search 62 % of rows)
        if n_todo * 4 > nb * 3:
            n_full = n_todo
            n_todo = 0
        for p in range(n_todo):
            if p + FE_PREFETCH_ROWS < n_todo:
                fe_prefetch_row(x + gathered[p + FE_PREFETCH_ROWS] * d,
                                    d * sizeof(floating))
            i = gathered[p]
            u = sqrt(_frame_sqdist(x + i * d, shift, centres + labels[i] * d, d))
            upper[i] = <floating>(u * (1.0 + 1e-6))
            if u > mrow[p]:
                gathered[n_full] = <int32_t>i
                n_full += 1
    if n_full == 0:
        return
    # 3. the search (the tiles read the rows where they are, in the frame of
    # shift; the GEMM needs them copied into the frame)
    if tiles != NULL:
        grouped = _search_groups(x, shift, tiles, k, d, gr, lcols, fresh, labels, upper,
                                 lower, n_full, True, tw)
    else:
        _search_gemm(x, shift, d, k, centres, csq, n_full, tw)
    # the bounds from the expansion and its error bound (the exact distance
    # to c would read the row again: a quarter of a fresh pass at D = 32);
    # the upper one rounds up and the lower ones down: in a group visited,
    # its nearest centre, and in c's group the runner-up of all the centres
    # visited (at most the group's own runner-up). First every row's
    # ||x'||^2 (into the buffer of step 2's mrow, free now), then the upper
    # bound and c's group's lower bound of all rows at once
    # (fe_expansion_bounds: best and second become them, vectorised)
    for p in range(n_full):
        xr = x + gathered[p] * d if tiles != NULL else <floating *>tw.rows + p * d
        mrow[p] = _sqdist(xr, rshift, d)
    if floating is float:
        fe_expansion_bounds_f32(best, second, mrow, n_full, err_scale, csq_max)
    else:
        fe_expansion_bounds_f64(best, second, mrow, n_full, err_scale, csq_max)
    for p in range(n_full):
        i = gathered[p]
        xr = x + i * d if tiles != NULL else <floating *>tw.rows + p * d
        c = tw.near[p]
        upper[i] = best[p]
        lr = lower + i * lcols
        if not grouped:  # all centres visited, no group minima: the runner-up
            for g in range(t):
                lr[g] = second[p]
        for g in range(t if grouped else 0):
            if g == c // G:
                lr[g] = second[p]
            elif gmin[p * t + g] != INFINITY:  # (not visited: the moved bound stands)
                v = gmin[p * t + g] + mrow[p] - err_scale * (mrow[p] + csq_max)
                lr[g] = <floating>(sqrt(v) * (1.0 - 1e-6) if v > 0.0 else 0.0)
        a = labels[i]
        if fresh or c != a:
            w = sw[i] if sw != NULL else 1.0
            _add_row(dsums + c * d, xr, rshift, d, w, sw != NULL)
            dweights[c] += w
            if not fresh:
                _add_row(dsums + a * d, xr, rshift, d, -w, True)
                dweights[a] -= w
        if c != a:
            n_changed += 1
            labels[i] = <int32_t>c
    counts[0] += n_changed
    counts[1] += n_full


def bound_groups(Py_ssize_t k, Py_ssize_t d, Py_ssize_t itemsize):
    """The lower bounds per row (groups, t) a bounded pass over rows of d
    values of ``itemsize`` bytes keeps for k centres: one per 64 float32 or
    32 float64 centres (four tiles of the AVX-512 kernel, its register
    block: csrc/fe_tiles.h), or, from d = 256, one per tile of every build
    (16 float32 or 8 float64 centres); at most d / 2 - 1 of them (with the
    upper bound, t + 1 values per row: at most half the memory of X,
    wherever the fits keep bounds, d >= 4) and one on the GEMM path.

    Measured on the iterates of K3 (N = 2e5 of its shape, D = 64, K = 1024,
    10 iterations) and E1 (N = 1e5, D = 768, K = 1024, 5), in distance
    evaluations over the passes, in dense passes: one bound 6.6 and 4.2,
    groups of 64 centres 3.7 and 2.9, of 32 3.1 (K3). A search runs the
    groups a block of four rows needs as runs of consecutive tiles, four
    tiles at a time and the rest one by one (fe_tiles_impl.h), and the
    one-by-one loop costs more per tile where a row is short: groups of
    one tile pay from d = 256 (fits from the same centres, best of 3,
    groups of 64 / of 16 float32 centres, 2 threads, Zen 4: E1 3.61 /
    3.27 s, E2 (N = 7e4, D = 784, K = 256, 10 iterations) 0.86 / 0.71,
    D = 384, K = 256 0.47 / 0.42, D = 256, K = 1024 1.47 / 1.42, D = 128,
    K = 1024 1.55 / 1.57)."""
    cdef Py_ssize_t unit, cap, width
    if d >= 256:
        unit = 16 if itemsize == 4 else 8
    else:
        unit = 64 if itemsize == 4 else 32
    if not tiles_path() or k <= unit:
        return 1
    cap = d // 2 - 1 if d >= 4 else 1
    width = (k + cap - 1) // cap
    width = (width + unit - 1) // unit * unit
    if width < unit:
        width = unit
    return (k + width - 1) // width


def bound_group_width(Py_ssize_t k, Py_ssize_t t, Py_ssize_t itemsize):
    """Centres per group of a bounded pass with t bounds per row
    (group_width): group g holds centres [g G, (g + 1) G)."""
    return group_width(k, t, itemsize)


def bounded_pass(const floating[:, ::1] X,
                 const floating[::1] sample_weight,
                 const floating[::1] shift,
                 const floating[:, ::1] centres,
                 moves,
                 bounds,
                 double[:, ::1] sums,
                 double[::1] weights,
                 Py_ssize_t chunk_rows,
                 int n_threads):
    """One bounded Lloyd pass (see the note above); returns (n_changed, n_full).

    ``moves``: a ``CentreMoves``; ``bounds``: a ``RowBounds`` with
    ``upper`` (n,) and ``lower`` (n, t) in X's dtype (``_kmeans_args``; t
    from ``bound_groups``, any t >= 1 is valid). With ``moves.fresh``
    ``sums`` / ``weights`` are recomputed, otherwise updated by the rows
    that change cluster. Frames and weights as in ``lloyd_pass``. n_full:
    the rows searched (in all or some of their groups).
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centres.shape[0]
    cdef const double[::1] half_sep = moves.half_sep
    cdef const double[::1] drift = moves.drift
    cdef bint fresh = moves.fresh
    cdef floating[::1] upper = bounds.upper
    cdef floating[:, ::1] lower = bounds.lower
    cdef int32_t[::1] labels = bounds.labels
    cdef Py_ssize_t lcols = lower.shape[1]
    cdef int cancel = 0
    cdef Py_ssize_t p, c, j, start
    cdef double csq_max = 0.0
    cdef double counts[3]
    cdef double err_scale = 2.0 * (d + 4) * (1.2e-7 if floating is float else 2.3e-16)
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef floating *csq
    cdef CentrePass run
    cdef PassWs tw
    cdef Groups gr
    cdef double *slot
    require_centre_pass(X, sample_weight, shift, centres, labels, sums, weights,
                        chunk_rows, n_threads, "bounded_pass")
    require(half_sep.shape[0] == k and drift.shape[0] == k,
            "bounded_pass: moves.half_sep and moves.drift must have k entries")
    require(upper.shape[0] == n and lower.shape[0] == n and lcols >= 1,
            "bounded_pass: bounds.upper (n,) and bounds.lower (n, t >= 1) must have one "
            "entry per row")
    if _groups_open(&gr, k, lcols, sizeof(floating), &drift[0]) != 0:
        raise MemoryError("fastem: could not allocate the bounded pass groups")
    # slot: [sums (k x d), weights (k), n_changed, n_full, bad labels]
    if centre_pass_open(&run, n, d, k, chunk_rows, sizeof(floating), gr.t,
                        k * d + k + 3, n_threads) != 0 or (
            centre_pass_tiles(&run, &centres[0, 0], k, d) != 0):
        centre_pass_close(&run)
        _groups_close(&gr)
        raise MemoryError("fastem: could not allocate the bounded pass workspace")
    csq = <floating *>run.csq
    with nogil:
        for j in range(k):
            if csq[j] > csq_max:
                csq_max = csq[j]
        for p in prange(run.pt.n_parts, schedule='dynamic', num_threads=n_threads):
            tw = centre_pass_workspace(&run, omp_get_thread_num(), chunk_rows, d, k,
                                       sizeof(floating), gr.t)
            slot = slot_open(&run.pt, p)
            for c in range(first_chunk(&run.pt, p), first_chunk(&run.pt, p + 1)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                _bounded_chunk(&X[start, 0], chunk_len(&run.pt, c), d, k,
                               swp + start if swp != NULL else NULL, shp,
                               &centres[0, 0], csq, <floating *>run.tiles, csq_max,
                               &half_sep[0], &drift[0], &gr, lcols,
                               fresh, err_scale, &upper[start], &lower[start, 0],
                               &labels[start], &tw, slot, slot + k * d, slot + k * d + k)
        # fixed-order reduction; without ``fresh`` the slots update the sums
        if fresh:
            memset(&sums[0, 0], 0, k * d * sizeof(double))
            memset(&weights[0], 0, k * sizeof(double))
        memset(counts, 0, 3 * sizeof(double))
        partitions_sum_parallel(&run.pt, 0, k * d, &sums[0, 0], n_threads)
        partitions_sum(&run.pt, k * d, k, &weights[0])
        partitions_sum(&run.pt, k * d + k, 3, counts)
    centre_pass_close(&run)
    _groups_close(&gr)
    raise_pending(cancel)
    require(counts[2] == 0,
            "bounded_pass: bounds.labels holds labels outside [0, k), which no pass "
            "wrote: start again with moves.fresh=True (the sums are then recomputed)")
    return <Py_ssize_t>counts[0], <Py_ssize_t>counts[1]


# ---------------------------------------------------------------------------
# Labelling pass from the bounds: the labels and inertia that lloyd_pass
# gives for centres C in the frame of ``shift`` (the fit's last pass, in
# predict's frame), reading every row once but searching only where the
# bounds do not settle a row's label.
#
# The bounds hold for exact distances: after the drifts, u >= ||x - c_a||,
# l_g <= ||x - c_j|| for every j != a in group g, and m = max(min_g l_g,
# 2 s_a - u) <= ||x - c_j|| for every j != a (Hamerly's two tests, as
# one). The pass must give the label the tiles would compute, so it trusts
# a bound only where no rounding of theirs can reorder the centres. The
# tiles compare v_j = fma(-2, x'.c_j, ||c_j||^2) for the rounded row x' =
# fl(x - shift); with r = ||x - shift|| <= u + max ||c||, each v_j is within
# e = err_scale (r^2 + max ||c||^2) of ||x' - c_j||^2 - ||x'||^2 (the dot
# product's d roundings and the norm's, as for the bounds of the searches
# above) and ||x' - (x - shift)|| <= unit r. So a lower bound b on the
# distances to some centres puts all their v_j above v_a when
#     (u + unit r)^2 + 2 e < (b - unit r)^2,  i.e.  b > h = unit r +
#     sqrt((u + unit r)^2 + 2 e).
# A row with m > h keeps a, and v_a is the tiles' best: the same fused
# multiply-adds for one centre (fe_tile_values). For the others u is
# tightened to the exact distance to c_a (as in step 2 of a bounded pass)
# and m and h computed again from it; those still open are searched as in
# a bounded pass, with h in place of u (a valid upper bound too): in their
# own group and those with l_g <= h, whose centres are the only ones that
# can come out smallest. Sums of w best and w ||x'||^2 are those of
# _lloyd_chunk, row by row in order.
# ---------------------------------------------------------------------------

cdef inline double _labels_bound(double u, double half_sep, double reach, double unit,
                                 double err_scale, double csq_max,
                                 double *m) noexcept nogil:
    """The labelling pass's test for a row with upper bound u (see the note
    above): raises *m (the smallest lower bound of its groups) to 2 s_a - u
    where that is larger, and returns h; the row keeps its label if *m > h."""
    cdef double r = u + reach, dx = unit * r
    if 2.0 * half_sep - u > m[0]:
        m[0] = 2.0 * half_sep - u
    return dx + sqrt((u + dx) * (u + dx) + 2.0 * err_scale * (r * r + csq_max))


cdef void _merge_rows(int32_t *rows, Py_ssize_t n, const int32_t *more,
                      Py_ssize_t n_more) noexcept nogil:
    """rows[0 .. n) and more[0 .. n_more), each increasing, merged into
    rows[0 .. n + n_more) (from the back, in place: rows has the room)."""
    cdef Py_ssize_t q = n - 1, j = n_more - 1, out = n + n_more - 1
    while j >= 0:
        if q >= 0 and rows[q] > more[j]:
            rows[out] = rows[q]
            q -= 1
        else:
            rows[out] = more[j]
            j -= 1
        out -= 1


cdef void _labels_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                        Py_ssize_t k, const floating *sw, const floating *shift,
                        const floating *centres, const floating *csq,
                        const floating *tiles, double csq_max, double reach,
                        const double *half_sep, const double *drift,
                        const Groups *gr, Py_ssize_t lcols, double err_scale,
                        double unit, floating *upper, floating *lower,
                        int32_t *labels, const PassWs *tw, double *tail) noexcept nogil:
    """One chunk of bounded_labels_pass; tail += [sum w best, rows searched,
    sum w ||x'||^2, labels out of range]."""
    cdef Py_ssize_t i, g, a, n_full = 0, n_kept = 0, n_open, n_rescued = 0, p = 0, t = 0
    cdef double u, m, h, w, acc = 0.0, acc_n = 0.0
    cdef double up = 1.0 + (2.4e-7 if floating is float else 4.5e-16)
    cdef floating best
    cdef floating *lr
    cdef int32_t *full = tw.gathered
    # the rows the bounds settle, and their values: in the buffers a bounded
    # pass keeps for its per-row max(l, s_a) (nb doubles, room for 2 nb
    # int32: the rows settled at once, then those settled once u is exact)
    # and its runners-up (_pass_workspace)
    cdef int32_t *kept = <int32_t *>tw.dist
    cdef int32_t *rescued = kept + nb
    cdef floating *kept_best = <floating *>tw.second
    for i in range(nb):
        a = labels[i]
        if <size_t>a >= <size_t>k:  # a state no pass wrote: refuse it
            tail[3] += 1
            return
        u = upper[i] + drift[a]
        m = _move_lower_bounds(lower + i * lcols, gr, a)
        h = _labels_bound(u, half_sep[a], reach, unit, err_scale, csq_max, &m)
        upper[i] = <floating>(h * up)
        if m > h:
            kept[n_kept] = <int32_t>i
            n_kept += 1
        else:
            full[n_full] = <int32_t>i
            n_full += 1
    # the rows left open: u tightened to the exact distance to c_a (as step
    # 2 of a bounded pass; the rows are read below anyway), m and h again
    # from it and the stored bounds; those it settles join the kept ones
    # (rows searched, then the pass's time, 2 threads: K1 12.8 -> 9.8 %,
    # 22.3-23.2 -> 20.7-21.1 ms; E1 41 -> 39 %, 170 -> 151 ms; E2 21 ->
    # 17 %; K3 51 -> 50 %)
    n_open = n_full
    n_full = 0
    for p in range(n_open):
        if p + FE_PREFETCH_ROWS < n_open:
            fe_prefetch_row(x + full[p + FE_PREFETCH_ROWS] * d, d * sizeof(floating))
        i = full[p]
        a = labels[i]
        u = sqrt(_frame_sqdist(x + i * d, shift, centres + a * d, d)) * (1.0 + 1e-6)
        lr = lower + i * lcols
        m = INFINITY
        for g in range(gr.t):
            if lr[g] < m:
                m = lr[g]
        h = _labels_bound(u, half_sep[a], reach, unit, err_scale, csq_max, &m)
        if <floating>(h * up) < upper[i]:
            upper[i] = <floating>(h * up)
        if m > h:
            rescued[n_rescued] = <int32_t>i
            n_rescued += 1
        else:
            full[n_full] = <int32_t>i
            n_full += 1
    _merge_rows(kept, n_kept, rescued, n_rescued)
    n_kept += n_rescued
    p = 0
    if n_full > 0:
        # (in row order: the sums below walk the rows and these in step)
        _search_groups(x, shift, tiles, k, d, gr, lcols, False, labels, upper, lower,
                       n_full, False, tw)
    if n_kept > 0:
        if floating is float:
            fe_tile_values_f32(x, kept, n_kept, d, shift, centres, csq, labels, kept_best)
        else:
            fe_tile_values_f64(x, kept, n_kept, d, shift, centres, csq, labels, kept_best)
    for i in range(nb):
        if p < n_full and full[p] == i:
            labels[i] = tw.near[p]
            best = (<floating *>tw.best)[p]
            p += 1
        else:
            best = kept_best[t]
            t += 1
        w = sw[i] if sw != NULL else 1.0
        acc_n += w * _sqdist(x + i * d, shift, d)
        acc += w * best
    tail[0] += acc
    tail[1] += n_full
    tail[2] += acc_n


def bounded_labels_available(Py_ssize_t d, Py_ssize_t itemsize):
    """Whether ``bounded_labels_pass`` gives ``lloyd_pass``'s results for
    rows of d values of ``itemsize`` bytes in this build on this CPU: where
    ``lloyd_pass`` takes the tiles (``tiles_path``: the GEMM path's values
    come from BLAS, which one centre at a time cannot reproduce; and not
    ``lowd_path``, whose distances are direct differences)."""
    return bool(tiles_path() and not lowd_path(d, itemsize))


def bounded_labels_pass(const floating[:, ::1] X,
                        const floating[::1] sample_weight,
                        const floating[::1] shift,
                        const floating[:, ::1] centres,
                        moves,
                        bounds,
                        Py_ssize_t chunk_rows,
                        int n_threads):
    """Labels and inertia of X for ``centres`` (frame of ``shift``), those
    of ``lloyd_pass``, from the bounds of the last bounded pass (see the
    note above); returns (inertia, n_full), n_full the rows searched.

    ``moves``: a ``CentreMoves`` (not fresh) from the centres of that pass
    to these (in absolute terms: the frames may differ); ``bounds``: its
    ``RowBounds``, whose labels are rewritten (and its bounds moved: still
    bounds, not those a bounded pass would leave). The inertia is
    ``lloyd_pass``'s sum in the same order, bit for bit when both passes
    split X into the same partitions (``n_partitions``: whenever k d is
    small). Only where ``bounded_labels_available``.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centres.shape[0]
    cdef const double[::1] half_sep = moves.half_sep
    cdef const double[::1] drift = moves.drift
    cdef floating[::1] upper = bounds.upper
    cdef floating[:, ::1] lower = bounds.lower
    cdef int32_t[::1] labels = bounds.labels
    cdef Py_ssize_t lcols = lower.shape[1]
    cdef int cancel = 0
    cdef Py_ssize_t p, c, j, start
    cdef double csq_max = 0.0, reach
    cdef double tail[4]
    # err_scale as in bounded_pass; unit: the unit roundoff of x - shift
    cdef double err_scale = 2.0 * (d + 4) * (1.2e-7 if floating is float else 2.3e-16)
    cdef double unit = 6.0e-8 if floating is float else 1.12e-16
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef floating *csq
    cdef CentrePass run
    cdef PassWs tw
    cdef Groups gr
    cdef double *slot
    require(tiles_path() and not lowd_path(d, sizeof(floating)),
            "bounded_labels_pass: lloyd_pass does not take the tiles at this width or "
            "on this CPU (bounded_labels_available): use lloyd_pass")
    require_pass(n, d, sample_weight.shape[0], chunk_rows, n_threads,
                 "bounded_labels_pass")
    require(shift.shape[0] == 0 or shift.shape[0] == d,
            "bounded_labels_pass: shift must have one entry per column of X (or none)")
    require(k >= 1 and centres.shape[1] == d,
            "bounded_labels_pass: centres must be (k, d) with k >= 1 and X's d columns")
    require(not moves.fresh, "bounded_labels_pass: needs the bounds of a previous pass "
            "(moves.fresh must be False)")
    require(half_sep.shape[0] == k and drift.shape[0] == k,
            "bounded_labels_pass: moves.half_sep and moves.drift must have k entries")
    require(upper.shape[0] == n and lower.shape[0] == n and lcols >= 1
            and labels.shape[0] == n,
            "bounded_labels_pass: bounds.upper (n,), bounds.lower (n, t >= 1) and "
            "bounds.labels (n,) must have one entry per row")
    if _groups_open(&gr, k, lcols, sizeof(floating), &drift[0]) != 0:
        raise MemoryError("fastem: could not allocate the labelling pass groups")
    # slot: [sum w best, rows searched, sum w ||x'||^2, bad labels]
    if centre_pass_open(&run, n, d, k, chunk_rows, sizeof(floating), gr.t, 4,
                        n_threads) != 0 or (
            centre_pass_tiles(&run, &centres[0, 0], k, d) != 0):
        centre_pass_close(&run)
        _groups_close(&gr)
        raise MemoryError("fastem: could not allocate the labelling pass workspace")
    csq = <floating *>run.csq
    with nogil:
        for j in range(k):
            if csq[j] > csq_max:
                csq_max = csq[j]
        # >= every ||c_j|| (csq holds them to within d roundings)
        reach = sqrt(csq_max) * (1.0 + d * unit) if csq_max > 0.0 else 0.0
        for p in prange(run.pt.n_parts, schedule='dynamic', num_threads=n_threads):
            tw = centre_pass_workspace(&run, omp_get_thread_num(), chunk_rows, d, k,
                                       sizeof(floating), gr.t)
            slot = slot_open(&run.pt, p)
            for c in range(first_chunk(&run.pt, p), first_chunk(&run.pt, p + 1)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                _labels_chunk(&X[start, 0], chunk_len(&run.pt, c), d, k,
                              swp + start if swp != NULL else NULL, shp,
                              &centres[0, 0], csq, <floating *>run.tiles, csq_max,
                              reach, &half_sep[0], &drift[0], &gr, lcols, err_scale,
                              unit, &upper[start], &lower[start, 0], &labels[start],
                              &tw, slot)
        memset(tail, 0, 4 * sizeof(double))
        partitions_sum(&run.pt, 0, 4, tail)
    centre_pass_close(&run)
    _groups_close(&gr)
    raise_pending(cancel)
    require(tail[3] == 0,
            "bounded_labels_pass: bounds.labels holds labels outside [0, k), which no "
            "pass wrote: use lloyd_pass")
    # as lloyd_pass: a perfect fit's float32 expansion can leave a hair below 0
    return max(tail[2] + tail[0], 0.0), <Py_ssize_t>tail[1]
