# OpenMP shim, usable from nogil kernels whether or not OpenMP was compiled in.
cdef extern from "csrc/fe_openmp.h" nogil:
    int FASTEM_HAVE_OPENMP
    int FASTEM_DEBUG_BUILD
    int omp_get_max_threads()
    int omp_get_thread_num()
