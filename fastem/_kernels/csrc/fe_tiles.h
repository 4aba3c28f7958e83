/* Nearest centres of a chunk's rows by register-blocked tiles: the dense
 * K-means passes' distances and argmin without a GEMM.
 *
 * The GEMM path (still taken by the baseline x86-64 build on CPUs without
 * FMA) computes a chunk's block D = -2 X C^T with BLAS and then scans each
 * row of D (plus ||c||^2) for its minimum: BLAS packs the chunk and the
 * centres into its own layout on every call, and the nb x k block is
 * written and read back. Here the centres are packed once per pass, in
 * tiles of W centres (one vector register: FE_TILE_W_F32 floats,
 * FE_TILE_W_F64 doubles):
 *
 *     tiles[t][j][l] = c_{tW + l}[j]      (t < nt = ceil(k / W), j < d)
 *     tcsq[tW + l]   = ||c_{tW + l}||^2, +inf for the padding tW + l >= k
 *
 * and 4 rows x TB tiles of dot products are accumulated in vector registers
 * over j (each step: TB tile loads, 4 broadcasts of x_r[j], 4 TB fused
 * multiply-adds), so nothing K-wide is written. Each finished tile gives
 * the rows' values
 *
 *     v = fma(-2, x.c, ||c||^2),  x.c = fma(x[d-1], c[d-1], ... fma(x[0], c[0], 0))
 *
 * (one rounding per step, j in order), kept per lane as a running minimum
 * with its tile index and the lane's runner-up, and reduced across lanes at
 * the end (fe_tiles_chunk):
 *
 *     labels[i] = the lowest centre index among those of smallest v,
 *     best[i]   = that v,
 *     second[i] = the smallest v of the other centres (the second order
 *                 statistic: equal to best[i] if the minimum is shared).
 *
 * The tiles are visited in blocks of at most FE_TILE_BLOCK_BYTES (every
 * row of the chunk against one block, then the next), so that a block stays
 * in L2 while the rows stream past it; the rows' running minima wait in
 * ``state`` between blocks (at E1, D = 768 and K = 1024, the 3 MB of
 * centres were otherwise read from L3 for every 4 rows).
 *
 * The three outputs depend only on each centre's v, not on the tile width,
 * the blocks or the order centres are visited in; and each v is the same
 * sequence of fused multiply-adds in every build. So every build gives the
 * same bits: the AVX-512 kernel (x86-64-v4: W = 16 / 8, 4 x 4 tiles), the
 * AVX2 one (x86-64-v3: W = 8 / 4, 4 x 2 tiles) and the plain C reference
 * fe_tiles_chunk_ref_* (fma() / fmaf(), a row and W centres at a time:
 * every other build, W = 8 / 4; the baseline x86-64 build runs it compiled
 * for the FMA instruction where the CPU has one).
 * tests/kernels/test_csrc_references.py compares them.
 *
 * Groups (the bounded passes' search, _bounded.pyx): with gt > 0 the tiles
 * form ng groups of gt consecutive tiles, need[i * ng + g] says whether
 * row i needs group g (NULL: every row every group), and each block of four
 * rows is run against the groups any of its rows needs, and only those:
 * the three outputs above are then over those groups' centres, and
 * gmin[i * ng + g] gets row i's smallest v in each group visited (+inf in
 * the others). Which groups a row is run against depends on its block of
 * four only, the same in every build.
 *
 * Rows: the chunk's nb rows are x[0], x[1], ... (d values each), or, with
 * ``index``, x[index[0]], x[index[1]], ... (the rows a bounded pass could
 * not settle by its bounds, read where they are).
 *
 * Shifted frame: with ``shift`` (d values; NULL for none) every x[j] above
 * is the row's x[j] - shift[j], rounded in the data's precision: the value
 * a copy of the chunk in that frame would hold, so the outputs are those of
 * the copy, without writing one (the subtraction is one scalar operation
 * per row and j for every TB tiles).
 *
 * Rounding: each dot product is within d unit roundoffs of sum_j |x_j c_j|
 * of the exact one, like a GEMM's: the bounded pass's error margin
 * (err_scale in _bounded.pyx) covers it. A padding centre's v is +inf and
 * never below a minimum.
 */
#ifndef FE_TILES_H
#define FE_TILES_H
#include <math.h>
#include "csrc/fe_platform.h"

#define FE_TILE_ROWS 4
#if !FE_PORTABLE && defined(__AVX512F__) && defined(__AVX512VL__)
#define FE_TILES_512 1
#define FE_TILE_W_F32 16
#define FE_TILE_W_F64 8
#else
#define FE_TILES_512 0
#define FE_TILE_W_F32 8
#define FE_TILE_W_F64 4
#endif

/* Pack k centres (k x d, row-major) and their squared norms csq into the
 * tile layout above: tiles holds ceil(k / W) * d * W values, tcsq
 * ceil(k / W) * W. */
#define FE_DEFINE_PACK_TILES(NAME, T, W)                                      \
static inline void NAME(const T *centres, const T *csq, ptrdiff_t k,         \
                        ptrdiff_t d, T *tiles, T *tcsq)                        \
{                                                                             \
    ptrdiff_t nt = (k + W - 1) / W, t, j, l;                                  \
    for (t = 0; t < nt; t++)                                                  \
        for (j = 0; j < d; j++)                                               \
            for (l = 0; l < W; l++) {                                         \
                ptrdiff_t c = t * W + l;                                      \
                tiles[(t * d + j) * W + l] = c < k ? centres[c * d + j] : (T)0; \
            }                                                                 \
    for (l = 0; l < nt * W; l++)                                              \
        tcsq[l] = l < k ? csq[l] : (T)INFINITY;                               \
}
FE_DEFINE_PACK_TILES(fe_pack_tiles_f32, float, FE_TILE_W_F32)
FE_DEFINE_PACK_TILES(fe_pack_tiles_f64, double, FE_TILE_W_F64)

/* Tiles per block of the chunk kernels: all of them while they fit in
 * FE_TILE_BLOCK_BYTES (half of a typical L2), else as many as fit, a
 * multiple of 4 (at least 4). Blocks change the order of the work, not a
 * result. */
#define FE_TILE_BLOCK_BYTES (256 * 1024)
static inline ptrdiff_t fe_tiles_per_block(ptrdiff_t nt, ptrdiff_t d, ptrdiff_t w,
                                           ptrdiff_t itemsize)
{
    ptrdiff_t fit = FE_TILE_BLOCK_BYTES / (d * w * itemsize);
    if (fit >= nt)
        return nt;
    fit -= fit % 4;
    return fit > 4 ? fit : 4;
}

/* The plain C reference: each row of the chunk against every centre of the
 * tiles in index order, the definitions above (per_block and state are not
 * needed: they change no result); with groups, the centres of the groups
 * that some row of its block of four needs (as the vector kernel visits
 * them). */
#define FE_DEFINE_TILES_REF(NAME, T, W, FMA, ATTR)                            \
ATTR static inline void NAME(const T *x, const int32_t *index, ptrdiff_t nb,  \
                             ptrdiff_t d, const T *shift,                     \
                             const T *tiles, const T *tcsq, ptrdiff_t nt,     \
                             ptrdiff_t per_block, T *state, int32_t *labels,  \
                             T *best, T *second, ptrdiff_t gt, ptrdiff_t ng,  \
                             const unsigned char *need, T *gmin)              \
{                                                                             \
    ptrdiff_t i;                                                              \
    (void)per_block;                                                          \
    (void)state;                                                              \
    for (i = 0; i < nb; i++) {                                                \
        const T *xr = x + (index != NULL ? index[i] : i) * d;                 \
        const ptrdiff_t i0 = i - i % FE_TILE_ROWS; /* the row's block */      \
        T m = (T)INFINITY, m2 = (T)INFINITY;                                  \
        int32_t arg = 0;                                                      \
        ptrdiff_t t, j, g = -1, r;                                            \
        int l, visit = 1;                                                     \
        if (gt > 0)                                                           \
            for (j = 0; j < ng; j++)                                          \
                gmin[i * ng + j] = (T)INFINITY;                               \
        for (t = 0; t < nt; t++) {                                            \
            T acc[W] = {0};                                                   \
            if (gt > 0 && t / gt != g) { /* a new group: does the block need it? */ \
                g = t / gt;                                                   \
                visit = need == NULL;                                         \
                for (r = i0; r < i0 + FE_TILE_ROWS && r < nb && !visit; r++)  \
                    visit = need[r * ng + g] != 0;                            \
            }                                                                 \
            if (!visit)                                                       \
                continue;                                                     \
            for (j = 0; j < d; j++) { /* the W centres' chains side by side */ \
                const T xj = shift != NULL ? xr[j] - shift[j] : xr[j];        \
                for (l = 0; l < W; l++)                                       \
                    acc[l] = FMA(xj, tiles[(t * d + j) * W + l], acc[l]);     \
            }                                                                 \
            for (l = 0; l < W; l++) {                                         \
                T v = FMA((T)-2, acc[l], tcsq[t * W + l]);                    \
                if (gt > 0 && v < gmin[i * ng + g])                           \
                    gmin[i * ng + g] = v;                                     \
                if (v < m) {                                                  \
                    m2 = m;                                                   \
                    m = v;                                                    \
                    arg = (int32_t)(t * W + l);                               \
                } else if (v < m2) {                                          \
                    m2 = v;                                                   \
                }                                                             \
            }                                                                 \
        }                                                                     \
        labels[i] = arg;                                                      \
        best[i] = m;                                                          \
        if (second != NULL)                                                   \
            second[i] = m2;                                                   \
    }                                                                         \
}
FE_DEFINE_TILES_REF(fe_tiles_chunk_ref_f32, float, FE_TILE_W_F32, fmaf, )
FE_DEFINE_TILES_REF(fe_tiles_chunk_ref_f64, double, FE_TILE_W_F64, fma, )

/* One value v per row for one given centre, the v the tiles compute for it:
 * out[t] = fma(-2, x.c, csq[a]) for row r = index[t] and its centre
 * a = near[r] (centres row-major, k x d), x.c the same chain of fused
 * multiply-adds in order of j, x[j] - shift[j] rounded as there. For the
 * rows whose nearest centre a bounded pass knows without a full search:
 * their v is then the tiles' best bit for bit. Each chain waits on its own
 * previous step, so eight rows' chains go side by side (two fused
 * multiply-adds per cycle at a latency of four). */
#define FE_DEFINE_TILE_VALUES(NAME, T, FMA, ATTR)                             \
ATTR static inline void NAME(const T *x, const int32_t *index, ptrdiff_t n,   \
                             ptrdiff_t d, const T *shift, const T *centres,   \
                             const T *csq, const int32_t *near, T *out)       \
{                                                                             \
    enum { R = 8 };                                                           \
    for (ptrdiff_t t0 = 0; t0 < n; t0 += R) {                                 \
        const int r_n = n - t0 < R ? (int)(n - t0) : R;                       \
        const T *xr[R], *cr[R];                                               \
        T s[R];                                                               \
        for (int r = 0; r < R; r++) { /* a short group repeats its last row */ \
            const ptrdiff_t i = index[t0 + (r < r_n ? r : r_n - 1)];          \
            xr[r] = x + i * d;                                                \
            cr[r] = centres + (ptrdiff_t)near[i] * d;                         \
            s[r] = 0;                                                         \
        }                                                                     \
        if (shift != NULL) {                                                  \
            for (ptrdiff_t j = 0; j < d; j++)                                 \
                for (int r = 0; r < R; r++)                                   \
                    s[r] = FMA(xr[r][j] - shift[j], cr[r][j], s[r]);          \
        } else {                                                              \
            for (ptrdiff_t j = 0; j < d; j++)                                 \
                for (int r = 0; r < R; r++)                                   \
                    s[r] = FMA(xr[r][j], cr[r][j], s[r]);                     \
        }                                                                     \
        for (int r = 0; r < r_n; r++)                                         \
            out[t0 + r] = FMA((T)-2, s[r], csq[near[index[t0 + r]]]);         \
    }                                                                         \
}

#if !FE_PORTABLE && defined(__x86_64__) && !defined(__FMA__)
/* The baseline x86-64 build: fma() is a library call there (no FMA in the
 * ISA), 50-100 times slower than the instruction. The reference is compiled
 * for the instruction instead, and the passes use the tiles only where the
 * CPU has it (every CPU that runs the other builds); elsewhere they take
 * the GEMM path, as no other build runs there to compare with. */
FE_DEFINE_TILES_REF(fe_tiles_chunk_hwfma_f32, float, FE_TILE_W_F32, fmaf,
                    __attribute__((target("fma"))))
FE_DEFINE_TILES_REF(fe_tiles_chunk_hwfma_f64, double, FE_TILE_W_F64, fma,
                    __attribute__((target("fma"))))
FE_DEFINE_TILE_VALUES(fe_tile_values_hwfma_f32, float, fmaf, __attribute__((target("fma"))))
FE_DEFINE_TILE_VALUES(fe_tile_values_hwfma_f64, double, fma, __attribute__((target("fma"))))
#define fe_tiles_chunk_f32 fe_tiles_chunk_hwfma_f32
#define fe_tiles_chunk_f64 fe_tiles_chunk_hwfma_f64
#define fe_tile_values_f32 fe_tile_values_hwfma_f32
#define fe_tile_values_f64 fe_tile_values_hwfma_f64

static inline int fe_tiles_enabled(void)
{
    return __builtin_cpu_supports("fma") != 0;
}

#else
/* Every other build: the tiles, in vectors where the build's ISA has them. */
static inline int fe_tiles_enabled(void)
{
    return 1;
}
FE_DEFINE_TILE_VALUES(fe_tile_values_f32, float, fmaf, )
FE_DEFINE_TILE_VALUES(fe_tile_values_f64, double, fma, )

#if FE_TILES_512 || (FE_AVX2 && defined(__FMA__))
#include <immintrin.h>
#include "csrc/fe_tiles_isa.h"

/* The vector kernel, written once (fe_tiles_impl.h) over the names of
 * fe_tiles_isa.h, for floats and doubles. */
#define FE_TL_SUFFIX(base) base##_f32
#include "csrc/fe_tiles_impl.h"
#define FE_TL_SUFFIX(base) base##_f64
#include "csrc/fe_tiles_impl.h"

#else
#define fe_tiles_chunk_f32 fe_tiles_chunk_ref_f32
#define fe_tiles_chunk_f64 fe_tiles_chunk_ref_f64
#endif
#endif

#endif
