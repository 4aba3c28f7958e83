"""Sparse test data and fit comparisons shared by tests/test_sparse.py and
tests/test_sparse_bounded.py (a helper module, not a test file)."""
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal


def sparse_blobs(n, d, k, *, density=0.3, seed=0, dtype=np.float64, empty_rows=(),
                 empty_cols=(), index_dtype=np.int32, centre_scale=4.0,
                 centre_density=0.5, noise=1.0):
    """CSR rows around k sparse centres (non-negative, like TF-IDF or counts).

    Centres uniform in [0, centre_scale) on a random ``centre_density`` of
    their coordinates, plus uniform [0, noise) noise, and then each value
    kept with probability ``density``.
    """
    rng = np.random.default_rng(seed)
    centres = (rng.uniform(0, centre_scale, size=(k, d))
               * (rng.uniform(size=(k, d)) < centre_density))
    X = centres[rng.integers(0, k, n)] + rng.uniform(0, noise, size=(n, d))
    X *= rng.uniform(size=(n, d)) < density
    X[list(empty_rows)] = 0
    X[:, list(empty_cols)] = 0
    out = sp.csr_matrix(X.astype(dtype))
    out.indices = out.indices.astype(index_dtype)
    out.indptr = out.indptr.astype(index_dtype)
    return out


def overlapping(n, d, k, *, seed, dtype=np.float64, density=0.25):
    """Sparse rows around k centres that overlap: fits take many iterations
    in which few labels change (where Hamerly's bounds are meant to prune)."""
    return sparse_blobs(n, d, k, density=density, seed=seed, dtype=dtype,
                        centre_scale=1.0, centre_density=0.4, noise=0.8)


def snapshot(X):
    return X.data.copy(), X.indices.copy(), X.indptr.copy(), X.shape


def assert_unchanged(X, snap):
    data, indices, indptr, shape = snap
    assert X.shape == shape
    assert X.data.dtype == data.dtype and X.indices.dtype == indices.dtype
    assert_array_equal(X.data, data)
    assert_array_equal(X.indices, indices)
    assert_array_equal(X.indptr, indptr)


def assert_same_fit(a, b, dtype):
    rtol = 1e-10 if dtype == np.float64 else 2e-5
    assert_array_equal(a.labels_, b.labels_)
    assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=rtol, atol=rtol)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=rtol)
    assert a.n_iter_ == b.n_iter_


CASES = [
    # n, d, k, empty rows, empty columns
    (300, 20, 4, (), ()),
    (1037, 13, 6, (0, 5, 1036), (0, 7)),  # n not a multiple of any chunk
    (129, 40, 3, tuple(range(10)), tuple(range(20, 40))),
]
