"""Seeding of centres: greedy k-means++ and random rows.

Shared by KMeans and GaussianMixture. The passes over the data run in the
compiled core (``fastem._kernels._kmeans``); this module only draws random
numbers and picks rows.
"""
import math

import numpy as np

from fastem._kernels import load_kernels
from fastem._parallel import chunk_rows
from fastem._sparse import dense_rows, issparse
from fastem._sparse import greedy_kmeans_plusplus as sparse_kmeans_plusplus
from fastem._validation import (
    check_array,
    check_int,
    check_random_state,
    check_sample_weight,
    effective_n_threads,
)
_k = load_kernels("_kmeans")


# up to this many centres, each row's nearest-centre index is kept in 16 bits
_UINT16_CENTRES = 65535


def kmeans_plusplus(X, n_clusters, *, sample_weight=None, x_squared_norms=None,
                    random_state=None, n_local_trials=None, n_threads=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007).

    The first centre is a random row (drawn with probability proportional to
    its weight). Each further centre is the best of ``n_local_trials``
    candidates drawn with probability proportional to ``w * D(x)^2`` (the
    weighted squared distance to the closest centre so far), "best" meaning
    the lowest resulting potential ``sum_i w_i D(x_i)^2``. Each step is one
    parallel pass over X and never allocates anything of size n x k.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Data; float32 is kept, other dtypes become float64. Sparse data are
        used as CSR without densifying them (same seeds as on
        ``X.toarray()`` for the same ``random_state``).
    n_clusters : int
        Number of centres to choose.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples (unit weights if None).
    x_squared_norms : None
        Accepted for scikit-learn compatibility and ignored.
    random_state : int, Generator, RandomState or None, default=None
        Seed of the random draws.
    n_local_trials : int, default=None
        Candidates per step; ``2 + int(log(n_clusters))`` if None.
    n_threads : int, default=None
        OpenMP threads (all allowed cores if None).

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
        The chosen rows of X, in X's float dtype.
    indices : ndarray of shape (n_clusters,)
        Their row indices in X.
    """
    X = check_array(X, accept_sparse=True)
    n_clusters = check_int(n_clusters, "n_clusters", min_value=1, max_value=X.shape[0])
    if n_local_trials is not None:
        n_local_trials = check_int(n_local_trials, "n_local_trials", min_value=1)
    sw = check_sample_weight(sample_weight, X.shape[0], X.dtype)
    rng = check_random_state(random_state)
    threads = effective_n_threads(n_threads)
    indices = greedy_kmeans_plusplus(X, n_clusters, sw, rng, n_local_trials,
                                     threads)
    if issparse(X):
        return dense_rows(X, indices), indices
    return X[indices].copy(), indices


def greedy_kmeans_plusplus(X, n_clusters, sample_weight, rng, n_local_trials,
                           n_threads):
    """Row indices of greedy k-means++ seeds; inputs already validated.

    Distances are computed directly (never by the expansion), so no frame
    shift is needed; rows whose closest centre provably beats a candidate
    are skipped without reading them (see ``fastem._kernels._kmeans``).
    After the first centre, each step is one parallel pass over X: the pass
    that measures the candidates also takes the previous step's centre into
    account, and returns the chunk potentials each candidate would leave.
    """
    if issparse(X):  # same algorithm and draws on CSR rows
        return sparse_kmeans_plusplus(X, n_clusters, sample_weight, rng, n_local_trials,
                                      n_threads)
    n_samples, n_features = X.shape
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    rows = chunk_rows(n_features, X.dtype.itemsize, min_rows=256)
    n_chunks = -(-n_samples // rows)
    sw = sample_weight if sample_weight is not None else np.empty(0, X.dtype)

    # float32 whatever X's dtype: enough for sampling, half the memory
    closest = np.empty(n_samples, dtype=np.float32)
    nearest = np.empty(n_samples, dtype=np.uint16 if n_clusters <= _UINT16_CENTRES
                       else np.int32)
    improves = np.zeros(n_samples, dtype=np.uint16)
    chunk_pot = np.empty(n_chunks)
    chunk_pots = np.empty((n_chunks, n_local_trials))
    potentials = np.empty(n_local_trials)
    indices = np.empty(n_clusters, dtype=np.intp)
    chosen = np.empty((n_clusters, n_features))  # float64 copies of the centres

    if sample_weight is None:
        first = int(rng.integers(n_samples))
    else:
        first = int(rng.choice(n_samples, p=sample_weight / sample_weight.sum(dtype=np.float64)))
    indices[0] = first
    chosen[0] = X[first]
    scale = _distance_scale(X, X[first])
    _k.kpp_init_closest(X, sw, X[first], closest, nearest, chunk_pot, rows, n_threads,
                        scale)

    # the centre chosen last, not yet applied to closest/nearest (index 0:
    # none); _draw_rows settles the chunks it reads, the next pass the rest
    last, last_index, last_pick = X[first], 0, 0

    def settle(start, stop):
        if last_index > 0:
            _k.kpp_settle_rows(X, last, last_index, last_pick, improves, closest,
                               nearest, start, stop, scale)

    for c in range(1, n_clusters):
        chunk_cum = np.cumsum(chunk_pot)
        targets = rng.uniform(size=n_local_trials) * chunk_cum[-1]
        candidates = _draw_rows(targets, chunk_cum, closest, sample_weight, rows,
                                settle)
        cand = X[candidates]
        _k.kpp_candidate_potentials(X, sw, cand, scale * _quarter_sqdist(chosen[:c], cand),
                                    closest, nearest, improves,
                                    last, last_index, last_pick,
                                    chunk_pots, potentials, rows, n_threads, scale)
        pick = int(np.argmin(potentials))
        best = candidates[pick]
        indices[c] = best
        chosen[c] = X[best]
        chunk_pot[:] = chunk_pots[:, pick]
        last, last_index, last_pick = X[best], c, pick
    return indices


# rows sampled (evenly spaced, no random draw) to estimate the data's spread
_SPREAD_SAMPLE = 1024


def _distance_scale(X, first):
    """Power of two that brings float64 data's squared distances near 1.

    ``closest`` holds squared distances in float32, whose range (1e-38 to
    3e38) float64 data can leave (X * 1e-25, X * 1e20). Multiplying every
    squared distance by a power of two is exact, so it changes no draw and
    no comparison: seeds are those of the unscaled algorithm, and the same
    for X and X times any constant. The spread is the mean squared
    distance of evenly spaced rows to the first centre; float32 data keep
    scale 1 (their distances are computed in float32 anyway).
    """
    if X.dtype != np.float64:
        return 1.0
    rows = X[np.linspace(0, X.shape[0] - 1, min(X.shape[0], _SPREAD_SAMPLE)).astype(np.intp)]
    spread = float(np.mean(np.square(rows - first).sum(axis=1)))
    if spread == np.inf:
        raise ValueError(
            "X's values are too large in magnitude: their squared distances "
            "overflow float64. Rescale X (for example with "
            "sklearn.preprocessing.StandardScaler)."
        )
    if not spread > 0:  # all sampled rows equal the first centre
        return 1.0
    return float(np.ldexp(1.0, -int(np.round(np.log2(spread)))))


def _quarter_sqdist(centres, points):
    """||c_a - q||^2 / 4 for all centres a and points q (the pruning bounds)."""
    diff = centres[:, None, :] - points[None, :, :].astype(np.float64)
    return np.ascontiguousarray(np.einsum("ijk,ijk->ij", diff, diff) / 4.0)


def _draw_rows(targets, chunk_cum, closest, sample_weight, rows, settle):
    """Rows i with cumulative potential sum_{j<=i} w_j D_j^2 first >= target.

    Two-level search: the chunk from the per-chunk cumulative potentials, then
    the row from a cumulative sum over that chunk only, once ``settle`` has
    brought that chunk's closest distances up to date.
    """
    n_samples = closest.shape[0]
    out = np.empty(targets.shape[0], dtype=np.intp)
    chunk_ids = np.minimum(np.searchsorted(chunk_cum, targets), chunk_cum.shape[0] - 1)
    for t, (target, c) in enumerate(zip(targets, chunk_ids)):
        start = c * rows
        stop = min(start + rows, n_samples)
        settle(start, stop)
        pot = closest[start:stop].astype(np.float64)
        if sample_weight is not None:
            pot *= sample_weight[start:stop]
        before = chunk_cum[c - 1] if c > 0 else 0.0
        within = np.searchsorted(np.cumsum(pot), target - before)
        out[t] = start + min(int(within), stop - start - 1)
    return out


def random_rows(n_samples, n_rows, sample_weight, rng):
    """Distinct random row indices, drawn with probability proportional to weight."""
    if sample_weight is None:
        return rng.choice(n_samples, size=n_rows, replace=False)
    p = sample_weight / sample_weight.sum(dtype=np.float64)
    if np.count_nonzero(p) < n_rows:
        raise ValueError(
            f"Only {np.count_nonzero(p)} samples have a positive sample_weight, "
            f"fewer than the {n_rows} requested clusters/components."
        )
    return rng.choice(n_samples, size=n_rows, replace=False, p=p)
