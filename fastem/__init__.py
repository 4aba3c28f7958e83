"""fastem: K-means and Gaussian mixtures by EM, fast and lean on large CPU data.

Public API
----------
KMeans
    Lloyd's algorithm on a chunked Cython/OpenMP core, k-means++ seeding.
kmeans_plusplus
    Greedy k-means++ seeding on its own.
MiniBatchKMeans
    Mini-batch k-means (fit by sampled batches, or partial_fit on a stream).
GaussianMixture
    EM for full, tied, diag and spherical covariances (``fit``), and
    stepwise online EM on batches (``partial_fit``).
adjusted_rand_score
    scikit-learn's adjusted Rand index, re-exported (select_k uses it).
select_k, SelectKResult
    Choosing the number of clusters: elbow, BIC/AIC, stability.
load
    Load a model saved with ``estimator.save(path)``.
show_config
    How the compiled core was built (OpenMP, debug) and thread defaults.
"""
__version__ = "0.1.0"

from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import adjusted_rand_score

from fastem._config import build_info, show_config
from fastem._init import kmeans_plusplus
from fastem._kmeans import KMeans
from fastem._minibatch import MiniBatchKMeans
from fastem._mixture import GaussianMixture
from fastem._app.persistence import load
from fastem._app.select_k import SelectKResult, select_k

__all__ = [
    "ConvergenceWarning",
    "GaussianMixture",
    "KMeans",
    "MiniBatchKMeans",
    "NotFittedError",
    "SelectKResult",
    "adjusted_rand_score",
    "build_info",
    "kmeans_plusplus",
    "load",
    "select_k",
    "show_config",
]
