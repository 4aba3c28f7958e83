"""Test hooks: each vector kernel of csrc/ and its scalar reference, side by side.

Every function runs one C helper of ``csrc/fe_kmeans.h`` / ``csrc/fe_gmm.h``
on numpy arrays, its vector path (``ref=False``: GCC/clang generic vectors or
AVX2 intrinsics, as this build compiled them) or its plain C reference
(``ref=True``, the code MSVC and ``FASTEM_PORTABLE_C=1`` builds run), and
returns the outputs. tests/kernels/test_csrc_references.py requires the two
to agree bit for bit, in every SIMD variant built. Not a public API: the
shapes are checked, the values are the caller's business.
"""
import numpy as np

from libc.stdint cimport int8_t, int32_t, uint8_t, uint16_t

from fastem._kernels._common cimport floating
from fastem._kernels._gmm_c cimport (
    fe_center_T_f32, fe_center_T_f64, fe_center_T_ref_f32, fe_center_T_ref_f64,
    fe_estep_chol_f32, fe_estep_chol_f64, fe_estep_chol_ref_f32, fe_estep_chol_ref_f64,
    fe_estep_chol_width, fe_estep_diag_f32, fe_estep_diag_f64, fe_estep_diag_ref_f32,
    fe_estep_diag_ref_f64, fe_gram_enabled, fe_gram_f64, fe_gram_ref_f64,
    fe_logprob_diag_f32, fe_logprob_diag_f64, fe_logprob_diag_ref_f32,
    fe_logprob_diag_ref_f64, fe_moments_f32, fe_moments_f64, fe_moments_ref_f32,
    fe_moments_ref_f64, fe_stats_diag_f32, fe_stats_diag_ref_f32, fe_stats_diag_T_f64,
    fe_stats_diag_T_ref_f64, fe_stats_full16_f32, fe_stats_full16_ref_f32,
    fe_stats_full_f32, fe_stats_full_f64, fe_stats_full_ref_f32, fe_stats_full_ref_f64,
    fe_stats_sph_f32, fe_stats_sph_ref_f32, fe_stats_tied_f32, fe_stats_tied_ref_f32,
    fe_stats_tied_work, fe_tied_project_f32, fe_tied_project_f64,
    fe_tied_project_ref_f32, fe_tied_project_ref_f64)
from fastem._kernels._kmeans_c cimport (
    fe_expansion_bounds_f32, fe_expansion_bounds_f64, fe_frame_sqdist_f32,
    fe_frame_sqdist_f64, fe_frame_sqdist_ref_f32, fe_frame_sqdist_ref_f64,
    fe_sqdist_f32, fe_sqdist_f64, fe_sqdist_ref_f32, fe_sqdist_ref_f64,
    FE_KPP_QBLOCK, fe_kpp_qbound, fe_kpp_qbound_ref,
    fe_kpp_rows_f32, fe_kpp_rows_f64, fe_kpp_rows_ref_f32, fe_kpp_rows_ref_f64,
    fe_lowd_chunk_f32, fe_lowd_chunk_f64, fe_lowd_chunk_ref_f32, fe_lowd_chunk_ref_f64,
    fe_moments_rows_f32, fe_moments_rows_f64, fe_moments_rows_ref_f32, fe_moments_rows_ref_f64,
    fe_row_argmin2_f32, fe_row_argmin2_ref_f32, fe_row_argmin_f32, fe_row_argmin_f64,
    fe_row_argmin_ref_f32, fe_row_argmin_ref_f64, FE_TILE_W_F32, FE_TILE_W_F64,
    fe_pack_tiles_f32, fe_pack_tiles_f64, fe_tiles_chunk_f32, fe_tiles_chunk_f64,
    fe_tiles_chunk_ref_f32, fe_tiles_chunk_ref_f64, fe_tiles_enabled)


def _need(ok, what):
    if not ok:
        raise ValueError(what)


cdef const floating *_opt(const floating[::1] a):
    """NULL for an empty array (the kernels' "no weights" / "no R")."""
    return NULL if a.shape[0] == 0 else &a[0]


def sqdist(const floating[::1] a, const floating[::1] b, bint ref):
    """sum_j (a_j - b_j)^2 in the data's precision, in the lanes of
    fe_sqdist_*; b empty: sum_j a_j^2."""
    cdef Py_ssize_t n = a.shape[0]
    _need(n >= 1 and b.shape[0] in (0, n), "inconsistent shapes")
    if floating is float:
        return (fe_sqdist_ref_f32 if ref else fe_sqdist_f32)(&a[0], _opt(b), n)
    else:
        return (fe_sqdist_ref_f64 if ref else fe_sqdist_f64)(&a[0], _opt(b), n)


def frame_sqdist(const floating[::1] x, const floating[::1] shift,
                 const floating[::1] c, bint ref):
    """||(x - shift) - c||^2 in float64 (fe_frame_sqdist_*); shift empty:
    none."""
    cdef Py_ssize_t d = x.shape[0]
    _need(d >= 1 and c.shape[0] == d and shift.shape[0] in (0, d), "inconsistent shapes")
    if floating is float:
        return (fe_frame_sqdist_ref_f32 if ref else fe_frame_sqdist_f32)(
            &x[0], _opt(shift), &c[0], d)
    else:
        return (fe_frame_sqdist_ref_f64 if ref else fe_frame_sqdist_f64)(
            &x[0], _opt(shift), &c[0], d)


def expansion_bounds(const floating[::1] best, const floating[::1] second,
                     const double[::1] xsq, double err_scale, double csq_max):
    """The bounded pass's bounds from the expansion (fe_expansion_bounds_*,
    plain C that the compiler vectorises: one source, no reference beside
    it): returns (upper, lower), computed in copies of best and second."""
    cdef Py_ssize_t n = best.shape[0]
    _need(n >= 1 and second.shape[0] == n and xsq.shape[0] == n, "inconsistent shapes")
    up = np.array(best, copy=True)
    lo = np.array(second, copy=True)
    cdef floating[::1] u = up
    cdef floating[::1] l = lo
    if floating is float:
        fe_expansion_bounds_f32(&u[0], &l[0], &xsq[0], n, err_scale, csq_max)
    else:
        fe_expansion_bounds_f64(&u[0], &l[0], &xsq[0], n, err_scale, csq_max)
    return up, lo


def kpp_rows(const floating[:, ::1] x, const int32_t[::1] todo,
             const float[::1] closest, const floating[::1] sw,
             const floating[:, ::1] cand, double scale, bint ref):
    """(improves, sums, pots) of the k-means++ candidate pass over x[todo]
    (sw empty: unit weights; pots and scale: float64 only)."""
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1], L = cand.shape[0], t
    _need(cand.shape[1] == d and closest.shape[0] == n and L >= 1
          and sw.shape[0] in (0, n), "inconsistent shapes")
    for t in range(todo.shape[0]):
        _need(0 <= todo[t] < n, "todo out of range")
    improves = np.zeros(n, np.uint16)
    sums = np.zeros(L)
    pots = np.zeros(L)
    cdef uint16_t[::1] imp = improves
    cdef double[::1] s = sums, p = pots
    if floating is float:
        (fe_kpp_rows_ref_f32 if ref else fe_kpp_rows_f32)(
            &x[0, 0], d, &todo[0], todo.shape[0], &closest[0], _opt(sw),
            &cand[0, 0], L, &imp[0], &s[0])
    else:
        (fe_kpp_rows_ref_f64 if ref else fe_kpp_rows_f64)(
            &x[0, 0], d, &todo[0], todo.shape[0], &closest[0], _opt(sw),
            &cand[0, 0], L, &imp[0], &s[0], &p[0], scale)
    return improves, sums, pots


def kpp_qbound(const uint8_t[:, ::1] codes, const int32_t[::1] cnorm,
               const float[::1] cerr, const int32_t[::1] todo, const float[::1] closest,
               double cur_factor, const int8_t[:, ::1] qcodes, const int32_t[::1] qnorm,
               const float[::1] qerr, Py_ssize_t L, float inv_step, bint ref):
    """maybe (uint8, one per todo entry) of the quantised bound (candidates
    padded to a multiple of 8 rows, codes to FE_KPP_QBLOCK columns)."""
    cdef Py_ssize_t n = codes.shape[0], dp = codes.shape[1], t
    _need(dp % FE_KPP_QBLOCK == 0 and cnorm.shape[0] == n and cerr.shape[0] == n
          and closest.shape[0] == n and 1 <= L <= qcodes.shape[0]
          and qcodes.shape[0] % 8 == 0 and qcodes.shape[1] == dp
          and qnorm.shape[0] == qcodes.shape[0] and qerr.shape[0] == qcodes.shape[0]
          and todo.shape[0] >= 1, "inconsistent shapes")
    for t in range(todo.shape[0]):
        _need(0 <= todo[t] < n, "todo out of range")
    maybe = np.full(todo.shape[0], 7, np.uint8)
    cdef uint8_t[::1] m = maybe
    (fe_kpp_qbound_ref if ref else fe_kpp_qbound)(
        &codes[0, 0], dp, &cnorm[0], &cerr[0], &todo[0], todo.shape[0], &closest[0],
        cur_factor, &qcodes[0, 0], &qnorm[0], &qerr[0], L, inv_step, &m[0])
    return maybe


def row_argmin(const floating[::1] dist, const floating[::1] csq, bint ref):
    """(argmin, min) of dist + csq, first index on ties."""
    cdef Py_ssize_t k = dist.shape[0], arg
    cdef floating best = 0
    _need(k >= 1 and csq.shape[0] == k, "inconsistent shapes")
    if floating is float:
        arg = (fe_row_argmin_ref_f32 if ref else fe_row_argmin_f32)(&dist[0], &csq[0], k,
                                                                    &best)
    else:
        arg = (fe_row_argmin_ref_f64 if ref else fe_row_argmin_f64)(&dist[0], &csq[0], k,
                                                                    &best)
    return arg, best


def tiles_enabled():
    """Whether this build's passes use the tiles (fe_tiles_enabled)."""
    return fe_tiles_enabled() != 0


def tiles_chunk(const floating[:, ::1] x, const floating[:, ::1] centres,
                const floating[::1] csq, Py_ssize_t per_block, bint with_second, bint ref,
                const floating[::1] shift=None, const int32_t[::1] index=None,
                Py_ssize_t group=0, const unsigned char[:, ::1] need=None):
    """(labels, best, second, gmin) of each row of x (in the frame of
    ``shift`` if given) against the centres (csq: their squared norms, as
    the passes compute them) through csrc/fe_tiles.h, ``per_block`` tiles at
    a time (second all zero without ``with_second``); with ``index``, the
    rows x[index] in that order. With ``group`` (centres per group, a
    multiple of 16 float32 / 8 float64 values), the groups of ``need`` (one
    row per row, one column per group; None: all) and their minima gmin
    (None without groups)."""
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1], k = centres.shape[0], i
    cdef const floating *sp = NULL
    cdef const int32_t *ip = NULL
    cdef const unsigned char *np_ = NULL
    cdef Py_ssize_t gt = 0, ng = 0
    if shift is not None:
        _need(shift.shape[0] == d, "inconsistent shapes")
        sp = &shift[0]
    if index is not None:
        _need(index.shape[0] >= 1, "inconsistent shapes")
        for i in range(index.shape[0]):
            _need(0 <= index[i] < n, "index out of range")
        ip = &index[0]
        n = index.shape[0]
    cdef Py_ssize_t w = FE_TILE_W_F32 if floating is float else FE_TILE_W_F64
    cdef Py_ssize_t nt = (k + w - 1) // w
    _need(n >= 1 and d >= 1 and k >= 1 and centres.shape[1] == d and csq.shape[0] == k
          and per_block >= 1, "inconsistent shapes")
    cdef Py_ssize_t unit = 16 if sizeof(floating) == 4 else 8
    if group > 0:
        _need(group % unit == 0, "group: whole tiles")
        gt = group // w
        ng = (nt + gt - 1) // gt
        _need(per_block % gt == 0 or per_block >= nt, "per_block: whole groups")
        if need is not None:
            _need(need.shape[0] == n and need.shape[1] == ng, "inconsistent shapes")
            np_ = &need[0, 0]
    _need(ref or fe_tiles_enabled(), "this build's tiles need a CPU with FMA")
    dtype = np.float32 if floating is float else np.float64
    packed = np.empty(nt * w * (d + 1), dtype)
    state = np.empty((n + 3) // 4 * 4 * 3 * w, dtype)
    labels = np.empty(n, np.int32)
    best = np.empty(n, dtype)
    second = np.zeros(n, dtype)
    gmin = np.empty((n, max(ng, 1)), dtype)
    cdef floating[::1] tp = packed, st = state, bp = best, sc = second
    cdef floating[:, ::1] gp = gmin
    cdef int32_t[::1] lp = labels
    if floating is float:
        fe_pack_tiles_f32(&centres[0, 0], &csq[0], k, d, &tp[0], &tp[nt * w * d])
        (fe_tiles_chunk_ref_f32 if ref else fe_tiles_chunk_f32)(
            &x[0, 0], ip, n, d, sp, &tp[0], &tp[nt * w * d], nt, per_block, &st[0], &lp[0],
            &bp[0], &sc[0] if with_second else NULL, gt, ng, np_, &gp[0, 0])
    else:
        fe_pack_tiles_f64(&centres[0, 0], &csq[0], k, d, &tp[0], &tp[nt * w * d])
        (fe_tiles_chunk_ref_f64 if ref else fe_tiles_chunk_f64)(
            &x[0, 0], ip, n, d, sp, &tp[0], &tp[nt * w * d], nt, per_block, &st[0], &lp[0],
            &bp[0], &sc[0] if with_second else NULL, gt, ng, np_, &gp[0, 0])
    return labels, best, second, (gmin if group > 0 else None)


def row_argmin2_f32(const float[::1] dist, const float[::1] csq, bint ref):
    """(argmin, min, second smallest) of dist + csq (float32: the only one
    with a vector path)."""
    cdef Py_ssize_t k = dist.shape[0], arg
    cdef float best = 0, second = 0
    _need(k >= 1 and csq.shape[0] == k, "inconsistent shapes")
    arg = (fe_row_argmin2_ref_f32 if ref else fe_row_argmin2_f32)(&dist[0], &csq[0], k,
                                                                  &best, &second)
    return arg, best, second


def moments_rows(const floating[:, ::1] x, const floating[::1] sw,
                 const double[::1] ref, const double[::1] start, bint ref_path):
    """(s0, s1, s2) of the column-moment rows (csrc/fe_moments.h) added to
    ``start`` = [s0, s1 (d), s2 (d)] (sw empty: unit weights)."""
    cdef Py_ssize_t nb = x.shape[0], d = x.shape[1]
    _need(nb >= 1 and d >= 1 and ref.shape[0] == d and start.shape[0] == 1 + 2 * d
          and sw.shape[0] in (0, nb), "inconsistent shapes")
    slot = np.array(start, dtype=np.float64)
    cdef double[::1] s = slot
    if floating is float:
        (fe_moments_rows_ref_f32 if ref_path else fe_moments_rows_f32)(
            &x[0, 0], nb, d, _opt(sw), &ref[0], &s[0], &s[1], &s[1 + d])
    else:
        (fe_moments_rows_ref_f64 if ref_path else fe_moments_rows_f64)(
            &x[0, 0], nb, d, _opt(sw), &ref[0], &s[0], &s[1], &s[1 + d])
    return slot[0], slot[1:1 + d], slot[1 + d:]


def lowd_chunk(const floating[:, ::1] x, const floating[::1] sw,
               const floating[::1] shift, const floating[:, ::1] centres,
               const int32_t[::1] labels_in, bint with_norms, bint ref):
    """(labels, sums, wsum, tail) of the low-D Lloyd chunk (csrc/fe_lowd.h)
    over all of x; labels_in: the previous labels (sw, shift empty: none)."""
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1], k = centres.shape[0]
    _need(n >= 1 and d >= 1 and k >= 1 and centres.shape[1] == d
          and labels_in.shape[0] == n and sw.shape[0] in (0, n)
          and shift.shape[0] in (0, d), "inconsistent shapes")
    labels = np.array(labels_in, dtype=np.int32)
    sums = np.zeros((k, d))
    wsum = np.zeros(k)
    tail = np.zeros(3)
    cdef int32_t[::1] lab = labels
    cdef double[:, ::1] s = sums
    cdef double[::1] w = wsum, t = tail
    if floating is float:
        (fe_lowd_chunk_ref_f32 if ref else fe_lowd_chunk_f32)(
            &x[0, 0], n, d, k, _opt(sw), _opt(shift), &centres[0, 0], with_norms,
            &lab[0], &s[0, 0], &w[0], &t[0])
    else:
        (fe_lowd_chunk_ref_f64 if ref else fe_lowd_chunk_f64)(
            &x[0, 0], n, d, k, _opt(sw), _opt(shift), &centres[0, 0], with_norms,
            &lab[0], &s[0, 0], &w[0], &t[0])
    return labels, sums, wsum, tail


def estep_chol(const floating[:, ::1] xcT, int K, bint lower,
               const floating[::1] Lp, const floating[::1] cp,
               const double[::1] const_k, bint ref):
    """Fused 'full' E-step (D <= 16): lp (K x nb). Lp: K factors of DD x DD
    (DD = D padded to 4, 8 or 16), cp: K x DD."""
    cdef int D = xcT.shape[0]
    cdef Py_ssize_t nb = xcT.shape[1]
    cdef int DD = fe_estep_chol_width(D)
    _need(1 <= D <= 16 and nb >= 1 and K >= 1, "need 1 <= D <= 16, nb >= 1, K >= 1")
    _need(Lp.shape[0] == K * DD * DD and cp.shape[0] == K * DD
          and const_k.shape[0] == K, "inconsistent shapes")
    lp = np.empty((K, nb), np.float32 if sizeof(floating) == 4 else np.float64)
    cdef floating[:, ::1] out = lp
    if floating is float:
        (fe_estep_chol_ref_f32 if ref else fe_estep_chol_f32)(
            &xcT[0, 0], nb, D, K, lower, &Lp[0], &cp[0], &const_k[0], &out[0, 0])
    else:
        (fe_estep_chol_ref_f64 if ref else fe_estep_chol_f64)(
            &xcT[0, 0], nb, D, K, lower, &Lp[0], &cp[0], &const_k[0], &out[0, 0])
    return lp


def tied_project(const floating[:, ::1] xcT, bint lower, const floating[::1] L, bint ref):
    """The 'tied' projection (D <= 16): yT (D x nb) = (xc^T L)^T. L: DD x DD."""
    cdef int D = xcT.shape[0]
    cdef Py_ssize_t nb = xcT.shape[1]
    cdef int DD = fe_estep_chol_width(D)
    _need(1 <= D <= 16 and nb >= 1, "need 1 <= D <= 16, nb >= 1")
    _need(L.shape[0] == DD * DD, "inconsistent shapes")
    yT = np.empty((D, nb), np.float32 if sizeof(floating) == 4 else np.float64)
    cdef floating[:, ::1] out = yT
    if floating is float:
        (fe_tied_project_ref_f32 if ref else fe_tied_project_f32)(
            &xcT[0, 0], nb, D, lower, &L[0], &out[0, 0])
    else:
        (fe_tied_project_ref_f64 if ref else fe_tied_project_f64)(
            &xcT[0, 0], nb, D, lower, &L[0], &out[0, 0])
    return yT


def estep_diag(const floating[:, ::1] xcT, int K, const floating[::1] U,
               const floating[::1] V, const double[::1] const_k, bint keep_r, bint ref):
    """Fused diag/spherical E-step (D <= 16): (lp, R), both K x nb (R
    written only by float32 with keep_r). U, V: K x DD."""
    cdef int D = xcT.shape[0]
    cdef Py_ssize_t nb = xcT.shape[1]
    cdef int DD = fe_estep_chol_width(D)
    _need(1 <= D <= 16 and nb >= 1 and K >= 1, "need 1 <= D <= 16, nb >= 1, K >= 1")
    _need(U.shape[0] == K * DD and V.shape[0] == K * DD and const_k.shape[0] == K,
          "inconsistent shapes")
    dtype = np.float32 if sizeof(floating) == 4 else np.float64
    lp = np.empty((K, nb), dtype)
    R = np.zeros((K, nb), dtype)
    cdef floating[:, ::1] out = lp, r = R
    cdef floating *rp = &r[0, 0] if keep_r else NULL
    if floating is float:
        (fe_estep_diag_ref_f32 if ref else fe_estep_diag_f32)(
            &xcT[0, 0], nb, D, K, &U[0], &V[0], &const_k[0], &out[0, 0], rp)
    else:
        (fe_estep_diag_ref_f64 if ref else fe_estep_diag_f64)(
            &xcT[0, 0], nb, D, K, &U[0], &V[0], &const_k[0], &out[0, 0], rp)
    return lp, R


def center_T(const floating[:, ::1] x, const floating[::1] c, bint ref):
    """xcT (D x nb) = (x - c)^T of the chunk x (nb x D); c empty: the plain
    transpose."""
    cdef Py_ssize_t nb = x.shape[0]
    cdef int D = x.shape[1]
    _need(nb >= 1 and D >= 1 and c.shape[0] in (0, D), "inconsistent shapes")
    out = np.empty((D, nb), np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] o = out
    if floating is float:
        (fe_center_T_ref_f32 if ref else fe_center_T_f32)(&x[0, 0], nb, D, _opt(c), &o[0, 0])
    else:
        (fe_center_T_ref_f64 if ref else fe_center_T_f64)(&x[0, 0], nb, D, _opt(c), &o[0, 0])
    return out


def logprob_diag(const floating[:, ::1] xcT, const floating[:, ::1] mu,
                 const floating[::1] p2, const double[::1] const_k, bint spherical,
                 bint ref):
    """Diag / spherical log-densities (K x nb) of the D x nb chunk xcT: mu
    K x D, p2 K x D (diag) or K (spherical)."""
    cdef int D = xcT.shape[0], K = mu.shape[0]
    cdef Py_ssize_t nb = xcT.shape[1]
    _need(D >= 1 and nb >= 1 and K >= 1 and mu.shape[1] == D and const_k.shape[0] == K
          and p2.shape[0] == (K if spherical else K * D), "inconsistent shapes")
    dtype = np.float32 if sizeof(floating) == 4 else np.float64
    lp = np.empty((K, nb), dtype)
    acc = np.empty(nb, dtype)
    cdef floating[:, ::1] out = lp
    cdef floating[::1] a = acc
    if floating is float:
        (fe_logprob_diag_ref_f32 if ref else fe_logprob_diag_f32)(
            &xcT[0, 0], nb, K, D, spherical, &mu[0, 0], &p2[0], &const_k[0], &a[0],
            &out[0, 0])
    else:
        (fe_logprob_diag_ref_f64 if ref else fe_logprob_diag_f64)(
            &xcT[0, 0], nb, K, D, spherical, &mu[0, 0], &p2[0], &const_k[0], &a[0],
            &out[0, 0])
    return lp


def stats_full(const floating[:, ::1] xp, int D, const floating[:, ::1] mp,
               const floating[:, ::1] gT, bint full16, bint ref):
    """[N, S1, vech(S2)] per component (K x P) from padded rows xp (nb x Dp)
    and references mp (K x Dp); full16: fe_stats_full16_f32 (Dp = 16)."""
    cdef Py_ssize_t nb = xp.shape[0], P = 1 + D + D * (D + 1) // 2
    cdef int Dp = xp.shape[1], K = mp.shape[0]
    _need(1 <= D <= Dp and nb >= 1 and K >= 1 and mp.shape[1] == Dp
          and gT.shape[0] == K and gT.shape[1] == nb, "inconsistent shapes")
    _need(Dp % (16 if sizeof(floating) == 4 else 8) == 0, "Dp: a multiple of the vector")
    _need(not full16 or (sizeof(floating) == 4 and Dp == 16), "full16: float32, Dp = 16")
    slot = np.zeros((K, P))
    scratch = np.zeros((2, nb, Dp), np.float32 if sizeof(floating) == 4 else np.float64)
    cdef double[:, ::1] s = slot
    cdef floating[:, :, ::1] w = scratch
    if floating is float:
        if full16:
            (fe_stats_full16_ref_f32 if ref else fe_stats_full16_f32)(
                &xp[0, 0], nb, D, K, &mp[0, 0], &gT[0, 0], &w[1, 0, 0], &s[0, 0], P)
        else:
            (fe_stats_full_ref_f32 if ref else fe_stats_full_f32)(
                &xp[0, 0], nb, D, Dp, K, &mp[0, 0], &gT[0, 0], &w[0, 0, 0], &w[1, 0, 0],
                &s[0, 0], P)
    else:
        (fe_stats_full_ref_f64 if ref else fe_stats_full_f64)(
            &xp[0, 0], nb, D, Dp, K, &mp[0, 0], &gT[0, 0], &w[0, 0, 0], &w[1, 0, 0],
            &s[0, 0], P)
    return slot


def stats_diag(const floating[:, ::1] xp, int D, bint spherical,
               const floating[:, ::1] mp, const floating[:, ::1] gT, bint ref):
    """[N, S1, squares (diag) or their sum (spherical)] per component (float64:
    fe_stats_diag_T_f64 on xp[:, :D] transposed, centres mp[:, :D])."""
    cdef Py_ssize_t nb = xp.shape[0], P = (2 + D) if spherical else (1 + 2 * D)
    cdef int Dp = xp.shape[1], K = mp.shape[0]
    _need(1 <= D <= Dp and nb >= 1 and K >= 1 and mp.shape[1] == Dp
          and gT.shape[0] == K and gT.shape[1] == nb, "inconsistent shapes")
    _need(Dp % (16 if sizeof(floating) == 4 else 8) == 0, "Dp: a multiple of the vector")
    slot = np.zeros((K, P))
    cdef double[:, ::1] s = slot
    cdef const double[:, ::1] xT, mu
    if floating is float:
        (fe_stats_diag_ref_f32 if ref else fe_stats_diag_f32)(
            &xp[0, 0], nb, D, Dp, K, spherical, &mp[0, 0], &gT[0, 0], &s[0, 0], P)
    else:
        xT = np.ascontiguousarray(np.asarray(xp)[:, :D].T)
        mu = np.ascontiguousarray(np.asarray(mp)[:, :D])
        (fe_stats_diag_T_ref_f64 if ref else fe_stats_diag_T_f64)(
            &xT[0, 0], nb, D, K, spherical, &mu[0, 0], &gT[0, 0], &s[0, 0], P)
    return slot


def stats_sph_f32(const float[:, ::1] xcT, const float[:, ::1] gT, const float[:, ::1] R,
                  const float[:, ::1] mu, const float[:, ::1] centres,
                  const float[::1] shift, bint ref):
    """Spherical float32 statistics from the E-step's r (K x (2 + D))."""
    cdef int D = xcT.shape[0], K = gT.shape[0]
    cdef Py_ssize_t nb = xcT.shape[1], P = 2 + D
    _need(D >= 1 and K >= 1 and nb >= 1 and gT.shape[1] == nb and R.shape[0] == K
          and R.shape[1] == nb and mu.shape[0] == K and mu.shape[1] == D
          and centres.shape[0] == K and centres.shape[1] == D and shift.shape[0] == D,
          "inconsistent shapes")
    slot = np.zeros((K, P))
    cdef double[:, ::1] s = slot
    (fe_stats_sph_ref_f32 if ref else fe_stats_sph_f32)(
        &xcT[0, 0], nb, D, K, &gT[0, 0], &R[0, 0], &mu[0, 0], &centres[0, 0], &shift[0],
        &s[0, 0], P)
    return slot


def stats_tied_f32(const float[:, ::1] gT, const float[::1] sw, const float[:, ::1] xcT,
                   bint ref):
    """Tied float32 statistics [N_k, S1_k] (K x (1 + D)); sw empty: unit
    weights."""
    cdef int K = gT.shape[0], D = xcT.shape[0]
    cdef Py_ssize_t nb = gT.shape[1]
    _need(K >= 1 and D >= 1 and nb >= 1 and xcT.shape[1] == nb and sw.shape[0] in (0, nb),
          "inconsistent shapes")
    slot = np.zeros((K, 1 + D))
    work = np.zeros(fe_stats_tied_work(K, D))
    cdef double[:, ::1] s = slot
    cdef double[::1] w = work
    (fe_stats_tied_ref_f32 if ref else fe_stats_tied_f32)(
        &gT[0, 0], nb, D, K, _opt(sw), &xcT[0, 0], &w[0], &s[0, 0], 0)
    return slot


def gram_enabled():
    """Whether the mixtures take their statistics about the shift by
    fe_gram_f64 (else by a GEMM: the baseline build on a CPU without FMA)."""
    return bool(fe_gram_enabled())


def gram(const double[:, ::1] G, const double[:, ::1] F, const double[:, ::1] start,
         bint accumulate, bint ref):
    """S (K x P) = G (K x nb) @ F (P x nb)^T, added to a copy of ``start``
    when accumulating."""
    cdef int K = G.shape[0], P = F.shape[0]
    cdef Py_ssize_t nb = G.shape[1]
    _need(K >= 1 and P >= 1 and nb >= 1 and F.shape[1] == nb
          and start.shape[0] == K and start.shape[1] == P, "inconsistent shapes")
    _need(ref or fe_gram_enabled(), "this build's fe_gram_f64 needs a CPU with FMA")
    S = np.array(start, dtype=np.float64, copy=True)
    cdef double[:, ::1] s = S
    (fe_gram_ref_f64 if ref else fe_gram_f64)(&G[0, 0], &F[0, 0], nb, P, K, &s[0, 0],
                                              accumulate)
    return S


def moments(const floating[:, ::1] xcT, const floating[::1] sw, bint ref):
    """[sum w, sum w x, vech(sum w x x^T)] of the columns of xcT (D x nb)."""
    cdef int D = xcT.shape[0]
    cdef Py_ssize_t nb = xcT.shape[1]
    _need(D >= 1 and nb >= 1 and sw.shape[0] in (0, nb), "inconsistent shapes")
    slot = np.zeros(1 + D + D * (D + 1) // 2)
    work = np.zeros(2 * D * nb)
    cdef double[::1] s = slot, w = work
    if floating is float:
        (fe_moments_ref_f32 if ref else fe_moments_f32)(&xcT[0, 0], nb, D, _opt(sw),
                                                        &w[0], &s[0], 0)
    else:
        (fe_moments_ref_f64 if ref else fe_moments_f64)(&xcT[0, 0], nb, D, _opt(sw),
                                                        &w[0], &s[0], 0)
    return slot
