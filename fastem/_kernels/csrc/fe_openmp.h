/* OpenMP shim (cimported through fastem/_kernels/_openmp.pxd): the same
 * kernel sources compile with or without OpenMP. Without it, prange's pragmas are ignored and these stand-ins report a
 * single thread. */
#ifndef FE_OPENMP_H
#define FE_OPENMP_H
#ifdef _OPENMP
#include <omp.h>
#define FASTEM_HAVE_OPENMP 1
#else
#define FASTEM_HAVE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#endif
#ifndef FASTEM_DEBUG_BUILD
#define FASTEM_DEBUG_BUILD 0
#endif
#endif
