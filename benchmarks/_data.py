"""Deterministic data, initial parameters and float64 reference metrics.

Shared by the asv suite (``bench_*.py``) and ``compare.py``. Everything here is
numpy/scipy only, so it runs the same against any estimator implementation.

Sizes of the asv suite come from a *profile* chosen by the environment
variable ``FASTEM_BENCH_PROFILE``: ``default`` (small: the quick suite runs in
a few minutes on 2 cores), ``large`` (the sizes of compare.py's workloads,
for tracking performance where it matters) or ``tiny`` (toy sizes, for the
smoke test only: timings there measure overhead, not kernels).
"""
import os

import numpy as np
import scipy.sparse as sp

# --------------------------------------------------------------------------
# profiles of the asv suite
# --------------------------------------------------------------------------

PROFILES = {
    "default": {
        "kmeans": dict(n=100_000, d=16, k=32),
        "gmm": dict(n=40_000, d=8, k=8),
        # issue 15's shapes (D, K) with fewer rows, so that asv's quick mode
        # stays at a few seconds per benchmark on 1 thread in float64
        "kmeans-k3": dict(n=50_000, d=64, k=1024),
        "kmeans-k4": dict(n=1_000_000, d=4, k=16),
        "kmeans-e1": dict(n=10_000, d=768, k=1024),
    },
    "large": {
        "kmeans": dict(n=1_000_000, d=32, k=64),
        "gmm": dict(n=200_000, d=16, k=16),
        "kmeans-k3": dict(n=1_000_000, d=64, k=1024),
        "kmeans-k4": dict(n=10_000_000, d=4, k=16),
        "kmeans-e1": dict(n=100_000, d=768, k=1024),
    },
    "tiny": {
        "kmeans": dict(n=2_000, d=4, k=4),
        "gmm": dict(n=1_000, d=3, k=3),
        "kmeans-k3": dict(n=2_000, d=16, k=32),
        "kmeans-k4": dict(n=4_000, d=4, k=16),
        "kmeans-e1": dict(n=1_000, d=96, k=32),
    },
}


def profile_name():
    name = os.environ.get("FASTEM_BENCH_PROFILE", "default").strip().lower() or "default"
    if name not in PROFILES:
        raise ValueError(
            f"FASTEM_BENCH_PROFILE={name!r}: expected one of {sorted(PROFILES)}"
        )
    return name


def sizes(kind):
    """(n, d, k) of workload ``kind`` (a key of a profile: 'kmeans', 'gmm',
    'kmeans-k3', ...) in the active profile."""
    s = PROFILES[profile_name()][kind]
    return s["n"], s["d"], s["k"]


def available_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_counts():
    """The thread counts benchmarked: 1 and all cores (once if they coincide)."""
    return sorted({1, available_cpus()})


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------

BLOCK_ROWS = 32_768
# the components' linear maps take at most this much memory: beyond it
# (large K at high D: 1024 maps of 768 x 768 would take 4.8 GB) components
# share maps, component j using map j mod M
MAX_MAPS_BYTES = 64 * 2**20


def mixture_parameters(d, k, seed=0, max_maps_bytes=None):
    """True parameters of the synthetic mixture: weights, means, linear maps.

    Component j draws ``x = means[j] + maps[j % M] @ z`` with ``z ~ N(0, I)``,
    where ``M = len(maps)`` is ``k`` unless ``k`` maps of ``d x d`` float64
    would exceed ``max_maps_bytes`` (default ``MAX_MAPS_BYTES``; then as
    many as fit, at least one):
    anisotropic, correlated, unequal weights and scales, overlapping enough
    that EM has work to do, separated enough that the optimum is meaningful.
    The random stream does not depend on ``M``'s cap where ``M == k``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    cap = MAX_MAPS_BYTES if max_maps_bytes is None else max_maps_bytes
    n_maps = max(1, min(k, cap // (8 * d * d)))
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.uniform(-4.0, 4.0, size=(k, d))
    scales = rng.uniform(0.5, 1.5, size=(k,))[:n_maps]
    # scales * I + 0.3 * G / sqrt(d), computed in place (no temporaries of
    # the maps' size)
    maps = rng.standard_normal(size=(n_maps, d, d))
    maps *= 0.3
    maps /= np.sqrt(d)
    maps[:, np.arange(d), np.arange(d)] += scales[:, None]
    return weights, means, maps


def make_mixture(n, d, k, dtype=np.float64, seed=0, block_rows=BLOCK_ROWS):
    """``n x d`` C-contiguous samples of a ``k``-component Gaussian mixture.

    Generated block by block straight into the output array: the only
    temporaries are a few ``block_rows x d`` arrays, so a 1.28 GB dataset
    costs 1.28 GB (plus a few MB). The result depends only on the arguments.
    """
    dtype = np.dtype(dtype)
    weights, means, maps = mixture_parameters(d, k, seed)
    seq = np.random.SeedSequence([seed, 2])
    rng_labels, rng_noise = (np.random.default_rng(s) for s in seq.spawn(2))
    X = np.empty((n, d), dtype=dtype)
    cum = np.cumsum(weights)
    cum[-1] = 1.0
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        labels = np.searchsorted(cum, rng_labels.random(stop - start), side="right")
        z = rng_noise.standard_normal(size=(stop - start, d))
        out = X[start:stop]
        # the rows that use each map, ascending: one stable sort per block
        # instead of a scan of the block per component (large K)
        which = labels % len(maps)
        order = np.argsort(which, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(which, minlength=len(maps)))))
        for i in np.flatnonzero(bounds[1:] > bounds[:-1]):
            rows = order[bounds[i]:bounds[i + 1]]
            out[rows] = z[rows] @ maps[i].T + means[labels[rows]]
    return X


# --------------------------------------------------------------------------
# initial parameters (identical for every library)
# --------------------------------------------------------------------------


def initial_centers(X, k, seed=1):
    """``k`` distinct rows of X (float64 copy, dense), chosen with a fixed seed."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(X.shape[0], size=k, replace=False))
    if sp.issparse(X):
        return X[rows].toarray().astype(np.float64)
    return np.asarray(X[rows], dtype=np.float64)


def make_tfidf(n, d, nnz_per_row, n_topics, dtype=np.float64, seed=0, block_rows=BLOCK_ROWS):
    """A TF-IDF-like CSR matrix: power-law column frequencies, L2-normalised rows.

    Each row has a topic (one of ``n_topics``) and draws about
    ``1.2 * nnz_per_row`` words (Poisson; repeats merge, leaving about
    ``nnz_per_row`` non-zeros) from a Zipf law over the ``d`` columns
    (exponent 1.1, truncated): half of them through a fixed random
    permutation shared by all rows (the common vocabulary), half through a
    permutation of its topic (an affine map of the rank, so nothing of size
    topics x d is stored). Repeated words add up (term frequency); values
    are ``log(1 + tf) * idf`` with ``idf = log((1 + n) / (1 + df)) + 1``
    (scikit-learn's smooth idf), rows scaled to unit norm. Deterministic for
    a seed; built block by block.
    """
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, d + 1, dtype=np.float64)
    cdf = np.cumsum(ranks ** -1.1)
    cdf /= cdf[-1]
    common = rng.permutation(d)
    mult = rng.integers(1, d, size=n_topics)
    mult[np.gcd(mult, d) != 1] = 1  # an affine map mod d is a permutation iff gcd = 1
    offset = rng.integers(0, d, size=n_topics)
    blocks = []
    for start in range(0, n, block_rows):
        nb = min(block_rows, n - start)
        counts = rng.poisson(1.2 * nnz_per_row, size=nb)
        total = int(counts.sum())
        rank = np.minimum(np.searchsorted(cdf, rng.uniform(size=total)), d - 1)
        topic = np.repeat(rng.integers(0, n_topics, size=nb), counts)
        own = rng.uniform(size=total) < 0.5
        cols = np.where(own, (rank * mult[topic] + offset[topic]) % d, common[rank])
        rows = np.repeat(np.arange(nb), counts)
        block = sp.csr_matrix((np.ones(total), (rows, cols)), shape=(nb, d))
        block.sum_duplicates()
        blocks.append(block)
    X = sp.vstack(blocks, format="csr")
    df = np.bincount(X.indices, minlength=d)
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    X.data = np.log1p(X.data) * idf[X.indices]
    norms = _row_norms(X)
    norms[norms == 0] = 1.0  # empty rows stay empty
    X.data /= np.repeat(norms, np.diff(X.indptr))
    return X.astype(dtype)


def _row_norms(X):
    """Euclidean norms of the rows of CSR X (float64; 0 for empty rows)."""
    sq = np.zeros(X.shape[0])
    lengths = np.diff(X.indptr)
    nonempty = lengths > 0
    sq[nonempty] = np.add.reduceat(X.data ** 2, X.indptr[:-1][nonempty])
    return np.sqrt(sq)


def _feature_variance(X, max_rows=200_000, seed=2):
    n = X.shape[0]
    if n > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
        X = X[rows]
    return np.asarray(X, dtype=np.float64).var(axis=0)


def initial_gmm_parameters(X, k, covariance_type, seed=1, variance_rows=200_000):
    """weights_init, means_init, precisions_init (sklearn's shapes), float64.

    Equal weights, means at ``k`` rows of X, every covariance equal to the
    diagonal of the feature variances (estimated on at most ``variance_rows``
    rows).
    """
    d = X.shape[1]
    weights = np.full(k, 1.0 / k)
    means = initial_centers(X, k, seed)
    inv_var = 1.0 / _feature_variance(X, max_rows=variance_rows)
    if covariance_type == "full":
        precisions = np.tile(np.diag(inv_var), (k, 1, 1))
    elif covariance_type == "tied":
        precisions = np.diag(inv_var)
    elif covariance_type == "diag":
        precisions = np.tile(inv_var, (k, 1))
    elif covariance_type == "spherical":
        precisions = np.full(k, inv_var.mean())
    else:
        raise ValueError(f"unknown covariance_type {covariance_type!r}")
    assert precisions.shape[-1:] == (d,) or covariance_type == "spherical"
    return weights, means, precisions


# --------------------------------------------------------------------------
# float64 reference metrics (independent of any library)
# --------------------------------------------------------------------------


def inertia(X, centers, block_rows=BLOCK_ROWS):
    """Sum over rows of the squared distance to the nearest centre, in float64.

    The nearest centre is found with the GEMM expansion in float64; the
    distance to it is then computed directly (``sum((x - c)**2)``), so the
    result carries no cancellation error.
    """
    C = np.asarray(centers, dtype=np.float64)
    c_sq = np.einsum("ij,ij->i", C, C)
    if sp.issparse(X):
        return _sparse_inertia(X.tocsr(), C, c_sq, block_rows)
    total = 0.0
    for start in range(0, X.shape[0], block_rows):
        xb = np.asarray(X[start : start + block_rows], dtype=np.float64)
        nearest = np.argmin(c_sq - 2.0 * (xb @ C.T), axis=1)
        diff = xb - C[nearest]
        total += float(np.einsum("ij,ij->", diff, diff))
    return total


def _sparse_inertia(X, C, c_sq, block_rows):
    """``inertia`` for CSR X: the nearest centre from the expansion, then
    ||x - c||^2 = sum over the row's non-zeros of (x_j - c_j)^2 plus the
    squared coordinates of c outside them, all in float64."""
    total = 0.0
    for start in range(0, X.shape[0], block_rows):
        xb = X[start:start + block_rows].astype(np.float64)
        nearest = np.argmin(c_sq - 2.0 * (xb @ C.T), axis=1)
        rows = np.repeat(np.arange(xb.shape[0]), np.diff(xb.indptr))
        cx = C[nearest[rows], xb.indices]
        total += float(np.sum((xb.data - cx) ** 2) + c_sq[nearest].sum() - np.sum(cx * cx))
    return total


def full_covariances(covariances, covariance_type, k, d):
    """Any of sklearn's covariance layouts as a (k, d, d) float64 array."""
    cov = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return cov.reshape(k, d, d)
    if covariance_type == "tied":
        return np.broadcast_to(cov.reshape(d, d), (k, d, d))
    if covariance_type == "diag":
        return np.stack([np.diag(row) for row in cov.reshape(k, d)])
    if covariance_type == "spherical":
        return cov.reshape(k, 1, 1) * np.eye(d)
    raise ValueError(f"unknown covariance_type {covariance_type!r}")


def mean_log_likelihood(X, weights, means, covariances, covariance_type,
                        block_rows=BLOCK_ROWS):
    """Mean over rows of log p(x) under a Gaussian mixture, in float64.

    Reference implementation (numpy/scipy only): Cholesky factor of each
    covariance, triangular solve, log-sum-exp over components.
    """
    from scipy.linalg import cholesky, solve_triangular
    from scipy.special import logsumexp

    means = np.asarray(means, dtype=np.float64)
    k, d = means.shape
    covs = full_covariances(covariances, covariance_type, k, d)
    log_w = np.log(np.asarray(weights, dtype=np.float64).reshape(k))
    chols = [cholesky(c, lower=True) for c in covs]
    log_norm = np.array(
        [-0.5 * d * np.log(2 * np.pi) - np.log(np.diag(L)).sum() for L in chols]
    )
    total = 0.0
    n = X.shape[0]
    for start in range(0, n, block_rows):
        xb = np.asarray(X[start : start + block_rows], dtype=np.float64)
        logp = np.empty((xb.shape[0], k))
        for j in range(k):
            y = solve_triangular(chols[j], (xb - means[j]).T, lower=True, check_finite=False)
            logp[:, j] = log_w[j] + log_norm[j] - 0.5 * np.einsum("ij,ij->j", y, y)
        total += float(logsumexp(logp, axis=1).sum())
    return total / n
