"""k-means|| seeding (fastem._init) against a NumPy reference of the algorithm."""
import numpy as np
import pytest

from fastem import KMeans
from fastem._init import N_ROUNDS, OVERSAMPLING, greedy_kmeans_plusplus, kmeans_parallel
from fastem._parallel import blas_single_threaded


def reference_candidates(X, k, sw, rng, block_sizes=None):
    """k-means|| written directly: brute-force distances, the same draws
    (one uniform for the first row, per round one seed and per block one
    uniform per row from default_rng([seed, block]))."""
    n = X.shape[0]
    w = np.ones(n) if sw is None else sw.astype(np.float64)
    block_sizes = [n] if block_sizes is None else block_sizes
    u = rng.uniform()
    if sw is None:
        first = min(int(u * n), n - 1)
    else:
        cum = np.cumsum(w)
        first = min(int(np.searchsorted(cum, u * cum[-1], side="right")), n - 1)
    cand = [X[first]]
    d2 = np.square(X.astype(np.float64) - X[first]).sum(axis=1)
    nearest = np.zeros(n, dtype=np.int64)
    phi = float(w @ d2)
    rounds = 0
    while phi > 0 and (rounds < N_ROUNDS or len(cand) < k):
        factor = OVERSAMPLING * k / phi if rounds < N_ROUNDS else np.inf
        seed = int(rng.integers(2**63 - 1))
        draws = np.concatenate([np.random.default_rng([seed, b]).uniform(size=m)
                                for b, m in enumerate(block_sizes)])
        with np.errstate(invalid="ignore"):
            taken = np.flatnonzero(draws < factor * (w * d2))
        rounds += 1
        for i in taken:
            dist = np.square(X.astype(np.float64) - X[i]).sum(axis=1)
            better = dist < d2
            d2[better], nearest[better] = dist[better], len(cand)
            cand.append(X[i])
        if taken.size:
            phi = float(w @ d2)
    weights = np.bincount(nearest, weights=w, minlength=len(cand))
    return np.array(cand), weights


def blobs(n_per, centres, scale, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c, scale, size=(n_per, len(c))) for c in centres])
    return X.astype(dtype)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_numpy_reference(weighted, dtype):
    X = blobs(60, [(0, 0), (5, 5), (0, 9), (9, 0)], 1.0, 1, dtype)
    sw = np.random.default_rng(2).uniform(0.5, 2.0, X.shape[0]).astype(dtype) if weighted else None
    k = 4
    cand, weights = reference_candidates(X, k, sw, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    ref_rng = np.random.default_rng(7)
    reference_candidates(X, k, sw, ref_rng)  # advance past the candidate draws
    expected = cand[greedy_kmeans_plusplus(np.ascontiguousarray(cand), k,
                                           weights.astype(dtype), ref_rng, None, 1)]
    with blas_single_threaded():
        seeds = kmeans_parallel(X, k, sw, rng, 1)
    assert seeds.dtype == dtype
    np.testing.assert_array_equal(seeds, expected)
    # the candidates' weights add up to the data's total weight
    assert np.isclose(weights.sum(), X.shape[0] if sw is None else sw.sum(dtype=np.float64))


def test_seeding_quality_close_to_greedy_kmeans_plusplus():
    centres = np.random.default_rng(3).uniform(-20, 20, size=(8, 5))
    X = blobs(150, centres, 1.5, 4)
    par = [KMeans(8, init="k-means||", random_state=s).fit(X).inertia_ for s in range(5)]
    kpp = [KMeans(8, init="k-means++", random_state=s).fit(X).inertia_ for s in range(5)]
    assert np.mean(par) <= 1.01 * np.mean(kpp)


def test_first_centre_is_drawn_not_row_zero():
    X = blobs(50, [(0, 0), (10, 10)], 1.0, 5)
    firsts = set()
    for seed in range(6):
        cand, _ = reference_candidates(X, 2, None, np.random.default_rng(seed))
        firsts.add(tuple(cand[0]))
    assert len(firsts) > 1


@pytest.mark.parametrize("n, k", [(1, 1), (5, 5), (7, 1)])
def test_edge_sizes(n, k):
    X = np.random.default_rng(0).normal(size=(n, 3))
    km = KMeans(k, init="k-means||", random_state=0).fit(X)
    assert km.cluster_centers_.shape == (k, 3)
    if k == n:  # every row is its own centre
        np.testing.assert_allclose(np.sort(km.cluster_centers_[:, 0]), np.sort(X[:, 0]))
        assert km.inertia_ == pytest.approx(0.0, abs=1e-12)


def test_duplicate_rows_fewer_distinct_than_k_warns():
    X = np.repeat(np.arange(3.0)[:, None], 4, axis=0)
    with pytest.warns(Warning, match="distinct clusters"):
        km = KMeans(4, init="k-means||", random_state=0).fit(X)
    assert set(np.unique(km.cluster_centers_[:, 0])) <= {0.0, 1.0, 2.0}


def test_zero_weight_rows_never_seed():
    X = blobs(40, [(0, 0), (8, 8), (16, 0)], 1.0, 6)
    sw = np.ones(X.shape[0])
    sw[40:80] = 0.0  # the middle blob has no weight
    with blas_single_threaded():
        seeds = kmeans_parallel(X, 2, sw, np.random.default_rng(0), 1)
    assert not np.any(np.linalg.norm(seeds - [8, 8], axis=1) < 4)
