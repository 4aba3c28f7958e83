"""K-means on scipy.sparse CSR data: validation and the loops over the
sparse kernels (``fastem._kernels._sparse``).

The estimators call this module at one point per operation (fit, the
assignment pass, distances, k-means++ seeding) when X is sparse; centres
stay dense. Nothing here forms an n x d array: beyond X, a fit holds O(n)
per-row arrays (labels, squared norms, distances to the centres) and
O(k x d) centre arrays.

``algorithm`` on sparse data: 'lloyd' runs plain passes (every row's
cross terms with every centre); 'elkan' (k >= 2) and 'auto' (k > 8) run
bounded passes (``_Bounds``, ``bounded_pass`` in the kernels: Hamerly's bounds, the
plain pass's labels in every iteration, proven row by row with a margin for
the expansion's rounding), with the centre sums moved incrementally for the
rows that change label. What 'auto' picks: ``use_bounds``.
"""
import math
import sys
import time

import numpy as np
import scipy.sparse as sp

from fastem._kernels import load_kernels
from fastem._parallel import chunk_rows
from fastem._separation import half_separations
from fastem._validation import FLOAT_DTYPES

_ks = load_kernels("_sparse")
_TILE = _ks.TILE_COLUMNS


def issparse(X):
    """True for any scipy.sparse matrix or array."""
    return sp.issparse(X)


# ----------------------------------------------------------------------
# validation

def check_csr(X, *, name="X", dtype=FLOAT_DTYPES, min_samples=1):
    """Validate sparse data and return it as canonical CSR, never modifying X.

    Other sparse formats are converted to CSR once (a copy of the non-zeros:
    O(nnz) time and memory). The CSR structure is checked (indptr monotone
    from 0 to nnz, indices in [0, n_features), int32 or int64 index arrays,
    finite numeric data). Rows with unsorted or duplicate column indices
    are canonicalised on a copy (duplicates summed, as scipy defines them).
    float32 and float64 data are kept; other numeric data become float64
    (a copy of the values).

    Returns
    -------
    X : scipy.sparse CSR matrix or array (the input's kind), canonical
    """
    if X.format != "csr":
        X = X.tocsr()
    n_samples, n_features = X.shape
    if n_samples < min_samples:
        raise ValueError(
            f"Found array with {n_samples} sample(s) (shape={X.shape}) while a "
            f"minimum of {min_samples} is required: {name} needs at least "
            f"{min_samples} row(s).")
    if n_features == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 "
            f"is required: {name} needs at least one column.")
    accepted = tuple(np.dtype(d) for d in (dtype if isinstance(dtype, tuple) else (dtype,)))
    kind = X.data.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: {name} is complex; fastem "
                         "needs real-valued data.")
    if kind not in "fiub":
        raise TypeError(f"{name} has unsupported dtype {X.data.dtype}; pass numbers.")
    _check_structure(X, name)
    _check_finite(X, name)
    if not _is_canonical(X):
        X = X.copy()
        X.sum_duplicates()  # sorts each row's indices, adds duplicates
        _check_structure(X, name)
    if X.data.dtype not in accepted:
        X = X.astype(accepted[0])
    return X


def _check_structure(X, name):
    data, indices, indptr = X.data, X.indices, X.indptr
    n_samples, n_features = X.shape
    for arr, what in ((indices, "indices"), (indptr, "indptr")):
        if arr.dtype not in (np.int32, np.int64):
            raise TypeError(
                f"{name}.{what} has dtype {arr.dtype}; CSR index arrays must be "
                "int32 or int64. Rebuild the matrix with scipy.sparse.csr_matrix.")
    if indices.dtype != indptr.dtype:
        raise TypeError(
            f"{name}.indices ({indices.dtype}) and {name}.indptr ({indptr.dtype}) "
            "must have the same dtype. Rebuild the matrix with scipy.sparse.csr_matrix.")
    nnz = data.shape[0]
    if (data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1
            or indptr.shape[0] != n_samples + 1 or indices.shape[0] != nnz):
        raise ValueError(
            f"{name} is not a valid CSR matrix: it needs len(indptr) = n_samples + 1 "
            f"= {n_samples + 1} and len(indices) = len(data); got {indptr.shape[0]}, "
            f"{indices.shape[0]} and {nnz}.")
    if indptr[0] != 0 or indptr[-1] != nnz or (np.diff(indptr) < 0).any():
        raise ValueError(
            f"{name} is not a valid CSR matrix: indptr must start at 0, never "
            f"decrease, and end at the number of stored values ({nnz}).")
    if nnz and (int(indices.min()) < 0 or int(indices.max()) >= n_features):
        raise ValueError(
            f"{name} is not a valid CSR matrix: column indices must lie in "
            f"[0, {n_features}), found {int(indices.min())}..{int(indices.max())}.")


def _check_finite(X, name):
    finite = np.isfinite(X.data)
    if not finite.all():
        pos = int(np.argmin(finite))
        row = int(np.searchsorted(X.indptr, pos, side="right")) - 1
        what = "NaN" if np.isnan(X.data[pos]) else "infinity"
        raise ValueError(f"{name} contains {what} (first at row {row}). Remove or "
                         "impute missing values before fitting.")


def _is_canonical(X):
    """Column indices strictly increasing within every row (checked here,
    not read from scipy's cached flag, which the caller could have set)."""
    indices, indptr = X.indices, X.indptr
    if indices.shape[0] < 2:
        return True
    step = np.diff(indices)
    # a step across the boundary between two rows may be anything
    inside = np.ones(step.shape[0], dtype=bool)
    bounds = indptr[1:-1]
    bounds = bounds[(bounds > 0) & (bounds < indices.shape[0])]
    inside[bounds - 1] = False
    return not (inside & (step <= 0)).any()


# ----------------------------------------------------------------------
# small helpers

def _arrays(X):
    """The CSR arrays a kernel reads, after the O(1) checks of their layout."""
    if X.format != "csr" or X.indices.dtype != X.indptr.dtype \
            or X.indptr.shape[0] != X.shape[0] + 1 or X.data.dtype not in FLOAT_DTYPES:
        raise ValueError("internal error: a sparse kernel got unchecked CSR data")
    return X.data, X.indices, X.indptr


def _weights_or_empty(sample_weight, dtype):
    return sample_weight if sample_weight is not None else np.empty(0, dtype)


def _chunk_rows(X, n_columns, min_rows=64):
    """Rows per chunk: the dense policy with a row's work = its dot products
    plus its mean number of non-zeros (depends on the data, never on threads)."""
    per_row = n_columns + -(-X.nnz // max(1, X.shape[0]))
    return chunk_rows(per_row, 8, n_rows=X.shape[0], min_rows=min_rows)


def row_sqnorms(X, n_threads):
    """||x_i||^2 in float64; error if they overflow."""
    data, _, indptr = _arrays(X)
    out = np.empty(X.shape[0])
    _ks.row_sqnorms(data, indptr, out, n_threads)
    if not np.isfinite(out).all():
        raise ValueError(
            "X's values are too large in magnitude: their squared norms overflow "
            "float64. Rescale X (for example with sklearn.preprocessing.MaxAbsScaler).")
    return out


def column_mean_var(X):
    """Unweighted column means and variances, float64 (the tolerance's scale)."""
    n = X.shape[0]
    values = X.data.astype(np.float64)
    s1 = np.bincount(X.indices, weights=values, minlength=X.shape[1])
    s2 = np.bincount(X.indices, weights=values * values, minlength=X.shape[1])
    mean = s1 / n
    return mean, np.maximum(s2 / n - mean * mean, 0.0)


def dense_rows(X, rows):
    """X[rows] as a dense (len(rows), d) array of X's dtype."""
    rows = np.asarray(rows, dtype=np.intp).reshape(-1)
    data, indices, indptr = X.data, X.indices, X.indptr
    out = np.zeros((rows.shape[0], X.shape[1]), dtype=X.dtype)
    starts = indptr[rows].astype(np.intp)
    counts = indptr[rows + 1].astype(np.intp) - starts
    offsets = np.cumsum(counts) - counts
    pos = np.arange(int(counts.sum())) + np.repeat(starts - offsets, counts)
    out[np.repeat(np.arange(rows.shape[0]), counts), indices[pos]] = data[pos]
    return out


def feature_major(points, dtype):
    """The kernels' copy of (m, d) points: a ``FeatureMajorCentres`` of
    their (d, mp) transpose in ``dtype``, mp = m rounded up to the kernels'
    tile (zero padding), and their squared norms in float64."""
    m, d = points.shape
    out = np.zeros((d, -(-m // _TILE) * _TILE), dtype=dtype)
    out[:, :m] = points.T
    p64 = points.astype(dtype).astype(np.float64)
    return _ks.FeatureMajorCentres(out, np.einsum("ij,ij->i", p64, p64))


# ----------------------------------------------------------------------
# passes

def assign_pass(X, sample_weight, centres, n_threads, with_sums=True):
    """Labels, inertia, and (``with_sums``) per-centre sums and weights.

    The sparse counterpart of ``fastem._kmeans.assign_pass`` with a zero
    frame shift (sparse rows are never shifted).

    Returns
    -------
    labels : ndarray (n,), int32
    inertia : float
    sums : ndarray (k, d), float64, sum of w x over each centre's rows, or None
    weights : ndarray (k,), float64, or None
    """
    data, indices, indptr = _arrays(X)
    k, d = centres.shape
    sw = _weights_or_empty(sample_weight, X.dtype)
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    _, inertia = _ks.assign_pass(data, indices, indptr, sw, row_sqnorms(X, n_threads),
                                 feature_major(centres, X.dtype), (labels, np.empty(0)),
                                 _chunk_rows(X, k), n_threads)
    if not with_sums:
        return labels, inertia, None, None
    sums, weights = _centre_sums(X, sw, labels, k, n_threads)
    return labels, inertia, sums, weights


def _centre_sums(X, sw, labels, k, n_threads, out=None):
    data, indices, indptr = _arrays(X)
    sums = np.empty((k, X.shape[1])) if out is None else out[0]
    weights = np.empty(k) if out is None else out[1]
    _ks.centre_sums(data, indices, indptr, sw, labels, (sums, weights), n_threads)
    return sums, weights


def pairwise_sqdist(X, centres, n_threads):
    """(n, k) squared distances in X's dtype, clipped at 0 (transform)."""
    data, indices, indptr = _arrays(X)
    out = np.empty((X.shape[0], centres.shape[0]), dtype=X.dtype)
    _ks.pairwise_sqdist(data, indices, indptr, row_sqnorms(X, n_threads),
                        feature_major(centres, X.dtype), out, n_threads)
    return out


def use_bounds(algorithm, n_clusters):
    """Whether a sparse fit runs bounded passes: 'elkan' with k >= 2, 'auto'
    with k > 8, never 'lloyd'.

    Why 'auto' needs k > 8 (one TILE of centres): a full search reads
    ceil(k / 8) cache lines of centres per non-zero, the bound check's
    tightening one. With k <= 8 the two cost the same, so a row whose
    bounds fail costs twice a plain pass's row, and the rows skipped save
    little. Measured (2 threads, compare.py's TF-IDF generator, n = 5e4,
    d = 1e5, ~48 non-zeros per row, 20 iterations at most from the same
    rows, two runs each, interleaved, machine loaded by other jobs):
    k = 100: bounded 10.4 / 11.4 s, plain 13.5 / 16.0 s (15 iterations);
    k = 8: bounded 0.97 / 1.16 s, plain 0.80 / 1.12 s (8 iterations).
    The bounds decide nothing in the first ~5 iterations (the centres move
    far), then let 10-80 % of the rows skip their full search (see the
    README's "Sparse data" for the 5e5-row benchmark).
    """
    if algorithm == "lloyd" or n_clusters < 2:
        return False
    return algorithm == "elkan" or n_clusters > _TILE


def lloyd(X, sample_weight, centres, *, max_iter, tol, n_threads, verbose=0,
          bounded=False):
    """Lloyd iterations on CSR X from dense ``centres`` (X's dtype).

    The loop of ``fastem._kmeans.lloyd`` (same stopping rules, same empty
    cluster relocation, labels and inertia of the returned centres at the
    end), without a frame shift. Plain: each iteration is one parallel
    assignment pass over the rows, then the centre sums scattered from the
    non-zeros. ``bounded`` (k >= 2): Hamerly's bounds (``_Bounds``), the
    same labels in every iteration.

    Returns
    -------
    labels : ndarray (n,), int32
    centres : ndarray (k, d), X's dtype
    inertia : float
    n_iter : int
    """
    data, indices, indptr = _arrays(X)
    n = X.shape[0]
    k, d = centres.shape
    sw = _weights_or_empty(sample_weight, X.dtype)
    xsq = row_sqnorms(X, n_threads)
    chunk = _chunk_rows(X, k)
    labels = np.full(n, -1, dtype=np.int32)
    mindist = np.empty(n)
    sums, weights = np.empty((k, d)), np.empty(k)
    # float64 centres, and the kernels' copy: feature-major in X's dtype
    # (update_centres keeps both up to date)
    centres64 = centres.astype(X.dtype).astype(np.float64)
    fm = feature_major(centres64, X.dtype)
    bounds = _Bounds(X, sw, xsq, k, chunk, n_threads) if bounded else None
    strict = False
    start = time.perf_counter()
    for it in range(max_iter):
        if bounds is None:
            n_changed, inertia = _ks.assign_pass(data, indices, indptr, sw, xsq, fm,
                                                 (labels, mindist), chunk, n_threads)
            objective = f"inertia {inertia:.6e}"
        else:
            n_changed, n_full = bounds.assign(labels, centres64, fm, sums, weights)
            objective = f"all cross terms for {n_full / max(n, 1):.1%} of rows"
        if it > 0 and n_changed == 0:
            strict = True  # same labels: the centres would not move
        else:
            if bounds is None:
                _centre_sums(X, sw, labels, k, n_threads, out=(sums, weights))
            if not weights.all():
                if bounds is not None:  # the plain pass's distances to the centres
                    _ks.assign_pass(data, indices, indptr, sw, xsq, fm,
                                    (labels.copy(), mindist), chunk, n_threads)
                    bounds.fresh = True  # bounds and incremental sums start over
                _relocate_empty_clusters(X, sample_weight, labels, mindist, sums, weights)
            centre_shift = _ks.update_centres(
                sums, weights, centres64, fm.centres_t, fm.csq,
                bounds.drift2 if bounds is not None else np.empty(0))
        if verbose:
            print(f"Iteration {it:4d}: {objective}, {n_changed} labels changed, "
                  f"centre shift {0.0 if strict else centre_shift:.3e}, "
                  f"{time.perf_counter() - start:.2f} s", file=sys.stderr)
        if strict or centre_shift <= tol:
            if verbose:
                print(f"Converged at iteration {it}: "
                      + ("strict convergence." if strict else
                         f"center shift {centre_shift:.3e} within tolerance {tol:.3e}."),
                      file=sys.stderr)
            break
    if bounds is None:
        _, inertia = _ks.assign_pass(data, indices, indptr, sw, xsq, fm,
                                     (labels, np.empty(0)), chunk, n_threads)
    else:  # the labels of the final centres, then their inertia (the same
        # value as the plain pass's, one dot product per row)
        if not strict:  # (strict: the labels are already those of these centres)
            bounds.assign(labels, centres64, fm, None, None)
        inertia = _ks.assigned_inertia(data, indices, indptr, sw, xsq, fm, labels,
                                       chunk, n_threads)
    if verbose:
        print(f"Final inertia {inertia:.6e}.", file=sys.stderr)
    return labels, centres64.astype(X.dtype), inertia, it + 1


class _Bounds:
    """Hamerly's bounds of one sparse fit and the passes that use them.

    ``assign`` gives the labels of the plain pass (``bounded_pass`` proves
    them for most rows from the bounds alone) and brings the centre sums up
    to date: from scratch after a fresh pass, otherwise by moving the rows
    that changed label (Hamerly's incremental update, ``move_rows``) unless
    those rows hold half the non-zeros or more (then from scratch, which is
    then cheaper). The weights are always recounted (O(n), exact: an
    emptied cluster has weight 0, never a rounding residue).

    The half distances between centres come from one k x k float64 GEMM of
    the (rounded) centres, an O(k^2 d) cost per iteration; they are used
    only where that is small next to a pass's O(nnz k) work (k d <= 4 nnz,
    GEMM running ~30 times faster per flop than the scatter), else the
    lower bounds alone decide.
    """

    def __init__(self, X, sw, xsq, k, chunk, n_threads):
        n = X.shape[0]
        self.X, self.sw, self.xsq, self.chunk, self.n_threads = X, sw, xsq, chunk, n_threads
        self.upper = np.empty(n)
        self.lower = np.empty(n)
        self.previous = np.empty(n, dtype=np.int32)
        self.drift2 = np.zeros(k)  # squared drifts since the bounds were last valid
        self.fresh = True
        self.use_sep = k * X.shape[1] <= 4 * X.nnz
        self.sw64 = None if sw.shape[0] == 0 else sw.astype(np.float64)
        self.row_nnz = np.diff(X.indptr)

    def assign(self, labels, centres64, fm, sums, weights):
        """One bounded pass from the centres (``centres64`` and the kernels'
        ``FeatureMajorCentres`` ``fm``); updates labels, and sums/weights
        unless None. Returns (n_changed, n_full)."""
        data, indices, indptr = _arrays(self.X)
        k, d = centres64.shape
        err = 2.0 * (d + 8) * 2.3e-16
        drift = np.sqrt(self.drift2) * (1.0 + err)
        self.drift2[:] = 0.0
        half_sep = self._half_sep(centres64, fm.csq, err)
        np.copyto(self.previous, labels)
        n_changed, n_full, _ = _ks.bounded_pass(
            data, indices, indptr, self.xsq, fm,
            _ks.CentreMoves(half_sep, drift, self.fresh),
            _ks.RowBounds(self.upper, self.lower, labels), self.chunk, self.n_threads)
        if sums is not None:
            self._update_sums(labels, sums, weights)
        self.fresh = False
        return n_changed, n_full

    def _update_sums(self, labels, sums, weights):
        X, k = self.X, weights.shape[0]
        moved = np.flatnonzero(self.previous != labels) if not self.fresh else None
        if moved is None or 2 * int(self.row_nnz[moved].sum()) >= X.nnz:
            _centre_sums(X, self.sw, labels, k, self.n_threads, out=(sums, weights))
            return
        data, indices, indptr = _arrays(X)
        _ks.move_rows(data, indices, indptr, self.sw, moved.astype(np.int64),
                      self.previous, labels, sums, self.n_threads)
        weights[:] = np.bincount(labels, weights=self.sw64, minlength=k)

    def _half_sep(self, centres64, csq, err):
        """Lower bounds on half the distance from each centre (as the
        kernels see it: rounded to X's dtype) to its nearest other one."""
        k = centres64.shape[0]
        if not self.use_sep:
            return np.zeros(k)
        c = centres64 if self.X.dtype == np.float64 else \
            centres64.astype(self.X.dtype).astype(np.float64)
        return half_separations(c, csq, err)


def _relocate_empty_clusters(X, sample_weight, labels, mindist, sums, weights):
    """The dense rule (``fastem._kmeans._relocate_empty_clusters``): each
    empty cluster takes one of the rows farthest from their centres, whose
    weight and coordinates move from their old cluster's statistics."""
    empty = np.flatnonzero(weights == 0)
    n_empty = empty.shape[0]
    far = np.argpartition(mindist, -n_empty)[:-n_empty - 1:-1]
    rows = dense_rows(X, far).astype(np.float64)
    for new_id, idx, row in zip(empty, far, rows):
        w = 1.0 if sample_weight is None else float(sample_weight[idx])
        old_id = labels[idx]
        sums[old_id] -= w * row
        weights[old_id] -= w
        sums[new_id] = w * row
        weights[new_id] = w


# ----------------------------------------------------------------------
# greedy k-means++

def greedy_kmeans_plusplus(X, n_clusters, sample_weight, rng, n_local_trials, n_threads):
    """Row indices of greedy k-means++ seeds on CSR X (inputs validated).

    The algorithm of ``fastem._init.greedy_kmeans_plusplus`` with the same
    random draws in the same order, so the same ``rng`` state picks the same
    rows as the dense algorithm on ``X.toarray()`` (up to rounding of the
    distances: they come from the expansion here, from exact differences
    there). Each step is one pass (``kpp_pass``) that applies the last chosen
    centre and measures the candidates, reading them only at the columns
    they have (``present``); the dense algorithm's triangle-inequality
    pruning is not implemented here.
    """
    from fastem._init import _draw_rows  # the dense algorithm's two-level draw

    n_samples = X.shape[0]
    data, indices, indptr = _arrays(X)
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    L = n_local_trials
    sw = _weights_or_empty(sample_weight, X.dtype)
    xsq = row_sqnorms(X, n_threads)
    points = np.zeros((X.shape[1], -(-(L + 1) // _TILE) * _TILE), dtype=X.dtype)
    rows = _chunk_rows(X, points.shape[1], min_rows=256)
    n_chunks = -(-n_samples // rows)
    closest = np.full(n_samples, np.finfo(np.float32).max, dtype=np.float32)
    chunk_cur = np.empty(n_chunks)
    chunk_pots = np.empty((n_chunks, L))
    potentials = np.empty(L)
    out = np.empty(n_clusters, dtype=np.intp)

    if sample_weight is None:
        first = int(rng.integers(n_samples))
    else:
        first = int(rng.choice(n_samples, p=sample_weight / sample_weight.sum(dtype=np.float64)))
    out[0] = first
    scale = _distance_scale(X, xsq, first)

    present = np.zeros(X.shape[1], dtype=np.uint8)  # columns where a point is non-zero
    placed = []  # the rows whose non-zeros sit in the columns of points

    def measure(cols, bounds=None):
        """kpp_pass with column 0 = cols[0] applied, candidates cols[1:]."""
        for put, rows_now in ((False, placed), (True, cols)):  # clear, then scatter
            for col, r in enumerate(rows_now):
                nz = slice(indptr[r], indptr[r + 1])
                points[indices[nz], col] = data[nz] if put else 0
                present[indices[nz]] = put
        placed[:] = cols
        psq = xsq[np.asarray(cols)]
        L_now = len(cols) - 1
        operand = _ks.KppPoints(points, present, psq, True, scale)
        if bounds is None:
            _ks.kpp_pass(data, indices, indptr, sw, xsq, operand, closest,
                         (chunk_cur, chunk_pots[:, :L_now], potentials[:L_now]),
                         rows, n_threads)
            return
        a, b = bounds  # one chunk: one thread (no parallel region to start)
        _ks.kpp_pass(data, indices, indptr[a:b + 1], sw[a:b] if sw.shape[0] else sw,
                     xsq[a:b], operand, closest[a:b],
                     (np.empty(1), np.empty((1, 0)), np.empty(0)), b - a, 1)

    measure([first])  # closest from the first centre (no candidates)
    chunk_pot = chunk_cur.copy()
    last = first
    for c in range(1, n_clusters):
        chunk_cum = np.cumsum(chunk_pot)
        targets = rng.uniform(size=L) * chunk_cum[-1]
        candidates = _draw_rows(targets, chunk_cum, closest, sample_weight, rows,
                                lambda a, b: measure([last], (a, b)))
        measure([last] + list(candidates))
        pick = int(np.argmin(potentials))
        last = int(candidates[pick])
        out[c] = last
        chunk_pot = chunk_pots[:, pick].copy()
    return out


def _distance_scale(X, xsq, first):
    """The dense ``_distance_scale`` (a power of two bringing float64 data's
    squared distances near 1), from evenly spaced rows via the expansion."""
    if X.dtype != np.float64:
        return 1.0
    n = X.shape[0]
    sample = np.linspace(0, n - 1, min(n, 1024)).astype(np.intp)
    centre = dense_rows(X, [first])[0]
    sq = xsq[sample] + xsq[first] - 2.0 * (X[sample] @ centre)
    spread = float(np.mean(np.maximum(sq, 0.0)))
    if spread == np.inf:
        raise ValueError(
            "X's values are too large in magnitude: their squared distances "
            "overflow float64. Rescale X (for example with "
            "sklearn.preprocessing.MaxAbsScaler).")
    if not spread > 0:
        return 1.0
    return float(np.ldexp(1.0, -int(np.round(np.log2(spread)))))
