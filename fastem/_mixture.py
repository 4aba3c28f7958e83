"""GaussianMixture: EM for full, tied, diag and spherical covariances.

The EM loop, initialisation, stopping and scoring live here; every pass over
the data is one call of the fused kernel ``fastem._kernels._gaussian.em_pass``
(log-densities -> log-sum-exp -> responsibilities -> weighted sufficient
statistics -> log-likelihood, chunk by chunk). The M-step works on the K x D x D
statistics only (``fastem._mixture_mstep``).
"""
import copy
import math
import warnings
from dataclasses import dataclass, replace
from time import time
from typing import Callable, NamedTuple

import numpy as np

from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from fastem._base import ModelFileMixin, check_data, unchanged_on_error
from fastem._kernels import load_kernels
from fastem._mixture_mstep import (
    COVARIANCE_TYPES,
    check_means_init,
    check_precisions_init,
    check_weights_init,
    compute_precision_cholesky,
    covariances_from_precisions,
    estep_operands,
    m_step,
    n_parameters,
    precision_cholesky_from_precisions,
    precisions_from_cholesky,
    recentre_statistics,
    statistics_layout,
    unpack_vech,
)
from fastem._parallel import blas_single_threaded, chunk_rows
from fastem._validation import (
    check_fitted_array,
    check_fitted_int,
    check_int,
    check_option,
    check_random_state,
    check_real,
    check_sample_weight,
    effective_n_threads,
)

# the mixture kernels in the build for this CPU's SIMD level (or FASTEM_SIMD's)
_gaussian = load_kernels("_gaussian")

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")

# rows of random responsibilities generated at a time for init_params='random'
_RANDOM_INIT_BLOCK = 65536

# largest relative precision loss of a variance accepted from one pass's
# statistics before the pass is redone about the new means (see
# GaussianMixture._accurate_m_step): float64 keeps 1e-11; float32 3e-5, a
# margin below the 1e-4 a float32 step is held to, which ordinary EM steps
# (moves of a few sigma) stay under, so only far moves cost a second pass
_ACCURACY = {np.dtype(np.float64): 1e-11, np.dtype(np.float32): 3e-5}


# fitted attributes of partial_fit's stream (fit removes them)
_STREAM_ATTRIBUTES = ("suff_stats_", "suff_stats_ref_", "n_steps_")


@dataclass
class FitContext:
    """What every pass of a fit shares.

    ``run(spec)``: the (log-likelihood, statistics) of the pass ``spec`` (a
    ``PassSpec``) over all the data. ``shift``: (D,) in the data's dtype,
    the fixed centre of every pass (the weighted data mean). ``total_w``:
    the total sample weight. ``eps_reg``: the regulariser of N_k.
    ``tied_moments``: 'tied' only, the data's (W, S1, S2) about the shift.
    ``X``, ``sw``, ``engine``: in-memory fits, the data, its weights and the
    kernel engine; a Dask fit keeps its ``Blocks`` in ``X`` and the threads
    per task in ``n_threads``.
    """

    run: Callable
    cov_type: str
    dtype: np.dtype
    shift: np.ndarray
    total_w: float
    eps_reg: float
    tied_moments: tuple = None
    X: object = None
    sw: np.ndarray = None
    engine: object = None
    n_threads: int = 1

    @property
    def shift64(self):
        return self.shift.astype(np.float64)


@dataclass
class MixtureParams:
    """The parameters during a fit, float64 (``prec_chol``: None until the
    M-step's covariances are factored)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    prec_chol: np.ndarray = None


@dataclass
class EMRun:
    """One EM run's outcome (``GaussianMixture._em_runs``)."""

    params: MixtureParams
    n_iter: int
    lower_bounds: list
    converged: bool
    lower_bound: float


def _data_context(X, sw, eng, cov_type):
    """The FitContext of an in-memory fit over X: ``data_context`` with X as
    one block."""
    ctx = data_context(lambda spec: pass_statistics(X, sw, spec, engine=eng),
                       X.shape[0], X.shape[1], X.dtype, cov_type)
    return replace(ctx, X=X, sw=sw, engine=eng)


def data_context(run, n_samples, n_features, dtype, cov_type):
    """What every pass of a fit shares (a ``FitContext``).

    ``run(spec)`` returns the (log-likelihood, statistics) of the pass
    ``spec`` (a ``PassSpec``) over all the data: ``pass_statistics`` on X
    (in memory) or on every block of a dask array, summed (fastem.dask).
    The weighted data mean is the fixed shift of every pass, computed with
    shift 0 (one pass, float64 sums); 'tied' also takes the data's second
    moment about it once.
    """
    dtype = np.dtype(dtype)
    zero = np.zeros(n_features, dtype=dtype)
    _, st = run(PassSpec("tied", 1, "one", zero))
    total_w = float(st[0, 0])
    shift = (st[0, 1:] / total_w).astype(dtype)
    tied_moments = None
    if cov_type == "tied":
        _, st = run(PassSpec("full", 1, "one", shift))
        tied_moments = (float(st[0, 0]), st[0, 1:1 + n_features].copy(),
                        unpack_vech(st[:, 1 + n_features:], n_features)[0])
    eps = float(np.finfo(dtype).eps)
    # scikit-learn's N_k = G_k + 10 eps, scaled by the mean weight so that
    # rescaling all sample weights changes nothing
    eps_reg = 10.0 * eps * (total_w / n_samples)
    return FitContext(run=run, cov_type=cov_type, dtype=dtype, shift=shift,
                      total_w=total_w, eps_reg=eps_reg, tied_moments=tied_moments)


def _factor_triangle(A, n_features):
    """'upper' / 'lower' if every stacked factor of A is triangular, else
    'general' (``_gaussian.EStep.triangle``).

    A is the kernel's (D, D*K) operand, A[i, d*K + k] = L_k[i, d] ('full'),
    or the tied factor itself (D, D). The factors fastem computes (from the
    M-step and from user-given precisions) are upper triangular, as
    scikit-learn's; the kernel takes the zeros of either triangle into
    account, and any other factor through its general path.
    """
    L = A.reshape(n_features, n_features, -1)  # [i, d, k]
    below = np.tril(np.ones((n_features, n_features), dtype=bool), -1)
    if not L[below].any():
        return "upper"
    if not L[below.T].any():
        return "lower"
    return "general"


class FittedMixture(NamedTuple):
    """Checked fitted parameters (see ``GaussianMixture._fitted_state``)."""

    cov_type: str
    weights: np.ndarray
    means: np.ndarray
    prec_chol: np.ndarray


# shape of precisions_cholesky_ / covariances_ for (K, D)
_COVARIANCE_SHAPES = {
    "full": lambda K, D: (K, D, D),
    "tied": lambda K, D: (D, D),
    "diag": lambda K, D: (K, D),
    "spherical": lambda K, D: (K,),
}


def _check_triangular_factors(factors):
    """Raise ValueError unless each (D, D) factor is upper or lower
    triangular with a positive diagonal (the log-determinant the E-step
    uses is the sum of the logs of the diagonal)."""
    D = factors.shape[-1]
    below = np.tril(np.ones((D, D), dtype=bool), -1)
    for L in factors:
        if L[below].any() and L[below.T].any():
            raise ValueError(
                "GaussianMixture.precisions_cholesky_ must hold triangular "
                "Cholesky factors: refit the estimator."
            )
        if not (np.diagonal(L) > 0).all():
            raise ValueError(
                "GaussianMixture.precisions_cholesky_ must have a positive "
                "diagonal: refit the estimator."
            )


class _Engine:
    """The passes of one model shape (covariance type, K, D, dtype) over X:
    ``run`` is one call of the kernel (``em_pass``) for a block of rows."""

    def __init__(self, covariance_type, n_components, n_features, dtype, n_threads):
        self.cov_type = covariance_type
        self.K = n_components
        self.D = n_features
        self.dtype = np.dtype(dtype)
        self.n_threads = n_threads

    def run(self, X, sw, shift, mode, *, operands=None, centres=None, resp=None,
            labels=None, stats=True, out_lpn=None, out_resp=None, out_labels=None,
            cov_type=None, stat_type=None, K=None, reuse_distances=True):
        """One kernel pass; returns (log-likelihood sum, stats or None).

        ``mode``: 'estep' (with ``operands``, see ``estep_operands``),
        'given' (``resp``), 'labels' (``labels``) or 'one' (K = 1, the
        data's moments). ``centres`` (K, D) in X's dtype: the references of
        the statistics (see ``em_pass``); None for the global ``shift``.
        ``stat_type``: the statistics' layout ('full' in an exact 'tied'
        pass), default the covariance type's. ``cov_type`` / ``K``: another
        pass than the model's. ``reuse_distances``: see ``_gaussian.EStep``.
        """
        cov_type = self.cov_type if cov_type is None else cov_type
        K = self.K if K is None else K
        if mode == "estep":
            A, crow, const = operands
            tri = _factor_triangle(A, self.D) if cov_type in ("full", "tied") else "general"
            source = _gaussian.EStep(A, crow, const, tri, reuse_distances)
        elif mode == "given":
            source = _gaussian.Given(resp)
        elif mode == "labels":
            source = _gaussian.Labels(labels, K)
        else:
            source = _gaussian.Ones()
        layout = _gaussian.COV_TYPES[stat_type or cov_type]
        st = np.empty((K, _gaussian.n_stat_features(layout, self.D))) if stats else None
        outputs = None
        if out_lpn is not None or out_resp is not None or out_labels is not None:
            outputs = _gaussian.RowOutputs(out_lpn, out_resp, out_labels)
        chunk = self._chunk_rows(_gaussian.COV_TYPES[cov_type], K, X.shape[0])
        ll = _gaussian.em_pass(X, sw, shift, cov_type, source, st, centres, outputs,
                               chunk, self.n_threads)
        return ll, st

    def _chunk_rows(self, cov_code, K, n_rows):
        """Rows per chunk of a pass kind (the kernel owns its workspaces)."""
        return chunk_rows(
            _gaussian.chunk_bytes_per_row(cov_code, K, self.D, self.dtype.itemsize),
            n_rows=n_rows, min_rows=32, max_rows=1024)


# ----------------------------------------------------------------------
# One pass over one block of rows: the only per-row work of a fit. The
# in-memory fit runs it on X (one block); fastem.dask on every block of a
# dask array, summing the statistics in block order. Keep both on it.

class PassSpec(NamedTuple):
    """Everything a pass needs but the rows (small, picklable).

    ``cov_type`` / ``n_components``: the pass's (K=1 for the data's moments);
    ``mode``: a key of ``_gaussian.RESP_MODES`` ('estep', 'one', 'labels',
    'given'); ``shift``: (D,) in X's dtype; ``operands``: ``estep_operands``
    or None; ``references``: (K, D) in X's dtype or None (the statistics are
    taken about ``shift``); ``stat_type``: the statistics' layout if not the
    covariance type's; ``reuse_distances``: see ``em_pass``; ``n_threads``:
    for a block task (the in-memory fit's engine has its own).
    """

    cov_type: str
    n_components: int
    mode: str
    shift: np.ndarray
    operands: tuple = None
    references: np.ndarray = None
    stat_type: str = None
    reuse_distances: bool = True
    n_threads: int = 1


def pass_statistics(X, sw, spec, *, labels=None, resp=None, engine=None):
    """One fused kernel pass over the rows X: (log-likelihood, statistics).

    The log-likelihood is ``sum_n w_n log p(x_n)`` (0 unless an E-step), the
    statistics the (K, P) float64 array of ``spec``'s layout; both add over
    blocks of rows. ``labels`` / ``resp``: the rows' given assignments
    ('labels' / 'given' modes). ``engine``: an ``_Engine`` whose workspaces
    to reuse (a new one otherwise). BLAS must already be single-threaded.
    """
    if engine is None:
        engine = _Engine(spec.cov_type, spec.n_components, X.shape[1], X.dtype,
                         spec.n_threads)
    return engine.run(X, sw, spec.shift, spec.mode, operands=spec.operands,
                      centres=spec.references, labels=labels, resp=resp,
                      cov_type=spec.cov_type, K=spec.n_components,
                      stat_type=spec.stat_type,
                      reuse_distances=spec.reuse_distances)


def estep_spec(ctx, params, operands, references, stat_type, repeated=False):
    """The E-step pass of an EM iteration (``repeated``: the second pass
    about the new means, see ``GaussianMixture._accurate_m_step``)."""
    return PassSpec(ctx.cov_type, params.means.shape[0], "estep", ctx.shift,
                    operands, references, stat_type, not repeated)


class GaussianMixture(DensityMixin, ModelFileMixin, BaseEstimator):
    """Gaussian mixture model fitted by expectation-maximisation.

    A drop-in for :class:`sklearn.mixture.GaussianMixture` on large dense
    data: each EM iteration is one fused, multi-threaded pass over ``X`` in
    row chunks (log-densities from the Cholesky factors of the precisions by
    GEMM, log-sum-exp, responsibilities and weighted sufficient statistics
    together), so no ``n_samples x n_components`` array is ever allocated
    during ``fit``. float32 data stays float32 (parameters are returned in
    float32). The statistics are accumulated about each component's current
    mean and summed in float64 (float32 data: in float32 over at most 64
    rows first), and a pass is repeated about the new means when a mean moves
    far relative to its spread, so covariances keep their precision however
    far the components lie from the data mean or the initial means.

    Sparse input (``scipy.sparse``) is rejected with a ``TypeError``, as by
    scikit-learn's GaussianMixture: the components' means and covariances
    are dense, so a sparse X would be densified row by row anyway. Convert
    it with ``X.toarray()`` if it fits in memory, or reduce its dimension
    first (``sklearn.decomposition.TruncatedSVD``); for clustering sparse
    data, :class:`fastem.KMeans` accepts CSR.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        'full': one general covariance matrix per component; 'tied': one
        general covariance matrix shared by all components; 'diag': one
        diagonal covariance matrix per component; 'spherical': one variance
        per component.
    tol : float, default=1e-3
        Convergence threshold: EM stops when the lower bound (the average
        log-likelihood per sample) changes by less than ``tol``.
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of the covariances,
        so that they stay positive definite.
    max_iter : int, default=100
        Number of EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the best result is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
            default='kmeans'
        How the responsibilities that give the initial parameters are chosen:
        labels of :class:`fastem.KMeans`; one point per component from
        k-means++ seeding; random responsibilities; or one point per
        component drawn at random from the data.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights (non-negative, summing to 1).
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means.
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances), of shape
        (n_components, n_features, n_features) for 'full',
        (n_features, n_features) for 'tied', (n_components, n_features) for
        'diag' and (n_components,) for 'spherical'.
    random_state : int, numpy.random.Generator, RandomState or None, default=None
        Seed of the initialisation (and of :meth:`sample`).
    warm_start : bool, default=False
        If True, each ``fit`` starts from the previous solution (and
        ``n_init`` is ignored after the first fit).
    n_threads : int or None, default=None
        OpenMP threads of the kernels (None: all allowed CPUs; larger values
        are capped to that number; negative counts back from all CPUs).
        Results are bit-identical for any thread count.
    verbose : int, default=0
        1 prints the initialisation and iteration progress, 2 adds timings
        and the lower bound change.
    verbose_interval : int, default=10
        Iterations between two progress messages.
    learning_decay : float in (0.5, 1], default=0.6
        ``kappa`` of :meth:`partial_fit`'s step sizes
        ``rho_t = (t + learning_offset) ** -kappa``, where ``t`` is the number
        of batches already seen. Smaller values forget old batches faster.
    learning_offset : float >= 0, default=10.0
        ``t0`` of the step sizes: larger values give early batches less
        weight each (slower start, less noise).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        Shape as ``precisions_init``.
    precisions_ : ndarray
        Inverse covariances, same shape.
    precisions_cholesky_ : ndarray
        Cholesky factors ``L`` of the precisions, ``precision = L @ L.T``
        (upper triangular, as in scikit-learn).
    converged_ : bool
        Whether the best initialisation met ``tol`` within ``max_iter``.
    n_iter_ : int
        EM iterations of the best initialisation.
    lower_bound_ : float
        Lower bound (average log-likelihood per sample, weighted by
        ``sample_weight``) of the best initialisation at its last iteration.
    lower_bounds_ : list of float
        The lower bound at every iteration of the best initialisation.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.
    suff_stats_ : ndarray of shape (n_components, n_statistics), float64
        After :meth:`partial_fit`: the running sufficient statistics per unit
        weight (columns ``G_k``, ``S1_k`` and the second moments, as in
        ``fastem._mixture_mstep.m_step``; 'tied' keeps each component's
        scatter), taken about ``suff_stats_ref_``. Saved in model files,
        so that ``load`` then ``partial_fit`` continues the stream exactly.
    suff_stats_ref_ : ndarray of shape (n_components, n_features), float64
        The reference point of each component's statistics.
    n_steps_ : int
        After :meth:`partial_fit`: the number of batches seen.

    Notes
    -----
    :meth:`partial_fit` (not offered by scikit-learn) fits the same model by
    stepwise online EM, one batch at a time (see its docstring and
    ``learning_decay`` / ``learning_offset``).

    ``sample_weight`` (not offered by scikit-learn) multiplies each sample's
    responsibilities in the sufficient statistics and its log-likelihood in
    the lower bound: integer weights give the same fit as repeated rows.

    A component whose total responsibility drops to (numerically) zero keeps
    its previous mean and covariance and its weight becomes ~1e-16 of the
    total; it produces no NaN and no error.

    The E-step's exponentials are computed with a vectorised exp accurate to
    a few ulp; responsibilities below exp(-708) relative to the most likely
    component of a sample are set to exactly 0 (scikit-learn keeps subnormal
    values there).

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> gm.means_.round(1)  # doctest: +SKIP
    array([[10.,  2.],
           [ 1.,  2.]])
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        n_threads=None,
        verbose=0,
        verbose_interval=10,
        learning_decay=0.6,
        learning_offset=10.0,
    ):
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
        self.n_threads = n_threads
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # ------------------------------------------------------------------
    # parameter checks

    def _check_params(self):
        check_int(self.n_components, "n_components", min_value=1)
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_real(self.tol, "tol", min_value=0.0)
        check_real(self.reg_covar, "reg_covar", min_value=0.0)
        check_int(self.max_iter, "max_iter", min_value=0)
        check_int(self.n_init, "n_init", min_value=1)
        check_option(self.init_params, "init_params", INIT_PARAMS)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(f"warm_start must be a bool, got {self.warm_start!r}.")
        check_int(self.verbose, "verbose", min_value=0)
        check_int(self.verbose_interval, "verbose_interval", min_value=1)
        kappa = check_real(self.learning_decay, "learning_decay", min_value=0.5,
                           strict_min=True)
        if kappa > 1.0:
            raise ValueError(f"learning_decay must be in (0.5, 1], got {kappa}.")
        check_real(self.learning_offset, "learning_offset", min_value=0.0)
        return effective_n_threads(self.n_threads)

    # ------------------------------------------------------------------
    # fitting

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the model parameters with the EM algorithm.

        The model is fitted ``n_init`` times and the parameters of the run
        with the largest lower bound are kept. Each run alternates E- and
        M-steps until the lower bound changes by less than ``tol`` or
        ``max_iter`` iterations are done (then a ``ConvergenceWarning`` is
        issued). With ``warm_start=True`` later calls continue from the
        current parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, dense (sparse input raises ``TypeError``).
            float32 and float64 are kept; other numeric types become float64.
        y : Ignored
            Present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample (None: all 1). A sample's
            responsibilities and log-likelihood are multiplied by its weight;
            integer weights are equivalent to repeating rows.

        Returns
        -------
        self : GaussianMixture
            The fitted estimator.
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the model and return the most likely component of each sample.

        Equal to ``fit(X, sample_weight=sample_weight).predict(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (see :meth:`fit`).

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
            Component labels.
        """
        Xv = self._fit(X, sample_weight)
        return self._row_pass(Xv, labels=True, validated=True)["labels"]

    def _fit(self, X, sample_weight):
        with unchanged_on_error(self):
            return self._run_em(X, sample_weight)

    def _run_em(self, X, sample_weight):
        n_threads = self._check_params()
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        if not do_init:
            state = self._fitted_state()
        X = check_data(self, X, reset=do_init)
        n_samples, n_features = X.shape
        K = self.n_components
        sw = self._check_training_weights(sample_weight, n_samples, X.dtype)
        cov_type = self.covariance_type
        dtype = X.dtype
        weights_init, means_init, precisions_init = self._checked_inits(X)

        if not do_init:
            if state.means.shape[0] != K or state.cov_type != cov_type:
                raise ValueError(
                    "warm_start=True needs the same n_components and covariance_type "
                    "as the previous fit; set warm_start=False to refit."
                )
        n_init = self.n_init if do_init else 1
        rng = check_random_state(self.random_state)

        with blas_single_threaded():
            eng = _Engine(cov_type, K, n_features, dtype, n_threads)
            ctx = _data_context(X, sw, eng, cov_type)
            run = self._em_runs(ctx, rng, n_init, None if do_init else state,
                                (weights_init, means_init, precisions_init))
        self._store_fit(run, n_init, dtype)
        return X

    # The EM runs and the fitted attributes, from a data context; shared with
    # fastem.dask.GaussianMixture, whose ctx.run passes over dask blocks.

    def _em_runs(self, ctx, rng, n_init, state, inits):
        """``n_init`` EM runs (one from ``state``, the fitted parameters, for
        a warm start); returns the best ``EMRun``."""
        best = None
        for init in range(n_init):
            self._verbose_init_beg(init)
            run = self._em_run(ctx, rng, state, inits)
            self._verbose_init_end(run.lower_bound, run.converged)
            # scikit-learn's rule: the highest bound, the last run while
            # every bound is -inf (max_iter=0)
            if best is None or run.lower_bound > best.lower_bound or best.lower_bound == -np.inf:
                best = run
        return best

    def _em_run(self, ctx, rng, state, inits):
        """One EM run: initialise, then E-step, M-step, bound, stop test."""
        if state is None:
            params = self._initial_parameters(ctx, rng, *inits)
            lower_bound = -np.inf
        else:
            params = self._current_parameters(state)
            lower_bound = self.lower_bound_
        lower_bounds, converged, n_iter = [], False, 0
        for n_iter in range(1, self.max_iter + 1):
            previous_bound = lower_bound
            # one pass: E-step and the statistics, then the M-step
            ll, params = self._em_iteration(params, ctx)
            lower_bound = ll / ctx.total_w
            lower_bounds.append(lower_bound)
            change = lower_bound - previous_bound
            self._verbose_iter_end(n_iter, change)
            if abs(change) < self.tol:
                converged = True
                break
        return EMRun(params, n_iter, lower_bounds, converged, lower_bound)

    def _store_fit(self, run, n_init, dtype):
        """Set the fitted attributes from ``_em_runs``' best run (warning
        when it did not converge)."""
        self.converged_ = run.converged
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                f"The best of {n_init} initialisation(s) did not converge within "
                f"max_iter={self.max_iter} iterations (tol={self.tol}). Increase "
                "max_iter (or tol), try n_init > 1 or another init_params, or check "
                "the data for degenerate (constant or duplicated) features.",
                ConvergenceWarning,
                stacklevel=4,
            )
        self._set_parameters(run.params, dtype)
        self.n_iter_ = run.n_iter
        self.lower_bound_ = float(run.lower_bound)
        self.lower_bounds_ = [float(v) for v in run.lower_bounds]
        self._fit_covariance_type = self.covariance_type
        for name in _STREAM_ATTRIBUTES:  # a new fit starts no stream
            vars(self).pop(name, None)

    # ------------------------------------------------------------------
    # online EM

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of stepwise online EM (Cappe & Moulines 2009) on a batch.

        The E-step on the batch (one fused pass, as in :meth:`fit`) gives its
        sufficient statistics per unit weight; the running statistics ``s``
        are blended with them, ``s <- (1 - rho_t) s + rho_t stats(batch)``
        with ``rho_t = (t + learning_offset) ** -learning_decay`` (``t``:
        batches already seen; the first batch, ``t = 0``, takes
        ``rho = 1``), and the M-step (with ``reg_covar``) follows. With
        ``rho = 1`` a step is exactly one EM iteration of :meth:`fit` on the
        batch.

        The first call initialises the parameters from its batch as
        :meth:`fit` does (``init_params`` or the ``*_init`` arrays, one
        initialisation); on an estimator fitted by :meth:`fit`, the stream
        starts from the fitted parameters. Later calls need the same number
        of features and float dtype. All fitted attributes are updated, so
        every method works after any number of calls; ``lower_bound_`` is
        the batch's average log-likelihood before the step.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The batch.
        y : Ignored
            Present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample of the batch.

        Returns
        -------
        self : GaussianMixture
        """
        with unchanged_on_error(self):
            self._online_em(X, sample_weight)
        return self

    def _online_em(self, X, sample_weight):
        n_threads = self._check_params()
        first = not hasattr(self, "means_")
        if not first:
            state = self._fitted_state()
            if state.means.shape[0] != self.n_components or state.cov_type != self.covariance_type:
                raise ValueError(
                    "partial_fit needs the same n_components and covariance_type as "
                    "the fitted model; refit (fit, or a new estimator) to change them."
                )
        X = check_data(self, X, reset=first)
        if not first and X.dtype != state.means.dtype:
            raise ValueError(
                f"X has dtype {X.dtype}, but the model was fitted on "
                f"{state.means.dtype} data: pass every batch in the same float dtype."
            )
        n_samples, n_features = X.shape
        cov_type, dtype = self.covariance_type, X.dtype
        K = self.n_components
        if first:
            sw = self._check_training_weights(sample_weight, n_samples, dtype)
            inits = self._checked_inits(X)
        else:
            sw = check_sample_weight(sample_weight, n_samples, dtype)
        with blas_single_threaded():
            eng = _Engine(cov_type, K, n_features, dtype, n_threads)
            if first:
                ctx = _data_context(X, sw, eng, cov_type)
                params = self._initial_parameters(ctx, check_random_state(self.random_state),
                                                  *inits)
            else:
                params = self._current_parameters(state)
                # any shift works; the mixture's centre keeps float32 near the data
                shift = (params.weights @ params.means).astype(dtype)
                total_w = float(n_samples if sw is None else sw.sum(dtype=np.float64))
                ctx = FitContext(
                    run=lambda spec: pass_statistics(X, sw, spec, engine=eng),
                    cov_type=cov_type, dtype=dtype, shift=shift, total_w=total_w,
                    eps_reg=10.0 * float(np.finfo(dtype).eps) * total_w / n_samples,
                    X=X, sw=sw, engine=eng)
            # the statistics are per unit weight: so is the regulariser of N_k
            ctx.eps_reg /= ctx.total_w
            seen = int(self.n_steps_) if hasattr(self, "suff_stats_") else 0
            running = (self.suff_stats_, self.suff_stats_ref_) if seen else None
            rho = 1.0 if not seen else (seen + float(self.learning_offset)) ** (
                -float(self.learning_decay))
            ll, params, stats, refs = self._online_step(params, ctx, rho, running)
        self._set_parameters(params, dtype)
        self.suff_stats_ = stats
        self.suff_stats_ref_ = refs
        self.n_steps_ = seen + 1
        self.n_iter_ = self.n_steps_
        self.converged_ = False
        self.lower_bound_ = float(ll / ctx.total_w)
        self.lower_bounds_ = [self.lower_bound_]
        self._fit_covariance_type = cov_type

    def _online_step(self, params, ctx, rho, running):
        """E-step on ctx's batch, blend, M-step.

        ``running``: (statistics, references) of the stream so far, or None.
        Statistics can only be blended about the same reference, so the
        running ones are first moved exactly (``recentre_statistics``) to
        where the batch's are taken: each component's current mean, or the
        batch's shift where ``_references`` allows it ('tied' always per
        component, keeping each scatter). ``_accurate_m_step`` may redo the
        pass about the new means; the blend is then redone too.

        Returns (log-likelihood of the batch, params, statistics, references).
        """
        X, sw, eng, cov_type = ctx.X, ctx.sw, ctx.engine, ctx.cov_type
        operands = self._operands(params, ctx)
        means = np.ascontiguousarray(params.means, dtype=ctx.dtype)
        refs = self._references(params, ctx)
        if refs is None and cov_type == "tied":
            refs = means
        layout = statistics_layout(cov_type)
        blended = {}

        def blended_pass(references, stat_type, repeated=False):
            ll, st = eng.run(X, sw, ctx.shift, "estep", operands=operands,
                             centres=references, stat_type=stat_type,
                             reuse_distances=not repeated)
            origin = (np.tile(ctx.shift64, (means.shape[0], 1)) if references is None
                      else references.astype(np.float64))
            st = st / ctx.total_w
            if running is not None:
                old = recentre_statistics(running[0], running[1], origin, layout)
                st = (1.0 - rho) * old + rho * st
            blended.update(stats=st, refs=origin)
            return ll, st

        ll, params = self._accurate_m_step(blended_pass, ctx, refs, previous=params)
        return ll, params, blended["stats"], blended["refs"]

    def _check_training_weights(self, sample_weight, n_samples, dtype):
        K = self.n_components
        if K > n_samples:
            raise ValueError(
                f"n_components={K} must be <= n_samples={n_samples}: a mixture "
                "cannot have more components than samples."
            )
        sw = check_sample_weight(sample_weight, n_samples, dtype)
        if sw is not None and np.count_nonzero(sw) < K:
            raise ValueError(
                f"Only {np.count_nonzero(sw)} samples have a positive weight, fewer "
                f"than n_components={K}."
            )
        return sw

    def _checked_inits(self, X):
        """(weights_init, means_init, precisions_init), checked, or None each."""
        K, n_features, dtype = self.n_components, X.shape[1], X.dtype
        weights_init = means_init = precisions_init = None
        if self.weights_init is not None:
            weights_init = check_weights_init(self.weights_init, K, dtype)
        if self.means_init is not None:
            means_init = check_means_init(self.means_init, K, n_features)
        if self.precisions_init is not None:
            precisions_init = check_precisions_init(self.precisions_init,
                                                    self.covariance_type, K, n_features)
        return weights_init, means_init, precisions_init

    def _current_parameters(self, state):
        covariances = check_fitted_array(
            self, "covariances_", _COVARIANCE_SHAPES[state.cov_type](*state.means.shape))
        return MixtureParams(state.weights.astype(np.float64),
                             state.means.astype(np.float64),
                             covariances.astype(np.float64),
                             state.prec_chol.astype(np.float64))

    def _operands(self, params, ctx):
        return estep_operands(params.weights, params.means, params.prec_chol,
                              ctx.cov_type, ctx.shift64, ctx.dtype)

    def _em_iteration(self, params, ctx):
        """One E-step pass and the M-step; returns (log-likelihood, params)."""
        operands = self._operands(params, ctx)

        def estep_pass(references, stat_type, repeated=False):
            return ctx.run(estep_spec(ctx, params, operands, references, stat_type,
                                         repeated))

        return self._accurate_m_step(estep_pass, ctx, self._references(params, ctx),
                                     previous=params)

    def _references(self, params, ctx):
        """Where the next E-step's statistics are taken: each component's
        current mean (X's dtype) or None (the global shift).

        float32 'full', 'diag' and 'spherical' sum in float32, so always
        about the current means. float64 (and float32 'tied') use the shift
        -- one float64 product of quadratic features ('full', 'diag',
        'spherical': two multiply-adds per term where sums about each mean
        take four vector operations), or N_k and S1_k with the data's second
        moment taken once per fit ('tied') -- unless the shift would cost
        precision (``_precision_loss``): then each component's scatter about
        its mean. (float64 'diag' / 'spherical' about the shift, best of 10
        fits on 2 Zen 4 cores: N=1e5, D=64, K=32 28.5-30.0 against
        34.5-34.8 ms per iteration (diag), 21-23 against 33-34
        (spherical); N=2e5, D=16, K=16 diag 9.4-10.3 against 10.6-11.7.)
        """
        means = np.ascontiguousarray(params.means, dtype=ctx.dtype)
        kind, dtype = ctx.cov_type, ctx.dtype
        if dtype == np.float32 and kind != "tied":
            return means
        if self._precision_loss(params, None, ctx) > _ACCURACY[dtype]:
            return means
        return None

    def _precision_loss(self, params, references, ctx):
        """Relative precision a variance loses to cancellation in the M-step.

        The statistics about a reference r_k give the covariance as
        S2_k / N_k - (mu_k - r_k)(mu_k - r_k)^T: its rounding error is about
        eps |mu_k - r_k|^2, relative to a variance sigma_k^2 (the smallest
        diagonal entry of the new covariance); eps is float64's, or float32's
        where float32 data are summed in float32 (statistics about each
        component's mean). Returns the largest ratio over the components
        (inf where a variance came out non-positive).
        """
        float32_sums = ctx.dtype == np.float32 and references is not None
        eps = float(np.finfo(np.float32 if float32_sums else np.float64).eps)
        ref = ctx.shift64 if references is None else references.astype(np.float64)
        move2 = np.square(np.asarray(params.means) - ref).sum(axis=1)
        cov = np.asarray(params.covariances)
        kind = ctx.cov_type
        if kind == "full":
            var = np.diagonal(cov, axis1=1, axis2=2).min(axis=1)
        elif kind == "tied":
            var = np.diag(cov).min()
        elif kind == "diag":
            var = cov.min(axis=1)
        else:
            var = cov
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = np.where(var > 0, eps * move2 / var, np.inf)
        return float(np.max(loss))

    def _accurate_m_step(self, run_pass, ctx, references, previous=None):
        """Statistics of a pass about ``references``, then the M-step.

        ``run_pass(references, stat_type, repeated=False)`` returns
        (log-likelihood, statistics); ``repeated`` marks the second pass. When the new means moved so far from the references
        that the covariances lost precision (``_precision_loss`` above
        ``_ACCURACY``: a far initialisation, clusters far from the data
        mean), the same pass runs again about the new means -- same
        responsibilities, so the same log-likelihood -- and the M-step is
        redone: exact covariances at the cost of one more pass, only in the
        iterations that need it. 'tied' takes the components' scatters
        ('full' statistics) whenever it has references.
        """
        def stat_type(refs):
            return "full" if ctx.cov_type == "tied" and refs is not None else None

        ll, stats = run_pass(references, stat_type(references))
        params = self._m_step(stats, previous, ctx, references)
        if self._precision_loss(params, references, ctx) > _ACCURACY[ctx.dtype]:
            references = np.ascontiguousarray(params.means, dtype=ctx.dtype)
            _, stats = run_pass(references, stat_type(references), repeated=True)
            params = self._m_step(stats, previous, ctx, references)
        params.prec_chol = compute_precision_cholesky(params.covariances,
                                                         ctx.cov_type, ctx.dtype)
        return ll, params

    def _m_step(self, stats, previous, ctx, references=None):
        """Weights, means and covariances (float64) from the statistics."""
        cov_type = ctx.cov_type
        origin = ctx.shift64 if references is None else references.astype(np.float64)
        nk, means, cov, _ = m_step(
            stats, origin, cov_type, float(self.reg_covar), ctx.eps_reg,
            tied_moments=ctx.tied_moments if references is None else None,
            previous=None if previous is None else (previous.means,
                                                    previous.covariances),
            empty_threshold=None if previous is None else ctx.eps_reg,
        )
        # scikit-learn: weights = N_k / n_samples at initialisation (weighted:
        # / total weight), N_k / sum N_k after an E-step
        total = nk.sum() if previous is not None else ctx.total_w
        return MixtureParams(nk / total, means, cov)

    def _initial_parameters(self, ctx, rng, weights_init, means_init, precisions_init):
        cov_type = ctx.cov_type
        if weights_init is not None and means_init is not None and precisions_init is not None:
            return MixtureParams(
                weights_init, means_init,
                covariances_from_precisions(precisions_init, cov_type),
                precision_cholesky_from_precisions(precisions_init, cov_type))
        _, params = self._accurate_m_step(self._initial_pass(ctx, rng), ctx, None)
        weights, means, cov = params.weights, params.means, params.covariances
        prec_chol = params.prec_chol
        if weights_init is not None:
            weights = weights_init
        if means_init is not None:
            means = means_init
        if precisions_init is not None:
            prec_chol = precision_cholesky_from_precisions(precisions_init, cov_type)
            cov = covariances_from_precisions(precisions_init, cov_type)
        return MixtureParams(weights, means, cov, prec_chol)

    def _initial_pass(self, ctx, rng):
        """The pass that gives the statistics of the initial responsibilities,
        as a function ``run_pass(references, stat_type)`` (see
        ``_accurate_m_step``, which may call it twice: the random draws are
        made once)."""
        X, sw, eng, shift = ctx.X, ctx.sw, ctx.engine, ctx.shift
        n_samples = X.shape[0]
        K = self.n_components
        init = self.init_params
        if init == "kmeans":
            labels = _kmeans_labels(X, sw, K, rng, self.n_threads)
            return lambda refs, stat_type, repeated=False: eng.run(
                X, sw, shift, "labels", labels=labels, centres=refs, stat_type=stat_type)
        if init == "random":
            # blocks of random responsibilities; a repeated pass draws them
            # again from a copy of the generator as it was before the first
            start_state = copy.deepcopy(rng.bit_generator.state)
            calls = []

            def random_pass(refs, stat_type, repeated=False):
                gen = rng
                if calls:
                    gen = copy.deepcopy(rng)
                    gen.bit_generator.state = start_state
                calls.append(refs)
                total = None
                for start in range(0, n_samples, _RANDOM_INIT_BLOCK):
                    stop = min(start + _RANDOM_INIT_BLOCK, n_samples)
                    resp = gen.uniform(size=(stop - start, K))
                    resp /= resp.sum(axis=1)[:, None]
                    _, st = eng.run(X[start:stop], None if sw is None else sw[start:stop],
                                    shift, "given", resp=resp, centres=refs,
                                    stat_type=stat_type)
                    total = st if total is None else total + st
                return 0.0, total
            return random_pass
        if init == "k-means++":
            indices = _kmeans_plusplus_indices(X, sw, K, rng, self.n_threads)
        else:  # random_from_data
            candidates = n_samples if sw is None else np.flatnonzero(sw > 0)
            indices = rng.choice(candidates, size=K, replace=False)
        indices = np.asarray(indices, dtype=np.intp)
        Xi = np.ascontiguousarray(X[indices])
        swi = None if sw is None else np.ascontiguousarray(sw[indices])
        labels = np.arange(K, dtype=np.int32)
        return lambda refs, stat_type, repeated=False: eng.run(
            Xi, swi, shift, "labels", labels=labels, centres=refs, stat_type=stat_type)

    def _set_parameters(self, params, dtype):
        cov_type = self.covariance_type
        self.weights_ = np.asarray(params.weights, dtype=dtype)
        self.means_ = np.asarray(params.means, dtype=dtype)
        self.covariances_ = np.asarray(params.covariances, dtype=dtype)
        prec_chol = np.asarray(params.prec_chol, dtype=np.float64)
        self.precisions_cholesky_ = prec_chol.astype(dtype)
        self.precisions_ = precisions_from_cholesky(prec_chol, cov_type).astype(dtype)

    # ------------------------------------------------------------------
    # inference

    def _check_loaded(self):
        # a model file records the fitted covariance type as the parameter
        self._fit_covariance_type = self.covariance_type
        super()._check_loaded()

    def _fitted_state(self):
        """The fitted parameters an inference pass reads, checked.

        K and D come from ``weights_`` and ``means_`` (never from
        ``n_components``, which ``set_params`` may have changed), the
        covariance type from the fit (or, for a loaded model, its file);
        every array must match them, be finite, the weights must be >= 0
        and sum to 1, and the Cholesky factors of the precisions must be
        triangular with a positive diagonal. Anything else raises a
        ``ValueError`` naming the attribute before a kernel sees it.

        Returns
        -------
        state : FittedMixture
        """
        check_is_fitted(self, "means_")
        cov_type = getattr(self, "_fit_covariance_type", self.covariance_type)
        if cov_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type of the fitted model is {cov_type!r}, not one of "
                f"{list(COVARIANCE_TYPES)}: refit the estimator."
            )
        weights = getattr(self, "weights_", None)
        if not isinstance(weights, np.ndarray) or weights.ndim != 1 or weights.size == 0:
            raise ValueError(
                "GaussianMixture.weights_ must be a non-empty 1-D array. The "
                "fitted state is inconsistent: refit the estimator."
            )
        K = weights.shape[0]
        D = check_fitted_int(self, "n_features_in_", min_value=1)
        weights = check_fitted_array(self, "weights_", (K,))
        if (weights < 0).any() or abs(float(weights.sum(dtype=np.float64)) - 1.0) > 1e-5:
            raise ValueError(
                "GaussianMixture.weights_ must be >= 0 and sum to 1 (sum "
                f"{float(weights.sum(dtype=np.float64))!r}): refit the estimator."
            )
        means = check_fitted_array(self, "means_", (K, D), coordinates=True)
        shape = _COVARIANCE_SHAPES[cov_type](K, D)
        prec_chol = check_fitted_array(self, "precisions_cholesky_", shape,
                                       positive=cov_type in ("diag", "spherical"))
        if cov_type in ("full", "tied"):
            _check_triangular_factors(prec_chol.reshape((-1, D, D)))
        if any(hasattr(self, name) for name in _STREAM_ATTRIBUTES):
            self._check_stream_state(cov_type, K, D)
        return FittedMixture(cov_type, weights, means, prec_chol)

    def _check_stream_state(self, cov_type, K, D):
        """partial_fit's running statistics: all three attributes, shapes
        matching the model, finite, G_k >= 0."""
        P = _gaussian.n_stat_features(_gaussian.COV_TYPES[statistics_layout(cov_type)], D)
        check_fitted_int(self, "n_steps_", min_value=1)
        stats = check_fitted_array(self, "suff_stats_", (K, P))
        check_fitted_array(self, "suff_stats_ref_", (K, D), coordinates=True)
        if stats.dtype != np.float64 or self.suff_stats_ref_.dtype != np.float64:
            raise ValueError(
                "GaussianMixture.suff_stats_ and suff_stats_ref_ must be float64: "
                "refit the estimator.")
        if (stats[:, 0] < 0).any():
            raise ValueError(
                "GaussianMixture.suff_stats_ has a negative component weight: refit "
                "the estimator.")

    def _row_pass(self, X, *, lpn=False, resp=False, labels=False, sample_weight=None,
                  validated=False):
        """E-step over X writing the requested per-row outputs (chunk by chunk).

        ``validated``: X is fit's own checked array (``fit_predict``).
        """
        state = self._fitted_state()
        if not validated:
            X = check_data(self, X, reset=False)
        sw = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        n_samples, n_components = X.shape[0], state.weights.shape[0]
        dtype = X.dtype
        n_threads = effective_n_threads(self.n_threads)
        out_lpn = np.empty(n_samples, dtype=dtype) if lpn else None
        out_resp = np.empty((n_samples, n_components), dtype=dtype) if resp else None
        out_labels = np.empty(n_samples, dtype=np.int64) if labels else None
        with blas_single_threaded():
            eng = _Engine(state.cov_type, n_components, X.shape[1], dtype, n_threads)
            # shift: the fitted means' centre (the density does not depend on it;
            # it only keeps float32 arithmetic near the data)
            shift = (state.weights.astype(np.float64) @ state.means.astype(np.float64))
            shift = shift.astype(dtype)
            operands = estep_operands(state.weights, state.means, state.prec_chol,
                                      state.cov_type, shift.astype(np.float64), dtype)
            ll, _ = eng.run(X, sw, shift, "estep", operands=operands,
                            stats=False, out_lpn=out_lpn, out_resp=out_resp,
                            out_labels=out_labels)
        total = n_samples if sw is None else float(np.sum(sw, dtype=np.float64))
        return {"ll": ll, "mean_ll": float(ll / total), "lpn": out_lpn,
                "resp": out_resp, "labels": out_labels, "n_samples": n_samples}

    def predict(self, X):
        """Most likely component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
            argmax_k of w_k N(x | mu_k, Sigma_k).
        """
        return self._row_pass(X, labels=True)["labels"]

    def predict_proba(self, X):
        """Posterior probability of each component for each sample.

        Computed chunk by chunk: no memory beyond the returned array.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Responsibilities, in X's float dtype; rows sum to 1.
        """
        return self._row_pass(X, resp=True)["resp"]

    def score_samples(self, X):
        """Log-likelihood ``log p(x)`` of each sample under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            In X's float dtype.
        """
        return self._row_pass(X, lpn=True)["lpn"]

    def score(self, X, y=None, sample_weight=None):
        """Average log-likelihood per sample (weighted by ``sample_weight``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : Ignored
            Present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample.

        Returns
        -------
        log_likelihood : float
            ``sum_n w_n log p(x_n) / sum_n w_n``, accumulated in float64.
        """
        return self._row_pass(X, sample_weight=sample_weight)["mean_ll"]

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture.

        Component counts are multinomial with the weights; samples come out
        grouped by component (as in scikit-learn). ``random_state`` seeds the
        draws, so the same estimator gives the same samples on every call.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features), float64
            Samples.
        y : ndarray of shape (n_samples,), int64
            Their components.
        """
        state = self._fitted_state()
        n_samples = check_int(n_samples, "n_samples", min_value=1)
        K, D = state.means.shape
        covs = check_fitted_array(self, "covariances_", _COVARIANCE_SHAPES[state.cov_type](K, D),
                                  positive=state.cov_type in ("diag", "spherical"))
        covs = covs.astype(np.float64)
        if state.cov_type in ("full", "tied"):
            try:
                factors = np.linalg.cholesky(covs)
            except np.linalg.LinAlgError:
                raise ValueError(
                    "GaussianMixture.covariances_ must be positive definite: "
                    "refit the estimator."
                ) from None
        rng = check_random_state(self.random_state)
        weights = state.weights.astype(np.float64)
        counts = rng.multinomial(n_samples, weights / weights.sum())
        means = state.means.astype(np.float64)
        parts = []
        for k, count in enumerate(counts):
            z = rng.standard_normal(size=(int(count), D))
            if state.cov_type == "full":
                parts.append(means[k] + z @ factors[k].T)
            elif state.cov_type == "tied":
                parts.append(means[k] + z @ factors.T)
            else:  # diag: a variance per feature; spherical: one per component
                parts.append(means[k] + z * np.sqrt(covs[k]))
        X = np.vstack(parts)
        y = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        return X, y

    def _n_parameters(self):
        state = self._fitted_state()
        return n_parameters(state.cov_type, *state.means.shape)

    def bic(self, X):
        """Bayesian information criterion on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        bic : float
            ``-2 log L + n_parameters log(n_samples)``.
        """
        out = self._row_pass(X)
        return -2 * out["ll"] + self._n_parameters() * math.log(out["n_samples"])

    def aic(self, X):
        """Akaike information criterion on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        aic : float
            ``-2 log L + 2 n_parameters``.
        """
        return -2 * self._row_pass(X)["ll"] + 2 * self._n_parameters()

    # ------------------------------------------------------------------
    # verbose output (as scikit-learn)

    def _verbose_init_beg(self, n_init):
        if self.verbose >= 1:
            print(f"Initialization {n_init}")
        if self.verbose >= 2:
            self._init_prev_time = time()
            self._iter_prev_time = self._init_prev_time

    def _verbose_iter_end(self, n_iter, diff_ll):
        if n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                print(f"  Iteration {n_iter}")
            elif self.verbose >= 2:
                now = time()
                print(f"  Iteration {n_iter}\t time lapse {now - self._iter_prev_time:.5f}s"
                      f"\t ll change {diff_ll:.5f}")
                self._iter_prev_time = now

    def _verbose_init_end(self, lb, converged):
        msg = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {msg}.")
        elif self.verbose >= 2:
            print(f"Initialization {msg}. time lapse {time() - self._init_prev_time:.5f}s"
                  f"\t lower bound {lb:.5f}.")


# ----------------------------------------------------------------------
# seeding through fastem's KMeans and k-means++

def _seed_int(rng):
    return int(rng.integers(0, 2**31 - 1))


def _kmeans_labels(X, sw, K, rng, n_threads):
    from fastem._kmeans import KMeans

    # plain Lloyd: the bounded passes would keep two more floats per row,
    # and the initialisation must stay within fit's small memory budget
    km = KMeans(n_clusters=K, n_init=1, random_state=_seed_int(rng),
                algorithm="lloyd", n_threads=n_threads)
    km.fit(X, sample_weight=sw)
    return np.ascontiguousarray(km.labels_, dtype=np.int32)


def _kmeans_plusplus_indices(X, sw, K, rng, n_threads):
    from fastem._init import kmeans_plusplus

    _, indices = kmeans_plusplus(X, K, sample_weight=sw, random_state=_seed_int(rng),
                                 n_threads=n_threads)
    return indices
