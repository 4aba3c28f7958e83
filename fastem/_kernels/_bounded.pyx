"""Bounded Lloyd passes (Hamerly's algorithm): the iterates of Lloyd's
algorithm (_lloyd.pyx) without computing most distances. Chunks, partitions
and the fixed reduction order as in _lloyd.pyx; shared helpers in
_kmeans_common.pxd.
"""
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdint cimport int32_t
from libc.string cimport memset

from fastem._kernels._blas cimport gemm_rowmajor
from fastem._kernels._common cimport (
    chunk_len, first_chunk, floating, partitions_sum, partitions_sum_parallel, require,
    require_pass, slot_open)
from fastem._kernels._openmp cimport omp_get_thread_num
from fastem._kernels._interrupt cimport interrupted, raise_pending
from fastem._kernels._kmeans_common cimport (
    CentrePass, PassWs, _add_row, _sqdist, centre_pass_close, centre_pass_open,
    centre_pass_tiles, centre_pass_workspace, lowd_path, require_centre_pass,
    tiles_chunk, tiles_path)
from fastem._kernels._kmeans_c cimport (
    FE_PREFETCH_ROWS, fe_prefetch_row, fe_row_argmin2_f32, fe_row_argmin2_f64,
    fe_tile_values_f32, fe_tile_values_f64)

# the argument tuples of bounded_pass (shared with the CSR kernels; the
# dense bounds are in X's dtype)
from fastem._kernels._kmeans_args import CentreMoves, RowBounds

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
# test repeated; only rows that still fail get all k distances (the gathered
# rows against the tiles of csrc/fe_tiles.h, or one GEMM over them). Sums
# move incrementally: a row that changes cluster takes w x out of its old
# cluster's sum and into the new one's, so after the first iterations a pass
# reads little more than the bounds.
#
# The bounds must hold for the distances the arithmetic produces: u is
# tightened by an exact float64 difference, and after a full search both
# come from the expansion ||x||^2 + (||c||^2 - 2 x.c) plus or minus a bound
# on its rounding error (err_scale (||x||^2 + max ||c||^2)).
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
                         const floating *tiles, double csq_max,
                         const double *half_sep,
                         const double *drift, double drift_max,
                         double drift_second, Py_ssize_t drift_arg,
                         bint fresh, double err_scale,
                         floating *upper, floating *lower, int32_t *labels,
                         const PassWs *tw, double *dsums, double *dweights,
                         double *counts) noexcept nogil:
    """One chunk of a bounded pass; adds sum/weight *changes* into the slot."""
    cdef Py_ssize_t i, j, g, c, a, n_full = 0, n_changed = 0
    cdef double u, l, m, w, xsq, second, v, err2
    # stored bounds are rounded outward past the storage precision
    cdef double up = 1.0 + (2.4e-7 if floating is float else 4.5e-16)
    cdef double down = 1.0 - (2.4e-7 if floating is float else 4.5e-16)
    cdef floating best, second_f
    cdef floating *xbuf = <floating *>tw.rows
    cdef floating *dist = <floating *>tw.dist
    cdef int32_t *gathered = tw.gathered
    cdef const floating *xr
    cdef const floating *rshift
    cdef Py_ssize_t t, n_todo = 0
    # per-row max(l, s_a), kept in the distance buffer (which holds at least
    # one double per row, whatever k and the dtype: _pass_workspace)
    cdef double *mrow = <double *>dist
    if fresh:
        for i in range(nb):
            gathered[i] = <int32_t>i
        n_full = nb
    else:
        # 1. bounds only: most rows stop here without their data being read
        for i in range(nb):
            a = labels[i]
            if <size_t>a >= <size_t>k:  # a state no pass wrote: refuse it
                counts[2] += 1
                return
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
        # 2. tighten u to the exact distance for the others (prefetched),
        # unless more than 3/4 of the chunk's rows failed: then almost all
        # fail after tightening too (the passes right after the first),
        # and they all go straight to the full search, which sets both
        # bounds anew (K1, N=1e6 D=32 K=64: the second pass 26-33 -> 24 ms;
        # a threshold of 1/2 slowed the passes that search 62 % of rows)
        if n_todo * 4 > nb * 3:
            n_full = n_todo
            n_todo = 0
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
    # the rows to search: the tiles read them where they are (rows
    # gathered[g], in the frame of shift); the GEMM needs them gathered into
    # xbuf in the frame (x - shift rounded in the data's precision either way)
    if tiles != NULL:
        tiles_chunk(x, gathered, n_full, d, shift, tiles, k, tw, True)
        rshift = shift
    else:
        for g in range(n_full):
            i = gathered[g]
            for j in range(d):
                xbuf[g * d + j] = x[i * d + j] - (shift[j] if shift != NULL else 0)
        gemm_rowmajor(False, True, <int>n_full, <int>k, <int>d, <floating>-2.0,
                      xbuf, <int>d, centres, <int>d, <floating>0.0, dist, <int>k)
        rshift = NULL
    for g in range(n_full):
        i = gathered[g]
        xr = x + i * d if tiles != NULL else xbuf + g * d
        if tiles != NULL:
            c = tw.near[g]
            best = (<floating *>tw.best)[g]
            second_f = (<floating *>tw.second)[g]
        elif floating is float:
            c = fe_row_argmin2_f32(dist + g * k, csq, k, &best, &second_f)
        else:
            c = fe_row_argmin2_f64(dist + g * k, csq, k, &best, &second_f)
        second = second_f
        xsq = _sqdist(xr, rshift, d)
        err2 = err_scale * (xsq + csq_max)
        # both bounds from the expansion and its error bound (the exact
        # distance to c would read the row again: a quarter of a fresh pass
        # at D = 32); the upper one rounds up and the lower one down
        v = best + xsq + err2
        upper[i] = <floating>(sqrt(v) * (1.0 + 1e-6) if v > 0.0 else 0.0)
        v = second + xsq - err2
        lower[i] = <floating>(sqrt(v) * (1.0 - 1e-6) if v > 0.0 else 0.0)
        a = labels[i]
        if fresh or c != a:
            w = sw[i] if sw != NULL else 1.0
            _add_row(dsums + c * d, xr, rshift, d, w, True)
            dweights[c] += w
            if not fresh:
                _add_row(dsums + a * d, xr, rshift, d, -w, True)
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
                 moves,
                 bounds,
                 double[:, ::1] sums,
                 double[::1] weights,
                 Py_ssize_t chunk_rows,
                 int n_threads):
    """One bounded Lloyd pass (see the note above); returns (n_changed, n_full).

    ``moves``: a ``CentreMoves``; ``bounds``: a ``RowBounds`` with
    ``upper`` and ``lower`` in X's dtype (``_kmeans_args``). With
    ``moves.fresh`` ``sums`` / ``weights`` are recomputed, otherwise
    updated by the rows that change cluster. Frames and weights as in
    ``lloyd_pass``.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centres.shape[0]
    cdef const double[::1] half_sep = moves.half_sep
    cdef const double[::1] drift = moves.drift
    cdef bint fresh = moves.fresh
    cdef floating[::1] upper = bounds.upper
    cdef floating[::1] lower = bounds.lower
    cdef int32_t[::1] labels = bounds.labels
    cdef int cancel = 0
    cdef Py_ssize_t p, c, j, start, drift_arg = 0
    cdef double drift_max = 0.0, drift_second = 0.0, csq_max = 0.0
    cdef double counts[3]
    cdef double err_scale = 2.0 * (d + 4) * (1.2e-7 if floating is float else 2.3e-16)
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef floating *csq
    cdef CentrePass run
    cdef PassWs tw
    cdef double *slot
    require_centre_pass(X, sample_weight, shift, centres, labels, sums, weights,
                        chunk_rows, n_threads, "bounded_pass")
    require(half_sep.shape[0] == k and drift.shape[0] == k,
            "bounded_pass: moves.half_sep and moves.drift must have k entries")
    require(upper.shape[0] == n and lower.shape[0] == n,
            "bounded_pass: bounds.upper and bounds.lower must have one entry per row")
    # slot: [sums (k x d), weights (k), n_changed, n_full, bad labels]
    if centre_pass_open(&run, n, d, k, chunk_rows, sizeof(floating), True,
                        k * d + k + 3, n_threads) != 0 or (
            centre_pass_tiles(&run, &centres[0, 0], k, d) != 0):
        centre_pass_close(&run)
        raise MemoryError("fastem: could not allocate the bounded pass workspace")
    csq = <floating *>run.csq
    with nogil:
        for j in range(k):
            if csq[j] > csq_max:
                csq_max = csq[j]
            if drift[j] > drift_max:
                drift_second = drift_max
                drift_max = drift[j]
                drift_arg = j
            elif drift[j] > drift_second:
                drift_second = drift[j]
        for p in prange(run.pt.n_parts, schedule='dynamic', num_threads=n_threads):
            tw = centre_pass_workspace(&run, omp_get_thread_num(), chunk_rows, d, k,
                                       sizeof(floating), True)
            slot = slot_open(&run.pt, p)
            for c in range(first_chunk(&run.pt, p), first_chunk(&run.pt, p + 1)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                _bounded_chunk(&X[start, 0], chunk_len(&run.pt, c), d, k,
                               swp + start if swp != NULL else NULL, shp,
                               &centres[0, 0], csq, <floating *>run.tiles, csq_max,
                               &half_sep[0], &drift[0], drift_max, drift_second,
                               drift_arg,
                               fresh, err_scale, &upper[start], &lower[start],
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
    raise_pending(cancel)
    require(counts[2] == 0,
            "bounded_pass: bounds.labels holds labels outside [0, k), which no pass "
            "wrote: start again with moves.fresh=True (the sums are then recomputed)")
    return <Py_ssize_t>counts[0], <Py_ssize_t>counts[1]


# ---------------------------------------------------------------------------
# Labelling pass from the bounds: the labels and inertia that lloyd_pass
# gives for centres C in the frame of ``shift`` (the fit's last pass, in
# predict's frame), reading every row once but searching all k centres only
# for the rows whose bounds do not settle their label.
#
# The bounds hold for exact distances: after the drifts, u >= ||x - c_a||
# and m = max(l, 2 s_a - u) <= ||x - c_j|| for every j != a (Hamerly's two
# tests, as one). The pass must give the label the tiles would compute, so a
# row keeps a only if no rounding of theirs can reorder the centres. The
# tiles compare v_j = fma(-2, x'.c_j, ||c_j||^2) for the rounded row x' =
# fl(x - shift); with r = ||x - shift|| <= u + max ||c||, each v_j is within
# e = err_scale (r^2 + max ||c||^2) of ||x' - c_j||^2 - ||x'||^2 (the dot
# product's d roundings and the norm's, as for the bounds of the full
# searches above) and ||x' - (x - shift)|| <= unit r. So v_a < v_j for every
# j != a, the tiles' strict minimum, when
#     (u + unit r)^2 + 2 e < (m - unit r)^2,
# and then v_a is the tiles' best: the same fused multiply-adds for one
# centre (fe_tile_values). The other rows get the full search. Sums of
# w best and w ||x'||^2 are those of _lloyd_chunk, row by row in order.
# ---------------------------------------------------------------------------

cdef void _labels_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                        Py_ssize_t k, const floating *sw, const floating *shift,
                        const floating *centres, const floating *csq,
                        const floating *tiles, double csq_max, double reach,
                        const double *half_sep, const double *drift, double drift_max,
                        double drift_second, Py_ssize_t drift_arg, double err_scale,
                        double unit, const floating *upper, const floating *lower,
                        int32_t *labels, const PassWs *tw, double *tail) noexcept nogil:
    """One chunk of bounded_labels_pass; tail += [sum w best, rows searched,
    sum w ||x'||^2, labels out of range]."""
    cdef Py_ssize_t i, a, n_full = 0, n_kept = 0, g = 0, t = 0
    cdef double u, m, r, dx, e, w, acc = 0.0, acc_n = 0.0
    cdef floating best
    cdef int32_t *full = tw.gathered
    # the rows the bounds settle, and their values: in the buffers a bounded
    # pass keeps for its per-row max(l, s_a) (nb doubles, room for nb int32)
    # and its runners-up (_pass_workspace)
    cdef int32_t *kept = <int32_t *>tw.dist
    cdef floating *kept_best = <floating *>tw.second
    for i in range(nb):
        a = labels[i]
        if <size_t>a >= <size_t>k:  # a state no pass wrote: refuse it
            tail[3] += 1
            return
        u = upper[i] + drift[a]
        m = lower[i] - (drift_second if a == drift_arg else drift_max)
        if 2.0 * half_sep[a] - u > m:
            m = 2.0 * half_sep[a] - u
        r = u + reach
        dx = unit * r
        e = err_scale * (r * r + csq_max)
        if m - dx > 0.0 and (u + dx) * (u + dx) + 2.0 * e < (m - dx) * (m - dx):
            kept[n_kept] = <int32_t>i
            n_kept += 1
        else:
            full[n_full] = <int32_t>i
            n_full += 1
    if n_full > 0:
        tiles_chunk(x, full, n_full, d, shift, tiles, k, tw, False)
    if n_kept > 0:
        if floating is float:
            fe_tile_values_f32(x, kept, n_kept, d, shift, centres, csq, labels, kept_best)
        else:
            fe_tile_values_f64(x, kept, n_kept, d, shift, centres, csq, labels, kept_best)
    for i in range(nb):
        if g < n_full and full[g] == i:
            labels[i] = tw.near[g]
            best = (<floating *>tw.best)[g]
            g += 1
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
    ``RowBounds``, whose labels are rewritten (the bounds are left as they
    were: they are not those of the new labels). The inertia is
    ``lloyd_pass``'s sum in the same order, bit for bit when both passes
    split X into the same partitions (``n_partitions``: whenever k d is
    small). Only where ``bounded_labels_available``.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centres.shape[0]
    cdef const double[::1] half_sep = moves.half_sep
    cdef const double[::1] drift = moves.drift
    cdef const floating[::1] upper = bounds.upper
    cdef const floating[::1] lower = bounds.lower
    cdef int32_t[::1] labels = bounds.labels
    cdef int cancel = 0
    cdef Py_ssize_t p, c, j, start, drift_arg = 0
    cdef double drift_max = 0.0, drift_second = 0.0, csq_max = 0.0, reach
    cdef double tail[4]
    # err_scale as in bounded_pass; unit: the unit roundoff of x - shift
    cdef double err_scale = 2.0 * (d + 4) * (1.2e-7 if floating is float else 2.3e-16)
    cdef double unit = 6.0e-8 if floating is float else 1.12e-16
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef const floating *shp = &shift[0] if shift.shape[0] > 0 else NULL
    cdef floating *csq
    cdef CentrePass run
    cdef PassWs tw
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
    require(upper.shape[0] == n and lower.shape[0] == n and labels.shape[0] == n,
            "bounded_labels_pass: bounds.upper, bounds.lower and bounds.labels must "
            "have one entry per row")
    # slot: [sum w best, rows searched, sum w ||x'||^2, bad labels]
    if centre_pass_open(&run, n, d, k, chunk_rows, sizeof(floating), True, 4,
                        n_threads) != 0 or (
            centre_pass_tiles(&run, &centres[0, 0], k, d) != 0):
        centre_pass_close(&run)
        raise MemoryError("fastem: could not allocate the labelling pass workspace")
    csq = <floating *>run.csq
    with nogil:
        for j in range(k):
            if csq[j] > csq_max:
                csq_max = csq[j]
            if drift[j] > drift_max:
                drift_second = drift_max
                drift_max = drift[j]
                drift_arg = j
            elif drift[j] > drift_second:
                drift_second = drift[j]
        # >= every ||c_j|| (csq holds them to within d roundings)
        reach = sqrt(csq_max) * (1.0 + d * unit) if csq_max > 0.0 else 0.0
        for p in prange(run.pt.n_parts, schedule='dynamic', num_threads=n_threads):
            tw = centre_pass_workspace(&run, omp_get_thread_num(), chunk_rows, d, k,
                                       sizeof(floating), True)
            slot = slot_open(&run.pt, p)
            for c in range(first_chunk(&run.pt, p), first_chunk(&run.pt, p + 1)):
                if interrupted(&cancel):
                    break
                start = c * chunk_rows
                _labels_chunk(&X[start, 0], chunk_len(&run.pt, c), d, k,
                              swp + start if swp != NULL else NULL, shp,
                              &centres[0, 0], csq, <floating *>run.tiles, csq_max,
                              reach, &half_sep[0], &drift[0], drift_max, drift_second,
                              drift_arg, err_scale, unit, &upper[start], &lower[start],
                              &labels[start], &tw, slot)
        memset(tail, 0, 4 * sizeof(double))
        partitions_sum(&run.pt, 0, 4, tail)
    centre_pass_close(&run)
    raise_pending(cancel)
    require(tail[3] == 0,
            "bounded_labels_pass: bounds.labels holds labels outside [0, k), which no "
            "pass wrote: use lloyd_pass")
    # as lloyd_pass: a perfect fit's float32 expansion can leave a hair below 0
    return max(tail[2] + tail[0], 0.0), <Py_ssize_t>tail[1]
