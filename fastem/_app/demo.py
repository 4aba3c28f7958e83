"""``fastem demo``: K-means and a Gaussian mixture on the Old Faithful data."""
import os
import sys
import time

import numpy as np

from fastem._app.io import faithful_path, load_faithful
from sklearn.metrics import adjusted_rand_score

PLOT_HINT = 'pip install "fastem[plot]"'
DEFAULT_FIGURE = "fastem-demo.png"

# colours of component 1 (short eruptions) and component 2 (long eruptions)
_COLOURS = ("#2b6cb0", "#dd6b20")


def _estimators():
    from fastem import GaussianMixture, KMeans

    return KMeans, GaussianMixture


def fit_demo_models(X, random_state=0, warm_up=True):
    """Fit K-means (K=2) and a full-covariance Gaussian mixture (K=2).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    random_state : int, default=0
    warm_up : bool, default=True
        Fit each model once, untimed, before the timed fit: the first fit in
        a process also pays one-time costs (thread pools started, BLAS
        libraries located), which on a few hundred points dominate.

    Returns
    -------
    km, gmm : fitted estimators
    km_time, gmm_time : float
        Seconds spent in each timed ``fit``.
    """
    KMeans, GaussianMixture = _estimators()

    def make():
        return (KMeans(n_clusters=2, random_state=random_state),
                GaussianMixture(n_components=2, covariance_type="full",
                                random_state=random_state))

    if warm_up:
        for est in make():
            est.fit(X)
    km, gmm = make()
    t0 = time.perf_counter()
    km.fit(X)
    km_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    gmm.fit(X)
    gmm_time = time.perf_counter() - t0
    return km, gmm, km_time, gmm_time


def _ms(seconds):
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _matrix_lines(a, indent):
    text = np.array2string(np.asarray(a), precision=3, floatmode="fixed",
                           suppress_small=True, separator="  ")
    lines = text.splitlines()
    return [lines[0]] + [" " * indent + s for s in lines[1:]]


def summary(X, columns, km, gmm, km_time, gmm_time):
    """The demo's text report, as a list of lines (components ordered by
    their first coordinate)."""
    from fastem import __version__

    km_order = np.argsort(km.cluster_centers_[:, 0])
    g_order = np.argsort(gmm.means_[:, 0])
    km_labels = np.asarray(km.predict(X))
    counts = np.bincount(km_labels, minlength=km.cluster_centers_.shape[0])
    names = "  ".join(f"{c:>10s}" for c in columns)
    out = [
        f"fastem {__version__} demo: Old Faithful geyser, {X.shape[0]} eruptions",
        f"  columns: {', '.join(columns)} (eruption duration and waiting time "
        "to the next eruption, minutes)",
        f"  data: {faithful_path()}",
        "",
        f"K-means, K=2: {km.n_iter_} iterations, {_ms(km_time)}",
        f"  cluster  points  {names}",
    ]
    for rank, j in enumerate(km_order, start=1):
        centre = "  ".join(f"{v:10.3f}" for v in km.cluster_centers_[j])
        out.append(f"  {rank:>7d}  {counts[j]:>6d}  {centre}")
    out.append(f"  objective (sum of squared distances): {km.inertia_:.2f}")
    out.append("")
    converged = "converged" if gmm.converged_ else "NOT converged"
    out.append(
        f"Gaussian mixture, K=2, full covariances: {converged} after "
        f"{gmm.n_iter_} iterations, {_ms(gmm_time)}"
    )
    out.append(f"  log-likelihood per point: {gmm.score(X):.4f}")
    for rank, j in enumerate(g_order, start=1):
        sd = np.sqrt(np.diag(gmm.covariances_[j]))
        corr = gmm.covariances_[j][0, 1] / (sd[0] * sd[1]) if len(sd) > 1 else 1.0
        out.append(f"  component {rank}: weight {gmm.weights_[j]:.3f}")
        out.append("    mean        " + _matrix_lines(gmm.means_[j], 16)[0])
        cov = _matrix_lines(gmm.covariances_[j], 16)
        out.append("    covariance  " + cov[0])
        out.extend(cov[1:])
        out.append(
            "    sd " + ", ".join(f"{c} {s:.3f}" for c, s in zip(columns, sd))
            + (f"; correlation {corr:.3f}" if len(sd) > 1 else "")
        )
    ari = adjusted_rand_score(km_labels, gmm.predict(X))
    out.append("")
    out.append(f"Agreement of the two partitions (adjusted Rand index): {ari:.3f}")
    out.append("(times: one fit each, after an untimed warm-up fit that starts the "
               "thread pools)")
    return out


def _ellipse(ax, mean, cov, n_sigma, colour, style, label=None):
    from matplotlib.patches import Ellipse

    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 0, None)
    angle = np.degrees(np.arctan2(vecs[1, -1], vecs[0, -1]))
    width, height = 2 * n_sigma * np.sqrt(vals[::-1])
    ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, lw=2 if n_sigma == 1 else 1.4,
                         ls=style, ec=colour, label=label, zorder=3))


def plot_demo(X, columns, km, gmm, path):
    """Write the demo figure: points coloured by responsibility, the
    mixture's 1- and 2-sigma ellipses and the K-means centres."""
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    order = np.argsort(gmm.means_[:, 0])
    resp = np.asarray(gmm.predict_proba(X))[:, order[-1]]
    cmap = LinearSegmentedColormap.from_list("fastem_resp", _COLOURS)

    fig = Figure(figsize=(7.5, 5.6), layout="constrained")
    ax = fig.subplots()
    sc = ax.scatter(X[:, 0], X[:, 1], c=resp, cmap=cmap, vmin=0, vmax=1, s=22,
                    edgecolors="white", linewidths=0.4, zorder=2)
    for rank, j in enumerate(order):
        colour = _COLOURS[rank]
        _ellipse(ax, gmm.means_[j], gmm.covariances_[j], 1, colour, "-")
        _ellipse(ax, gmm.means_[j], gmm.covariances_[j], 2, colour, "--")
        ax.plot(*gmm.means_[j], marker="+", ms=16, mew=2.2, color=colour, zorder=6)
    ax.scatter(km.cluster_centers_[:, 0], km.cluster_centers_[:, 1], marker="X", s=170,
               c="black", edgecolors="white", linewidths=1.2, zorder=5)
    handles = [
        Line2D([], [], color="0.3", lw=2, label="mixture: 1σ ellipse"),
        Line2D([], [], color="0.3", lw=1.4, ls="--", label="mixture: 2σ ellipse"),
        Line2D([], [], color="0.3", marker="+", ms=12, mew=2, ls="none", label="mixture: mean"),
        Line2D([], [], color="black", marker="X", ms=11, mec="white", ls="none",
               label="K-means: centre"),
    ]
    ax.legend(handles=handles, loc="upper left", frameon=True, framealpha=0.9)
    cbar = fig.colorbar(sc, ax=ax, pad=0.01)
    cbar.set_label("responsibility of the long-eruption component")
    labels = {"eruptions": "eruption duration (min)",
              "waiting": "waiting time to next eruption (min)"}
    ax.set_xlabel(labels.get(columns[0], columns[0]))
    ax.set_ylabel(labels.get(columns[1], columns[1]))
    ax.set_title(f"Old Faithful ({X.shape[0]} eruptions): Gaussian mixture (K=2, full) "
                 "and K-means (K=2)", fontsize=11)
    ax.grid(alpha=0.25, zorder=0)
    fig.savefig(path, dpi=150)
    return path


def run_demo(output=DEFAULT_FIGURE, plot=True, random_state=0, file=None):
    """Fit the demo models on Old Faithful, print the summary, write the figure.

    Parameters
    ----------
    output : str or os.PathLike, default="fastem-demo.png"
        Where the figure goes.
    plot : bool, default=True
        Write the figure (needs matplotlib; without it a hint is printed).
    random_state : int, default=0
        Seed of both fits.
    file : text stream, optional
        Where the summary goes (default: standard output).

    Returns
    -------
    figure_path : str or None
        The figure written, or None.
    """
    file = sys.stdout if file is None else file
    X, columns = load_faithful()
    km, gmm, km_time, gmm_time = fit_demo_models(X, random_state=random_state)
    for line in summary(X, columns, km, gmm, km_time, gmm_time):
        print(line, file=file)
    if not plot:
        return None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"\nNo figure: matplotlib is not installed. To get it: {PLOT_HINT}",
              file=file)
        return None
    path = os.fspath(output)
    plot_demo(X, columns, km, gmm, path)
    print(f"\nFigure written to {path}", file=file)
    return path
