"""The dense Lloyd pass on both sides of its low-D dispatch (csrc/fe_lowd.h
for narrow rows, GEMM + argmin for wide ones) against a float64 numpy
reference.

Sizes: N = 1, K = 1, D = 1, K = N, N not a multiple of the chunk or of the
8 / 4 rows of a vector block, D at and around the crossover; float32 and
float64, with and without weights and frame shift; 1 and 2 threads must
agree bit for bit. The reference's labels are required except at true
ties: the data below keep every row's nearest centre clear of the runner-up
by far more than rounding, or are small integers, where every operation is
exact and the first index of the minimum is the answer.
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastem._kernels import load_kernels

_lloyd = load_kernels("_lloyd")

DTYPES = [np.float32, np.float64]


def _crossover(dtype):
    """The widest D of the low-D path for dtype (the dispatch's own answer)."""
    itemsize = np.dtype(dtype).itemsize
    d = 1
    while _lloyd.uses_lowd_path(d + 1, itemsize):
        d += 1
    return d


def _widths(dtype):
    top = _crossover(dtype)
    return sorted({1, 2, 3, 4, top - 1, top, top + 1})


def _pass(X, sw, shift, C, chunk, threads, labels=None):
    n, d = X.shape
    k = C.shape[0]
    labels = np.full(n, -1, np.int32) if labels is None else labels.copy()
    sums, weights = np.empty((k, d)), np.empty(k)
    n_changed, inertia, norms = _lloyd.lloyd_pass(X, sw, shift, C, labels, sums, weights,
                                                  np.nan, chunk, threads)
    return labels, sums, weights, n_changed, inertia, norms


def _reference(X, w, shift, C):
    """labels, sums of w (x - shift), weights, inertia in float64; x - shift
    rounded to X's dtype as the passes take it."""
    xs = (X - shift).astype(np.float64) if shift.shape[0] else X.astype(np.float64)
    d2 = ((xs[:, None, :] - C.astype(np.float64)[None, :, :]) ** 2).sum(axis=2)
    lab = d2.argmin(axis=1)
    k = C.shape[0]
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, lab, w[:, None] * xs)
    return lab, sums, np.bincount(lab, weights=w, minlength=k), float(w @ d2.min(axis=1)), \
        float(w @ (xs ** 2).sum(axis=1))


def _separated(n, d, k, dtype, seed, offset):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=20.0, size=(k, d))
    X = centres[np.arange(n) % k] + rng.normal(scale=0.5, size=(n, d)) + offset
    return X.astype(dtype), (centres + offset).astype(dtype), rng.uniform(0.5, 2.0, n)


# (n, k, chunk): N = 1, K = 1, K = N, N not a multiple of the chunk, of 8 or 4
SHAPES = [(1, 1, 16), (5, 5, 16), (13, 1, 16), (1000, 16, 64), (1037, 3, 112)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,k,chunk", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_pass_around_the_crossover(dtype, n, k, chunk, weighted, offset):
    for d in _widths(dtype):
        X, C, w = _separated(n, d, k, dtype, seed=n + 7 * d + k, offset=offset)
        sw = w.astype(dtype) if weighted else np.empty(0, dtype)
        ww = w.astype(dtype).astype(np.float64) if weighted else np.ones(n)
        # far data are passed with their mean as the frame shift, as fit does
        shift = X.mean(axis=0).astype(dtype) if offset else np.empty(0, dtype)
        Cf = (C - shift) if offset else C
        lab, sums, wts, inertia, norms = _reference(X, ww, shift, Cf)
        labels, got_sums, got_w, n_changed, got_inertia, got_norms = _pass(
            X, sw, shift, Cf, chunk, 2)
        assert_array_equal(labels, lab)
        assert n_changed == n
        assert_allclose(got_w, wts, rtol=1e-12)
        assert_allclose(got_sums, sums, rtol=1e-9, atol=1e-9 * np.abs(sums).max())
        assert_allclose(got_norms, norms, rtol=1e-6 if dtype == np.float32 else 1e-12)
        # the low-D path's distances come from exact differences: its
        # inertia has no cancellation error (the GEMM path's float32
        # expansion has, relative to the norms)
        if _lloyd.uses_lowd_path(d, np.dtype(dtype).itemsize):
            tol = 1e-5 if dtype == np.float32 else 1e-12
            assert_allclose(got_inertia, inertia, rtol=tol)
        else:
            tol = 2e-3 if dtype == np.float32 else 1e-9
            assert_allclose(got_inertia, inertia, rtol=tol, atol=tol * norms)
        # the same labels again: nothing changes
        again = _pass(X, sw, shift, Cf, chunk, 1, labels=labels)
        assert again[3] == 0
        assert_array_equal(again[0], lab)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_ties_go_to_the_first_centre(dtype, weighted):
    """Small integers: exact arithmetic, many exact ties, numpy's first index."""
    rng = np.random.default_rng(5)
    n, k = 777, 9
    sw = rng.uniform(0.5, 2.0, n).astype(dtype) if weighted else np.empty(0, dtype)
    ww = sw.astype(np.float64) if weighted else np.ones(n)
    for d in _widths(dtype):
        X = rng.integers(-3, 4, size=(n, d)).astype(dtype)
        C = rng.integers(-3, 4, size=(k, d)).astype(dtype)
        shift = rng.integers(-1, 2, size=d).astype(dtype)
        lab, sums, wts, inertia, _ = _reference(X, ww, shift, C)
        labels, got_sums, got_w, _, got_inertia, _ = _pass(X, sw, shift, C, 64, 2)
        assert_array_equal(labels, lab)
        assert_allclose(got_sums, sums, rtol=1e-12, atol=1e-12)
        assert_allclose(got_w, wts, rtol=1e-12)
        if _lloyd.uses_lowd_path(d, np.dtype(dtype).itemsize):
            assert got_inertia == pytest.approx(inertia, rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_bit_identical(dtype):
    """1 and 2 threads, many partitions: the same bits in every output."""
    for d in _widths(dtype):
        X, C, w = _separated(20_011, d, 7, dtype, seed=d, offset=3.0)
        sw = w.astype(dtype)
        shift = X.mean(axis=0).astype(dtype)
        one = _pass(X, sw, shift, C - shift, 64, 1)
        two = _pass(X, sw, shift, C - shift, 64, 2)
        for a, b in zip(one, two):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_float32_far_from_origin():
    """float32 rows at 3e5 from the origin, clusters 1 apart: the on-the-fly
    shift keeps the labels and the inertia of the float64 reference."""
    rng = np.random.default_rng(11)
    n, k = 3001, 4
    for d in _widths(np.float32):
        C64 = 3e5 + rng.normal(scale=1.0, size=(k, d))
        X64 = C64[np.arange(n) % k] + rng.normal(scale=0.05, size=(n, d))
        X, C = X64.astype(np.float32), C64.astype(np.float32)
        shift = X64.mean(axis=0).astype(np.float32)
        lab, _, _, inertia, norms = _reference(X, np.ones(n), shift, C - shift)
        labels, _, _, _, got_inertia, _ = _pass(X, np.empty(0, np.float32), shift,
                                                C - shift, 256, 2)
        assert_array_equal(labels, lab)
        tol = 1e-5 if _lloyd.uses_lowd_path(d, 4) else 2e-3
        assert_allclose(got_inertia, inertia, rtol=tol, atol=0 if tol < 1e-3 else tol * norms)


def test_dispatch_is_by_width_and_dtype():
    """One threshold per dtype: every narrower width takes the low-D path."""
    for itemsize in (4, 8):
        top = _crossover(np.float32 if itemsize == 4 else np.float64)
        assert top >= 4
        assert all(_lloyd.uses_lowd_path(d, itemsize) for d in range(1, top + 1))
        assert not any(_lloyd.uses_lowd_path(d, itemsize) for d in range(top + 1, 64))
