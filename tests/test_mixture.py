"""fastem.GaussianMixture: parity with scikit-learn, EM properties, bad input."""
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats as sps
from scipy.special import logsumexp

from fastem import ConvergenceWarning, GaussianMixture, NotFittedError
from fastem._app.io import faithful_path

import sklearn.mixture as sk_mixture

COV_TYPES = ["full", "tied", "diag", "spherical"]
FAITHFUL = faithful_path()  # the installed copy: the tests also run outside the source tree


def blobs(n, d, k, seed=0, scale=3.0, offset=0.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=scale, size=(k, d)) + offset
    lab = rng.integers(0, k, n)
    return centers[lab] + rng.normal(size=(n, d)) * rng.uniform(0.5, 1.5, size=(k, d))[lab]


def faithful():
    return np.loadtxt(FAITHFUL, delimiter=",", skiprows=1)


def init_params(X, k, cov, seed=0):
    """Initial parameters: K data points as means, the data (co)variance."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    means = X[rng.choice(n, size=k, replace=False)].astype(np.float64)
    cov_x = np.atleast_2d(np.cov(X.astype(np.float64), rowvar=False))
    weights = rng.uniform(0.5, 1.5, size=k)
    weights /= weights.sum()
    if cov == "full":
        prec = np.tile(np.linalg.inv(cov_x), (k, 1, 1)) * rng.uniform(0.5, 2, size=(k, 1, 1))
    elif cov == "tied":
        prec = np.linalg.inv(cov_x)
    elif cov == "diag":
        prec = (1.0 / np.diag(cov_x)) * rng.uniform(0.5, 2, size=(k, 1))
    else:
        prec = rng.uniform(0.5, 2, size=k) / np.mean(np.diag(cov_x))
    return dict(weights_init=weights, means_init=means, precisions_init=prec)


def fit_both(X, k, cov, max_iter=10, **extra):
    init = init_params(X, k, cov)
    kw = dict(n_components=k, covariance_type=cov, tol=0.0, max_iter=max_iter, **init, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = sk_mixture.GaussianMixture(**kw).fit(X)
        fe = GaussianMixture(**kw).fit(X)
    return sk, fe


DATASETS = {
    "blobs_1037": lambda: blobs(1037, 3, 4),          # N not a multiple of any chunk
    "blobs_50003": lambda: blobs(50003, 2, 3, seed=1),  # several rounds of chunks
    "faithful": faithful,
}


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("data", sorted(DATASETS))
def test_parity_with_sklearn_float64(cov, data):
    X = DATASETS[data]()
    k = 2 if data == "faithful" else 3
    sk, fe = fit_both(X, k, cov, max_iter=8)
    rtol = 1e-8
    assert len(fe.lower_bounds_) == len(sk.lower_bounds_) == 8
    assert_allclose(fe.lower_bounds_, sk.lower_bounds_, rtol=rtol)
    assert_allclose(fe.lower_bound_, sk.lower_bound_, rtol=rtol)
    assert_allclose(fe.weights_, sk.weights_, rtol=rtol)
    assert_allclose(fe.means_, sk.means_, rtol=rtol, atol=1e-10)
    assert_allclose(fe.covariances_, sk.covariances_, rtol=rtol, atol=1e-12)
    assert_allclose(fe.precisions_, sk.precisions_, rtol=rtol, atol=1e-12)
    assert_allclose(fe.precisions_cholesky_, sk.precisions_cholesky_, rtol=rtol, atol=1e-12)
    assert_allclose(fe.predict_proba(X), sk.predict_proba(X), rtol=rtol, atol=1e-12)
    assert_allclose(fe.score_samples(X), sk.score_samples(X), rtol=rtol)
    assert_allclose(fe.score(X), sk.score(X), rtol=rtol)
    assert_array_equal(fe.predict(X), sk.predict(X))
    assert_allclose(fe.bic(X), sk.bic(X), rtol=rtol)
    assert_allclose(fe.aic(X), sk.aic(X), rtol=rtol)
    assert fe.n_iter_ == sk.n_iter_
    assert fe.means_.dtype == np.float64


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("data", ["blobs_1037", "faithful"])
def test_parity_with_sklearn_float32(cov, data):
    """float32 in, float32 out, within 1e-4 of scikit-learn.

    The reference is scikit-learn on the same (float32) values in float64:
    scikit-learn's own float32 path is itself off by more than 1e-4 in places
    (e.g. 'tied' on Old Faithful, where E[x x^T] - mu mu^T cancels in float32),
    while fastem accumulates about each component's mean (float32 sums over
    at most 64 rows, then float64). The lower bounds, weights and means
    are also checked against scikit-learn's float32 run.
    """
    X = DATASETS[data]().astype(np.float32)
    k = 2 if data == "faithful" else 3
    sk32, fe = fit_both(X, k, cov, max_iter=8)
    sk, _ = fit_both(X.astype(np.float64), k, cov, max_iter=8)
    rtol = 1e-4
    for ref in (sk, sk32):
        assert_allclose(fe.lower_bounds_, ref.lower_bounds_, rtol=rtol)
        assert_allclose(fe.weights_, ref.weights_, rtol=rtol)
        assert_allclose(fe.means_, ref.means_, rtol=rtol, atol=1e-4)
    assert_allclose(fe.covariances_, sk.covariances_, rtol=rtol, atol=1e-5)
    assert_allclose(fe.precisions_cholesky_, sk.precisions_cholesky_, rtol=rtol, atol=1e-5)
    assert_allclose(fe.predict_proba(X), sk.predict_proba(X), rtol=rtol, atol=1e-5)
    assert_allclose(fe.score_samples(X), sk.score_samples(X), rtol=rtol)
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(fe, attr).dtype == np.float32, attr
    assert fe.predict_proba(X).dtype == np.float32
    assert fe.score_samples(X).dtype == np.float32


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("n_features", [1, 7, 8, 9, 16, 17, 20])
def test_parity_feature_counts_around_vector_widths(cov, n_features):
    """The statistics kernels pad rows to whole 64-byte vectors (8 float64,
    16 float32) and update S2 in blocks of 8 rows: D on both sides of those
    widths, in both dtypes, against scikit-learn (float64)."""
    X = blobs(1501, n_features, 3, seed=n_features)
    sk, fe = fit_both(X, 3, cov, max_iter=3)
    assert_allclose(fe.lower_bounds_, sk.lower_bounds_, rtol=1e-8)
    assert_allclose(fe.means_, sk.means_, rtol=1e-8, atol=1e-10)
    assert_allclose(fe.covariances_, sk.covariances_, rtol=1e-8, atol=1e-12)
    X32 = X.astype(np.float32)
    _, fe32 = fit_both(X32, 3, cov, max_iter=3)
    sk64, _ = fit_both(X32.astype(np.float64), 3, cov, max_iter=3)
    assert_allclose(fe32.lower_bounds_, sk64.lower_bounds_, rtol=1e-4)
    assert_allclose(fe32.means_, sk64.means_, rtol=1e-4, atol=1e-4)
    assert_allclose(fe32.covariances_, sk64.covariances_, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_monotone_log_likelihood_warm_started_single_steps(cov):
    X = blobs(600, 2, 3, seed=2)
    gm = GaussianMixture(3, covariance_type=cov, reg_covar=0.0, max_iter=1, tol=0.0,
                         warm_start=True, init_params="random", random_state=0)
    bounds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(200):
            gm.fit(X)
            bounds.append(gm.lower_bound_)
    bounds = np.array(bounds)
    assert np.all(np.isfinite(bounds))
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])), np.diff(bounds).min()


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_single_component_is_sample_mean_and_covariance(cov, dtype):
    X = blobs(777, 3, 2, seed=3).astype(dtype)
    reg = 1e-3
    gm = GaussianMixture(1, covariance_type=cov, reg_covar=reg).fit(X)
    X64 = X.astype(np.float64)
    emp = np.cov(X64, rowvar=False, bias=True)
    expected = {
        "full": (emp + reg * np.eye(3))[None],
        "tied": emp + reg * np.eye(3),
        "diag": (np.diag(emp) + reg)[None],
        "spherical": np.array([np.diag(emp).mean() + reg]),
    }[cov]
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert_allclose(gm.means_[0], X64.mean(axis=0), rtol=rtol, atol=rtol)
    assert_allclose(gm.covariances_, expected, rtol=rtol, atol=rtol)
    assert_allclose(gm.weights_, [1.0])
    assert gm.converged_


@pytest.mark.parametrize("cov", COV_TYPES)
def test_score_samples_matches_scipy(cov):
    X = blobs(300, 3, 3, seed=4)
    gm = GaussianMixture(3, covariance_type=cov, random_state=0,
                         init_params="random_from_data").fit(X)
    covs = gm.covariances_
    if cov == "full":
        full = covs
    elif cov == "tied":
        full = np.repeat(covs[None], 3, axis=0)
    elif cov == "diag":
        full = np.array([np.diag(c) for c in covs])
    else:
        full = np.array([c * np.eye(3) for c in covs])
    logp = np.column_stack([
        np.log(gm.weights_[k]) + sps.multivariate_normal(gm.means_[k], full[k]).logpdf(X)
        for k in range(3)
    ])
    expected = logsumexp(logp, axis=1)
    assert_allclose(gm.score_samples(X), expected, rtol=1e-10)
    assert_allclose(gm.predict_proba(X), np.exp(logp - expected[:, None]), rtol=1e-9,
                    atol=1e-14)
    assert_allclose(gm.score(X), expected.mean(), rtol=1e-10)
    w = np.random.default_rng(0).uniform(size=300)
    assert_allclose(gm.score(X, sample_weight=w), np.average(expected, weights=w), rtol=1e-10)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_integer_sample_weight_equals_repeated_rows(cov):
    X = blobs(500, 2, 3, seed=5)
    w = np.random.default_rng(1).integers(0, 4, size=500)
    Xrep = np.repeat(X, w, axis=0)
    init = init_params(X, 3, cov)
    kw = dict(n_components=3, covariance_type=cov, tol=0.0, max_iter=15, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GaussianMixture(**kw).fit(X, sample_weight=w)
        b = GaussianMixture(**kw).fit(Xrep)
        # scaling every weight changes nothing
        c = GaussianMixture(**kw).fit(X, sample_weight=w * 0.37)
    for attr in ("weights_", "means_", "covariances_", "lower_bounds_"):
        assert_allclose(getattr(a, attr), getattr(b, attr), rtol=1e-8, err_msg=attr)
        assert_allclose(getattr(a, attr), getattr(c, attr), rtol=1e-8, err_msg=attr)


def test_zero_weights_equal_dropping_rows():
    X = blobs(300, 2, 2, seed=6)
    w = np.ones(300)
    w[::3] = 0
    init = init_params(X[w > 0], 2, "full")
    kw = dict(n_components=2, tol=0.0, max_iter=5, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GaussianMixture(**kw).fit(X, sample_weight=w)
        b = GaussianMixture(**kw).fit(X[w > 0])
    assert_allclose(a.means_, b.means_, rtol=1e-10)
    assert_allclose(a.covariances_, b.covariances_, rtol=1e-10)


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_and_two_threads_bit_identical(cov, dtype):
    X = blobs(20011, 4, 4, seed=7).astype(dtype)
    w = np.random.default_rng(2).uniform(0, 2, size=len(X)).astype(dtype)
    res = []
    for n_threads in (1, 2):
        gm = GaussianMixture(4, covariance_type=cov, n_threads=n_threads, max_iter=10,
                             tol=0.0, random_state=0, init_params="random")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(X, sample_weight=w)
        res.append((gm, gm.predict_proba(X), gm.score_samples(X)))
    (a, pa, sa), (b, pb, sb) = res
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert_array_equal(getattr(a, attr), getattr(b, attr), err_msg=attr)
    assert a.lower_bounds_ == b.lower_bounds_
    assert_array_equal(pa, pb)
    assert_array_equal(sa, sb)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_float32_large_offset_stays_correct(cov):
    # scikit-learn issue 30382: float32 data far from the origin with a small
    # spread; scikit-learn's float32 path computes E[x^2] - mu^2 and gets
    # wrong or negative variances (or fails), fastem matches its float64 fit.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(1e4, 0.01, (200, 2)),
                        rng.normal(-1e4, 0.01, (200, 2))]).astype(np.float32)
    init = dict(weights_init=[0.5, 0.5], means_init=[[1e4, 1e4], [-1e4, -1e4]],
                precisions_init={"full": np.tile(np.eye(2), (2, 1, 1)), "tied": np.eye(2),
                                 "diag": np.ones((2, 2)), "spherical": np.ones(2)}[cov])
    kw = dict(n_components=2, covariance_type=cov, **init)
    f32 = GaussianMixture(**kw).fit(X)
    f64 = GaussianMixture(**kw).fit(X.astype(np.float64))
    assert np.all(np.isfinite(f32.covariances_))
    assert_allclose(f32.covariances_, f64.covariances_, rtol=1e-2, atol=1e-6)
    if cov in ("full", "tied"):
        assert np.all(np.linalg.eigvalsh(f32.covariances_.astype(np.float64)) > 0)
    else:
        assert np.all(f32.covariances_ > 0)
    assert np.abs(f32.covariances_).max() < 1e-3  # the true variance is 1e-4
    sk_ok = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk = sk_mixture.GaussianMixture(**kw).fit(X)
        sk_ok = np.allclose(sk.covariances_, f64.covariances_, rtol=1e-2, atol=1e-6)
    except ValueError:
        sk_ok = False
    if cov in ("diag", "spherical"):
        assert not sk_ok  # the bug this test is about


def test_fit_predict_equals_fit_then_predict():
    X = blobs(1000, 3, 4, seed=8)
    for cov in COV_TYPES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            a = GaussianMixture(4, covariance_type=cov, random_state=1, max_iter=3,
                                init_params="random").fit_predict(X)
            b = GaussianMixture(4, covariance_type=cov, random_state=1, max_iter=3,
                                init_params="random").fit(X).predict(X)
        assert_array_equal(a, b)


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
def test_init_params_fit_faithful(init):
    X = faithful()
    gm = GaussianMixture(2, init_params=init, random_state=0, tol=1e-8, max_iter=1000).fit(X)
    assert gm.converged_
    order = np.argsort(gm.means_[:, 0])
    assert_allclose(gm.means_[order], [[2.04, 54.5], [4.29, 80.0]], atol=0.1)
    assert_allclose(gm.weights_[order], [0.356, 0.644], atol=0.01)
    assert len(gm.lower_bounds_) == gm.n_iter_
    assert_allclose(gm.predict_proba(X).sum(axis=1), 1.0)
    # deterministic given random_state
    gm2 = GaussianMixture(2, init_params=init, random_state=0, tol=1e-8, max_iter=1000).fit(X)
    assert_array_equal(gm.means_, gm2.means_)


def test_n_init_keeps_best_and_sample():
    X = blobs(600, 2, 3, seed=9)
    gm = GaussianMixture(3, n_init=3, random_state=0, init_params="random").fit(X)
    single = [GaussianMixture(3, random_state=s, init_params="random").fit(X).lower_bound_
              for s in range(3)]
    assert gm.lower_bound_ >= min(single) - 1e-9
    Xs, ys = gm.sample(500)
    assert Xs.shape == (500, 2) and ys.shape == (500,)
    assert Xs.dtype == np.float64 and ys.dtype == np.int64
    assert_array_equal(np.bincount(ys, minlength=3).sum(), 500)
    Xs2, _ = gm.sample(500)
    assert_array_equal(Xs, Xs2)  # seeded by random_state, like scikit-learn
    for cov in COV_TYPES:
        g = GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
        Xs, ys = g.sample(20000)
        for k in range(3):
            assert_allclose(Xs[ys == k].mean(axis=0), g.means_[k], atol=0.1)


def test_bic_aic_parameter_counts_match_sklearn():
    X = blobs(300, 3, 2, seed=10)
    for cov in COV_TYPES:
        sk, fe = fit_both(X, 2, cov, max_iter=5)
        assert fe._n_parameters() == sk._n_parameters()


def test_empty_component_is_kept_without_nan():
    X = blobs(500, 2, 2, seed=11)
    for cov in COV_TYPES:
        init = init_params(X, 3, cov)
        init["means_init"][2] = [1e6, 1e6]  # no point anywhere near
        gm = GaussianMixture(3, covariance_type=cov, tol=0.0, max_iter=5, **init)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(X)
        for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            assert np.all(np.isfinite(getattr(gm, attr))), (cov, attr)
        assert gm.weights_[2] < 1e-12
        assert_allclose(gm.means_[2], [1e6, 1e6])  # kept
        assert np.all(np.isfinite(gm.predict_proba(X)))
        assert np.all(np.isfinite(gm.lower_bounds_))


@pytest.mark.parametrize("cov", COV_TYPES)
def test_edge_sizes(cov):
    # N=1, K=1
    gm = GaussianMixture(1, covariance_type=cov).fit([[1.0, 2.0]])
    assert_allclose(gm.means_, [[1.0, 2.0]])
    assert np.all(np.isfinite(gm.covariances_))
    # D=1
    X1 = blobs(200, 1, 2, seed=12)
    gm = GaussianMixture(2, covariance_type=cov, random_state=0).fit(X1)
    assert gm.means_.shape == (2, 1)
    # K=N
    X = blobs(5, 2, 2, seed=13)
    gm = GaussianMixture(5, covariance_type=cov, random_state=0,
                         init_params="random_from_data", reg_covar=1e-3).fit(X)
    assert np.all(np.isfinite(gm.covariances_))
    # constant feature and duplicated points fit
    Xc = blobs(300, 3, 2, seed=14)
    Xc[:, 1] = 7.0
    Xc[100:150] = Xc[0]
    gm = GaussianMixture(2, covariance_type=cov, random_state=0).fit(Xc)
    assert np.all(np.isfinite(gm.covariances_))
    assert np.all(np.isfinite(gm.score_samples(Xc)))


def test_integer_fortran_input_and_no_mutation():
    X = blobs(300, 2, 2, seed=15)
    Xi = np.round(X * 10).astype(np.int64)
    Xf = np.asfortranarray(Xi.astype(np.float64))
    w = np.ones(300)
    copies = (Xi.copy(), Xf.copy(), w.copy())
    init = init_params(Xi.astype(np.float64), 2, "full")
    init_copy = {k: np.array(v, copy=True) for k, v in init.items()}
    a = GaussianMixture(2, random_state=0, **init).fit(Xi, sample_weight=w)
    b = GaussianMixture(2, random_state=0, **init).fit(Xf, sample_weight=w)
    assert_allclose(a.means_, b.means_)
    assert a.means_.dtype == np.float64
    assert_array_equal(Xi, copies[0])
    assert_array_equal(Xf, copies[1])
    assert_array_equal(w, copies[2])
    for k, v in init.items():
        assert_array_equal(v, init_copy[k])
    assert a.predict(Xi).shape == (300,)


def test_bad_input():
    X = blobs(50, 2, 2)
    gm = GaussianMixture(2)
    Xnan = X.copy()
    Xnan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gm.fit(Xnan)
    Xinf = X.copy()
    Xinf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        gm.fit(Xinf)
    with pytest.raises(ValueError, match="2-D"):
        gm.fit(X[:, 0])
    with pytest.raises(ValueError):
        gm.fit(np.empty((0, 2)))
    with pytest.raises(TypeError):
        gm.fit([["a", "b"], ["c", "d"]])
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixture(0).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixture(51).fit(X)
    with pytest.raises(ValueError, match="negative"):
        gm.fit(X, sample_weight=-np.ones(50))
    with pytest.raises(ValueError, match="shape"):
        gm.fit(X, sample_weight=np.ones(49))
    sw = np.ones(50)
    sw[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gm.fit(X, sample_weight=sw)
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(2, covariance_type="banana").fit(X)
    with pytest.raises(ValueError, match="init_params"):
        GaussianMixture(2, init_params="banana").fit(X)
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(2, reg_covar=-1.0).fit(X)
    with pytest.raises(NotFittedError):
        GaussianMixture(2).predict(X)
    gm.fit(X)
    with pytest.raises(ValueError, match="features"):
        gm.predict(np.ones((3, 3)))
    with pytest.raises(ValueError, match="features"):
        gm.predict_proba(np.ones((3, 3)))


def test_bad_initial_parameters():
    X = blobs(60, 2, 2)
    with pytest.raises(ValueError, match="weights_init should have shape"):
        GaussianMixture(2, weights_init=[1.0]).fit(X)
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture(2, weights_init=[0.5, 0.6]).fit(X)
    with pytest.raises(ValueError, match="range"):
        GaussianMixture(2, weights_init=[1.5, -0.5]).fit(X)
    with pytest.raises(ValueError, match="means_init should have shape"):
        GaussianMixture(2, means_init=np.zeros((3, 2))).fit(X)
    with pytest.raises(ValueError, match="precisions_init.*shape"):
        GaussianMixture(2, precisions_init=np.ones((2, 2))).fit(X)
    with pytest.raises(ValueError, match="positive-definite"):
        GaussianMixture(2, precisions_init=np.array([np.eye(2), -np.eye(2)])).fit(X)
    with pytest.raises(ValueError, match="symmetric"):
        GaussianMixture(2, precisions_init=np.array([np.eye(2), [[1, 0.5], [0, 1]]])).fit(X)
    with pytest.raises(ValueError, match="positive"):
        GaussianMixture(2, covariance_type="diag", precisions_init=-np.ones((2, 2))).fit(X)
    with pytest.raises(ValueError, match="positive"):
        GaussianMixture(2, covariance_type="spherical", precisions_init=[1.0, 0.0]).fit(X)


def test_singular_covariance_gives_clear_error():
    X = np.repeat([[0.0, 0.0], [1.0, 1.0], [5.0, 3.0]], 10, axis=0)
    gm = GaussianMixture(3, reg_covar=0.0, init_params="random_from_data", random_state=0)
    with pytest.raises(ValueError, match="reg_covar") as exc:
        gm.fit(X)
    msg = str(exc.value)
    assert "fewer components" in msg or "n_components" in msg
    assert "duplicated" in msg and "constant" in msg
    # with the default regularisation it fits
    GaussianMixture(3, init_params="random_from_data", random_state=0).fit(X)


def test_convergence_warning_names_the_knob():
    X = blobs(300, 2, 3, seed=16)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        GaussianMixture(3, max_iter=1, tol=0.0, random_state=0).fit(X)


def test_estimator_api_and_pickle():
    gm = GaussianMixture(3, covariance_type="diag", n_threads=1)
    params = gm.get_params()
    assert params["n_components"] == 3 and params["covariance_type"] == "diag"
    assert "n_threads" in params and "sample_weight" not in params
    assert "covariance_type='diag'" in repr(gm)
    X = blobs(200, 2, 3, seed=17)
    gm.fit(X)
    assert gm.n_features_in_ == 2
    gm2 = pickle.loads(pickle.dumps(gm))
    assert_array_equal(gm2.predict(X), gm.predict(X))
    from sklearn.base import clone as sklearn_clone

    clone = sklearn_clone(gm)
    assert clone.get_params() == gm.get_params()


def test_warm_start_continues():
    X = blobs(400, 2, 3, seed=18)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GaussianMixture(3, max_iter=4, tol=0.0, random_state=0).fit(X)
        b = GaussianMixture(3, max_iter=2, tol=0.0, random_state=0, warm_start=True)
        b.fit(X)
        b.fit(X)
    assert_allclose(a.means_, b.means_, rtol=1e-12)
    assert_allclose(a.lower_bounds_[2:], b.lower_bounds_, rtol=1e-12)
