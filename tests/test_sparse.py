"""K-means on scipy.sparse input against the dense fit of X.toarray().

Every estimator result on CSR data is compared with the same estimator on
the dense array (an independent code path: GEMM distances with exact
differences, no scatter), from the same initial centres, and with
scikit-learn's KMeans where it applies. Small data: the file runs in seconds.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from fastem import GaussianMixture, KMeans, MiniBatchKMeans, kmeans_plusplus
from fastem._sparse import _chunk_rows, check_csr

import sklearn.cluster as sklearn_cluster

from _sparse_data import CASES, assert_same_fit, assert_unchanged, snapshot, sparse_blobs


# ------------------------------------------------------- parity with dense

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_fit_equals_dense_fit(case, weighted, dtype):
    n, d, k, empty_rows, empty_cols = case
    X = sparse_blobs(n, d, k, seed=n, dtype=dtype, empty_rows=empty_rows,
                     empty_cols=empty_cols)
    assert n % _chunk_rows(X, k) != 0
    w = np.random.default_rng(1).uniform(0.5, 2.0, n) if weighted else None
    init = X[:k].toarray() + 0.1
    snap = snapshot(X)
    sparse = KMeans(k, init=init, n_init=1, tol=0).fit(X, sample_weight=w)
    dense = KMeans(k, init=init, n_init=1, tol=0).fit(X.toarray(), sample_weight=w)
    assert_unchanged(X, snap)
    assert sparse.cluster_centers_.dtype == dtype
    assert_same_fit(sparse, dense, dtype)
    assert_array_equal(sparse.predict(X), sparse.labels_)
    assert_array_equal(sparse.predict(X), dense.predict(X.toarray()))
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert_allclose(sparse.transform(X), dense.transform(X.toarray()), rtol=rtol,
                    atol=rtol)
    assert sparse.score(X, sample_weight=w) == pytest.approx(
        dense.score(X.toarray(), sample_weight=w), rel=rtol)
    assert_unchanged(X, snap)


def test_int64_indices_and_sparse_arrays():
    X = sparse_blobs(500, 30, 5, seed=3, index_dtype=np.int64)
    assert X.indices.dtype == np.int64 and X.indptr.dtype == np.int64
    init = X[:5].toarray()
    snap = snapshot(X)
    a = KMeans(5, init=init, n_init=1).fit(X)
    assert_unchanged(X, snap)
    b = KMeans(5, init=init, n_init=1).fit(X.toarray())
    assert_same_fit(a, b, np.float64)
    c = KMeans(5, init=init, n_init=1).fit(sp.csr_array(X))
    assert_same_fit(c, b, np.float64)


@pytest.mark.parametrize("fmt", ["coo", "csc", "lil", "bsr", "dok"])
def test_other_formats_are_converted(fmt):
    X = sparse_blobs(200, 10, 3, seed=4)
    init = X[:3].toarray()
    ref = KMeans(3, init=init, n_init=1).fit(X)
    other = X.asformat(fmt)
    got = KMeans(3, init=init, n_init=1).fit(other)
    assert_same_fit(got, ref, np.float64)
    assert_array_equal(got.predict(other), ref.labels_)


def test_integer_and_boolean_data_become_float64():
    X = sp.random(100, 12, density=0.3, random_state=0, format="csr", data_rvs=lambda m:
                  np.random.default_rng(0).integers(1, 5, m)).astype(np.int64)
    init = X[:3].toarray().astype(float)
    a = KMeans(3, init=init, n_init=1).fit(X)
    assert a.cluster_centers_.dtype == np.float64
    assert_same_fit(a, KMeans(3, init=init, n_init=1).fit(X.toarray()), np.float64)
    onehot = (X > 2).astype(bool)
    b = KMeans(2, random_state=0).fit(onehot)
    assert_same_fit(b, KMeans(2, random_state=0).fit(onehot.toarray()), np.float64)


def test_single_nonzero_and_edge_sizes():
    X = sp.csr_matrix(([2.5], ([3], [1])), shape=(5, 3))
    init = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    a = KMeans(2, init=init, n_init=1).fit(X)
    assert_same_fit(a, KMeans(2, init=init, n_init=1).fit(X.toarray()), np.float64)
    assert_array_equal(a.labels_, [0, 0, 0, 1, 0])
    assert_allclose(a.cluster_centers_, [[0, 0, 0], [0, 2.5, 0]])
    # N = 1, K = 1, D = 1, K = N
    one = KMeans(1, n_init=1).fit(sp.csr_matrix([[0.0, 3.0]]))
    assert_allclose(one.cluster_centers_, [[0.0, 3.0]]) and one.inertia_ == 0.0
    col = sp.csr_matrix(np.array([[1.0], [0.0], [5.0], [6.0]]))
    assert_same_fit(KMeans(2, random_state=0).fit(col),
                    KMeans(2, random_state=0).fit(col.toarray()), np.float64)
    Y = sparse_blobs(7, 4, 7, seed=5)
    kn = KMeans(7, random_state=0).fit(Y)
    assert_same_fit(kn, KMeans(7, random_state=0).fit(Y.toarray()), np.float64)
    assert kn.inertia_ == pytest.approx(0.0, abs=1e-12)


def test_empty_cluster_relocation_matches_dense():
    X = sparse_blobs(400, 8, 4, seed=6)
    init = X[:4].toarray()
    init[2] = 100.0  # far from every row: empty after the first assignment
    a = KMeans(4, init=init, n_init=1).fit(X)
    b = KMeans(4, init=init, n_init=1).fit(X.toarray())
    assert_same_fit(a, b, np.float64)
    assert np.bincount(a.labels_, minlength=4).all()


def test_matches_scikit_learn():
    X = sparse_blobs(600, 25, 5, seed=7)
    init = X[:5].toarray()
    ours = KMeans(5, init=init, n_init=1, tol=0).fit(X)
    ref = sklearn_cluster.KMeans(5, init=init, n_init=1, tol=0).fit(X)
    assert_array_equal(ours.labels_, ref.labels_)
    assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-10, atol=1e-12)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)


def test_bit_identical_for_any_thread_count():
    X = sparse_blobs(3001, 30, 6, seed=8)
    w = np.random.default_rng(0).uniform(0.1, 3.0, X.shape[0])
    fits = [KMeans(6, random_state=1, n_threads=t).fit(X, sample_weight=w) for t in (1, 2)]
    assert_array_equal(fits[0].cluster_centers_, fits[1].cluster_centers_)
    assert fits[0].inertia_ == fits[1].inertia_
    assert_array_equal(fits[0].labels_, fits[1].labels_)
    seeds = [kmeans_plusplus(X, 6, random_state=2, n_threads=t)[1] for t in (1, 2)]
    assert_array_equal(*seeds)


# ------------------------------------------------------------- k-means++

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plusplus_picks_the_dense_seeds(dtype, weighted):
    X = sparse_blobs(700, 30, 8, seed=9, dtype=dtype, empty_rows=(3, 4))
    w = np.random.default_rng(3).uniform(0.5, 2.0, X.shape[0]) if weighted else None
    snap = snapshot(X)
    for seed in range(5):
        centres, idx = kmeans_plusplus(X, 12, sample_weight=w, random_state=seed)
        dense_centres, dense_idx = kmeans_plusplus(X.toarray(), 12, sample_weight=w,
                                                   random_state=seed)
        assert_array_equal(idx, dense_idx)
        assert_array_equal(centres, dense_centres)
        assert centres.dtype == dtype and isinstance(centres, np.ndarray)
    assert_unchanged(X, snap)


def test_kmeans_plusplus_on_one_hot_rows():
    # many duplicate rows and exact integer distances
    rng = np.random.default_rng(4)
    cats = rng.integers(0, 5, size=(300, 3))
    X = sp.csr_matrix((np.ones(900), (np.repeat(np.arange(300), 3),
                                      (cats + [0, 5, 10]).ravel())), shape=(300, 15))
    for seed in range(3):
        assert_array_equal(kmeans_plusplus(X, 10, random_state=seed)[1],
                           kmeans_plusplus(X.toarray(), 10, random_state=seed)[1])
    assert_same_fit(KMeans(10, random_state=0).fit(X),
                    KMeans(10, random_state=0).fit(X.toarray()), np.float64)


# -------------------------------------------------------- MiniBatchKMeans

@pytest.mark.parametrize("weighted", [False, True])
def test_minibatch_equals_dense(weighted):
    X = sparse_blobs(2000, 20, 5, seed=10)
    w = np.random.default_rng(5).uniform(0.5, 2.0, X.shape[0]) if weighted else None
    snap = snapshot(X)
    params = dict(n_clusters=5, batch_size=256, random_state=0, max_iter=5, tol=1e-4)
    a = MiniBatchKMeans(**params).fit(X, sample_weight=w)
    b = MiniBatchKMeans(**params).fit(X.toarray(), sample_weight=w)
    assert_unchanged(X, snap)
    assert a.n_steps_ == b.n_steps_
    assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-8, atol=1e-10)
    assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-8)
    # partial_fit on a stream of CSR batches
    pa, pb = MiniBatchKMeans(5, random_state=1), MiniBatchKMeans(5, random_state=1)
    for start in range(0, 2000, 500):
        rows = slice(start, start + 500)
        sw = None if w is None else w[rows]
        pa.partial_fit(X[rows], sample_weight=sw)
        pb.partial_fit(X[rows].toarray(), sample_weight=sw)
    assert_allclose(pa.cluster_centers_, pb.cluster_centers_, rtol=1e-8, atol=1e-10)
    assert_allclose(pa.counts_, pb.counts_)
    assert_array_equal(pa.predict(X), pb.predict(X.toarray()))


# ------------------------------------------------------------ bad input

def _raw_csr(data, indices, indptr, shape):
    """A csr_matrix holding exactly these arrays (no checks, no conversion)."""
    X = sp.csr_matrix(shape)
    X.data, X.indices, X.indptr = data, indices, indptr
    return X


def test_unsorted_and_duplicate_indices_are_canonicalised_on_a_copy():
    # row 0: columns 2, 0, 2 (unsorted, duplicate 2 -> 1 + 4); row 1: 1, 0
    data = np.array([1.0, 2.0, 4.0, 3.0, 5.0])
    indices = np.array([2, 0, 2, 1, 0], dtype=np.int32)
    indptr = np.array([0, 3, 5, 5], dtype=np.int32)
    X = _raw_csr(data, indices, indptr, (3, 3))
    snap = snapshot(X)
    dense = np.array([[2.0, 0, 5.0], [5.0, 3.0, 0], [0, 0, 0]])
    checked = check_csr(X)
    assert checked is not X
    assert_array_equal(checked.toarray(), dense)
    assert_unchanged(X, snap)
    init = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    a = KMeans(2, init=init, n_init=1).fit(X)
    assert_unchanged(X, snap)
    assert_same_fit(a, KMeans(2, init=init, n_init=1).fit(dense), np.float64)
    assert_allclose(a.transform(X), KMeans(2, init=init, n_init=1).fit(dense).transform(dense))
    assert_array_equal(kmeans_plusplus(X, 2, random_state=0)[1],
                       kmeans_plusplus(dense, 2, random_state=0)[1])
    assert_unchanged(X, snap)


def test_canonical_input_is_used_without_a_copy():
    X = sparse_blobs(50, 6, 2, seed=11)
    assert check_csr(X) is X


@pytest.mark.parametrize("corrupt, error, match", [
    (lambda d, i, p: (d, i, np.int32([0, 3, 2, 6])), ValueError, "indptr"),
    (lambda d, i, p: (d, i, np.int32([1, 2, 4, 6])), ValueError, "indptr"),
    (lambda d, i, p: (d, np.int32([0, 1, 9, 0, 1, 2]), p), ValueError, r"\[0, 3\)"),
    (lambda d, i, p: (d, np.int32([0, 1, -1, 0, 1, 2]), p), ValueError, r"\[0, 3\)"),
    (lambda d, i, p: (d[:5], i, p), ValueError, "len"),
    (lambda d, i, p: (d[:5], i[:5], p), ValueError, "indptr"),
    (lambda d, i, p: (d, i.astype(np.int16), p.astype(np.int16)), TypeError, "int32 or int64"),
    (lambda d, i, p: (d, i.astype(np.int64), p), TypeError, "same dtype"),
    (lambda d, i, p: (np.array([1, 2, np.nan, 4, 5, 6.0]), i, p), ValueError, "NaN.*row 1"),
    (lambda d, i, p: (np.array([1, 2, 3, 4, 5, np.inf]), i, p), ValueError, "infinity.*row 2"),
    (lambda d, i, p: (d.astype(complex), i, p), ValueError, "Complex"),
])
def test_invalid_csr_is_rejected(corrupt, error, match):
    data = np.arange(1.0, 7.0)
    indices = np.array([0, 1, 2, 0, 1, 2], dtype=np.int32)
    indptr = np.array([0, 2, 4, 6], dtype=np.int32)
    X = _raw_csr(*corrupt(data, indices, indptr), (3, 3))
    for call in (lambda: KMeans(2, n_init=1).fit(X), lambda: kmeans_plusplus(X, 2),
                 lambda: MiniBatchKMeans(2).fit(X)):
        with pytest.raises(error, match=match):
            call()
    fitted = KMeans(2, n_init=1, random_state=0).fit(np.eye(3))
    with pytest.raises(error, match=match):
        fitted.predict(X)


def test_feature_count_and_dtype_checks_at_inference():
    X = sparse_blobs(100, 8, 3, seed=12)
    km = KMeans(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        km.predict(sparse_blobs(10, 9, 3))
    mb = MiniBatchKMeans(3, random_state=0).partial_fit(X)
    with pytest.raises(ValueError, match="dtype"):
        mb.partial_fit(X.astype(np.float32))


def test_gaussian_mixture_rejects_sparse_input():
    X = sparse_blobs(50, 4, 2, seed=13)
    with pytest.raises(TypeError, match="sparse.*toarray"):
        GaussianMixture(2).fit(X)
    gm = GaussianMixture(2, random_state=0).fit(X.toarray())
    for method in (gm.predict, gm.score, gm.predict_proba, gm.score_samples):
        with pytest.raises(TypeError, match="sparse"):
            method(X)
