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
from fastem._mixture import GaussianMixture

__all__ = [
    "ConvergenceWarning",
    "GaussianMixture",
    "NotFittedError",
    "build_info",
    "show_config",
]
