"""Every E-step path of the mixture kernel against a numpy reference.

The kernel (``fastem._kernels._gaussian.em_pass``) picks a path per
(dtype, covariance type, D <= 16 or not, triangle of the Cholesky factors
of the precisions): a register-blocked fused kernel for D <= 16 (upper or
lower factors), a banded GEMM beyond (upper, lower) or for general factors,
and direct loops for 'diag' / 'spherical'. Each path's log-densities and
responsibilities are compared with scipy/numpy on edge sizes (N = 1, N not
a multiple of the chunk, K = 1, D = 1, D = 16 and 17 around the switch).
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from fastem import GaussianMixture
from fastem._mixture import _Engine
from fastem._mixture_mstep import estep_operands

RTOL = {np.float64: 1e-9, np.float32: 2e-4}


def _model(rng, cov, K, D):
    """weights, means and the upper Cholesky factors of the precisions."""
    weights = rng.uniform(0.5, 1.5, K)
    weights /= weights.sum()
    means = rng.normal(scale=3.0, size=(K, D))
    n_fac = K if cov == "full" else 1
    covs = []
    for _ in range(n_fac):
        B = rng.normal(size=(D, D))
        covs.append(B @ B.T / D + 0.5 * np.eye(D))
    covs = np.array(covs)
    # precision = U U^T with U upper (scikit-learn's precisions_cholesky_)
    upper = np.array([np.linalg.inv(np.linalg.cholesky(c)).T for c in covs])
    return weights, means, covs, upper


def _reference_log_prob(X, weights, means, covs, cov):
    """log w_k + log N(x | mu_k, Sigma_k) by scipy, (N, K)."""
    K = means.shape[0]
    return np.column_stack([
        np.log(weights[k]) + multivariate_normal(means[k], covs[k if cov == "full" else 0])
        .logpdf(X).reshape(-1) for k in range(K)])


def _fitted(cov, weights, means, factors, D, dtype):
    gm = GaussianMixture(weights.shape[0], covariance_type=cov)
    gm.weights_ = weights.astype(dtype)
    gm.means_ = means.astype(dtype)
    gm.precisions_cholesky_ = (factors if cov == "full" else factors[0]).astype(dtype)
    gm.n_features_in_ = D
    return gm


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cov", ["full", "tied"])
@pytest.mark.parametrize("D", [1, 3, 16, 17, 40])
@pytest.mark.parametrize("triangle", ["upper", "lower"])
def test_full_and_tied_paths(dtype, cov, D, triangle):
    rng = np.random.default_rng(D * 7 + (cov == "tied"))
    K = 1 if D == 40 else 4
    weights, means, covs, upper = _model(rng, cov, K, D)
    if triangle == "upper":
        factors = upper
    else:
        # the lower Cholesky factor of the same precision: L L^T = U U^T
        factors = np.array([np.linalg.cholesky(u @ u.T) for u in upper])
        assert np.allclose(np.triu(factors, 1), 0.0)
    for n in (1, 1037):
        X = (means[rng.integers(0, K, n)] + rng.normal(size=(n, D))).astype(dtype)
        gm = _fitted(cov, weights, means, factors, D, dtype)
        ref = _reference_log_prob(X.astype(np.float64), weights, means, covs, cov)
        ref_lpn = logsumexp(ref, axis=1)
        got = gm.score_samples(X)
        assert got.dtype == dtype
        assert_allclose(got, ref_lpn, rtol=RTOL[dtype], atol=RTOL[dtype] * D)
        assert_allclose(gm.predict_proba(X), np.exp(ref - ref_lpn[:, None]),
                        atol=50 * RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cov", ["diag", "spherical"])
@pytest.mark.parametrize("D", [1, 5, 16, 17])
def test_diag_and_spherical_paths(dtype, cov, D):
    rng = np.random.default_rng(D + 100 * (cov == "diag"))
    K = 3
    weights = np.array([0.2, 0.5, 0.3])
    means = rng.normal(scale=3.0, size=(K, D))
    var = rng.uniform(0.5, 2.0, (K, D) if cov == "diag" else K)
    covs = np.array([np.diag(v if cov == "diag" else np.full(D, v)) for v in var])
    gm = GaussianMixture(K, covariance_type=cov)
    gm.weights_, gm.means_ = weights.astype(dtype), means.astype(dtype)
    gm.precisions_cholesky_ = (1.0 / np.sqrt(var)).astype(dtype)
    gm.n_features_in_ = D
    for n in (1, 1037):
        X = (means[rng.integers(0, K, n)] + rng.normal(size=(n, D))).astype(dtype)
        ref = np.column_stack([np.log(weights[k]) + multivariate_normal(means[k], covs[k])
                               .logpdf(X.astype(np.float64)).reshape(-1) for k in range(K)])
        ref_lpn = logsumexp(ref, axis=1)
        assert_allclose(gm.score_samples(X), ref_lpn, rtol=RTOL[dtype], atol=RTOL[dtype] * D)
        assert_allclose(gm.predict_proba(X), np.exp(ref - ref_lpn[:, None]),
                        atol=50 * RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cov", ["full", "tied"])
@pytest.mark.parametrize("D", [5, 20])
def test_general_factor_path(dtype, cov, D):
    """A factor that is neither upper nor lower triangular (U Q with Q
    orthogonal: the same precision U Q Q^T U^T) takes the kernel's general
    GEMM path, which no fitted model reaches; its log-densities must be
    those of U."""
    rng = np.random.default_rng(D)
    K = 3
    weights, means, covs, upper = _model(rng, cov, K, D)
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    X = (means[rng.integers(0, K, 1037)] + rng.normal(size=(1037, D))).astype(dtype)
    shift = np.zeros(D, dtype=dtype)
    prec = upper if cov == "full" else upper[0]
    A, crow, const = estep_operands(weights, means, prec, cov, np.zeros(D), dtype)
    # the same operands for U Q: const (log-determinants) from U, A and crow from U Q
    mixed = prec @ Q
    with np.errstate(invalid="ignore"):  # its diagonal is no log-determinant
        A2, crow2, _ = estep_operands(weights, means, mixed, cov, np.zeros(D), dtype)
    assert np.abs(np.tril(mixed.reshape(-1, D, D), -1)).max() > 0.1
    assert np.abs(np.triu(mixed.reshape(-1, D, D), 1)).max() > 0.1
    eng = _Engine(cov, K, D, dtype, 2)
    ref = _reference_log_prob(X.astype(np.float64), weights, means, covs, cov)
    for operands in ((A, crow, const), (A2, crow2, const)):
        lpn = np.empty(X.shape[0], dtype)
        eng.run(X, None, shift, "estep", operands=operands, stats=False, out_lpn=lpn)
        assert_allclose(lpn, logsumexp(ref, axis=1), rtol=RTOL[dtype], atol=RTOL[dtype] * D)
