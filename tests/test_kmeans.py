"""KMeans against a pure-numpy reference, scikit-learn and closed-form cases."""
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist

import fastem
from fastem import ConvergenceWarning, KMeans, NotFittedError, kmeans_plusplus
from fastem._kmeans import _lloyd_chunk_rows

import sklearn.cluster as sklearn_cluster


def blobs(n, d, k, *, seed=0, scale=5.0, offset=0.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * scale
    X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d)) + offset
    return X.astype(dtype)


def numpy_lloyd_step(X, centres, w=None):
    """One Lloyd step by brute force: labels, inertia, next centres."""
    w = np.ones(len(X)) if w is None else np.asarray(w, float)
    X = X.astype(np.float64)
    d2 = ((X[:, None, :] - centres[None, :, :].astype(np.float64)) ** 2).sum(-1)
    labels = d2.argmin(1)
    inertia = float((w * d2[np.arange(len(X)), labels]).sum())
    new = np.array([
        (w[labels == j, None] * X[labels == j]).sum(0) / w[labels == j].sum()
        for j in range(len(centres))
    ])
    return labels, inertia, new


# --------------------------------------------------------------- references

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_iteration_equals_numpy_reference(dtype):
    X = blobs(1237, 4, 5, seed=1, dtype=dtype)
    init = X[:5].copy()
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(X))
    labels, _, expected = numpy_lloyd_step(X, init, w)
    km = KMeans(5, init=init, n_init=1, max_iter=1).fit(X, sample_weight=w)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    assert_allclose(km.cluster_centers_, expected, rtol=rtol, atol=rtol)
    # after the final assignment pass, labels and inertia match the new centres
    labels2, inertia2, _ = numpy_lloyd_step(X, km.cluster_centers_, w)
    assert_array_equal(km.labels_, labels2)
    assert_allclose(km.inertia_, inertia2, rtol=1e-10 if dtype == np.float64 else 1e-5)


DATASETS = [
    # (n, d, k, seed, offset): sizes around and off the chunk size
    (300, 2, 3, 0, 0.0),
    (5003, 5, 7, 1, 0.0),
    (4096 * 2, 3, 4, 2, 0.0),
    (4097, 8, 12, 3, 100.0),
    (2000, 1, 3, 4, 0.0),
]


@pytest.mark.parametrize("n,d,k,seed,offset", DATASETS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("algorithm", ["lloyd", "auto"])
def test_fit_matches_sklearn_lloyd(n, d, k, seed, offset, dtype, algorithm):
    X = blobs(n, d, k, seed=seed, scale=3.0, offset=offset, dtype=dtype)
    init = X[np.random.default_rng(seed).choice(n, k, replace=False)].copy()
    ours = KMeans(k, init=init, n_init=1, max_iter=100, tol=1e-6,
                  algorithm=algorithm).fit(X)
    ref = sklearn_cluster.KMeans(k, init=init, n_init=1, max_iter=100, tol=1e-6,
                                 algorithm="lloyd").fit(X)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    scale = np.abs(ref.cluster_centers_).max()
    assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=rtol,
                    atol=rtol * scale)
    assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-9 if dtype == np.float64 else 1e-4)
    assert ours.cluster_centers_.dtype == dtype


def test_chunk_boundaries_are_exercised():
    # the datasets above must include N not a multiple of the chunk size
    # and one that is a multiple, for the shapes they use
    rows = [(n, _lloyd_chunk_rows(k, d, np.float64, n)) for n, d, k, *_ in DATASETS]
    assert any(n % r for n, r in rows) and any(n % r == 0 and n > r for n, r in rows)


# (d, k, scale, seed, algorithm): heavily overlapping clusters at low D
# ('elkan': 'auto' runs plain passes there), many rows near decision
# boundaries, where bounds are tested hardest; and 150 centres at D = 24,
# where the bounded passes keep a bound per group of centres and search rows
# by groups, and the last pass labels from the bounds
BOUNDED_CASES = [(4, 12, 0.7, 40, "elkan"), (24, 150, 2.0, 42, "auto")]


def assert_same_iterates(a, b, X):
    """Fits a (plain Lloyd) and b (bounded) of X took the same iterates;
    b's labels are its predict's."""
    assert_array_equal(a.labels_, b.labels_)
    assert a.n_iter_ == b.n_iter_
    rtol = 1e-12 if X.dtype == np.float64 else 1e-5
    assert_allclose(b.cluster_centers_, a.cluster_centers_, rtol=rtol, atol=rtol)
    assert_allclose(b.inertia_, a.inertia_, rtol=rtol)
    assert_array_equal(b.predict(X), b.labels_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d,k,scale,seed,algorithm", BOUNDED_CASES)
def test_bounded_iterations_equal_plain_lloyd(dtype, d, k, scale, seed, algorithm):
    """Every iterate of the bounded passes is plain Lloyd's (labels,
    centres, inertia), and labels_ / inertia_ are predict's and score's."""
    from fastem._kernels import load_kernels
    bounded = load_kernels("_bounded")
    X = blobs(6007, d, k, seed=seed, scale=scale, dtype=dtype)
    if k > 64:  # the case that must take the groups wherever the tiles run
        assert bounded.bound_groups(k, d, X.itemsize) > 1 or (
            not bounded.bounded_labels_available(d, X.itemsize))
    init = X[:k].copy()
    for max_iter in (1, 2, 5, 30):
        a = KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=0,
                   algorithm="lloyd").fit(X)
        b = KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=0,
                   algorithm=algorithm).fit(X)
        assert_same_iterates(a, b, X)
        assert_allclose(-b.score(X), b.inertia_, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", [24, 260])
def test_relocation_keeps_group_bounds_with_lloyd_iterates(dtype, d, monkeypatch):
    """Empty clusters relocated mid-fit: the passes after it keep Yinyang's
    group bounds (groups of 64 / 32 centres at d = 24, of one tile at d =
    260), and every iterate is still plain Lloyd's."""
    import fastem._kmeans as km
    from fastem._kernels import load_kernels
    k = 80
    X = blobs(3001, d, k, seed=7, scale=2.0, dtype=dtype)
    init = X[:k].copy()
    init[::9] = 1e3  # nine far centres: empty after the first pass
    groups = load_kernels("_bounded").bound_groups(k, d, X.itemsize)
    assert km.relocation_keeps_bounds(k, d, dtype) == (groups > 1)
    fresh_after_relocation = []
    relocate, bounded_pass = km._relocate_empty_clusters, km.bounded_block_pass
    relocated = []

    def spy_relocate(*args):
        relocated.append(True)
        return relocate(*args)

    def spy_pass(X, sw, centres, shift, bounds, state, *args):
        if relocated and len(fresh_after_relocation) < len(relocated):
            fresh_after_relocation.append(state.fresh)
        return bounded_pass(X, sw, centres, shift, bounds, state, *args)

    monkeypatch.setattr(km, "_relocate_empty_clusters", spy_relocate)
    monkeypatch.setattr(km, "bounded_block_pass", spy_pass)
    for max_iter in (2, 3, 10):
        relocated.clear()
        fresh_after_relocation.clear()
        a = KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=0,
                   algorithm="lloyd").fit(X)
        relocated.clear()
        b = KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=0,
                   algorithm="elkan").fit(X)
        assert relocated and fresh_after_relocation
        assert fresh_after_relocation[0] == (groups == 1)
        assert_same_iterates(a, b, X)


def test_bounded_passes_skip_most_rows(capsys):
    X = blobs(20000, 5, 8, seed=41, scale=20.0)
    # 'elkan': bounded passes at any D ('auto' runs plain ones at D = 5)
    KMeans(8, init=X[:8], n_init=1, tol=0, verbose=1, algorithm="elkan").fit(X)
    shares = [float(line.split("all distances for ")[1].split("%")[0])
              for line in capsys.readouterr().err.splitlines()
              if "all distances for" in line]
    assert shares and min(shares) < 5.0


def test_empty_cluster_is_relocated_like_sklearn():
    X = blobs(500, 2, 3, seed=5)
    init = np.vstack([X[:2], [[1e3, 1e3]]])  # third centre attracts nothing
    ours = KMeans(3, init=init, n_init=1, max_iter=50).fit(X)
    ref = sklearn_cluster.KMeans(3, init=init, n_init=1, max_iter=50).fit(X)
    assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-10)
    assert_array_equal(ours.labels_, ref.labels_)
    assert np.bincount(ours.labels_, minlength=3).min() > 0


@pytest.mark.parametrize("size", [1, 5, 4096, 4097, 3 * 4096 + 5, 100_003])
@pytest.mark.parametrize("kind", ["distinct", "ties", "inf", "equal"])
def test_farthest_rows_are_the_largest_ties_by_index(size, kind):
    """The rows that seed empty clusters: the n largest distances by
    decreasing distance, ties by increasing index, against a full sort."""
    from fastem._kmeans import farthest_rows
    rng = np.random.default_rng(size)
    dist = {"distinct": rng.random(size),
            "ties": rng.integers(0, 6, size).astype(np.float64),
            "inf": np.where(rng.random(size) < 0.01, np.inf, rng.random(size)),
            "equal": np.full(size, 2.5)}[kind]
    before = dist.copy()
    reference = np.lexsort((np.arange(size), -dist))
    for n in (0, 1, 2, 7, 30, size, size + 3):
        assert_array_equal(farthest_rows(dist, n), reference[:n])
    assert_array_equal(dist, before)


def test_tolerance_is_relative_to_mean_variance_as_in_sklearn():
    X = blobs(3000, 3, 6, seed=6, scale=1.0)
    init = X[:6].copy()
    for tol in (1e-1, 1e-2, 1e-4):
        ours = KMeans(6, init=init, n_init=1, tol=tol).fit(X)
        ref = sklearn_cluster.KMeans(6, init=init, n_init=1, tol=tol).fit(X)
        assert ours.n_iter_ == ref.n_iter_
        assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-10)


# --------------------------------------------------------------- k-means++

def numpy_greedy_kmeans_plusplus(X, k, w, rng, n_local_trials=None):
    """Greedy k-means++ with exactly fastem's sequence of random draws.

    Like fastem, the closest squared distances are kept in float32.
    """
    n = len(X)
    X = X.astype(np.float64)
    L = 2 + int(np.log(k)) if n_local_trials is None else n_local_trials
    first = int(rng.integers(n)) if w is None else int(rng.choice(n, p=w / w.sum()))
    w = np.ones(n) if w is None else w
    idx = [first]
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    closest = f32(((X - X[first]) ** 2).sum(1))
    for _ in range(1, k):
        targets = rng.uniform(size=L) * (w * closest).sum()
        cand = np.minimum(np.searchsorted(np.cumsum(w * closest), targets), n - 1)
        d2 = ((X[None, :, :] - X[cand][:, None, :]) ** 2).sum(-1)
        pots = (w * np.minimum(closest, d2)).sum(1)
        best = cand[np.argmin(pots)]
        idx.append(best)
        closest = np.minimum(closest, f32(((X - X[best]) ** 2).sum(1)))
    return np.array(idx)


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plusplus_equals_numpy_reference(weighted):
    X = blobs(3001, 3, 9, seed=7)
    w = np.random.default_rng(8).uniform(0.1, 3.0, len(X)) if weighted else None
    centres, idx = fastem.kmeans_plusplus(X, 9, sample_weight=w, random_state=11)
    expected = numpy_greedy_kmeans_plusplus(X, 9, w, np.random.default_rng(11))
    assert_array_equal(idx, expected)
    assert_array_equal(centres, X[expected])


@pytest.mark.parametrize("n, d, k, trials", [
    (1, 3, 1, None),      # one row, one centre
    (7, 2, 7, None),      # k == n: the last steps have zero potential
    (3001, 37, 12, None),  # several chunks, the last one partial; ragged SIMD tail
    (2500, 5, 10, 1),     # d below one SIMD block; a single candidate
    (2500, 8, 10, 9),     # more candidates than one SIMD group
    (2500, 11, 6, 17),    # candidates beyond the 16 bits of the improvement mask
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plusplus_edge_shapes_equal_numpy_reference(n, d, k, trials, dtype,
                                                           weighted):
    X = blobs(n, d, 8, seed=n + d, dtype=dtype)
    w = np.random.default_rng(3).uniform(0.1, 3.0, n) if weighted else None
    _, idx = fastem.kmeans_plusplus(X, k, sample_weight=w, random_state=2,
                                    n_local_trials=trials)
    expected = numpy_greedy_kmeans_plusplus(X, k, w, np.random.default_rng(2), trials)
    assert_array_equal(idx, expected)
    for t in (1, 2):
        again = fastem.kmeans_plusplus(X, k, sample_weight=w, random_state=2,
                                       n_local_trials=trials, n_threads=t)[1]
        assert_array_equal(again, idx)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_kpp_candidate_pass_chunk_potentials(dtype, weighted):
    # one candidate pass after a first centre, then another that also applies
    # the deferred update of the centre picked from the first
    from fastem._init import _kpp, _quarter_sqdist

    X = blobs(1800, 13, 5, seed=21, dtype=dtype)
    n, rows, L = len(X), 256, 5
    n_chunks = -(-n // rows)
    w = np.random.default_rng(22).uniform(0.1, 3.0, n).astype(dtype) if weighted else None
    sw = w if weighted else np.empty(0, dtype)
    wf = np.ones(n) if w is None else w.astype(np.float64)
    closest = np.empty(n, np.float32)
    nearest = np.empty(n, np.uint16)
    improves = np.zeros(n, np.uint16)
    chunk_pot = np.empty(n_chunks)
    chunk_pots = np.empty((n_chunks, L))
    potentials = np.empty(L)
    X64 = X.astype(np.float64)

    def sqdist(i):
        return ((X64 - X64[i]) ** 2).sum(1)

    _kpp.kpp_init_closest(X, sw, X[0], closest, nearest, chunk_pot, rows, 2, 1.0)
    assert_allclose(closest, sqdist(0).astype(np.float32), rtol=1e-6)
    assert_allclose(chunk_pot, np.add.reduceat(wf * closest, np.arange(0, n, rows)),
                    rtol=1e-12)
    centres, last, last_index, pick = [0], X[0], 0, 0
    for cand_rows in ([900, 1700, 3, 1201, 450], [10, 1799, 640, 1100, 77]):
        cand = X[cand_rows]
        expected_closest = closest.copy()
        better = np.zeros(n, bool)
        if last_index > 0:  # the pass applies the pending centre first
            d = sqdist(centres[-1]).astype(np.float32)
            better = (improves & (1 << pick)) != 0
            expected_closest[better] = np.minimum(expected_closest, d)[better]
        before = closest.copy()
        _kpp.kpp_candidate_potentials(X, sw, cand, _quarter_sqdist(X64[centres], cand),
                                      closest, nearest, improves, (last, last_index, pick),
                                      (chunk_pots, potentials), rows, 2, 1.0)
        # float32 data measure distances in float32: equal to rounding
        assert_allclose(closest, expected_closest, rtol=1e-6)
        assert_array_equal(closest[~better], before[~better])
        assert np.all(nearest[closest < before] == last_index)
        d2 = np.stack([sqdist(i) for i in cand_rows], 1)
        new = np.minimum(closest[:, None].astype(np.float64),
                         d2.astype(np.float32).astype(np.float64))
        assert_allclose(chunk_pots, np.add.reduceat(wf[:, None] * new,
                                                    np.arange(0, n, rows)), rtol=1e-5)
        assert_allclose(potentials, (wf[:, None] * np.minimum(closest[:, None], d2)).sum(0),
                        rtol=1e-5)
        assert_allclose(potentials, chunk_pots.sum(0), rtol=1e-6)
        beats = d2 < closest[:, None]
        assert (beats.any(1) & (improves == 0)).sum() <= 2  # ties in rounding only
        pick = int(np.argmin(potentials))
        centres.append(cand_rows[pick])
        last, last_index = X[cand_rows[pick]], len(centres) - 1


def test_kmeans_plusplus_32_bit_centre_indices(monkeypatch):
    # more than 65535 centres switch the per-row index to int32: force it
    import fastem._init

    X = blobs(2000, 3, 6, seed=42)
    expected = fastem.kmeans_plusplus(X, 7, random_state=5)[1]
    monkeypatch.setattr(fastem._init, "_UINT16_CENTRES", 0)
    assert_array_equal(fastem.kmeans_plusplus(X, 7, random_state=5)[1], expected)


def test_kmeans_plusplus_beats_random_seeding():
    X = blobs(4000, 2, 10, seed=9, scale=10.0)

    def potential(c):
        return cdist(X, c, "sqeuclidean").min(1).sum()

    rng = np.random.default_rng(0)
    kpp = np.mean([potential(fastem.kmeans_plusplus(X, 10, random_state=s)[0])
                   for s in range(5)])
    rnd = np.mean([potential(X[rng.choice(len(X), 10, replace=False)])
                   for _ in range(5)])
    assert kpp < 0.5 * rnd


def test_kmeans_plusplus_never_picks_zero_weight_rows():
    X = blobs(600, 2, 4, seed=10)
    w = np.ones(len(X))
    w[::2] = 0.0
    _, idx = fastem.kmeans_plusplus(X, 8, sample_weight=w, random_state=0)
    assert np.all(idx % 2 == 1)


# ------------------------------------------------------- weights, threads

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_integer_weights_equal_repeated_rows(dtype):
    X = blobs(700, 3, 4, seed=12, dtype=dtype)
    reps = np.random.default_rng(13).integers(0, 4, len(X))
    init = X[reps > 0][:4].copy()
    a = KMeans(4, init=init, n_init=1, tol=0).fit(X, sample_weight=reps)
    b = KMeans(4, init=init, n_init=1, tol=0).fit(np.repeat(X, reps, axis=0))
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=rtol, atol=rtol)
    assert_allclose(a.inertia_, b.inertia_, rtol=rtol)
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_and_two_threads_are_bit_identical(dtype):
    X = blobs(20011, 6, 9, seed=14, dtype=dtype)
    w = np.random.default_rng(15).uniform(0, 2, len(X))
    fits = [KMeans(9, n_init=2, random_state=3, n_threads=t).fit(X, sample_weight=w)
            for t in (1, 2)]
    assert_array_equal(fits[0].cluster_centers_, fits[1].cluster_centers_)
    assert_array_equal(fits[0].labels_, fits[1].labels_)
    assert fits[0].inertia_ == fits[1].inertia_
    seeds = [fastem.kmeans_plusplus(X, 9, random_state=4, n_threads=t)[1] for t in (1, 2)]
    assert_array_equal(seeds[0], seeds[1])


def test_float32_close_to_float64():
    X = blobs(5000, 4, 6, seed=16, offset=1000.0)
    init = X[:6].copy()
    a = KMeans(6, init=init, n_init=1).fit(X)
    b = KMeans(6, init=init.astype(np.float32), n_init=1).fit(X.astype(np.float32))
    assert b.cluster_centers_.dtype == np.float32
    assert_allclose(b.cluster_centers_, a.cluster_centers_, rtol=1e-5)
    assert_array_equal(a.labels_, b.labels_)
    assert_allclose(b.inertia_, a.inertia_, rtol=1e-4)


def test_float32_far_from_origin_keeps_precision():
    # unit-scale clusters 1e4 away from the origin: without the frame shift
    # float32 cross terms (~1e8) would swamp the distances (~1)
    rng = np.random.default_rng(17)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    X = (centres[rng.integers(0, 3, 3000)] + 0.3 * rng.normal(size=(3000, 2)) + 1e4)
    init = centres + 1e4
    a = KMeans(3, init=init, n_init=1).fit(X)
    b = KMeans(3, init=init.astype(np.float32), n_init=1).fit(X.astype(np.float32))
    assert_array_equal(a.labels_, b.labels_)
    assert_allclose(b.inertia_, a.inertia_, rtol=1e-3)


# ----------------------------------------------------- estimator contract

def test_fit_predict_transform_score_consistency():
    X = blobs(1500, 3, 5, seed=18)
    km = KMeans(5, random_state=0)
    labels = km.fit_predict(X)
    assert_array_equal(labels, KMeans(5, random_state=0).fit(X).predict(X))
    assert_array_equal(km.predict(X), km.labels_)
    assert labels.dtype == np.int32
    assert_allclose(km.transform(X), cdist(X, km.cluster_centers_), rtol=1e-9, atol=1e-9)
    assert_allclose(km.fit_transform(X), km.transform(X), rtol=1e-12)
    assert_allclose(km.score(X), -km.inertia_, rtol=1e-10)
    w = np.arange(len(X)) % 3
    expected = (w * cdist(X, km.cluster_centers_, "sqeuclidean").min(1)).sum()
    assert_allclose(km.score(X, sample_weight=w), -expected, rtol=1e-10)


def test_random_state_reproducible_and_n_init_keeps_best():
    X = blobs(3000, 2, 8, seed=19, scale=2.0)
    a = KMeans(8, init="random", n_init=1, random_state=1).fit(X)
    b = KMeans(8, init="random", n_init=1, random_state=1).fit(X)
    assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    singles = [KMeans(8, init="random", n_init=1, random_state=s).fit(X).inertia_
               for s in range(6)]
    multi = KMeans(8, init="random", n_init=6, random_state=0).fit(X)
    assert multi.inertia_ <= np.median(singles) + 1e-9


def test_callable_init_and_random_init():
    X = blobs(800, 2, 3, seed=20)

    def first_rows(data, n_clusters, random_state):
        assert isinstance(random_state, np.random.RandomState)
        return data[:n_clusters]

    km = KMeans(3, init=first_rows, n_init=1, max_iter=1).fit(X)
    _, _, expected = numpy_lloyd_step(X, X[:3])
    assert_allclose(km.cluster_centers_, expected, rtol=1e-12)
    assert KMeans(3, init="random", random_state=0).fit(X).n_iter_ >= 1


def test_params_pickle_and_sklearn_clone():
    from sklearn.base import clone

    km = KMeans(4, tol=1e-3, random_state=2, n_threads=1)
    assert km.get_params()["tol"] == 1e-3
    km.set_params(max_iter=50)
    assert km.max_iter == 50
    assert "max_iter=50" in repr(km)
    with pytest.raises(ValueError, match="Invalid parameter"):
        km.set_params(bogus=1)
    assert clone(km).get_params() == km.get_params()
    X = blobs(400, 2, 4, seed=21)
    km.fit(X)
    again = pickle.loads(pickle.dumps(km))
    assert_array_equal(again.predict(X), km.predict(X))
    assert_array_equal(again.cluster_centers_, km.cluster_centers_)


def test_verbose_prints_iterations_to_stderr(capsys):
    X = blobs(300, 2, 3, seed=22)
    KMeans(3, n_init=1, verbose=1, random_state=0).fit(X)
    err = capsys.readouterr().err
    assert "Iteration" in err and "inertia" in err and "Converged" in err


def test_max_iter_reached_reports_iterations():
    X = blobs(2000, 2, 10, seed=23, scale=0.5)
    km = KMeans(10, init="random", n_init=1, max_iter=2, tol=0, random_state=0).fit(X)
    assert km.n_iter_ == 2


# ------------------------------------------------------------- edge sizes

@pytest.mark.parametrize("n,d,k", [(1, 1, 1), (1, 3, 1), (50, 1, 1), (40, 1, 4),
                                   (17, 3, 17), (6, 2, 6)])
def test_edge_sizes(n, d, k):
    rng = np.random.default_rng(n * 100 + d * 10 + k)
    X = rng.normal(size=(n, d))
    km = KMeans(k, random_state=0).fit(X)
    assert km.cluster_centers_.shape == (k, d)
    if k == 1:
        assert_allclose(km.cluster_centers_[0], X.mean(0), rtol=1e-12, atol=1e-12)
        assert_allclose(km.inertia_, ((X - X.mean(0)) ** 2).sum(), rtol=1e-10, atol=1e-12)
    if k == n:
        assert_allclose(km.inertia_, 0.0, atol=1e-12)
        assert sorted(km.labels_) == list(range(n))
    assert_array_equal(km.predict(X), km.labels_)


def test_k_equals_n_with_duplicates_warns_not_crashes():
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    with pytest.warns(ConvergenceWarning, match="distinct clusters"):
        km = KMeans(4, random_state=0).fit(X)
    assert np.isfinite(km.cluster_centers_).all()
    assert_allclose(km.inertia_, 0.0, atol=1e-12)


# -------------------------------------------------------------- bad input

def test_integer_and_fortran_input_work():
    X = blobs(200, 3, 3, seed=24)
    init = X[:3].copy()
    ref = KMeans(3, init=init, n_init=1).fit(X)
    f = KMeans(3, init=init, n_init=1).fit(np.asfortranarray(X))
    assert_array_equal(f.labels_, ref.labels_)
    Xi = np.round(X * 10).astype(np.int64)
    ki = KMeans(3, init=Xi[:3], n_init=1).fit(Xi)
    assert ki.cluster_centers_.dtype == np.float64
    kf = KMeans(3, init=Xi[:3].astype(float), n_init=1).fit(Xi.astype(float))
    assert_allclose(ki.cluster_centers_, kf.cluster_centers_)


def test_caller_arrays_are_not_modified():
    X = blobs(300, 2, 3, seed=25, dtype=np.float32)
    init = X[:3].copy()
    w = np.ones(len(X))
    copies = [a.copy() for a in (X, init, w)]
    km = KMeans(3, init=init, n_init=1).fit(X, sample_weight=w)
    km.predict(X)
    km.transform(X)
    for a, b in zip((X, init, w), copies):
        assert_array_equal(a, b)


@pytest.mark.parametrize("bad,match", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "infinity"),
    (np.arange(5.0), "reshape"),
    (np.empty((0, 3)), "0 sample"),
    (np.empty((3, 0)), "0 feature\\(s\\)"),
    (np.zeros((2, 2, 2)), "2-D"),
])
def test_bad_X_raises_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        KMeans(1).fit(bad)


def test_non_numeric_X_raises_type_error():
    with pytest.raises(TypeError, match="numbers"):
        KMeans(1).fit(np.array([["a", "b"], ["c", "d"]]))
    # scikit-learn's convention for complex data: ValueError
    with pytest.raises(ValueError, match="Complex data not supported"):
        KMeans(1).fit(np.ones((3, 2), dtype=complex))


@pytest.mark.parametrize("params,match", [
    ({"n_clusters": 0}, "n_clusters"),
    ({"n_clusters": 11}, "n_samples=10 should be >= n_clusters=11"),
    ({"n_clusters": 2.5}, "n_clusters must be an int"),
    ({"init": "kmeans+++"}, "init must be one of"),
    ({"init": np.zeros((3, 2))}, "expected shape \\(2, 2\\)"),
    ({"init": np.zeros((2, 3))}, "expected shape"),
    ({"n_init": 0}, "n_init"),
    ({"max_iter": 0}, "max_iter"),
    ({"tol": -1.0}, "tol"),
    ({"algorithm": "full"}, "algorithm"),
    ({"n_threads": 0}, "n_threads"),
])
def test_bad_parameters(params, match):
    X = np.random.default_rng(0).normal(size=(10, 2))
    kw = {"n_clusters": 2, **params}
    with pytest.raises((ValueError, TypeError), match=match):
        KMeans(**kw).fit(X)


@pytest.mark.parametrize("w,match", [
    (-np.ones(10), "negative"),
    (np.ones(9), "shape \\(10,\\)"),
    (np.ones((10, 1)), "shape"),
    (np.r_[np.nan, np.ones(9)], "NaN"),
    (np.zeros(10), "zero everywhere"),
])
def test_bad_sample_weight(w, match):
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=match):
        KMeans(2).fit(X, sample_weight=w)


def test_predict_checks_fitted_and_features():
    X = blobs(100, 3, 2, seed=26)
    with pytest.raises(NotFittedError):
        KMeans(2).predict(X)
    km = KMeans(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but KMeans is expecting 3 features"):
        km.predict(X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        km.predict(np.full((2, 3), np.nan))


def test_array_init_with_n_init_warns():
    X = blobs(100, 2, 2, seed=27)
    with pytest.warns(RuntimeWarning, match="only one init"):
        KMeans(2, init=X[:2], n_init=3).fit(X)


def test_fewer_distinct_points_than_clusters_warns():
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 10, axis=0)
    with pytest.warns(ConvergenceWarning, match="distinct clusters \\(2\\)"):
        km = KMeans(3, random_state=0).fit(X)
    assert np.isfinite(km.cluster_centers_).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KMeans(2, random_state=0).fit(X)


# ----------------------------------------------------------------------
# scale invariance and the float limits

def _four_blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [5, 5, 0], [0, 5, 5], [9, 0, 9]], dtype=float)
    return np.vstack([rng.normal(size=(300, 3)) + c for c in centres])


@pytest.mark.parametrize("scale", [1e-25, 1e20, 1e-150, 1e140])
def test_kmeans_plusplus_float64_is_scale_invariant(scale):
    X = _four_blobs()
    _, ref = kmeans_plusplus(X, 4, random_state=0)
    _, got = kmeans_plusplus(X * scale, 4, random_state=0)
    np.testing.assert_array_equal(got, ref)
    assert len(set(got)) == 4
    km = KMeans(4, random_state=0).fit(X)
    km_scaled = KMeans(4, random_state=0).fit(X * scale)
    np.testing.assert_array_equal(km_scaled.labels_, km.labels_)
    assert km_scaled.inertia_ / scale**2 == pytest.approx(km.inertia_, rel=1e-12)


@pytest.mark.parametrize("scale,dtype", [(1e200, np.float64), (1e300, np.float64),
                                         (1e20, np.float32)])
def test_kmeans_near_float_limits_raises_clearly(scale, dtype):
    X = (_four_blobs() * scale).astype(dtype)
    with pytest.raises(ValueError, match="overflow|too large"):
        KMeans(4, random_state=0).fit(X)


@pytest.mark.parametrize("scale,dtype", [(1e-200, np.float64), (1e-30, np.float32),
                                         (1e17, np.float32)])
def test_kmeans_near_float_limits_stays_finite(scale, dtype):
    X = (_four_blobs() * scale).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(4, random_state=0).fit(X)
    assert np.isfinite(km.inertia_) and np.isfinite(km.cluster_centers_).all()


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
@pytest.mark.parametrize("offset", [0.0, 1e4, 3e5])
def test_labels_equal_predict_float32_far_from_origin(offset, algorithm):
    X = (_four_blobs(seed=3) + offset).astype(np.float32)
    for k in (1, 4, 9):
        km = KMeans(k, random_state=0, algorithm=algorithm).fit(X)
        np.testing.assert_array_equal(km.labels_, km.predict(X))
        assert km.score(X) == pytest.approx(-km.inertia_, rel=1e-12)


def test_auto_runs_plain_passes_at_low_d():
    """'auto' skips the bounds where the plain pass takes its low-D path
    (the dispatch's own answer), keeps them above; 'elkan' always bounds,
    'lloyd' never, nor does K = 1."""
    from fastem._kernels import load_kernels
    from fastem._kmeans import use_bounds

    lloyd = load_kernels("_lloyd")
    for dtype in (np.float32, np.float64):
        itemsize = np.dtype(dtype).itemsize
        for d in (1, 4, 8, 9, 32):
            low = lloyd.uses_lowd_path(d, itemsize)
            assert use_bounds("auto", 16, d, dtype) is (not low)
            assert use_bounds("elkan", 16, d, dtype) is True
            assert use_bounds("lloyd", 16, d, dtype) is False
            assert use_bounds("auto", 1, d, dtype) is False
    assert not use_bounds("auto", 16, 4, np.float32)
    assert use_bounds("auto", 16, 64, np.float32)
