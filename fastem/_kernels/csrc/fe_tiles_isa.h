/* The vector operations fe_tiles_impl.h is written in, per build and type
 * (suffix _f32 / _f64): a vector of W values (fe_tv), a comparison mask
 * (fe_tm), a vector of tile indices (fe_ti), the tiles per block (fe_tb),
 * and the reductions across lanes: of a row's running minimum (see
 * fe_tiles.h for what it returns) and the smallest lane (fe_tv_hmin). Included by fe_tiles.h only. */
typedef float fe_t_f32;
typedef double fe_t_f64;

#if FE_TILES_512
/* x86-64-v4: 512-bit vectors, mask registers, 4 x 4 tiles (16 accumulators) */
enum { fe_tb_f32 = 4, fe_tb_f64 = 4 };
typedef __m512 fe_tv_f32;
typedef __m512d fe_tv_f64;
typedef __mmask16 fe_tm_f32;
typedef __mmask8 fe_tm_f64;
typedef __m512i fe_ti_f32;
typedef __m256i fe_ti_f64;
#define fe_tv_zero_f32 _mm512_setzero_ps
#define fe_tv_zero_f64 _mm512_setzero_pd
#define fe_tv_set1_f32 _mm512_set1_ps
#define fe_tv_set1_f64 _mm512_set1_pd
#define fe_tv_load_f32 _mm512_loadu_ps
#define fe_tv_load_f64 _mm512_loadu_pd
#define fe_tv_fma_f32 _mm512_fmadd_ps
#define fe_tv_fma_f64 _mm512_fmadd_pd
#define fe_tv_min_f32 _mm512_min_ps
#define fe_tv_min_f64 _mm512_min_pd
#define fe_tv_max_f32 _mm512_max_ps
#define fe_tv_max_f64 _mm512_max_pd
#define fe_tv_hmin_f32 _mm512_reduce_min_ps
#define fe_tv_hmin_f64 _mm512_reduce_min_pd
#define fe_tv_lt_f32(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)
#define fe_tv_lt_f64(a, b) _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ)
#define fe_tv_mov_f32 _mm512_mask_mov_ps
#define fe_tv_mov_f64 _mm512_mask_mov_pd
#define fe_ti_set1_f32(t) _mm512_set1_epi32(t)
#define fe_ti_set1_f64(t) _mm256_set1_epi32(t)
#define fe_ti_mov_f32 _mm512_mask_mov_epi32
#define fe_ti_mov_f64 _mm256_mask_mov_epi32

/* In vector registers: a scalar scan of the lanes costs as much as the
 * distances themselves at k = 64, d = 32. */
static inline void fe_tiles_reduce_f32(__m512 mn, __m512i ti, __m512 mn2, int with_second,
                                       int32_t *label, float *best, float *second)
{
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                            14, 15);
    __m512i cid = _mm512_add_epi32(_mm512_slli_epi32(ti, 4), lanes);
    float m = _mm512_reduce_min_ps(mn);
    __mmask16 eq = _mm512_cmp_ps_mask(mn, _mm512_set1_ps(m), _CMP_EQ_OQ);
    int32_t arg = eq ? _mm512_mask_reduce_min_epi32(eq, cid) : 0;
    *label = arg;
    *best = m;
    if (with_second) {
        __mmask16 won = _mm512_mask_cmpeq_epi32_mask(eq, cid, _mm512_set1_epi32(arg));
        __m512 others = _mm512_mask_mov_ps(mn, won, _mm512_set1_ps(INFINITY));
        const float a = _mm512_reduce_min_ps(mn2), b = _mm512_reduce_min_ps(others);
        *second = a < b ? a : b;  /* the smaller (fminf would be a library call) */
    }
}

static inline void fe_tiles_reduce_f64(__m512d mn, __m256i ti, __m512d mn2, int with_second,
                                       int32_t *label, double *best, double *second)
{
    const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    __m512i cid = _mm512_add_epi64(_mm512_slli_epi64(_mm512_cvtepi32_epi64(ti), 3), lanes);
    double m = _mm512_reduce_min_pd(mn);
    __mmask8 eq = _mm512_cmp_pd_mask(mn, _mm512_set1_pd(m), _CMP_EQ_OQ);
    int32_t arg = eq ? (int32_t)_mm512_mask_reduce_min_epi64(eq, cid) : 0;
    *label = arg;
    *best = m;
    if (with_second) {
        __mmask8 won = _mm512_mask_cmpeq_epi64_mask(eq, cid, _mm512_set1_epi64(arg));
        __m512d others = _mm512_mask_mov_pd(mn, won, _mm512_set1_pd(INFINITY));
        const double a = _mm512_reduce_min_pd(mn2), b = _mm512_reduce_min_pd(others);
        *second = a < b ? a : b;
    }
}

#else
/* x86-64-v3: 256-bit vectors, comparison results as vectors (blends), tile
 * indices as exact small floats / doubles, 4 x 2 tiles (8 accumulators of
 * the 16 registers) */
enum { fe_tb_f32 = 2, fe_tb_f64 = 2 };
typedef __m256 fe_tv_f32;
typedef __m256d fe_tv_f64;
typedef __m256 fe_tm_f32;
typedef __m256d fe_tm_f64;
typedef __m256 fe_ti_f32;
typedef __m256d fe_ti_f64;
#define fe_tv_zero_f32 _mm256_setzero_ps
#define fe_tv_zero_f64 _mm256_setzero_pd
#define fe_tv_set1_f32 _mm256_set1_ps
#define fe_tv_set1_f64 _mm256_set1_pd
#define fe_tv_load_f32 _mm256_loadu_ps
#define fe_tv_load_f64 _mm256_loadu_pd
#define fe_tv_fma_f32 _mm256_fmadd_ps
#define fe_tv_fma_f64 _mm256_fmadd_pd
#define fe_tv_min_f32 _mm256_min_ps
#define fe_tv_min_f64 _mm256_min_pd
#define fe_tv_max_f32 _mm256_max_ps
#define fe_tv_max_f64 _mm256_max_pd
#define fe_tv_hmin_f32 fe_hmin8_f32
#define fe_tv_hmin_f64 fe_hmin4_f64
#define fe_tv_lt_f32(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define fe_tv_lt_f64(a, b) _mm256_cmp_pd(a, b, _CMP_LT_OQ)
#define fe_tv_mov_f32(a, m, b) _mm256_blendv_ps(a, b, m)
#define fe_tv_mov_f64(a, m, b) _mm256_blendv_pd(a, b, m)
#define fe_ti_set1_f32(t) _mm256_set1_ps((float)(t))
#define fe_ti_set1_f64(t) _mm256_set1_pd((double)(t))
#define fe_ti_mov_f32(a, m, b) _mm256_blendv_ps(a, b, m)
#define fe_ti_mov_f64(a, m, b) _mm256_blendv_pd(a, b, m)

/* The lanes stored and scanned: the smallest value, the lowest index among
 * equal ones, then the smallest of the others. */
#define FE_DEFINE_TILES_REDUCE(NAME, T, W, V, STORE)                          \
static inline void NAME(V mn, V ti, V mn2, int with_second, int32_t *label,  \
                        T *best, T *second)                                   \
{                                                                             \
    T v[W], v2[W], t[W], m = (T)INFINITY, m2 = (T)INFINITY;                   \
    int32_t arg = INT32_MAX;                                                  \
    int l, lane = 0;                                                          \
    STORE(v, mn);                                                             \
    STORE(t, ti);                                                             \
    for (l = 0; l < W; l++) {                                                 \
        int32_t c = (int32_t)t[l] * W + l;                                    \
        if (v[l] < m || (v[l] == m && c < arg)) {                             \
            m = v[l];                                                         \
            arg = c;                                                          \
            lane = l;                                                         \
        }                                                                     \
    }                                                                         \
    *label = arg;                                                             \
    *best = m;                                                                \
    if (with_second) {                                                        \
        STORE(v2, mn2);                                                       \
        for (l = 0; l < W; l++) {                                             \
            if (v2[l] < m2)                                                   \
                m2 = v2[l];                                                   \
            if (l != lane && v[l] < m2)                                       \
                m2 = v[l];                                                    \
        }                                                                     \
        *second = m2;                                                         \
    }                                                                         \
}
FE_DEFINE_TILES_REDUCE(fe_tiles_reduce_f32, float, 8, __m256, _mm256_storeu_ps)
FE_DEFINE_TILES_REDUCE(fe_tiles_reduce_f64, double, 4, __m256d, _mm256_storeu_pd)

/* The smallest lane (a group's minimum, fe_tiles_chunk with groups). */
static inline float fe_hmin8_f32(__m256 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline double fe_hmin4_f64(__m256d v)
{
    __m128d m = _mm_min_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    m = _mm_min_sd(m, _mm_unpackhi_pd(m, m));
    return _mm_cvtsd_f64(m);
}
#endif
