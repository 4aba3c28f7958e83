"""fastem.dask.GaussianMixture: EM over the blocks of a dask array.

The EM runs, the M-step and the stopping test are the in-memory
estimator's own (``_em_runs``, ``_accurate_m_step``, ``_store_fit``); only
the passes differ: ``ctx.run`` runs ``pass_statistics`` on every block
and adds the statistics in block order.
"""
import math
from dataclasses import replace

import dask
import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils.validation import check_is_fitted

from fastem._kmeans import inference_frame
from fastem._mixture import (
    GaussianMixture as LocalGaussianMixture,
    PassSpec,
    _seed_int,
    data_context,
    pass_statistics,
)
from fastem._parallel import blas_single_threaded
from fastem._validation import check_random_state
from fastem.dask import _tasks
from fastem.dask._base import DaskEstimator
from fastem.dask._kmeans import KMeans
from fastem.dask._reduce import map_collect, map_reduce
from fastem.dask._seeding import kmeans_parallel_blocks

# fitted attributes copied between this estimator and the in-memory one
_FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
           "converged_", "n_iter_", "lower_bound_", "lower_bounds_", "n_features_in_",
           "_fit_covariance_type")


class _BlockMixture(LocalGaussianMixture):
    """The in-memory estimator with its initial pass over dask blocks."""

    def _initial_pass(self, ctx, rng):
        blocks, threads, K = ctx.X, ctx.n_threads, self.n_components
        init = self.init_params

        def spec(mode, refs, stat_type):
            return PassSpec(ctx.cov_type, K, mode, ctx.shift, None, refs,
                            stat_type, True, threads)

        if init == "kmeans":
            km = KMeans(n_clusters=K, n_init=1, random_state=_seed_int(rng),
                        threads_per_task=threads)
            km._fit_blocks(blocks, threads)
            centres, frame = inference_frame(km.cluster_centers_, blocks.dtype)
            return lambda refs, stat_type, repeated=False: map_reduce(
                _tasks.mixture_labels_pass, blocks, spec("labels", refs, stat_type),
                centres, frame, threads)
        if init == "random":
            seed = _seed_int(rng)
            return lambda refs, stat_type, repeated=False: map_reduce(
                _tasks.mixture_random_pass, blocks, spec("given", refs, stat_type), seed)
        if init == "k-means++":  # on Dask: k-means|| seeds (unit weights)
            rows = kmeans_parallel_blocks(blocks, K, rng, threads)
            weights = None
        else:  # random_from_data
            rows, weights = _random_rows(blocks, K, rng)
        labels = np.arange(K, dtype=np.int32)

        def seeds_pass(refs, stat_type, repeated=False):
            with blas_single_threaded():
                return pass_statistics(rows, weights, spec("labels", refs, stat_type),
                                       labels=labels)
        return seeds_pass


def _random_rows(blocks, K, rng):
    """K distinct rows of positive weight, uniformly (the in-memory draw:
    the same ranks among the positive-weight rows, so the same rows)."""
    counts = np.array([c[1] for c in map_collect(_tasks.check_block, blocks)])
    ranks = rng.choice(int(counts.sum()), size=K, replace=False)
    ends = np.cumsum(counts)
    block_of = np.searchsorted(ends, ranks, side="right")
    rows = np.empty((K, blocks.n_features), blocks.dtype)
    weights = np.empty(K, blocks.dtype)
    for b in np.unique(block_of):
        sel = np.flatnonzero(block_of == b)
        local = ranks[sel] - (ends[b - 1] if b else 0)
        r, w = dask.delayed(_tasks.positive_rows, pure=True)(
            blocks.x_blocks[b], blocks.w_blocks[b], local, int(b),
            int(blocks.starts[b])).compute()
        rows[sel], weights[sel] = r, w
    return rows, (None if blocks.sw is None else weights)


class GaussianMixture(DaskEstimator, DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by EM on a Dask array.

    The parameters, methods and fitted attributes of
    :class:`fastem.GaussianMixture` (without ``partial_fit``), with
    ``threads_per_task`` in place of ``n_threads``. Each EM iteration is one
    pass over X's row blocks: a task per block runs fastem's fused E-step
    kernel and returns the block's N_k, S1_k, S2_k and log-likelihood,
    added in block order by a tree reduction; the M-step (the in-memory
    estimator's, with its exact-statistics passes about the new means when
    a mean moves far) and the stopping test run on the client. From the same
    initial parameters the result equals the in-memory fit's (float64: to
    about 1e-12), and it is bit-identical for any number of workers and any
    chunking of X (X is rechunked to ``block_rows`` rows per block).

    Parameters
    ----------
    n_components, covariance_type, tol, reg_covar, max_iter, n_init, \
weights_init, means_init, precisions_init, random_state, warm_start, \
verbose, verbose_interval
        As in :class:`fastem.GaussianMixture`.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        'kmeans': labels of :class:`fastem.dask.KMeans` (k-means|| seeding);
        'k-means++': one k-means|| seed per component; 'random': random
        responsibilities (drawn per block); 'random_from_data': random rows
        (the same rows as the in-memory fit for the same ``random_state``).
    threads_per_task : int, default=1
        OpenMP threads of each block task.
    block_rows : int, default=None
        Rows per block (None: X in equal blocks, as few as give at most
        256 MiB per block, at least 8 and an even number of them, 4096 rows
        at least).
    persist : 'auto' or bool, default='auto'
        Keep the rechunked X in the workers' memory during the fit ('auto':
        when it takes at most half of the cluster's memory).

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_, \
converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_
        As in :class:`fastem.GaussianMixture` (NumPy arrays).
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3,
                 reg_covar=1e-6, max_iter=100, n_init=1, init_params="kmeans",
                 weights_init=None, means_init=None, precisions_init=None,
                 random_state=None, warm_start=False, verbose=0, verbose_interval=10,
                 threads_per_task=1, block_rows=None, persist="auto"):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.threads_per_task = threads_per_task
        self.block_rows = block_rows
        self.persist = persist

    def _local(self, cls=LocalGaussianMixture):
        local = cls(**self._local_params())
        for name in _FITTED:
            if hasattr(self, name):
                setattr(local, name, getattr(self, name))
        return local

    def _fit_blocks(self, blocks, threads):
        local = self._local(_BlockMixture)
        local._check_params()
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        state = None if do_init else local._fitted_state()
        n_samples, n_features, dtype = blocks.n_samples, blocks.n_features, blocks.dtype
        K = self.n_components
        if K > n_samples:
            raise ValueError(f"n_components={K} must be <= n_samples={n_samples}: a "
                             "mixture cannot have more components than samples.")
        if state is not None and (state.means.shape != (K, n_features)
                                  or state.cov_type != self.covariance_type):
            raise ValueError("warm_start=True needs the same n_components, covariance_type "
                             "and features as the previous fit; set warm_start=False.")
        inits = local._checked_inits(np.empty((0, n_features), dtype))
        _, n_positive = map_reduce(_tasks.check_block, blocks)
        if n_positive < K:
            raise ValueError(f"Only {n_positive} samples have a positive weight, fewer "
                             f"than n_components={K}.")

        def run(spec):
            return map_reduce(_tasks.mixture_pass, blocks, spec._replace(n_threads=threads))

        ctx = replace(data_context(run, n_samples, n_features, dtype, self.covariance_type),
                      X=blocks, n_threads=threads)
        n_init = self.n_init if do_init else 1
        best = local._em_runs(ctx, check_random_state(self.random_state), n_init, state,
                              inits)
        local._store_fit(best, n_init, dtype)
        local.n_features_in_ = n_features
        for name in _FITTED:
            setattr(self, name, getattr(local, name))
        return self

    # ------------------------------------------------------------ inference

    def to_local(self):
        """The fitted model as an in-memory :class:`fastem.GaussianMixture`.

        Returns
        -------
        model : fastem.GaussianMixture
            Same parameters (``threads_per_task`` as ``n_threads``) and
            fitted attributes.
        """
        check_is_fitted(self, "means_")
        local = self._local()
        local._fitted_state()
        return local

    def predict(self, X):
        """Most likely component of each sample (lazy dask array, int64).

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : dask.array.Array of shape (n_samples,)
        """
        return self._lazy(X, "predict", np.int64)

    def predict_proba(self, X):
        """Responsibilities (lazy dask array, X's float dtype).

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)

        Returns
        -------
        resp : dask.array.Array of shape (n_samples, n_components)
        """
        return self._lazy(X, "predict_proba", width=self.means_.shape[0])

    def score_samples(self, X):
        """``log p(x)`` of each sample (lazy dask array, X's float dtype).

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : dask.array.Array of shape (n_samples,)
        """
        return self._lazy(X, "score_samples")

    def fit_predict(self, X, y=None, sample_weight=None):
        """``fit(X).predict(X)`` (lazy labels)."""
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _log_likelihood(self, X, sample_weight=None):
        local, blocks = self._score_blocks(X, sample_weight)
        ll, total = map_reduce(_tasks.mixture_score, blocks, local)
        return ll, total, blocks.n_samples, local

    def score(self, X, y=None, sample_weight=None):
        """Average log-likelihood per sample, weighted (a number).

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : dask.array.Array or array-like of shape (n_samples,), default=None

        Returns
        -------
        log_likelihood : float
        """
        ll, total, _, _ = self._log_likelihood(X, sample_weight)
        return float(ll / total)

    def bic(self, X):
        """Bayesian information criterion on X (a number, lower is better).

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)

        Returns
        -------
        bic : float
        """
        ll, _, n, local = self._log_likelihood(X)
        return -2 * ll + local._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion on X (a number, lower is better).

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)

        Returns
        -------
        aic : float
        """
        ll, _, _, local = self._log_likelihood(X)
        return -2 * ll + 2 * local._n_parameters()

    def sample(self, n_samples=1):
        """Draw samples (as :meth:`fastem.GaussianMixture.sample`, NumPy arrays)."""
        return self.to_local().sample(n_samples)
