"""MiniBatchKMeans: scikit-learn's mini-batch k-means on fastem's Lloyd pass.

Each step assigns one batch with the compiled ``lloyd_pass`` (chunked,
parallel, fixed summation order: bit-identical for any thread count), which
also returns each centre's weighted sum of batch rows and their weight. The
update is scikit-learn's (Sculley 2010, with weights): centre k has seen a
total weight ``n_k``; a batch bringing weight ``W_k`` and sum ``S_k`` moves
it to the weighted mean of everything it has seen,

    c_k <- (n_k c_k + S_k) / (n_k + W_k) = c_k + (S_k - W_k c_k) / (n_k + W_k),

a per-centre learning rate ``W_k / (n_k + W_k)`` that decays as the centre
accumulates weight. Centres whose count falls below ``reassignment_ratio``
times the largest are moved onto random rows of the batch.
"""
import math
import sys

import numpy as np

from fastem import _sparse
from fastem._base import check_data, unchanged_on_error
from fastem._kmeans import KMeans, _rows, assign_pass, inference_frame
from fastem._parallel import blas_single_threaded
from fastem._stats import column_mean_var
from fastem._validation import (
    check_fitted_array,
    check_int,
    check_random_state,
    check_real,
    check_sample_weight,
    effective_n_threads,
)


class MiniBatchKMeans(KMeans):
    """Mini-batch k-means, for data too large to iterate over or arriving in batches.

    A drop-in for ``sklearn.cluster.MiniBatchKMeans``: same parameters,
    methods and fitted attributes, same update (counts-based per-centre
    learning rates, random reassignment of low-count centres, early stopping
    on an exponentially weighted average of the batch inertia). Sparse
    (CSR) data are used without densifying them, in ``fit`` and in
    ``partial_fit`` (see :class:`fastem.KMeans`). Each step is
    one pass of fastem's compiled assignment kernel over the batch; float32
    data stays float32 in the distances, and the updates are computed in
    float64.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {'k-means++', 'k-means||', 'random'}, array-like of shape (n_clusters, n_features) or callable, default='k-means++'
        Seeding, on a random subset of ``init_size`` rows (as for
        :class:`fastem.KMeans`).
    max_iter : int, default=100
        Maximum number of passes over the data (``fit`` runs at most
        ``max_iter * n_samples // batch_size`` steps).
    batch_size : int, default=1024
        Rows per mini-batch in ``fit`` (capped to n_samples).
    verbose : int, default=0
        Print one line per step to stderr.
    compute_labels : bool, default=True
        Compute ``labels_`` and ``inertia_`` on all of X (``fit``) or on the
        batch (``partial_fit``) once the centres are final. If False,
        ``fit``'s ``inertia_`` is the average batch inertia times the total
        weight and ``labels_`` is not set.
    random_state : int, numpy Generator or RandomState, default=None
        Seed of the initialisation, the batch draws and the reassignments.
    tol : float, default=0.0
        Stop when the squared change of the centres in one step is at most
        ``tol`` times the mean per-feature variance of X (0: never).
    max_no_improvement : int or None, default=10
        Stop after this many consecutive steps without improvement of the
        smoothed batch inertia (None: never).
    init_size : int, default=None
        Rows seeding uses (and on which the ``n_init`` candidates are
        compared); ``3 * batch_size`` if None, at least ``3 * n_clusters``.
    n_init : 'auto' or int, default='auto'
        Number of seedings, the best on the ``init_size`` rows is kept;
        'auto': 1 for 'k-means++', 'k-means||' or an array, 3 for 'random' or
        a callable.
    reassignment_ratio : float, default=0.01
        Centres whose accumulated weight is below this fraction of the
        largest are moved onto random rows of the batch (checked every
        ``10 * n_clusters`` rows and whenever a centre has no weight yet).
    n_threads : int, default=None
        OpenMP threads (None: all allowed cores).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Centres, in X's float dtype.
    labels_ : ndarray of shape (n_samples,), int32
        Nearest centre of each row (if ``compute_labels``).
    inertia_ : float
        Weighted sum of squared distances to the nearest centre.
    n_iter_ : int
        Passes over the data ``fit`` made (``ceil(n_steps_ * batch / n)``).
    n_steps_ : int
        Mini-batch steps done.
    counts_ : ndarray of shape (n_clusters,), float64
        Weight each centre has accumulated (sets its learning rate; saved in
        model files so that ``partial_fit`` continues after ``load``; the
        random reassignments after ``load`` draw from a new generator seeded
        with ``random_state``, pickling keeps the generator).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.

    Notes
    -----
    ``fit`` draws each batch with replacement, rows with probability
    proportional to their weight, as scikit-learn does; ``partial_fit`` uses
    the batch it is given with its weights. Use ``partial_fit`` when the data
    arrive in batches or do not fit in memory, ``fit`` on a large in-memory X
    when one pass of :class:`fastem.KMeans` per iteration is too slow.
    """

    _random_n_init = 3

    def __init__(self, n_clusters=8, *, init="k-means++", max_iter=100,
                 batch_size=1024, verbose=0, compute_labels=True, random_state=None,
                 tol=0.0, max_no_improvement=10, init_size=None, n_init="auto",
                 reassignment_ratio=0.01, n_threads=None):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.n_threads = n_threads

    def _check_params(self):
        """Validated (n_clusters, max_iter, tol, n_threads)."""
        k = check_int(self.n_clusters, "n_clusters", min_value=1)
        max_iter = check_int(self.max_iter, "max_iter", min_value=1)
        tol = check_real(self.tol, "tol", min_value=0.0)
        check_int(self.batch_size, "batch_size", min_value=1)
        check_int(self.verbose, "verbose", min_value=0)
        if self.max_no_improvement is not None:
            check_int(self.max_no_improvement, "max_no_improvement", min_value=0)
        if self.init_size is not None:
            check_int(self.init_size, "init_size", min_value=1)
        check_real(self.reassignment_ratio, "reassignment_ratio", min_value=0.0)
        if not isinstance(self.compute_labels, (bool, np.bool_)):
            raise TypeError(f"compute_labels must be a bool, got {self.compute_labels!r}.")
        return k, max_iter, tol, effective_n_threads(self.n_threads)

    def _fitted_state(self):
        centres = super()._fitted_state()
        # partial_fit continues from counts_: it must be there and consistent
        counts = check_fitted_array(self, "counts_", (centres.shape[0],))
        if (counts < 0).any():
            raise ValueError(
                f"{type(self).__name__}.counts_ must be >= 0: refit the estimator.")
        return centres

    def _init_size(self, n_samples, batch):
        k = self.n_clusters
        size = 3 * batch if self.init_size is None else self.init_size
        return min(max(size, 3 * k), n_samples)

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None, sample_weight=None):
        """Compute the centres on X by mini-batches drawn from it.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (float32 and float64 kept as they are).
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: batches draw rows with probability
            proportional to them.

        Returns
        -------
        self : MiniBatchKMeans
        """
        with unchanged_on_error(self):
            return self._fit(X, sample_weight)

    def _fit(self, X, sample_weight):
        k, max_iter, tol, n_threads = self._check_params()
        X = check_data(self, X, reset=True, accept_sparse=True)
        n_samples = self._check_n_samples(X, k)
        sw = check_sample_weight(sample_weight, n_samples, X.dtype)
        init, n_init = self._check_init(X, k)
        rng = check_random_state(self.random_state)
        batch = min(self.batch_size, n_samples)
        if tol:
            var = (_sparse.column_mean_var(X) if _sparse.issparse(X)
                   else column_mean_var(X, n_threads=n_threads))[1]
        abs_tol = float(np.mean(var)) * tol if tol else 0.0
        total_w = float(n_samples if sw is None else sw.sum(dtype=np.float64))
        # batches with replacement, rows drawn proportionally to their weight
        # (inverse CDF of the weights: O(batch log n) per draw)
        cdf = None if sw is None else np.cumsum(sw, dtype=np.float64)

        with blas_single_threaded():
            centres = self._best_seeding(X, sw, k, init, n_init, batch, rng, n_threads)
            counts = np.zeros(k)
            stop = _EarlyStopping(self, n_samples, batch, abs_tol)
            n_since_reassign = 0
            n_steps = max(1, (max_iter * n_samples) // batch)
            for step in range(n_steps):
                if cdf is None:
                    rows = rng.integers(n_samples, size=batch)
                else:
                    rows = np.searchsorted(cdf, rng.uniform(0.0, cdf[-1], size=batch),
                                           side="right")
                    np.minimum(rows, n_samples - 1, out=rows)
                n_since_reassign, reassign = _reassign_due(n_since_reassign, batch, k, counts)
                new, inertia = minibatch_step(
                    X[rows], None, centres, counts, rng, reassign=reassign,
                    reassignment_ratio=self.reassignment_ratio, n_threads=n_threads,
                    verbose=self.verbose)
                change = (float(np.square(new.astype(np.float64) - centres).sum())
                          if abs_tol > 0 else 0.0)
                centres = new
                if stop(step, n_steps, inertia / batch, change):
                    break
            self.cluster_centers_ = centres
            self.counts_ = counts
            self.n_steps_ = step + 1
            self.n_iter_ = int(math.ceil((step + 1) * batch / n_samples))
            if self.compute_labels:
                frame_centres, shift = inference_frame(centres, X.dtype, _sparse.issparse(X))
                self.labels_, self.inertia_, _, _ = assign_pass(X, sw, frame_centres,
                                                                shift, n_threads,
                                                                with_sums=False)
            else:
                # scikit-learn's estimate: the smoothed mean batch inertia
                self.inertia_ = (stop.ewa if stop.ewa is not None else stop.last) * total_w
        return self

    def _check_n_samples(self, X, k):
        n_samples = X.shape[0]
        if k > n_samples:
            raise ValueError(
                f"n_samples={n_samples} should be >= n_clusters={k}: ask for at "
                "most as many clusters as there are samples."
            )
        return n_samples

    def _best_seeding(self, X, sw, k, init, n_init, batch, rng, n_threads):
        """Initial centres (X's dtype): the best of ``n_init`` seedings, each
        on its own random subset of ``init_size`` rows, compared by their
        inertia on one more such subset (scikit-learn's procedure)."""
        n_samples = X.shape[0]
        size = self._init_size(n_samples, batch)
        valid = rng.integers(n_samples, size=size)
        X_valid = X[valid]
        sw_valid = None if sw is None else sw[valid]
        zero = np.zeros(X.shape[1], dtype=X.dtype)
        best, best_inertia = None, np.inf
        for run in range(n_init):
            if not isinstance(init, np.ndarray) and size < n_samples:
                subset = rng.integers(n_samples, size=size)
                Xs, sws = X[subset], None if sw is None else sw[subset]
            else:
                Xs, sws = X, sw
            if sws is not None and not (sws > 0).any():
                sws = None  # all drawn rows weigh 0: seed them unweighted
            centres = self._initial_centres(Xs, k, init, sws, zero, rng, n_threads)
            frame_centres, shift = inference_frame(centres, X.dtype, _sparse.issparse(X))
            inertia = assign_pass(X_valid, sw_valid, frame_centres, shift, n_threads,
                                  with_sums=False)[1]
            if self.verbose:
                print(f"Init {run + 1}/{n_init}: inertia {inertia:.6e} on "
                      f"{size} rows", file=sys.stderr)
            if best is None or inertia < best_inertia:
                best, best_inertia = centres, inertia
        return np.ascontiguousarray(best)

    # ---------------------------------------------------------- partial_fit

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the centres with one mini-batch.

        The first call seeds the centres on this batch (``init``, on at most
        ``init_size`` of its rows); later calls need the same number of
        features and float dtype as the first.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The batch.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the batch's rows.

        Returns
        -------
        self : MiniBatchKMeans
        """
        with unchanged_on_error(self):
            return self._partial_fit(X, sample_weight)

    def _partial_fit(self, X, sample_weight):
        k, _, _, n_threads = self._check_params()
        first = not hasattr(self, "cluster_centers_")
        if first:
            X = check_data(self, X, reset=True, accept_sparse=True)
            self._check_n_samples(X, k)
        else:
            centres = self._fitted_state()
            X = check_data(self, X, reset=False, accept_sparse=True)
            if X.dtype != centres.dtype:
                raise ValueError(
                    f"X has dtype {X.dtype}, but {type(self).__name__} was fitted on "
                    f"{centres.dtype} data: pass every batch in the same float dtype.")
        sw = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        # the generator lives for the stream; a loaded model starts a new one
        if getattr(self, "_rng", None) is None:
            self._rng = check_random_state(self.random_state)
        rng = self._rng
        with blas_single_threaded():
            if first:
                init, n_init = self._check_init(X, k)
                centres = self._best_seeding(X, sw, k, init, n_init,
                                             min(self.batch_size, X.shape[0]), rng,
                                             n_threads)
                self.counts_ = np.zeros(k)
                self.n_steps_ = 0
            counts = np.array(self.counts_, dtype=np.float64)  # a copy: errors leave it
            n_since, reassign = _reassign_due(getattr(self, "_n_since_reassign", 0),
                                              X.shape[0], centres.shape[0], counts)
            centres, _ = minibatch_step(
                X, sw, centres, counts, rng, reassign=reassign,
                reassignment_ratio=self.reassignment_ratio, n_threads=n_threads,
                verbose=self.verbose)
            if self.compute_labels:
                frame_centres, shift = inference_frame(centres, X.dtype, _sparse.issparse(X))
                self.labels_, self.inertia_, _, _ = assign_pass(X, sw, frame_centres,
                                                                shift, n_threads,
                                                                with_sums=False)
        self.cluster_centers_ = centres
        self.counts_ = counts
        self._n_since_reassign = n_since
        self.n_steps_ = int(self.n_steps_) + 1
        return self


def _reassign_due(n_since, batch_rows, k, counts):
    """scikit-learn's schedule: reassign low-count centres every ``10 k``
    rows, and at once while some centre has no weight yet.
    Returns (rows since the last reassignment, whether to reassign now)."""
    n_since += batch_rows
    if (counts == 0).any() or n_since >= 10 * k:
        return 0, True
    return n_since, False


def minibatch_step(X, sample_weight, centres, counts, rng, *, reassign,
                   reassignment_ratio, n_threads, verbose=0):
    """One mini-batch step: assign the batch, move the centres, reassign.

    ``centres`` (k, d) in X's dtype are not modified; ``counts`` (k,)
    float64 is updated in place. BLAS must already be single-threaded.

    Returns
    -------
    centres : ndarray (k, d), X's dtype, the new centres
    inertia : float, the batch's inertia under the centres passed in
    """
    frame_centres, shift = inference_frame(centres, X.dtype, _sparse.issparse(X))
    _, inertia, sums, weights = assign_pass(X, sample_weight, frame_centres, shift,
                                            n_threads)
    # c_k += (S_k - W_k c_k) / counts_k for the centres the batch reached,
    # where the sums are about the frame's shift:
    # S_k - W_k c_k = sums_k - W_k (c_k - shift)
    new = centres.astype(np.float64)
    counts += weights
    seen = (weights > 0)[:, None]
    move = new - shift.astype(np.float64)
    move *= weights[:, None]
    np.subtract(sums, move, out=move)
    np.divide(move, counts[:, None], out=move, where=seen)
    np.add(new, move, out=new, where=seen)
    new = new.astype(X.dtype)
    if reassign and reassignment_ratio > 0:
        _reassign_low_counts(X, new, counts, rng, reassignment_ratio, verbose)
    return new, inertia


def _reassign_low_counts(X, centres, counts, rng, ratio, verbose):
    """Move the centres with ``counts < ratio * max(counts)`` onto distinct
    random rows of the batch (at most half the batch); their counts become
    the smallest count kept, so that they are not reassigned at once."""
    low = counts < ratio * counts.max()
    half = int(0.5 * X.shape[0])
    if low.sum() > half:
        low[np.argsort(counts, kind="stable")[half:]] = False
    n_low = int(low.sum())
    if n_low == 0:
        return
    rows = rng.choice(X.shape[0], size=n_low, replace=False)
    if verbose:
        print(f"[MiniBatchKMeans] Reassigning {n_low} cluster centers.", file=sys.stderr)
    centres[low] = _rows(X, rows)
    if (~low).any():
        counts[low] = counts[~low].min()


class _EarlyStopping:
    """scikit-learn's stopping rule for ``fit``: a small centre change
    (``tol``), or ``max_no_improvement`` steps in a row without a new minimum
    of the exponentially weighted average (EWA) of the mean batch inertia.
    The first step's inertia, that of the seeding, is ignored."""

    def __init__(self, est, n_samples, batch, abs_tol):
        self.verbose = est.verbose
        self.patience = est.max_no_improvement
        self.alpha = min(1.0, batch * 2.0 / (n_samples + 1))
        self.abs_tol = abs_tol
        self.ewa = None
        self.last = None  # the last mean batch inertia
        self.best = None
        self.no_improvement = 0

    def __call__(self, step, n_steps, mean_inertia, change):
        step += 1
        self.last = mean_inertia
        if step == 1:
            self._log(f"Minibatch step {step}/{n_steps}: mean batch inertia: {mean_inertia}")
            return False
        self.ewa = (mean_inertia if self.ewa is None
                    else self.ewa * (1 - self.alpha) + mean_inertia * self.alpha)
        self._log(f"Minibatch step {step}/{n_steps}: mean batch inertia: "
                  f"{mean_inertia}, ewa inertia: {self.ewa}")
        if self.abs_tol > 0 and change <= self.abs_tol:
            self._log(f"Converged (small centers change) at step {step}/{n_steps}")
            return True
        if self.best is None or self.ewa < self.best:
            self.no_improvement = 0
            self.best = self.ewa
        else:
            self.no_improvement += 1
        if self.patience is not None and self.no_improvement >= self.patience:
            self._log("Converged (lack of improvement in inertia) at step "
                      f"{step}/{n_steps}")
            return True
        return False

    def _log(self, msg):
        if self.verbose:
            print(msg, file=sys.stderr)
