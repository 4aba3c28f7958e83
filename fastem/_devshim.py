"""TEMPORARY development shim (delete before merge): scikit-learn stand-ins
for fastem.KMeans / fastem.GaussianMixture until they land on main."""
import numpy as np
from sklearn.mixture import GaussianMixture as _SKGMM

from fastem import _persistence


class GaussianMixture(_SKGMM):
    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3,
                 reg_covar=1e-6, max_iter=100, n_init=1, init_params="kmeans",
                 weights_init=None, means_init=None, precisions_init=None,
                 random_state=None, verbose=0, verbose_interval=10, n_threads=None):
        super().__init__(n_components=n_components, covariance_type=covariance_type,
                         tol=tol, reg_covar=reg_covar, max_iter=max_iter, n_init=n_init,
                         init_params=init_params, weights_init=weights_init,
                         means_init=means_init, precisions_init=precisions_init,
                         random_state=random_state, verbose=verbose,
                         verbose_interval=verbose_interval)
        self.n_threads = n_threads

    def save(self, path):
        return _persistence.save_model(self, path)


_persistence._EXTRA_CLASSES.update(GaussianMixture=GaussianMixture)
