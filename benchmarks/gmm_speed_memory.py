"""GaussianMixture: fastem against scikit-learn, speed and peak memory.

Speed (default): N=200,000, D=16, K=16 blobs; both libraries start from the
same initial parameters (weights_init, means_init, precisions_init) and run
20 EM iterations (tol=0, n_init=1), for every covariance type, float64 and
float32. Prints wall times and ratios against the bars:

    full: fastem float64 <= 1/15 of scikit-learn float64
    diag, spherical, tied: <= 1/10
    fastem float32 <= 0.6 x fastem float64

Memory (--memory): peak resident memory of ``fastem.GaussianMixture.fit`` on
N=10,000,000 x D=16 float64 with K=16, measured in a fresh subprocess per
covariance type (X is generated in place, block by block, so the process
holds nothing else of size N). Bar: peak RSS <= size of X + 200 MB.

Run with the reference environment's settings::

    OPENBLAS_CORETYPE=Haswell python benchmarks/gmm_speed_memory.py [--memory]

scikit-learn is only a comparison here; fastem never imports it.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

try:  # run from a source checkout without installing
    import fastem  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COV_TYPES = ("full", "diag", "spherical", "tied")
BARS = {"full": 1 / 15, "diag": 1 / 10, "spherical": 1 / 10, "tied": 1 / 10}
FLOAT32_BAR = 0.6


def make_blobs(n, d, k, seed=0, dtype=np.float64, out=None, block=65536):
    """K Gaussian blobs, generated in place block by block (bounded temporaries)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    X = np.empty((n, d), dtype=dtype) if out is None else out
    for start in range(0, n, block):
        stop = min(n, start + block)
        lab = rng.integers(0, k, stop - start)
        blk = rng.standard_normal((stop - start, d))
        blk *= scales[lab]
        blk += centers[lab]
        X[start:stop] = blk
    return X


def initial_parameters(X, k, cov_type, seed=0):
    """Common starting point: K data points as means, the data covariance."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    means = X[rng.choice(n, size=k, replace=False)].astype(np.float64)
    var = X.astype(np.float64).var(axis=0)
    weights = np.full(k, 1.0 / k)
    if cov_type == "full":
        prec = np.tile(np.diag(1.0 / var), (k, 1, 1))
    elif cov_type == "tied":
        prec = np.diag(1.0 / var)
    elif cov_type == "diag":
        prec = np.tile(1.0 / var, (k, 1))
    else:
        prec = np.full(k, 1.0 / var.mean())
    return dict(weights_init=weights, means_init=means, precisions_init=prec)


def _time(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def speed(n, d, k, max_iter, repeat, cov_types, sklearn_float32):
    from sklearn.mixture import GaussianMixture as SkGM

    from fastem import GaussianMixture

    warnings.simplefilter("ignore")
    X64 = make_blobs(n, d, k)
    X32 = X64.astype(np.float32)
    print(f"N={n} D={d} K={k} max_iter={max_iter} tol=0 n_init=1, "
          f"fastem best of {repeat}, scikit-learn 1 run; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} "
          f"cpus={len(os.sched_getaffinity(0))}")
    print(f"{'cov':>10} {'sklearn64':>10} {'fastem64':>9} {'ratio':>7} {'bar':>6} "
          f"{'fastem32':>9} {'32/64':>6} {'bar':>4}" + ("  sklearn32" if sklearn_float32 else ""))
    results = {}
    ok = True
    for cov in cov_types:
        init = initial_parameters(X64, k, cov)
        common = dict(n_components=k, covariance_type=cov, tol=0.0, max_iter=max_iter,
                      n_init=1, **init)
        t_sk = _time(lambda: SkGM(**common).fit(X64), 1)
        t_f64 = _time(lambda: GaussianMixture(**common).fit(X64), repeat)
        t_f32 = _time(lambda: GaussianMixture(**common).fit(X32), repeat)
        t_sk32 = _time(lambda: SkGM(**common).fit(X32), 1) if sklearn_float32 else None
        ratio = t_f64 / t_sk
        r32 = t_f32 / t_f64
        pass_speed = ratio <= BARS[cov]
        pass_32 = r32 <= FLOAT32_BAR
        ok &= pass_speed and pass_32
        line = (f"{cov:>10} {t_sk:>9.3f}s {t_f64:>8.3f}s {ratio:>7.4f} "
                f"{'ok' if pass_speed else 'MISS':>6} {t_f32:>8.3f}s {r32:>6.3f} "
                f"{'ok' if pass_32 else 'MISS':>4}")
        if t_sk32 is not None:
            line += f"  {t_sk32:>8.3f}s"
        print(line, flush=True)
        results[cov] = dict(sklearn64=t_sk, fastem64=t_f64, fastem32=t_f32,
                            ratio=ratio, ratio32=r32, sklearn32=t_sk32)
    print("all speed bars met" if ok else "SOME SPEED BARS MISSED")
    return results


def memory_child(n, d, k, cov, max_iter, init_params):
    """Runs in a fresh process: fit on an in-place generated X, report RSS."""
    from fastem import GaussianMixture

    warnings.simplefilter("ignore")
    X = make_blobs(n, d, k)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    GaussianMixture(k, covariance_type=cov, max_iter=max_iter, tol=0.0,
                    init_params=init_params, random_state=0).fit(X)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(dict(x_bytes=X.nbytes, rss_before_fit=rss_before, peak=peak,
                          seconds=elapsed)))


def memory(n, d, k, cov_types, max_iter, init_params):
    print(f"peak RSS of fit, N={n} D={d} K={k} float64, max_iter={max_iter}, "
          f"init_params={init_params!r}, fresh process per covariance type")
    print(f"{'cov':>10} {'X (MB)':>8} {'RSS before fit':>15} {'peak RSS':>9} "
          f"{'peak - X':>9} {'bar':>5} {'fit adds':>9} {'fit time':>9}")
    ok = True
    for cov in cov_types:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", "--n", str(n), "--d", str(d),
             "--k", str(k), "--cov", cov, "--max-iter", str(max_iter),
             "--init-params", init_params],
            capture_output=True, text=True, check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        mb = 1e6
        extra = r["peak"] - r["x_bytes"]
        passed = extra <= 200 * mb
        ok &= passed
        print(f"{cov:>10} {r['x_bytes'] / mb:>8.0f} {r['rss_before_fit'] / mb:>14.0f}M "
              f"{r['peak'] / mb:>8.0f}M {extra / mb:>8.0f}M {'ok' if passed else 'MISS':>5} "
              f"{(r['peak'] - r['rss_before_fit']) / mb:>8.0f}M "
              f"{r['seconds']:>8.1f}s", flush=True)
    print("memory bar met" if ok else "MEMORY BAR MISSED")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--memory", action="store_true", help="run the 1e7-row memory test")
    p.add_argument("--no-speed", action="store_true", help="skip the speed comparison")
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--max-iter", type=int, default=None)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cov", default=",".join(COV_TYPES))
    p.add_argument("--init-params", default="kmeans")
    p.add_argument("--sklearn-float32", action="store_true",
                   help="also time scikit-learn on float32")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    covs = a.cov.split(",")
    if a.memory_child:
        memory_child(a.n, a.d, a.k, covs[0], a.max_iter, a.init_params)
        return
    if not a.no_speed:
        speed(a.n or 200_000, a.d, a.k, a.max_iter or 20, a.repeat, covs,
              a.sklearn_float32)
    if a.memory:
        memory(a.n or 10_000_000, a.d, a.k, covs, a.max_iter or 5, a.init_params)


if __name__ == "__main__":
    main()
