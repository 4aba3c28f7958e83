"""show_config / build_info: they describe the installed build truthfully."""
import io
import os
import re

import pytest

import fastem
from fastem._kernels import _openmp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_build_info_keys_and_types():
    info = fastem.build_info()
    assert info["version"] == fastem.__version__
    assert isinstance(info["compiler"], str) and info["compiler"] not in {"", "unknown"}
    assert isinstance(info["openmp"], bool)
    assert isinstance(info["debug_build"], bool)
    assert isinstance(info["gmm_target_clones"], bool)
    assert info["simd_variants"][0] == "baseline"
    assert info["simd_variant"] in info["simd_variants"]
    assert info["openmp_max_threads"] >= 1
    assert info["default_n_threads"] >= 1


def test_openmp_runtime_is_reported():
    info = fastem.build_info()
    if not info["openmp"]:
        assert info["openmp_version"] is None
        assert info["openmp_runtime"] is None
        assert info["openmp_max_threads"] == 1
        return
    assert re.fullmatch(r"\d\.\d|_OPENMP=\d+", info["openmp_version"])
    runtime = info["openmp_runtime"]
    assert runtime and os.path.isfile(runtime)
    assert re.search(r"(gomp|omp|iomp5|vcomp)", os.path.basename(runtime), re.IGNORECASE)


def test_repaired_wheel_uses_its_bundled_openmp_runtime():
    """A wheel repaired by auditwheel/delocate/delvewheel carries its own
    OpenMP runtime next to the package; the kernels must call that copy."""
    site = os.path.dirname(os.path.dirname(os.path.abspath(fastem.__file__)))
    bundled = [d for d in ("fastem.libs", os.path.join("fastem", ".dylibs")) if
               os.path.isdir(os.path.join(site, d))]
    if not bundled:
        pytest.skip("not a repaired wheel: nothing bundled")
    runtime = os.path.realpath(fastem.build_info()["openmp_runtime"])
    assert runtime.startswith(os.path.realpath(os.path.join(site, bundled[0])) + os.sep)


def test_simd_variant_in_use_is_the_loaded_kernel(monkeypatch):
    from fastem._kernels import load_kernels

    module = load_kernels("_kmeans").__name__
    variant = fastem.build_info()["simd_variant"]
    assert module == ("fastem._kernels._kmeans" if variant == "baseline"
                      else f"fastem._kernels._kmeans_{variant}")
    monkeypatch.setenv("FASTEM_SIMD", "baseline")
    assert fastem.build_info()["simd_variant"] == "baseline"


def test_show_config_prints_every_fact():
    out = io.StringIO()
    fastem.show_config(file=out)
    text = out.getvalue()
    for key in fastem.build_info():
        assert re.search(rf"^\s*{key}: ", text, re.MULTILINE), key
    assert ("WITHOUT OpenMP" in text) == (not fastem.build_info()["openmp"])


def test_gmm_clone_condition_matches_the_header():
    """_openmp.pyx reports whether _gmm_simd.h took its target_clones branch
    by repeating the header's condition; the two must stay the same."""
    header = os.path.join(ROOT, "fastem", "_kernels", "_gmm_simd.h")
    pyx = os.path.join(ROOT, "fastem", "_kernels", "_openmp.pyx")
    if not (os.path.exists(header) and os.path.exists(pyx)):
        pytest.skip("kernel sources not next to the tests")

    def condition(text, before):
        # the '#if' (continued lines joined) just before the line holding `before`
        lines = text.replace("\\\\\n", "\\\n").split("\n")
        end = next(i for i, line in enumerate(lines) if before in line)
        start = max(i for i in range(end) if lines[i].lstrip().startswith("#if "))
        joined = " ".join(line.strip().rstrip("\\") for line in lines[start:end])
        return " ".join(joined.split())

    with open(header) as f:
        from_header = condition(f.read(), "target_clones(")
    with open(pyx) as f:
        from_pyx = condition(f.read(), "#define FASTEM_GMM_TARGET_CLONES 1")
    assert from_header == from_pyx
    assert "FASTEM_NO_TARGET_CLONES" in from_header


def test_gmm_target_clones_only_for_gcc():
    if _openmp.gmm_target_clones():
        assert fastem.build_info()["compiler"].startswith("gcc ")
