/* The C helpers of fastem/_kernels/csrc/ as one translation unit, for
 * run.sh's MSVC-mode syntax check. MSVC has no __GNUC__, so the headers must
 * take their portable path (FE_PORTABLE == 1: each vector kernel is its
 * scalar reference); this file fails to compile otherwise. */
#include "csrc/fe_platform.h"
#if !FE_PORTABLE
#error "csrc/fe_platform.h did not take the portable path (FE_PORTABLE == 0)"
#endif
#include "csrc/fe_openmp.h"
#include "csrc/fe_kmeans.h"
#include "csrc/fe_gmm.h"
