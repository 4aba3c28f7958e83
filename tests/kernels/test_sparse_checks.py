"""The CSR kernels check the operands they unpack before compiled code runs.

Each entry point takes its operands as NamedTuples and ``out`` tuples
(``fastem._kernels._kmeans_args``); a wrong dtype, a wrong length or a
shape the tiled loops cannot read must raise ValueError, never reach the
nogil loops (bounds checks are off in release builds). Tiny data: runs in
well under a second.
"""
import numpy as np
import pytest
import scipy.sparse as sp

from fastem._kernels import load_kernels

_ks = load_kernels("_sparse")
_kb = load_kernels("_bounded")
TILE = _ks.TILE_COLUMNS


def _setup(dtype=np.float64, n=20, d=6, k=3):
    X = sp.random(n, d, density=0.5, format="csr", random_state=0, dtype=dtype)
    X.data += 0.5
    centres = np.random.default_rng(1).uniform(size=(k, d))
    ct = np.zeros((d, TILE), dtype=dtype)
    ct[:, :k] = centres.T
    c64 = centres.astype(dtype).astype(np.float64)
    fm = _ks.FeatureMajorCentres(ct, np.einsum("ij,ij->i", c64, c64))
    xsq = np.empty(n)
    _ks.row_sqnorms(X.data, X.indptr, xsq, 1)
    return X, xsq, fm


def _csr(X):
    return X.data, X.indices, X.indptr


def test_the_argument_tuples_are_shared_by_the_dense_and_sparse_kernels():
    assert _kb.CentreMoves is _ks.CentreMoves
    assert _kb.RowBounds is _ks.RowBounds


def test_assign_pass_accepts_valid_operands_and_refuses_bad_ones():
    X, xsq, fm = _setup()
    n = X.shape[0]
    labels = np.full(n, -1, np.int32)
    mindist = np.empty(n)
    # valid: the labels are the nearest centres of a numpy reference
    _ks.assign_pass(*_csr(X), np.empty(0), xsq, fm, (labels, mindist), 7, 2)
    ref = ((X.toarray()[:, None, :] - fm.centres_t[:, :3].T[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, ref.argmin(axis=1))
    np.testing.assert_allclose(mindist, ref.min(axis=1), rtol=1e-12, atol=1e-12)
    bad = [
        (fm, (labels[:-1], mindist), xsq, "labels has 19 entries; it needs 20"),
        (fm, (labels, mindist[:-1]), xsq, r"mindist has 19 entries; it needs 20 \(or 0\)"),
        (fm, (labels, mindist), xsq[:-1], "xsq has 19 entries"),
        (fm._replace(csq=np.zeros(TILE + 1)), (labels, mindist), xsq, "k = 9, kp = 8"),
        (fm._replace(centres_t=np.ascontiguousarray(fm.centres_t[:, :5])),
         (labels, mindist), xsq, "kp a multiple of 8"),
    ]
    for centres, out, xs, match in bad:
        with pytest.raises(ValueError, match=match):
            _ks.assign_pass(*_csr(X), np.empty(0), xs, centres, out, 7, 1)
    with pytest.raises(ValueError, match="chunk_rows must be >= 1"):
        _ks.assign_pass(*_csr(X), np.empty(0), xsq, fm, (labels, mindist), 0, 1)
    # the centres' dtype must be the data's (the CSR arrays pick the kernel)
    with pytest.raises(ValueError, match="dtype mismatch"):
        _ks.assign_pass(*_csr(X), np.empty(0), xsq,
                        fm._replace(centres_t=fm.centres_t.astype(np.float32)),
                        (labels, mindist), 7, 1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bounded_pass_needs_float64_bounds_of_n_rows_and_k_moves(dtype):
    X, xsq, fm = _setup(dtype)
    n, k = X.shape[0], 3
    moves = _ks.CentreMoves(np.zeros(k), np.zeros(k), True)
    bounds = _ks.RowBounds(np.empty(n), np.empty(n), np.full(n, -1, np.int32))
    plain = np.full(n, -1, np.int32)
    _ks.assign_pass(*_csr(X), np.empty(0, dtype), xsq, fm, (plain, np.empty(0)), 7, 1)
    assert _ks.bounded_pass(*_csr(X), xsq, fm, moves, bounds, 7, 2)[1] == n
    np.testing.assert_array_equal(bounds.labels, plain)
    with pytest.raises(ValueError, match="dtype mismatch"):  # X's dtype is not enough
        _ks.bounded_pass(*_csr(X), xsq, fm, moves, bounds._replace(
            upper=np.empty(n, np.float32), lower=np.empty(n, np.float32)), 7, 1)
    bad = [
        (moves._replace(half_sep=np.zeros(k - 1)), bounds, "moves.half_sep has 2"),
        (moves._replace(drift=np.zeros(k + 1)), bounds, "moves.drift has 4"),
        (moves, bounds._replace(upper=np.empty(n + 1)), "bounds.upper has 21"),
        (moves, bounds._replace(lower=np.empty(n - 1)), "bounds.lower has 19"),
        (moves, bounds._replace(labels=np.zeros(n - 1, np.int32)), "bounds.labels has 19"),
    ]
    for mv, bd, match in bad:
        with pytest.raises(ValueError, match=match):
            _ks.bounded_pass(*_csr(X), xsq, fm, mv, bd, 7, 1)
    one = _ks.FeatureMajorCentres(fm.centres_t, fm.csq[:1])
    with pytest.raises(ValueError, match="centres need 2 <= k"):
        _ks.bounded_pass(*_csr(X), xsq, one, moves._replace(
            half_sep=np.zeros(1), drift=np.zeros(1)), bounds, 7, 1)


def test_sums_distances_and_inertia_check_their_lengths():
    X, xsq, fm = _setup()
    n, d, k = X.shape[0], X.shape[1], 3
    labels = np.arange(n, dtype=np.int32) % k
    w = np.linspace(0.5, 2.0, n)
    with pytest.raises(ValueError, match="weights has 2 entries; it needs 3"):
        _ks.centre_sums(*_csr(X), w, labels, (np.empty((k, d)), np.empty(k - 1)), 1)
    with pytest.raises(ValueError, match="sample_weight has 19 entries"):
        _ks.centre_sums(*_csr(X), w[:-1], labels, (np.empty((k, d)), np.empty(k)), 1)
    with pytest.raises(ValueError, match="old has 19 entries"):
        _ks.move_rows(*_csr(X), w, np.array([0], np.int64), labels[:-1], labels,
                      np.zeros((k, d)), 1)
    with pytest.raises(ValueError, match="out's columns has 2 entries; it needs 3"):
        _ks.pairwise_sqdist(*_csr(X), xsq, fm, np.empty((n, k - 1)), 1)
    with pytest.raises(ValueError, match="labels has 21 entries"):
        _ks.assigned_inertia(*_csr(X), w, xsq, fm, np.zeros(n + 1, np.int32), 7, 1)
    with pytest.raises(ValueError, match="indptr has 20 entries; it needs 21"):
        _ks.row_sqnorms(X.data, X.indptr[:-1], np.empty(n), 1)


def test_kpp_pass_checks_its_points_and_outputs():
    X, xsq, fm = _setup()
    n, d = X.shape
    points = np.zeros((d, TILE))
    points[:, :3] = X[:3].toarray().T
    psq = xsq[:3].copy()
    pts = _ks.KppPoints(points, np.ones(d, np.uint8), psq, True, 1.0)
    chunk = 8
    n_chunks = -(-n // chunk)
    out = (np.empty(n_chunks), np.empty((n_chunks, 2)), np.empty(2))
    closest = np.full(n, np.finfo(np.float32).max, np.float32)
    _ks.kpp_pass(*_csr(X), np.empty(0), xsq, pts, closest, out, chunk, 2)
    sq = ((X.toarray()[:, None, :] - X[:3].toarray()[None]) ** 2).sum(axis=2)
    np.testing.assert_allclose(closest, sq[:, 0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[2], np.minimum(sq[:, :1], sq[:, 1:]).sum(axis=0),
                               rtol=1e-6)
    bad = [
        (pts._replace(present=np.ones(d - 1, np.uint8)), out, "points.present has 5"),
        (pts._replace(psq=np.zeros(TILE + 1)), out, "m = 9, mp = 8"),
        (pts, (out[0][:-1],) + out[1:], "chunk_cur has 2 entries; it needs 3"),
        (pts, (out[0], np.empty((n_chunks, 3)), out[2]), "chunk_pots columns has 3"),
        (pts, out[:2] + (np.empty(1),), "potentials has 1 entries; it needs 2"),
    ]
    for p, o, match in bad:
        with pytest.raises(ValueError, match=match):
            _ks.kpp_pass(*_csr(X), np.empty(0), xsq, p, closest, o, chunk, 1)
    with pytest.raises(ValueError, match="closest has 19"):
        _ks.kpp_pass(*_csr(X), np.empty(0), xsq, pts, closest[:-1], out, chunk, 1)


def test_update_centres_checks_the_shapes_it_writes():
    _, _, fm = _setup()
    k, d = 3, fm.centres_t.shape[0]
    sums, weights = np.ones((k, d)), np.ones(k)
    centres = np.zeros((k, d))
    ct, csq = fm.centres_t.copy(), np.empty(k)
    # valid: the means, and their rounded copy feature-major
    _ks.update_centres(sums, weights * 2, centres, ct, csq, np.empty(k))
    np.testing.assert_array_equal(centres, 0.5)
    np.testing.assert_array_equal(ct[:, :k], 0.5)
    bad = [
        (sums, weights[:-1], centres, ct, csq, np.empty(0), "weights has 2"),
        (sums, weights, centres, ct, csq[:-1], np.empty(0), "csq has 2"),
        (sums, weights, centres, ct, csq, np.empty(2), r"drift has 2 entries; it needs 3 \(or 0\)"),
        (sums[:, :-1].copy(), weights, centres, ct, csq, np.empty(0), "disagree"),
        (sums, weights, centres, ct[:-1].copy(), csq, np.empty(0), "disagree"),
    ]
    for *args, match in bad:
        with pytest.raises(ValueError, match=match):
            _ks.update_centres(*args)
