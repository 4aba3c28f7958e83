#!/usr/bin/env python
"""Would Hamerly's bounds pay off on sparse rows? A measurement, not a timing.

Runs Lloyd iterations on compare.py's TF-IDF-like data (a subset of its
rows) from the same initial centres, computing every distance exactly each
iteration, and replays Hamerly's bounds alongside (as the dense bounded pass
keeps them: an upper bound u on the distance to the own centre, a lower
bound l on the others; after the centres move, u += own drift, l -= largest
other drift). Per iteration it prints the fraction of rows that the bounds
alone skip, and the fraction skipped once u is tightened to the exact
distance (which costs a pass over the row's non-zeros, 1/k of the full
work). The rest need all k distances, as in a plain Lloyd pass.

    PYTHONPATH=. python benchmarks/sparse_pruning.py [--n 50000] [--iter 20]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _data  # noqa: E402
from _estimators import KMeans  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--d", type=int, default=100_000)
    p.add_argument("--nnz", type=int, default=50)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--iter", type=int, default=20)
    a = p.parse_args()
    X = _data.make_tfidf(a.n, a.d, a.nnz, a.k, seed=0)
    centres = _data.initial_centers(X, a.k, seed=1)
    km = KMeans(a.k, init=centres, n_init=1, max_iter=1).fit(X)  # for transform
    upper = lower = labels = None
    print("iteration  skipped by bounds  skipped after tightening  need all k")
    for it in range(a.iter):
        km.cluster_centers_ = centres
        dist = km.transform(X)  # exact distances to the current centres
        order = np.argsort(dist, axis=1)[:, :2]
        new_labels, first, second = order[:, 0], *np.take_along_axis(dist, order, 1).T
        sep = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
        np.fill_diagonal(sep, np.inf)
        half = 0.5 * sep.min(1)
        if labels is not None:
            m = np.maximum(lower, half[labels])
            skip_bounds = upper <= m
            tight = dist[np.arange(len(labels)), labels]
            skip_tight = ~skip_bounds & (tight <= m)
            print(f"{it:9d}  {skip_bounds.mean():17.1%}  {skip_tight.mean():24.1%}  "
                  f"{1 - skip_bounds.mean() - skip_tight.mean():10.1%}")
        # next centres (plain Lloyd), drifts, and the bounds carried over
        w = np.bincount(new_labels, minlength=a.k).astype(float)
        onehot = np.zeros((a.k, X.shape[0]))
        onehot[new_labels, np.arange(X.shape[0])] = 1
        sums = np.asarray((X.T @ onehot.T).T)
        new = centres.copy()
        new[w > 0] = sums[w > 0] / w[w > 0, None]
        drift = np.sqrt(((new - centres) ** 2).sum(1))
        top2 = np.sort(drift)[-2:]
        other = np.where(drift[new_labels] == top2[1], top2[0], top2[1])
        labels, centres = new_labels, new
        upper = first + drift[labels]
        lower = second - other
    return 0


if __name__ == "__main__":
    sys.exit(main())
