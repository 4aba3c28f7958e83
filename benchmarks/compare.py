#!/usr/bin/env python
"""Side-by-side comparison of fastem with its peers on the same data.

Each workload runs in a fresh subprocess that generates the data once
(deterministically, see ``_data.py``) and fits every library on it from the
same initial parameters; the parent prints one Markdown table (and writes JSON
with ``--json``). Columns: wall time (best of ``--repeat`` runs), ratio to
fastem's time, iterations run, the quality reached -- recomputed here in
float64 from each library's final parameters (K-means inertia; mean
log-likelihood of a GMM) so it does not depend on the library's own
bookkeeping -- and, for the memory workload, peak RSS beyond the data.

Peers: scikit-learn (always); faiss-cpu, scikit-learn-intelex and daal4py when
installed (reported as "not installed" otherwise).

Workloads (defaults; override sizes as ``NAME:key=value,...``)::

    kmeans       N=1e6 D=32 K=64 float32, 20 Lloyd iterations from one init
                 (issue 15's K1)
    kmeans++     N=1e6 D=32 K=64 float32, k-means++ seeding (time + potential)
    kmeans-k3    N=1e6 D=64 K=1024 float32, 10 Lloyd iterations from one init
                 (large K; no scikit-learn elkan: its N x K bounds take 4 GB)
    kmeans-k4    N=1e7 D=4 K=16 float32, 20 Lloyd iterations (low D)
    kmeans-e1    N=1e5 D=768 K=1024 float32, 5 Lloyd iterations (embeddings)
    kmeans-e2    N=7e4 D=784 K=256 float32, 10 Lloyd iterations (embeddings)
    kmeans++-k3  greedy k-means++ seeding at K=1024 on kmeans-k3's data
    kmeans-sweep fastem's default against scikit-learn's lloyd over D in
                 {2, 8, 32, 128, 384, 768, 1536} x K in {8, 64, 256, 1024},
                 float32, 5 Lloyd iterations, N such that X takes about 200 MB
                 (at least K rows); one fresh worker per (D, K) cell; prints a
                 table of fastem's time / scikit-learn's time besides the rows
    (data: _data.make_mixture with K components; at large K and high D, past
    64 MiB of covariance maps, components share maps but keep their means)
    gmm          N=2e5 D=16 K=16 float64, 20 EM iterations, cov=full/tied/diag/spherical
    gmm32        the same in float32
    gmm-memory   N=1e7 D=16 K=16 float64, 5 EM iterations, cov=full: peak RSS of
                 a fresh subprocess per library, beyond the data
    minibatch    N=2e6 D=32 K=64 float32, MiniBatchKMeans with default parameters:
                 time per fit and inertia on all of X, means over 5 seeds
                 (the note gives the standard error of the mean inertia)
    online-em    N=2e6 D=16 K=16 float64, cov=full: one epoch of
                 GaussianMixture.partial_fit in batches of 1e4 against batch EM
                 run to convergence (default tol), all from the same parameters
    dask-kmeans  N=2e7 D=32 K=64 float32, 20 Lloyd iterations from one init:
                 fastem in memory (all threads; default and algorithm='lloyd',
                 the plain passes fastem.dask runs), fastem.dask and dask-ml's KMeans
                 on a LocalCluster(2 workers x 1 thread); worker peak RSS
    dask-gmm     N=2e7 D=16 K=16 float32, 10 EM iterations, cov=full: fastem in
                 memory and fastem.dask (dask-ml has no Gaussian mixture)
    kmeans-sparse     TF-IDF-like CSR N=5e5 D=1e5 ~50 non-zeros per row (power-law
                      column frequencies, rows L2-normalised; _data.make_tfidf),
                      K=100 float64, 20 Lloyd iterations from one init
    kmeans-sparse32   the same in float32
    kmeans++-sparse   the same data, float64, k-means++ seeding (time + potential)

The K-means workloads (kmeans, kmeans-k3, -k4, -e1, -e2; not the sweep)
also report two floors, rows measured in the same worker, with the same data
and thread count, that are not libraries (never a failure; their ratio is
floor time / fastem's time; they always count ``iter`` passes, where a library
that converged earlier shows fewer iterations):

    floor (dense GEMM)    ``iter`` times the GEMM (N x D) by (D x K) of the
                          initial centres, in row blocks whose output takes 2 MiB
                          (scipy's BLAS sgemm/dgemm, BLAS limited to the workload's
                          threads): the arithmetic a dense pass cannot avoid
    floor (memory)        ``iter`` times one read of X (a sum over every
                          element, split over the threads): what a pass bound by
                          memory bandwidth costs at least (the floor at low D)

The mixture workloads (gmm, gmm32) report a floor for cov=full, diag and
spherical:

    floor (GEMM peak)     ``iter`` x F N K floating-point operations run as
                          square 1024 x 1024 GEMMs in X's precision (scipy's
                          BLAS, the workload's threads): the time that
                          arithmetic takes at the rate BLAS reaches. F per row
                          and component: 'full' 3 D^2 (issue 15's floor);
                          'diag' 2 (4D + 1), the fewest multiply-adds of an
                          exact iteration by matrix products: the log-density
                          as the expansion x^2 . p - x . (2 mu p) + const (2D)
                          and the statistics sum r, sum r x, sum r x^2 (2D +
                          1); 'spherical' 2 (2D + 3): x . (mu p) and |x|^2 p
                          (D + 1), sum r, sum r x, sum r |x|^2 (D + 2).
                          Nothing else is counted (not the N K exponentials
                          of the responsibilities, nor reading X), so no fit
                          that computes these sums as matrix products can
                          take less

Workload groups: ``frontier`` = kmeans kmeans-k3 kmeans-k4 kmeans-e1 kmeans-e2
kmeans++-k3 kmeans-sweep (issue 15's workloads). They are not among the
defaults: at full size they take longer than all the defaults together
(scikit-learn's k-means++ alone needs 60-90 s per call at K=1024, the sweep
tens of minutes); ``--tiny`` without names runs every workload, these too.

Examples::

    python benchmarks/compare.py                       # all default workloads
    python benchmarks/compare.py kmeans gmm:cov=full   # a selection
    python benchmarks/compare.py --skip-memory --json out.json
    python benchmarks/compare.py gmm:n=1e6,k=32,iter=10 --repeat 1
    python benchmarks/compare.py --tiny                # seconds; what CI runs
    python benchmarks/compare.py kmeans-sparse --libraries fastem --repeat 3
    python benchmarks/compare.py dask-kmeans --libraries fastem,fastem-dask --json a.json
    python benchmarks/compare.py dask-kmeans --libraries dask-ml --json b.json
    python benchmarks/compare.py --merge a.json b.json    # one table from both runs
    python benchmarks/compare.py frontier --repeat 1      # issue 15's workloads
    python benchmarks/compare.py kmeans-sweep:mb=20,d=2/32/768,k=8/1024

The workers run in a temporary directory and import the installed fastem:
to measure a checkout, build it in place and put it first
(``PYTHONPATH=$PWD python benchmarks/compare.py ...``); the header names the
fastem directory used. They inherit the environment as it is, BLAS settings
included (``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python ...`` lets
OpenBLAS pick its kernels for the CPU; the header names the ones it picked).

Keys: n, d, k, dtype (float32/float64), iter, cov (``/``-separated list),
seeds (minibatch), batch (online-em), nnz (sparse workloads: non-zeros per row);
kmeans-sweep: d and k as ``/``-separated lists, mb (X's size in MB; no n).

The sparse workloads compare fastem's default (algorithm='auto', the bounded
pass on sparse rows) and its plain passes (fastem-lloyd) with scikit-learn
only (its 'lloyd'; the other peers have no sparse K-means here). scikit-learn needs minutes per fit at
the default size: time it with ``--repeat 1`` in a separate run.
"""
import argparse
import collections
import datetime
import importlib.util
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))

# --------------------------------------------------------------------------
# workloads
# --------------------------------------------------------------------------

COV_ALL = ["full", "tied", "diag", "spherical"]

WORKLOADS = {
    "kmeans": dict(kind="kmeans", n=1_000_000, d=32, k=64, dtype="float32", iter=20),
    "kmeans++": dict(kind="kmeans++", n=1_000_000, d=32, k=64, dtype="float32"),
    "gmm": dict(kind="gmm", n=200_000, d=16, k=16, dtype="float64", iter=20, cov=COV_ALL),
    "gmm32": dict(kind="gmm", n=200_000, d=16, k=16, dtype="float32", iter=20, cov=COV_ALL),
    "gmm-memory": dict(kind="gmm-memory", n=10_000_000, d=16, k=16, dtype="float64",
                       iter=5, cov=["full"]),
    "minibatch": dict(kind="minibatch", n=2_000_000, d=32, k=64, dtype="float32", seeds=5),
    "online-em": dict(kind="online-em", n=2_000_000, d=16, k=16, dtype="float64",
                      batch=10_000, cov=["full"]),
    "kmeans-sparse": dict(kind="kmeans-sparse", n=500_000, d=100_000, k=100, nnz=50,
                          dtype="float64", iter=20),
    "kmeans-sparse32": dict(kind="kmeans-sparse", n=500_000, d=100_000, k=100, nnz=50,
                            dtype="float32", iter=20),
    "kmeans++-sparse": dict(kind="kmeans++-sparse", n=500_000, d=100_000, k=100, nnz=50,
                            dtype="float64"),
    "dask-kmeans": dict(kind="dask-kmeans", n=20_000_000, d=32, k=64, dtype="float32",
                        iter=20),
    "dask-gmm": dict(kind="dask-gmm", n=20_000_000, d=16, k=16, dtype="float32", iter=10),
    "kmeans-k3": dict(kind="kmeans", n=1_000_000, d=64, k=1024, dtype="float32", iter=10,
                      skip=["sklearn-elkan"]),
    "kmeans-k4": dict(kind="kmeans", n=10_000_000, d=4, k=16, dtype="float32", iter=20),
    "kmeans-e1": dict(kind="kmeans", n=100_000, d=768, k=1024, dtype="float32", iter=5),
    "kmeans-e2": dict(kind="kmeans", n=70_000, d=784, k=256, dtype="float32", iter=10),
    "kmeans++-k3": dict(kind="kmeans++", n=1_000_000, d=64, k=1024, dtype="float32"),
    "kmeans-sweep": dict(kind="kmeans-sweep", mb=200.0, d=[2, 8, 32, 128, 384, 768, 1536],
                         k=[8, 64, 256, 1024], dtype="float32", iter=5),
}
GROUPS = {"frontier": ["kmeans", "kmeans-k3", "kmeans-k4", "kmeans-e1", "kmeans-e2",
                       "kmeans++-k3", "kmeans-sweep"]}
DEFAULT_WORKLOADS = ["kmeans", "kmeans++", "gmm", "gmm32", "gmm-memory", "minibatch",
                     "kmeans-sparse", "kmeans-sparse32", "kmeans++-sparse",
                     "online-em", "dask-kmeans", "dask-gmm"]

# --tiny: every workload at toy size (CI smoke test; seconds in all); --tiny
# without workload names runs all of them
TINY = {
    "kmeans": dict(n=20_000, d=8, k=8),
    "kmeans++": dict(n=20_000, d=8, k=8),
    "gmm": dict(n=5_000, d=4, k=4),
    "gmm32": dict(n=5_000, d=4, k=4),
    "gmm-memory": dict(n=100_000, d=4, k=4, iter=2),
    "minibatch": dict(n=20_000, d=8, k=8, seeds=2),
    "online-em": dict(n=20_000, d=4, k=4, batch=2_000),
    "dask-kmeans": dict(n=50_000, d=8, k=8, iter=5),
    "dask-gmm": dict(n=50_000, d=4, k=4, iter=3),
    "kmeans-sparse": dict(n=5_000, d=2_000, k=10, nnz=20),
    "kmeans-sparse32": dict(n=5_000, d=2_000, k=10, nnz=20),
    "kmeans++-sparse": dict(n=5_000, d=2_000, k=10, nnz=20),
    "kmeans-k3": dict(n=20_000, d=64, k=128),
    "kmeans-k4": dict(n=100_000, d=4, k=16),
    "kmeans-e1": dict(n=2_000, d=768, k=64),
    "kmeans-e2": dict(n=2_000, d=784, k=32),
    "kmeans++-k3": dict(n=20_000, d=64, k=128),
    "kmeans-sweep": dict(mb=1.0, d=[2, 768], k=[8, 64], iter=2),
}

LIBRARIES = {
    "kmeans": ["fastem", "fastem-lloyd", "sklearn-lloyd", "sklearn-elkan", "sklearnex",
               "daal4py", "faiss", "floor-gemm", "floor-memory"],
    "kmeans-sweep": ["fastem", "sklearn-lloyd"],
    "kmeans++": ["fastem", "sklearn", "daal4py"],
    "gmm": ["fastem", "sklearn", "daal4py", "floor-peak"],
    "gmm-memory": ["fastem", "sklearn", "daal4py"],
    "minibatch": ["fastem", "sklearn"],
    "online-em": ["fastem", "fastem-batch", "sklearn"],
    "dask-kmeans": ["fastem", "fastem-lloyd", "fastem-dask", "dask-ml"],
    "dask-gmm": ["fastem", "fastem-dask"],
    "kmeans-sparse": ["fastem", "fastem-lloyd", "sklearn-lloyd"],
    "kmeans++-sparse": ["fastem", "sklearn"],
}
# libraries whose failure fails the script (the optional peers and the
# floors only report)
REQUIRED = {"fastem", "fastem-batch", "fastem-dask", "sklearn", "sklearn-lloyd", "sklearn-elkan"}
# (fastem-dask and dask-ml need the optional dask extra: reported as "not
# installed" without it)

LABELS = {
    "fastem": "fastem",
    "sklearn": "scikit-learn",
    "fastem-batch": "fastem (batch EM)",
    "sklearn-lloyd": "scikit-learn (lloyd)",
    "sklearn-elkan": "scikit-learn (elkan)",
    "sklearnex": "scikit-learn-intelex",
    "daal4py": "daal4py",
    "faiss": "faiss-cpu",
    "fastem-dask": "fastem.dask",
    "fastem-lloyd": "fastem (lloyd)",
    "dask-ml": "dask-ml",
    "floor-gemm": "floor (dense GEMM)",
    "floor-memory": "floor (memory)",
    "floor-peak": "floor (GEMM peak)",
}
PEER_MODULES = {"faiss": "faiss", "sklearnex": "sklearnex", "daal4py": "daal4py"}


INT_KEYS = ("n", "d", "k", "iter", "seeds", "batch", "nnz")
KEYS = INT_KEYS + ("dtype", "cov", "mb")


def parse_workload(text, tiny=False):
    """The spec of ``NAME[:key=value,...]`` (``tiny``: with the toy sizes)."""
    name, _, rest = text.partition(":")
    if name not in WORKLOADS:
        raise SystemExit(f"unknown workload {name!r}; expected one of {list(WORKLOADS)} "
                         f"or a group {list(GROUPS)}")
    spec = dict(WORKLOADS[name], name=name)
    if tiny:
        spec.update(TINY[name])
    sweep = spec["kind"] == "kmeans-sweep"
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        key = key.strip()
        misplaced = (key == "mb" and not sweep) or (key == "n" and sweep)
        if not eq or key not in KEYS or misplaced:
            raise SystemExit(f"bad workload option {item!r} in {text!r} "
                             f"(keys: {', '.join(KEYS)}; mb for kmeans-sweep only, "
                             "which has no n)")
        try:
            if sweep and key in ("d", "k"):
                spec[key] = [int(float(v)) for v in value.split("/")]
            elif key in INT_KEYS:
                spec[key] = int(float(value))
            elif key == "mb":
                spec[key] = float(value)
        except ValueError:
            raise SystemExit(f"bad number in {item!r} of {text!r}") from None
        if key == "dtype":
            if value not in ("float32", "float64"):
                raise SystemExit(f"dtype must be float32 or float64, not {value!r}")
            spec[key] = value
        elif key == "cov":
            covs = value.split("/")
            bad = [c for c in covs if c not in COV_ALL]
            if bad:
                raise SystemExit(f"unknown covariance type(s) {bad}")
            spec[key] = covs
    return spec


def expand_workloads(names):
    """Workload arguments with the groups replaced by their members."""
    return [w for name in names for w in GROUPS.get(name, [name])]


def sweep_cells(spec):
    """kmeans-sweep's cells: one kmeans spec per (D, K), N rows such that X
    takes ``mb`` MB (1 MB = 1e6 bytes) but at least K rows."""
    itemsize = 4 if spec["dtype"] == "float32" else 8
    return [dict(spec, d=d, k=k, n=max(k, round(spec["mb"] * 1e6 / (itemsize * d))))
            for d in spec["d"] for k in spec["k"]]


def _num(v):
    """1000000 -> '1e6', 200000 -> '2e5', 12345 -> '12345'."""
    if v >= 10_000:
        exp = int(math.log10(v))
        if v % 10**exp == 0:
            return f"{v // 10**exp}e{exp}"
    return str(v)


def describe(spec, cov=None):
    parts = [spec["name"]]
    if cov:
        parts.append(cov)
    parts.append(f"N={_num(spec['n'])} D={_num(spec['d'])} K={spec['k']} {spec['dtype']}")
    if "nnz" in spec:
        parts.append(f"~{spec['nnz']} nnz/row")
    if "iter" in spec:
        parts.append(f"{spec['iter']} it")
    if "seeds" in spec:
        parts.append(f"mean of {spec['seeds']} seeds")
    if "batch" in spec:
        parts.append(f"batches of {_num(spec['batch'])}")
    return " ".join(parts)


# --------------------------------------------------------------------------
# worker side: runs inside the subprocess
# --------------------------------------------------------------------------


def _sibling(name):
    """A helper module next to this file, whether run as a script or imported."""
    import importlib

    if __package__:
        return importlib.import_module(f"{__package__}.{name}")
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    return importlib.import_module(name)


def _import_data_module():
    return _sibling("_data")


def _fastem():
    """fastem's estimators (through _estimators.py, the suite's single import point)."""
    return _sibling("_estimators")


def _peer_available(lib):
    import importlib.util

    module = PEER_MODULES.get(lib)
    return module is None or importlib.util.find_spec(module) is not None


def _best_time(fn, repeat):
    best, result = math.inf, None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _rss_now_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _malloc_trim():
    """glibc: return freed heap memory to the OS (no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss():
    """Linux: reset the peak RSS (VmHWM) to the current RSS; False elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _vm_hwm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM")


def _maxrss_bytes():
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def _set_peer_threads(lib, threads):
    if lib in ("daal4py", "sklearnex"):
        import daal4py

        daal4py.daalinit(threads)
    elif lib == "faiss":
        import faiss

        faiss.omp_set_num_threads(threads)


class _SklearnexLog:
    """Catches sklearnex's per-call log line: accelerated or fallback."""

    def __enter__(self):
        import logging

        self.records = []
        self.logger = logging.getLogger("sklearnex")
        self.old_level = self.logger.level
        handler = logging.Handler()
        handler.emit = lambda record: self.records.append(record.getMessage())
        self.handler = handler
        self.logger.addHandler(handler)
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.old_level)

    def note(self):
        text = " ".join(self.records).lower()
        if "fallback" in text:
            return "fell back to scikit-learn"
        if "accelerated" in text or "onedal" in text:
            return "oneDAL"
        return ""


# -- K-means ---------------------------------------------------------------


def _kmeans_runner(lib, X, init, k, n_iter, threads):
    """A zero-argument callable fitting ``lib`` and returning
    ``(centers, n_iter_run, note)``."""
    import numpy as np

    dtype = X.dtype
    if lib in ("fastem", "fastem-lloyd"):
        KMeans = _fastem().KMeans
        algorithm = "lloyd" if lib == "fastem-lloyd" else "auto"

        def run():
            km = KMeans(n_clusters=k, init=init.astype(dtype), n_init=1, max_iter=n_iter,
                        tol=0.0, n_threads=threads, algorithm=algorithm).fit(X)
            return km.cluster_centers_, km.n_iter_, ""

    elif lib.startswith("sklearn-"):
        from sklearn.cluster import KMeans

        algorithm = lib.split("-", 1)[1]

        def run():
            km = KMeans(n_clusters=k, init=init.astype(dtype), n_init=1, max_iter=n_iter,
                        tol=0.0, algorithm=algorithm).fit(X)
            return km.cluster_centers_, km.n_iter_, ""

    elif lib == "sklearnex":
        from sklearnex.cluster import KMeans

        def run():
            with _SklearnexLog() as log:
                km = KMeans(n_clusters=k, init=init.astype(dtype), n_init=1,
                            max_iter=n_iter, tol=0.0, algorithm="lloyd").fit(X)
            return km.cluster_centers_, km.n_iter_, log.note()

    elif lib == "daal4py":
        import daal4py

        fptype = "float" if dtype == np.float32 else "double"

        def run():
            algo = daal4py.kmeans(nClusters=k, maxIterations=n_iter, accuracyThreshold=0.0,
                                  fptype=fptype)
            res = algo.compute(X, init.astype(dtype))
            return res.centroids, int(np.asarray(res.nIterations).ravel()[0]), ""

    elif lib == "faiss":
        import faiss

        if dtype != np.float32:
            return None
        n = X.shape[0]

        def run():
            km = faiss.Kmeans(X.shape[1], k, niter=n_iter, seed=0, nredo=1, verbose=False,
                              max_points_per_centroid=n // k + 1, min_points_per_centroid=1)
            km.train(X, init_centroids=init.astype(np.float32))
            return km.centroids, n_iter, "all points (no subsampling)"

    else:
        raise ValueError(lib)
    return run


def _floor_runner(lib, X, init, n_iter, threads):
    """A zero-argument callable timing a floor of ``n_iter`` K-means passes
    (see the module docstring); returns ``(None, n_iter, note)``.

    'floor-gemm': the GEMM ``X @ init.T`` per pass, in row blocks whose
    output takes 2 MiB (it stays in cache, as a pass's distances would; the
    whole N x K product would be written to memory), through scipy's BLAS
    with ``threads`` threads. 'floor-memory': one read of X per pass, a sum
    of every element split over ``threads`` Python threads (numpy's reductions
    release the GIL).
    """
    import concurrent.futures

    import numpy as np
    from scipy.linalg.blas import get_blas_funcs
    from threadpoolctl import threadpool_limits

    n, k = X.shape[0], init.shape[0]
    if lib == "floor-memory":
        parts = np.array_split(X.reshape(-1), threads)
        pool = concurrent.futures.ThreadPoolExecutor(threads)

        def run():
            for _ in range(n_iter):
                list(pool.map(np.add.reduce, parts))
            return None, n_iter, f"{n_iter} reads of X ({threads} threads)"

        return run
    gemm = get_blas_funcs("gemm", dtype=X.dtype)
    centers_t = np.ascontiguousarray(init, dtype=X.dtype).T  # D x K, Fortran order
    rows = max(1, 2**21 // (k * X.dtype.itemsize))
    # Fortran-ordered outputs, overwritten in place (BLAS sees X's rows as the
    # transpose of a Fortran-ordered D x m block: no copies)
    outs = {m: np.empty((m, k), dtype=X.dtype, order="F") for m in {min(rows, n), n % rows}
            if m}
    name = gemm.typecode + "gemm"

    def run():
        with threadpool_limits(limits=threads, user_api="blas"):
            for _ in range(n_iter):
                _gemm_pass(gemm, X, centers_t, rows, outs)
        return None, n_iter, (f"{n_iter} x {name} (N x D)(D x K) in {rows}-row blocks, "
                              f"scipy BLAS, {threads} threads")

    return run


# Floating-point operations per row and component of one exact EM
# iteration that the floor (GEMM peak) counts, by covariance type (see the
# module docstring), with the formula its note prints.
EM_FLOPS = {
    "full": (lambda d: 3 * d * d, "3 N K D^2"),
    "diag": (lambda d: 2 * (4 * d + 1), "2 (4D + 1) N K"),
    "spherical": (lambda d: 2 * (2 * d + 3), "2 (2D + 3) N K"),
}


def _peak_floor_runner(X, k, n_iter, threads, cov="full", size=1024):
    """A zero-argument callable timing the floor of ``n_iter`` EM iterations
    of a ``cov`` mixture (see the module docstring): ``n_iter`` x F N K
    floating-point operations (``EM_FLOPS``) run as GEMMs of X's precision
    at the rate BLAS reaches on square ``size`` x ``size`` operands (the
    remainder as one GEMM with fewer rows), with ``threads`` threads;
    returns ``(None, n_iter, note)``."""
    import numpy as np
    from scipy.linalg.blas import get_blas_funcs
    from threadpoolctl import threadpool_limits

    n, d = X.shape
    per_pair, formula = EM_FLOPS[cov]
    flops = per_pair(d) * n * k * n_iter
    full, rest = divmod(flops, 2 * size**3)
    rows = round(rest / (2 * size * size))
    rng = np.random.default_rng(0)
    a, b = (np.asfortranarray(rng.random((size, size)), dtype=X.dtype) for _ in range(2))
    a_rest = np.asfortranarray(a[:rows])
    out = np.empty((size, size), dtype=X.dtype, order="F")
    out_rest = np.empty((rows, size), dtype=X.dtype, order="F")
    gemm = get_blas_funcs("gemm", dtype=X.dtype)

    def run():
        with threadpool_limits(limits=threads, user_api="blas"):
            for _ in range(full):
                gemm(1.0, a, b, c=out, overwrite_c=True)
            if rows:
                gemm(1.0, a_rest, b, c=out_rest, overwrite_c=True)
        return None, n_iter, (f"{flops:.3g} flops ({n_iter} x {formula}) as {full} "
                              f"{gemm.typecode}gemm {size}^3 + one {rows} x {size} x {size}, "
                              f"scipy BLAS, {threads} threads")

    return run


def _gemm_pass(gemm, X, centers_t, rows, outs):
    """``X @ centers_t`` block by block into ``outs[block rows]`` (in place);
    returns the last block's product."""
    for start in range(0, X.shape[0], rows):
        block = X[start:start + rows]
        out = gemm(1.0, block.T, centers_t, beta=0.0, c=outs[block.shape[0]], trans_a=1,
                   overwrite_c=1)
    return out


def _kmeanspp_runner(lib, X, k, threads):
    """A zero-argument callable returning ``(centers, None, note)``."""
    import numpy as np

    n_local_trials = 2 + int(np.log(k))
    if lib == "fastem":
        kmeans_plusplus = _fastem().kmeans_plusplus

        def run():
            centers, _ = kmeans_plusplus(X, k, random_state=0, n_threads=threads)
            return centers, None, ""

    elif lib == "sklearn":
        from sklearn.cluster import kmeans_plusplus

        def run():
            centers, _ = kmeans_plusplus(X, k, random_state=0)
            return centers, None, ""

    elif lib == "daal4py":
        import daal4py

        fptype = "float" if X.dtype == np.float32 else "double"

        def run():
            algo = daal4py.kmeans_init(nClusters=k, method="plusPlusDense", fptype=fptype,
                                       nTrials=n_local_trials,
                                       engine=daal4py.engines_mt19937(seed=0))
            return algo.compute(X).centroids, None, f"plusPlusDense, nTrials={n_local_trials}"

    else:
        return None
    return run


# -- Gaussian mixtures ------------------------------------------------------


def _daal_covariances(params, cov):
    """daal4py's input covariances from sklearn-layout precisions_init."""
    import numpy as np

    _, _, prec = params
    if cov == "full":
        return [np.ascontiguousarray(np.linalg.inv(p)) for p in prec]
    return [np.ascontiguousarray(1.0 / p[None, :]) for p in prec]


def _gmm_runner(lib, X, params, k, cov, n_iter, threads):
    """A zero-argument callable returning
    ``((weights, means, covariances), n_iter_run, note)`` in sklearn's layout
    for ``cov``; ``None`` when the library does not support ``cov``."""
    import numpy as np

    weights, means, precisions = params
    dtype = X.dtype
    if lib in ("fastem", "sklearn"):
        if lib == "fastem":
            GaussianMixture = _fastem().GaussianMixture
            extra = dict(n_threads=threads)
        else:
            from sklearn.mixture import GaussianMixture

            extra = {}

        def run():
            gm = GaussianMixture(
                n_components=k, covariance_type=cov, tol=0.0, max_iter=n_iter, n_init=1,
                init_params="random_from_data", weights_init=weights, means_init=means,
                precisions_init=precisions, random_state=0, **extra,
            ).fit(X)
            return (gm.weights_, gm.means_, gm.covariances_), gm.n_iter_, ""

    elif lib == "daal4py":
        import daal4py

        if cov not in ("full", "diag"):
            return None
        fptype = "float" if dtype == np.float32 else "double"
        storage = "full" if cov == "full" else "diagonal"
        covs = [c.astype(dtype) for c in _daal_covariances(params, cov)]
        w0 = weights.reshape(1, -1).astype(dtype)
        m0 = means.astype(dtype)

        def run():
            algo = daal4py.em_gmm(nComponents=k, maxIterations=n_iter, accuracyThreshold=0.0,
                                  covarianceStorage=storage, fptype=fptype)
            res = algo.compute(X, w0, m0, covs)
            c = np.array([np.asarray(ci, dtype=np.float64) for ci in res.covariances])
            c = c.reshape(k, X.shape[1], X.shape[1]) if cov == "full" else c.reshape(k, -1)
            n_run = int(np.asarray(res.nIterations).ravel()[0])
            return (np.asarray(res.weights).ravel(), np.asarray(res.means), c), n_run, ""

    else:
        return None
    return run


# -- streaming ------------------------------------------------------------------


def _minibatch_runner(lib, X, k, seeds, threads):
    """A zero-argument callable fitting ``lib``'s MiniBatchKMeans (default
    parameters) once per seed; returns (list of centres, mean steps, note).
    Its time divided by ``seeds`` is the mean time per fit."""
    import numpy as np

    if lib == "fastem":
        MiniBatchKMeans = _fastem().MiniBatchKMeans
        extra = dict(n_threads=threads)
    else:
        from sklearn.cluster import MiniBatchKMeans

        extra = {}

    def run():
        fits = [MiniBatchKMeans(n_clusters=k, random_state=seed, **extra).fit(X)
                for seed in range(seeds)]
        return ([f.cluster_centers_ for f in fits],
                int(round(np.mean([f.n_steps_ for f in fits]))), "steps: mean n_steps_")

    return run


def _online_em_runner(lib, X, params, k, batch, threads):
    """One epoch of fastem's partial_fit ('fastem'), or batch EM to
    convergence ('fastem-batch', 'sklearn'), from ``params``; returns
    ((weights, means, covariances), iterations or steps, note)."""
    weights, means, precisions = params
    init = dict(weights_init=weights, means_init=means, precisions_init=precisions)
    if lib == "fastem":
        GaussianMixture = _fastem().GaussianMixture

        def run():
            gm = GaussianMixture(n_components=k, n_threads=threads, **init)
            for start in range(0, X.shape[0], batch):
                gm.partial_fit(X[start:start + batch])
            return ((gm.weights_, gm.means_, gm.covariances_), gm.n_steps_,
                    "one epoch of partial_fit (iter: batches)")

        return run
    if lib == "fastem-batch":
        GaussianMixture = _fastem().GaussianMixture
        extra = dict(n_threads=threads)
    else:
        from sklearn.mixture import GaussianMixture

        extra = {}

    def run():
        gm = GaussianMixture(n_components=k, max_iter=1000, **init, **extra).fit(X)
        return ((gm.weights_, gm.means_, gm.covariances_), gm.n_iter_,
                "batch EM to convergence (tol=1e-3)")

    return run


# -- the worker's entry points --------------------------------------------------


def _row(spec, lib, cov=None, **fields):
    row = dict(workload=spec["name"], description=describe(spec, cov), library=lib,
               n=spec["n"], d=spec["d"], k=spec["k"],
               label=LABELS.get(lib, lib), covariance_type=cov, status="ok", time_s=None,
               n_iter=None, quality=None, quality_name=None, note="")
    row.update(fields)
    return row


def _failure(spec, lib, cov, exc):
    tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return _row(spec, lib, cov, status="error", note=tb[:300])


def run_fit_workload(spec, repeat, threads, libraries):
    """Workloads kmeans, kmeans++, gmm, ...: one process, data generated once."""
    import numpy as np

    data = _import_data_module()
    kind = spec["kind"]
    n, d, k = spec["n"], spec["d"], spec["k"]
    if kind.endswith("-sparse"):  # TF-IDF-like CSR; the same runners
        X = data.make_tfidf(n, d, spec["nnz"], k, dtype=spec["dtype"], seed=0)
        kind = kind[:-len("-sparse")]
    else:
        kind = "kmeans" if kind == "kmeans-sweep" else kind  # a cell of the sweep
        X = data.make_mixture(n, d, k, dtype=spec["dtype"], seed=0)
    rows = []
    covs = spec.get("cov", [None]) if kind in ("gmm", "online-em") else [None]
    for cov in covs:
        if kind == "kmeans":
            init = data.initial_centers(X, k, seed=1)
        elif kind in ("gmm", "online-em"):
            params = data.initial_gmm_parameters(X, k, cov, seed=1)
        for lib in libraries:
            if not _peer_available(lib):
                rows.append(_row(spec, lib, cov, status="not installed"))
                continue
            try:
                _set_peer_threads(lib, threads)
                if lib == "floor-peak":
                    if cov not in EM_FLOPS:  # no floor for 'tied'
                        continue
                    run = _peak_floor_runner(X, k, spec["iter"], threads, cov)
                elif lib.startswith("floor-"):
                    run = _floor_runner(lib, X, init, spec["iter"], threads)
                elif kind == "kmeans":
                    run = _kmeans_runner(lib, X, init, k, spec["iter"], threads)
                elif kind == "kmeans++":
                    run = _kmeanspp_runner(lib, X, k, threads)
                elif kind == "minibatch":
                    run = _minibatch_runner(lib, X, k, spec["seeds"], threads)
                elif kind == "online-em":
                    run = _online_em_runner(lib, X, params, k, spec["batch"], threads)
                else:
                    run = _gmm_runner(lib, X, params, k, cov, spec["iter"], threads)
                if run is None:
                    rows.append(_row(spec, lib, cov, status="unsupported"))
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    best, (result, n_run, note) = _best_time(run, repeat)
                if result is None:  # a floor: no parameters
                    quality, qname = None, None
                elif kind in ("gmm", "online-em"):
                    w, m, c = result
                    quality = data.mean_log_likelihood(X, w, m, c, cov)
                    qname = "mean log-lik"
                elif kind == "minibatch":
                    best /= spec["seeds"]
                    per_seed = [data.inertia(X, c) for c in result]
                    quality = float(np.mean(per_seed))
                    qname = "inertia"
                    if len(per_seed) > 1:  # the seeds' spread: is a gap noise?
                        sem = np.std(per_seed, ddof=1) / math.sqrt(len(per_seed))
                        note += f"; inertia standard error {sem:.3g}"
                else:
                    quality = data.inertia(X, np.asarray(result))
                    qname = "inertia" if kind == "kmeans" else "potential"
                rows.append(_row(spec, lib, cov, time_s=best,
                                 n_iter=None if n_run is None else int(n_run),
                                 quality=quality, quality_name=qname, note=note))
            except Exception as exc:  # reported in the table, never fatal here
                rows.append(_failure(spec, lib, cov, exc))
            print(f"    {describe(spec, cov)} | {lib}: {rows[-1]['status']}"
                  + (f" {rows[-1]['time_s']:.3f}s" if rows[-1]["time_s"] else ""),
                  file=sys.stderr, flush=True)
    return rows


def run_memory_workload(spec, threads, lib):
    """One library, one fresh process: peak RSS beyond the data."""
    import numpy as np

    data = _import_data_module()
    n, d, k, cov = spec["n"], spec["d"], spec["k"], spec["cov"][0]
    if not _peer_available(lib):
        return [_row(spec, lib, cov, status="not installed")]
    try:
        _set_peer_threads(lib, threads)
        # import and warm the library up on toy data first, so lazily loaded
        # code is part of the baseline, not of "beyond X"
        toy = data.make_mixture(2_000, d, k, dtype=spec["dtype"], seed=3)
        toy_params = data.initial_gmm_parameters(toy, k, cov, seed=1)
        warm = _gmm_runner(lib, toy, toy_params, k, cov, 1, threads)
        if warm is None:
            return [_row(spec, lib, cov, status="unsupported")]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warm()
        del toy, warm
        X = data.make_mixture(n, d, k, dtype=spec["dtype"], seed=0)
        # small setup temporaries, handed back to the OS before the baseline
        params = data.initial_gmm_parameters(X, k, cov, seed=1, variance_rows=20_000)
        run = _gmm_runner(lib, X, params, k, cov, spec["iter"], threads)
        _malloc_trim()
        rss_data = _rss_now_bytes()
        peak_before = _maxrss_bytes()
        # the setup's transient temporaries must not count: reset the
        # high-water mark to the current RSS where the OS allows it
        hwm = _reset_peak_rss()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t, (result, n_run, note) = _best_time(run, 1)
        peak = _vm_hwm_bytes() if hwm else _maxrss_bytes()
        maxrss = _maxrss_bytes()
        w, m, c = result
        quality = data.mean_log_likelihood(X, w, m, c, cov)
        return [_row(spec, lib, cov, time_s=t, n_iter=int(n_run), quality=quality,
                     quality_name="mean log-lik", note=note, x_bytes=int(X.nbytes),
                     rss_after_data_bytes=int(rss_data), peak_rss_bytes=int(peak),
                     peak_before_fit_bytes=int(peak_before), ru_maxrss_bytes=int(maxrss),
                     peak_method="VmHWM after clear_refs" if hwm else "ru_maxrss",
                     beyond_x_bytes=int(peak - rss_data))]
    except Exception as exc:
        return [_failure(spec, lib, cov, exc)]


def environment_info(threads):
    """Machine and library versions, as seen from a worker process."""
    import importlib.metadata as md

    import numpy as np
    import scipy

    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "avx512f": _cpu_has("avx512f"),
        "available_cpus": _import_data_module().available_cpus(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "threads": threads,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "env": {key: os.environ.get(key) for key in
                ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "MKL_NUM_THREADS")},
    }
    for dist in ("fastem", "scikit-learn", "faiss-cpu", "scikit-learn-intelex", "daal"):
        try:
            info[dist] = md.version(dist)
        except md.PackageNotFoundError:
            info[dist] = None
    try:
        import fastem

        info["fastem_build"] = fastem.build_info()
        # the checkout (PYTHONPATH=$PWD) or an installed copy: say which
        info["fastem_path"] = os.path.dirname(os.path.abspath(fastem.__file__))
    except Exception as exc:
        info["fastem_build"] = f"unavailable: {exc}"
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = sorted({f"{p.get('internal_api')} {p.get('version')} "
                               f"({p.get('architecture')})"
                               for p in threadpool_info() if p.get("user_api") == "blas"})
    except Exception:
        info["blas"] = []
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_has(flag):
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return flag in line.split()
    except OSError:
        pass
    return None


def worker_main(task_path, out_path):
    with open(task_path) as f:
        task = json.load(f)
    if task["what"] == "environment":
        result = environment_info(task["threads"])
    elif task["what"] == "fit" and task["spec"]["kind"].startswith("dask-"):
        import types

        helpers = types.SimpleNamespace(
            data_module=_import_data_module, row=_row, failure=_failure, describe=describe,
            kmeans_runner=_kmeans_runner, gmm_runner=_gmm_runner,
            installed=lambda m: importlib.util.find_spec(m) is not None)
        result = _sibling("_dask_workloads").run_dask_workload(
            task["spec"], task["repeat"], task["threads"], task["libraries"], helpers)
    elif task["what"] == "fit":
        result = run_fit_workload(task["spec"], task["repeat"], task["threads"],
                                  task["libraries"])
    else:
        result = run_memory_workload(task["spec"], task["threads"], task["library"])
    with open(out_path, "w") as f:
        json.dump(result, f)


# --------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------


def worker_env(threads):
    # the BLAS setting is the caller's: `env -u OPENBLAS_CORETYPE` must reach
    # the workers (OpenBLAS then picks its kernels for the CPU)
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = str(threads)
    return env


def _cells(spec):
    """The specs a workload runs as: the sweep's cells, else itself."""
    return sweep_cells(spec) if spec["kind"] == "kmeans-sweep" else [spec]


def run_worker(task, threads, timeout):
    """Run one task in a fresh interpreter; returns (result, error_message)."""
    with tempfile.TemporaryDirectory(prefix="fastem-compare-") as tmp:
        task_path = os.path.join(tmp, "task.json")
        out_path = os.path.join(tmp, "result.json")
        with open(task_path, "w") as f:
            json.dump(task, f)
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", task_path, out_path]
        proc = subprocess.Popen(cmd, env=worker_env(threads), cwd=tmp, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        killed = threading.Event()

        def kill():
            killed.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        tail = collections.deque(maxlen=20)
        try:
            for line in proc.stdout:  # progress lines are echoed as they come
                line = line.rstrip("\n")
                tail.append(line)
                if line.startswith("    "):
                    print(line, file=sys.stderr, flush=True)
            returncode = proc.wait()
        finally:
            timer.cancel()
        if killed.is_set():
            return None, f"killed after the {timeout:g} s timeout"
        if returncode != 0 or not os.path.exists(out_path):
            for line in tail:
                print(f"      | {line}", file=sys.stderr)
            last = " / ".join(line.strip() for line in list(tail)[-2:])
            return None, f"worker exited with status {returncode}: {last[-300:]}"
        with open(out_path) as f:
            return json.load(f), None


def _fmt_time(row):
    return "" if row["time_s"] is None else f"{row['time_s']:.3f}"


def _fmt_bytes(b):
    if b is None:
        return ""
    return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.0f} MiB"


def add_ratios(rows):
    """ratio = library time / fastem time; delta = quality - fastem's quality."""
    ref = {}
    for r in rows:
        if r["library"] == "fastem" and r["status"] == "ok":
            ref[(r["description"])] = r
    for r in rows:
        base = ref.get(r["description"])
        r["ratio_to_fastem"] = None
        r["quality_delta"] = None
        if base is None or r["status"] != "ok":
            continue
        if base["time_s"] and r["time_s"] is not None:
            r["ratio_to_fastem"] = r["time_s"] / base["time_s"]
        if r["quality"] is not None and base["quality"] is not None:
            if r["quality_name"] == "mean log-lik":
                r["quality_delta"] = r["quality"] - base["quality"]  # higher is better
            elif base["quality"]:
                r["quality_delta"] = r["quality"] / base["quality"] - 1.0  # lower is better


def _fmt_quality(r):
    if r["quality"] is None:
        return ""
    if r["quality_name"] == "mean log-lik":
        return f"{r['quality']:.5f}"
    return f"{r['quality']:.7g}"


def _fmt_delta(r):
    if r["quality_delta"] is None:
        return ""
    if r["quality_name"] == "mean log-lik":
        return f"{r['quality_delta']:+.5f}"
    return f"{100 * r['quality_delta']:+.3f}%"


def markdown_table(rows):
    head = ("| workload | library | time (s) | × fastem | iter | quality | Δ vs fastem "
            "| peak RSS beyond X | note |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        if r["status"] == "ok":
            ratio = "" if r["ratio_to_fastem"] is None else f"{r['ratio_to_fastem']:.2f}"
            quality = _fmt_quality(r)
            if quality:
                quality = f"{r['quality_name']} {quality}"
            mem = ""
            if r.get("beyond_x_bytes") is not None:
                mem = f"{_fmt_bytes(r['beyond_x_bytes'])} (X: {_fmt_bytes(r['x_bytes'])})"
            cells = [r["description"], r["label"], _fmt_time(r), ratio,
                     "" if r["n_iter"] is None else str(r["n_iter"]), quality,
                     _fmt_delta(r), mem, r["note"]]
        else:
            cells = [r["description"], r["label"], r["status"], "", "", "", "", "",
                     r["note"]]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def sweep_table(rows):
    """kmeans-sweep's cells as one Markdown table (rows D, columns K) of
    fastem's time / scikit-learn (lloyd)'s time; '' without sweep rows."""
    times = {(r["d"], r["k"], r["library"]): r["time_s"] for r in rows
             if r["workload"] == "kmeans-sweep" and r["status"] == "ok"}
    if not times:
        return ""
    ds = sorted({d for d, _, _ in times})
    ks = sorted({k for _, k, _ in times})
    lines = ["", "", "kmeans-sweep: fastem's time / scikit-learn (lloyd)'s time "
             "(below 1: fastem is faster)", "",
             "| D \\ K | " + " | ".join(str(k) for k in ks) + " |",
             "|---" * (len(ks) + 1) + "|"]
    for d in ds:
        cells = []
        for k in ks:
            mine, theirs = times.get((d, k, "fastem")), times.get((d, k, "sklearn-lloyd"))
            cells.append(f"{mine / theirs:.2f}" if mine and theirs else "")
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_environment(env, command):
    build = env.get("fastem_build")
    openmp = build.get("openmp") if isinstance(build, dict) else None
    peers = ", ".join(f"{name} {env.get(name) or 'not installed'}"
                      for name in ("faiss-cpu", "scikit-learn-intelex"))
    if env.get("daal"):
        peers += f" (daal4py with oneDAL {env['daal']})"
    lines = [
        f"- command: `{command}`",
        f"- machine: {env['cpu']}, {env['available_cpus']} cores"
        f"{' (AVX-512)' if env.get('avx512f') else ''}, {env['memory_gib']} GiB; "
        f"{env['platform']}",
        f"- threads: {env['threads']} (OMP/OPENBLAS/MKL_NUM_THREADS, fastem n_threads); "
        f"OPENBLAS_CORETYPE={env['env'].get('OPENBLAS_CORETYPE')}; "
        f"BLAS: {', '.join(env.get('blas') or []) or 'unknown'}",
        f"- fastem {env.get('fastem')} from {env.get('fastem_path')} (OpenMP: {openmp}), scikit-learn "
        f"{env.get('scikit-learn')}, numpy {env['numpy']}, scipy {env['scipy']}, "
        f"Python {env['python']}; {peers}",
        f"- {env['date']}; load average before the run "
        f"{'/'.join(str(x) for x in env['load_average'])} (1/5/15 min)"
        + (f", after {'/'.join(str(x) for x in env['load_average_after'])}"
           if env.get("load_average_after") else ""),
    ]
    busy = max(env["load_average"][0], (env.get("load_average_after") or [0])[0])
    if busy > 0.5:
        lines.append(f"- note: other processes were using the CPUs (load average up to "
                     f"{busy}); timings are noisier and slower than on an idle machine")
    return "\n".join(lines)


def merge_runs(paths, markdown=None):
    """One table from several ``--json`` outputs (for sizes whose libraries
    are timed in separate runs, e.g. one per QUIET hold)."""
    rows, parts = [], []
    for path in paths:
        with open(path) as f:
            run = json.load(f)
        rows.extend(run["rows"])
        env = run["environment"]
        parts.append(f"- `{run['command']}`: {env['date']}, load average (1 min) "
                     f"{env['load_average'][0]} before, "
                     f"{(env.get('load_average_after') or ['?'])[0]} after")
    add_ratios(rows)
    text = ("Merged from:\n" + "\n".join(parts) + "\n\n"
            + markdown_environment(env, "(merged)") + "\n\n" + markdown_table(rows)
            + sweep_table(rows) + "\n")
    print(text)
    if markdown:
        with open(markdown, "w") as f:
            f.write(text)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare fastem with scikit-learn and optional peers on the same data.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD[:key=value,...]",
                        help=f"default: {' '.join(DEFAULT_WORKLOADS)}")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs per library; the best is reported (default 3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every library (default: all cores)")
    parser.add_argument("--libraries", default=None,
                        help="comma-separated subset, e.g. fastem,sklearn-lloyd,faiss")
    parser.add_argument("--skip-memory", action="store_true",
                        help="leave out the gmm-memory workload")
    parser.add_argument("--tiny", action="store_true",
                        help="toy sizes and --repeat 1 (smoke test)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the Markdown output")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds per worker process (default 3600)")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="print one table from the --json files of earlier runs "
                             "(ratios against the fastem row of the same workload, "
                             "whichever run it came from); runs nothing")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        worker_main(*args.worker)
        return 0
    if args.merge:
        return merge_runs(args.merge, args.markdown)

    data = _import_data_module()
    threads = args.threads or data.available_cpus()
    repeat = 1 if args.tiny and args.repeat == 3 else args.repeat
    names = expand_workloads(args.workloads) or (list(WORKLOADS) if args.tiny
                                                 else DEFAULT_WORKLOADS)
    specs = [cell for w in names for cell in _cells(parse_workload(w, tiny=args.tiny))]
    if args.skip_memory:
        specs = [s for s in specs if s["kind"] != "gmm-memory"]
    wanted = None if args.libraries is None else set(args.libraries.split(","))
    command = " ".join(shlex.quote(a) for a in
                       ["python", os.path.relpath(__file__)] + list(sys.argv[1:] if argv is None
                                                                    else argv))

    env, err = run_worker({"what": "environment", "threads": threads}, threads, 600)
    if err:
        print(f"cannot start a worker: {err}", file=sys.stderr)
        return 1
    header = markdown_environment(env, command)
    print(header, file=sys.stderr)

    rows = []
    for spec in specs:
        libs = [lib for lib in LIBRARIES[spec["kind"]] if (wanted is None or lib in wanted)
                and lib not in spec.get("skip", ())]
        print(f"== {describe(spec)}", file=sys.stderr, flush=True)
        if spec["kind"] == "gmm-memory":
            for lib in libs:  # a fresh process per library, one after the other
                res, err = run_worker({"what": "memory", "spec": spec, "threads": threads,
                                       "library": lib}, threads, args.timeout)
                rows.extend(res if res is not None else
                            [_row(spec, lib, spec["cov"][0], status="error", note=err)])
                r = rows[-1]
                print(f"    {r['description']} | {lib}: {r['status']}"
                      + (f" {r['time_s']:.2f}s, beyond X {_fmt_bytes(r.get('beyond_x_bytes'))}"
                         if r["status"] == "ok" else f" {r['note']}"),
                      file=sys.stderr, flush=True)
        else:
            res, err = run_worker({"what": "fit", "spec": spec, "threads": threads,
                                   "repeat": repeat, "libraries": libs}, threads, args.timeout)
            if res is None:
                covs = (spec.get("cov", [None]) if spec["kind"] in ("gmm", "online-em")
                        else [None])
                res = [_row(spec, lib, cov, status="error", note=err)
                       for cov in covs for lib in libs]
            rows.extend(res)

    env["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    header = markdown_environment(env, command)
    add_ratios(rows)
    table = markdown_table(rows) + sweep_table(rows)
    text = f"{header}\n\n{table}\n"
    print()
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": command, "environment": env, "repeat": repeat,
                       "workloads": specs, "rows": rows}, f, indent=1)
    failed = [r for r in rows if r["status"] == "error" and r["library"] in REQUIRED]
    if failed:
        print(f"{len(failed)} required run(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
