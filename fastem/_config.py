"""How this fastem was built and what it will use at run time."""
import ctypes
import os
import sys

import numpy as np
import scipy

# _OPENMP (yyyymm) -> OpenMP specification version
_OPENMP_VERSIONS = {
    200203: "2.0", 200505: "2.5", 200805: "3.0", 201107: "3.1", 201307: "4.0",
    201511: "4.5", 201811: "5.0", 202011: "5.1", 202111: "5.2", 202411: "6.0",
}


def _openmp_version(date):
    if not date:
        return None
    return _OPENMP_VERSIONS.get(date, f"_OPENMP={date}")


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _library_file(address):
    """File of the loaded shared library that holds ``address``; None if unknown.

    The dynamic linker answers (dladdr; GetModuleHandleExW on Windows), so
    this is the OpenMP runtime the kernels really call: in a repaired wheel,
    the copy bundled in ``fastem.libs``.
    """
    if not address:
        return None
    try:
        if sys.platform == "win32":
            kernel32 = ctypes.WinDLL("kernel32")
            handle = ctypes.c_void_p()
            from_address, unchanged_refcount = 0x4, 0x2
            kernel32.GetModuleHandleExW.argtypes = [
                ctypes.c_uint32, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
            if not kernel32.GetModuleHandleExW(from_address | unchanged_refcount,
                                               address, ctypes.byref(handle)):
                return None
            path = ctypes.create_unicode_buffer(32768)
            kernel32.GetModuleFileNameW.argtypes = [
                ctypes.c_void_p, ctypes.c_wchar_p, ctypes.c_uint32]
            return path.value if kernel32.GetModuleFileNameW(handle, path, 32768) else None
        dladdr = ctypes.CDLL(None).dladdr
    except (OSError, AttributeError):
        return None
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    info = _DlInfo()
    if dladdr(address, ctypes.byref(info)) and info.dli_fname:
        return os.path.realpath(os.fsdecode(info.dli_fname))
    return None


def build_info():
    """Facts about the compiled core and the runtime, as a dict.

    Returns
    -------
    info : dict
        ``version``; ``compiler`` (the C compiler that built the kernels);
        ``openmp`` (kernels compiled with OpenMP), ``openmp_version`` (the
        OpenMP version the compiler implements, None without OpenMP),
        ``openmp_runtime`` (file of the OpenMP runtime library the kernels
        call, None without OpenMP); ``debug_build`` (bounds checks on);
        ``portable_c`` (the C helpers built without GCC/clang vector
        extensions, as MSVC builds them: each vector kernel is its plain C
        reference, with the same results);
        ``simd_variant`` (the SIMD level the kernels run at: 'baseline',
        'x86_64_v3' or 'x86_64_v4'; the best this CPU runs, or the one
        ``FASTEM_SIMD`` forces, when it is installed; else 'baseline'),
        ``simd_variants`` (the levels installed),
        ``simd_modules`` (for every kernel module, the level of the build in
        use: all the same unless a module lacks a variant, which then runs
        its baseline build); ``openmp_max_threads``,
        ``available_cpus``, ``default_n_threads`` and the numpy/scipy/python
        versions.
    """
    from fastem import __version__
    from fastem._kernels import _openmp, built_levels, module_levels, simd_level
    from fastem._validation import available_cpus, effective_n_threads

    level = simd_level()

    return {
        "version": __version__,
        "compiler": _openmp.compiler(),
        "openmp": _openmp.openmp_enabled(),
        "openmp_version": _openmp_version(_openmp.openmp_date()),
        "openmp_runtime": _library_file(_openmp.openmp_symbol_address()),
        "debug_build": _openmp.debug_build(),
        "portable_c": _openmp.portable_c(),
        "simd_variant": level if level in built_levels() else "baseline",
        "simd_variants": built_levels(),
        "simd_modules": module_levels(),
        "openmp_max_threads": _openmp.openmp_max_threads(),
        "available_cpus": available_cpus(),
        "default_n_threads": effective_n_threads(None),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": sys.version.split()[0],
    }


def show_config(file=None):
    """Print how fastem was built (compiler, OpenMP, SIMD variants, debug or
    release) and the thread defaults.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default: ``sys.stdout``).
    """
    info = build_info()
    out = file if file is not None else sys.stdout
    if not info["openmp"]:
        print("fastem was built WITHOUT OpenMP: kernels run on one thread.", file=out)
    for key, value in info.items():
        if isinstance(value, list):
            value = ", ".join(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        print(f"{key:>20}: {value}", file=out)
