"""fastem's compiled core: chunked, OpenMP-parallel passes over the data.

Every kernel entry point checks the shapes, counts and state it relies on
before compiled code (built without bounds checks) touches memory
(``require`` in ``_common.pxd``), and raises ValueError naming itself; the
estimators in ``fastem`` check the user's input first, with messages that
say what to do. Kernels never allocate per-iteration Python objects.

SIMD dispatch, one scheme for every kernel module: on x86-64 each module
(all but ``_openmp``) is built for the baseline ISA and once more for each
level of ``LEVELS`` that the compiler supports (setup.py's
``SIMD_VARIANTS``), as ``<module>_<level>``. ``load_kernels(name)`` imports
the build of the level ``simd_level()`` names: the best level this CPU runs,
or the one the environment variable ``FASTEM_SIMD`` forces (``baseline`` or
a level name). Every build is compiled without floating-point contraction
and its vector loops keep the baseline's order of operations, so all of
them give the same results bit for bit (tests/test_simd_variants.py).
"""
import importlib
import importlib.util
import os
import platform

# x86-64 levels, lowest first, with the /proc/cpuinfo flags each one needs
# (x86-64-v4 includes everything v3 needs).
_V3_FLAGS = frozenset({"avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"})
_V4_FLAGS = _V3_FLAGS | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
LEVELS = {"x86_64_v3": _V3_FLAGS, "x86_64_v4": _V4_FLAGS}

# numpy's names for the same features, where /proc/cpuinfo does not exist
_NUMPY_FEATURES = {
    "x86_64_v3": ("AVX", "AVX2", "FMA3", "F16C"),
    "x86_64_v4": ("AVX", "AVX2", "FMA3", "F16C", "AVX512F", "AVX512BW", "AVX512CD",
                  "AVX512DQ", "AVX512VL"),
}


def _cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo; None where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def cpu_levels():
    """The SIMD levels this CPU runs, lowest first, always starting with 'baseline'."""
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        return ["baseline"]
    flags = _cpu_flags()
    if flags is not None:
        return ["baseline"] + [lvl for lvl, need in LEVELS.items() if need <= flags]
    try:  # other systems: numpy's own CPU feature detection
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:
        return ["baseline"]
    return ["baseline"] + [lvl for lvl, names in _NUMPY_FEATURES.items()
                           if all(feats.get(n, False) for n in names)]


def built_levels(name="_lloyd"):
    """The builds of kernel module ``name`` installed, 'baseline' first."""
    return ["baseline"] + [lvl for lvl in LEVELS
                           if importlib.util.find_spec(f"fastem._kernels.{name}_{lvl}")]


def simd_level():
    """The SIMD level the kernels run at: 'baseline', 'x86_64_v3' or 'x86_64_v4'.

    ``FASTEM_SIMD`` forces a level (an error if this CPU cannot run it);
    otherwise the best level the CPU runs. A module built without that level
    (no SIMD variants, or an older compiler) falls back to its baseline
    build: ``module_levels`` tells which build each module uses.
    """
    forced = os.environ.get("FASTEM_SIMD", "").strip().lower()
    levels = cpu_levels()
    if not forced:
        return levels[-1]
    if forced != "baseline" and forced not in LEVELS:
        raise ValueError(
            f"FASTEM_SIMD={forced!r} is not a SIMD level; use one of "
            f"{['baseline', *LEVELS]}, or unset it.")
    if forced not in levels:
        raise ValueError(
            f"FASTEM_SIMD={forced!r}: this CPU cannot run that level (it runs "
            f"{levels}); use one of those, or unset it.")
    return forced


def load_kernels(name):
    """Import kernel module ``name`` in the build for ``simd_level()``."""
    level = simd_level()
    if level != "baseline":
        try:
            return importlib.import_module(f"fastem._kernels.{name}_{level}")
        except ImportError:
            pass  # built without that variant (non-x86, old compiler, NO_SIMD_VARIANTS)
    return importlib.import_module(f"fastem._kernels.{name}")


# The kernel modules the estimators load through load_kernels.
KERNEL_MODULES = ("_lloyd", "_bounded", "_kmeanspp", "_gaussian", "_stats", "_sparse")


def module_levels():
    """{kernel module: the SIMD level of the build ``load_kernels`` imports}."""
    out = {}
    for name in KERNEL_MODULES:
        loaded = load_kernels(name).__name__.rsplit(".", 1)[1]
        out[name] = loaded[len(name) + 1:] if loaded != name else "baseline"
    return out
