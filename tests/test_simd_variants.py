"""Every SIMD build of the kernels gives the default build's results bit for bit.

The kernel modules are built for the baseline ISA and for each x86-64 level
the compiler supports (fastem/_kernels/__init__.py); the build flags forbid
floating-point contraction and the vector loops keep the plain C order of
operations, so the build that runs must not change any result. Each level
this CPU runs is forced with FASTEM_SIMD in a fresh interpreter (the level is
chosen at import), which fits KMeans (Lloyd and bounded passes), greedy
k-means++ and GaussianMixture (every covariance type, D <= 16 and D > 16)
on float32 and float64 data, with sample weights, and KMeans and k-means++
on a sparse (CSR) matrix; the arrays it saves must
equal, bit for bit, those of an interpreter left at the default level.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastem
from fastem._kernels import KERNEL_MODULES, built_levels, cpu_levels

# the children import the fastem these tests import (source tree or installed)
FASTEM_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastem.__file__)))

# Runs in the child: fits on fixed data and saves every fitted array.
# N = 1531 rows is not a multiple of any chunk size; D = 7 and 19 are not
# multiples of any vector width, and take the D <= 16 and D > 16 paths.
CHILD = r"""
import sys
import warnings
import numpy as np
import fastem

warnings.simplefilter("ignore")  # max_iter is small on purpose

out = {"level": np.array(fastem.build_info()["simd_variant"])}
rng = np.random.default_rng(0)
for D in (7, 19):
    centres = rng.normal(scale=4.0, size=(4, D))
    X64 = centres[rng.integers(0, 4, 1531)] + rng.normal(size=(1531, D)) + 10.0
    w64 = rng.uniform(0.5, 2.0, 1531)
    for dtype in (np.float32, np.float64):
        X, w = X64.astype(dtype), w64.astype(dtype)
        tag = f"{D}-{np.dtype(dtype).name}"
        seeds, idx = fastem.kmeans_plusplus(X, 6, sample_weight=w, random_state=1,
                                            n_threads=2)
        out[f"kpp-{tag}"], out[f"kpp-idx-{tag}"] = seeds, idx
        for algorithm in ("lloyd", "elkan"):
            km = fastem.KMeans(6, n_init=1, algorithm=algorithm, random_state=2,
                               n_threads=2, tol=0.0, max_iter=15).fit(X, sample_weight=w)
            out[f"km-{algorithm}-{tag}"] = km.cluster_centers_
            out[f"km-{algorithm}-labels-{tag}"] = km.labels_
            out[f"km-{algorithm}-inertia-{tag}"] = np.array(km.inertia_)
        for cov in ("full", "tied", "diag", "spherical"):
            gm = fastem.GaussianMixture(3, covariance_type=cov, random_state=3,
                                        max_iter=8, tol=0.0, n_threads=2).fit(X)
            out[f"gm-{cov}-means-{tag}"] = gm.means_
            out[f"gm-{cov}-cov-{tag}"] = gm.covariances_
            out[f"gm-{cov}-weights-{tag}"] = gm.weights_
            out[f"gm-{cov}-bound-{tag}"] = np.array(gm.lower_bound_)
            out[f"gm-{cov}-proba-{tag}"] = gm.predict_proba(X[:300])
# sparse (CSR) K-means and k-means++: about 30 % of the entries kept
import scipy.sparse as sp
dense = rng.normal(size=(1531, 23)) * (rng.uniform(size=(1531, 23)) < 0.3)
for dtype in (np.float32, np.float64):
    Xs = sp.csr_matrix(dense.astype(dtype))
    tag = f"sparse-{np.dtype(dtype).name}"
    out[f"kpp-{tag}"] = fastem.kmeans_plusplus(Xs, 6, random_state=1, n_threads=2)[0]
    km = fastem.KMeans(6, n_init=1, random_state=2, n_threads=2, tol=0.0,
                       max_iter=15).fit(Xs)
    out[f"km-{tag}"], out[f"km-labels-{tag}"] = km.cluster_centers_, km.labels_
np.savez(sys.argv[1], **out)
"""


def _fit_in_child(tmp_path, level):
    env = {k: v for k, v in os.environ.items() if k != "FASTEM_SIMD"}
    if level is not None:
        env["FASTEM_SIMD"] = level
    env["PYTHONPATH"] = FASTEM_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    path = tmp_path / f"{level or 'default'}.npz"
    subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, check=True,
                   cwd=tmp_path, timeout=300)
    with np.load(path) as data:
        return dict(data)


def _levels():
    """The forced levels to compare: each one this CPU runs that is built."""
    return [lvl for lvl in cpu_levels() if lvl in built_levels()]


@pytest.mark.skipif(len(_levels()) < 2, reason="one kernel build only: nothing to compare")
def test_every_simd_level_gives_the_default_results_bit_for_bit(tmp_path):
    default = _fit_in_child(tmp_path, None)
    assert str(default["level"]) == _levels()[-1]
    for level in _levels():
        forced = _fit_in_child(tmp_path, level)
        assert str(forced["level"]) == level
        assert forced.keys() == default.keys()
        for key, value in default.items():
            if key == "level":
                continue
            got = forced[key]
            assert got.dtype == value.dtype, (level, key)
            # bit for bit: the same bytes, not merely equal values
            assert got.tobytes() == value.tobytes(), (
                f"FASTEM_SIMD={level}: {key} differs from the default build "
                f"(max abs difference {np.max(np.abs(got - value))})")


def test_every_kernel_module_has_every_built_level():
    """A level is built for all kernel modules or for none (setup.py builds
    every module but _openmp per level): FASTEM_SIMD then forces them all."""
    levels = built_levels()
    for name in KERNEL_MODULES:
        assert built_levels(name) == levels, name
