#!/usr/bin/env python
"""Thread scaling: compare.py's workloads at 1, 2, 4, ... threads.

For each thread count T, runs each workload in a fresh compare.py worker with
T threads for every library (OMP/OPENBLAS/MKL_NUM_THREADS and fastem's
``n_threads``), the data generated in that worker, best of ``--repeat`` fits
from the same initial parameters, and prints one table per workload: the time
at each T, the speedup over the first T and the parallel efficiency

    efficiency(T) = (time(T_first) / time(T)) / (T / T_first)

Defaults: issue 15's K1 (``kmeans``), K3 (``kmeans-k3``) and G1 full
(``gmm:cov=full``); fastem's default and its plain passes
(``fastem-lloyd``), and the floors measured in the same workers (BLAS's
GEMM at T threads), whose scaling is what the hardware gives a dense pass.

    PYTHONPATH=$PWD python benchmarks/thread_scaling.py [WORKLOAD[:key=value,...] ...]
        [--threads 1,2,4,8,16] [--libraries fastem,fastem-lloyd,sklearn-lloyd]
        [--repeat 3] [--json PATH]

Workload names and options are compare.py's (``python benchmarks/compare.py
--help``). Thread counts above the available cores are run too (the table's
header gives the core count): oversubscribed threads measure contention,
not scaling.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

DEFAULT_WORKLOADS = ["kmeans", "kmeans-k3", "gmm:cov=full"]
DEFAULT_LIBRARIES = "fastem,fastem-lloyd,floor-gemm,floor-peak"


def scaling_rows(results, threads):
    """{(description, library): {T: time}} as table rows: per (workload,
    library) the time at each T, the speedup over the first T at which it ran
    and the efficiency at the last T at which it ran ('-': no time)."""
    rows = []
    for (description, library), times in results.items():
        ran = [t for t in threads if times.get(t) is not None]
        first = ran[0] if ran else None
        cells = []
        for t in threads:
            seconds = times.get(t)
            if seconds is None:  # failed, not installed or not run
                cells.append("-")
            else:
                cells.append(f"{seconds:.3f} ({times[first] / seconds:.2f}x)")
        last = ran[-1] if ran else None
        efficiency = (times[first] / times[last]) / (last / first) if ran else None
        rows.append((description, library, cells, efficiency))
    return rows


def markdown(rows, threads):
    lines = ["| workload | library | " + " | ".join(f"{t} thr (s, speedup)" for t in threads)
             + f" | efficiency at {threads[-1]} |",
             "|---" * (len(threads) + 3) + "|"]
    for description, library, cells, efficiency in rows:
        eff = "" if efficiency is None else f"{efficiency:.2f}"
        lines.append(f"| {description} | {compare.LABELS.get(library, library)} | "
                     + " | ".join(cells) + f" | {eff} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workloads", nargs="*", metavar="WORKLOAD[:key=value,...]",
                   help=f"compare.py workloads (default: {' '.join(DEFAULT_WORKLOADS)})")
    p.add_argument("--threads", default=None,
                   help="comma-separated thread counts (default: 1, 2, 4, ... up to "
                        "the available cores, and that count)")
    p.add_argument("--libraries", default=DEFAULT_LIBRARIES,
                   help=f"comma-separated compare.py libraries (default {DEFAULT_LIBRARIES}; "
                        "each workload runs those it supports)")
    p.add_argument("--repeat", type=int, default=3, help="timed fits per library (best)")
    p.add_argument("--tiny", action="store_true", help="compare.py's toy sizes")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per worker")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    a = p.parse_args(argv)

    cores = compare._import_data_module().available_cpus()
    if a.threads:
        threads = [int(t) for t in a.threads.split(",")]
    else:
        threads = [t for t in (1, 2, 4, 8, 16, 32, 64, 128) if t < cores] + [cores]
    if not threads or min(threads) < 1 or threads != sorted(set(threads)):
        raise SystemExit("--threads needs increasing positive counts, e.g. 1,2,4")
    specs = [compare.parse_workload(w, tiny=a.tiny)
             for w in compare.expand_workloads(a.workloads or DEFAULT_WORKLOADS)]
    if any(s["kind"] in ("kmeans-sweep", "gmm-memory") or s["kind"].startswith("dask-")
           for s in specs):
        raise SystemExit("thread_scaling.py times the in-memory fit workloads "
                         "(not kmeans-sweep, gmm-memory or the dask ones)")
    wanted = a.libraries.split(",")

    env, err = compare.run_worker({"what": "environment", "threads": threads[-1]},
                                  threads[-1], 600)
    if err:
        raise SystemExit(f"cannot start a worker: {err}")
    command = " ".join(["python", os.path.relpath(__file__)] + list(argv or sys.argv[1:]))
    print(compare.markdown_environment(env, command))
    print(f"- thread counts: {', '.join(map(str, threads))} on {cores} available cores; "
          f"best of {a.repeat}", flush=True)

    results, failed = {}, []
    for spec in specs:
        libs = [lib for lib in compare.LIBRARIES[spec["kind"]]
                if lib in wanted and lib not in spec.get("skip", ())]
        for t in threads:
            print(f"== {compare.describe(spec)}, {t} threads", file=sys.stderr, flush=True)
            res, err = compare.run_worker({"what": "fit", "spec": spec, "threads": t,
                                           "repeat": a.repeat, "libraries": libs},
                                          t, a.timeout)
            for row in res or []:
                times = results.setdefault((row["description"], row["library"]), {})
                times[t] = row["time_s"] if row["status"] == "ok" else None
                if row["status"] == "error" and row["library"] in compare.REQUIRED:
                    failed.append(f"{row['description']} {row['library']} at {t}: "
                                  f"{row['note']}")
            if err:
                failed.append(f"{compare.describe(spec)} at {t} threads: {err}")

    rows = scaling_rows(results, threads)
    print()
    print(markdown(rows, threads))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": command, "environment": env, "threads": threads,
                       "repeat": a.repeat, "results": [
                           {"workload": d, "library": lib, "times_s": results[(d, lib)]}
                           for d, lib, _, _ in rows]}, f, indent=1)
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
