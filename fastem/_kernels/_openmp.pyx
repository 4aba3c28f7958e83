"""Build facts about the compiled core: OpenMP, compiler, debug mode."""
from fastem._kernels._openmp cimport (
    FASTEM_HAVE_OPENMP, FASTEM_DEBUG_BUILD, omp_get_max_threads)

cdef extern from *:
    """
    #include "csrc/fe_openmp.h"
    #include "csrc/fe_platform.h"
    /* The compiler that compiled this module, from its predefined macros. */
    #define FASTEM_STR_(x) #x
    #define FASTEM_STR(x) FASTEM_STR_(x)
    #if defined(__apple_build_version__)
    #define FASTEM_COMPILER "Apple clang " __clang_version__
    #elif defined(__clang__)
    #define FASTEM_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define FASTEM_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_FULL_VER)
    #define FASTEM_COMPILER "msvc " FASTEM_STR(_MSC_FULL_VER)
    #else
    #define FASTEM_COMPILER "unknown"
    #endif

    /* The OpenMP version the compiler implements (yyyymm), 0 without OpenMP. */
    #ifdef _OPENMP
    #define FASTEM_OPENMP_DATE _OPENMP
    #else
    #define FASTEM_OPENMP_DATE 0
    #endif

    /* The address of the OpenMP runtime's omp_get_max_threads as this module
       resolved it (fastem._config finds the library file that holds it);
       0 without OpenMP. */
    #include <stdint.h>
    #ifdef _OPENMP
    static uintptr_t fastem_openmp_symbol(void) { return (uintptr_t)&omp_get_max_threads; }
    #else
    static uintptr_t fastem_openmp_symbol(void) { return 0; }
    #endif
    """
    const char *FASTEM_COMPILER
    int FASTEM_OPENMP_DATE
    int FE_PORTABLE
    size_t fastem_openmp_symbol()


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(FASTEM_HAVE_OPENMP)


def debug_build():
    """True for a debug build (bounds checks on)."""
    return bool(FASTEM_DEBUG_BUILD)


def portable_c():
    """True when the C helpers were compiled without vector extensions
    (MSVC, or FASTEM_PORTABLE_C=1): every vector kernel is its scalar
    reference (see csrc/fe_platform.h)."""
    return bool(FE_PORTABLE)


def openmp_max_threads():
    """``omp_get_max_threads()``: honours OMP_NUM_THREADS; 1 without OpenMP."""
    return omp_get_max_threads()


def compiler():
    """The C compiler and version that compiled the kernels, e.g. 'gcc 12.2.0'."""
    return FASTEM_COMPILER.decode("utf-8", "replace")


def openmp_date():
    """The compiler's ``_OPENMP`` (OpenMP version as yyyymm); 0 without OpenMP."""
    return FASTEM_OPENMP_DATE


def openmp_symbol_address():
    """Address of ``omp_get_max_threads`` in the OpenMP runtime the kernels
    call (0 without OpenMP): ``fastem.build_info`` maps it to the library file."""
    return fastem_openmp_symbol()
