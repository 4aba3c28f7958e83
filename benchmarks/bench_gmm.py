"""asv benchmarks of fastem.GaussianMixture.

Parametrised by dtype (float32, float64), thread count (1 and all cores) and
covariance type (full, tied, diag, spherical). Data: a fixed-seed Gaussian
mixture generated in ``setup`` (FASTEM_BENCH_PROFILE, see ``_data.py``).

- ``time_fit`` / ``peakmem_fit``: EM from fixed initial weights, means and
  precisions, ``tol=0``, 20 iterations -- the cost of an iteration.
- ``track_lower_bound`` / ``track_n_iter``: a realistic fit (default
  initialisation and tolerance, fixed ``random_state``); the lower bound is
  the per-sample log-likelihood reached, so a worse answer is as visible as a
  slower one. ``track_fixed_lower_bound``: the one reached by ``time_fit``.
- ``time_predict_proba`` / ``time_score_samples`` on a fitted model.
"""
import warnings

from threadpoolctl import threadpool_limits

from ._data import initial_gmm_parameters, make_mixture, sizes, thread_counts
from ._estimators import GaussianMixture

FIT_ITER = 20
COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


class _GMMData:
    params = (["float32", "float64"], thread_counts(), COVARIANCE_TYPES)
    param_names = ["dtype", "n_threads", "covariance_type"]
    timeout = 600

    def setup(self, dtype, n_threads, covariance_type):
        self.n, self.d, self.k = sizes("gmm")
        self.X = make_mixture(self.n, self.d, self.k, dtype=dtype, seed=0)
        self.init = initial_gmm_parameters(self.X, self.k, covariance_type, seed=1)
        self._limits = threadpool_limits(limits=n_threads)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")  # tol=0 fits warn that they did not converge

    def teardown(self, dtype, n_threads, covariance_type):
        self._warnings.__exit__(None, None, None)
        self._limits.restore_original_limits()

    def _fixed_fit(self, n_threads, covariance_type, max_iter=FIT_ITER):
        weights, means, precisions = self.init
        return GaussianMixture(
            n_components=self.k, covariance_type=covariance_type, tol=0.0,
            max_iter=max_iter, n_init=1, init_params="random_from_data",
            weights_init=weights, means_init=means, precisions_init=precisions,
            random_state=0, n_threads=n_threads,
        ).fit(self.X)

    def _realistic_fit(self, n_threads, covariance_type):
        return GaussianMixture(
            n_components=self.k, covariance_type=covariance_type, random_state=0,
            n_threads=n_threads,
        ).fit(self.X)


class GaussianMixtureFit(_GMMData):
    def time_fit(self, dtype, n_threads, covariance_type):
        self._fixed_fit(n_threads, covariance_type)

    def peakmem_fit(self, dtype, n_threads, covariance_type):
        self._fixed_fit(n_threads, covariance_type)

    def track_lower_bound(self, dtype, n_threads, covariance_type):
        return float(self._realistic_fit(n_threads, covariance_type).lower_bound_)

    track_lower_bound.unit = "log-lik/sample"

    def track_n_iter(self, dtype, n_threads, covariance_type):
        return int(self._realistic_fit(n_threads, covariance_type).n_iter_)

    track_n_iter.unit = "iterations"

    def track_fixed_lower_bound(self, dtype, n_threads, covariance_type):
        return float(self._fixed_fit(n_threads, covariance_type).lower_bound_)

    track_fixed_lower_bound.unit = "log-lik/sample"


class GaussianMixturePredict(_GMMData):
    def setup(self, dtype, n_threads, covariance_type):
        super().setup(dtype, n_threads, covariance_type)
        self.model = self._fixed_fit(n_threads, covariance_type, max_iter=3)

    def time_predict_proba(self, dtype, n_threads, covariance_type):
        self.model.predict_proba(self.X)

    def time_score_samples(self, dtype, n_threads, covariance_type):
        self.model.score_samples(self.X)
