"""fastem.dask against the in-memory estimators, on a local 2-worker cluster."""
import os
import signal
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask[array] not installed (pip install 'fastem[dask]')")
distributed = pytest.importorskip("distributed", reason="distributed not installed (pip install 'fastem[dask]')")
dask = pytest.importorskip("dask")

import fastem  # noqa: E402
import fastem.dask as fdask  # noqa: E402
from fastem._init import kmeans_parallel  # noqa: E402
from fastem._parallel import blas_single_threaded  # noqa: E402
from fastem.dask import _state, _tasks  # noqa: E402
from fastem.dask._kmeans import lloyd_blocks  # noqa: E402
from fastem.dask._blocks import (  # noqa: E402
    BLOCK_BYTES, MAX_BLOCK_ROWS, MIN_BLOCK_ROWS, MIN_BLOCKS, Blocks, check_cluster,
    default_block_rows, scheduler_workers)
from fastem.dask._reduce import _graph, map_reduce, reduce_level, tree  # noqa: E402
from fastem.dask._seeding import kmeans_parallel_blocks, weighted_random_rows  # noqa: E402

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


@pytest.mark.parametrize("algorithm", ["auto", "lloyd"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_equals_in_memory_fit(client, weighted, dtype, algorithm):
    X, sw = data(dtype)
    sw = sw if weighted else None
    init = X[[0, 1, 2, 3]]
    ref = fastem.KMeans(4, init=init, n_threads=1, algorithm=algorithm).fit(
        X, sample_weight=sw)
    got = fdask.KMeans(4, init=init, block_rows=512, algorithm=algorithm).fit(
        da.from_array(X, chunks=333), sample_weight=None if sw is None else da.from_array(sw, chunks=500))
    close(got.cluster_centers_, ref.cluster_centers_, 1e-10 if dtype == np.float64 else 1e-5)
    assert got.cluster_centers_.dtype == dtype
    assert got.n_iter_ == ref.n_iter_
    assert got.inertia_ == pytest.approx(ref.inertia_, rel=1e-10 if dtype == np.float64 else 1e-5)
    np.testing.assert_array_equal(got.labels_.compute(), ref.labels_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_with_group_bounds_equals_in_memory_fit(client, dtype):
    """Past 64 centres (32 in float64) each block keeps a bound per group
    of centres on its worker: the same fit as in memory."""
    rng = np.random.default_rng(7)
    X = (rng.normal(size=(3000, 24)) + rng.normal(scale=3.0, size=(100, 24))[
        rng.integers(0, 100, 3000)]).astype(dtype)
    init = X[:100].copy()
    ref = fastem.KMeans(100, init=init, n_threads=1, max_iter=10, tol=0).fit(X)
    got = fdask.KMeans(100, init=init, block_rows=700, max_iter=10, tol=0).fit(
        da.from_array(X, chunks=1000))
    close(got.cluster_centers_, ref.cluster_centers_, 1e-10 if dtype == np.float64 else 1e-5)
    assert got.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(got.labels_.compute(), ref.labels_)


@pytest.mark.parametrize("algorithm", ["auto", "lloyd"])
def test_kmeans_empty_cluster_relocated_as_in_memory(client, algorithm):
    X, _ = data()
    init = np.vstack([X[:3], [[1e3, 1e3, 1e3]]])  # the last centre gets no row
    ref = fastem.KMeans(4, init=init, n_threads=1, max_iter=5, algorithm=algorithm).fit(X)
    got = fdask.KMeans(4, init=init, block_rows=256, max_iter=5,
                       algorithm=algorithm).fit(X)
    close(got.cluster_centers_, ref.cluster_centers_, 1e-10)
    assert got.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(got.labels_.compute(), ref.labels_)


def test_kmeans_relocation_with_group_bounds_as_in_memory(client):
    """Empty clusters relocated where the bounded passes keep Yinyang's
    group bounds across the relocation (relocation_keeps_bounds): the
    blocks' passes give the in-memory fit's iterates."""
    from fastem._kernels import load_kernels
    from fastem._kmeans import relocation_keeps_bounds
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 24)) + rng.normal(scale=3.0, size=(80, 24))[
        rng.integers(0, 80, 3000)]
    init = X[:80].copy()
    init[::9] = 1e3  # nine centres that get no row
    tiles = load_kernels("_bounded").bounded_labels_available(24, X.itemsize)
    assert relocation_keeps_bounds(80, 24, X.dtype) == tiles
    ref = fastem.KMeans(80, init=init, n_threads=1, max_iter=6, tol=0).fit(X)
    got = fdask.KMeans(80, init=init, block_rows=700, max_iter=6, tol=0).fit(
        da.from_array(X, chunks=1000))
    close(got.cluster_centers_, ref.cluster_centers_, 1e-10)
    assert got.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(got.labels_.compute(), ref.labels_)


def worker_states(client):
    """(entries, bytes) of fastem.dask state held by each worker process."""
    return list(client.run(_state.held).values())


def test_bounded_pass_state_stays_on_the_block_workers(client):
    X, sw = data(np.float32)
    blocks = Blocks(da.from_array(X, chunks=256), sw, block_rows=256)  # persisted
    workers = blocks.place()
    assert len(set(workers)) == 2  # both workers hold blocks
    held = client.sync(client.scheduler.who_has, keys=[b.key for b in blocks.x_blocks])
    assert [list(held[b.key]) for b in blocks.x_blocks] == [[w] for w in workers]
    centres = (X[:4] - 100.0).astype(np.float32)
    shift = np.full(3, 100.0, np.float32)
    bounds = fastem._kmeans.bound_updates(None, centres)
    args = (centres, shift, bounds, True, 1)
    sums, weights, counts = map_reduce(_tasks.bounded_statistics, blocks, "t", 0, *args)
    # the in-memory pass: same labels, statistics up to the order of the sums
    ref_labels, _, ref_sums, ref_weights = fastem._kmeans.assign_pass(
        X, sw, centres, shift, 1)
    close(sums, ref_sums, 1e-12)
    close(weights, ref_weights, 1e-12)
    assert counts.tolist() == [X.shape[0], X.shape[0], 0]  # fresh: every row assigned
    # each worker holds the state of its blocks: 12 bytes per row in float32
    entries = [e for e, _ in worker_states(client)]
    assert sorted(entries) == sorted(workers.count(w) for w in set(workers))
    sums_weights = len(blocks) * (4 * 3 + 4) * 8
    assert sum(b for _, b in worker_states(client)) - sums_weights == 12 * X.shape[0]
    # the same step again (a task re-run) returns the stored result
    again = map_reduce(_tasks.bounded_statistics, blocks, "t", 0, *args)
    np.testing.assert_array_equal(again[0], sums)
    # the next step finds every state where it left it: nothing rebuilt
    step1 = map_reduce(_tasks.bounded_statistics, blocks, "t", 1, centres, shift,
                       fastem._kmeans.bound_updates(centres, centres), False, 1)
    assert step1[2].tolist() == [0, 0, 0]  # no label changed, no row recomputed
    np.testing.assert_array_equal(step1[0], sums)
    assert sum(client.run(_state.release, "t").values()) == len(blocks)
    assert worker_states(client) == [(0, 0), (0, 0)]
    got = lloyd_blocks(blocks, centres, shift, max_iter=20, tol=0.0,
                                     n_threads=1)
    ref = fastem.KMeans(4, init=X[:4], n_threads=1, tol=0.0).fit(X, sample_weight=sw)
    assert got[2] == ref.n_iter_ and got[4] == 0  # no state lost or moved
    close(got[0], ref.cluster_centers_, 1e-5)
    assert worker_states(client) == [(0, 0), (0, 0)]  # released at the end


def test_kmeans_state_released_when_the_fit_fails(client, monkeypatch):
    X, _ = data()
    import fastem.dask._kmeans as kmeans_module

    def failing_update(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(kmeans_module, "lloyd_update", failing_update)
    with pytest.raises(KeyboardInterrupt):
        # 'elkan': bounded passes, which leave state on the workers (at D = 3
        # 'auto' runs plain passes)
        fdask.KMeans(3, init=X[:3], block_rows=256, algorithm="elkan").fit(X)
    assert worker_states(client) == [(0, 0), (0, 0)]


def test_kmeans_random_init_with_weights_draws_the_in_memory_rows(client):
    X, sw = data()
    sw[::3] = 0.0  # rows of zero weight are never drawn
    blocks = Blocks(X, sw, block_rows=256)
    got = weighted_random_rows(blocks, 40, np.random.default_rng(7))
    expected = fastem._init.random_rows(X.shape[0], 40, sw, np.random.default_rng(7))
    np.testing.assert_array_equal(got, expected)
    kw = dict(init="random", n_init=3, random_state=2, max_iter=50)
    ref = fastem.KMeans(3, **kw, n_threads=1).fit(X, sample_weight=sw)
    km = fdask.KMeans(3, **kw, block_rows=256).fit(X, sample_weight=sw)
    close(km.cluster_centers_, ref.cluster_centers_, 1e-10)
    with pytest.raises(ValueError, match="positive sample_weight"):
        fdask.KMeans(3, init="random").fit(X, sample_weight=np.arange(X.shape[0]) < 2)


def test_zarr_store_read_each_pass(client, tmp_path):
    zarr = pytest.importorskip("zarr", reason="zarr not installed (pip install zarr)")
    X, sw = data(np.float32)
    store = zarr.create_array(tmp_path / "x.zarr", shape=X.shape, chunks=(256, 3),
                              dtype=X.dtype)
    store[:] = X
    Xd = da.from_zarr(str(tmp_path / "x.zarr"))
    init = X[[0, 1, 2]]
    ref = fastem.KMeans(3, init=init, n_threads=1).fit(X, sample_weight=sw)
    km = fdask.KMeans(3, init=init, block_rows=256, persist=False).fit(Xd, sample_weight=sw)
    close(km.cluster_centers_, ref.cluster_centers_, 1e-5)
    np.testing.assert_array_equal(km.labels_.compute(), ref.labels_)
    gkw = dict(n_components=3, max_iter=4, tol=0.0, random_state=0, block_rows=256)
    with pytest.warns(Warning, match="did not converge"):
        g = fdask.GaussianMixture(**gkw, persist=False).fit(Xd)
    with pytest.warns(Warning, match="did not converge"):
        g_mem = fdask.GaussianMixture(**gkw).fit(X)
    np.testing.assert_array_equal(g.means_, g_mem.means_)  # same blocks, same sums
    assert worker_states(client) == [(0, 0), (0, 0)]


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


def nest(a, b):
    return (a, b)


@pytest.mark.parametrize("n_parts", [1, 2, 3, 7, 16, 17, 40])
def test_reduction_tree_is_the_same_wherever_its_levels_run(n_parts):
    """Graph levels down to ``until`` partials, then the client: the same
    pairing (neighbours first, an odd last one carried up) for any split."""
    import dask

    parts = [dask.delayed(i) for i in range(n_parts)]
    level = list(range(n_parts))  # the reference: pairs of neighbours, level by level
    while len(level) > 1:
        level = [(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    for until in (1, 2, 3, 16):
        got = reduce_level(dask.compute(*tree(parts, nest, until=until),
                                        scheduler="sync"), nest)
        assert got == level[0]


def test_graph_keeps_every_input_whose_graph_is_new_at_each_access():
    """A DelayedLeaf builds a new graph at each ``.dask``: merging must hold
    each one while it dedupes by identity (an id of a graph let go can be
    reused by the next one, which was dropped: CI's "Missing dependency")."""
    import dask
    import gc

    parts = [dask.delayed(i) for i in range(200)]
    assert parts[0].dask is not parts[0].dask  # the premise
    shared = dask.delayed(nest)(parts[0], parts[1])
    for _ in range(20):
        gc.collect()
        graph = _graph({}, parts + [shared, shared])
        assert set(graph.keys()) == {p.key for p in parts} | {shared.key}


@pytest.mark.parametrize("n_samples", [1, 4095, 4096 * 16, 4096 * 16 + 1, 3 * 10**6,
                                       2 * 10**7, 10**9])
@pytest.mark.parametrize("n_features, dtype", [(1, np.float64), (16, np.float32),
                                               (32, np.float32), (784, np.float64)])
def test_default_block_rows_cut_x_into_the_fewest_equal_blocks(n_samples, n_features, dtype):
    rows = default_block_rows(n_samples, n_features, dtype)
    row_bytes = n_features * np.dtype(dtype).itemsize
    n_blocks = -(-n_samples // rows)
    last = n_samples - (n_blocks - 1) * rows

    def allowed(count):  # an even count >= MIN_BLOCKS holding X in blocks of at
        # most BLOCK_BYTES and MAX_BLOCK_ROWS rows on average
        return (count >= MIN_BLOCKS and count % 2 == 0
                and n_samples * row_bytes <= count * BLOCK_BYTES
                and n_samples <= count * MAX_BLOCK_ROWS)

    assert MIN_BLOCK_ROWS <= rows
    if rows == MIN_BLOCK_ROWS:  # small X: blocks of the smallest size
        assert n_samples <= MIN_BLOCKS * MIN_BLOCK_ROWS or not allowed(n_blocks)
    else:
        assert allowed(n_blocks)
        assert rows <= MAX_BLOCK_ROWS and (rows - 1) * row_bytes < BLOCK_BYTES
        assert not any(allowed(c) for c in range(MIN_BLOCKS, n_blocks))  # the fewest
        assert rows - n_blocks < last <= rows  # equal, but for rounding
    # the same data, chunked in any way, gets the same blocks
    X = da.zeros((n_samples, n_features), dtype=dtype, chunks=(max(1, n_samples // 3), -1))
    assert Blocks(X, persist=False).block_rows == rows


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

    before = set(client.nthreads())
    monkeypatch.setattr(mixture_module, "map_reduce", map_reduce_killing)
    with pytest.warns(Warning, match="did not converge"):
        got = fdask.GaussianMixture(**kw).fit(X)
    assert len(calls) > 6
    np.testing.assert_array_equal(got.means_, expected.means_)
    np.testing.assert_array_equal(got.covariances_, expected.covariances_)
    client.wait_for_workers(2, timeout=60)
    assert set(client.nthreads()) != before  # one was replaced


def test_kmeans_worker_killed_mid_fit(client, monkeypatch):
    X, _ = data()
    kw = dict(init=X[[0, 1, 2]], max_iter=6, tol=0.0, block_rows=128, algorithm="elkan")
    expected = fdask.KMeans(3, **kw).fit(X)
    import fastem.dask._kmeans as kmeans_module

    original = kmeans_module.map_reduce
    calls = []

    def map_reduce_killing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # the second bounded pass: kill a worker holding state
            nanny = next(iter(client.cluster.workers.values()))
            os.kill(nanny.process.pid, signal.SIGKILL)
            time.sleep(0.5)
        return original(*args, **kwargs)

    monkeypatch.setattr(kmeans_module, "map_reduce", map_reduce_killing)
    got = fdask.KMeans(3, **kw).fit(X)
    assert len(calls) > 4
    # the lost blocks' bounds start again: same labels, sums rounded differently
    close(got.cluster_centers_, expected.cluster_centers_, 1e-12)
    np.testing.assert_array_equal(got.labels_.compute(), expected.labels_.compute())
    client.wait_for_workers(2, timeout=60)
    assert worker_states(client) == [(0, 0), (0, 0)]


def test_nan_reported_with_its_block(client):
    X, _ = data()
    X[700, 1] = np.nan
    Xd = da.from_array(X, chunks=300)
    with pytest.raises(ValueError, match=r"NaN or infinity in block 2 \(rows 512 to 767\)"):
        fdask.KMeans(3, block_rows=256, init=X[:3]).fit(Xd)
    with pytest.raises(ValueError, match=r"NaN or infinity in block 1 \(rows 512 to 1023\)"):
        fdask.GaussianMixture(3, block_rows=512).fit(Xd)
    # K-means finds them through its first pass's moments about row 0:
    # an infinity in that row itself, and finite values whose squares
    # overflow float64 (not reported as NaN; the fit's overflow error)
    X0 = np.nan_to_num(X)
    X0[0, 0] = -np.inf
    with pytest.raises(ValueError, match=r"NaN or infinity in block 0 \(rows 0 to 255\)"):
        fdask.KMeans(3, block_rows=256, init=X[3:6]).fit(X0)
    X0[0, 0] = 1e200
    with pytest.raises(ValueError, match="overflow float64"), np.errstate(over="ignore"):
        fdask.KMeans(3, block_rows=256, init=X[3:6]).fit(X0)
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


def test_cluster_check_asks_the_scheduler(client):
    """check_cluster (and the passes' placement) ask the scheduler for its
    workers: client.scheduler_info()["workers"] reads the client's cached
    identity, which its periodic update replaces with one without workers
    (here every 5 ms, about one read in 20 came back empty), and a healthy
    cluster then failed its fit with "no workers" (CI, 2026-12-04)."""
    with dask.config.set({"distributed.client.scheduler-info-interval": "5ms"}), \
            distributed.Client(client.cluster) as fast:
        for _ in range(500):
            assert check_cluster() is fast
            assert len(scheduler_workers(fast)) == 2


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
