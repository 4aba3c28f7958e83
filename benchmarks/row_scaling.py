#!/usr/bin/env python
"""Does a Lloyd pass cost the same per row at every N? Time per row per pass.

For each N, fits fastem's KMeans (``algorithm='lloyd'`` by default: the dense
passes) from the same kind of data and initial centres with ``tol=0`` for
``a`` and for ``b`` iterations, best of ``--repeat`` each, and reports

    (T_b - T_a) / ((b - a) N)

the time of one iteration per row (its pass over X, the M-step and the
loop's bookkeeping), without what a fit costs once (validation, the data's
mean, the final labelling pass). Issue 15's target:
at N = 4e6 within 10 % of N = 1e5. The data are compare.py's
(``_data.make_mixture``, K components); every N in this one process, BLAS
limited to the fit's threads, as in a fit.

    PYTHONPATH=. python benchmarks/row_scaling.py [--n 1e5,1e6,4e6] [--d 32] [--k 64]
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _data  # noqa: E402
from _estimators import KMeans  # noqa: E402


def best_fit_time(X, init, max_iter, algorithm, threads, repeat):
    """Best wall time of ``repeat`` fits of ``max_iter`` iterations, and the
    iterations they ran."""
    best, n_iter = np.inf, None
    for _ in range(repeat):
        km = KMeans(init.shape[0], init=init, n_init=1, max_iter=max_iter, tol=0.0,
                    algorithm=algorithm, n_threads=threads)
        start = time.perf_counter()
        km.fit(X)
        best = min(best, time.perf_counter() - start)
        n_iter = km.n_iter_
    return best, n_iter


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", default="1e5,1e6,4e6", help="comma-separated row counts")
    p.add_argument("--d", type=int, default=32)
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--iter", default="2,12", help="a,b: the two fits' iterations")
    p.add_argument("--algorithm", default="lloyd", choices=["lloyd", "auto", "elkan"])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    sizes = [int(float(v)) for v in a.n.split(",")]
    it_a, it_b = (int(v) for v in a.iter.split(","))
    if not 1 <= it_a < it_b:
        raise SystemExit("--iter a,b needs 1 <= a < b")
    print(f"D={a.d} K={a.k} {a.dtype}, algorithm={a.algorithm}, {a.threads} threads, "
          f"fits of {it_a} and {it_b} iterations, best of {a.repeat}")
    print("| N | fit a (s) | fit b (s) | ns per row per pass | vs first N |")
    print("|---|---|---|---|---|")
    first = None
    warnings.simplefilter("ignore")  # (a fit of few iterations may leave a cluster empty)
    with threadpool_limits(limits=a.threads):
        for n in sizes:
            X = _data.make_mixture(n, a.d, a.k, dtype=np.dtype(a.dtype), seed=0)
            init = _data.initial_centers(X, a.k, seed=1).astype(X.dtype)
            best_fit_time(X, init, 1, a.algorithm, a.threads, 1)  # warm-up, not timed
            t_a, n_a = best_fit_time(X, init, it_a, a.algorithm, a.threads, a.repeat)
            t_b, n_b = best_fit_time(X, init, it_b, a.algorithm, a.threads, a.repeat)
            if (n_a, n_b) != (it_a, it_b):
                print(f"| {n:.0e} | converged early ({n_a}, {n_b} iterations): "
                      "pick smaller a,b | | | |")
                continue
            per_row = (t_b - t_a) / ((it_b - it_a) * n) * 1e9
            first = per_row if first is None else first
            ratio = per_row / first if first else float("nan")
            print(f"| {n:.0e} | {t_a:.3f} | {t_b:.3f} | {per_row:.2f} | {ratio:.3f}x |",
                  flush=True)
            del X


if __name__ == "__main__":
    main()
