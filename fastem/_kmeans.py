"""KMeans estimator: validation, seeding, the Lloyd loop and stopping.

Each Lloyd iteration is one compiled pass over X (``lloyd_pass``) that
assigns every row to its nearest centre and returns, per centre, the weighted
sum of its rows, their total weight and their squared error. Everything else
here is O(k * d) work per iteration.
"""
import sys
import time
import warnings

import numpy as np

from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from fastem import _sparse
from fastem._base import ModelFileMixin, check_data, unchanged_on_error
from fastem._init import greedy_kmeans_plusplus, kmeans_parallel, random_rows
from fastem._kernels import load_kernels
from fastem._parallel import blas_single_threaded, chunk_rows
from fastem._separation import half_separations
from fastem._stats import column_mean_var, frame_shift
from fastem._validation import (
    check_array,
    check_fitted_array,
    check_fitted_int,
    check_int,
    check_option,
    check_random_state,
    check_real,
    check_sample_weight,
    effective_n_threads,
)
_lloyd = load_kernels("_lloyd")
_bounded = load_kernels("_bounded")
EPS64 = np.finfo(np.float64).eps  # 2^-52


class KMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin,
             ModelFileMixin, BaseEstimator):
    """K-means clustering by Lloyd's algorithm on a parallel compiled core.

    A drop-in for ``sklearn.cluster.KMeans``: same parameters, methods and
    fitted attributes. Each iteration is a single pass over X in row chunks
    (distances and nearest centre in registers, per-centre sums); float32
    data stays float32 in the distance computation while every sum is
    accumulated in float64. Results are bit-identical for any number of
    threads and any SIMD build.

    scipy.sparse input (CSR; other formats are converted to CSR once) is
    clustered without densifying it: the cross terms come from each row's
    non-zeros, centres stay dense (see the README's "Sparse data").

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {'k-means++', 'k-means||', 'random'}, array-like of shape (n_clusters, n_features) or callable, default='k-means++'
        Seeding. 'k-means++': greedy k-means++ (``2 + log(k)`` candidates per
        step). 'k-means||': k-means|| (Bahmani et al. 2012; 5 rounds of
        independent draws with oversampling ``l = 2k``, then weighted greedy
        k-means++ on the candidates; the default of :mod:`fastem.dask`).
        'random': distinct rows drawn with probability proportional to
        their weight. An array: the initial centres. A callable
        ``init(X, n_clusters, random_state)`` returning such an array.
    n_init : 'auto' or int, default='auto'
        Number of seedings; the run with the lowest inertia is kept. 'auto'
        means 1 for 'k-means++', 'k-means||' or an array, 10 for 'random' or a
        callable.
    max_iter : int, default=300
        Maximum number of Lloyd iterations per run.
    tol : float, default=1e-4
        Stop when the squared centre shift summed over all centres is at most
        ``tol`` times the mean per-feature variance of X (scikit-learn's
        definition). Iteration also stops, strictly converged, as soon as no
        label changes.
    verbose : int, default=0
        Print one line per iteration to stderr (iteration, inertia, changed
        labels, centre shift, elapsed time).
    random_state : int, numpy Generator or RandomState, default=None
        Seed of the initialisation.
    copy_x : bool, default=True
        Accepted for scikit-learn compatibility. fastem never modifies X and
        never needs a centred copy of it, so this has no effect.
    algorithm : {'auto', 'lloyd', 'elkan'}, default='auto'
        'lloyd': every iteration computes all n x k distances. 'auto' and
        'elkan': the same Lloyd iterates with distance bounds (Hamerly's
        method; above 64 centres, 32 in float64, Yinyang's bounds per
        group of centres): a row whose centre provably stays the nearest
        is skipped without being read, and a row that must be searched is
        searched only in the groups its bounds do not exclude, so after
        the first iterations a pass touches little more than the bounds.
        Both give the same labels and centres up to floating-point ties. On sparse X the same holds, with
        'auto' bounded only for ``n_clusters > 8`` (below that a bound
        check reads as much of the centres as a full search; measured in
        ``fastem._sparse.use_bounds``) and 'elkan' always bounded. On dense
        X with few features (``n_features <= 8`` in float32, 10 in
        float64), 'auto' runs plain passes: there a pass computes its
        distances directly, faster than the bounds can save (see
        ``fastem._kmeans.use_bounds``).
    n_threads : int, default=None
        OpenMP threads; None uses every core allowed by OMP_NUM_THREADS and
        the CPU affinity mask. Larger values are capped to that number;
        negative values count back from it (-1: all, -2: all but one).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Centres, in X's float dtype.
    labels_ : ndarray of shape (n_samples,), int32
        Index of the nearest centre of each training row.
    inertia_ : float
        Weighted sum of squared distances of the rows to their centres.
    n_iter_ : int
        Lloyd iterations of the best run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.

    Notes
    -----
    Empty clusters are relocated to the rows farthest from their centres, as
    in scikit-learn. Distances use ``||x||^2 - 2 x.c + ||c||^2`` computed in a
    frame shifted by the data mean, so that float32 data far from the origin
    keeps its precision; the inertia is summed from exact per-coordinate
    differences in float64.
    """

    # n_init='auto' for 'random' or a callable init
    _random_n_init = 10

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto",
                 max_iter=300, tol=1e-4, verbose=0, random_state=None,
                 copy_x=True, algorithm="auto", n_threads=None):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.n_threads = n_threads

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float32 and float64 are used as they are; other
            numeric dtypes are converted to float64 once. Sparse data are
            used as CSR (other formats converted once; never densified).
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight counts as that many
            repeated rows.

        Returns
        -------
        self : KMeans
        """
        with unchanged_on_error(self):
            return self._fit(X, sample_weight)

    def _fit(self, X, sample_weight):
        k, max_iter, tol, algorithm, n_threads = self._check_params()
        X = check_data(self, X, reset=True, accept_sparse=True)
        n_samples, n_features = X.shape
        if k > n_samples:
            raise ValueError(
                f"n_samples={n_samples} should be >= n_clusters={k}: ask for at "
                "most as many clusters as there are samples."
            )
        sw = check_sample_weight(sample_weight, n_samples, X.dtype)
        init, n_init = self._check_init(X, k)
        rng = check_random_state(self.random_state)

        sparse = _sparse.issparse(X)
        if sparse:  # sparse rows are never shifted (a shifted sparse row is dense)
            mean, var = _sparse.column_mean_var(X)
            shift = np.zeros(n_features, dtype=X.dtype)
        else:
            mean, var = column_mean_var(X, n_threads=n_threads)
            shift = frame_shift(mean, var, X.dtype)
        abs_tol = float(np.mean(var)) * tol
        rows = _lloyd_chunk_rows(k, n_features, X.dtype, X.shape[0])

        best = None
        with blas_single_threaded():
            for run in range(n_init):
                centres = self._initial_centres(X, k, init, sw, shift, rng, n_threads)
                if sparse:
                    result = _sparse.lloyd(X, sw, centres, max_iter=max_iter, tol=abs_tol,
                                           n_threads=n_threads, verbose=self.verbose,
                                           bounded=_sparse.use_bounds(algorithm, k))
                else:
                    result = lloyd(X, sw, centres, shift, max_iter=max_iter,
                                   tol=abs_tol, chunk=rows, n_threads=n_threads,
                                   verbose=self.verbose,
                                   bounded=use_bounds(algorithm, k, n_features, X.dtype))
                if best is None or result[2] < best[2]:
                    best = result
        labels, centres, inertia, n_iter = best

        n_distinct = int(np.count_nonzero(np.bincount(labels, minlength=k)))
        if n_distinct < k:
            warnings.warn(
                f"Number of distinct clusters ({n_distinct}) found smaller than "
                f"n_clusters ({k}). Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=2,
            )
        if not (np.isfinite(inertia) and np.isfinite(centres).all()):
            raise ValueError(
                "KMeans: squared distances overflow "
                f"{X.dtype.name} on this data (values too large in magnitude). "
                "Rescale X (for example with sklearn.preprocessing.StandardScaler)"
                + (" or pass it as float64." if X.dtype == np.float32 else ".")
            )
        self.cluster_centers_ = centres
        self.labels_ = labels
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR without densifying (fastem._sparse)
        return tags

    @property
    def _n_features_out(self):
        # transform's columns (get_feature_names_out), also for loaded models
        return self.cluster_centers_.shape[0]

    def _check_params(self):
        """Validated (n_clusters, max_iter, tol, algorithm, n_threads)."""
        k = check_int(self.n_clusters, "n_clusters", min_value=1)
        max_iter = check_int(self.max_iter, "max_iter", min_value=1)
        tol = check_real(self.tol, "tol", min_value=0.0)
        algorithm = check_option(self.algorithm, "algorithm", {"auto", "lloyd", "elkan"})
        return k, max_iter, tol, algorithm, effective_n_threads(self.n_threads)

    def _fitted_state(self):
        """The fitted centres, checked: (k, d) finite float, C-contiguous.

        Inference takes k and d from ``cluster_centers_`` (never from
        ``n_clusters``, which ``set_params`` may have changed) and checks
        them against ``n_features_in_`` before any kernel reads them.
        """
        check_is_fitted(self, "cluster_centers_")
        centres = self.cluster_centers_
        if not isinstance(centres, np.ndarray) or centres.ndim != 2 or 0 in centres.shape:
            raise ValueError(
                f"{type(self).__name__}.cluster_centers_ must be a non-empty 2-D array, got "
                f"{getattr(centres, 'shape', type(centres).__name__)}. The fitted "
                "state is inconsistent: refit the estimator."
            )
        d = check_fitted_int(self, "n_features_in_", min_value=1)
        return check_fitted_array(self, "cluster_centers_", (centres.shape[0], d),
                                  coordinates=True)

    def _check_init(self, X, k):
        init = self.init
        n_init = self.n_init
        if isinstance(init, str):
            check_option(init, "init", {"k-means++", "k-means||", "random"})
            auto_n_init = 1 if init in ("k-means++", "k-means||") else self._random_n_init
        elif callable(init):
            auto_n_init = self._random_n_init
        else:
            init = self._check_init_array(init, X, k)
            auto_n_init = 1
        if isinstance(n_init, str):
            check_option(n_init, "n_init", {"auto"})
            n_init = auto_n_init
        else:
            n_init = check_int(n_init, "n_init", min_value=1)
        if not isinstance(init, str) and not callable(init) and n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one "
                f"init in {type(self).__name__} instead of n_init={n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
            n_init = 1
        return init, n_init

    @staticmethod
    def _check_init_array(init, X, k):
        centres = check_array(init, name="init", dtype=X.dtype.type)
        if centres.shape != (k, X.shape[1]):
            raise ValueError(
                f"init array has shape {centres.shape}, but n_clusters={k} and X "
                f"has {X.shape[1]} features: expected shape ({k}, {X.shape[1]})."
            )
        return centres

    def _initial_centres(self, X, k, init, sw, shift, rng, n_threads):
        """Initial centres in X's dtype, in the shifted frame (c - shift)."""
        if isinstance(init, str) and init == "k-means++":
            centres = _rows(X, greedy_kmeans_plusplus(X, k, sw, rng, None, n_threads))
        elif isinstance(init, str) and init == "k-means||":
            if _sparse.issparse(X):
                raise ValueError(
                    "init='k-means||' does not take sparse X yet: use "
                    "init='k-means++' (the default) or 'random' for sparse data.")
            centres = kmeans_parallel(X, k, sw, rng, n_threads)
        elif isinstance(init, str):  # 'random'
            centres = _rows(X, random_rows(X.shape[0], k, sw, rng))
        elif callable(init):
            legacy = np.random.RandomState(int(rng.integers(2**31 - 1)))
            centres = self._check_init_array(init(X, k, random_state=legacy), X, k)
        else:
            centres = init
        return (centres - shift).astype(X.dtype)

    # ------------------------------------------------------------ predict

    def _prepare(self, X, sample_weight=None):
        centres = self._fitted_state()
        X = check_data(self, X, reset=False, accept_sparse=True)
        sw = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        return (X, sw) + inference_frame(centres, X.dtype, sparse=_sparse.issparse(X))

    def _assign(self, X, sample_weight=None):
        X, sw, centres, shift = self._prepare(X, sample_weight)
        with blas_single_threaded():
            labels, inertia, _, _ = assign_pass(X, sw, centres, shift,
                                                effective_n_threads(self.n_threads),
                                                with_sums=False)
        return labels, inertia

    def predict(self, X):
        """Index of the nearest centre of each row of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
        """
        return self._assign(X)[0]

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit and return ``labels_`` (equal to ``fit(X).predict(X)``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distances from each row of X to every centre.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters), X's float dtype
        """
        X, _, centres, shift = self._prepare(X)
        k, d = centres.shape
        if _sparse.issparse(X):
            out = _sparse.pairwise_sqdist(X, centres, effective_n_threads(self.n_threads))
            return np.sqrt(out, out=out)
        out = np.empty((X.shape[0], k), dtype=X.dtype)
        with blas_single_threaded():
            _lloyd.pairwise_sqdist(X, _shift_or_empty(shift), centres, out,
                               _lloyd_chunk_rows(k, d, X.dtype, X.shape[0]),
                               effective_n_threads(self.n_threads))
        return np.sqrt(out, out=out)

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, then return distances to the centres (``fit(X).transform(X)``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the weighted inertia of X under the fitted centres.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
            ``-sum_i w_i ||x_i - c_{label(i)}||^2`` (higher is better).
        """
        return -self._assign(X, sample_weight)[1]


def inference_frame(centres, dtype, sparse=False):
    """Centres in the frame the inference passes use, and its shift.

    The centres' mean and spread stand in for the data's (see
    ``frame_shift``). ``fit`` labels the training rows with the same frame,
    so ``labels_`` equals ``predict(X)`` bit for bit. For ``sparse`` data
    the shift is zero (a shifted sparse row is dense).

    Returns
    -------
    centres : ndarray (k, d) of ``dtype``, C-contiguous, ``c - shift``
    shift : ndarray (d,) of ``dtype``
    """
    centres = centres.astype(dtype, copy=False)
    if sparse:
        return np.ascontiguousarray(centres), np.zeros(centres.shape[1], dtype=dtype)
    # the float64 mean and variance of the centres, as np.mean and np.var
    # compute them (same sums, same order), without their per-call overhead
    # (a mini-batch step calls this once per batch)
    c64 = centres.astype(np.float64)
    mean = np.add.reduce(c64, axis=0) / c64.shape[0]
    c64 -= mean
    var = np.add.reduce(np.square(c64, out=c64), axis=0) / c64.shape[0]
    shift = frame_shift(mean, var, dtype)
    return np.ascontiguousarray(centres - shift), shift


def assign_pass(X, sample_weight, centres, shift, n_threads, with_sums=True):
    """One ``lloyd_pass`` over X with centres in the frame of ``shift``.

    BLAS must already be single-threaded. Sparse X go to
    ``fastem._sparse.assign_pass`` (with a zero shift), which skips the sums
    when ``with_sums`` is False (the dense pass computes them in passing).

    Returns
    -------
    labels : ndarray (n_samples,), int32, index of the nearest centre
    inertia : float, for the centres passed in
    sums : ndarray (k, d), float64, sum over assigned rows of w (x - shift)
    weights : ndarray (k,), float64, sum of w over assigned rows
    """
    if _sparse.issparse(X):  # the frame of sparse data is never shifted
        if shift.any():
            raise ValueError("internal error: sparse data with a shifted frame")
        return _sparse.assign_pass(X, sample_weight, centres, n_threads, with_sums)
    k, d = centres.shape
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    sums = np.empty((k, d))
    weights = np.empty(k)
    chunk = _lloyd_chunk_rows(k, d, X.dtype, X.shape[0])
    _, inertia, _ = _lloyd.lloyd_pass(
        X, _weights_or_empty(sample_weight, X.dtype), _shift_or_empty(shift),
        centres, labels, sums, weights, np.nan, chunk, n_threads)
    return labels, inertia, sums, weights


def _rows(X, rows):
    """Rows of X as a dense array (a copy), for dense or sparse X."""
    return _sparse.dense_rows(X, rows) if _sparse.issparse(X) else X[rows]


def _weights_or_empty(sample_weight, dtype):
    """Kernels take a length-0 array to mean unit weights."""
    return sample_weight if sample_weight is not None else np.empty(0, dtype)


def _shift_or_empty(shift):
    """Kernels take a length-0 shift to mean the rows are used as they are."""
    return shift if shift.any() else shift[:0]


def _lloyd_chunk_rows(n_clusters, n_features, dtype, n_rows):
    """Rows per chunk of the Lloyd and bounded passes.

    A chunk holds its shifted rows (d) and, on the GEMM path, its distance
    block (k) per row; the tiles path (``_kmeans_common.tiles_path``) has
    no block but takes the same chunks, so that every build adds the rows
    in the same order. At least 256 rows whatever the width: each chunk's
    GEMM packs the whole k x d centre matrix, which a chunk of 64 rows
    (what the L2 target gives past k + d = 1280 float32 values) does not
    amortise. Measured with one ``lloyd_pass`` (float32, 2 threads, chunk
    of 64 / 128 / 256 rows): n=1e5, d=768, k=1024: 1.87 / 1.48 / 1.42 s;
    n=7e4, d=784, k=256: 0.44 / 0.39 / 0.37 s (512 rows: no better).
    scikit-learn's chunks are 256 rows too.
    """
    return chunk_rows(n_clusters + n_features, np.dtype(dtype).itemsize, n_rows=n_rows,
                      min_rows=256)


def use_bounds(algorithm, n_clusters, n_features, dtype):
    """Whether a dense fit runs bounded passes (Hamerly's, Yinyang's groups
    at large k: ``_bounded.bound_groups``): 'elkan' with
    k >= 2, 'auto' with k >= 2 unless the plain pass takes its low-D path,
    never 'lloyd'.

    Why not at low D: there the plain pass (``_lloyd.lloyd_pass``, see
    ``_lloyd.uses_lowd_path``) computes a row's k distances in registers
    at a few ns per row, while a bounded pass still reads and writes the
    bounds of every row and computes the full distances of the rows its
    bounds fail. Measured (before the tiles of csrc/fe_tiles.h) with
    ``benchmarks/compare.py kmeans-k4`` (N = 1e7, D = 4, K = 16 float32,
    20 iterations, 2 threads, other jobs loading the machine): plain 1.22
    / 1.48 s, bounded 3.69 / 3.94 s;
    and at N = 5e5, 5 iterations, K = 16 to 1024, plain / bounded time
    0.38-0.50 at D = 2 and 4, 0.65-0.81 at D = 8 (float32), 0.31-0.83 at
    D <= 8 (float64), 0.82-0.91 at D = 10 float64 even by the GEMM path.

    Elsewhere a bounded pass costs more than a plain one when it prunes
    little (a fresh bounded pass is a plain pass that also keeps the
    runner-up and the bounds) and wins once it prunes. With the tiles, best
    of 3, 2 threads, float32, ``compare.py`` in the Haswell and SkylakeX
    BLAS settings (BLAS no longer computes these distances), bounded /
    plain: K1 (N = 1e6, D = 32, K = 64, 20 iterations) 0.297 / 0.336 s and
    0.310 / 0.379 s; K3 (D = 64, K = 1024, 10) 2.667 / 3.532 and 2.655 /
    3.668; E1 (N = 1e5, D = 768, K = 1024, 5) 2.386 / 2.501 and 2.152 /
    2.441; E2 (N = 7e4, D = 784, K = 256, 10) 0.625 / 0.890 and 0.598 /
    0.845.
    """
    if algorithm == "lloyd" or n_clusters < 2:
        return False
    if algorithm == "elkan":
        return True
    return not _lloyd.uses_lowd_path(n_features, np.dtype(dtype).itemsize)


def lloyd(X, sample_weight, centres, shift, *, max_iter, tol, chunk, n_threads,
          verbose=0, bounded=False):
    """Run Lloyd iterations from ``centres`` (shifted frame, X's dtype).

    Stops when no label changes (strict convergence), when the summed squared
    centre shift is at most ``tol`` (absolute), or after ``max_iter``
    iterations. With ``bounded``, passes skip rows whose nearest centre is
    certain (Hamerly's or Yinyang's bounds, ``BoundedState``; same
    iterates). A last pass makes the labels
    and inertia consistent with the returned centres, as scikit-learn does:
    with ``bounded`` (on the tiles path) it starts from the bounds and
    searches only the rows they do not settle, and gives the same labels
    and inertia as the plain pass (``_bounded.bounded_labels_pass``). BLAS
    must already be single-threaded.

    Returns
    -------
    labels : ndarray (n_samples,), int32
    centres : ndarray (k, d), X's dtype, unshifted
    inertia : float
    n_iter : int
    """
    n_samples = X.shape[0]
    k, d = centres.shape
    sw = _weights_or_empty(sample_weight, X.dtype)
    shift64 = shift.astype(np.float64)
    kernel_shift = _shift_or_empty(shift)
    sums = np.empty((k, d))
    weights = np.empty(k)
    centres = np.ascontiguousarray(centres)
    centres64 = centres.astype(np.float64)
    if bounded:
        state = BoundedState(n_samples, k, d, X.dtype)
        labels = state.labels  # the bounded passes' labels
        previous = None
    else:
        labels = np.full(n_samples, -1, dtype=np.int32)
    strict = False
    norms = np.nan  # sum_i w_i ||x_i - shift||^2, from the first plain pass
    inertia = np.nan
    start = time.perf_counter()
    for it in range(max_iter):
        if bounded:
            n_changed, n_full = bounded_block_pass(
                X, sample_weight, centres, shift, bound_updates(previous, centres),
                state, n_threads, chunk)
            sums, weights = state.sums.copy(), state.weights.copy()
            previous = centres
        else:
            n_changed, inertia, norms = _lloyd.lloyd_pass(
                X, sw, kernel_shift, centres, labels, sums, weights, norms, chunk,
                n_threads)
        if it > 0 and n_changed == 0:
            # same labels as last time: the centres would not move
            strict = True
        else:
            if not weights.all():
                _relocate_empty_clusters(X, sample_weight, centres, shift, shift64,
                                         labels, sums, weights, n_threads)
                if bounded and not relocation_keeps_bounds(k, d, X.dtype):
                    state.fresh = True  # bounds and incremental sums start over
            centres64, centre_shift = lloyd_update(sums, weights, centres64)
            centres = centres64.astype(X.dtype)
        if verbose:
            if bounded:
                # the upper bounds give an upper bound on the inertia for free
                bound = state.inertia_bound(sample_weight)
                objective = (f"inertia <= {bound:.6e}, all distances for "
                             f"{n_full / n_samples:.1%} of rows")
            else:
                objective = f"inertia {inertia:.6e}"
            print(f"Iteration {it:4d}: {objective}, {n_changed} labels changed, "
                  f"centre shift {0.0 if strict else centre_shift:.3e}, "
                  f"{time.perf_counter() - start:.2f} s", file=sys.stderr)
        if strict:
            if verbose:
                print(f"Converged at iteration {it}: strict convergence.", file=sys.stderr)
            break
        if centre_shift <= tol:
            if verbose:
                print(f"Converged at iteration {it}: center shift "
                      f"{centre_shift:.3e} within tolerance {tol:.3e}.", file=sys.stderr)
            break
    # labels and inertia of the final centres, in predict's frame (so that
    # labels_ == predict(X) bit for bit): from the bounds where they hold
    final = (centres64 + shift64).astype(X.dtype)
    frame_centres, frame = inference_frame(final, X.dtype)
    if bounded and not state.fresh and _bounded.bounded_labels_available(d, X.itemsize):
        drift, half_sep = bound_updates(previous, frame_centres,
                                        frame.astype(np.float64) - shift64)
        inertia, _ = _bounded.bounded_labels_pass(
            X, sw, _shift_or_empty(frame), frame_centres,
            _bounded.CentreMoves(half_sep, drift, False),
            _bounded.RowBounds(state.upper, state.lower, state.labels), chunk, n_threads)
    else:
        _, inertia, _ = _lloyd.lloyd_pass(X, sw, _shift_or_empty(frame), frame_centres,
                                          labels, sums, weights, np.nan, chunk, n_threads)
    if verbose:
        print(f"Final inertia {inertia:.6e}.", file=sys.stderr)
    return labels, final, inertia, it + 1


def relocation_keeps_bounds(n_clusters, n_features, dtype):
    """Whether the bounded passes keep their bounds when empty clusters are
    relocated (else the next pass assigns every row afresh).

    Either is exact: the relocated centres' jumps are among the drifts
    ``bound_updates`` measures, so the moved bounds still hold, and the
    state's sums still match its labels (relocation edits the M-step's
    copy of them). With Yinyang's groups a jump loosens only the bounds
    of its own group, and the rows are searched in the groups it and the
    other moves open: E1 (N = 1e5, D = 768, K = 1024, 5 iterations; 46
    clusters empty after the first) searches 83 % of rows in its third
    pass instead of all; K3 (D = 64) saves about 5 % of its fit. With
    one bound (Hamerly's) the largest jump lowers every row's bound, and a
    fresh pass, which updates no bounds, is as fast.
    """
    return _bounded.bound_groups(n_clusters, n_features, np.dtype(dtype).itemsize) > 1


class BoundedState:
    """What the bounded passes keep per row of a block between passes.

    ``upper[i]``: an upper bound on row i's distance to its centre
    ``labels[i]``; ``lower[i, g]``: a lower bound on its distance to every
    other centre of group g (X's dtype; t = ``_bounded.bound_groups``
    groups of consecutive centres, at most d / 2 - 1 of them: the bounds
    take at most half the memory of X, the labels 4 bytes per row more).
    ``sums`` and
    ``weights`` are the block's Lloyd statistics for ``labels``, updated
    by the rows that change cluster. ``fresh``: the next pass assigns
    every row from scratch (first pass, or after empty clusters were
    relocated). The in-memory fit holds one for X; fastem.dask one per
    block, on the worker that holds the block.
    """

    def __init__(self, n_rows, n_clusters, n_features, dtype):
        t = _bounded.bound_groups(n_clusters, n_features, np.dtype(dtype).itemsize)
        self.upper = np.empty(n_rows, dtype=dtype)
        self.lower = np.empty((n_rows, t), dtype=dtype)
        self.labels = np.full(n_rows, -1, dtype=np.int32)
        self.sums = np.zeros((n_clusters, n_features))
        self.weights = np.zeros(n_clusters)
        self.fresh = True

    @property
    def nbytes(self):
        return sum(a.nbytes for a in (self.upper, self.lower, self.labels, self.sums,
                                      self.weights))

    def inertia_bound(self, sample_weight=None):
        """sum_i w_i upper_i^2 >= the inertia of the current labels."""
        upper = self.upper.astype(np.float64)
        if sample_weight is None:
            return float(np.dot(upper, upper))
        return float(np.einsum("i,i,i->", sample_weight, upper, upper))


def bounded_block_pass(X, sample_weight, centres, shift, bounds, state, n_threads,
                       chunk=None):
    """One bounded Lloyd pass over the rows X, updating ``state`` in place.

    ``centres`` in the shifted frame of ``shift`` (X's dtype); ``bounds``:
    ``bound_updates(previous, centres)`` with ``previous`` the centres of
    the pass that last updated ``state`` (ignored when ``state.fresh``).
    Afterwards ``state.labels`` are the nearest centres and ``state.sums``,
    ``state.weights`` their statistics, as ``assign_pass`` would give them
    (up to the rounding of the incremental updates). BLAS must already be
    single-threaded.

    Returns
    -------
    n_changed : int, rows whose label changed (every row on a fresh pass)
    n_full : int, rows whose distances to all centres were computed
    """
    k, d = centres.shape
    drift, half_sep = bounds
    if chunk is None:
        chunk = _lloyd_chunk_rows(k, d, X.dtype, X.shape[0])
    result = _bounded.bounded_pass(
        X, _weights_or_empty(sample_weight, X.dtype), _shift_or_empty(shift),
        np.ascontiguousarray(centres), _bounded.CentreMoves(half_sep, drift, state.fresh),
        _bounded.RowBounds(state.upper, state.lower, state.labels), state.sums,
        state.weights, chunk, n_threads)
    state.fresh = False
    return result


def bound_updates(previous, centres, frame_change=None):
    """Centre drifts since ``previous`` and half distances to the nearest
    other centre, in float64, rounded outward for the bounds.

    ``frame_change``: the shift of ``centres``' frame minus that of
    ``previous`` (float64), when the two differ; the drift is then
    ``centres + frame_change - previous``, each of whose coordinates is
    within three roundings of the larger of its terms (the slack below)."""
    now = centres.astype(np.float64)
    if previous is None:
        drift = np.zeros(centres.shape[0])
    elif frame_change is None:
        drift = np.sqrt(np.square(now - previous).sum(axis=1)) * (1 + 1e-12)
    else:
        step = now - previous
        moved = step + frame_change
        slack = 2 * EPS64 * (np.abs(step) + np.abs(frame_change)).sum(axis=1)
        drift = np.sqrt(np.square(moved).sum(axis=1)) * (1 + 1e-12) + slack
    d = now.shape[1]
    sqnorms = np.einsum("ij,ij->i", now, now)
    return drift, half_separations(now, sqnorms, (d + 4) * EPS64)


def _centres_from_sums(sums, weights, previous):
    """Weighted means; a centre with no weight at all keeps its old position."""
    out = previous.copy()
    has = weights > 0
    out[has] = sums[has] / weights[has, None]
    return out


def _relocate_empty_clusters(X, sample_weight, centres, shift, shift64, labels,
                             sums, weights, n_threads):
    """Move each empty cluster onto one of the rows farthest from its centre.

    Same rule as scikit-learn: the farthest rows (by squared distance to
    their current centre) seed the empty clusters, and their weight and
    coordinates are moved from their old cluster's statistics to the new one.
    Modifies ``sums`` and ``weights`` in place. (fastem.dask runs the same
    two steps, ``farthest_assigned_rows`` per block of rows, then
    ``move_to_empty_clusters`` on the merged candidates.)
    """
    n_empty = int(np.count_nonzero(weights == 0))
    _, _, rows, row_weights, old_labels = farthest_assigned_rows(
        X, sample_weight, centres, shift, n_empty, n_threads, labels=labels)
    move_to_empty_clusters(sums, weights, rows, row_weights, old_labels)


# ---------------------------------------------------------------------------
# Lloyd's M-step pieces shared with fastem.dask (which runs them on statistics
# reduced over a dask array's blocks); the in-memory fit treats X as one block.

def lloyd_update(sums, weights, centres64):
    """The M-step: new centres (float64) and the summed squared centre shift.

    ``sums``, ``weights``: the statistics of one pass (``assign_pass``),
    after ``move_to_empty_clusters`` if a cluster was empty.
    """
    new64 = _centres_from_sums(sums, weights, centres64)
    return new64, float(np.square(new64 - centres64).sum())


def farthest_rows(dist, n):
    """Indices of the ``n`` largest ``dist``, by decreasing distance, ties by
    increasing index (an order that does not depend on how rows are split:
    among equal distances at the n-th place, the lowest indices are kept)."""
    n = min(int(n), dist.shape[0])
    if n == 0:
        return np.empty(0, dtype=np.intp)
    candidates = _farthest_candidates(dist, n)
    values = dist[candidates]
    nth = np.partition(values, values.shape[0] - n)[values.shape[0] - n]
    above = candidates[values > nth]
    tied = candidates[values == nth][:n - above.shape[0]]
    top = np.concatenate([above, tied])
    return top[np.lexsort((top, -dist[top]))]


_FARTHEST_BLOCK = 4096


def _farthest_candidates(dist, n):
    """Indices of a superset of the ``n`` largest ``dist``, in increasing order.

    The maxima of n distinct blocks of ``dist`` are at least the n-th largest
    block maximum b, so at least n distances are >= b and the n-th largest
    distance is >= b: every row of the answer has a distance >= b. One
    reduction and one comparison over ``dist`` (instead of a selection over
    all of it) leave the usual few empty clusters a handful of candidates.
    """
    size = dist.shape[0]
    if size <= n * _FARTHEST_BLOCK:
        return np.arange(size)
    maxima = np.maximum.reduceat(dist, np.arange(0, size, _FARTHEST_BLOCK))
    bound = np.partition(maxima, maxima.shape[0] - n)[maxima.shape[0] - n]
    return np.flatnonzero(dist >= bound)


def farthest_assigned_rows(X, sample_weight, centres, shift, n, n_threads, labels=None):
    """The ``n`` rows of X farthest from their nearest centre.

    ``centres`` in the shifted frame of ``shift`` (as the Lloyd passes);
    ``labels``: their nearest centres if already known (else one
    ``assign_pass`` finds them). Squared distances are exact float64 sums.
    BLAS must already be single-threaded.

    Returns
    -------
    dist : ndarray (m,), float64, m = min(n, n_samples), decreasing
    index : ndarray (m,), their row indices in X
    rows : ndarray (m, d), float64, the rows minus ``shift``
    row_weights : ndarray (m,), float64
    old_labels : ndarray (m,), int32, their current centres
    """
    if labels is None:
        labels = assign_pass(X, sample_weight, centres, shift, n_threads)[0]
    dist = np.empty(X.shape[0])
    shift64 = shift.astype(np.float64)
    unshifted = np.ascontiguousarray((centres.astype(np.float64) + shift64).astype(X.dtype))
    _lloyd.assigned_sqdist(X, unshifted, labels, dist, n_threads)
    far = farthest_rows(dist, n)
    row_weights = (np.ones(far.shape[0]) if sample_weight is None
                   else sample_weight[far].astype(np.float64))
    return (dist[far], far, X[far].astype(np.float64) - shift64, row_weights,
            labels[far])


def move_to_empty_clusters(sums, weights, rows, row_weights, old_labels):
    """Give each empty cluster (in index order) one of ``rows`` (in order):
    its weight and shifted coordinates move from its old cluster's
    statistics to the empty one. Modifies ``sums`` and ``weights`` in place."""
    empty = np.flatnonzero(weights == 0)
    for new_id, row, w, old_id in zip(empty, rows, row_weights, old_labels):
        sums[old_id] -= w * row
        weights[old_id] -= w
        sums[new_id] = w * row
        weights[new_id] = w
