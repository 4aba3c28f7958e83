"""The quantised lower bound of greedy k-means++ changes no seed.

``fastem._init._QuantisedRows`` keeps 7-bit codes of X's rows; the candidate
pass rules out rows whose bound (from the codes, exact integer sums, float32
thresholds with margins) says no candidate can beat them. The bound must be
sound (a row a candidate beats is always measured), so the seeds equal those
of the plain algorithm (numpy reference) on every kind of data: far from the
origin, columns of very different scales, rows outside the range the codes
were fitted on, duplicate rows, float64 at extreme scales. It must also do
its job: on clustered data late in the seeding it rules out most rows.
"""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastem
import fastem._init as fi
from fastem._kernels import load_kernels
from test_kmeans import blobs, numpy_greedy_kmeans_plusplus

_kpp = load_kernels("_kmeanspp")


@pytest.fixture
def bound(monkeypatch):
    """Build the codes at the first candidate pass, whatever K and d."""
    monkeypatch.setattr(fi, "_QBOUND_FROM_CENTRE", 1)
    monkeypatch.setattr(fi._QuantisedRows, "pays_off", staticmethod(lambda X, k: True))
    built = []
    real = fi._QuantisedRows.build.__func__

    def spy(cls, X, n_threads):
        built.append(real(cls, X, n_threads))
        return built[-1]
    monkeypatch.setattr(fi._QuantisedRows, "build", classmethod(spy))
    return built


def _seeds(X, k, **kw):
    return fastem.kmeans_plusplus(X, k, random_state=2, **kw)[1]


@pytest.mark.parametrize("n, d, k, trials", [
    (1, 3, 1, None),       # no candidate pass: nothing built
    (2, 1, 2, None),       # one feature
    (7, 2, 7, None),       # k == n: the last steps have zero potential
    (3001, 37, 12, None),  # several chunks, the last partial; codes padded 37 -> 64
    (2500, 33, 10, 9),     # more candidates than one group of 8
    (2500, 11, 6, 17),     # candidates beyond the 16 bits of the improvement mask
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_seeds_equal_numpy_reference(bound, n, d, k, trials, dtype, weighted):
    X = blobs(n, d, 8, seed=n + d, dtype=dtype)
    w = np.random.default_rng(3).uniform(0.1, 3.0, n) if weighted else None
    idx = _seeds(X, k, sample_weight=w, n_local_trials=trials)
    expected = numpy_greedy_kmeans_plusplus(X, k, w, np.random.default_rng(2), trials)
    assert_array_equal(idx, expected)
    assert len(bound) == (1 if k > 1 else 0)
    for t in (1, 2):
        again = _seeds(X, k, sample_weight=w, n_local_trials=trials, n_threads=t)
        assert_array_equal(again, idx)


def _hard_data(kind, dtype):
    rng = np.random.default_rng(5)
    X = blobs(4000, 24, 30, seed=6)
    if kind == "far":  # codes about an offset far larger than the spread
        X = X + 1e6
    elif kind == "column scales":  # one column sets the step, others are tiny
        X = X * np.logspace(-3, 3, X.shape[1])
    elif kind == "outliers":  # rows far beyond the sampled range: clipped codes
        X[rng.choice(len(X), 40, replace=False)] *= 200.0
    elif kind == "duplicates":  # zero distances and many ties
        X = X[rng.integers(0, 50, len(X))]
    elif kind == "tiny":
        X = X * 1e-20
    elif kind == "huge":
        X = X * 1e20
    return X.astype(dtype)


@pytest.mark.parametrize("kind", ["far", "column scales", "outliers", "duplicates",
                                  "tiny", "huge"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seeds_unchanged_on_hard_data(monkeypatch, kind, dtype):
    if dtype == np.float32 and kind in ("tiny", "huge"):
        pytest.skip("float32 squared distances leave float32's range at this scale")
    X = _hard_data(kind, dtype)
    plain = _seeds(X, 40)
    monkeypatch.setattr(fi, "_QBOUND_FROM_CENTRE", 1)
    monkeypatch.setattr(fi._QuantisedRows, "pays_off", staticmethod(lambda X, k: True))
    assert_array_equal(_seeds(X, 40), plain)
    if kind in ("far", "duplicates"):
        expected = numpy_greedy_kmeans_plusplus(X, 40, None, np.random.default_rng(2))
        assert_array_equal(plain, expected)


def test_codes_and_residual_bounds():
    X = blobs(500, 19, 4, seed=1) + 3.0
    X[0] = X.min(axis=0) - 50.0  # clipped at code 0 in every column
    q = fi._QuantisedRows.build(X, 2)
    lo = X[np.linspace(0, len(X) - 1, min(len(X), fi._SPREAD_SAMPLE)).astype(np.intp)].min(0)
    step = 1.0 / q.inv_step
    assert q.codes.shape == (500, 32) and np.all(q.codes[:, 19:] == 0)
    assert q.codes.max() <= 127 and np.all(q.codes[0, :19] == 0)
    assert_array_equal(q.norms, (q.codes.astype(np.int64) ** 2).sum(1))
    residual = np.linalg.norm(X - lo - step * q.codes[:, :19], axis=1)
    assert np.all(q.errs >= residual)
    assert np.all(q.errs <= residual * (1 + 1e-5) + 1e-12)
    assert np.median(q.errs) < 0.5 * step * np.sqrt(19)


def test_bound_rules_out_most_rows_late_in_the_seeding():
    """On clustered data, once the centres cover the clusters, the bound
    leaves only the rows a candidate may beat to be measured; and no row a
    candidate beats is ever ruled out."""
    from fastem._kernels import load_kernels as load
    hooks = load("_csrc_check")
    X = blobs(20000, 48, 64, seed=9, dtype=np.float32)
    centres = fastem.kmeans_plusplus(X, 64, random_state=0)[1]
    X64 = X.astype(np.float64)
    closest = np.min([((X64 - X64[c]) ** 2).sum(1) for c in centres], axis=0)
    closest = closest.astype(np.float32)
    rng = np.random.default_rng(1)
    cand = rng.choice(len(X), 8, p=closest / closest.sum())
    q = fi._QuantisedRows.build(X, 2)
    _, _, _, qcodes, qnorms, qerrs, inv_step = q.bound(cand)
    todo = np.arange(len(X), dtype=np.int32)
    factor = 1.0 + 1e-4 + 48 * 2.0 ** -23
    maybe = hooks.kpp_qbound(q.codes, q.norms, q.errs, todo, closest, factor, qcodes,
                             qnorms, qerrs, 8, np.float32(inv_step), False)
    d2 = ((X64[:, None, :] - X64[cand][None]) ** 2).sum(-1)
    beaten = (d2 < closest[:, None] * (1 + 1e-6)).any(axis=1)
    assert np.all(maybe[beaten] == 1)
    assert maybe.mean() < 0.25, maybe.mean()


def test_quantize_and_bound_are_checked():
    X = np.ones((10, 40))
    ok = dict(lo=np.zeros(40), step=0.5, codes=np.empty((10, 64), np.uint8),
              norms=np.empty(10, np.int32), errs=np.empty(10, np.float32))
    _kpp.kpp_quantize(X, ok["lo"], ok["step"], ok["codes"], ok["norms"], ok["errs"], 1)
    broken = [dict(lo=np.zeros(39)), dict(step=0.0), dict(step=np.inf),
              dict(codes=np.empty((10, 40), np.uint8)),    # not a block multiple
              dict(codes=np.empty((10, 32), np.uint8)),    # narrower than d
              dict(codes=np.empty((9, 64), np.uint8)), dict(norms=np.empty(11, np.int32)),
              dict(errs=np.empty(9, np.float32))]
    for b in broken:
        a = {**ok, **b}
        with pytest.raises(ValueError, match="kpp_quantize"):
            _kpp.kpp_quantize(X, a["lo"], a["step"], a["codes"], a["norms"], a["errs"], 1)
