/* The body of fe_tiles.h's vector kernel, included once per type with
 * FE_TL_SUFFIX(base) defined as base##_f32 or base##_f64 (undefined again
 * at the end), in the operations of fe_tiles_isa.h. See fe_tiles.h for
 * what it computes. */
#define FE_TL(base) FE_TL_SUFFIX(base)
#define FE_TL_W ((int)(sizeof(FE_TL(fe_tv)) / sizeof(FE_TL(fe_t))))

/* Fold the values v of tile t into a row's running per-lane minimum mn
 * (its tile index ti) and runner-up mn2. */
FE_INLINE void FE_TL(fe_tiles_fold)(FE_TL(fe_tv) v, int32_t t, int with_second,
                                    FE_TL(fe_tv) *mn, FE_TL(fe_ti) *ti,
                                    FE_TL(fe_tv) *mn2)
{
    FE_TL(fe_tm) lt = FE_TL(fe_tv_lt)(v, *mn);
    if (with_second)  /* where v wins the old minimum, else min(mn2, v) */
        *mn2 = FE_TL(fe_tv_mov)(FE_TL(fe_tv_min)(*mn2, v), lt, *mn);
    *mn = FE_TL(fe_tv_mov)(*mn, lt, v);
    *ti = FE_TL(fe_ti_mov)(*ti, lt, FE_TL(fe_ti_set1)(t));
}

/* A finished tile's values v = fma(-2, x.c, ||c||^2) from its dot products. */
FE_INLINE FE_TL(fe_tv) FE_TL(fe_tiles_values)(FE_TL(fe_tv) acc, FE_TL(fe_tv) csq)
{
    return FE_TL(fe_tv_fma)(FE_TL(fe_tv_set1)((FE_TL(fe_t))-2), acc, csq);
}

/* The dot products of four rows (pointers; in the frame of ``shift``, see
 * fe_tiles.h, or as they are if it is NULL) with TB tiles (tp: the first,
 * ts values apart): acc[r][b]. Kept out of line so that its registers are
 * the 4 TB accumulators, the TB tile vectors and a broadcast only: inlined
 * into the chunk loop, with the rows' running minima live beside them, GCC
 * spilled the tile vectors (at half the speed). */
__attribute__((noinline)) static void FE_TL(fe_tiles_dots)(
    const FE_TL(fe_t) *const *rows, ptrdiff_t d, const FE_TL(fe_t) *shift,
    const FE_TL(fe_t) *tp, ptrdiff_t ts, FE_TL(fe_tv) acc[FE_TILE_ROWS][FE_TL(fe_tb)])
{
    enum { R = FE_TILE_ROWS, TB = FE_TL(fe_tb) };
    FE_TL(fe_tv) a[R][TB], c[TB], xv;
    const FE_TL(fe_t) *x0 = rows[0], *x1 = rows[1], *x2 = rows[2], *x3 = rows[3];
    ptrdiff_t j;
    int r, b;
#pragma GCC unroll 4
    for (r = 0; r < R; r++)
#pragma GCC unroll 4
        for (b = 0; b < TB; b++)
            a[r][b] = FE_TL(fe_tv_zero)();
    /* one loop per frame, so that the unshifted one has no test per j */
#define FE_TL_ROW(R_, XJ)                                                     \
        xv = FE_TL(fe_tv_set1)(XJ);                                           \
        for (b = 0; b < TB; b++)                                              \
            a[R_][b] = FE_TL(fe_tv_fma)(xv, c[b], a[R_][b]);
#define FE_TL_DOTS(X0, X1, X2, X3)                                            \
    for (j = 0; j < d; j++) {                                                 \
        _Pragma("GCC unroll 4")                                               \
        for (b = 0; b < TB; b++)                                              \
            c[b] = FE_TL(fe_tv_load)(tp + b * ts + j * FE_TL_W);              \
        FE_TL_ROW(0, X0)                                                      \
        FE_TL_ROW(1, X1)                                                      \
        FE_TL_ROW(2, X2)                                                      \
        FE_TL_ROW(3, X3)                                                      \
    }
    if (shift == NULL) {
        FE_TL_DOTS(x0[j], x1[j], x2[j], x3[j])
    } else {
        FE_TL_DOTS(x0[j] - shift[j], x1[j] - shift[j], x2[j] - shift[j], x3[j] - shift[j])
    }
#undef FE_TL_DOTS
#undef FE_TL_ROW
#pragma GCC unroll 4
    for (r = 0; r < R; r++)
#pragma GCC unroll 4
        for (b = 0; b < TB; b++)
            acc[r][b] = a[r][b];
}

/* After tile t of a run ending at t1: if it is the last of its group of gt
 * tiles, each row's smallest value in the group (gm) goes to gmin[r * ng +
 * t / gt] (rows r < nrows) and gm starts over. */
FE_INLINE void FE_TL(fe_tiles_group_end)(FE_TL(fe_tv) *gm, ptrdiff_t t, ptrdiff_t t1,
                                         ptrdiff_t gt, ptrdiff_t ng, ptrdiff_t nrows,
                                         FE_TL(fe_t) *gmin)
{
    int r;
    if ((t + 1) % gt != 0 && t + 1 != t1)
        return;
    for (r = 0; r < FE_TILE_ROWS; r++) {
        if (r < nrows)
            gmin[r * ng + t / gt] = FE_TL(fe_tv_hmin)(gm[r]);
        gm[r] = FE_TL(fe_tv_set1)((FE_TL(fe_t))INFINITY);
    }
}

/* Four rows (pointers; repeat one to fill a short block) against tiles
 * [t0, t1), TB at a time (4 TB accumulators), then the last ones one at a
 * time, folded into the rows' running state in tile order. With gt > 0,
 * [t0, t1) is a run of whole groups of gt tiles (the last one may end
 * early, at t1 = nt) and each row's smallest value in each of them goes to
 * gmin (fe_tiles_group_end): the register block runs across the groups, so
 * a run of groups of one tile costs what the same tiles cost without
 * groups. */
FE_INLINE void FE_TL(fe_tiles_range)(const FE_TL(fe_t) *const *rows, ptrdiff_t d,
                                     const FE_TL(fe_t) *shift,
                                     const FE_TL(fe_t) *tiles, const FE_TL(fe_t) *tcsq,
                                     ptrdiff_t t0, ptrdiff_t t1, int with_second,
                                     FE_TL(fe_tv) *mn, FE_TL(fe_ti) *ti, FE_TL(fe_tv) *mn2,
                                     ptrdiff_t gt, ptrdiff_t ng, ptrdiff_t nrows,
                                     FE_TL(fe_t) *gmin)
{
    enum { R = FE_TILE_ROWS, TB = FE_TL(fe_tb) };
    const ptrdiff_t ts = d * FE_TL_W;  /* values per tile */
    ptrdiff_t t = t0, j;
    int r, b;
    FE_TL(fe_tv) gm[R];
    for (r = 0; r < R; r++)
        gm[r] = FE_TL(fe_tv_set1)((FE_TL(fe_t))INFINITY);
    for (; t + TB <= t1; t += TB) {
        FE_TL(fe_tv) acc[R][TB];
        FE_TL(fe_tiles_dots)(rows, d, shift, tiles + t * ts, ts, acc);
#pragma GCC unroll 4
        for (b = 0; b < TB; b++) {
            FE_TL(fe_tv) csq = FE_TL(fe_tv_load)(tcsq + (t + b) * FE_TL_W);
#pragma GCC unroll 4
            for (r = 0; r < R; r++) {
                FE_TL(fe_tv) v = FE_TL(fe_tiles_values)(acc[r][b], csq);
                FE_TL(fe_tiles_fold)(v, (int32_t)(t + b), with_second, &mn[r], &ti[r],
                                     &mn2[r]);
                if (gt > 0)
                    gm[r] = FE_TL(fe_tv_min)(gm[r], v);
            }
            if (gt > 0)
                FE_TL(fe_tiles_group_end)(gm, t + b, t1, gt, ng, nrows, gmin);
        }
    }
    for (; t < t1; t++) {
        const FE_TL(fe_t) *tp = tiles + t * ts;
        FE_TL(fe_tv) acc[R], csq;
#pragma GCC unroll 4
        for (r = 0; r < R; r++)
            acc[r] = FE_TL(fe_tv_zero)();
        for (j = 0; j < d; j++) {
            FE_TL(fe_tv) c0 = FE_TL(fe_tv_load)(tp + j * FE_TL_W);
#pragma GCC unroll 4
            for (r = 0; r < R; r++) {
                FE_TL(fe_t) xj = shift != NULL ? rows[r][j] - shift[j] : rows[r][j];
                acc[r] = FE_TL(fe_tv_fma)(FE_TL(fe_tv_set1)(xj), c0, acc[r]);
            }
        }
        csq = FE_TL(fe_tv_load)(tcsq + t * FE_TL_W);
#pragma GCC unroll 4
        for (r = 0; r < R; r++) {
            FE_TL(fe_tv) v = FE_TL(fe_tiles_values)(acc[r], csq);
            FE_TL(fe_tiles_fold)(v, (int32_t)t, with_second, &mn[r], &ti[r], &mn2[r]);
            if (gt > 0)
                gm[r] = FE_TL(fe_tv_min)(gm[r], v);
        }
        if (gt > 0)
            FE_TL(fe_tiles_group_end)(gm, t, t1, gt, ng, nrows, gmin);
    }
}

/* Whether any of rows i .. i + 3 (those below nb) needs group g. */
FE_INLINE int FE_TL(fe_tiles_block_needs)(const unsigned char *need, ptrdiff_t i,
                                          ptrdiff_t nb, ptrdiff_t ng, ptrdiff_t g)
{
    ptrdiff_t r;
    if (need == NULL)
        return 1;
    for (r = i; r < i + FE_TILE_ROWS && r < nb; r++)
        if (need[r * ng + g])
            return 1;
    return 0;
}

/* The chunk's nb rows (x[i] or x[index[i]], d values each) against all nt
 * tiles, per_block tiles at a time (see fe_tiles_per_block): for each
 * block, every row, four at a time, its running state kept in ``state``
 * between blocks (3 W values per row, rows rounded up to 4; unused with one
 * block). With groups (gt > 0: runs of gt tiles, ng of them, per_block a
 * multiple of gt) only the groups some row of the four needs are visited,
 * each run of consecutive ones as one range of tiles (the same folds, in
 * the same order, as without groups), and gmin gets each row's smallest
 * value in each group visited (+inf in the others). */
FE_INLINE void FE_TL(fe_tiles_chunk_body)(const FE_TL(fe_t) *x, const int32_t *index,
                                          ptrdiff_t nb, ptrdiff_t d,
                                          const FE_TL(fe_t) *shift,
                                          const FE_TL(fe_t) *tiles,
                                          const FE_TL(fe_t) *tcsq, ptrdiff_t nt,
                                          ptrdiff_t per_block, FE_TL(fe_t) *state,
                                          int with_second, int32_t *labels,
                                          FE_TL(fe_t) *best, FE_TL(fe_t) *second,
                                          ptrdiff_t gt, ptrdiff_t ng,
                                          const unsigned char *need, FE_TL(fe_t) *gmin)
{
    enum { R = FE_TILE_ROWS };
    ptrdiff_t t0, i, g;
    int r;
    for (t0 = 0; t0 < nt; t0 += per_block) {
        ptrdiff_t t1 = t0 + per_block < nt ? t0 + per_block : nt;
        for (i = 0; i < nb; i += R) {
            const FE_TL(fe_t) *rows[R];
            FE_TL(fe_tv) mn[R], mn2[R];
            FE_TL(fe_ti) ti[R];
            FE_TL(fe_t) *st = state + i * 3 * FE_TL_W;
            int32_t lab[R];
            FE_TL(fe_t) b1[R], b2[R];
            for (r = 0; r < R; r++) {
                ptrdiff_t row = i + r < nb ? i + r : nb - 1;
                rows[r] = x + (index != NULL ? index[row] : row) * d;
                if (t0 == 0) {
                    mn[r] = FE_TL(fe_tv_set1)((FE_TL(fe_t))INFINITY);
                    mn2[r] = mn[r];
                    ti[r] = FE_TL(fe_ti_set1)(0);
                } else {
                    memcpy(&mn[r], st + (3 * r) * FE_TL_W, sizeof(mn[r]));
                    memcpy(&mn2[r], st + (3 * r + 1) * FE_TL_W, sizeof(mn2[r]));
                    memcpy(&ti[r], st + (3 * r + 2) * FE_TL_W, sizeof(ti[r]));
                }
            }
            if (gt == 0) {
                FE_TL(fe_tiles_range)(rows, d, shift, tiles, tcsq, t0, t1, with_second, mn,
                                      ti, mn2, 0, 0, 0, NULL);
            } else {
                if (t0 == 0)
                    for (r = 0; r < R && i + r < nb; r++)
                        for (g = 0; g < ng; g++)
                            gmin[(i + r) * ng + g] = (FE_TL(fe_t))INFINITY;
                for (g = t0 / gt; g * gt < t1;) {
                    ptrdiff_t g1 = g;  /* a run of groups [g, g1) the block needs */
                    while (g1 * gt < t1 && FE_TL(fe_tiles_block_needs)(need, i, nb, ng, g1))
                        g1++;
                    if (g1 == g) {
                        g++;
                        continue;
                    }
                    FE_TL(fe_tiles_range)(rows, d, shift, tiles, tcsq, g * gt,
                                          g1 * gt < t1 ? g1 * gt : t1, with_second, mn, ti,
                                          mn2, gt, ng, nb - i, gmin + i * ng);
                    g = g1;
                }
            }
            if (t1 < nt) {
                for (r = 0; r < R; r++) {
                    memcpy(st + (3 * r) * FE_TL_W, &mn[r], sizeof(mn[r]));
                    memcpy(st + (3 * r + 1) * FE_TL_W, &mn2[r], sizeof(mn2[r]));
                    memcpy(st + (3 * r + 2) * FE_TL_W, &ti[r], sizeof(ti[r]));
                }
                continue;
            }
            for (r = 0; r < R; r++)
                FE_TL(fe_tiles_reduce)(mn[r], ti[r], mn2[r], with_second, &lab[r], &b1[r],
                                       &b2[r]);
            for (r = 0; r < R && i + r < nb; r++) {
                labels[i + r] = lab[r];
                best[i + r] = b1[r];
                if (with_second)
                    second[i + r] = b2[r];
            }
        }
    }
}

/* The entry point: index == NULL reads rows 0 .. nb - 1; shift == NULL takes
 * the rows as they are; second == NULL skips the runners-up; gt == 0: no
 * groups (ng, need and gmin unused). */
static inline void FE_TL(fe_tiles_chunk)(const FE_TL(fe_t) *x, const int32_t *index,
                                         ptrdiff_t nb, ptrdiff_t d,
                                         const FE_TL(fe_t) *shift,
                                         const FE_TL(fe_t) *tiles,
                                         const FE_TL(fe_t) *tcsq, ptrdiff_t nt,
                                         ptrdiff_t per_block, FE_TL(fe_t) *state,
                                         int32_t *labels, FE_TL(fe_t) *best,
                                         FE_TL(fe_t) *second, ptrdiff_t gt, ptrdiff_t ng,
                                         const unsigned char *need, FE_TL(fe_t) *gmin)
{
    if (second == NULL)
        FE_TL(fe_tiles_chunk_body)(x, index, nb, d, shift, tiles, tcsq, nt, per_block, state,
                                   0, labels, best, NULL, gt, ng, need, gmin);
    else
        FE_TL(fe_tiles_chunk_body)(x, index, nb, d, shift, tiles, tcsq, nt, per_block, state,
                                   1, labels, best, second, gt, ng, need, gmin);
}

#undef FE_TL_W
#undef FE_TL
#undef FE_TL_SUFFIX
