"""How this fastem was built and what it will use at run time."""
import sys

import numpy as np
import scipy


def build_info():
    """Facts about the compiled core and the runtime, as a dict.

    Returns
    -------
    info : dict
        ``version``, ``openmp`` (kernels compiled with OpenMP), ``debug_build``
        (bounds checks on), ``simd_variant`` (kernel build in use:
        'x86_64_v3' or 'baseline'), ``openmp_max_threads``, ``available_cpus``,
        ``default_n_threads`` and the numpy/scipy/python versions.
    """
    from fastem import __version__
    from fastem._kernels import simd_variant
    from fastem._kernels._openmp import debug_build, openmp_enabled, openmp_max_threads
    from fastem._validation import available_cpus, effective_n_threads

    return {
        "version": __version__,
        "openmp": openmp_enabled(),
        "debug_build": debug_build(),
        "simd_variant": simd_variant(),
        "openmp_max_threads": openmp_max_threads(),
        "available_cpus": available_cpus(),
        "default_n_threads": effective_n_threads(None),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": sys.version.split()[0],
    }


def show_config(file=None):
    """Print how fastem was built: OpenMP or serial, debug or release, threads.

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
        print(f"{key:>20}: {value}", file=out)
