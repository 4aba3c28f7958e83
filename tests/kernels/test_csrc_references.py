"""Each vector kernel of fastem/_kernels/csrc/ equals its scalar reference.

The C helpers that use GCC/clang generic vectors or AVX2 intrinsics each have
a plain C reference beside them (``fe_<name>_ref_f32/_f64``): the code that
MSVC builds and ``FASTEM_PORTABLE_C=1`` builds run. Through the test hooks of
``fastem._kernels._csrc_check`` both run on the same inputs, in every SIMD
variant built that this CPU runs (baseline: SSE2 code for the generic
vectors; x86-64-v3: AVX2 and the intrinsics paths; x86-64-v4: their AVX-512
parts), and must agree bit for
bit, on edge sizes: one row, rows not a multiple of the vector or of a
sub-block, one component, one feature, features around every padding width.
A few numpy checks make sure that what agrees is also right.
"""
import functools
import importlib

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastem._kernels import built_levels, cpu_levels

LEVELS = [lvl for lvl in built_levels("_csrc_check") if lvl in cpu_levels()]


@pytest.fixture(params=LEVELS)
def hooks(request):
    suffix = "" if request.param == "baseline" else "_" + request.param
    return importlib.import_module("fastem._kernels._csrc_check" + suffix)


def same_bits(a, b):
    """a and b hold the same values bit for bit (-0.0 is not 0.0)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert a.tobytes() == b.tobytes(), np.max(np.abs(a - b))


def both(fn, *args):
    """fn's outputs on the vector path and on the reference, compared."""
    vec, ref = fn(*args, False), fn(*args, True)
    if isinstance(vec, tuple):
        for v, r in zip(vec, ref):
            if v is not None or r is not None:
                same_bits(v, r)
    else:
        same_bits(vec, ref)
    return vec


def pad(n, width):
    return -(-n // width) * width


DTYPES = [np.float32, np.float64]


def _spread(rng, n, dtype):
    """Values over eight orders of magnitude: sums of their squares round
    differently in different orders."""
    return (rng.normal(size=n) * 10.0 ** rng.uniform(-4, 4, n)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 4, 7, 8, 9, 16, 31, 32, 33, 70])
@pytest.mark.parametrize("with_b", [False, True])
def test_sqdist_lanes(hooks, dtype, n, with_b):
    """fe_sqdist_*: lane l (8 lanes in float32, 4 in float64) adds the terms
    j = l mod lanes in order, in the data's precision, then the lanes add up
    as a tree (csrc/fe_kmeans.h): the reference bit for bit, and numpy's
    scalar arithmetic in that order exactly."""
    rng = np.random.default_rng(n * 10 + with_b)
    a = _spread(rng, n, dtype)
    b = _spread(rng, n, dtype) if with_b else np.empty(0, dtype)
    got = both(hooks.sqdist, a, b)
    t = np.dtype(dtype).type
    lanes = 8 if dtype == np.float32 else 4
    acc = [t(0)] * lanes
    for j in range(n):
        d = a[j] - (b[j] if with_b else t(0))
        acc[j % lanes] = acc[j % lanes] + d * d
    pair = [acc[i] + acc[i + 1] for i in range(0, lanes, 2)]
    expect = (pair[0] + pair[1]) + (pair[2] + pair[3]) if lanes == 8 else pair[0] + pair[1]
    same_bits(np.float64(got), np.float64(expect))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 3, 4, 5, 8, 11, 32, 33])
@pytest.mark.parametrize("shifted", [False, True])
def test_frame_sqdist(hooks, dtype, d, shifted):
    """fe_frame_sqdist_*: exact float64 differences (x - shift) - c, four
    sums over j mod 4 with the terms past the last four in the first, then
    (s0 + s1) + (s2 + s3): the reference bit for bit and Python's float64
    arithmetic in that order exactly."""
    rng = np.random.default_rng(d * 10 + shifted)
    x, c = _spread(rng, d, dtype), _spread(rng, d, dtype)
    shift = _spread(rng, d, dtype) if shifted else np.empty(0, dtype)
    got = both(hooks.frame_sqdist, x, shift, c)
    s = [0.0] * 4
    for j in range(d):
        t = float(x[j])
        if shifted:
            t = t - float(shift[j])
        t = t - float(c[j])
        s[j % 4 if j < d - d % 4 else 0] += t * t
    same_bits(np.float64(got), np.float64((s[0] + s[1]) + (s[2] + s[3])))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 16, 37])
def test_expansion_bounds(hooks, dtype, n):
    """fe_expansion_bounds_*: sqrt(best + ||x||^2 +- err2) rounded outward by
    1e-6 and to the data's precision, 0 where the radicand is not positive
    (some rows here), inf kept: numpy's float64 arithmetic exactly."""
    rng = np.random.default_rng(n)
    xsq = rng.uniform(0.0, 50.0, n)
    best = (rng.uniform(-60.0, 10.0, n)).astype(dtype)
    second = (rng.uniform(-60.0, 10.0, n)).astype(dtype)
    best[-1] = second[-1] = -1e3  # radicands below zero
    second[0] = np.inf
    err_scale, csq_max = 1e-6, 30.0
    up, lo = hooks.expansion_bounds(best, second, xsq, err_scale, csq_max)
    err2 = err_scale * (xsq + csq_max)
    vu = (best.astype(np.float64) + xsq) + err2
    vl = (second.astype(np.float64) + xsq) - err2
    same_bits(up, (np.sqrt(np.where(vu > 0, vu, 0.0)) * (1.0 + 1e-6)).astype(dtype))
    same_bits(lo, (np.sqrt(np.where(vl > 0, vl, 0.0)) * (1.0 - 1e-6)).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 3, 8, 13, 32])
@pytest.mark.parametrize("L", [1, 2, 3, 4, 5, 6, 7, 8, 9, 17])
@pytest.mark.parametrize("weighted", [False, True])
def test_kpp_rows(hooks, dtype, d, L, weighted):
    rng = np.random.default_rng(d * 100 + L)
    n = 37
    x = rng.normal(size=(n, d)).astype(dtype)
    cand = x[rng.choice(n, L, replace=L > n)].copy()
    cand[0] += dtype(0.25)
    closest = (rng.uniform(0.0, 2.0 * d, n)).astype(np.float32)
    todo = rng.permutation(n)[:30].astype(np.int32)
    sw = rng.uniform(0.5, 2.0, n).astype(dtype) if weighted else np.empty(0, dtype)
    improves, sums, pots = both(hooks.kpp_rows, x, todo, closest, sw, cand, 0.5)
    # numpy: squared distances in float64, compared with closest
    d2 = ((x[todo, None, :].astype(np.float64) - cand[None, :, :]) ** 2).sum(-1)
    scale = 1.0 if dtype == np.float32 else 0.5
    w = sw[todo] if weighted else np.ones(len(todo))
    expect = (w[:, None] * np.minimum(scale * d2, closest[todo, None])).sum(0)
    assert_allclose(sums, expect, rtol=1e-5)
    bit = np.minimum(np.arange(L), 15).astype(np.uint16)
    got_first = (improves[todo] & (1 << bit[0])) != 0
    far = np.abs(scale * d2[:, 0] - closest[todo]) > 1e-3 * closest[todo]
    assert np.array_equal(got_first[far], (scale * d2[:, 0] < closest[todo])[far])


@pytest.mark.parametrize("dp", [32, 64, 96])
@pytest.mark.parametrize("L", [1, 2, 5, 7, 8, 9, 16, 17])
def test_kpp_qbound(hooks, dp, L):
    """The quantised bound of the k-means++ pass (integer dot products of
    7-bit codes, float32 thresholds) against its reference bit for bit, and
    against the same formula in numpy: the candidates' padding rows (codes
    that would beat every row) never count."""
    rng = np.random.default_rng(dp + L)
    n, Lp = 45, pad(L, 8)
    codes = rng.integers(0, 128, size=(n, dp)).astype(np.uint8)
    cnorm = (codes.astype(np.int64) ** 2).sum(1).astype(np.int32)
    cerr = rng.uniform(0.0, 0.2, n).astype(np.float32)
    qcodes = np.zeros((Lp, dp), np.int8)
    qcodes[:L] = codes[rng.choice(n, L)].view(np.int8)
    qcodes[:L, :3] = rng.integers(0, 128, size=(L, 3))  # not exact copies of rows
    qcodes[L:] = codes[:Lp - L].view(np.int8)  # padding equal to rows: ignored
    qnorm = (qcodes.astype(np.int64) ** 2).sum(1).astype(np.int32)
    qerr = rng.uniform(0.0, 0.2, Lp).astype(np.float32)
    step, cur_factor = 0.05, 1.0001
    dt = (cnorm[:, None] + qnorm[None, :L]
          - 2 * codes.astype(np.int64) @ qcodes[:L].T.astype(np.int64))
    # closest spread around the distances implied by the codes, so that
    # both outcomes occur
    closest = (step ** 2 * np.quantile(dt, 0.3, axis=1)
               * rng.uniform(0.2, 2.0, n)).astype(np.float32)
    todo = rng.permutation(n)[:40].astype(np.int32)
    maybe = both(hooks.kpp_qbound, codes, cnorm, cerr, todo, closest, cur_factor,
                 qcodes, qnorm, qerr, L, np.float32(1.0 / step))
    f32 = np.float32
    base = np.sqrt(closest[todo].astype(np.float64) * cur_factor).astype(f32) + cerr[todo]
    u = (base[:, None] + qerr[None, :L]) * f32(1.0 / step)
    thr = (u * u) * f32(1.00001)
    expect = (dt[todo].astype(f32) < thr).any(axis=1)
    assert_array_equal(maybe, expect.astype(np.uint8))
    assert 0 < maybe.sum() < len(todo)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1024])
@pytest.mark.parametrize("ties", [False, True])
def test_row_argmin(hooks, dtype, k, ties):
    rng = np.random.default_rng(k)
    for _ in range(20):
        if ties:  # small integers: many equal sums
            dist = rng.integers(0, 3, k).astype(dtype)
            csq = rng.integers(0, 3, k).astype(dtype)
        else:
            dist, csq = rng.normal(size=(2, k)).astype(dtype)
        arg, best = both(hooks.row_argmin, dist, csq)
        assert arg == np.argmin(dist + csq) and best == (dist + csq).min()
        if dtype == np.float32:
            arg2, best2, second = both(hooks.row_argmin2_f32, dist, csq)
            s = np.sort(dist + csq)
            assert arg2 == arg and best2 == s[0]
            assert second == (s[1] if k > 1 else np.inf)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 8, 9, 16])
@pytest.mark.parametrize("k", [1, 2, 3, 8, 17])
@pytest.mark.parametrize("nb", [1, 7, 8, 16, 29, 37])
@pytest.mark.parametrize("weighted", [False, True])
def test_lowd_chunk(hooks, dtype, d, k, nb, weighted):
    """The low-D Lloyd chunk (rows per lane, two argmin chains) against its
    reference, bit for bit; and against numpy on exact data. Row counts:
    under one block, one and two blocks of the AVX-512 width (16 float, 8
    double rows on x86-64-v4), with or without an AVX2-width block and a
    tail."""
    rng = np.random.default_rng(d * 1000 + k * 10 + nb)
    x = rng.normal(scale=3.0, size=(nb, d)).astype(dtype) + dtype(100.0)
    shift = np.full(d, 100.0, dtype) + rng.normal(size=d).astype(dtype)
    centres = (rng.normal(scale=3.0, size=(k, d)) + rng.normal(size=d)).astype(dtype)
    sw = rng.uniform(0.5, 2.0, nb).astype(dtype) if weighted else np.empty(0, dtype)
    old = rng.integers(0, k, nb).astype(np.int32)
    for sh in (shift, shift[:0]):
        c = centres if sh.shape[0] else centres + shift
        for with_norms in (False, True):
            both(hooks.lowd_chunk, x, sw, sh, c, old, with_norms)
    # small integers: every operation is exact, so numpy's float64 argmin
    # (first index on ties, and there are many) is the answer bit for bit
    xi = rng.integers(-3, 4, size=(nb, d)).astype(dtype)
    ci = rng.integers(-3, 4, size=(k, d)).astype(dtype)
    sh = rng.integers(-1, 2, size=d).astype(dtype)
    labels, sums, wsum, tail = both(hooks.lowd_chunk, xi, sw, sh, ci, old, True)
    xs = xi.astype(np.float64) - sh
    d2 = ((xs[:, None, :] - ci[None, :, :]) ** 2).sum(axis=2)
    lab = d2.argmin(axis=1)
    w = sw.astype(np.float64) if weighted else np.ones(nb)
    assert_array_equal(labels, lab)
    expect = np.zeros((k, d))
    np.add.at(expect, lab, w[:, None] * xs)
    assert_allclose(sums, expect, rtol=1e-12, atol=1e-12)
    assert_allclose(wsum, np.bincount(lab, weights=w, minlength=k), rtol=1e-12)
    assert_allclose(tail, [w @ d2.min(axis=1), np.count_nonzero(lab != old),
                           w @ (xs ** 2).sum(axis=1)], rtol=1e-12)


def _triangle(rng, n_fac, D, DD, lower, dtype):
    """n_fac DD x DD factors, triangular in the D x D corner, zero-padded."""
    L = np.zeros((n_fac, DD, DD))
    for f in range(n_fac):
        A = rng.normal(size=(D, D)) + 3.0 * np.eye(D)
        L[f, :D, :D] = np.tril(A) if lower else np.triu(A)
    return L.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [1, 3, 4, 5, 8, 9, 16])
@pytest.mark.parametrize("nb", [1, 7, 17, 37])
@pytest.mark.parametrize("lower", [False, True])
def test_estep_chol(hooks, dtype, D, nb, lower):
    rng = np.random.default_rng(D * 1000 + nb)
    K = 3 if nb > 1 else 1
    DD = 4 if D <= 4 else 8 if D <= 8 else 16
    L = _triangle(rng, K, D, DD, lower, dtype)
    xcT = rng.normal(size=(D, nb)).astype(dtype)
    mu = rng.normal(size=(K, D))
    cp = np.zeros((K, DD))
    for k in range(K):
        cp[k, :DD] = mu[k] @ L[k, :D, :].astype(np.float64)
    cp = cp.astype(dtype)
    const_k = rng.normal(size=K)
    lp = both(hooks.estep_chol, xcT, K, lower, L.ravel(), cp.ravel(), const_k)
    # numpy: const_k - |x L_k - c_k|^2 / 2
    for k in range(K):
        Lk = L[k, :D, :].astype(np.float64)
        q = ((xcT.T.astype(np.float64) @ Lk - cp[k]) ** 2).sum(1)
        assert_allclose(lp[k], const_k[k] - 0.5 * q,
                        rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [1, 3, 4, 5, 8, 9, 16])
@pytest.mark.parametrize("nb", [1, 7, 17, 37])
@pytest.mark.parametrize("lower", [False, True])
def test_tied_project(hooks, dtype, D, nb, lower):
    rng = np.random.default_rng(D * 100 + nb)
    DD = 4 if D <= 4 else 8 if D <= 8 else 16
    L = _triangle(rng, 1, D, DD, lower, dtype)
    xcT = rng.normal(size=(D, nb)).astype(dtype)
    yT = both(hooks.tied_project, xcT, lower, L.ravel())
    # numpy: y = x L over the D x D corner
    expected = (xcT.T.astype(np.float64) @ L[0, :D, :D].astype(np.float64)).T
    assert_allclose(yT, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                    atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [1, 3, 4, 5, 8, 9, 16])
@pytest.mark.parametrize("nb", [1, 7, 17, 37])
@pytest.mark.parametrize("keep_r", [False, True])
def test_estep_diag(hooks, dtype, D, nb, keep_r):
    rng = np.random.default_rng(D * 1000 + nb)
    K = 3 if nb > 1 else 1
    DD = 4 if D <= 4 else 8 if D <= 8 else 16
    U = np.zeros((K, DD), dtype)
    V = np.zeros((K, DD), dtype)
    U[:, :D] = rng.normal(size=(K, D))
    V[:, :D] = rng.uniform(0.5, 2.0, size=(K, D))
    xcT = rng.normal(size=(D, nb)).astype(dtype)
    const_k = rng.normal(size=K)
    lp, R = both(hooks.estep_diag, xcT, K, U.ravel(), V.ravel(), const_k, keep_r)
    x = xcT.T.astype(np.float64)
    u, v = U[:, :D].astype(np.float64), V[:, :D].astype(np.float64)
    if dtype == np.float64:  # sum (x u - v)^2
        q = (((x[:, None, :] * u[None]) - v[None]) ** 2).sum(-1)
    elif keep_r:  # v_k0 |x - u|^2, and R = |x - u|^2
        r = ((x[:, None, :] - u[None]) ** 2).sum(-1)
        assert_allclose(R.T, r, rtol=1e-5, atol=1e-5)
        q = r * v[:, 0]
    else:  # sum (x - u)^2 v
        q = (((x[:, None, :] - u[None]) ** 2) * v[None]).sum(-1)
    assert_allclose(lp.T, const_k - 0.5 * q, rtol=1e-5, atol=1e-4)


def _stats_inputs(rng, dtype, nb, D, K, Dp):
    x = rng.normal(size=(nb, D)) + 2.0
    xp = np.zeros((nb, Dp), dtype)
    xp[:, :D] = x
    mp = np.zeros((K, Dp), dtype)
    mp[:, :D] = rng.normal(size=(K, D)) + 2.0
    gT = rng.uniform(0.0, 1.0, size=(K, nb)).astype(dtype)
    return xp, mp, gT


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [1, 5, 8, 15, 16, 17, 33])
@pytest.mark.parametrize("nb", [1, 63, 64, 65, 130])
def test_stats_full(hooks, dtype, D, nb):
    rng = np.random.default_rng(D * 1000 + nb)
    K = 1 if nb == 1 else 3
    Dp = pad(D, 16 if dtype == np.float32 else 8)
    xp, mp, gT = _stats_inputs(rng, dtype, nb, D, K, Dp)
    slot = both(hooks.stats_full, xp, D, mp, gT, False)
    if dtype == np.float32 and D <= 16:
        same_bits(both(hooks.stats_full, xp, D, mp, gT, True), slot)
    iu = np.triu_indices(D)
    for k in range(K):
        z = xp[:, :D].astype(np.float64) - mp[k, :D]
        g = gT[k].astype(np.float64)
        S2 = (g[:, None] * z).T @ z
        expect = np.concatenate([[g.sum()], g @ z, S2[iu]])
        assert_allclose(slot[k], expect, rtol=1e-4 if dtype == np.float32 else 1e-10,
                        atol=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [1, 3, 4, 5, 8, 17])
@pytest.mark.parametrize("nb", [1, 3, 4, 5, 31, 32, 33, 70])
@pytest.mark.parametrize("centred", [False, True])
def test_center_T(hooks, dtype, D, nb, centred):
    """4 x 4 tiles plus the rows and columns past them (nb, D not multiples
    of 4; blocks of 32 rows), with and without a centre: the reference bit
    for bit and numpy exactly (signed zeros kept by the plain transpose)."""
    rng = np.random.default_rng(D * 100 + nb)
    x = rng.normal(size=(nb, D)).astype(dtype)
    x[0, 0] = -0.0
    c = rng.normal(size=D).astype(dtype) if centred else np.empty(0, dtype)
    xcT = both(hooks.center_T, x, c)
    same_bits(xcT, np.ascontiguousarray((x - c).T) if centred else np.ascontiguousarray(x.T))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [1, 2, 17, 40])
@pytest.mark.parametrize("nb", [1, 15, 16, 31, 32, 33, 48, 64, 100, 112, 120])
@pytest.mark.parametrize("spherical", [False, True])
def test_logprob_diag(hooks, dtype, D, nb, spherical):
    """Register-blocked rows (4 vectors: 16 or 32 rows on AVX2, 32 or 64 on
    AVX-512), then the whole vectors left one at a time (48, 112 and 120
    rows leave 1 to 3 of them at some width), then the row tail, against the
    reference and numpy."""
    rng = np.random.default_rng(D * 1000 + nb)
    K = 1 if nb == 1 else 3
    xcT = rng.normal(size=(D, nb)).astype(dtype)
    mu = rng.normal(size=(K, D)).astype(dtype)
    p2 = rng.uniform(0.5, 2.0, size=K if spherical else K * D).astype(dtype)
    const_k = rng.normal(size=K)
    lp = both(hooks.logprob_diag, xcT, mu, p2, const_k, spherical)
    sq = (xcT.T.astype(np.float64)[None, :, :] - mu[:, None, :]) ** 2  # K x nb x D
    if spherical:
        q = p2[:, None].astype(np.float64) * sq.sum(-1)
    else:
        q = (sq * p2.reshape(K, 1, D)).sum(-1)
    assert_allclose(lp, const_k[:, None] - 0.5 * q,
                    rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [1, 5, 8, 12, 15, 16, 17, 33])
@pytest.mark.parametrize("nb", [1, 3, 63, 64, 65, 130])
@pytest.mark.parametrize("spherical", [False, True])
def test_stats_diag(hooks, dtype, D, nb, spherical):
    """float64: columns 8, 4 and 1 at a time (8 only on AVX-512), whatever
    D leaves (12 = 8 + 4, 15 = 8 + 4 + 3 x 1), row tails of 1 to 3 rows."""
    rng = np.random.default_rng(D * 1000 + nb)
    K = 1 if nb == 1 else 3
    Dp = pad(D, 16 if dtype == np.float32 else 8)
    xp, mp, gT = _stats_inputs(rng, dtype, nb, D, K, Dp)
    slot = both(hooks.stats_diag, xp, D, spherical, mp, gT)
    for k in range(K):
        z = xp[:, :D].astype(np.float64) - mp[k, :D]
        g = gT[k].astype(np.float64)
        sq = g @ (z * z)
        expect = np.concatenate([[g.sum()], g @ z, [sq.sum()] if spherical else sq])
        assert_allclose(slot[k], expect, rtol=1e-4 if dtype == np.float32 else 1e-10,
                        atol=1e-3)


@pytest.mark.parametrize("D", [1, 3, 4, 5, 9])
@pytest.mark.parametrize("nb", [1, 15, 16, 17, 513, 1030])
def test_stats_sph_f32(hooks, D, nb):
    rng = np.random.default_rng(D * 10000 + nb)
    K = 1 if nb == 1 else 3
    shift = rng.normal(size=D).astype(np.float32)
    xcT = rng.normal(size=(D, nb)).astype(np.float32)
    mu = rng.normal(size=(K, D)).astype(np.float32)
    centres = (shift + mu + rng.normal(scale=1e-3, size=(K, D))).astype(np.float32)
    gT = rng.uniform(0.0, 1.0, size=(K, nb)).astype(np.float32)
    R = ((xcT.T[None, :, :] - mu[:, None, :]) ** 2).sum(-1).astype(np.float32)
    slot = both(hooks.stats_sph_f32, xcT, gT, R, mu, centres, shift)
    x = xcT.T.astype(np.float64) + shift
    for k in range(K):
        z = x - centres[k]
        g = gT[k].astype(np.float64)
        expect = np.concatenate([[g.sum()], g @ z, [g @ (z * z).sum(1)]])
        assert_allclose(slot[k], expect, rtol=2e-4, atol=1e-3)


@pytest.mark.parametrize("D", [1, 3, 4, 5])
@pytest.mark.parametrize("nb", [1, 63, 64, 65, 200])
@pytest.mark.parametrize("weighted", [False, True])
def test_stats_tied_f32(hooks, D, nb, weighted):
    rng = np.random.default_rng(D * 1000 + nb)
    K = 1 if nb == 1 else 3
    gT = rng.uniform(0.1, 1.0, size=(K, nb)).astype(np.float32)
    sw = (rng.uniform(0.5, 2.0, nb).astype(np.float32) if weighted
          else np.empty(0, np.float32))
    xcT = rng.normal(size=(D, nb)).astype(np.float32)
    slot = both(hooks.stats_tied_f32, gT, sw, xcT)
    g = gT.astype(np.float64)
    g = g / g.sum(0) * (sw if weighted else 1.0)
    expect = np.column_stack([g.sum(1), g @ xcT.T.astype(np.float64)])
    assert_allclose(slot, expect, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [1, 2, 4, 5, 9])
@pytest.mark.parametrize("nb", [1, 7, 8, 9, 100])
@pytest.mark.parametrize("weighted", [False, True])
def test_moments(hooks, dtype, D, nb, weighted):
    rng = np.random.default_rng(D * 1000 + nb)
    xcT = rng.normal(size=(D, nb)).astype(dtype)
    sw = rng.uniform(0.5, 2.0, nb).astype(dtype) if weighted else np.empty(0, dtype)
    slot = both(hooks.moments, xcT, sw)
    x = xcT.T.astype(np.float64)
    w = sw.astype(np.float64) if weighted else np.ones(nb)
    expect = np.concatenate([[w.sum()], w @ x, ((w[:, None] * x).T @ x)[np.triu_indices(D)]])
    assert_allclose(slot, expect, rtol=1e-12, atol=1e-12)


def test_every_level_is_checked():
    """The hooks exist in every variant built (so no vector path goes
    unchecked on a CPU that runs it)."""
    assert LEVELS[0] == "baseline"
    assert set(built_levels("_csrc_check")) == set(built_levels("_lloyd"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [1, 4, 7, 16, 17])
@pytest.mark.parametrize("nb", [1, 5, 256])
@pytest.mark.parametrize("weighted", [False, True])
def test_moments_rows(hooks, dtype, D, nb, weighted):
    """Column moments with the sums in registers (D <= 16) or in memory
    (D = 17, the reference itself), added to a slot that already holds
    sums: the reference bit for bit, and numpy."""
    rng = np.random.default_rng(D * 100 + nb)
    x = (rng.normal(size=(nb, D)) * 3.0 + 10.0).astype(dtype)
    sw = rng.uniform(0.1, 2.0, nb).astype(dtype) if weighted else np.empty(0, dtype)
    ref = x[0].astype(np.float64)
    start = rng.normal(size=1 + 2 * D)
    s0, s1, s2 = both(hooks.moments_rows, x, sw, ref, start)
    w = sw.astype(np.float64) if weighted else np.ones(nb)
    t = x.astype(np.float64) - ref
    assert_allclose(s0, start[0] + w.sum(), rtol=1e-12)
    assert_allclose(s1, start[1:1 + D] + w @ t, rtol=1e-10, atol=1e-10)
    assert_allclose(s2, start[1 + D:] + w @ (t * t), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 3, 9, 33])
@pytest.mark.parametrize("k", [1, 2, 4, 7, 8, 9, 16, 17, 31, 33, 64, 65, 100])
@pytest.mark.parametrize("n", [1, 3, 4, 6])
def test_tiles_chunk(hooks, dtype, d, k, n):
    """csrc/fe_tiles.h: every k mod the tile widths (4, 8, 16) and mod the
    tile blocks (2 or 4 tiles), rows not a multiple of 4, a centre listed
    twice (a tie: the lower index wins, and the runner-up equals the
    minimum), one tile block or blocks of 4 tiles (the running minima kept
    between them: the same bits), rows taken in a shifted frame (the bits
    of a copy of the rows in that frame) and through an index (the bits of
    the rows copied out), and numpy's argmin of the same expansion in
    float64."""
    if not hooks.tiles_enabled():
        pytest.skip("the tiles need a CPU with FMA in this build")
    rng = np.random.default_rng(1000 * k + 10 * d + n)
    x = rng.normal(size=(n, d)).astype(dtype)
    c = rng.normal(size=(k, d)).astype(dtype)
    if k >= 4:
        c[3] = c[1]
    csq = np.einsum("ij,ij->i", c.astype(np.float64), c.astype(np.float64)).astype(dtype)
    labels, best, second, _ = both(hooks.tiles_chunk, x, c, csq, 1000, True)
    for per_block in (4, 8):
        for got, want in zip(both(hooks.tiles_chunk, x, c, csq, per_block, True),
                             (labels, best, second)):
            same_bits(got, want)
    for got, want in zip(both(hooks.tiles_chunk, x, c, csq, 4, False), (labels, best)):
        same_bits(got, want)
    # in the frame of a shift: the rows read in place give the outputs of
    # their copy in that frame, x - shift rounded in the data's precision
    shift = (4.0 * rng.normal(size=d)).astype(dtype)
    raw = (rng.normal(size=(n, d)) + 3.0 * shift).astype(dtype)
    in_frame = both(hooks.tiles_chunk, raw - shift, c, csq, 1000, True)[:3]
    for per_block in (4, 1000):
        for ref in (False, True):
            for got, want in zip(hooks.tiles_chunk(raw, c, csq, per_block, True, ref, shift),
                                 in_frame):
                same_bits(got, want)
    # rows read through an index (repeats and any order), with and without
    # the shift: the outputs of those rows copied out
    index = rng.integers(0, n, size=n + 2).astype(np.int32)
    for frame, rows, want in ((None, x, (labels, best, second)), (shift, raw, in_frame)):
        for ref in (False, True):
            for got, w in zip(hooks.tiles_chunk(rows, c, csq, 4, True, ref, frame, index), want):
                same_bits(got, w[index])
    v = csq.astype(np.float64) - 2.0 * x.astype(np.float64) @ c.T.astype(np.float64)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    assert_allclose(best, v.min(axis=1), rtol=tol, atol=tol * d)
    chosen = v[np.arange(n), labels]
    assert np.all(chosen <= v.min(axis=1) + tol * (1 + d))  # a nearest centre
    if k >= 4:
        assert not np.any(labels == 3)  # the copy of centre 1 never wins
    if k > 1:
        runner = np.sort(v, axis=1)[:, 1]
        assert_allclose(second, runner, rtol=tol, atol=tol * d)
    else:
        assert np.all(np.isinf(second))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [3, 33])
@pytest.mark.parametrize("k", [16, 33, 64, 100, 130])
@pytest.mark.parametrize("n", [1, 5, 9])
def test_tiles_chunk_groups(hooks, dtype, d, k, n):
    """csrc/fe_tiles.h with groups (the bounded passes' search): each block
    of four rows against the groups any of its rows needs (all, none
    listed, random), bit for bit against the reference, in one tile block
    or in blocks of whole groups; the outputs those of numpy over the
    centres of those groups, and each group's minimum (+inf where not
    visited)."""
    if not hooks.tiles_enabled():
        pytest.skip("the tiles need a CPU with FMA in this build")
    rng = np.random.default_rng(1000 * k + 10 * d + n)
    x = rng.normal(size=(n, d)).astype(dtype)
    c = rng.normal(size=(k, d)).astype(dtype)
    c[5] = c[2]  # a tie inside a group
    csq = np.einsum("ij,ij->i", c.astype(np.float64), c.astype(np.float64)).astype(dtype)
    v = csq.astype(np.float64) - 2.0 * x.astype(np.float64) @ c.T.astype(np.float64)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    unit = 16 if dtype == np.float32 else 8
    for group in (unit, 2 * unit):
        ng = -(-k // group)
        members = np.arange(k) // group
        for need in (None, np.ones((n, ng), np.uint8), np.zeros((n, ng), np.uint8),
                     (rng.random((n, ng)) < 0.3).astype(np.uint8)):
            if need is not None and not need.any():
                need[0, ng - 1] = 1  # one row of the first block, one group
            run = functools.partial(hooks.tiles_chunk, group=group, need=need)
            out = both(run, x, c, csq, 1000, True)
            labels, best, second, gmin = out
            for i in range(n):
                block = slice(i - i % 4, min(i - i % 4 + 4, n))
                visit = (np.ones(ng, bool) if need is None
                         else need[block].any(axis=0).astype(bool))
                cand = visit[members]
                if not cand.any():  # a block that needs no group: nothing visited
                    assert best[i] == np.inf and np.all(gmin[i] == np.inf)
                    continue
                vi = np.where(cand, v[i], np.inf)
                assert_allclose(best[i], vi.min(), rtol=tol, atol=tol * d)
                assert cand[labels[i]] and vi[labels[i]] <= vi.min() + tol * (1 + d)
                assert labels[i] != 5  # the copy of centre 2 never wins
                runner = np.sort(vi)[1] if cand.sum() > 1 else np.inf
                assert_allclose(second[i], runner, rtol=tol, atol=tol * d)
                for g in range(ng):
                    if visit[g]:
                        assert_allclose(gmin[i, g], v[i, members == g].min(), rtol=tol,
                                        atol=tol * d)
                    else:
                        assert gmin[i, g] == np.inf
            # blocks of whole groups (the tiles of one group in every build):
            # the running minima kept between them
            for got, want in zip(run(x, c, csq, group // 4, True, False), out):
                same_bits(got, want)


@pytest.mark.parametrize("nb", [1, 7, 8, 9, 100, 1031])
@pytest.mark.parametrize("P, K", [(1, 1), (3, 2), (5, 5), (9, 7), (33, 16), (153, 3)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_gram(hooks, nb, P, K, accumulate):
    """Statistics about the shift as dot products (csrc/fe_gram.h): tiles
    cut at the edges of P and K, rows past the last 8: the reference bit for
    bit, numpy to rounding, and the sum written or added to the slot."""
    if not hooks.gram_enabled():
        pytest.skip("fe_gram_f64 needs a CPU with FMA in this build")
    rng = np.random.default_rng(nb * 100 + P * 10 + K)
    G = rng.uniform(0.0, 2.0, size=(K, nb))
    F = rng.normal(scale=3.0, size=(P, nb))
    start = rng.normal(size=(K, P))
    S = both(hooks.gram, G, F, start, accumulate)
    expect = G @ F.T + (start if accumulate else 0.0)
    assert_allclose(S, expect, rtol=1e-12, atol=1e-12 * nb)


def test_gram_lanes(hooks):
    """The sum's order is the one fe_gram.h states: eight lanes over the
    whole multiples of 8, a halving tree, then the tail in order. Unit
    weights make every product exact, so numpy's additions in that order
    are the answer bit for bit; terms spread over 16 orders of magnitude
    make other orders round differently (checked: a plain running sum)."""
    if not hooks.gram_enabled():
        pytest.skip("fe_gram_f64 needs a CPU with FMA in this build")
    nb = 45
    rng = np.random.default_rng(7)
    G = np.ones((1, nb))
    F = (rng.normal(size=nb) * 10.0 ** rng.uniform(-8, 8, nb)).reshape(1, nb)
    a = np.zeros(8)
    for b in range(40):
        a[b % 8] += F[0, b]
    a[:4] += a[4:]
    a[:2] += a[2:4]
    s = a[0] + a[1]
    for b in range(40, nb):
        s += F[0, b]
    running = 0.0
    for b in range(nb):
        running += F[0, b]
    assert running != s
    S = both(hooks.gram, G, F, np.zeros((1, 1)), False)
    assert S[0, 0] == s
