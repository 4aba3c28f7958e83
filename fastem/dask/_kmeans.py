"""fastem.dask.KMeans: Lloyd's algorithm over the blocks of a dask array
(bounded passes by default, each block's bounds on its worker)."""
import sys
import time
import uuid
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from fastem._kmeans import (
    KMeans as LocalKMeans,
    bound_updates,
    inference_frame,
    lloyd_update,
    move_to_empty_clusters,
    relocation_keeps_bounds,
    use_bounds,
)
from fastem._stats import frame_shift, mean_var_from_moments
from fastem._validation import check_random_state
from fastem.dask import _state, _tasks
from fastem.dask._base import DaskEstimator
from fastem.dask._reduce import map_collect, map_reduce
from fastem.dask._seeding import kmeans_parallel_blocks, weighted_random_rows


class KMeans(DaskEstimator, ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means clustering on a Dask array (Lloyd's algorithm, k-means|| seeding).

    The parameters, methods and fitted attributes of :class:`fastem.KMeans`,
    with ``threads_per_task`` in place of ``n_threads``. Each iteration is
    one pass over X's row blocks: a task per block runs fastem's compiled
    pass (by default the in-memory fit's bounded pass, which skips rows whose
    nearest centre is certain, with the block's bounds kept on its worker)
    and returns the block's per-centre sums and weights; these are added in
    block order by a tree reduction, and the new centres (computed on the
    client) go to the workers once per iteration. Each block's tasks run on
    the worker holding it. X never comes to the client. From the same
    initial centres the result equals the in-memory fit's (up to float64
    rounding of the sums), and it is bit-identical for any number of workers
    or threads and any chunking of X (X is rechunked to ``block_rows`` rows
    per block); after a worker is lost the lost blocks' bounds start again,
    which gives the same labels, the sums rounded differently.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {'k-means||', 'random'}, array-like of shape (n_clusters, n_features) or callable, default='k-means||'
        'k-means||': k-means|| seeding (Bahmani et al. 2012: 5 rounds,
        oversampling ``l = 2 k``, candidates weighted by the rows closest to
        them, then weighted greedy k-means++); 'random': distinct random rows,
        drawn with probability proportional to their weight (the rows the
        in-memory fit draws for the same ``random_state``); an array of
        initial centres; or a callable ``init(X, n_clusters, random_state)``
        returning one (X: the dask array).
    n_init : 'auto' or int, default='auto'
        Number of seedings, the lowest inertia kept ('auto': 1 for
        'k-means||' or an array, 10 otherwise).
    max_iter : int, default=300
        Maximum number of Lloyd iterations per run.
    tol : float, default=1e-4
        Stop when the summed squared centre shift is at most ``tol`` times
        the mean per-feature variance of X. An iteration whose labels do not
        change leaves the centres where they are, and stops too.
    verbose : int, default=0
        One line per iteration to stderr.
    random_state : int, numpy Generator or RandomState, default=None
        Seed of the initialisation.
    copy_x : bool, default=True
        Accepted for compatibility; X is never modified.
    algorithm : {'auto', 'lloyd', 'elkan'}, default='auto'
        As in :class:`fastem.KMeans`. 'auto' (except with n_features <= 8 in
        float32, 10 in float64, where plain passes are faster:
        ``fastem._kmeans.use_bounds``) and 'elkan': bounded passes
        (Hamerly's, Yinyang's groups at large k; same iterates as Lloyd);
        each block's bounds and labels (``fastem._kmeans.BoundedState``:
        at most half the size of the block, and an int32 per row) stay on
        the worker that holds the block between passes and
        are released when the fit ends. 'lloyd': every pass computes all
        distances and keeps nothing on the workers.
    threads_per_task : int, default=1
        OpenMP threads of each block task (match the workers' threads).
    block_rows : int, default=None
        Rows per block; None: X in equal blocks, as few as give at most
        256 MiB per block, at least 8 and an even number of them (4096 rows
        at least).
        The result depends on it (the order of the sums), never on X's own
        chunking.
    persist : 'auto' or bool, default='auto'
        Keep the rechunked X in the workers' memory for the fit ('auto':
        when it takes at most half of the cluster's memory); otherwise each
        pass reads it from its source (zarr, .npy files, ...).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : dask.array.Array of shape (n_samples,), int32
        Lazy: the nearest centre of each training row (``predict(X)``); it
        refers to the training blocks (persisted ones stay in the workers'
        memory while it lives: ``del km.labels_`` releases them).
    inertia_ : float
    n_iter_ : int
    n_features_in_ : int
    """

    _random_n_init = 10

    def __init__(self, n_clusters=8, *, init="k-means||", n_init="auto", max_iter=300,
                 tol=1e-4, verbose=0, random_state=None, copy_x=True, algorithm="auto",
                 threads_per_task=1, block_rows=None, persist="auto"):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.threads_per_task = threads_per_task
        self.block_rows = block_rows
        self.persist = persist

    def _fit_blocks(self, blocks, threads):
        local = LocalKMeans(**self._local_params(drop=("init",)))
        k, max_iter, tol, algorithm, _ = local._check_params()
        n_samples, n_features, dtype = blocks.n_samples, blocks.n_features, blocks.dtype
        if k > n_samples:
            raise ValueError(f"n_samples={n_samples} should be >= n_clusters={k}: ask for "
                             "at most as many clusters as there are samples.")
        init, n_init = self._check_init(local, n_features, dtype, k, blocks)
        # one pass: finite values, weights, and the moments of the frame and tol
        ref = blocks.rows([0])[0].astype(np.float64)
        (_, n_positive), *moments = map_reduce(_tasks.checked_moments, blocks, ref)
        if n_positive == 0:
            raise ValueError("sample_weight is zero everywhere; at least one weight "
                             "must be positive.")
        if isinstance(init, str) and init == "random" and n_positive < k:
            raise ValueError(f"Only {n_positive} samples have a positive sample_weight, "
                             f"fewer than the {k} requested clusters.")
        mean, var = mean_var_from_moments(ref, *moments)
        shift = frame_shift(mean, var, dtype)
        rng = check_random_state(self.random_state)
        best = None
        for _ in range(n_init):
            centres = self._initial_centres(blocks, k, init, shift, rng, threads)
            run = lloyd_blocks(blocks, centres, shift, max_iter=max_iter,
                               tol=float(np.mean(var)) * tol, n_threads=threads,
                               verbose=self.verbose,
                               bounded=use_bounds(algorithm, k, n_features, dtype))
            if best is None or run[1] < best[1]:
                best = run
        centres, inertia, n_iter, weights, _ = best
        self._check_result(centres, inertia, weights, k, dtype)
        self.cluster_centers_, self.inertia_, self.n_iter_ = centres, inertia, n_iter
        self.n_features_in_ = n_features
        self.labels_ = self.predict(blocks.X)
        return self

    def _check_init(self, local, n_features, dtype, k, blocks):
        init = self.init
        if isinstance(init, str):
            if init not in ("k-means||", "random"):
                raise ValueError(
                    f"init must be 'k-means||', 'random', an array or a callable on "
                    f"Dask data, got {init!r} (k-means++ needs k passes over the data; "
                    "k-means|| gives seeds of the same quality in 6).")
        local.set_params(init=init)
        return local._check_init(np.empty((0, n_features), dtype), k)

    def _initial_centres(self, blocks, k, init, shift, rng, threads):
        """Initial centres in the shifted frame, X's dtype (as in memory)."""
        if isinstance(init, str) and init == "k-means||":
            centres = kmeans_parallel_blocks(blocks, k, rng, threads)
        elif isinstance(init, str):  # 'random': the in-memory draw (random_rows)
            centres = blocks.rows(rng.choice(blocks.n_samples, size=k, replace=False)
                                  if blocks.sw is None else
                                  weighted_random_rows(blocks, k, rng))
        elif callable(init):
            legacy = np.random.RandomState(int(rng.integers(2**31 - 1)))
            centres = LocalKMeans._check_init_array(
                init(blocks.X, k, random_state=legacy),
                np.empty((0, blocks.n_features), blocks.dtype), k)
        else:
            centres = init
        return (centres - shift).astype(blocks.dtype)

    def _check_result(self, centres, inertia, weights, k, dtype):
        n_distinct = int(np.count_nonzero(weights))
        if n_distinct < k:
            warnings.warn(
                f"Number of distinct clusters ({n_distinct}) found smaller than "
                f"n_clusters ({k}). Possibly due to duplicate points in X.",
                ConvergenceWarning, stacklevel=3)
        if not (np.isfinite(inertia) and np.isfinite(centres).all()):
            raise ValueError(
                f"KMeans: squared distances overflow {dtype.name} on this data (values "
                "too large in magnitude). Rescale X (for example with "
                "dask_ml.preprocessing.StandardScaler)"
                + (" or pass it as float64." if dtype == np.float32 else "."))

    # ------------------------------------------------------------ inference

    def to_local(self):
        """The fitted model as an in-memory :class:`fastem.KMeans`.

        Returns
        -------
        model : fastem.KMeans
            Same parameters (``threads_per_task`` as ``n_threads``) and
            fitted centres; ``labels_`` is not copied (it is lazy here).
        """
        check_is_fitted(self, "cluster_centers_")
        local = LocalKMeans(**self._local_params(drop=("init",)))
        local.set_params(init=self.cluster_centers_, n_init=1)
        for name in ("cluster_centers_", "inertia_", "n_iter_", "n_features_in_"):
            setattr(local, name, getattr(self, name))
        local._fitted_state()
        return local

    def predict(self, X):
        """Nearest centre of each row, lazily.

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : dask.array.Array of shape (n_samples,), int32
        """
        return self._lazy(X, "predict", np.int32)

    def transform(self, X):
        """Distances to every centre, lazily.

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)

        Returns
        -------
        distances : dask.array.Array of shape (n_samples, n_clusters)
        """
        return self._lazy(X, "transform", width=self.cluster_centers_.shape[0])

    def fit_predict(self, X, y=None, sample_weight=None):
        """``fit(X).labels_`` (lazy)."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def fit_transform(self, X, y=None, sample_weight=None):
        """``fit(X).transform(X)`` (lazy)."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the weighted inertia of X (a number, computed).

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : dask.array.Array or array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        local, blocks = self._score_blocks(X, sample_weight)
        centres, shift = inference_frame(local.cluster_centers_, blocks.dtype)
        return -map_reduce(_tasks.lloyd_statistics, blocks, centres, shift,
                           int(self.threads_per_task))[2]


def lloyd_blocks(blocks, centres, shift, *, max_iter, tol, n_threads, verbose=0,
                 bounded=True):
    """Lloyd iterations over the blocks from ``centres`` (shifted frame).

    The in-memory ``lloyd`` with the passes as block tasks: same passes
    (with ``bounded``, the bounded pass, each block's bounds and
    labels kept on its worker), same M-step (``lloyd_update``), same
    empty-cluster rule, same stopping tests, a final pass in predict's
    frame (plain here; the in-memory fit's starts from the bounds and gives
    the same labels and inertia). The blocks' state is released at the end, whatever
    the outcome.

    Returns (centres (unshifted, X's dtype), inertia, n_iter, final
    weights, number of block states rebuilt because a worker was lost).
    """
    fit_id = uuid.uuid4().hex if bounded else None
    try:
        centres64, it, rebuilt = _iterate(blocks, centres, shift, fit_id, max_iter, tol,
                                          n_threads, verbose)
    finally:
        if fit_id is not None:
            _release_state(blocks, fit_id)
    dtype = blocks.dtype
    final = (centres64 + shift.astype(np.float64)).astype(dtype)
    frame_centres, frame = inference_frame(final, dtype)
    _, weights, inertia = map_reduce(_tasks.lloyd_statistics, blocks, frame_centres,
                                     frame, n_threads)
    return final, float(inertia), it + 1, weights, rebuilt


def _iterate(blocks, centres, shift, fit_id, max_iter, tol, n_threads, verbose):
    """The loop of ``lloyd_blocks``; returns (centres64, last iteration, rebuilt)."""
    centres64 = centres.astype(np.float64)
    previous, fresh, rebuilt = None, True, 0
    start = time.perf_counter()
    for it in range(max_iter):
        if fit_id is None:
            sums, weights, inertia = map_reduce(_tasks.lloyd_statistics, blocks, centres,
                                                shift, n_threads)
            n_changed = None
        else:
            sums, weights, counts = map_reduce(
                _tasks.bounded_statistics, blocks, fit_id, it, centres, shift,
                bound_updates(previous, centres), fresh, n_threads)
            n_changed, n_full, lost = (int(c) for c in counts)
            rebuilt += lost
            previous, fresh = centres, False
        strict = it > 0 and n_changed == 0  # same labels: the centres would not move
        if not strict:
            if not weights.all():
                _relocate_empty(blocks, centres, shift, sums, weights, n_threads,
                                fit_id, it)
                # bounds and incremental sums start over, unless the groups
                # keep them (as the in-memory fit)
                fresh = not relocation_keeps_bounds(*centres.shape, blocks.dtype)
            centres64, centre_shift = lloyd_update(sums, weights, centres64)
            centres = centres64.astype(blocks.dtype)
        if verbose:
            objective = (f"inertia {inertia:.6e}" if fit_id is None else
                         f"all distances for {n_full / blocks.n_samples:.1%} of rows, "
                         f"{n_changed} labels changed")
            print(f"Iteration {it:4d}: {objective}, centre shift "
                  f"{0.0 if strict else centre_shift:.3e}, "
                  f"{time.perf_counter() - start:.2f} s", file=sys.stderr)
        if strict or centre_shift <= tol:
            # plain passes: no label changed gives exactly 0 (the same sums twice)
            break
    return centres64, it, rebuilt


def _release_state(blocks, fit_id):
    if blocks.client is None:
        _state.release(fit_id)
    else:
        blocks.client.run(_state.release, fit_id)


def _relocate_empty(blocks, centres, shift, sums, weights, n_threads, fit_id=None,
                    step=None):
    """The in-memory rule over blocks: each block's farthest rows, merged by
    distance (ties by row index), then ``move_to_empty_clusters``. The
    labels of pass ``step`` come from the blocks' state when it has them."""
    n_empty = int(np.count_nonzero(weights == 0))
    parts = map_collect(_tasks.farthest, blocks, fit_id, step, centres, shift, n_empty,
                        n_threads)
    dist, index, rows, row_weights, labels = (np.concatenate(p) for p in zip(*parts))
    order = np.lexsort((index, -dist))[:n_empty]
    move_to_empty_clusters(sums, weights, rows[order], row_weights[order], labels[order])
