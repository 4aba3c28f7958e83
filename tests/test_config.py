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
    assert isinstance(info["portable_c"], bool)
    assert info["simd_variants"][0] == "baseline"
    assert info["simd_variant"] in ("baseline", "x86_64_v3", "x86_64_v4")
    assert set(info["simd_modules"]) == {"_lloyd", "_bounded", "_kmeanspp", "_gaussian", "_stats", "_sparse"}
    for level in info["simd_modules"].values():
        assert level in (info["simd_variant"], "baseline")
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


def test_simd_level_in_use_is_the_loaded_kernel(monkeypatch):
    """Every kernel module is the build of the reported level (its baseline
    build where that level was not built), and FASTEM_SIMD forces it."""
    from fastem._kernels import KERNEL_MODULES, built_levels, cpu_levels, load_kernels

    info = fastem.build_info()
    level = info["simd_variant"]
    best = cpu_levels()[-1]
    assert level == (best if best in built_levels() else "baseline")
    for name in KERNEL_MODULES:
        module = load_kernels(name).__name__
        expect = level if level in built_levels(name) else "baseline"
        assert info["simd_modules"][name] == expect
        assert module == (f"fastem._kernels.{name}" if expect == "baseline"
                          else f"fastem._kernels.{name}_{expect}")
    monkeypatch.setenv("FASTEM_SIMD", "baseline")
    assert fastem.build_info()["simd_variant"] == "baseline"
    assert set(fastem.build_info()["simd_modules"].values()) == {"baseline"}


def test_simd_level_forcing_errors(monkeypatch):
    """A name that is no level, or a level this CPU cannot run, is refused
    with a message naming what to use instead."""
    from fastem._kernels import LEVELS, cpu_levels, simd_level

    monkeypatch.setenv("FASTEM_SIMD", "avx9")
    with pytest.raises(ValueError, match="not a SIMD level.*baseline"):
        simd_level()
    missing = [lvl for lvl in LEVELS if lvl not in cpu_levels()]
    if missing:
        monkeypatch.setenv("FASTEM_SIMD", missing[-1])
        with pytest.raises(ValueError, match="this CPU cannot run"):
            simd_level()


def test_show_config_prints_every_fact():
    out = io.StringIO()
    fastem.show_config(file=out)
    text = out.getvalue()
    for key in fastem.build_info():
        assert re.search(rf"^\s*{key}: ", text, re.MULTILINE), key
    assert ("WITHOUT OpenMP" in text) == (not fastem.build_info()["openmp"])
