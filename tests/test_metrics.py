import numpy as np
import pytest

from fastem import adjusted_rand_score

sk_metrics = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("n", [2, 3, 10, 200, 5000])
@pytest.mark.parametrize("k_true, k_pred", [(1, 3), (2, 2), (3, 7), (10, 4), (50, 50)])
def test_matches_sklearn_on_random_labelings(n, k_true, k_pred):
    rng = np.random.default_rng(n * 1000 + k_true * 10 + k_pred)
    a = rng.integers(0, k_true, size=n)
    b = rng.integers(0, k_pred, size=n)
    expected = sk_metrics.adjusted_rand_score(a, b)
    assert adjusted_rand_score(a, b) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_matches_sklearn_on_correlated_labelings():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=3000)
    b = a.copy()
    flip = rng.random(a.size) < 0.3
    b[flip] = rng.integers(0, 6, size=flip.sum())
    ari = adjusted_rand_score(a, b)
    assert 0.3 < ari < 0.9
    assert ari == pytest.approx(sk_metrics.adjusted_rand_score(a, b), rel=1e-12)


def test_large_n_no_overflow():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, size=400_000)
    b = np.where(rng.random(a.size) < 0.9, a, rng.integers(0, 3, size=a.size))
    assert adjusted_rand_score(a, b) == pytest.approx(
        sk_metrics.adjusted_rand_score(a, b), rel=1e-10
    )


@pytest.mark.parametrize(
    "a, b",
    [
        ([0, 0, 0, 0], [1, 1, 1, 1]),  # single cluster both
        ([0, 1, 2, 3], [3, 2, 1, 0]),  # all singletons both
        ([0, 0, 1, 1, 2], [5, 5, 7, 7, 9]),  # identical up to renaming
        ([0, 0, 0, 0], [0, 1, 2, 3]),  # one cluster vs all singletons
        ([0, 1, 2, 3], [0, 0, 0, 0]),
        ([0, 0, 1, 1], [0, 1, 0, 1]),  # worse than chance
        ([0, 0, 1, 2], [0, 0, 1, 1]),
        ([1], [2]),
        ([], []),
    ],
)
def test_edge_cases_match_sklearn(a, b):
    expected = sk_metrics.adjusted_rand_score(np.array(a, dtype=int), np.array(b, dtype=int))
    assert adjusted_rand_score(a, b) == pytest.approx(expected, abs=1e-15)


def test_identical_partitions_score_exactly_one():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 7, size=1000)
    perm = rng.permutation(7)
    assert adjusted_rand_score(a, perm[a]) == 1.0


def test_symmetric_and_label_values_irrelevant():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, size=500)
    b = rng.integers(0, 3, size=500)
    names = np.array(["x", "y", "z", "w"])
    assert adjusted_rand_score(a, b) == pytest.approx(adjusted_rand_score(b, a), abs=1e-15)
    assert adjusted_rand_score(names[a], b - 10) == pytest.approx(
        adjusted_rand_score(a, b), abs=1e-15
    )


def test_many_clusters_does_not_allocate_dense_table():
    # all singletons on 10^6 points would be a 10^12-cell dense table
    n = 1_000_000
    a = np.arange(n)
    assert adjusted_rand_score(a, a[::-1].copy()) == 1.0


def test_input_errors():
    with pytest.raises(ValueError, match="same length"):
        adjusted_rand_score([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="1-D"):
        adjusted_rand_score([[0, 1]], [[0, 1]])
