"""The bounded (Hamerly) pass on CSR rows against plain Lloyd and the dense fit.

The bounded pass must give the labels of the plain pass in every iteration
(it skips only rows whose nearest centre is proven by a margin larger than
the rounding of the plain pass's distances), and its incremental centre
sums must stay within float64 rounding of sums computed from scratch.
References: the plain sparse kernel, numpy on the dense array, and the dense
fit of ``X.toarray()`` (an independent code path) from the same centres.
Small data: the file runs in a few seconds.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from fastem import KMeans
from fastem import _sparse
from fastem._sparse import _chunk_rows

from _sparse_data import (
    CASES, assert_same_fit, assert_unchanged, overlapping, snapshot, sparse_blobs)

_ks = _sparse._ks


def dense_sqdist(X, centres):
    Xd = X.toarray().astype(np.float64)
    return ((Xd[:, None, :] - centres[None].astype(np.float64)) ** 2).sum(axis=2)


# ------------------------------------------------- the pass, iteration by iteration

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_every_bounded_pass_gives_the_plain_labels(dtype, weighted):
    n, d, k = 1500, 40, 9
    X = overlapping(n, d, k, seed=1, dtype=dtype)
    Xd = X.toarray().astype(np.float64)
    w = np.random.default_rng(2).uniform(0.5, 2.0, n).astype(dtype) if weighted else None
    sw = w if w is not None else np.empty(0, dtype)
    xsq = _sparse.row_sqnorms(X, 2)
    chunk = _chunk_rows(X, k)
    centres64 = X[:k].toarray().astype(np.float64)
    fm = _sparse.feature_major(centres64, dtype)
    bounds = _sparse._Bounds(X, sw, xsq, k, chunk, 2)
    labels = np.full(n, -1, np.int32)
    sums, weights = np.empty((k, d)), np.empty(k)
    full, incremental = [], 0
    for it in range(25):
        moved_before = labels.copy()
        _, n_full = bounds.assign(labels, centres64, fm, sums, weights)
        plain = np.full(n, -1, np.int32)
        _ks.assign_pass(X.data, X.indices, X.indptr, sw, xsq, fm, (plain, np.empty(0)),
                        chunk, 1)
        assert_array_equal(labels, plain)  # the plain pass's labels, bit for bit
        rounded = fm.centres_t[:, :k].T.astype(np.float64)
        assert_array_equal(labels, dense_sqdist(X, rounded).argmin(axis=1))
        ww = np.ones(n) if w is None else w.astype(np.float64)
        ref = np.array([(ww[labels == c, None] * Xd[labels == c]).sum(axis=0)
                        for c in range(k)])
        assert_allclose(sums, ref, rtol=1e-12, atol=1e-12)
        assert_array_equal(weights, np.bincount(labels, weights=ww, minlength=k))
        moved = np.flatnonzero(moved_before != labels)
        incremental += it > 0 and 0 < 2 * np.diff(X.indptr)[moved].sum() < X.nnz
        full.append(n_full)
        _ks.update_centres(sums, weights, centres64, fm.centres_t, fm.csq, bounds.drift2)
    assert full[0] == n  # the first pass searches every row
    assert min(full[1:]) < n // 4  # later ones prune most rows
    assert incremental >= 3  # the incremental sums were exercised


def test_assigned_inertia_equals_the_plain_pass_bit_for_bit():
    X = overlapping(777, 30, 6, seed=3)
    w = np.random.default_rng(4).uniform(0.5, 2.0, X.shape[0])
    xsq = _sparse.row_sqnorms(X, 2)
    fm = _sparse.feature_major(X[10:16].toarray() + 0.05, np.float64)
    chunk = 64
    labels = np.full(X.shape[0], -1, np.int32)
    for sw in (np.empty(0), w):
        _, inertia = _ks.assign_pass(X.data, X.indices, X.indptr, sw, xsq, fm,
                                     (labels, np.empty(0)), chunk, 2)
        for threads in (1, 2):
            assert _ks.assigned_inertia(X.data, X.indices, X.indptr, sw, xsq, fm, labels,
                                        chunk, threads) == inertia


def test_move_rows_matches_sums_from_scratch():
    n, d, k = 600, 25, 5
    X = overlapping(n, d, k, seed=5, dtype=np.float32)
    Xd = X.toarray().astype(np.float64)
    w = np.random.default_rng(6).uniform(0.5, 2.0, n).astype(np.float32)
    rng = np.random.default_rng(7)
    old = rng.integers(0, k, n).astype(np.int32)
    new = old.copy()
    rows = np.sort(rng.choice(n, 80, replace=False))
    new[rows] = (old[rows] + rng.integers(1, k, rows.shape[0])) % k
    sums = np.array([(w[old == c, None] * Xd[old == c]).sum(axis=0) for c in range(k)])
    for threads in (1, 2):
        got = sums.copy()
        _ks.move_rows(X.data, X.indices, X.indptr, w, rows.astype(np.int64), old, new, got,
                      threads)
        ref = np.array([(w[new == c, None] * Xd[new == c]).sum(axis=0) for c in range(k)])
        assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
        if threads == 1:
            first = got
    assert_array_equal(got, first)


# ------------------------------------------------------------ whole fits

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_bounded_fit_equals_lloyd_and_dense_fit(case, weighted, dtype):
    n, d, k, empty_rows, empty_cols = case
    X = sparse_blobs(n, d, k, seed=n, dtype=dtype, empty_rows=empty_rows,
                     empty_cols=empty_cols)
    assert n % _chunk_rows(X, k) != 0
    w = np.random.default_rng(1).uniform(0.5, 2.0, n) if weighted else None
    init = X[:k].toarray() + 0.1
    snap = snapshot(X)
    fits = {a: KMeans(k, init=init, n_init=1, tol=0, algorithm=a).fit(X, sample_weight=w)
            for a in ("lloyd", "elkan", "auto")}
    dense = KMeans(k, init=init, n_init=1, tol=0, algorithm="lloyd").fit(
        X.toarray(), sample_weight=w)
    assert_unchanged(X, snap)
    for fit in fits.values():
        assert_same_fit(fit, dense, dtype)
        assert_array_equal(fit.labels_, fits["lloyd"].labels_)
        assert_array_equal(fit.predict(X), fit.labels_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_long_bounded_fit_equals_lloyd_and_dense_fit(dtype, weighted):
    # many iterations with few changes: pruning and incremental sums at work
    X = overlapping(2000, 40, 12, seed=8, dtype=dtype)
    w = np.random.default_rng(9).uniform(0.5, 2.0, X.shape[0]) if weighted else None
    init = X[:12].toarray()
    a = KMeans(12, init=init, n_init=1, tol=0, algorithm="elkan").fit(X, sample_weight=w)
    b = KMeans(12, init=init, n_init=1, tol=0, algorithm="lloyd").fit(X, sample_weight=w)
    c = KMeans(12, init=init, n_init=1, tol=0, algorithm="lloyd").fit(
        X.toarray(), sample_weight=w)
    assert a.n_iter_ > 10
    assert_same_fit(a, b, dtype)
    assert_same_fit(a, c, dtype)


@pytest.mark.parametrize("algorithm", ["elkan", "lloyd"])
def test_edge_shapes(algorithm):
    km = dict(n_init=1, algorithm=algorithm)
    # a single non-zero
    X = sp.csr_matrix(([2.5], ([3], [1])), shape=(5, 3))
    init = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    a = KMeans(2, init=init, **km).fit(X)
    assert_same_fit(a, KMeans(2, init=init, **km).fit(X.toarray()), np.float64)
    assert_array_equal(a.labels_, [0, 0, 0, 1, 0])
    # K = 1, D = 1, K = N (N not a multiple of the chunk)
    Y = sparse_blobs(50, 6, 3, seed=11)
    one = KMeans(1, init=Y[:1].toarray(), **km).fit(Y)
    assert_allclose(one.cluster_centers_, Y.toarray().mean(axis=0, keepdims=True),
                    rtol=1e-12)
    col = sp.csr_matrix(np.array([[1.0], [0.0], [5.0], [6.0], [0.0], [5.5]]))
    assert_same_fit(KMeans(2, random_state=0, **km).fit(col),
                    KMeans(2, random_state=0, **km).fit(col.toarray()), np.float64)
    Z = sp.random(67, 50, density=0.2, format="csr", random_state=12)  # distinct rows
    kn = KMeans(67, init=Z.toarray(), **km).fit(Z)
    assert_array_equal(kn.labels_, np.arange(67))
    assert kn.inertia_ == pytest.approx(0.0, abs=1e-12)


def test_bounded_empty_cluster_relocation_matches_dense():
    X = sparse_blobs(400, 8, 4, seed=6)
    init = X[:4].toarray()
    init[2] = 100.0  # far from every row: empty after the first assignment
    a = KMeans(4, init=init, n_init=1, algorithm="elkan").fit(X)
    b = KMeans(4, init=init, n_init=1, algorithm="lloyd").fit(X.toarray())
    assert_same_fit(a, b, np.float64)
    assert np.bincount(a.labels_, minlength=4).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bounded_fit_is_bit_identical_for_any_thread_count(dtype):
    X = overlapping(3001, 30, 8, seed=13, dtype=dtype)
    w = np.random.default_rng(0).uniform(0.1, 3.0, X.shape[0])
    fits = [KMeans(8, random_state=1, algorithm="elkan", tol=0, n_threads=t).fit(
        X, sample_weight=w) for t in (1, 2)]
    assert fits[0].n_iter_ > 5
    assert_array_equal(fits[0].cluster_centers_, fits[1].cluster_centers_)
    assert fits[0].inertia_ == fits[1].inertia_
    assert_array_equal(fits[0].labels_, fits[1].labels_)


@pytest.mark.parametrize("algorithm, k, bounded", [
    ("auto", 12, True), ("auto", 8, False), ("elkan", 3, True), ("elkan", 1, False),
    ("lloyd", 12, False)])
def test_which_pass_each_algorithm_runs(algorithm, k, bounded, capsys):
    # the verbose lines of a bounded fit report the rows that needed a full search
    X = overlapping(300, 20, k, seed=14)
    km = KMeans(k, init=X[:k].toarray(), n_init=1, max_iter=3, algorithm=algorithm,
                verbose=1).fit(X)
    assert ("all cross terms for" in capsys.readouterr().err) == bounded
    assert_same_fit(km, KMeans(k, init=X[:k].toarray(), n_init=1, max_iter=3,
                               algorithm="lloyd").fit(X.toarray()), np.float64)
