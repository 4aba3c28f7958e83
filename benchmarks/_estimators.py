"""The estimators the benchmarks measure: fastem's public API.

TEMPORARY: until fastem.KMeans / kmeans_plusplus / GaussianMixture exist, fall
back to scikit-learn's with an ``n_threads`` argument that is ignored, so the
suite can be exercised. Removed before the branch is merged.
"""
try:
    from fastem import KMeans
except ImportError:  # pragma: no cover - temporary shim
    from sklearn.cluster import KMeans as _SKKMeans

    class KMeans(_SKKMeans):
        def __init__(self, n_clusters=8, *, init="k-means++", n_init=1, max_iter=300,
                     tol=1e-4, verbose=0, random_state=None, n_threads=None):
            super().__init__(n_clusters=n_clusters, init=init, n_init=n_init,
                             max_iter=max_iter, tol=tol, verbose=verbose,
                             random_state=random_state)
            self.n_threads = n_threads

try:
    from fastem import kmeans_plusplus
except ImportError:  # pragma: no cover - temporary shim
    from sklearn.cluster import kmeans_plusplus as _skpp

    def kmeans_plusplus(X, n_clusters, *, sample_weight=None, random_state=None,
                        n_local_trials=None, n_threads=None):
        return _skpp(X, n_clusters, sample_weight=sample_weight,
                     random_state=random_state, n_local_trials=n_local_trials)

try:
    from fastem import GaussianMixture
except ImportError:  # pragma: no cover - temporary shim
    from sklearn.mixture import GaussianMixture as _SKGMM

    class GaussianMixture(_SKGMM):
        def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3,
                     reg_covar=1e-6, max_iter=100, n_init=1, init_params="kmeans",
                     weights_init=None, means_init=None, precisions_init=None,
                     random_state=None, n_threads=None):
            super().__init__(n_components=n_components, covariance_type=covariance_type,
                             tol=tol, reg_covar=reg_covar, max_iter=max_iter, n_init=n_init,
                             init_params=init_params, weights_init=weights_init,
                             means_init=means_init, precisions_init=precisions_init,
                             random_state=random_state)
            self.n_threads = n_threads

__all__ = ["GaussianMixture", "KMeans", "kmeans_plusplus"]
