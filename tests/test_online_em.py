"""GaussianMixture.partial_fit (stepwise online EM) against a numpy
reference of the stepwise update, against batch EM, and across model files."""
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import fastem
from fastem import GaussianMixture
from fastem._mixture_mstep import recentre_statistics

COV_TYPES = ["full", "tied", "diag", "spherical"]
DTYPES = [np.float64, np.float32]


def blobs(n, d, k, *, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 4.0
    scales = rng.uniform(0.5, 1.5, size=(k, 1))
    y = rng.integers(0, k, n)
    return centres[y] + scales[y] * rng.normal(size=(n, d)) + offset


def full_covariances(cov_type, covariances, K, D):
    cov = np.asarray(covariances, dtype=np.float64)
    if cov_type == "full":
        return cov
    if cov_type == "tied":
        return np.tile(cov, (K, 1, 1))
    if cov_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(D) for c in cov])


def reference_statistics(X, w, weights, means, covs):
    """Normalised raw moments of a batch under a mixture (full covariances),
    by brute force: G_k = sum w r / W, S1_k = sum w r x / W and
    S2_k = sum w r x x^T / W."""
    X = X.astype(np.float64)
    logp = np.stack([np.log(weights[k]) + multivariate_normal(means[k], covs[k]).logpdf(X)
                     for k in range(len(covs))], axis=1)
    r = np.exp(logp - logsumexp(logp, axis=1, keepdims=True)) * w[:, None]
    W = w.sum()
    return r.sum(0) / W, r.T @ X / W, np.einsum("nk,ni,nj->kij", r, X, X) / W


def reference_m_step(G, S1, S2, cov_type, reg):
    mu = S1 / G[:, None]
    scatter = S2 / G[:, None, None] - mu[:, :, None] * mu[:, None, :]
    D = mu.shape[1]
    if cov_type == "full":
        cov = scatter + reg * np.eye(D)
    elif cov_type == "tied":
        cov = np.einsum("k,kij->ij", G, scatter) / G.sum() + reg * np.eye(D)
    elif cov_type == "diag":
        cov = np.diagonal(scatter, axis1=1, axis2=2) + reg
    else:
        cov = np.diagonal(scatter, axis1=1, axis2=2).mean(1) + reg
    return G / G.sum(), mu, cov


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cov", COV_TYPES)
def test_steps_equal_numpy_reference_of_stepwise_em(cov, dtype):
    X = blobs(1500, 3, 3, seed=1, offset=5.0).astype(dtype)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(X)).astype(dtype)
    init = _init_arrays(X, cov)
    kappa, t0 = 0.7, 2.0
    gm = GaussianMixture(3, covariance_type=cov, learning_decay=kappa,
                         learning_offset=t0, reg_covar=1e-4, **init)
    # parameters of the E-step: the initial ones, then those of each step
    weights, means = init["weights_init"], init["means_init"]
    covs = full_covariances(cov, np.linalg.inv(init["precisions_init"]) if cov in
                            ("full", "tied") else 1.0 / init["precisions_init"], 3, 3)
    rtol = 1e-8 if dtype == np.float64 else 2e-4
    s = None
    for t, start in enumerate(range(0, 1500, 500)):
        batch, wb = X[start:start + 500], w[start:start + 500]
        stats = reference_statistics(batch, wb.astype(np.float64), weights, means, covs)
        # s <- (1 - rho_t) s + rho_t stats, rho = 1 for the first batch
        rho = 1.0 if t == 0 else (t + t0) ** -kappa
        s = stats if s is None else [(1 - rho) * a + rho * b for a, b in zip(s, stats)]
        gm.partial_fit(batch, sample_weight=wb)
        expected = reference_m_step(*s, cov, 1e-4)
        for name, value in zip(("weights_", "means_", "covariances_"), expected):
            assert_allclose(getattr(gm, name), value, rtol=rtol, atol=rtol)
        assert_allclose(gm.suff_stats_[:, 0], s[0], rtol=rtol)
        assert gm.n_steps_ == t + 1
        weights, means = gm.weights_.astype(np.float64), gm.means_.astype(np.float64)
        covs = full_covariances(cov, gm.covariances_, 3, 3)


def _init_arrays(X, cov, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = GaussianMixture(3, covariance_type=cov, max_iter=2, random_state=seed).fit(X)
    return dict(weights_init=g.weights_.astype(np.float64),
                means_init=g.means_.astype(np.float64),
                precisions_init=g.precisions_.astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cov", COV_TYPES)
def test_step_with_rho_one_is_one_batch_em_iteration(cov, dtype):
    X = blobs(2000, 3, 3, seed=3).astype(dtype)
    init = _init_arrays(X, cov)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=1 does not converge
        batch = GaussianMixture(3, covariance_type=cov, max_iter=1, **init).fit(X[:1000])
    online = GaussianMixture(3, covariance_type=cov, **init).partial_fit(X[:1000])
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert_allclose(getattr(online, name), getattr(batch, name), rtol=rtol, atol=rtol)
    assert online.lower_bound_ == pytest.approx(batch.lower_bound_, rel=1e-9)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_later_step_with_rho_one_is_one_batch_em_iteration(cov):
    X = blobs(2000, 3, 3, seed=4)
    online = GaussianMixture(3, covariance_type=cov, learning_offset=0.0, random_state=0)
    online.partial_fit(X[:1000])  # rho = (1 + 0) ** -kappa = 1 next
    start = dict(weights_init=online.weights_, means_init=online.means_,
                 precisions_init=online.precisions_)
    online.partial_fit(X[1000:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = GaussianMixture(3, covariance_type=cov, max_iter=1, **start).fit(X[1000:])
    for name in ("weights_", "means_", "covariances_"):
        assert_allclose(getattr(online, name), getattr(batch, name), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("layout", ["full", "diag", "spherical"])
def test_recentred_statistics_equal_statistics_about_the_new_reference(layout):
    rng = np.random.default_rng(5)
    K, D, n = 3, 4, 60
    X, r = rng.normal(size=(n, D)) + 50.0, rng.random((n, K))
    old, new = rng.normal(size=(K, D)) + 50.0, rng.normal(size=(K, D)) + 50.0

    def stats(ref):
        rows = []
        for k in range(K):
            Y = X - ref[k]
            if layout == "full":
                S2 = np.einsum("n,ni,nj->ij", r[:, k], Y, Y)[np.triu_indices(D)]
            elif layout == "diag":
                S2 = r[:, k] @ Y ** 2
            else:
                S2 = [r[:, k] @ (Y ** 2).sum(1)]
            rows.append(np.r_[r[:, k].sum(), r[:, k] @ Y, S2])
        return np.array(rows)

    assert_allclose(recentre_statistics(stats(old), old, new, layout), stats(new),
                    rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cov", COV_TYPES)
def test_save_load_and_pickle_continue_the_stream_bit_identically(cov, dtype, tmp_path):
    X = blobs(3000, 4, 3, seed=6).astype(dtype)
    gm = GaussianMixture(3, covariance_type=cov, random_state=0)
    gm.partial_fit(X[:1000]).partial_fit(X[1000:2000])
    loaded = fastem.load(gm.save(tmp_path / "gm.npz"))
    pickled = pickle.loads(pickle.dumps(gm))
    for est in (gm, loaded, pickled):
        est.partial_fit(X[2000:])
    for other in (loaded, pickled):
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                     "suff_stats_", "suff_stats_ref_"):
            assert_array_equal(getattr(other, name), getattr(gm, name))
        assert other.n_steps_ == gm.n_steps_ == 3
    assert loaded.means_.dtype == dtype and loaded.suff_stats_.dtype == np.float64


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cov", COV_TYPES)
def test_held_out_likelihood_improves_over_an_epoch(cov, dtype):
    X = blobs(42000, 5, 4, seed=7).astype(dtype)
    train, held_out = X[:40000], X[40000:]
    gm = GaussianMixture(4, covariance_type=cov, random_state=0)
    gm.partial_fit(train[:1000])
    first = gm.score(held_out)
    for start in range(1000, len(train), 1000):
        gm.partial_fit(train[start:start + 1000])
    final = gm.score(held_out)
    assert final > first
    batch = GaussianMixture(4, covariance_type=cov, random_state=0).fit(train)
    assert final > batch.score(held_out) - 0.02
    # every method works on the streamed model
    assert gm.predict_proba(held_out).shape == (2000, 4)
    assert np.isfinite(gm.bic(held_out)) and gm.sample(5)[0].shape == (5, 5)
    assert gm.n_iter_ == gm.n_steps_ == 40 and not gm.converged_


def test_fit_ends_a_stream_and_partial_fit_after_fit_starts_one():
    X = blobs(3000, 3, 3, seed=8)
    gm = GaussianMixture(3, random_state=0).partial_fit(X[:1000])
    gm.fit(X)
    assert not hasattr(gm, "suff_stats_") and not hasattr(gm, "n_steps_")
    converged = gm.score(X)
    gm.partial_fit(X)  # from the fitted parameters, rho = 1: one EM iteration
    assert gm.n_steps_ == 1
    assert gm.score(X) == pytest.approx(converged, abs=1e-3)


def test_partial_fit_rejects_changed_input_and_keeps_state():
    X = blobs(1000, 3, 2, seed=9)
    gm = GaussianMixture(2, random_state=0).partial_fit(X)
    before = gm.means_.copy()
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is "
                                         "expecting 3 features"):
        gm.partial_fit(X[:, :2])
    with pytest.raises(ValueError, match="dtype float32.*float64"):
        gm.partial_fit(X.astype(np.float32))
    gm.set_params(covariance_type="diag")
    with pytest.raises(ValueError, match="same n_components and covariance_type"):
        gm.partial_fit(X)
    gm.set_params(covariance_type="full")
    with pytest.raises(ValueError, match="negative"):
        gm.partial_fit(X, sample_weight=-np.ones(len(X)))
    assert_array_equal(gm.means_, before)
    assert gm.n_steps_ == 1
    with pytest.raises(ValueError, match="n_components=5 must be <= n_samples=4"):
        GaussianMixture(5).partial_fit(X[:4])


@pytest.mark.parametrize("params,match", [
    ({"learning_decay": 0.5}, "learning_decay must be > 0.5"),
    ({"learning_decay": 1.5}, "learning_decay must be in \\(0.5, 1\\]"),
    ({"learning_decay": "fast"}, "learning_decay must be a real number"),
    ({"learning_offset": -1.0}, "learning_offset must be >= 0"),
])
def test_bad_schedule_parameters(params, match):
    X = blobs(100, 2, 2, seed=10)
    with pytest.raises((ValueError, TypeError), match=match):
        GaussianMixture(2, **params).partial_fit(X)


def test_inconsistent_stream_state_raises(tmp_path):
    X = blobs(500, 3, 2, seed=11)
    gm = GaussianMixture(2, random_state=0).partial_fit(X)
    gm.suff_stats_ = gm.suff_stats_[:, :-1]
    with pytest.raises(ValueError, match="suff_stats_ has shape"):
        gm.partial_fit(X)
    gm = GaussianMixture(2, random_state=0).partial_fit(X)
    gm.suff_stats_[0, 0] = -1.0
    with pytest.raises(ValueError, match="negative component weight"):
        gm.predict(X)
    gm = GaussianMixture(2, random_state=0).partial_fit(X)
    del gm.suff_stats_ref_
    with pytest.raises(ValueError, match="suff_stats_ref_ is missing"):
        gm.save(tmp_path / "gm.npz")
    assert not (tmp_path / "gm.npz").exists()
