"""Smoke tests of the benchmarks: every asv benchmark runs on toy data and
returns what asv expects, and compare.py prints its table. No timing is
asserted; this only catches a benchmark that breaks.

The benchmark package is loaded from its file path (as asv does), so the
repository root never lands on sys.path and ``fastem`` stays the installed
package.
"""
import importlib
import importlib.util
import itertools
import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "benchmarks")
BENCH_MODULES = sorted(
    name[:-3] for name in os.listdir(BENCH_DIR) if name.startswith("bench_") and name.endswith(".py")
)
PREFIXES = ("time_", "peakmem_", "track_", "mem_", "timeraw_")


def _benchmarks_package():
    name = "_fastem_benchmarks"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(BENCH_DIR, "__init__.py"), submodule_search_locations=[BENCH_DIR]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return name


def _load(module_name):
    return importlib.import_module(f"{_benchmarks_package()}.{module_name}")


def _cases():
    cases = []
    for module_name in BENCH_MODULES:
        module = _load(module_name)
        for cls_name, cls in sorted(vars(module).items()):
            if not isinstance(cls, type) or cls_name.startswith("_"):
                continue
            methods = [m for m in dir(cls) if m.startswith(PREFIXES)]
            if methods:
                cases.append(pytest.param(module_name, cls_name, methods,
                                          id=f"{module_name}.{cls_name}"))
    return cases


def test_suite_is_not_empty():
    assert BENCH_MODULES
    assert len(_cases()) >= 4


def test_asv_conf_points_at_the_suite():
    with open(os.path.join(ROOT, "asv.conf.json")) as f:
        text = "\n".join(line for line in f if not line.lstrip().startswith("//"))
    conf = json.loads(text)
    assert conf["benchmark_dir"] == "benchmarks"
    assert conf["repo"] == "."


@pytest.mark.parametrize("module_name, cls_name, methods", _cases())
def test_benchmark_class_runs(module_name, cls_name, methods, monkeypatch):
    monkeypatch.setenv("FASTEM_BENCH_PROFILE", "tiny")
    cls = getattr(_load(module_name), cls_name)
    params = cls.params if isinstance(cls.params[0], (list, tuple)) else [cls.params]
    assert len(params) == len(cls.param_names)
    for combo in itertools.product(*params):
        bench = cls()
        bench.setup(*combo)
        try:
            for method in methods:
                result = getattr(bench, method)(*combo)
                if method.startswith("track_"):
                    assert isinstance(result, (int, float)), (method, combo, result)
                    assert math.isfinite(result), (method, combo, result)
                    assert getattr(cls, method).unit
        finally:
            bench.teardown(*combo)


def test_threads_and_dtypes_are_parameters():
    for module_name in BENCH_MODULES:
        module = _load(module_name)
        for cls in vars(module).values():
            if isinstance(cls, type) and hasattr(cls, "param_names"):
                assert cls.param_names[:2] == ["dtype", "n_threads"]
                assert list(cls.params[0]) == ["float32", "float64"]
                assert 1 in cls.params[1]


def test_profiles(monkeypatch):
    data = _load("_data")
    for profile in ("default", "large", "tiny"):
        monkeypatch.setenv("FASTEM_BENCH_PROFILE", profile)
        assert set(data.PROFILES[profile]) == set(data.PROFILES["default"])
        for kind in data.PROFILES[profile]:
            n, d, k = data.sizes(kind)
            assert n >= k > 0 and d > 0
    monkeypatch.setenv("FASTEM_BENCH_PROFILE", "nonsense")
    with pytest.raises(ValueError):
        data.sizes("kmeans")


def test_data_is_deterministic_and_blockwise():
    data = _load("_data")
    a = data.make_mixture(5_000, 3, 4, dtype="float32", seed=0, block_rows=1_000)
    b = data.make_mixture(5_000, 3, 4, dtype="float32", seed=0, block_rows=1_000)
    assert a.dtype.name == "float32" and a.flags.c_contiguous
    assert (a == b).all()
    assert not (a == data.make_mixture(5_000, 3, 4, dtype="float32", seed=1,
                                       block_rows=1_000)).all()


def test_mixture_with_shared_maps(monkeypatch):
    """Past the maps' memory cap, components share maps (j mod M) and keep
    their own means; below it, nothing changes."""
    import numpy as np

    data = _load("_data")
    w, m, maps = data.mixture_parameters(6, 5, seed=0)
    assert maps.shape == (5, 6, 6)
    w2, m2, maps2 = data.mixture_parameters(6, 5, seed=0, max_maps_bytes=2 * 8 * 36)
    assert maps2.shape == (2, 6, 6)
    assert (w2 == w).all() and (m2 == m).all() and (maps2 == maps[:2]).all()
    monkeypatch.setattr(data, "MAX_MAPS_BYTES", 3 * 8 * 36)
    weights, means, maps = data.mixture_parameters(6, 50, seed=4)
    assert len(maps) == 3
    X = data.make_mixture(2_000, 6, 50, seed=4, block_rows=700)
    # row by row reference, from the same random streams: x = means[j] + maps[j % 3] @ z
    seq = np.random.SeedSequence([4, 2])
    rng_labels, rng_noise = (np.random.default_rng(s) for s in seq.spawn(2))
    cum = np.cumsum(weights)
    cum[-1] = 1.0
    for start in range(0, 2_000, 700):
        m = min(700, 2_000 - start)
        labels = np.searchsorted(cum, rng_labels.random(m), side="right")
        z = rng_noise.standard_normal(size=(m, 6))
        ref = [means[j] + maps[j % 3] @ zi for j, zi in zip(labels, z)]
        np.testing.assert_allclose(X[start:start + m], ref, rtol=1e-12, atol=1e-12)


def test_reference_metrics_agree_with_scikit_learn():
    import numpy as np
    from sklearn import mixture

    data = _load("_data")
    X = data.make_mixture(3_000, 3, 4, seed=0)
    centers = data.initial_centers(X, 4)
    d2 = ((X[:, None, :] - centers[None]) ** 2).sum(-1).min(1).sum()
    assert data.inertia(X, centers) == pytest.approx(d2, rel=1e-12)
    for cov in ("full", "tied", "diag", "spherical"):
        gm = mixture.GaussianMixture(4, covariance_type=cov, max_iter=5, random_state=0).fit(X)
        ref = data.mean_log_likelihood(X, gm.weights_, gm.means_, gm.covariances_, cov)
        assert ref == pytest.approx(gm.score(X), rel=1e-10)
        w, m, p = data.initial_gmm_parameters(X, 4, cov)
        assert np.isclose(w.sum(), 1.0) and m.shape == (4, 3)


def test_compare_prints_the_table(tmp_path):
    out = tmp_path / "compare.json"
    import fastem

    # the workers import the fastem under test, as this process does
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(fastem.__file__))}
    proc = subprocess.run(
        [sys.executable, os.path.join(BENCH_DIR, "compare.py"), "--tiny",
         "kmeans", "kmeans++", "gmm:cov=full/spherical", "gmm-memory:n=20000",
         "minibatch", "online-em", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=str(tmp_path), env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| workload | library |" in proc.stdout
    assert "scikit-learn (lloyd)" in proc.stdout
    result = json.loads(out.read_text())
    rows = result["rows"]
    for lib in ("fastem", "sklearn-lloyd", "sklearn-elkan", "sklearn", "fastem-batch"):
        mine = [r for r in rows if r["library"] == lib]
        assert mine and all(r["status"] == "ok" for r in mine), mine
    # optional peers: either measured or reported as not installed, never a crash
    for r in rows:
        assert r["status"] in {"ok", "not installed", "unsupported", "error"}
        if r["library"] in ("fastem", "sklearn") and r["quality_name"] == "mean log-lik":
            assert math.isfinite(r["quality"])
    memory = [r for r in rows if r["workload"] == "gmm-memory" and r["status"] == "ok"]
    assert memory and all(r["beyond_x_bytes"] is not None for r in memory)
    # same data, same initial parameters: scikit-learn reaches fastem's answer
    by = {(r["description"], r["library"]): r for r in rows if r["status"] == "ok"}
    for (desc, lib), r in by.items():
        if lib in ("sklearn", "sklearn-lloyd") and r["workload"] in ("kmeans", "gmm"):
            ref = by[(desc, "fastem")]
            assert r["quality"] == pytest.approx(ref["quality"], rel=1e-3, abs=1e-3)


def test_gemm_floor_computes_the_product():
    import numpy as np

    compare = _load("compare")
    from scipy.linalg.blas import get_blas_funcs

    rng = np.random.default_rng(0)
    X = rng.standard_normal((1_000, 7)).astype(np.float32)
    C = rng.standard_normal((5, 7)).astype(np.float32)
    outs = {m: np.empty((m, 5), np.float32, order="F") for m in (300, 100)}
    last = compare._gemm_pass(get_blas_funcs("gemm", dtype=X.dtype), X, C.T, 300, outs)
    assert last is outs[100]  # written in place, no copy
    np.testing.assert_allclose(last, X[900:] @ C.T, rtol=1e-5, atol=1e-5)
    run = compare._floor_runner("floor-gemm", X, C.astype(np.float64), 3, 2)
    result = run()
    assert result[:2] == (None, 3) and "sgemm" in result[2]
    assert compare._floor_runner("floor-memory", X, C, 3, 2)()[:2] == (None, 3)


@pytest.mark.parametrize("cov, per_pair", [("full", 3 * 36), ("diag", 2 * (4 * 6 + 1)),
                                            ("spherical", 2 * (2 * 6 + 3))])
def test_peak_floor_runs_the_flops_it_names(cov, per_pair):
    """floor (GEMM peak): iter x F N K flops as whole square GEMMs plus one
    with fewer rows, in X's precision; F = 3 D^2 ('full'), 2 (4D + 1)
    ('diag'), 2 (2D + 3) ('spherical')."""
    import re

    import numpy as np

    compare = _load("compare")
    X = np.zeros((1_000, 6), np.float32)  # N = 1000, D = 6; K = 5, 4 iterations
    flops = per_pair * 1_000 * 5 * 4
    result = compare._peak_floor_runner(X, 5, 4, 1, cov, size=16)()
    assert result[:2] == (None, 4)
    assert f"{flops:.3g} flops (4 x " in result[2]
    full, size, rows = map(int, re.search(r"as (\d+) sgemm (\d+)\^3 \+ one (\d+) x", result[2])
                           .groups())
    assert size == 16 and 0 <= rows < 16
    assert abs(full * 2 * size**3 + rows * 2 * size**2 - flops) <= size**2


def test_workload_arguments():
    compare = _load("compare")
    names = compare.expand_workloads(["frontier", "gmm"])
    assert names[-1] == "gmm" and {"kmeans-k3", "kmeans-sweep"} <= set(names)
    assert all(name in compare.TINY for name in compare.WORKLOADS)
    spec = compare.parse_workload("kmeans-sweep:mb=2,d=4/400,k=8/2048,iter=3")
    cells = compare.sweep_cells(spec)
    assert [(c["d"], c["k"], c["n"]) for c in cells] == [
        (4, 8, 125_000), (4, 2048, 125_000), (400, 8, 1_250), (400, 2048, 2048)]
    assert all(c["iter"] == 3 and c["kind"] == "kmeans-sweep" for c in cells)
    for bad in ("kmeans-sweep:n=10", "kmeans:mb=3", "kmeans:d=2/4", "kmeans:k=x", "nope"):
        with pytest.raises(SystemExit):
            compare.parse_workload(bad)


def test_compare_issue15_workloads(tmp_path):
    """The large-K, low-D, embedding and sweep workloads and their floors,
    at toy sizes."""
    out = tmp_path / "compare.json"
    import fastem

    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(fastem.__file__))}
    proc = subprocess.run(
        [sys.executable, os.path.join(BENCH_DIR, "compare.py"), "--tiny",
         "kmeans-k3:n=3000,k=64", "kmeans-e2:n=600,k=16", "kmeans-sweep:mb=0.4,d=2/100,k=16",
         "--libraries", "fastem,fastem-lloyd,sklearn-lloyd,sklearn-elkan,sklearn,"
                        "floor-gemm,floor-memory", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=str(tmp_path), env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert all(r["status"] == "ok" for r in rows), [r for r in rows if r["status"] != "ok"]
    by = {(r["workload"], r["d"], r["k"], r["library"]): r for r in rows}
    assert ("kmeans-k3", 64, 64, "sklearn-elkan") not in by  # skipped: N x K bounds
    assert ("kmeans-e2", 784, 16, "sklearn-elkan") in by
    for name, d, k in (("kmeans-k3", 64, 64), ("kmeans-e2", 784, 16)):
        fastem_row = by[(name, d, k, "fastem")]
        for lib in ("fastem-lloyd", "sklearn-lloyd"):  # same init, same Lloyd iterates
            assert by[(name, d, k, lib)]["quality"] == pytest.approx(fastem_row["quality"],
                                                                     rel=1e-3)
        for lib in ("floor-gemm", "floor-memory"):
            floor = by[(name, d, k, lib)]
            assert floor["quality"] is None and floor["n_iter"] == 10  # the workload's iter
            assert floor["ratio_to_fastem"] == pytest.approx(
                floor["time_s"] / fastem_row["time_s"])
    sweep = {(r["d"], r["k"], r["n"], r["library"]) for r in rows
             if r["workload"] == "kmeans-sweep"}
    assert sweep == {(d, 16, n, lib) for d, n in ((2, 50_000), (100, 1_000))
                     for lib in ("fastem", "sklearn-lloyd")}
    table = proc.stdout[proc.stdout.index("kmeans-sweep: fastem's time"):].splitlines()
    assert table[2].split("|")[2] == " 16 "
    for line, d in zip(table[4:6], (2, 100)):
        cells = line.split("|")
        ratio = by[("kmeans-sweep", d, 16, "fastem")]["time_s"] / by[
            ("kmeans-sweep", d, 16, "sklearn-lloyd")]["time_s"]
        assert cells[1].strip() == str(d) and float(cells[2]) == pytest.approx(ratio, abs=0.01)


def test_row_scaling_prints_time_per_row():
    """benchmarks/row_scaling.py (issue 15's time per row at two N), toy sizes:
    one table row per N with the time per row per pass and its ratio."""
    import fastem

    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(fastem.__file__))}
    proc = subprocess.run(
        [sys.executable, os.path.join(BENCH_DIR, "row_scaling.py"), "--n", "3000,6000",
         "--d", "8", "--k", "16", "--iter", "1,4", "--repeat", "1", "--threads", "1"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split("|")[1:-1] for line in proc.stdout.splitlines()
            if line.startswith("| 3e+03") or line.startswith("| 6e+03")]
    assert [r[0].strip() for r in rows] == ["3e+03", "6e+03"], proc.stdout
    assert rows[0][4].strip() == "1.000x"
    # (no timing asserted: at these sizes the difference of two fits is noise)
    assert all(math.isfinite(float(r[3])) and math.isfinite(float(r[4].rstrip("x ")))
               for r in rows)


def test_thread_scaling_prints_a_row_per_workload_and_library(tmp_path):
    """benchmarks/thread_scaling.py (issue 15's thread scaling), toy sizes at
    1 and 2 threads: one table row per (workload, library) with a time at
    each count, the speedup over the first (1.00x there) and an efficiency;
    the JSON holds the same times."""
    import fastem

    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(fastem.__file__))}
    out = tmp_path / "scaling.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(BENCH_DIR, "thread_scaling.py"), "kmeans",
         "gmm:cov=full", "--tiny", "--threads", "1,2", "--repeat", "1",
         "--libraries", "fastem,fastem-lloyd", "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in proc.stdout.splitlines()
            if line.startswith("| kmeans ") or line.startswith("| gmm ")]
    assert [(r[0].split()[0], r[1]) for r in rows] == [
        ("kmeans", "fastem"), ("kmeans", "fastem (lloyd)"), ("gmm", "fastem")], proc.stdout
    for r in rows:
        assert r[2].endswith("(1.00x)"), r
        assert math.isfinite(float(r[3].split()[0])) and math.isfinite(float(r[4])), r
    saved = json.loads(out.read_text())
    assert saved["threads"] == [1, 2]
    assert [sorted(r["times_s"]) for r in saved["results"]] == [["1", "2"]] * 3


def test_thread_scaling_rejects_bad_thread_counts():
    proc = subprocess.run(
        [sys.executable, os.path.join(BENCH_DIR, "thread_scaling.py"), "--threads", "4,2"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "--threads needs increasing positive counts" in proc.stderr
