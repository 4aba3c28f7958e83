"""Exact M-step statistics for components far from the data mean.

The kernels accumulate the statistics about a reference (float64: the data
mean, or each component's current mean where the data mean would cost
precision; float32: each component's mean) and the M-step corrects exactly
for the move of the mean; a pass is redone about the new means when the
move would cost precision. The
reference here is the numpy two-pass formula on responsibilities computed
with scipy.
"""
import warnings

import numpy as np
import pytest
import sklearn.mixture
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from fastem import GaussianMixture

COV_TYPES = ["full", "tied", "diag", "spherical"]
REG = 1e-6


def _precision_matrix(prec, cov_type, k, D):
    if cov_type == "full":
        return prec[k]
    if cov_type == "tied":
        return prec
    if cov_type == "diag":
        return np.diag(prec[k])
    return np.eye(D) * prec[k]


def two_pass_step(X, weights, means, prec, cov_type):
    """One EM step in float64: scipy densities, two-pass covariances."""
    K, D = means.shape
    logp = np.column_stack([
        np.log(weights[k]) + multivariate_normal(
            means[k], np.linalg.inv(_precision_matrix(prec, cov_type, k, D))).logpdf(X)
        for k in range(K)])
    resp = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
    nk = resp.sum(0) + 10 * np.finfo(np.float64).eps
    mu = resp.T @ X / nk[:, None]
    scatter = np.array([(resp[:, k, None] * (X - mu[k])).T @ (X - mu[k]) for k in range(K)])
    if cov_type == "full":
        cov = scatter / nk[:, None, None] + REG * np.eye(D)
        return mu, np.diagonal(cov, axis1=1, axis2=2)
    if cov_type == "tied":
        return mu, np.diag(scatter.sum(0) / nk.sum()) + REG
    var = np.diagonal(scatter, axis1=1, axis2=2) / nk[:, None] + REG
    return mu, (var if cov_type == "diag" else var.mean(1))


def _variances(gm):
    cov = gm.covariances_
    if gm.covariance_type == "full":
        return np.diagonal(cov, axis1=1, axis2=2)
    if gm.covariance_type == "tied":
        return np.diag(cov)
    return cov


def _far_clusters(offset, D=3, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(2, size=n)
    X = rng.normal(size=(n, D)) + np.where(y[:, None] == 0, -offset, offset)
    means = np.array([[-offset] * D, [offset] * D]) + rng.normal(scale=0.3, size=(2, D))
    return X, means


def _initial_precisions(cov_type, D):
    return {"full": np.array([np.eye(D)] * 2) * 0.8, "tied": np.eye(D) * 0.8,
            "diag": np.full((2, D), 0.8), "spherical": np.full(2, 0.8)}[cov_type]


@pytest.mark.parametrize("offset", [1e6, 1e7])
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_far_clusters_float64_variances_exact(offset, cov_type):
    X, means = _far_clusters(offset)
    weights = np.array([0.5, 0.5])
    prec = _initial_precisions(cov_type, X.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(2, covariance_type=cov_type, max_iter=1, reg_covar=REG,
                             weights_init=weights, means_init=means,
                             precisions_init=prec).fit(X)
    mu, var = two_pass_step(X, weights, means, prec, cov_type)
    np.testing.assert_allclose(gm.means_, mu, rtol=1e-14, atol=1e-9)
    np.testing.assert_allclose(_variances(gm), var, rtol=1e-9)


# 'tied' from single points (k-means++, random_from_data) is left out:
# scikit-learn's initialisation there divides the whole data's scatter by K
# (fastem does the same), so EM starts from one wide component
@pytest.mark.parametrize("cov_type,init_params", [
    (c, i) for c in COV_TYPES for i in ("kmeans", "k-means++", "random_from_data")
    if c != "tied" or i == "kmeans"])
def test_far_clusters_fit_finds_unit_variances(cov_type, init_params):
    # initialisation passes are exact too: the fitted variances of a full
    # fit are those of the data (unit variance), not rounding noise
    X, _ = _far_clusters(1e7, n=600, seed=1)
    gm = GaussianMixture(2, covariance_type=cov_type, init_params=init_params,
                         random_state=0, n_init=3).fit(X)
    assert gm.converged_
    var = _variances(gm)
    assert np.all(np.abs(var - 1) < 0.2), var


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_tight_groups_far_from_mean_fit(cov_type):
    # two tight groups of points at +-1e6 (spread 1e-3): scikit-learn fits
    # them; statistics about the global mean used to raise "singular"
    rng = np.random.default_rng(3)
    groups = [1e6 + 1e-3 * rng.normal(size=(4, 2)), -1e6 + 1e-3 * rng.normal(size=(4, 2))]
    X = np.vstack(groups)
    gm = GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(X)
    order = np.argsort(gm.means_[:, 0])[::-1]
    np.testing.assert_allclose(gm.means_[order], [g.mean(0) for g in groups], rtol=1e-14)
    # two-pass variances of each group (the groups are perfectly separated)
    var = np.array([g.var(0) for g in groups])
    expected = {"full": var + REG, "diag": var + REG, "tied": var.mean(0) + REG,
                "spherical": var.mean(1) + REG}[cov_type]
    got = _variances(gm)
    got = got[order] if cov_type != "tied" else got
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    if cov_type == "full":  # scikit-learn's full covariances are two-pass too
        ref = sklearn.mixture.GaussianMixture(2, random_state=0).fit(X)
        np.testing.assert_allclose(np.sort(_variances(gm).ravel()),
                                   np.sort(_variances(ref).ravel()), rtol=1e-6)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_float32_first_step_from_far_initial_mean(cov_type):
    # a first EM step from initial means far from the data (300 sigma)
    rng = np.random.default_rng(4)
    D = 3
    X = (rng.normal(size=(5000, D)) * [1.0, 2.0, 0.5] + 50.0)
    means = np.array([[350.0] * D, [-250.0] * D])
    weights = np.array([0.5, 0.5])
    prec = _initial_precisions(cov_type, D) * 1e-4
    fits = {}
    for dtype in (np.float32, np.float64):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[dtype] = GaussianMixture(2, covariance_type=cov_type, max_iter=1,
                                          weights_init=weights, means_init=means,
                                          precisions_init=prec).fit(X.astype(dtype))
    np.testing.assert_allclose(_variances(fits[np.float32]), _variances(fits[np.float64]),
                               rtol=1e-4)
    np.testing.assert_allclose(fits[np.float32].means_, fits[np.float64].means_,
                               rtol=1e-5, atol=1e-4)


def _estep_references(monkeypatch, X, cov_type, **kwargs):
    """Whether each statistics pass of a fit took them about the data mean
    (em_pass's centres None) or about per-component references."""
    import fastem._mixture as mixture

    taken = []
    em_pass = mixture._gaussian.em_pass

    def spy(X, sw, shift, cov_type, source, st, centres, *args):
        if st is not None and isinstance(source, mixture._gaussian.EStep):
            taken.append("mean" if centres is None else "components")
        return em_pass(X, sw, shift, cov_type, source, st, centres, *args)

    monkeypatch.setattr(mixture._gaussian, "em_pass", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(2, covariance_type=cov_type, random_state=0, **kwargs).fit(X)
    return taken


@pytest.mark.parametrize("cov_type", ["full", "diag", "spherical"])
def test_float64_statistics_about_the_data_mean_unless_precision_is_lost(monkeypatch,
                                                                         cov_type):
    # clusters near the data mean: every E-step's statistics about the data
    # mean (one GEMM); at +-1e7 with unit spread that would lose the
    # variances, so the passes take them about each component's mean
    near, _ = _far_clusters(3.0, n=600, seed=1)
    assert set(_estep_references(monkeypatch, near, cov_type, max_iter=5)) == {"mean"}
    far, _ = _far_clusters(1e7, n=600, seed=1)
    assert "components" in _estep_references(monkeypatch, far, cov_type, max_iter=5)
    # float32 data sum in float32: always about each component's mean
    taken = _estep_references(monkeypatch, near.astype(np.float32), cov_type, max_iter=5)
    assert set(taken) == {"components"}
