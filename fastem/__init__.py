"""fastem: K-means and Gaussian mixtures by EM, fast and lean on large CPU data.

Public API
----------
KMeans
    Lloyd's algorithm on a chunked Cython/OpenMP core, k-means++ seeding.
kmeans_plusplus
    Greedy k-means++ seeding on its own.
GaussianMixture
    EM for full, tied, diag and spherical covariances.
show_config
    How the compiled core was built (OpenMP, debug) and thread defaults.
"""
__version__ = "0.1.0"

from fastem._config import build_info, show_config
from fastem._exceptions import ConvergenceWarning, NotFittedError
from fastem._init import kmeans_plusplus
from fastem._kmeans import KMeans

__all__ = [
    "ConvergenceWarning",
    "KMeans",
    "NotFittedError",
    "build_info",
    "kmeans_plusplus",
    "show_config",
]
