/* The body of fe_tiles.h's vector kernel, included once per type with
 * FE_TL_SUFFIX(base) defined as base##_f32 or base##_f64 (undefined again
 * at the end), in the operations of fe_tiles_isa.h. See fe_tiles.h for
 * what it computes. */
#define FE_TL(base) FE_TL_SUFFIX(base)
#define FE_TL_W ((int)(sizeof(FE_TL(fe_tv)) / sizeof(FE_TL(fe_t))))

/* Fold one finished tile t (values v = tcsq - 2 acc) into a row's running
 * per-lane minimum mn (its tile index ti) and runner-up mn2. */
FE_INLINE void FE_TL(fe_tiles_fold)(FE_TL(fe_tv) acc, FE_TL(fe_tv) csq, int32_t t,
                                    int with_second, FE_TL(fe_tv) *mn,
                                    FE_TL(fe_ti) *ti, FE_TL(fe_tv) *mn2)
{
    FE_TL(fe_tv) v = FE_TL(fe_tv_fma)(FE_TL(fe_tv_set1)((FE_TL(fe_t))-2), acc, csq);
    FE_TL(fe_tm) lt = FE_TL(fe_tv_lt)(v, *mn);
    if (with_second)  /* where v wins the old minimum, else min(mn2, v) */
        *mn2 = FE_TL(fe_tv_mov)(FE_TL(fe_tv_min)(*mn2, v), lt, *mn);
    *mn = FE_TL(fe_tv_mov)(*mn, lt, v);
    *ti = FE_TL(fe_ti_mov)(*ti, lt, FE_TL(fe_ti_set1)(t));
}

/* Four rows (pointers; repeat one to fill a short block) against all nt
 * tiles, TB tiles at a time (4 TB accumulators), then the last nt mod TB
 * one at a time. */
FE_INLINE void FE_TL(fe_tiles_block)(const FE_TL(fe_t) *const *rows, ptrdiff_t d,
                                     const FE_TL(fe_t) *tiles, const FE_TL(fe_t) *tcsq,
                                     ptrdiff_t nt, int with_second, int32_t *labels,
                                     FE_TL(fe_t) *best, FE_TL(fe_t) *second)
{
    enum { R = FE_TILE_ROWS, TB = FE_TL(fe_tb) };
    const ptrdiff_t ts = d * FE_TL_W;  /* values per tile */
    FE_TL(fe_tv) mn[R], mn2[R];
    FE_TL(fe_ti) ti[R];
    ptrdiff_t t = 0, j;
    int r, b;
    for (r = 0; r < R; r++) {
        mn[r] = FE_TL(fe_tv_set1)((FE_TL(fe_t))INFINITY);
        mn2[r] = mn[r];
        ti[r] = FE_TL(fe_ti_set1)(0);
    }
    for (; t + TB <= nt; t += TB) {
        const FE_TL(fe_t) *tp = tiles + t * ts;
        FE_TL(fe_tv) acc[R][TB], c[TB], xv;
#pragma GCC unroll 4
        for (r = 0; r < R; r++)
#pragma GCC unroll 4
            for (b = 0; b < TB; b++)
                acc[r][b] = FE_TL(fe_tv_zero)();
        for (j = 0; j < d; j++) {
#pragma GCC unroll 4
            for (b = 0; b < TB; b++)
                c[b] = FE_TL(fe_tv_load)(tp + b * ts + j * FE_TL_W);
#pragma GCC unroll 4
            for (r = 0; r < R; r++) {
                xv = FE_TL(fe_tv_set1)(rows[r][j]);
#pragma GCC unroll 4
                for (b = 0; b < TB; b++)
                    acc[r][b] = FE_TL(fe_tv_fma)(xv, c[b], acc[r][b]);
            }
        }
#pragma GCC unroll 4
        for (b = 0; b < TB; b++) {
            FE_TL(fe_tv) csq = FE_TL(fe_tv_load)(tcsq + (t + b) * FE_TL_W);
#pragma GCC unroll 4
            for (r = 0; r < R; r++)
                FE_TL(fe_tiles_fold)(acc[r][b], csq, (int32_t)(t + b), with_second,
                                     &mn[r], &ti[r], &mn2[r]);
        }
    }
    for (; t < nt; t++) {
        const FE_TL(fe_t) *tp = tiles + t * ts;
        FE_TL(fe_tv) acc[R], csq;
#pragma GCC unroll 4
        for (r = 0; r < R; r++)
            acc[r] = FE_TL(fe_tv_zero)();
        for (j = 0; j < d; j++) {
            FE_TL(fe_tv) c0 = FE_TL(fe_tv_load)(tp + j * FE_TL_W);
#pragma GCC unroll 4
            for (r = 0; r < R; r++)
                acc[r] = FE_TL(fe_tv_fma)(FE_TL(fe_tv_set1)(rows[r][j]), c0, acc[r]);
        }
        csq = FE_TL(fe_tv_load)(tcsq + t * FE_TL_W);
#pragma GCC unroll 4
        for (r = 0; r < R; r++)
            FE_TL(fe_tiles_fold)(acc[r], csq, (int32_t)t, with_second, &mn[r], &ti[r],
                                 &mn2[r]);
    }
    for (r = 0; r < R; r++)
        FE_TL(fe_tiles_reduce)(mn[r], ti[r], mn2[r], with_second, &labels[r], &best[r],
                               with_second ? &second[r] : NULL);
}

/* The entry point: second == NULL skips the runners-up. */
static inline void FE_TL(fe_tiles_nearest)(const FE_TL(fe_t) *const *rows, ptrdiff_t d,
                                           const FE_TL(fe_t) *tiles,
                                           const FE_TL(fe_t) *tcsq, ptrdiff_t nt,
                                           int32_t *labels, FE_TL(fe_t) *best,
                                           FE_TL(fe_t) *second)
{
    if (second == NULL)
        FE_TL(fe_tiles_block)(rows, d, tiles, tcsq, nt, 0, labels, best, NULL);
    else
        FE_TL(fe_tiles_block)(rows, d, tiles, tcsq, nt, 1, labels, best, second);
}

#undef FE_TL_W
#undef FE_TL
#undef FE_TL_SUFFIX
