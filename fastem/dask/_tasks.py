"""The functions a block task runs (module level, so workers import them).

Each one calls the same compiled pass as the in-memory fit, through one
narrow function of the in-memory modules, with BLAS limited to one thread
(the kernels parallelise over chunks themselves). Arguments: the block's
rows ``x`` and weights ``w`` (or None), then the pass's parameters, then
the block's index and first row (for messages and seeds).
"""
import numpy as np

from fastem._init import (
    kmeans_parallel_start,
    kmeans_parallel_sample,
    kmeans_parallel_update,
    kmeans_parallel_weights,
)
from fastem._kmeans import (
    BoundedState,
    assign_pass,
    bounded_block_pass,
    farthest_assigned_rows,
)
from fastem._mixture import pass_statistics
from fastem._parallel import blas_single_threaded
from fastem._stats import column_moments_about
from fastem.dask import _state

# rows checked, or given random responsibilities (init_params='random'), at a time
PIECE_ROWS = 65536


def _rows(x, w):
    """A block as the kernels take it: C-contiguous rows and weights."""
    return np.ascontiguousarray(x), None if w is None else np.ascontiguousarray(w)


def check_block(x, w, index, start):
    """Finite values and valid weights; returns (rows, rows of positive weight).

    The first pass of a fit runs it on every block: a bad value is reported
    with its block and rows, the data being read lazily.
    """
    _check_finite(x, index, start)
    return _check_weights(x, w, index, start)


def checked_moments(x, w, ref, index, start):
    """``check_block`` and ``moments`` in one pass (K-means' first pass):
    ((rows, rows of positive weight), total, s1, s2).

    The moments find non-finite values for free: ``s2`` sums squares of
    ``x - ref``, so any NaN or infinity in the block (or in ``ref``, X's
    first row) makes it non-finite; only then are the rows scanned (a
    finite block whose squares overflow float64 passes the scan).
    """
    total, s1, s2 = moments(x, w, ref, index, start)
    if not np.isfinite(s2).all():
        _check_finite(x, index, start)
    return _check_weights(x, w, index, start), total, s1, s2


def _where(x, index, start):
    return f"block {index} (rows {start} to {start + x.shape[0] - 1})"


def _check_finite(x, index, start):
    """Raise if the block holds NaN or infinity."""
    # a few rows at a time: no boolean copy of the whole block
    if not all(np.isfinite(x[lo:lo + PIECE_ROWS]).all()
               for lo in range(0, x.shape[0], PIECE_ROWS)):
        raise ValueError(
            f"X contains NaN or infinity in {_where(x, index, start)}: remove or "
            "impute those values before fitting."
        )


def _check_weights(x, w, index, start):
    """(rows, rows of positive weight), after checking the block's weights."""
    if w is None:
        return np.array([x.shape[0], x.shape[0]], dtype=np.int64)
    where = _where(x, index, start)
    if not np.isfinite(w).all():
        raise ValueError(f"sample_weight contains NaN or infinity in {where}.")
    if (w < 0).any():
        raise ValueError(f"sample_weight contains negative values in {where}; weights must be >= 0.")
    return np.array([x.shape[0], np.count_nonzero(w)], dtype=np.int64)


def moments(x, w, ref, index, start):
    """Unweighted column moments about ``ref`` (the K-means frame and tol)."""
    x, w = _rows(x, w)
    total, s1, s2 = column_moments_about(x, None, ref, 1)
    return total, s1, s2


def weight_total(x, w, index, start):
    return float(x.shape[0]) if w is None else float(np.sum(w, dtype=np.float64))


def locate_row(x, w, target, index, start):
    """The row of this block whose cumulative weight first exceeds ``target``."""
    if w is None:
        return np.ascontiguousarray(x[min(int(target), x.shape[0] - 1)])
    cum = np.cumsum(w, dtype=np.float64)
    i = int(np.searchsorted(cum, target, side="right"))
    return np.ascontiguousarray(x[min(i, x.shape[0] - 1)])


def _draw_weights(w, found, start):
    """The block's weights (float64) with the rows in ``found`` (global
    indices) set to zero: rows already drawn cannot be drawn again."""
    w = np.array(w, dtype=np.float64)
    local = np.asarray(found, dtype=np.int64) - start
    w[local[(local >= 0) & (local < w.shape[0])]] = 0.0
    return w


def draw_total(x, w, found, index, start):
    """Total weight of the block's rows not in ``found``."""
    return float(np.sum(_draw_weights(w, found, start)))


def draw_locate(x, w, found, targets, index, start):
    """Global index of the row at which the block's cumulative weight (rows
    in ``found`` at zero) first exceeds each target (targets in [0, total))."""
    cum = np.cumsum(_draw_weights(w, found, start))
    local = np.searchsorted(cum, np.asarray(targets, dtype=np.float64), side="right")
    return np.minimum(local, x.shape[0] - 1) + start


# ---------------------------------------------------------------- K-means

def lloyd_statistics(x, w, centres, shift, n_threads, index, start):
    """One Lloyd pass: (sums, weights, inertia) of the block's rows."""
    x, w = _rows(x, w)
    with blas_single_threaded():
        _, inertia, sums, weights = assign_pass(x, w, centres, shift, n_threads)
    return sums, weights, inertia


def bounded_statistics(x, w, fit_id, step, centres, shift, bounds, fresh, n_threads,
                       index, start):
    """Pass ``step`` of a bounded Lloyd fit over the block, its per-row
    bounds and labels kept on this worker (``_state``) between passes.

    Returns (sums, weights, counts): the block's Lloyd statistics for the
    new labels and ``counts = [rows whose label changed, rows whose
    distances were all computed, 1 if the state had to be rebuilt]``.
    ``fresh``: every row is assigned from scratch (first pass, or empty
    clusters were relocated). A task run twice for the same step returns
    the first run's result; a block whose state is missing here (its
    worker was replaced) starts again from a fresh pass.
    """
    x, w = _rows(x, w)
    last_step, state, result = _state.get(fit_id, index) or (None, None, None)
    if last_step == step:
        return result
    rebuilt = last_step is None or last_step != step - 1
    if rebuilt:
        k, d = centres.shape
        state = BoundedState(x.shape[0], k, d, x.dtype)
    state.fresh = state.fresh or fresh
    with blas_single_threaded():
        n_changed, n_full = bounded_block_pass(x, w, centres, shift, bounds, state,
                                               n_threads)
    counts = np.array([n_changed, n_full, int(rebuilt and step > 0)], dtype=np.int64)
    result = (state.sums.copy(), state.weights.copy(), counts)
    _state.put(fit_id, index, (step, state, result))
    return result


def farthest(x, w, fit_id, step, centres, shift, n, n_threads, index, start):
    """The block's ``n`` rows farthest from their centre (empty clusters):
    (dist, global index, shifted rows, weights, labels). The labels of
    pass ``step`` are taken from the block's state when it is here."""
    x, w = _rows(x, w)
    last_step, state, _ = _state.get(fit_id, index) or (None, None, None)
    labels = state.labels if last_step == step else None
    with blas_single_threaded():
        dist, far, rows, row_weights, labels = farthest_assigned_rows(
            x, w, centres, shift, n, n_threads, labels=labels)
    return dist, far + start, rows, row_weights, labels


def labels(x, centres, shift, n_threads):
    """Nearest centres (int32), for predict."""
    with blas_single_threaded():
        return assign_pass(x, None, centres, shift, n_threads)[0]


# ------------------------------------------------------------- k-means||

def parallel_update(x, w, state, new, first_index, n_threads, index, start):
    """k-means|| round: the block's state after the new candidates, and its
    potential. ``state`` None: the first round (no candidate yet)."""
    x, w = _rows(x, w)
    state = kmeans_parallel_start(x.shape[0]) if state is None else (
        state[0].copy(), state[1].copy())
    with blas_single_threaded():
        potential = kmeans_parallel_update(x, w, state, new, first_index, n_threads)
    return state, potential


def parallel_sample(x, w, state, factor, seed, index, start):
    return kmeans_parallel_sample(x, w, state, factor, seed, index)


def parallel_weights(x, w, state, n_candidates, index, start):
    return kmeans_parallel_weights(w, state, n_candidates)


# --------------------------------------------------------------- mixtures

def mixture_pass(x, w, spec, index, start):
    """One E-step (or moments) pass: (log-likelihood, statistics)."""
    x, w = _rows(x, w)
    with blas_single_threaded():
        return pass_statistics(x, w, spec)


def mixture_labels_pass(x, w, spec, centres, shift, n_threads, index, start):
    """Statistics of hard assignments to the nearest of ``centres``
    (init_params='kmeans': the labels predict would give)."""
    x, w = _rows(x, w)
    with blas_single_threaded():
        lab = assign_pass(x, None, centres, shift, n_threads)[0]
        return pass_statistics(x, w, spec, labels=lab)


def mixture_random_pass(x, w, spec, seed, index, start):
    """Statistics of random responsibilities (init_params='random'), drawn
    from ``default_rng([seed, index])`` a few rows at a time."""
    x, w = _rows(x, w)
    gen = np.random.default_rng([seed, index])
    K = spec.n_components
    total = None
    with blas_single_threaded():
        for lo in range(0, x.shape[0], PIECE_ROWS):
            hi = min(lo + PIECE_ROWS, x.shape[0])
            resp = gen.uniform(size=(hi - lo, K))
            resp /= resp.sum(axis=1)[:, None]
            _, st = pass_statistics(x[lo:hi], None if w is None else w[lo:hi], spec,
                                    resp=resp)
            total = st if total is None else total + st
    return 0.0, total


def positive_rows(x, w, ranks, index, start):
    """Rows of positive weight with the given ranks among them (in order),
    and their weights (float64)."""
    x, w = _rows(x, w)
    pos = np.arange(x.shape[0]) if w is None else np.flatnonzero(w > 0)
    take = pos[np.asarray(ranks, dtype=np.intp)]
    weights = np.ones(take.shape[0]) if w is None else w[take].astype(np.float64)
    return np.ascontiguousarray(x[take]), weights


def mixture_score(x, w, model, index, start):
    """(sum_n w_n log p(x_n), sum_n w_n) of the block under a fitted
    in-memory ``model``."""
    x, w = _rows(x, w)
    out = model._row_pass(x, sample_weight=w)
    return out["ll"], float(x.shape[0] if w is None else np.sum(w, dtype=np.float64))
