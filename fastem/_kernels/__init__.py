"""fastem's compiled core: chunked, OpenMP-parallel passes over the data.

Kernels never validate their inputs and never allocate per-iteration Python
objects; the estimators in ``fastem`` do the checking and own the buffers.

The hot kernel modules are built twice on x86-64: for the baseline ISA and
for x86-64-v3 (AVX2, FMA). ``load_kernels`` imports the best one this CPU
runs; ``FASTEM_SIMD=baseline`` forces the baseline build.
"""
import importlib
import os
import platform

_V3_FLAGS = {"avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"}


def _cpu_has_x86_64_v3():
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        return False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return _V3_FLAGS <= set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:  # other systems: numpy's own CPU feature detection
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:
        return False
    return all(feats.get(f, False) for f in ("AVX", "AVX2", "FMA3", "F16C"))


def simd_variant():
    """Name of the kernel build in use: 'x86_64_v3' or 'baseline'."""
    forced = os.environ.get("FASTEM_SIMD", "").strip().lower()
    if forced in {"baseline", "x86_64_v3"}:
        return forced
    if forced:
        raise ValueError(
            f"FASTEM_SIMD={forced!r} is not a kernel build; use 'baseline' or "
            "'x86_64_v3', or unset it."
        )
    return "x86_64_v3" if _cpu_has_x86_64_v3() else "baseline"


def load_kernels(name):
    """Import kernel module ``name`` in the best build for this CPU."""
    variant = simd_variant()
    if variant != "baseline":
        try:
            return importlib.import_module(f"fastem._kernels.{name}_{variant}")
        except ImportError:
            pass  # built without SIMD variants (non-x86 or old compiler)
    return importlib.import_module(f"fastem._kernels.{name}")
