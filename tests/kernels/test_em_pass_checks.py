"""em_pass checks every operand it will index before compiled code runs."""
import numpy as np
import pytest

from fastem._kernels import load_kernels
from fastem._mixture_mstep import estep_operands

_g = load_kernels("_gaussian")


def _setup(dtype=np.float64, N=50, D=3, K=2):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D)).astype(dtype)
    shift = X.mean(axis=0).astype(dtype)
    weights = np.full(K, 1.0 / K)
    means = rng.normal(size=(K, D))
    prec_chol = np.ones((K, D))
    operands = estep_operands(weights, means, prec_chol, "diag", shift, dtype)
    return X, shift, _g.EStep(*operands)


def _stats(cov, K, D):
    return np.empty((K, _g.n_stat_features(_g.COV_TYPES[cov], D)))


def test_labels_outside_0_K_are_refused():
    X, shift, _ = _setup()
    for bad in (-1, 2):
        labels = np.zeros(X.shape[0], dtype=np.int32)
        labels[7] = bad
        with pytest.raises(ValueError, match=r"labels must lie in \[0, K\)"):
            _g.em_pass(X, None, shift, "diag", _g.Labels(labels, 2), _stats("diag", 2, 3))


def test_labels_give_the_one_hot_statistics():
    X, shift, _ = _setup()
    labels = (np.arange(X.shape[0]) % 2).astype(np.int32)
    st = _stats("diag", 2, 3)
    _g.em_pass(X, None, shift, "diag", _g.Labels(labels, 2), st)
    for k in range(2):
        xc = X[labels == k] - shift
        np.testing.assert_allclose(st[k, 0], (labels == k).sum())
        np.testing.assert_allclose(st[k, 1:4], xc.sum(axis=0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(st[k, 4:], (xc ** 2).sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("case, message", [
    ("cov", "unknown covariance type"),
    ("stats", "stats must be float64"),
    ("shift", "shift must have D entries"),
    ("weights", "sample_weight must have N entries"),
    ("centres", r"centres must be \(K, D\)"),
    ("operands", "E-step operands of the wrong shape"),
    ("resp", r"resp must be \(N, K\)"),
    ("triangle", "unknown triangle"),
    ("outputs", "row outputs need an E-step"),
    ("chunk", "chunk and n_threads must be >= 1"),
])
def test_wrong_operands_are_refused(case, message):
    X, shift, estep = _setup()
    N, D = X.shape
    args = dict(sample_weight=None, shift=shift, cov_type="diag", source=estep,
                stats=_stats("diag", 2, D), centres=None, outputs=None, chunk=16)
    if case == "cov":
        args["cov_type"] = "round"
    elif case == "stats":
        args["stats"] = np.empty((3, 2 * D + 1))
    elif case == "shift":
        args["shift"] = shift[:2].copy()
    elif case == "weights":
        args["sample_weight"] = np.ones(N - 1)
    elif case == "centres":
        args["centres"] = np.zeros((2, D + 1))
    elif case == "operands":
        args["source"] = estep._replace(A=np.zeros((3, D)))
    elif case == "resp":
        args["source"] = _g.Given(np.full((N - 1, 2), 0.5))
    elif case == "triangle":
        args["source"] = estep._replace(triangle="diagonal")
    elif case == "outputs":
        args["source"] = _g.Given(np.full((N, 2), 0.5))
        args["outputs"] = _g.RowOutputs(log_prob=np.empty(N))
    elif case == "chunk":
        args["chunk"] = 0
    with pytest.raises(ValueError, match=message):
        _g.em_pass(X, **args)


def test_an_unknown_source_is_a_type_error():
    X, shift, _ = _setup()
    with pytest.raises(TypeError, match="source must be EStep, Given, Labels or Ones"):
        _g.em_pass(X, None, shift, "diag", np.zeros((X.shape[0], 2)), _stats("diag", 2, 3))


def test_data_of_another_dtype_is_refused():
    X, shift, estep = _setup(np.float64)
    with pytest.raises(ValueError):
        _g.em_pass(X, np.ones(X.shape[0], np.float32), shift, "diag", estep,
                   _stats("diag", 2, 3))
