/* What the C helpers of fastem/_kernels/csrc/ need from the compiler, in
 * one place. Plain C99 (no Python.h): sizes and indices are ptrdiff_t.
 *
 * Two ways to compile every helper:
 *
 * - vector path (GCC and clang, FE_PORTABLE == 0): GCC/clang generic vectors
 *   (__attribute__((vector_size))), AVX2 intrinsics where the build's ISA has
 *   them (__AVX2__: the x86-64-v3/v4 builds), __builtin_prefetch,
 *   always_inline and "GCC unroll" hints;
 * - portable path (FE_PORTABLE == 1): every function that has a vector path
 *   is its scalar reference (the *_ref_f32 / *_ref_f64 function beside it),
 *   prefetch is _mm_prefetch on x86 or nothing. This is what MSVC (which has
 *   no __GNUC__) and every compiler that is neither GCC nor clang compile;
 *   setup.py's FASTEM_PORTABLE_C=1 forces it with GCC or clang
 *   (-DFASTEM_PORTABLE_C=1), so that it is built and tested here.
 *
 * Headers here include each other as "csrc/<name>.h": setup.py passes
 * fastem/_kernels as an include directory.
 *
 * Both paths do the same floating-point operations in the same order (no
 * contraction: setup.py passes -ffp-contract=off; MSVC does not contract
 * under /fp:precise), so they give the same results bit for bit: the
 * scalar references state lane by lane what the vectors compute, and
 * tests/kernels/test_csrc_references.py compares them on edge sizes.
 */
#ifndef FE_PLATFORM_H
#define FE_PLATFORM_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

#if !defined(FASTEM_PORTABLE_C)
#define FASTEM_PORTABLE_C 0
#endif
#if FASTEM_PORTABLE_C || !defined(__GNUC__)
#define FE_PORTABLE 1
#else
#define FE_PORTABLE 0
#endif

/* GCC/clang generic vectors (fe_gmm.h) and AVX2 intrinsics (fe_kmeans.h) */
#define FE_VECTOR_EXT (!FE_PORTABLE)
#if !FE_PORTABLE && defined(__AVX2__)
#define FE_AVX2 1
#else
#define FE_AVX2 0
#endif

/* C99's restrict: MSVC's C compiler spells it __restrict */
#if defined(_MSC_VER) && !defined(__clang__) && !defined(restrict)
#define restrict __restrict
#endif

/* FE_HOT: GCC's "no-trapping-math" lets it if-convert the comparisons of
 * the clamped exp (no result changes: only the guarantee on floating-point
 * exception flags goes). FE_INLINE: a small helper to inline. */
#if defined(__GNUC__) && !defined(__clang__) && !FE_PORTABLE
#define FE_HOT __attribute__((optimize("no-trapping-math")))
#define FE_INLINE static inline __attribute__((always_inline, optimize("no-trapping-math")))
#else
#define FE_HOT
#define FE_INLINE static inline
#endif

/* Prefetch hints (they change no result): FE_PREFETCH_L1 for the next rows
 * a loop reads, FE_PREFETCH_L2 for data needed a little later. */
#if !FE_PORTABLE
#define FE_PREFETCH_L1(p) __builtin_prefetch((const void *)(p), 0, 3)
#define FE_PREFETCH_L2(p) __builtin_prefetch((const void *)(p), 0, 2)
#elif defined(_M_X64) || defined(_M_IX86) || defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FE_PREFETCH_L1(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#define FE_PREFETCH_L2(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)
#else
#define FE_PREFETCH_L1(p) ((void)(p))
#define FE_PREFETCH_L2(p) ((void)(p))
#endif

/* FE_FOR_D_1_TO_16(M, A): M(A, 1) M(A, 2) ... M(A, 16). The cases of the
 * kernels that compile one loop per row width d <= 16, d a constant in each
 * (the switches of fe_lowd.h and fe_moments.h). */
#define FE_FOR_D_1_TO_16(M, A)                                               \
    M(A, 1) M(A, 2) M(A, 3) M(A, 4) M(A, 5) M(A, 6) M(A, 7) M(A, 8)          \
    M(A, 9) M(A, 10) M(A, 11) M(A, 12) M(A, 13) M(A, 14) M(A, 15) M(A, 16)

#endif
