"""Build facts about the compiled core: OpenMP support and debug mode."""
from fastem._kernels._openmp cimport (
    FASTEM_HAVE_OPENMP, FASTEM_DEBUG_BUILD, omp_get_max_threads)


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(FASTEM_HAVE_OPENMP)


def debug_build():
    """True for a debug build (bounds checks on)."""
    return bool(FASTEM_DEBUG_BUILD)


def openmp_max_threads():
    """``omp_get_max_threads()``: honours OMP_NUM_THREADS; 1 without OpenMP."""
    return omp_get_max_threads()
