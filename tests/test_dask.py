"""fastem.dask against the in-memory estimators, on a local 2-worker cluster."""
import os
import signal
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask[array] not installed (pip install 'fastem[dask]')")
distributed = pytest.importorskip("distributed", reason="distributed not installed (pip install 'fastem[dask]')")

import fastem  # noqa: E402
import fastem.dask as fdask  # noqa: E402
from fastem._init import kmeans_parallel  # noqa: E402
from fastem._parallel import blas_single_threaded  # noqa: E402
from fastem.dask._blocks import Blocks  # noqa: E402
from fastem.dask._seeding import kmeans_parallel_blocks  # noqa: E402

from test_kmeans_parallel import reference_candidates  # noqa: E402

COV_TYPES = ["full", "tied", "diag", "spherical"]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def data(dtype=np.float64, n_per=400, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 1.0, -2.0], [1.0, 7.0, 3.0]])
    X = np.concatenate([rng.normal(c, [1.0, 0.6, 1.4], size=(n_per, 3)) for c in centres])
    X = X[rng.permutation(X.shape[0])] + 100.0  # off the origin: frame shifts matter
    sw = rng.uniform(0.2, 3.0, size=X.shape[0])
    return X.astype(dtype), sw.astype(dtype)


def close(a, b, rtol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


def gmm_init(X, cov):
    K, D = 3, X.shape[1]
    means = X[[0, 1, 2]].astype(np.float64) + 0.5
    prec = {"full": np.tile(np.eye(D), (K, 1, 1)), "tied": np.eye(D),
            "diag": np.ones((K, D)), "spherical": np.ones(K)}[cov] * 0.25
    return dict(weights_init=np.full(K, 1 / 3), means_init=means, precisions_init=prec)


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_gmm_equals_in_memory_fit(client, cov, dtype, weighted):
    X, sw = data(dtype)
    sw = sw if weighted else None
    kw = dict(n_components=3, covariance_type=cov, max_iter=8, tol=0.0, **gmm_init(X, cov))
    with pytest.warns(Warning, match="did not converge"):
        ref = fastem.GaussianMixture(**kw, n_threads=1).fit(X, sample_weight=sw)
    Xd = da.from_array(X, chunks=(500, 2))  # columns split: rechunked
    swd = None if sw is None else da.from_array(sw, chunks=300)
    with pytest.warns(Warning, match="did not converge"):
        got = fdask.GaussianMixture(**kw, block_rows=512).fit(Xd, sample_weight=swd)
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert getattr(got, name).dtype == dtype
        close(getattr(got, name), getattr(ref, name), rtol)
    close(got.lower_bounds_, ref.lower_bounds_, rtol)
    assert got.n_iter_ == ref.n_iter_ == 8
    np.testing.assert_array_equal(got.predict(Xd).compute(), ref.predict(X))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_equals_in_memory_fit(client, weighted, dtype):
    X, sw = data(dtype)
    sw = sw if weighted else None
    init = X[[0, 1, 2, 3]]
    ref = fastem.KMeans(4, init=init, n_threads=1).fit(X, sample_weight=sw)
    got = fdask.KMeans(4, init=init, block_rows=512).fit(
        da.from_array(X, chunks=333), sample_weight=None if sw is None else da.from_array(sw, chunks=500))
    close(got.cluster_centers_, ref.cluster_centers_, 1e-10 if dtype == np.float64 else 1e-5)
    assert got.cluster_centers_.dtype == dtype
    assert got.n_iter_ == ref.n_iter_
    assert got.inertia_ == pytest.approx(ref.inertia_, rel=1e-10 if dtype == np.float64 else 1e-5)
    np.testing.assert_array_equal(got.labels_.compute(), ref.labels_)


def test_kmeans_empty_cluster_relocated_as_in_memory(client):
    X, _ = data()
    init = np.vstack([X[:3], [[1e3, 1e3, 1e3]]])  # the last centre gets no row
    ref = fastem.KMeans(4, init=init, n_threads=1, max_iter=5).fit(X)
    got = fdask.KMeans(4, init=init, block_rows=256, max_iter=5).fit(X)
    close(got.cluster_centers_, ref.cluster_centers_, 1e-10)
    np.testing.assert_array_equal(got.labels_.compute(), ref.labels_)


def test_bit_identical_for_any_chunking_and_worker_count(client):
    X, sw = data()
    kw = dict(n_components=3, covariance_type="full", max_iter=5, tol=0.0, random_state=1,
              block_rows=512)

    def fit(chunks):
        Xd = X if chunks is None else da.from_array(X, chunks=(chunks, 3))
        with pytest.warns(Warning, match="did not converge"):
            g = fdask.GaussianMixture(**kw).fit(Xd, sample_weight=sw)
        k = fdask.KMeans(3, random_state=1, block_rows=512, max_iter=4).fit(Xd)
        return g.means_, g.covariances_, g.lower_bound_, k.cluster_centers_, k.inertia_

    first = fit(300)
    for a, b in zip(first, fit(None)):
        np.testing.assert_array_equal(a, b)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as one, distributed.Client(one):
        single = fit(700)
    for a, b in zip(first, single):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_parallel_over_blocks_matches_reference(client, weighted):
    X, sw = data(n_per=300)
    sw = sw if weighted else None
    blocks = Blocks(X, sw, block_rows=256)
    sizes = list(np.diff(blocks.starts))
    rng = np.random.default_rng(3)
    cand, weights = reference_candidates(X, 4, sw, rng, block_sizes=sizes)
    expected = cand[fastem._init.greedy_kmeans_plusplus(cand, 4, weights.astype(X.dtype),
                                                        rng, None, 1)]
    got = kmeans_parallel_blocks(blocks, 4, np.random.default_rng(3), 1)
    np.testing.assert_array_equal(got, expected)
    # one block: the in-memory k-means|| itself
    with blas_single_threaded():
        local = kmeans_parallel(X, 4, sw, np.random.default_rng(3), 1)
    one = kmeans_parallel_blocks(Blocks(X, sw, block_rows=4096), 4,
                                 np.random.default_rng(3), 1)
    np.testing.assert_array_equal(one, local)


def test_gmm_default_init_and_inference(client, tmp_path):
    X, _ = data(np.float32)
    Xd = da.from_array(X, chunks=400)
    g = fdask.GaussianMixture(3, random_state=0, block_rows=512).fit(Xd)
    assert g.converged_
    local = g.to_local()
    assert isinstance(local, fastem.GaussianMixture)
    for method in ("predict", "predict_proba", "score_samples"):
        lazy = getattr(g, method)(Xd)
        assert isinstance(lazy, da.Array)
        np.testing.assert_array_equal(lazy.compute(), getattr(local, method)(X))
    assert g.score(Xd) == pytest.approx(local.score(X), rel=1e-12)
    assert g.bic(Xd) == pytest.approx(local.bic(X), rel=1e-12)
    assert g.aic(Xd) == pytest.approx(local.aic(X), rel=1e-12)
    loaded = fastem.load(g.save(tmp_path / "g.npz"))
    np.testing.assert_array_equal(loaded.means_, g.means_)
    # the three well-separated clusters are found, as by the in-memory fit
    ref = fastem.GaussianMixture(3, random_state=0).fit(X)
    assert fastem.adjusted_rand_score(ref.predict(X), g.predict(Xd).compute()) == 1.0


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
def test_gmm_init_params(client, init):
    X, sw = data()
    g = fdask.GaussianMixture(3, init_params=init, random_state=0, block_rows=512,
                              max_iter=300).fit(X, sample_weight=sw)
    assert g.converged_
    if init != "random":  # random responsibilities may end in another optimum
        ref = fastem.GaussianMixture(3, random_state=0).fit(X, sample_weight=sw)
        assert g.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-4)


def test_random_from_data_uses_the_in_memory_rows(client):
    X, sw = data()
    kw = dict(n_components=3, init_params="random_from_data", random_state=4, max_iter=3,
              tol=0.0)
    with pytest.warns(Warning, match="did not converge"):
        ref = fastem.GaussianMixture(**kw, n_threads=1).fit(X, sample_weight=sw)
    with pytest.warns(Warning, match="did not converge"):
        got = fdask.GaussianMixture(**kw, block_rows=256).fit(X, sample_weight=sw)
    close(got.means_, ref.means_, 1e-10)


def test_kmeans_inference(client, tmp_path):
    X, sw = data(np.float32)
    Xd = da.from_array(X, chunks=500)
    km = fdask.KMeans(3, random_state=0, block_rows=512).fit(Xd)
    local = km.to_local()
    np.testing.assert_array_equal(km.predict(Xd).compute(), local.predict(X))
    np.testing.assert_array_equal(km.transform(Xd).compute(), local.transform(X))
    assert km.score(Xd, sample_weight=sw) == pytest.approx(local.score(X, sample_weight=sw),
                                                          rel=1e-6)
    loaded = fastem.load(km.save(tmp_path / "k.npz"))
    np.testing.assert_array_equal(loaded.predict(X), local.predict(X))


def test_worker_killed_mid_fit(client, monkeypatch):
    X, _ = data()
    kw = dict(n_components=3, covariance_type="diag", max_iter=12, tol=0.0, random_state=2,
              block_rows=256)
    with pytest.warns(Warning, match="did not converge"):
        expected = fdask.GaussianMixture(**kw).fit(X)
    import fastem.dask._mixture as mixture_module

    original = mixture_module.map_reduce
    calls = []

    def map_reduce_killing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # a few EM iterations in: kill a worker holding blocks
            nanny = next(iter(client.cluster.workers.values()))
            os.kill(nanny.process.pid, signal.SIGKILL)  # its nanny starts a new one
            time.sleep(0.5)
        return original(*args, **kwargs)

    before = set(client.scheduler_info()["workers"])
    monkeypatch.setattr(mixture_module, "map_reduce", map_reduce_killing)
    with pytest.warns(Warning, match="did not converge"):
        got = fdask.GaussianMixture(**kw).fit(X)
    assert len(calls) > 6
    np.testing.assert_array_equal(got.means_, expected.means_)
    np.testing.assert_array_equal(got.covariances_, expected.covariances_)
    client.wait_for_workers(2, timeout=60)
    assert set(client.scheduler_info()["workers"]) != before  # one was replaced


def test_nan_reported_with_its_block(client):
    X, _ = data()
    X[700, 1] = np.nan
    Xd = da.from_array(X, chunks=300)
    with pytest.raises(ValueError, match=r"NaN or infinity in block 2 \(rows 512 to 767\)"):
        fdask.KMeans(3, block_rows=256, init=X[:3]).fit(Xd)
    with pytest.raises(ValueError, match=r"NaN or infinity in block 1 \(rows 512 to 1023\)"):
        fdask.GaussianMixture(3, block_rows=512).fit(Xd)
    sw = np.ones(X.shape[0])
    sw[5] = -1
    with pytest.raises(ValueError, match="negative values in block 0"):
        fdask.KMeans(3, block_rows=256).fit(np.nan_to_num(X), sample_weight=sw)


def test_bad_shapes_and_chunking(client):
    X, _ = data()
    with pytest.raises(ValueError, match="2-D"):
        fdask.KMeans(3).fit(da.from_array(X[:, 0]))
    with pytest.raises(ValueError, match="one weight per sample"):
        fdask.KMeans(3).fit(X, sample_weight=np.ones(5))
    unknown = da.from_array(X, chunks=300)[da.from_array(X[:, 0] > 100, chunks=300)]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        fdask.GaussianMixture(3).fit(unknown)
    with pytest.raises(TypeError, match="real numbers"):
        fdask.KMeans(3).fit(da.from_array(X.astype(complex)))
    with pytest.raises(ValueError, match="n_clusters"):
        fdask.KMeans(5000).fit(X)
    km = fdask.KMeans(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        km.predict(X[:, :2])
    with pytest.raises(ValueError, match="k-means\\+\\+ needs k passes"):
        fdask.KMeans(3, init="k-means++").fit(X)


def test_client_without_workers():
    X, _ = data()
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0") as c0, \
            distributed.Client(c0):
        with pytest.raises(ValueError, match="no workers"):
            fdask.KMeans(3).fit(X)


def test_edge_sizes(client):
    X = np.random.default_rng(0).normal(size=(5, 1))
    km = fdask.KMeans(5, random_state=0).fit(X)  # K = N, D = 1
    np.testing.assert_allclose(np.sort(km.cluster_centers_[:, 0]), np.sort(X[:, 0]))
    g = fdask.GaussianMixture(1, random_state=0).fit(X[:1].repeat(3, 0) + [[0], [1], [2]])
    close(g.means_, X[:1] + 1.0, 1e-12)
