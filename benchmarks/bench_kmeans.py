"""asv benchmarks of fastem.KMeans and fastem.kmeans_plusplus.

Every benchmark is parametrised by dtype (float32, float64) and thread count
(1 and all cores). The data is a fixed-seed Gaussian mixture generated in
``setup`` (sizes from the FASTEM_BENCH_PROFILE profile, see ``_data.py``).

- ``time_fit`` / ``peakmem_fit``: Lloyd from one fixed initial centre array,
  ``tol=0``, 20 iterations -- the cost of an iteration, nothing else.
- ``track_inertia`` / ``track_n_iter``: a realistic fit (k-means++ seeding,
  default tolerance, fixed ``random_state``) -- the answer it reaches and how
  long it takes to get there, so a change that makes results worse shows up.
- ``time_predict``, ``time_kmeans_plusplus``, ``peakmem_kmeans_plusplus``,
  ``track_kmeans_plusplus_potential``.
- ``KMeansPlusPlusK3``: the k-means++ benchmarks at K3's shape (below).
- ``KMeansK3``, ``KMeansK4``, ``KMeansE1``: ``time_fit`` (and ``peakmem_fit``,
  not for E1) as above, at the shapes of issue 15's K3 (D=64, K=1024, 10 iterations),
  K4 (D=4, K=16, 20 iterations) and E1 (embeddings: D=768, K=1024,
  5 iterations). Their N is reduced in the default profile (K3 5e4 rows, K4
  1e6, E1 1e4; the issue's 1e6, 1e7 and 1e5 in the ``large`` profile), so that
  ``asv run --quick`` takes seconds per benchmark; compare.py's
  ``kmeans-k3``/``-k4``/``-e1`` workloads have the issue's sizes.
"""
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from ._data import inertia, initial_centers, make_mixture, sizes, thread_counts
from ._estimators import KMeans, kmeans_plusplus

FIT_ITER = 20


class _KMeansData:
    params = (["float32", "float64"], thread_counts())
    param_names = ["dtype", "n_threads"]
    timeout = 600
    workload = "kmeans"  # the profiles' key of the sizes
    fit_iter = FIT_ITER  # iterations of the fixed fit

    def setup(self, dtype, n_threads):
        self.n, self.d, self.k = sizes(self.workload)
        self.X = make_mixture(self.n, self.d, self.k, dtype=dtype, seed=0)
        self.init = initial_centers(self.X, self.k, seed=1).astype(dtype)
        # the whole process, BLAS included, gets n_threads cores
        self._limits = threadpool_limits(limits=n_threads)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")

    def teardown(self, dtype, n_threads):
        self._warnings.__exit__(None, None, None)
        self._limits.restore_original_limits()

    def _fixed_fit(self, n_threads, max_iter=None):
        return KMeans(
            n_clusters=self.k, init=self.init, n_init=1,
            max_iter=self.fit_iter if max_iter is None else max_iter, tol=0.0,
            n_threads=n_threads,
        ).fit(self.X)

    def _realistic_fit(self, n_threads):
        return KMeans(
            n_clusters=self.k, init="k-means++", n_init=1, random_state=0,
            n_threads=n_threads,
        ).fit(self.X)


class _TimeFit(_KMeansData):
    """``time_fit``: ``fit_iter`` Lloyd iterations from fixed initial centres,
    ``tol=0``."""

    def time_fit(self, dtype, n_threads):
        self._fixed_fit(n_threads)


class _FixedFit(_TimeFit):
    """``time_fit`` and ``peakmem_fit`` (the same fit)."""

    def peakmem_fit(self, dtype, n_threads):
        self._fixed_fit(n_threads)


class KMeansFit(_FixedFit):
    def track_inertia(self, dtype, n_threads):
        """Mean squared distance to the nearest centre (float64 recomputation)."""
        km = self._realistic_fit(n_threads)
        return inertia(self.X, km.cluster_centers_) / self.n

    track_inertia.unit = "mean sq. distance"

    def track_n_iter(self, dtype, n_threads):
        return int(self._realistic_fit(n_threads).n_iter_)

    track_n_iter.unit = "iterations"

    def track_fixed_inertia(self, dtype, n_threads):
        """Mean squared distance after the fixed iterations of time_fit."""
        km = self._fixed_fit(n_threads)
        return inertia(self.X, km.cluster_centers_) / self.n

    track_fixed_inertia.unit = "mean sq. distance"


class KMeansPredict(_KMeansData):
    def setup(self, dtype, n_threads):
        super().setup(dtype, n_threads)
        self.model = self._fixed_fit(n_threads, max_iter=3)

    def time_predict(self, dtype, n_threads):
        self.model.predict(self.X)

    def time_transform(self, dtype, n_threads):
        self.model.transform(self.X)


class KMeansPlusPlus(_KMeansData):
    def _seed(self, n_threads):
        return kmeans_plusplus(self.X, self.k, random_state=0, n_threads=n_threads)

    def time_kmeans_plusplus(self, dtype, n_threads):
        self._seed(n_threads)

    def peakmem_kmeans_plusplus(self, dtype, n_threads):
        self._seed(n_threads)

    def track_kmeans_plusplus_potential(self, dtype, n_threads):
        """Mean squared distance to the nearest seed (float64 recomputation)."""
        centers, _ = self._seed(n_threads)
        return inertia(self.X, centers) / self.n

    track_kmeans_plusplus_potential.unit = "mean sq. distance"


class KMeansPlusPlusK3(KMeansPlusPlus):
    """Greedy k-means++ at issue 15's K3 shape (D=64, K=1024): the seeding
    keeps 7-bit codes of the rows and its quantised bound rules out most
    rows of each step (``peakmem_`` includes the codes)."""

    workload = "kmeans-k3"


class KMeansK3(_FixedFit):
    """Issue 15's K3: large K (D=64, K=1024), 10 iterations."""

    workload = "kmeans-k3"
    fit_iter = 10


class KMeansK4(_FixedFit):
    """Issue 15's K4: low D (D=4, K=16), 20 iterations."""

    workload = "kmeans-k4"
    fit_iter = 20


class KMeansE1(_TimeFit):
    """Issue 15's E1: embeddings (D=768, K=1024), 5 iterations (no peakmem_:
    the slowest of the three, and its setup's data generation dominates the
    process's peak memory at the default size)."""

    workload = "kmeans-e1"
    fit_iter = 5
