"""The K-means passes (fastem._kernels._lloyd, _bounded) against a numpy reference.

Each pass is called directly, as the estimators call it, on edge sizes:
N = 1, K = 1, D = 1, K = N, N not a multiple of the chunk and several
partitions of chunks, with and without sample weights and a frame shift.
Labels must be the reference's argmin (well-separated data: no near ties),
the per-centre sums and weights its sums, in float64.
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastem._kernels import load_kernels
from fastem._kmeans import bound_updates

_lloyd = load_kernels("_lloyd")
_bounded = load_kernels("_bounded")

# (n, d, k, chunk_rows)
# (the last: centres too wide for one block of tiles, csrc/fe_tiles.h, in the
# AVX-512 and AVX2 builds; the others fit one block)
SHAPES = [(1, 1, 1, 32), (1, 3, 1, 32), (7, 2, 7, 32), (1000, 1, 4, 32),
          (1037, 5, 3, 64), (4099, 17, 9, 128), (300, 40, 1, 32), (101, 1100, 70, 32)]


def _data(n, d, k, dtype, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=20.0, size=(k, d))
    labels = np.arange(n) % k  # every centre has rows (K = N: one each)
    X = centres[labels] + rng.normal(scale=0.5, size=(n, d)) + 3.0
    return X.astype(dtype), (centres + 3.0).astype(dtype), rng.uniform(0.5, 2.0, n)


def _reference(X, C, w):
    X64, C64 = X.astype(np.float64), C.astype(np.float64)
    d2 = ((X64[:, None, :] - C64[None, :, :]) ** 2).sum(axis=2)
    lab = d2.argmin(axis=1)
    k = C.shape[0]
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, lab, w[:, None] * X64)
    return lab, sums, np.bincount(lab, weights=w, minlength=k), float(w @ d2.min(axis=1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,d,k,chunk", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shifted", [False, True])
def test_lloyd_pass(dtype, n, d, k, chunk, weighted, shifted):
    X, C, w = _data(n, d, k, dtype, seed=n + d + k)
    w = w if weighted else np.ones(n)
    sw = w.astype(dtype) if weighted else np.empty(0, dtype)
    shift = X.mean(axis=0).astype(dtype) if shifted else np.zeros(d, dtype)
    lab, sums, weights, inertia = _reference(X, C, w.astype(dtype).astype(np.float64))
    labels = np.full(n, -1, np.int32)
    out_sums, out_w = np.empty((k, d)), np.empty(k)
    n_changed, got_inertia, norms = _lloyd.lloyd_pass(
        X, sw, shift if shifted else shift[:0], C - shift, labels, out_sums, out_w,
        np.nan, chunk, 2)
    assert_array_equal(labels, lab)
    assert n_changed == n
    ww = w.astype(dtype).astype(np.float64)
    assert_allclose(out_w, weights, rtol=1e-12)
    # sums are of w (x - shift), the difference taken in the data's precision
    _, shifted_sums, _, _ = _reference(X - shift, C - shift, ww)
    assert_allclose(out_sums, shifted_sums, rtol=1e-9, atol=1e-9 * np.abs(sums).max())
    rtol = 1e-9 if dtype == np.float64 else 2e-3
    assert_allclose(got_inertia, inertia, rtol=rtol, atol=rtol * norms)
    assert_allclose(norms, ww @ ((X.astype(np.float64) - shift) ** 2).sum(axis=1),
                    rtol=1e-6 if dtype == np.float32 else 1e-12)
    # a second pass from the same labels changes nothing
    n_changed, _, _ = _lloyd.lloyd_pass(X, sw, shift if shifted else shift[:0], C - shift,
                                    labels, out_sums, out_w, norms, chunk, 1)
    assert n_changed == 0
    assert_array_equal(labels, lab)


def _group_of(k, t, dtype):
    """Each centre's group in a bounded pass with t bounds per row."""
    return np.arange(k) // _bounded.bound_group_width(k, t, np.dtype(dtype).itemsize)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,d,k,chunk", SHAPES + [(2000, 24, 100, 64)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("t", [1, 4])
def test_bounded_pass_fresh_then_incremental(dtype, n, d, k, chunk, weighted, shifted, t):
    """Labels, sums and weights of the reference after a fresh pass, a swap
    of two centres, a small move and every third centre moved onto the
    next, with one lower bound per row (Hamerly's) or t groups of centres
    (Yinyang's: a group's bound holds for its centres but the row's own);
    the bounds hold."""
    X, C, w = _data(n, d, k, dtype, seed=2 * n + d + k)
    # in a shifted frame the pass reads X - shift (centres given in that frame)
    shift = X.mean(axis=0).astype(dtype) if shifted else np.zeros(d, dtype)
    frame = shift if shifted else shift[:0]
    Xf = X - shift  # the rows as the pass sees them (rounded in dtype)
    w = w if weighted else np.ones(n)
    sw = w.astype(dtype) if weighted else np.empty(0, dtype)
    ww = w.astype(dtype).astype(np.float64)
    # the sums' rounding is relative to the terms summed (the sums of rows
    # centred by the shift can be near 0)
    atol = 1e-9 * float((ww @ np.abs(Xf.astype(np.float64))).max())
    upper, lower = np.empty(n, dtype), np.empty((n, t), dtype)
    labels = np.full(n, -1, np.int32)
    sums, weights = np.empty((k, d)), np.empty(k)
    group = _group_of(k, t, dtype)

    def bounded_pass(previous, centres):
        """One pass to ``centres`` (fresh when previous is None), then the
        labels, sums and weights of the reference, and bounds that hold
        for the distances to the own and to every other centre."""
        frame_previous = None if previous is None else (previous - shift).astype(np.float64)
        drift, half_sep = bound_updates(frame_previous, centres - shift)
        _, n_full = _bounded.bounded_pass(
            X, sw, frame, centres - shift,
            _bounded.CentreMoves(half_sep, drift, previous is None),
            _bounded.RowBounds(upper, lower, labels), sums, weights, chunk, 2)
        lab, ref_sums, ref_w, _ = _reference(Xf, centres - shift, ww)
        assert_array_equal(labels, lab)
        assert_allclose(sums, ref_sums, rtol=1e-9, atol=atol)
        assert_allclose(weights, ref_w, rtol=1e-12, atol=1e-12)
        dist = np.sqrt(((Xf.astype(np.float64)[:, None]
                         - (centres - shift).astype(np.float64)) ** 2).sum(axis=2))
        assert np.all(upper >= dist[np.arange(n), lab] * (1 - 1e-5))
        dist[np.arange(n), lab] = np.inf
        for g in range(group.max() + 1):
            assert np.all(lower[:, g] <= dist[:, group == g].min(axis=1) * (1 + 1e-5))
        return n_full

    bounded_pass(None, C)
    if k > 1:
        # move the centres (swap two of them): the incremental pass must
        # reach the reference for the new centres from the updated sums;
        # the swap fails nearly every row's bounds, which skips tightening
        C2 = C.copy()
        C2[[0, 1]] = C[[1, 0]]
        bounded_pass(C, C2)
        # a small move: most rows keep their bounds, the few that fail them
        # are tightened to their exact distance first
        rng = np.random.default_rng(n + k)
        C3 = (C2 + 1e-3 * rng.standard_normal(C2.shape)).astype(dtype)
        n_full = bounded_pass(C2, C3)
        if n >= 1000:
            assert n_full < n / 2  # the bounds settled most rows
        # every third centre takes the next one's place: rows of every
        # group searched, in some groups only (the groups' bounds move apart)
        C4 = C3.copy()
        C4[::3] = np.roll(C3[::3], 1, axis=0)
        bounded_pass(C3, C4)


# wider rows than lloyd_pass's low-D path (d <= 10), where the fit labels
# from the bounds: N = 1, K = 1, K = N, N not a multiple of the chunk
LABEL_SHAPES = [(1, 12, 1, 32), (9, 11, 9, 32), (1000, 11, 1, 64), (2000, 12, 4, 48),
                (4099, 17, 9, 128), (300, 40, 1, 32), (101, 1100, 70, 32),
                (2000, 24, 100, 64)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,d,k,chunk", LABEL_SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("t", [1, 4])
def test_bounded_labels_pass_is_lloyd_pass(dtype, n, d, k, chunk, weighted, shifted, t):
    """The labelling pass from a bounded pass's bounds gives lloyd_pass's
    labels and inertia bit for bit (these shapes split X into the same
    partitions for both), for centres in another frame than the bounds'
    (the fit's last pass: predict's frame), after a small move (most rows
    settled by their bounds), a swap (labels change), with two equal
    centres (a tie: the tiles' lowest index, never the bounds' guess) and
    with every third centre moved onto the next (rows of several groups
    searched in one chunk), with one bound per row or t groups."""
    if not _bounded.bounded_labels_available(d, np.dtype(dtype).itemsize):
        pytest.skip("the GEMM path: the fit ends with lloyd_pass")
    X, C, w = _data(n, d, k, dtype, seed=3 * n + d + k)
    sw = w.astype(dtype) if weighted else np.empty(0, dtype)
    # the bounds' frame, and the labelling frame (none, or another shift)
    shift = X.mean(axis=0).astype(dtype) if shifted else np.zeros(d, dtype)
    other = (0.5 * shift + 1.0).astype(dtype) if shifted else np.zeros(d, dtype)
    upper, lower = np.empty(n, dtype), np.empty((n, t), dtype)
    labels = np.full(n, -1, np.int32)
    _, half_sep = bound_updates(None, C - shift)
    _bounded.bounded_pass(X, sw, shift[:d * shifted], C - shift,
                          _bounded.CentreMoves(half_sep, np.zeros(k), True),
                          _bounded.RowBounds(upper, lower, labels),
                          np.empty((k, d)), np.empty(k), chunk, 2)
    state = labels.copy(), upper.copy(), lower.copy()
    rng = np.random.default_rng(n + k)
    moved = (C + 1e-3 * rng.standard_normal(C.shape)).astype(dtype)
    finals = [moved]
    if k > 1:
        finals.append(moved[np.r_[1, 0, 2:k]])       # a swap
        tie = moved.copy()
        tie[1] = tie[0]                                 # equal centres
        finals.append(tie)
        spread = moved.copy()                           # every third centre takes
        spread[::3] = np.roll(moved[::3], 1, axis=0)    # the next one's place: rows
        finals.append(spread)                           # of every group searched
    for final in finals:
        labels[:], upper[:], lower[:] = state
        frame_centres = (final - other).astype(dtype)
        drift, half_sep = bound_updates(C - shift, frame_centres,
                                        other.astype(np.float64) - shift)
        inertia, n_full = _bounded.bounded_labels_pass(
            X, sw, other[:d * shifted], frame_centres,
            _bounded.CentreMoves(half_sep, drift, False),
            _bounded.RowBounds(upper, lower, labels), chunk, 2)
        ref_labels = np.full(n, -1, np.int32)
        _, ref_inertia, _ = _lloyd.lloyd_pass(
            X, sw, other[:d * shifted], frame_centres, ref_labels, np.empty((k, d)),
            np.empty(k), np.nan, chunk, 2)
        assert_array_equal(labels, ref_labels)
        assert inertia == ref_inertia
        if final is moved and n >= 1000:
            assert n_full < n / 2  # the bounds settled most rows
        if any(final is f for f in finals[1:3]):  # the swap, the tie
            assert n_full >= np.count_nonzero(np.isin(ref_labels, [0, 1]))


@pytest.mark.parametrize("k, d, offset", [(1, 3, 0.0), (2, 1, 0.0), (50, 7, 0.0),
                                          (300, 64, 1e3), (64, 1536, 5.0)])
def test_half_separations_bound_cdist(k, d, offset):
    # bound_updates' half distances to the nearest other centre come from a
    # GEMM less a rounding margin: never above scipy's exact pairwise
    # distances (the bounds' safety), and close to them
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(k + d)
    C = rng.standard_normal((k, d)) + offset
    C[-1] = C[0] + 1e-3  # a close pair (k = 1: the centre itself)
    _, half_sep = bound_updates(None, C)
    exact = cdist(C, C)
    np.fill_diagonal(exact, np.inf)
    exact = 0.5 * exact.min(axis=1)
    assert np.all(half_sep <= exact)
    if k == 1:
        assert half_sep[0] == np.inf
    else:
        # on squared distances, within the margin (2 (d + 4) eps times the
        # norms) plus the GEMM's own rounding of the same size, and the
        # outward rounding of bound_updates (1e-12 relative)
        margin = 4 * (d + 4) * np.finfo(np.float64).eps * 2 * np.max(np.sum(C * C, axis=1))
        assert_allclose((2 * half_sep) ** 2, (2 * exact) ** 2, rtol=1e-11, atol=margin)


@pytest.mark.parametrize("itemsize", [4, 8])
@pytest.mark.parametrize("d", [4, 5, 16, 32, 64, 255, 256, 768])
@pytest.mark.parametrize("k", [1, 2, 16, 17, 64, 65, 100, 1024, 5000])
def test_bound_groups_capped_at_half_of_x(itemsize, d, k):
    """The bounds a fit keeps per row (t lower ones and the upper one) take
    at most half the memory of X (d >= 4), and t groups of
    bound_group_width centres hold all k; one per 64 float32 / 32 float64
    centres where the cap allows, one per tile (16 / 8) from d = 256."""
    t = _bounded.bound_groups(k, d, itemsize)
    width = _bounded.bound_group_width(k, t, itemsize)
    assert t >= 1
    assert t == 1 or (t + 1) * itemsize <= d * itemsize / 2
    assert -(-k // width) <= t
    unit = (16 if itemsize == 4 else 8) if d >= 256 else (64 if itemsize == 4 else 32)
    tiles = _bounded.bounded_labels_available(40, itemsize)  # not the GEMM path
    if tiles and k > unit and d // 2 - 1 >= -(-k // unit):
        assert t == -(-k // unit)
