# Shared by the K-means kernel modules (_lloyd, _bounded, _kmeanspp): small
# inline helpers on rows and centres, and the allocation of a pass over the
# centres (CentrePass): fixed partitions with their slots, one workspace per
# thread (PassWs), the centres' squared norms. The C helpers of
# csrc/fe_kmeans.h are declared in _kmeans_c.pxd.
from libc.stdint cimport int32_t
from libc.stdlib cimport free, malloc

from fastem._kernels._common cimport (
    Carver, Partitions, carve, carved_size, floating, partitions_free,
    partitions_init, require, require_pass, workspaces_alloc)
from fastem._kernels._kmeans_c cimport (
    FE_LOWD_MAX_D, FE_TILE_W_F32, FE_TILE_W_F64, fe_pack_tiles_f32, fe_pack_tiles_f64,
    fe_sqdist_f32, fe_sqdist_f64, fe_sqnorm_f32, fe_sqnorm_f64, fe_tiles_chunk_f32,
    fe_tiles_chunk_f64, fe_tiles_enabled, fe_tiles_per_block)


cdef enum:
    # the widest rows for which the dense Lloyd pass computes distances
    # directly (csrc/fe_lowd.h) rather than by GEMM: see lowd_path
    LOWD_MAX_D_F32 = 8
    LOWD_MAX_D_F64 = 10


cdef inline bint lowd_path(Py_ssize_t d, Py_ssize_t itemsize) noexcept nogil:
    """Whether a dense Lloyd pass over rows of d values of ``itemsize``
    bytes takes the low-D path of csrc/fe_lowd.h: the one dispatch between
    it and the GEMM path.

    Measured (one thread, thread CPU time, N = 1e6, ns per row per pass,
    low-D path / GEMM path, machine loaded by other jobs): float32 d = 8:
    k = 4 14 / 27, k = 16 23 / 27, k = 64 50 / 67, k = 256 173 / 167;
    d = 10: 19 / 30, 27 / 36, 63 / 72, 203 / 196; d = 12: 17 / 28,
    35 / 36, 83 / 79, 260 / 186; d = 4, k = 16: 8.6 / 24.
    float64 d = 10: 23 / 20, 37 / 44, 94 / 101, 350 / 373; d = 12:
    30 / 22, 55 / 50, 153 / 117, 454 / 320. So: float32 up to 8, float64
    up to 10 (each extra column costs the direct path k subtractions,
    multiplications and additions per row, the GEMM path little)."""
    if itemsize == 4:
        return d <= LOWD_MAX_D_F32 and d <= FE_LOWD_MAX_D
    return d <= LOWD_MAX_D_F64 and d <= FE_LOWD_MAX_D


cdef inline double _sqdist(const floating *a, const floating *b,
                           Py_ssize_t n) noexcept nogil:
    """sum_j (a_j - b_j)^2 in the data's precision, in the fixed lanes of
    csrc/fe_kmeans.h: the value the k-means++ candidate pass compares, in every build."""
    if floating is float:
        return fe_sqdist_f32(a, b, n)
    else:
        return fe_sqdist_f64(a, b, n)


cdef inline double _sqnorm(const floating *a, Py_ssize_t n) noexcept nogil:
    """sum_j a_j^2 in the data's precision (the lanes of _sqdist)."""
    if floating is float:
        return fe_sqnorm_f32(a, n)
    else:
        return fe_sqnorm_f64(a, n)


cdef inline void _shift_rows(const floating *x, const floating *shift,
                             Py_ssize_t nb, Py_ssize_t d,
                             floating *out) noexcept nogil:
    """out[i, j] = x[i, j] - shift[j] for a chunk of nb rows."""
    cdef Py_ssize_t i, j
    for i in range(nb):
        for j in range(d):
            out[i * d + j] = x[i * d + j] - shift[j]


cdef inline void _centre_sqnorms(const floating *centres, Py_ssize_t k,
                                 Py_ssize_t d, floating *csq) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(k):
        csq[c] = <floating>_sqnorm(centres + c * d, d)


cdef inline void _add_row(double *sr, const floating *xr, const floating *shift,
                          Py_ssize_t d, double w, bint weighted) noexcept nogil:
    """sr += w (xr - shift), the difference rounded in the data's precision
    (shift NULL: sr += w xr; unweighted: no multiplication)."""
    cdef Py_ssize_t j
    if shift == NULL:
        if weighted:
            for j in range(d):
                sr[j] += w * xr[j]
        else:
            for j in range(d):
                sr[j] += xr[j]
    elif weighted:
        for j in range(d):
            sr[j] += w * <floating>(xr[j] - shift[j])
    else:
        for j in range(d):
            sr[j] += <floating>(xr[j] - shift[j])


cdef inline const floating *_in_frame(const floating *x, const floating *shift,
                                      Py_ssize_t nb, Py_ssize_t d,
                                      floating *buf) noexcept nogil:
    """The chunk's rows in the shifted frame: x itself when shift is NULL."""
    if shift == NULL:
        return x
    _shift_rows(x, shift, nb, d, buf)
    return buf


cdef inline bint tiles_path() noexcept nogil:
    """Whether the dense passes' full searches (every centre, for a row
    whose nearest one is not known) run on tiles (csrc/fe_tiles.h) rather
    than on a GEMM and a scan of its K-wide block: the one dispatch between
    the two. Every build but the baseline x86-64 one on a CPU without FMA.

    Measured, one ``lloyd_pass``, float32, 2 threads, Zen 5, best of 3,
    GEMM path (OpenBLAS with OPENBLAS_CORETYPE=Haswell / its own choice,
    SkylakeX) against the tiles (x86-64-v4 build): N = 1e6, D = 32, K =
    64: 104 / 56 ms against 15-16 ms; N = 1e6, D = 64, K = 1024: 1171 /
    752 against 311-325; N = 1e5, D = 768, K = 1024: 1167 / 727 against
    373-429; N = 7e4, D = 784, K = 256: 243 / 128 against 70-83; N = 1e5,
    D = 1536, K = 64: 207 / 156 against 64-67. The AVX2 build's tiles run
    at about half the AVX-512 rate on this CPU (91-95 GFlops per thread at
    D = 64, K = 1024), above the GEMM path's with Haswell kernels."""
    return fe_tiles_enabled() != 0


cdef inline Py_ssize_t _tile_width(Py_ssize_t itemsize) noexcept nogil:
    return FE_TILE_W_F32 if itemsize == 4 else FE_TILE_W_F64


cdef inline Py_ssize_t _tiles_per_block(Py_ssize_t k, Py_ssize_t d,
                                        Py_ssize_t itemsize) noexcept nogil:
    cdef Py_ssize_t w = _tile_width(itemsize)
    return fe_tiles_per_block((k + w - 1) // w, d, w, itemsize)


cdef inline Py_ssize_t group_width(Py_ssize_t k, Py_ssize_t t,
                                   Py_ssize_t itemsize) noexcept nogil:
    """Centres per group when a bounded pass keeps t lower bounds per row
    (Yinyang's groups, see _bounded.pyx): ceil(k / t) rounded up to whole
    tiles of every build (16 float32 or 8 float64 centres), so that a
    group is a run of whole tiles; the groups are centres [0, G), [G, 2G),
    ..., ceil(k / G) <= t of them. On the GEMM path one group of all k.
    (Which centres a row is searched against changes no label: only the
    bounds kept, and so the work of later passes.)"""
    cdef Py_ssize_t unit = 16 if itemsize == 4 else 8
    if not tiles_path() or t <= 1:
        return k
    return ((k + t - 1) // t + unit - 1) // unit * unit


cdef struct PassWs:
    # One thread's workspace of a Lloyd or bounded pass (void *: a struct
    # cannot hold the fused type). Returned by value, so that inside a
    # prange the variable it is assigned to is private to the thread.
    void *rows          # GEMM path: nb x d, the rows copied into the frame
    void *dist          # GEMM path: nb x k distance block; bounded pass: at
                        # least one double per row (its per-row max(l, s_a))
    int32_t *gathered   # nb: rows gathered for a search (bounded pass)
    int32_t *near       # tiles path: nb nearest centres
    void *best          # tiles path: nb values min_c ||c||^2 - 2 x.c
    void *second        # tiles path, bounded pass: nb runners-up
    void *state         # tiles path, several tile blocks: the rows' running
                        # minima between blocks (fe_tiles_chunk)
    # bounded pass, t groups (the search by groups, _bounded.pyx):
    unsigned char *need # nb x t: the groups each searched row needs
    void *group_min     # nb x t: its smallest value in each group searched
    int32_t *sorted     # nb + t + 1: the searched rows sorted by group, and
                        # the counts of the sort


cdef inline PassWs _pass_workspace(Carver *cv, Py_ssize_t nb, Py_ssize_t d,
                                   Py_ssize_t k, Py_ssize_t itemsize,
                                   Py_ssize_t groups) noexcept nogil:
    """Carve one thread's workspace, or with cv.base NULL measure it: the
    only place that knows its layout. ``groups``: 0 for a Lloyd pass, the
    lower bounds per row (t >= 1) for a bounded pass."""
    cdef PassWs w
    cdef bint bounded = groups > 0
    cdef bint tiles = tiles_path()
    cdef Py_ssize_t wd = _tile_width(itemsize), nt = (k + wd - 1) // wd
    cdef bint blocks = tiles and _tiles_per_block(k, d, itemsize) < nt
    w.rows = carve(cv, 0 if tiles else nb * d, itemsize)  # the tiles read X in place
    if tiles:
        w.dist = carve(cv, nb * (8 // itemsize) if bounded else 0, itemsize)
    else:
        w.dist = carve(cv, nb * k if not bounded else nb * max(k, 8 // itemsize), itemsize)
    w.gathered = <int32_t *>carve(cv, nb if bounded else 0, sizeof(int32_t))
    w.near = <int32_t *>carve(cv, nb if tiles or bounded else 0, sizeof(int32_t))
    w.best = carve(cv, nb if tiles or bounded else 0, itemsize)
    w.second = carve(cv, nb if bounded else 0, itemsize)
    w.state = carve(cv, (nb + 3) // 4 * 4 * 3 * wd if blocks else 0, itemsize)
    w.need = <unsigned char *>carve(cv, nb * groups if groups > 1 else 0, 1)
    w.group_min = carve(cv, nb * groups if groups > 1 else 0, itemsize)
    w.sorted = <int32_t *>carve(cv, nb + groups + 1 if groups > 1 else 0, sizeof(int32_t))
    return w


cdef inline void tiles_chunk(const floating *rows, const int32_t *index, Py_ssize_t nb,
                             Py_ssize_t d, const floating *shift, const floating *tiles,
                             Py_ssize_t k, const PassWs *ws, bint with_second,
                             Py_ssize_t groups, Py_ssize_t width) noexcept nogil:
    """Nearest centres of nb rows of ``rows`` (d values each: rows 0 .. nb -
    1, or rows index[0 .. nb - 1]; taken in the frame of ``shift``, NULL for
    none, without a copy) against the centres packed by centre_pass_tiles,
    into ws.near, ws.best (min_c ||c||^2 - 2 x.c) and, with_second,
    ws.second (the runner-up), as csrc/fe_tiles.h computes them. With
    ``groups`` > 1 (of ``width`` centres: group_width), over the groups
    ws.need asks for (nb x groups), their minima in ws.group_min."""
    cdef Py_ssize_t w = _tile_width(sizeof(floating)), nt = (k + w - 1) // w
    cdef Py_ssize_t per_block = _tiles_per_block(k, d, sizeof(floating))
    cdef Py_ssize_t gt = 0
    if groups > 1:
        gt = width // w
        if per_block < nt:  # blocks of whole groups
            per_block = max(gt, per_block // gt * gt)
    if floating is float:
        fe_tiles_chunk_f32(rows, index, nb, d, shift, tiles, tiles + nt * w * d, nt, per_block,
                           <float *>ws.state, ws.near, <float *>ws.best,
                           <float *>ws.second if with_second else NULL, gt, groups,
                           ws.need, <float *>ws.group_min)
    else:
        fe_tiles_chunk_f64(rows, index, nb, d, shift, tiles, tiles + nt * w * d, nt, per_block,
                           <double *>ws.state, ws.near, <double *>ws.best,
                           <double *>ws.second if with_second else NULL, gt, groups,
                           ws.need, <double *>ws.group_min)


cdef struct CentrePass:
    # What one Lloyd or bounded pass allocates: the fixed partitions of the
    # chunks (slot_len doubles each, see _common.pxd), n_threads workspaces
    # of per_thread bytes (PassWs), csq, the centres' squared norms (k
    # floating values), and on the tiles path (tiles_path) the centres and
    # their norms in fe_tiles.h's layout (tiles, NULL otherwise).
    Partitions pt
    void *csq
    char *ws
    void *raw
    Py_ssize_t per_thread
    void *tiles
    void *tiles_raw


cdef inline int centre_pass_open(CentrePass *run, Py_ssize_t n, Py_ssize_t d,
                                 Py_ssize_t k, Py_ssize_t chunk_rows,
                                 Py_ssize_t itemsize, Py_ssize_t groups,
                                 Py_ssize_t slot_len, int n_threads) noexcept nogil:
    """Allocate a pass over n rows (``groups``: see _pass_workspace); 0, or
    -1 out of memory (nothing left allocated)."""
    cdef Carver cv = Carver(NULL, 0)
    _pass_workspace(&cv, chunk_rows, d, k, itemsize, groups)
    run.per_thread = carved_size(&cv)
    run.pt.slots = NULL
    run.pt.raw = NULL
    run.ws = NULL
    run.raw = NULL
    run.tiles = NULL
    run.tiles_raw = NULL
    run.csq = malloc(k * itemsize)
    if run.csq != NULL and partitions_init(&run.pt, n, chunk_rows, slot_len) == 0:
        run.ws = workspaces_alloc(run.per_thread, n_threads, &run.raw)
    if run.ws == NULL:
        centre_pass_close(run)
        return -1
    return 0


cdef inline PassWs centre_pass_workspace(const CentrePass *run, int tid,
                                         Py_ssize_t chunk_rows, Py_ssize_t d,
                                         Py_ssize_t k, Py_ssize_t itemsize,
                                         Py_ssize_t groups) noexcept nogil:
    """Thread ``tid``'s workspace, carved as centre_pass_open measured it."""
    cdef Carver tc = Carver(run.ws + tid * run.per_thread, 0)
    return _pass_workspace(&tc, chunk_rows, d, k, itemsize, groups)


cdef inline int centre_pass_tiles(CentrePass *run, const floating *centres,
                                  Py_ssize_t k, Py_ssize_t d) noexcept nogil:
    """The centres' squared norms (run.csq) and, on the tiles path, the
    centres and norms packed into tiles (run.tiles, 64-byte aligned: each
    tile row is one aligned vector); 0, or -1 out of memory."""
    cdef Py_ssize_t w = _tile_width(sizeof(floating)), nt = (k + w - 1) // w
    cdef floating *tiles
    _centre_sqnorms(centres, k, d, <floating *>run.csq)
    if not tiles_path():
        return 0
    run.tiles = workspaces_alloc(nt * w * (d + 1) * sizeof(floating), 1, &run.tiles_raw)
    if run.tiles == NULL:
        return -1
    tiles = <floating *>run.tiles
    if floating is float:
        fe_pack_tiles_f32(centres, <const float *>run.csq, k, d, tiles, tiles + nt * w * d)
    else:
        fe_pack_tiles_f64(centres, <const double *>run.csq, k, d, tiles, tiles + nt * w * d)
    return 0


cdef inline void centre_pass_close(CentrePass *run) noexcept nogil:
    free(run.csq)
    free(run.raw)
    free(run.tiles_raw)
    run.tiles_raw = NULL
    run.tiles = NULL
    partitions_free(&run.pt)
    run.csq = NULL
    run.raw = NULL


cdef inline int require_centre_pass(const floating[:, ::1] X,
                                   const floating[::1] sample_weight,
                                   const floating[::1] shift,
                                   const floating[:, ::1] centres,
                                   const int32_t[::1] labels,
                                   const double[:, ::1] sums,
                                   const double[::1] weights,
                                   Py_ssize_t chunk_rows, int n_threads,
                                   str kernel) except -1:
    """The shapes a Lloyd or bounded pass relies on (see lloyd_pass)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centres.shape[0]
    require_pass(n, d, sample_weight.shape[0], chunk_rows, n_threads, kernel)
    require(shift.shape[0] == 0 or shift.shape[0] == d,
            f"{kernel}: shift must have one entry per column of X (or none)")
    require(k >= 1 and centres.shape[1] == d,
            f"{kernel}: centres must be (k, d) with k >= 1 and X's d columns")
    require(labels.shape[0] == n, f"{kernel}: labels must have one entry per row of X")
    require(sums.shape[0] == k and sums.shape[1] == d and weights.shape[0] == k,
            f"{kernel}: sums must be (k, d) and weights (k,)")
    return 0
