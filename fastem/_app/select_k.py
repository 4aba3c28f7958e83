"""Choosing the number of clusters: elbow, information criteria, stability."""
import math
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from fastem._validation import (
    check_array,
    check_int,
    check_option,
    check_random_state,
)

__all__ = ["select_k", "SelectKResult"]

METHODS = ("elbow", "bic", "aic", "stability")
_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
# two stability means closer than this are a tie (the smaller K wins)
_STABILITY_TIE = 1e-9


def _estimators():
    from fastem import GaussianMixture, KMeans

    return KMeans, GaussianMixture


@dataclass
class SelectKResult:
    """What :func:`select_k` found, K by K.

    Attributes
    ----------
    k : ndarray of shape (n_k,)
        The candidate numbers of clusters, increasing.
    objective : ndarray of shape (n_k,)
        K-means objective J(K) (sum of squared distances to the nearest
        centre, the ``inertia_``), best of the runs; NaN when the elbow
        method was not requested.
    bic, aic : ndarray of shape (n_k,)
        Bayesian and Akaike information criteria of the best Gaussian
        mixture (lower is better); NaN when not requested.
    stability_mean, stability_std : ndarray of shape (n_k,)
        Mean and standard deviation of the adjusted Rand index over all
        pairs of the ``n_runs`` partitions for each K; NaN when not
        requested.
    recommended : dict
        Method name (``"elbow"``, ``"bic"``, ``"aic"``, ``"stability"``)
        mapped to its recommended K, or None when the method cannot decide
        (for example no elbow in a straight curve).
    methods : tuple of str
        Methods computed.
    model : {"kmeans", "gmm"}
        Model whose partitions were compared for stability.
    covariance_type : str
        Covariance type of the Gaussian mixtures.
    n_runs : int
        Runs per K for stability.
    n_samples, n_features : int
        Shape of the data.
    """

    k: np.ndarray
    objective: np.ndarray
    bic: np.ndarray
    aic: np.ndarray
    stability_mean: np.ndarray
    stability_std: np.ndarray
    recommended: dict
    methods: tuple
    model: str = "kmeans"
    covariance_type: str = "full"
    n_runs: int = 0
    n_samples: int = 0
    n_features: int = 0
    fit_time: float = field(default=0.0, repr=False)

    # ------------------------------------------------------------------
    def _columns(self):
        """(key, title, values, format) for each computed column."""
        cols = []
        if "elbow" in self.methods:
            cols.append(("objective", "objective J", self.objective, "{:.6g}"))
        if "bic" in self.methods:
            cols.append(("bic", "BIC", self.bic, "{:.6g}"))
        if "aic" in self.methods:
            cols.append(("aic", "AIC", self.aic, "{:.6g}"))
        if "stability" in self.methods:
            cols.append(("stability_mean", "stability", self.stability_mean, "{:.3f}"))
            cols.append(("stability_std", "± sd", self.stability_std, "{:.3f}"))
        return cols

    @property
    def table(self):
        """The per-K table as a list of dicts, one row per K.

        Keys: ``k`` and, for the methods computed, ``objective``, ``bic``,
        ``aic``, ``stability_mean``, ``stability_std``.
        """
        rows = []
        for i, k in enumerate(self.k):
            row = {"k": int(k)}
            for key, _, values, _ in self._columns():
                row[key] = float(values[i])
            rows.append(row)
        return rows

    def _method_of_column(self, key):
        return {"objective": "elbow", "bic": "bic", "aic": "aic",
                "stability_mean": "stability"}.get(key)

    def _cells(self):
        header = ["K"] + [title for _, title, _, _ in self._columns()]
        columns = []
        for key, _, values, fmt in self._columns():
            finite = values[np.isfinite(values)]
            if fmt == "{:.6g}":
                fmt = "{:.2f}" if finite.size == 0 or np.abs(finite).max() < 1e7 else "{:.4e}"
            method = self._method_of_column(key)
            cells = []
            for k, v in zip(self.k, values):
                text = "-" if not np.isfinite(v) else fmt.format(v)
                if method is not None:
                    text += " *" if self.recommended.get(method) == int(k) else "  "
                cells.append(text)
            columns.append(cells)
        body = [[str(int(k))] + [col[i] for col in columns] for i, k in enumerate(self.k)]
        return header, body

    def _recommendation_line(self):
        names = {"elbow": "elbow", "bic": "BIC", "aic": "AIC", "stability": "stability"}
        parts = []
        for m in self.methods:
            k = self.recommended.get(m)
            parts.append(f"{names[m]} {k if k is not None else 'none'}")
        return "recommended K: " + ", ".join(parts)

    def _description(self):
        what = []
        if "elbow" in self.methods:
            what.append("objective J = K-means sum of squared distances (elbow: "
                        "farthest point below the chord)")
        if "bic" in self.methods or "aic" in self.methods:
            what.append(f"BIC/AIC of {self.covariance_type}-covariance Gaussian "
                        "mixtures (lower is better)")
        if "stability" in self.methods:
            name = "K-means" if self.model == "kmeans" else "Gaussian mixture"
            what.append(f"stability = mean adjusted Rand index between "
                        f"{self.n_runs} {name} runs (higher is better)")
        return what

    def __str__(self):
        header, body = self._cells()
        widths = [max(len(r[j]) for r in [header] + body) for j in range(len(header))]
        fmt_row = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths))  # noqa: E731
        lines = [f"select_k on {self.n_samples} samples x {self.n_features} features"]
        lines += ["  " + w for w in self._description()]
        lines.append("")
        lines.append(fmt_row(header))
        lines.append("  ".join("-" * w for w in widths))
        lines += [fmt_row(r) for r in body]
        lines.append("(* = recommended by that column's method)")
        lines.append(self._recommendation_line())
        return "\n".join(lines)

    def to_markdown(self):
        """The per-K table as a Markdown table, recommended K marked with ``*``.

        Returns
        -------
        text : str
        """
        header, body = self._cells()
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" for _ in header) + "|"]
        lines += ["| " + " | ".join(c.strip().replace("*", "\\*") for c in r) + " |"
                  for r in body]
        lines.append("")
        lines.append(self._recommendation_line())
        return "\n".join(lines)

    def plot(self, path=None, ax=None):
        """Plot the criteria against K, one panel per family of methods.

        Panels: the elbow curve J(K) with its knee; BIC and AIC with their
        minima; stability (mean ± sd of the adjusted Rand index) with its
        maximum. Needs matplotlib (``pip install "fastem[plot]"``).

        Parameters
        ----------
        path : str or os.PathLike, optional
            Save the figure there (format from the extension, e.g. ``.png``).
        ax : matplotlib Axes or sequence of Axes, optional
            Axes to draw on, one per panel. By default a new figure is made
            (through pyplot when ``path`` is None, so that it shows in
            notebooks; without pyplot's global state when saving to ``path``).

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ImportError(
                "SelectKResult.plot needs matplotlib: pip install \"fastem[plot]\""
            ) from None
        panels = self._panels()
        fig, axes = _figure_and_axes(panels, path, ax)
        k = self.k
        draw = {"elbow": self._plot_elbow, "criteria": self._plot_criteria,
                "stability": self._plot_stability}
        for panel, a in zip(panels, axes):
            draw[panel](a)
            a.set_xlabel("number of clusters K")
            a.set_xticks(k if len(k) <= 20 else k[:: int(math.ceil(len(k) / 20))])
            a.grid(alpha=0.3)
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig

    def _panels(self):
        """The plot's panels, in order: one per family of methods computed."""
        panels = []
        if "elbow" in self.methods:
            panels.append("elbow")
        if "bic" in self.methods or "aic" in self.methods:
            panels.append("criteria")
        if "stability" in self.methods:
            panels.append("stability")
        return panels

    def _plot_elbow(self, a):
        """J(K), with the chord and the knee when there is one."""
        k = self.k
        a.plot(k, self.objective, "o-", color="C0")
        knee = self.recommended.get("elbow")
        if knee is not None:
            i = int(np.flatnonzero(k == knee)[0])
            a.plot([k[0], k[-1]], [self.objective[0], self.objective[-1]],
                   ":", color="0.5", lw=1, label="chord")
            a.plot(knee, self.objective[i], "o", ms=12, mfc="none",
                   mec="C3", mew=2, label=f"elbow: K={knee}")
            a.legend(frameon=False)
        a.set_title("Elbow: K-means objective")
        a.set_ylabel("J(K), sum of squared distances")

    def _plot_criteria(self, a):
        """BIC and AIC (those computed), each minimum circled."""
        k = self.k
        for name, values, color in (("bic", self.bic, "C0"), ("aic", self.aic, "C1")):
            if name not in self.methods:
                continue
            best = self.recommended.get(name)
            label = name.upper() + (f" (min at K={best})" if best is not None else "")
            a.plot(k, values, "o-", color=color, label=label)
            if best is not None:
                i = int(np.flatnonzero(k == best)[0])
                a.plot(best, values[i], "o", ms=12, mfc="none", mec=color, mew=2)
        a.legend(frameon=False)
        a.set_title(f"Information criteria ({self.covariance_type} covariance)")
        a.set_ylabel("criterion (lower is better)")

    def _plot_stability(self, a):
        """Mean ± sd of the adjusted Rand index, the most stable K circled."""
        k = self.k
        a.errorbar(k, self.stability_mean, yerr=self.stability_std, fmt="o-",
                   color="C2", capsize=3)
        if k[0] == 1:  # trivially stable, not a candidate
            a.plot(1, self.stability_mean[0], "o", color="0.75", zorder=3)
        best = self.recommended.get("stability")
        if best is not None:
            i = int(np.flatnonzero(k == best)[0])
            a.plot(best, self.stability_mean[i], "o", ms=12, mfc="none",
                   mec="C3", mew=2, label=f"most stable: K={best}")
            a.legend(frameon=False, loc="lower left")
        a.set_ylim(min(-0.05, np.nanmin(self.stability_mean - self.stability_std) - 0.05), 1.05)
        a.set_title("Stability across initialisations")
        a.set_ylabel("adjusted Rand index (mean ± sd)")


def _figure_and_axes(panels, path, ax):
    """The figure and one Axes per panel: the given ``ax``, or a new figure.

    A new figure goes through pyplot when ``path`` is None (so that it shows
    in notebooks) and avoids pyplot's global state when saving to ``path``.
    """
    if ax is None:
        size = (4.2 * len(panels), 3.6)
        if path is None:
            import matplotlib.pyplot as plt

            fig, axes = plt.subplots(1, len(panels), figsize=size, squeeze=False)
        else:
            from matplotlib.figure import Figure

            fig = Figure(figsize=size, layout="constrained")
            axes = fig.subplots(1, len(panels), squeeze=False)
        return fig, list(axes[0])
    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) < len(panels):
        raise ValueError(
            f"plot needs {len(panels)} Axes ({', '.join(panels)}), got {len(axes)}"
        )
    return axes[0].figure, axes


def elbow_k(k, objective):
    """The elbow of a decreasing curve: the farthest point below its chord.

    Both axes are scaled to [0, 1] (K from its smallest to its largest
    value, J from its minimum to its maximum); the chord joins the first
    and the last point; the elbow is the interior point lying farthest
    below the chord (the "kneedle" rule of Satopää et al., 2011, without
    smoothing). With fewer than three points, or no point below the chord
    (a straight or concave curve), there is no elbow.

    The chord depends on the range: let K run well past the expected knee
    (to about twice it), or a steep drop just before the knee can win.

    Parameters
    ----------
    k : array-like of shape (n_k,)
        Increasing K values.
    objective : array-like of shape (n_k,)
        Objective for each K (NaN entries are ignored).

    Returns
    -------
    k : int or None
    """
    k = np.asarray(k, dtype=np.float64)
    y = np.asarray(objective, dtype=np.float64)
    ok = np.isfinite(y)
    k, y = k[ok], y[ok]
    if k.size < 3 or y.max() == y.min():
        return None
    x = (k - k[0]) / (k[-1] - k[0])
    y = (y - y.min()) / (y.max() - y.min())
    chord = y[0] + (y[-1] - y[0]) * x
    below = (chord - y)[1:-1]
    i = int(np.argmax(below))
    if below[i] <= 1e-12:
        return None
    return int(k[1 + i])


def _check_k_range(k_range, n_samples):
    try:
        ks = [check_int(k, "k_range values") for k in k_range]
    except TypeError:
        raise TypeError(
            f"k_range must be an iterable of ints such as range(1, 11), got {k_range!r}"
        ) from None
    if not ks:
        raise ValueError("k_range is empty; pass at least one K, e.g. range(1, 11).")
    ks = np.unique(np.asarray(ks, dtype=np.int64))
    if ks[0] < 1:
        raise ValueError(f"k_range values must be >= 1, got {int(ks[0])}.")
    if ks[-1] > n_samples:
        raise ValueError(
            f"k_range goes up to K={int(ks[-1])} but the data have only "
            f"{n_samples} samples; K cannot exceed the number of samples."
        )
    return ks


def select_k(
    X,
    k_range=range(1, 11),
    *,
    methods=METHODS,
    model="kmeans",
    covariance_type="full",
    n_runs=10,
    n_init=3,
    max_iter=300,
    tol=None,
    random_state=None,
    n_threads=None,
    verbose=0,
):
    """Compare numbers of clusters K with the elbow, BIC/AIC and stability.

    For every K in ``k_range``:

    * **elbow** -- K-means is fitted and its objective J(K) (the sum of
      squared distances of the samples to their nearest centre) recorded.
      J always decreases with K; the recommended K is the *elbow*, the
      point lying farthest below the chord from the first to the last point
      of the curve once both axes are scaled to [0, 1] (see
      :func:`elbow_k`).
    * **bic**, **aic** -- a Gaussian mixture with ``covariance_type``
      covariances is fitted; the recommended K minimises its Bayesian
      (resp. Akaike) information criterion, ``-2 log L + p log n``
      (resp. ``-2 log L + 2 p``) for ``p`` free parameters.
    * **stability** -- ``n_runs`` fits of ``model`` from different random
      initialisations (``n_init=1`` each); the agreement between every pair
      of their partitions is measured by the adjusted Rand index (ARI). A K
      that matches real structure gives the same partition whatever the
      start; a K that splits or merges clusters arbitrarily does not. The
      recommended K is the one with the highest mean ARI among K >= 2
      (K = 1 is trivially stable); ties go to the smaller K.

    Runs are shared: when stability uses K-means, J(K) is the best of its
    ``n_runs`` runs; when it uses Gaussian mixtures, BIC and AIC come from
    the run with the highest likelihood. Otherwise J(K), BIC and AIC are the
    best of ``n_init`` runs.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data (float32 or float64 kept; other types become float64).
    k_range : iterable of int, default=range(1, 11)
        Candidate numbers of clusters (each between 1 and n_samples).
    methods : iterable of {"elbow", "bic", "aic", "stability"}, default=all
        Methods to compute.
    model : {"kmeans", "gmm"}, default="kmeans"
        Model whose partitions are compared for stability (Gaussian
        mixtures give hard labels by ``predict``).
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Covariance type of the Gaussian mixtures.
    n_runs : int, default=10
        Runs per K for stability (at least 2; ``n_runs * (n_runs - 1) / 2``
        pairs are compared).
    n_init : int, default=3
        Runs per K for the objective and the information criteria when
        they are not shared with stability runs (the best is kept).
    max_iter : int, default=300
        Maximum iterations of each fit.
    tol : float, optional
        Convergence tolerance of each fit; None uses each estimator's
        default.
    random_state : int, numpy.random.Generator or None, default=None
        Seeds every run; an int makes the result reproducible.
    n_threads : int, optional
        Threads of each fit (None: all cores).
    verbose : int, default=0
        With ``verbose > 0``, one progress line per K on standard error.

    Returns
    -------
    result : SelectKResult
        The per-K table (``result.table``, ``str(result)``,
        ``result.to_markdown()``), the recommendation of each method
        (``result.recommended``) and a plot helper (``result.plot()``).

    Raises
    ------
    ValueError
        Unknown method or model, K outside [1, n_samples], n_runs < 2 with
        stability, invalid data.

    Notes
    -----
    The cost is ``len(k_range)`` times (``n_runs`` or ``n_init``) K-means
    fits plus as many Gaussian-mixture fits. On large data, run it on a
    random subsample: the number of clusters rarely depends on having every
    point.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import select_k
    >>> rng = np.random.default_rng(0)
    >>> centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]])
    >>> X = np.concatenate([c + rng.normal(size=(100, 2)) for c in centres])
    >>> result = select_k(X, range(1, 8), random_state=0)
    >>> result.recommended
    {'elbow': 4, 'bic': 4, 'aic': 4, 'stability': 4}
    """
    X = check_array(X)
    n_samples, n_features = X.shape
    plan = _make_plan(methods, model, covariance_type, n_runs, n_init, max_iter,
                      tol, n_threads, verbose)
    ks = _check_k_range(k_range, n_samples)
    rng = check_random_state(random_state)
    t_start = time.perf_counter()
    columns, tally = _sweep(X, ks, rng, plan)
    if tally.not_converged:
        warnings.warn(
            f"{tally.not_converged} of {tally.n_fits} fits stopped at "
            f"max_iter={plan.max_iter} before converging; increase max_iter "
            "if the criteria look noisy.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return SelectKResult(
        k=ks,
        **columns,
        recommended=_recommend(ks, plan.methods, columns),
        methods=plan.methods,
        model=plan.model,
        covariance_type=plan.covariance_type,
        n_runs=plan.n_runs if plan.stability else 0,
        n_samples=n_samples,
        n_features=n_features,
        fit_time=time.perf_counter() - t_start,
    )


@dataclass(frozen=True)
class _Plan:
    """The checked options of one :func:`select_k` call."""

    methods: tuple
    model: str
    covariance_type: str
    n_runs: int
    max_iter: int
    verbose: int
    km_runs: int  # K-means fits per K (0: none)
    gmm_runs: int  # Gaussian-mixture fits per K (0: none)
    fit_params: dict  # passed to every estimator (max_iter, n_threads, tol)

    @property
    def stability(self):
        return "stability" in self.methods


@dataclass
class _Tally:
    """How many fits ran, and how many of them stopped at max_iter."""

    n_fits: int = 0
    not_converged: int = 0

    def add(self, hit):
        self.n_fits += 1
        self.not_converged += hit


def _check_methods(methods):
    """The requested methods, deduplicated, in the order of ``METHODS``."""
    if isinstance(methods, str):
        methods = (methods,)
    methods = tuple(dict.fromkeys(check_option(m, "methods", METHODS) for m in methods))
    if not methods:
        raise ValueError(f"methods is empty; choose from {list(METHODS)}.")
    return tuple(m for m in METHODS if m in methods)


def _make_plan(methods, model, covariance_type, n_runs, n_init, max_iter, tol,
               n_threads, verbose):
    """Check the options of :func:`select_k` and decide the fits per K.

    Runs are shared: stability's ``n_runs`` fits of ``model`` also give
    that model's criteria; otherwise the elbow (K-means) and BIC/AIC
    (mixtures) take the best of ``n_init`` fits.
    """
    methods = _check_methods(methods)
    check_option(model, "model", ("kmeans", "gmm"))
    check_option(covariance_type, "covariance_type", _COVARIANCE_TYPES)
    n_init = check_int(n_init, "n_init", min_value=1)
    n_runs = check_int(n_runs, "n_runs", min_value=1)
    max_iter = check_int(max_iter, "max_iter", min_value=1)
    verbose = check_int(verbose, "verbose", min_value=0)
    stability = "stability" in methods
    if stability and n_runs < 2:
        raise ValueError("n_runs must be >= 2 for the stability method.")
    km_runs = 0
    if stability and model == "kmeans":
        km_runs = n_runs
    elif "elbow" in methods:
        km_runs = n_init
    gmm_runs = 0
    if stability and model == "gmm":
        gmm_runs = n_runs
    elif "bic" in methods or "aic" in methods:
        gmm_runs = n_init
    fit_params = {"max_iter": max_iter, "n_threads": n_threads}
    if tol is not None:
        fit_params["tol"] = tol
    return _Plan(methods, model, covariance_type, n_runs, max_iter, verbose,
                 km_runs, gmm_runs, fit_params)


def _sweep(X, ks, rng, plan):
    """Fit every K in turn; return the result's per-K columns and the tally.

    The columns are the :class:`SelectKResult` arrays ``objective``,
    ``bic``, ``aic``, ``stability_mean``, ``stability_std`` (NaN where not
    computed). Each K draws its K-means seeds, then its mixture seeds,
    from ``rng``.
    """
    names = ("objective", "bic", "aic", "stability_mean", "stability_std")
    cols = {name: np.full(ks.size, np.nan) for name in names}
    tally = _Tally()
    for i, k in enumerate(ks):
        k = int(k)
        t0 = time.perf_counter()
        km_seeds = rng.integers(0, 2**31 - 1, size=plan.km_runs)
        gmm_seeds = rng.integers(0, 2**31 - 1, size=plan.gmm_runs)
        labelings = []
        if plan.km_runs:
            best, labels = _kmeans_runs(X, k, km_seeds, plan, tally)
            labelings += labels
            if "elbow" in plan.methods:
                cols["objective"][i] = best
        t1 = time.perf_counter()
        if plan.gmm_runs:
            best_est, labels = _mixture_runs(X, k, gmm_seeds, plan, tally)
            labelings += labels
            if best_est is not None and "bic" in plan.methods:
                cols["bic"][i] = float(best_est.bic(X))
            if best_est is not None and "aic" in plan.methods:
                cols["aic"][i] = float(best_est.aic(X))
        if plan.stability and len(labelings) >= 2:
            cols["stability_mean"][i], cols["stability_std"][i] = _agreement(labelings)
        if plan.verbose:
            _print_progress(k, plan, t1 - t0, time.perf_counter() - t1,
                            cols["stability_mean"][i])
    return cols, tally


def _kmeans_runs(X, k, seeds, plan, tally):
    """One K-means fit per seed: the best objective, and the labelings when
    ``model`` is "kmeans" (the partitions stability compares; else [])."""
    KMeans, _ = _estimators()
    best, labelings = np.inf, []
    for seed in seeds:
        est = KMeans(n_clusters=k, n_init=1, random_state=int(seed), **plan.fit_params)
        tally.add(_fit_counting(est, X))
        best = min(best, float(est.inertia_))
        if plan.model == "kmeans":
            labelings.append(np.asarray(est.labels_))
    return best, labelings


def _mixture_runs(X, k, seeds, plan, tally):
    """One Gaussian-mixture fit per seed: the fit with the highest
    likelihood (None if every fit failed), and the ``predict`` labelings
    when ``model`` is "gmm" (the partitions stability compares; else []).

    A fit that fails (degenerate data for this K) is skipped with a
    warning, so its criteria stay NaN rather than ending the sweep.
    """
    _, GaussianMixture = _estimators()
    best_ll, best_est, labelings = -np.inf, None, []
    for seed in seeds:
        est = GaussianMixture(
            n_components=k, covariance_type=plan.covariance_type, n_init=1,
            random_state=int(seed), **plan.fit_params,
        )
        try:
            nc = _fit_counting(est, X)
        except (ValueError, np.linalg.LinAlgError) as exc:
            # stacklevel 4: _mixture_runs <- _sweep <- select_k <- its caller
            warnings.warn(
                f"Gaussian mixture with K={k} failed ({exc}); its "
                "criteria are left as NaN.", UserWarning, stacklevel=4,
            )
            continue
        tally.add(nc)
        ll = float(est.score(X))
        if ll > best_ll:
            best_ll, best_est = ll, est
        if plan.model == "gmm":
            labelings.append(np.asarray(est.predict(X)))
    return best_est, labelings


def _agreement(labelings):
    """Mean and standard deviation of the adjusted Rand index over all
    pairs of labelings."""
    scores = [
        adjusted_rand_score(labelings[a], labelings[b])
        for a in range(len(labelings))
        for b in range(a + 1, len(labelings))
    ]
    return np.mean(scores), np.std(scores)


def _print_progress(k, plan, km_seconds, gmm_seconds, stability_mean):
    """One ``verbose`` line on standard error for the K just fitted."""
    parts = [f"select_k: K={k:<3d}"]
    if plan.km_runs:
        parts.append(f"K-means {plan.km_runs} run(s) {km_seconds:.2f} s")
    if plan.gmm_runs:
        parts.append(f"mixture {plan.gmm_runs} run(s) {gmm_seconds:.2f} s")
    if plan.stability:
        parts.append(f"stability {stability_mean:.3f}")
    print("  ".join(parts), file=sys.stderr, flush=True)


def _recommend(ks, methods, cols):
    """Each requested method's recommended K (None when it cannot decide).

    Elbow: :func:`elbow_k` of J(K). BIC, AIC: the K of the smallest finite
    value. Stability: the highest mean ARI among K >= 2, ties (within
    ``_STABILITY_TIE``) going to the smaller K.
    """
    recommended = {}
    if "elbow" in methods:
        recommended["elbow"] = elbow_k(ks, cols["objective"])
    for name in ("bic", "aic"):
        values = cols[name]
        if name in methods:
            recommended[name] = (
                int(ks[int(np.nanargmin(values))]) if np.isfinite(values).any() else None
            )
    if "stability" in methods:
        stab_mean = cols["stability_mean"]
        cand = (ks >= 2) & np.isfinite(stab_mean)
        if cand.any():
            best = np.nanmax(np.where(cand, stab_mean, np.nan))
            winner = np.flatnonzero(cand & (stab_mean >= best - _STABILITY_TIE))[0]
            recommended["stability"] = int(ks[winner])
        else:
            recommended["stability"] = None
    return recommended


def _fit_counting(est, X):
    """Fit ``est``; return 1 if it warned about convergence, else 0."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    hit = 0
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            hit = 1
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return hit
