"""Every K-means kernel entry point checks the shapes, counts and state it
relies on before compiled code (built without bounds checks) touches memory.

Each case calls a kernel once with consistent operands (it must work) and
then with one operand broken at a time: the kernel must raise ValueError
naming itself, and leave no NaN or partial result behind that the caller
could mistake for an answer. (em_pass has its own file,
test_em_pass_checks.py.)
"""
import numpy as np
import pytest

from fastem._kernels import load_kernels

_lloyd = load_kernels("_lloyd")
_bounded = load_kernels("_bounded")
_kpp = load_kernels("_kmeanspp")
_stats = load_kernels("_stats")

N, D, K = 50, 3, 4


@pytest.fixture
def ops():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D))
    return dict(X=X, sw=np.empty(0), shift=np.empty(0), centres=X[:K].copy(),
                labels=np.full(N, -1, np.int32), sums=np.empty((K, D)),
                weights=np.empty(K), chunk=16, threads=2)


def _lloyd_call(o):
    return _lloyd.lloyd_pass(o["X"], o["sw"], o["shift"], o["centres"], o["labels"],
                             o["sums"], o["weights"], np.nan, o["chunk"], o["threads"])


BROKEN_PASS = {
    "no rows": dict(X=np.empty((0, D))),
    "weights": dict(sw=np.ones(N - 1)),
    "shift": dict(shift=np.zeros(D + 1)),
    "centre width": dict(centres=np.zeros((K, D + 1))),
    "no centres": dict(centres=np.zeros((0, D))),
    "labels": dict(labels=np.zeros(N + 1, np.int32)),
    "sums": dict(sums=np.empty((K + 1, D))),
    "weights out": dict(weights=np.empty(K - 1)),
    "chunk": dict(chunk=0),
    "threads": dict(threads=0),
}


@pytest.mark.parametrize("broken", list(BROKEN_PASS))
def test_lloyd_pass_checks(ops, broken):
    _lloyd_call(ops)
    with pytest.raises(ValueError, match="lloyd_pass"):
        _lloyd_call({**ops, **BROKEN_PASS[broken]})


def _bounded_call(o, fresh=True, labels=None, half_sep=None, upper=None, lower=None):
    n, k = o["X"].shape[0], o["centres"].shape[0]
    moves = _bounded.CentreMoves(np.zeros(k) if half_sep is None else half_sep,
                                 np.zeros(k), fresh)
    bounds = _bounded.RowBounds(np.zeros(n) if upper is None else upper,
                                np.zeros((n, 2)) if lower is None else lower,
                                o["labels"] if labels is None else labels)
    return _bounded.bounded_pass(o["X"], o["sw"], o["shift"], o["centres"], moves,
                                 bounds, o["sums"], o["weights"], o["chunk"],
                                 o["threads"])


@pytest.mark.parametrize("broken", list(BROKEN_PASS))
def test_bounded_pass_checks(ops, broken):
    _bounded_call(ops)
    with pytest.raises(ValueError, match="bounded_pass"):
        _bounded_call({**ops, **BROKEN_PASS[broken]})


def test_bounded_pass_checks_its_bounds_and_state(ops):
    _bounded_call(ops)                        # fresh: labels written by the pass
    _bounded_call(ops, fresh=False)           # the state it wrote is accepted
    with pytest.raises(ValueError, match="half_sep"):
        _bounded_call(ops, half_sep=np.zeros(K + 1))
    with pytest.raises(ValueError, match="upper"):
        _bounded_call(ops, upper=np.zeros(N - 1))
    for lower in (np.zeros((N - 1, 2)), np.zeros((N, 0))):  # rows, and no bound
        with pytest.raises(ValueError, match="lower"):
            _bounded_call(ops, lower=lower)
    for bad in (K, -1, 2**31 - 1):            # labels no pass wrote
        labels = ops["labels"].copy()
        labels[N - 3] = bad
        with pytest.raises(ValueError, match=r"labels outside \[0, k\)"):
            _bounded_call(ops, fresh=False, labels=labels)


def test_bounded_labels_pass_checks():
    """Operands, a fresh state (no bounds yet) and labels no pass wrote are
    refused; so is a width where lloyd_pass computes distances directly."""
    n, d, k = 50, 12, 4
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, d))
    o = dict(X=X, sw=np.empty(0), shift=np.empty(0), centres=X[:k].copy(),
             half_sep=np.zeros(k), drift=np.zeros(k), fresh=False, upper=np.zeros(n),
             lower=np.zeros((n, 2)), labels=np.zeros(n, np.int32), chunk=16, threads=2)

    def call(**broken):
        a = {**o, **broken}
        return _bounded.bounded_labels_pass(
            a["X"], a["sw"], a["shift"], a["centres"],
            _bounded.CentreMoves(a["half_sep"], a["drift"], a["fresh"]),
            _bounded.RowBounds(a["upper"], a["lower"], a["labels"]), a["chunk"],
            a["threads"])

    if not _bounded.bounded_labels_available(d, 8):
        pytest.skip("the GEMM path: the fits never call it")
    call()
    for broken in [dict(X=np.empty((0, d))), dict(sw=np.ones(n - 1)),
                   dict(shift=np.zeros(d + 1)), dict(centres=np.zeros((k, d + 1))),
                   dict(centres=np.zeros((0, d))), dict(half_sep=np.zeros(k + 1)),
                   dict(drift=np.zeros(k - 1)), dict(fresh=True), dict(upper=np.zeros(n - 1)),
                   dict(lower=np.zeros((n + 1, 2))), dict(lower=np.zeros((n, 0))),
                   dict(labels=np.zeros(n - 1, np.int32)),
                   dict(chunk=0), dict(threads=0),
                   dict(X=X[:, :3].copy(), centres=X[:k, :3].copy())]:
        with pytest.raises(ValueError, match="bounded_labels_pass"):
            call(**broken)
    for bad in (k, -1, 2**31 - 1):
        labels = o["labels"].copy()
        labels[n - 3] = bad
        with pytest.raises(ValueError, match=r"labels outside \[0, k\)"):
            call(labels=labels)


def test_distance_kernels_check(ops):
    X, C = ops["X"], ops["centres"]
    out = np.empty((N, K))
    _lloyd.pairwise_sqdist(X, np.empty(0), C, out, 16, 2)
    for args in [(X, np.empty(0), C, np.empty((N, K + 1)), 16, 2),
                 (X, np.zeros(D - 1), C, out, 16, 2),
                 (X, np.empty(0), np.zeros((K, D + 1)), out, 16, 2),
                 (np.empty((0, D)), np.empty(0), C, out[:0], 16, 2),
                 (X, np.empty(0), C, out, 0, 2)]:
        with pytest.raises(ValueError, match="pairwise_sqdist"):
            _lloyd.pairwise_sqdist(*args)
    labels = np.arange(N, dtype=np.int32) % K
    dist = np.empty(N)
    _lloyd.assigned_sqdist(X, C, labels, dist, 2)
    np.testing.assert_allclose(dist, ((X - C[labels]) ** 2).sum(axis=1), rtol=1e-12)
    for bad in (K, -1):
        broken = labels.copy()
        broken[7] = bad
        with pytest.raises(ValueError, match=r"assigned_sqdist: labels must lie"):
            _lloyd.assigned_sqdist(X, C, broken, dist, 2)
    with pytest.raises(ValueError, match="assigned_sqdist"):
        _lloyd.assigned_sqdist(X, C, labels[:-1], dist, 2)


def test_column_moments_checks(ops):
    X = ops["X"]
    s1, s2 = np.empty(D), np.empty(D)
    assert _stats.column_moments(X, np.empty(0), np.zeros(D), s1, s2, 16, 2) == N
    for args in [(X, np.ones(N + 1), np.zeros(D), s1, s2, 16, 2),
                 (X, np.empty(0), np.zeros(D + 1), s1, s2, 16, 2),
                 (X, np.empty(0), np.zeros(D), s1[:1], s2, 16, 2),
                 (np.empty((0, D)), np.empty(0), np.zeros(D), s1, s2, 16, 2),
                 (X, np.empty(0), np.zeros(D), s1, s2, 16, 0)]:
        with pytest.raises(ValueError, match="column_moments"):
            _stats.column_moments(*args)


def _kpp_state(X, chunk=16):
    n_chunks = -(-X.shape[0] // chunk)
    return dict(closest=np.empty(X.shape[0], np.float32),
                nearest=np.empty(X.shape[0], np.uint16),
                improves=np.zeros(X.shape[0], np.uint16),
                chunk_pot=np.empty(n_chunks), chunk_pots=np.empty((n_chunks, 2)),
                potentials=np.empty(2))


def test_kpp_kernels_check_operands_and_state(ops):
    X = ops["X"]
    s = _kpp_state(X)
    _kpp.kpp_init_closest(X, np.empty(0), X[0], s["closest"], s["nearest"],
                          s["chunk_pot"], 16, 2, 1.0)
    for broken in [dict(centre=X[0, :-1]), dict(closest=s["closest"][:-1]),
                   dict(chunk_pot=s["chunk_pot"][:-1]), dict(chunk=0)]:
        a = dict(centre=X[0], closest=s["closest"], chunk_pot=s["chunk_pot"], chunk=16)
        a.update(broken)
        with pytest.raises(ValueError, match="kpp_init_closest"):
            _kpp.kpp_init_closest(X, np.empty(0), a["centre"], a["closest"], s["nearest"],
                                  a["chunk_pot"], a["chunk"], 2, 1.0)
    cand = X[[5, 9]]
    quarter = ((X[[0]][:, None, :] - cand[None]) ** 2).sum(axis=2) / 4

    def potentials(**broken):
        a = dict(cand=cand, quarter=quarter, nearest=s["nearest"], last=(X[0], 0, 0),
                 out=(s["chunk_pots"], s["potentials"]), bound=None)
        a.update(broken)
        _kpp.kpp_candidate_potentials(X, np.empty(0), a["cand"], a["quarter"],
                                      s["closest"], a["nearest"], s["improves"],
                                      a["last"], a["out"], 16, 2, 1.0, a["bound"])

    potentials()
    np.testing.assert_allclose(
        s["potentials"],
        [np.minimum(((X - X[0]) ** 2).sum(axis=1), ((X - q) ** 2).sum(axis=1)).sum()
         for q in cand], rtol=1e-5)
    for broken in [dict(cand=X[[5, 9, 11]]), dict(quarter=quarter[:, :1]),
                   dict(last=(X[0], 1, 0)), dict(last=(X[0, :1], 1, 0)),
                   dict(out=(s["chunk_pots"][:-1], s["potentials"])),
                   dict(out=(s["chunk_pots"], s["potentials"][:1]))]:
        with pytest.raises(ValueError, match="kpp_candidate_potentials"):
            potentials(**broken)
    # the quantised bound's codes (fastem._init._QuantisedRows)
    codes, norms, errs = np.zeros((N, 32), np.uint8), np.zeros(N, np.int32), np.zeros(N, np.float32)
    qcodes, qnorms, qerrs = np.zeros((8, 32), np.int8), np.zeros(8, np.int32), np.zeros(8, np.float32)
    bound = (codes, norms, errs, qcodes, qnorms, qerrs, 1.0)
    potentials(bound=bound)
    for i, b in [(0, codes[:-1]), (0, np.zeros((N, 40), np.uint8)), (0, codes[:, :0]),
                 (1, norms[:-1]), (2, errs[1:]), (3, qcodes[:1]), (3, np.zeros((8, 64), np.int8)),
                 (3, np.zeros((9, 32), np.int8)), (4, qnorms[:7]), (5, qerrs[:7]),
                 (6, 0.0), (6, np.inf), (6, np.nan)]:
        with pytest.raises(ValueError, match="kpp_candidate_potentials"):
            potentials(bound=bound[:i] + (b,) + bound[i + 1:])
    corrupt = s["nearest"].copy()
    corrupt[N - 2] = 1                        # only centre 0 has been chosen
    with pytest.raises(ValueError, match="nearest holds indices"):
        potentials(nearest=corrupt)
    with pytest.raises(ValueError, match="kpp_settle_rows"):
        _kpp.kpp_settle_rows(X, X[0], 1, 0, s["improves"], s["closest"], s["nearest"],
                             0, N + 1, 1.0)
    with pytest.raises(ValueError, match="kpp_settle_rows"):
        _kpp.kpp_settle_rows(X, X[0], 70000, 0, s["improves"], s["closest"],
                             s["nearest"], 0, N, 1.0)
