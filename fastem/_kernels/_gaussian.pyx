"""Chunked, fused E-step + sufficient-statistics kernel for Gaussian mixtures.

One call of :func:`em_pass` reads X once. For every chunk of rows it

1. centres the chunk on a fixed global shift ``c`` (the weighted data mean),
   transposed: ``xc^T = (x - c)^T`` (D x nb). Means enter as ``mu' = mu - c``.
2. computes the log-density of every component from the Cholesky factor
   ``L_k`` of its precision (``precision_k = L_k L_k^T``)::

       log N(x | mu_k, Sigma_k) = -D/2 log(2 pi) + sum_d log L_k[d, d]
                                  - 1/2 || (x - mu_k)^T L_k ||^2

   in the data's precision. For D <= 16 (and triangular factors, which is
   what fastem computes) a register-blocked kernel does it for a block of
   rows at a time: full ``(xc - mu'_k)^T L_k`` over the factor's triangle
   only, tied ``y = xc^T L`` once then ``||y - mu'_k^T L||^2`` per
   component, diag / spherical ``sum_d (xc_d - mu'_kd)^2 p_kd`` directly
   (see csrc/fe_gmm.h). Beyond 16 features, full / tied use a BLAS GEMM of the
   chunk with the stacked factors (column bands that skip the triangle's
   zeros) and diag / spherical vectorised loops over the rows.
3. adds log w_k, takes the log-sum-exp of the row (vectorised exp and log,
   float32 for float32 data), and turns the row into responsibilities
   gamma_nk; the weighted log-likelihood sum_n w_n log p(x_n) is summed in
   float64.
4. accumulates the weighted sufficient statistics [N_k, S1_k, S2_k]:
   - with per-component references r_k (``centres``; the fit passes the
     current means for float32 'full', 'diag' and 'spherical', and in the
     other cases when the components lie far from c): sums of
     w gamma (x - r_k) and its squares / products by the row kernels of
     csrc/fe_gmm.h, float64 throughout for float64 data, float32 over at
     most 64 rows per accumulator then float64 for float32 data ('tied'
     then accumulates 'full' statistics, see ``stat_type``);
   - otherwise about c: float32 'tied' E-steps in float64 arithmetic on
     responsibilities renormalised so that they sum to the sample weight
     (the tied M-step needs it); everything else as ONE float64 product
     ``(w * gamma)^T @ F`` with the quadratic features F = [1, xc, q(xc)],
     q = vech(xc xc^T) (full, upper triangle row by row), xc^2 (diag),
     |xc|^2 (spherical) or nothing (tied: its second moment does not depend
     on the responsibilities).
   Column 0 is N_k, columns 1..D S1_k, the rest S2_k. Within a chunk,
   log-densities and responsibilities are held component-major (K x nb) so
   that the per-row work runs over rows in SIMD lanes.

Which C kernel (csrc/fe_gmm.h; name_f64 for float64, name_f32 for float32
data; those written with vectors have a scalar reference, csrc/fe_gmm_ref.h)
runs::

    step           covariance      D <= 16 (fused, in registers)   D > 16
    -------------  --------------  ------------------------------  ----------------------
    2. E-step      full            fe_estep_chol (upper or lower   _estep_gemm (banded
                                   factors)                        by the triangle) +
                   tied            fe_tied_project, then           fe_logprob_chol
                                   fe_estep_diag (unit scales)
                   full, tied with general (non-triangular) factors: _estep_gemm (one
                                   band) + fe_logprob_chol, any D
                   diag, sph.      fe_estep_diag                   fe_logprob_diag
    3. rows        all             fe_lse_cols (fe_argmax_cols for labels), fe_wsum
    4a. statistics full / tied     fe_stats_full (float32 with D <= 16 on
        about          with 'full' AVX-512: fe_stats_full16_f32)
        centres        statistics
                   diag, sph.      float64: fe_stats_diag_T_f64 (on the
                                   transposed rows); float32: fe_stats_diag,
                                   or with spherical E-steps and D <= 16
                                   fe_stats_sph_f32 (reuses the E-step's
                                   distances)
    4b. statistics float32 tied    fe_stats_tied_f32
        about the  E-step
        shift      mode "one",     fe_moments (the data's weighted moments)
                   full
                   otherwise       fe_features_T + fe_gram_f64 (csrc/fe_gram.h;
                                   a GEMM in the baseline build on CPUs
                                   without FMA)

Nothing of size N x K or N x K x D is allocated: per-thread workspaces hold
one chunk (``ChunkWs``, carved by ``_chunk_workspace``). Rows are cut into
chunks of a fixed size that does not depend on the thread count
(``fastem._parallel.chunk_rows`` of ``chunk_bytes_per_row``), and the chunks
into the fixed partitions of ``_common.pxd``. One parallel region per pass
hands out partitions dynamically; a partition runs its chunks in order,
summing their statistics into its own slot, and after the region the slots
are added in partition order. Every
floating-point sum is therefore done in the same order whatever the number
of threads: 1 and N threads give bit-identical results.
"""
from cython.parallel cimport prange
from libc.math cimport log, sqrt
from libc.stdlib cimport calloc, free
from libc.string cimport memset

from fastem._kernels._blas cimport gemm_rowmajor
from fastem._kernels._common cimport (
    Carver, Partitions, carve, carved_size, first_chunk, floating, padded_width,
    partitions_free, partitions_init, partitions_sum, slot_of, slot_open,
    workspaces_alloc)
from fastem._kernels._gmm_c cimport (
    fe_argmax_cols_f32, fe_argmax_cols_f64, fe_center_T_f32, fe_center_T_f64,
    fe_estep_chol_f32, fe_estep_chol_f64, fe_estep_chol_width, fe_estep_diag_f32,
    fe_estep_diag_f64, fe_features_T_f32, fe_features_T_f64, fe_gram_enabled, fe_gram_f64,
    fe_logprob_chol_f32, fe_logprob_chol_f64, fe_logprob_diag_f32, fe_logprob_diag_f64,
    fe_lse_cols_f32, fe_lse_cols_f64, fe_moments_f32, fe_moments_f64, fe_pad_rows_f32,
    fe_pad_rows_f64, FE_STATS_FULL16, fe_stats_diag_f32, fe_stats_diag_T_f64,
    fe_stats_full16_f32, fe_stats_full_f32, fe_stats_full_f64, fe_stats_sph_f32,
    fe_stats_tied_f32, fe_stats_tied_work, fe_tied_project_f32, fe_tied_project_f64,
    fe_wsum_f32, fe_wsum_f64)
from fastem._kernels._interrupt cimport interrupted, raise_pending
from fastem._kernels._openmp cimport omp_get_thread_num

from typing import NamedTuple

import numpy as np

# covariance types
cdef enum:
    COV_FULL = 0
    COV_TIED = 1
    COV_DIAG = 2
    COV_SPHERICAL = 3

# where the responsibilities of a chunk come from
cdef enum:
    RESP_ESTEP = 0    # E-step from the current parameters
    RESP_GIVEN = 1    # a given (N x K) float64 matrix
    RESP_LABELS = 2   # hard int32 labels (one-hot responsibilities)
    RESP_ONE = 3      # K == 1 and gamma = 1 (weighted moments of the data)

COV_TYPES = {"full": COV_FULL, "tied": COV_TIED, "diag": COV_DIAG,
             "spherical": COV_SPHERICAL}
RESP_MODES = {"estep": RESP_ESTEP, "given": RESP_GIVEN, "labels": RESP_LABELS,
              "one": RESP_ONE}


# structure of the Cholesky factors in the E-step operand (full / tied)
cdef enum:
    TRI_GENERAL = 0
    TRI_UPPER = 1
    TRI_LOWER = 2
TRIANGLES = {"general": TRI_GENERAL, "upper": TRI_UPPER, "lower": TRI_LOWER}
# bands of columns d of the stacked factors (see _estep_gemm)
cdef enum:
    ESTEP_BANDS = 4


cdef inline void _estep_gemm(const floating *A, const floating *xcT, floating *Y,
                             Py_ssize_t nb, Py_ssize_t D, Py_ssize_t W,
                             Py_ssize_t n_fac, int tri) noexcept nogil:
    """YT (W x nb) = A^T @ xcT, skipping the zeros of triangular factors.

    The E-step of 'full' / 'tied' when the fused kernel does not apply
    (D > 16 or factors that are not triangular). A (D x W) holds n_fac
    factors column-interleaved d-major: column d * n_fac + k is column d of
    L_k. Output row d * n_fac + k only involves rows i of A with
    L_k[i, d] != 0: i <= d for an upper factor, i >= d for a lower one.
    Cutting the columns into ESTEP_BANDS bands [d0, d1) and limiting each
    band's inner dimension to rows [0, d1) (upper) or [d0, D) (lower) skips
    ~3/8 of the multiply-adds with 4 bands; every term left out is an exact
    zero of the factor.
    """
    cdef Py_ssize_t nbands = ESTEP_BANDS if (tri != TRI_GENERAL and D >= 2 * ESTEP_BANDS) else 1
    cdef Py_ssize_t band, d0, d1, r0, r1
    for band in range(nbands):
        d0 = band * D // nbands
        d1 = (band + 1) * D // nbands
        r0 = 0
        r1 = D
        if tri == TRI_UPPER:
            r1 = d1
        elif tri == TRI_LOWER:
            r0 = d0
        gemm_rowmajor(True, False, <int>((d1 - d0) * n_fac), <int>nb, <int>(r1 - r0),
                      <floating>1.0, A + r0 * W + d0 * n_fac, <int>W,
                      xcT + r0 * nb, <int>nb, <floating>0.0,
                      Y + d0 * n_fac * nb, <int>nb)


def n_stat_features(int cov_type, Py_ssize_t D):
    """Number P of quadratic features [1, xc, q(xc)] for a covariance type."""
    if cov_type == COV_FULL:
        return 1 + D + D * (D + 1) // 2
    if cov_type == COV_TIED:
        return 1 + D
    if cov_type == COV_DIAG:
        return 1 + 2 * D
    return 2 + D


cdef inline Py_ssize_t _estep_width(int cov_type, Py_ssize_t K,
                                    Py_ssize_t D) noexcept nogil:
    """Rows of the E-step GEMM output per row of the chunk (full, tied)."""
    if cov_type == COV_FULL:
        return K * D
    if cov_type == COV_TIED:
        return D
    return 0


def chunk_bytes_per_row(int cov_type, Py_ssize_t K, Py_ssize_t D, Py_ssize_t itemsize):
    """Bytes of one thread's workspace per row of a chunk (the E-step's
    K-wide work), for ``fastem._parallel.chunk_rows``."""
    cdef Py_ssize_t W = _estep_width(cov_type, K, D)
    cdef Py_ssize_t per_row = itemsize * (D + W + 2 * K + 4 + 3 * padded_width(D, itemsize))
    if cov_type == COV_TIED:
        per_row += 8 * (1 + D + K)
    return int(per_row)


cdef struct ChunkWs:
    # One thread's workspace for one chunk of nb rows. The floating arrays
    # are void * (a struct cannot hold the fused type); _process_chunk casts.
    void *xcT      # D x nb: the chunk centred on the shift, transposed
    void *Y        # W x nb: the E-step GEMM output (full / tied, D > 16)
    void *G        # nb: scratch of the log-density kernels
    void *lpf      # K x nb: log-densities, then responsibilities (float32
                   # data; float64 data uses lpT in place)
    void *lse_f    # nb: log-sum-exp of each row
    void *m_f      # nb: row maxima
    void *s_f      # nb: row sums
    void *xp       # nb x Dp: rows padded to whole vectors
    void *Zs       # nb x Dp: scratch of the 'full' statistics
    void *GZs      # nb x Dp: scratch of the 'full' statistics
    void *mp       # K x Dp: padded references
    void *Rs       # K x nb: squared distances ('spherical' float32)
    double *FT     # P x nb: quadratic features (statistics about the shift)
    double *lpT    # K x nb: float64 responsibilities (FT + P nb)
    double *SP     # P x K: one chunk's statistics about the shift, transposed
    # FT and lpT start a float64 block that also serves, alone, as the
    # scratch of fe_moments_* (2 D nb) and fe_stats_tied_f32


cdef inline ChunkWs _chunk_workspace(Carver *cv, Py_ssize_t nb, Py_ssize_t D,
                                     Py_ssize_t K, Py_ssize_t P, Py_ssize_t W,
                                     Py_ssize_t itemsize, bint tied) noexcept nogil:
    """Carve one thread's workspace (or, with cv.base NULL, measure it): the
    only place that knows its layout."""
    cdef ChunkWs w
    cdef Py_ssize_t Dp = padded_width(D, itemsize)
    cdef Py_ssize_t n_double = max(nb * (P + K), 2 * D * nb)
    if tied:
        n_double = max(n_double, fe_stats_tied_work(K, D))
    w.xcT = carve(cv, D * nb, itemsize)
    w.Y = carve(cv, W * nb, itemsize)
    w.G = carve(cv, nb, itemsize)
    w.lpf = carve(cv, K * nb, itemsize)
    w.lse_f = carve(cv, nb, itemsize)
    w.m_f = carve(cv, nb, itemsize)
    w.s_f = carve(cv, nb, itemsize)
    w.xp = carve(cv, nb * Dp, itemsize)
    w.Zs = carve(cv, nb * Dp, itemsize)
    w.GZs = carve(cv, nb * Dp, itemsize)
    w.mp = carve(cv, K * Dp, itemsize)
    w.Rs = carve(cv, K * nb, itemsize)
    w.FT = <double *>carve(cv, n_double, sizeof(double))
    w.lpT = NULL if w.FT == NULL else w.FT + nb * P
    w.SP = <double *>carve(cv, P * K, sizeof(double))
    return w


def workspace_bytes(int cov_type, Py_ssize_t K, Py_ssize_t D, Py_ssize_t B,
                    Py_ssize_t itemsize, int stat_type=-1):
    """Bytes of ONE thread's workspace for chunks of B rows (see ChunkWs).

    ``stat_type``: the layout of the statistics (default: ``cov_type``'s;
    'tied' E-steps may accumulate 'full' statistics, see ``em_pass``).
    """
    cdef Carver cv = Carver(NULL, 0)
    _chunk_workspace(&cv, B, D, K,
                     n_stat_features(cov_type if stat_type < 0 else stat_type, D),
                     _estep_width(cov_type, K, D), itemsize, cov_type == COV_TIED)
    return int(carved_size(&cv))


cdef struct PassArgs:
    # What every chunk of one em_pass reads, set once by em_pass (see its
    # docstring). Arrays of the data's type are void * (a struct cannot hold
    # the fused type); pointers to per-row arrays point at row 0, NULL when
    # absent.
    Py_ssize_t N, D, K, P, B          # rows, features, components,
                                      # statistics columns, rows per chunk
    int cov_type, stat_type, mode, tri
    bint do_stats, reuse_distances
    const void *sw                    # (N,) sample weights
    const void *shift                 # (D,) the global centre c
    const void *A                     # E-step operands
    const void *crow
    const double *const_k
    const void *fused_a               # packed operands of the fused E-steps
    const void *fused_b
    const void *centres               # (K, D) references of the statistics
    const double *resp_in             # (N, K) given responsibilities
    const int *labels_in              # (N,) given labels
    void *out_lpn                     # (N,) log p(x_n)
    void *out_resp                    # (N, K) responsibilities
    long long *out_labels             # (N,) labels


cdef double _process_chunk(const PassArgs *a, const floating *X, Py_ssize_t r0,
                           Py_ssize_t nb, bint accumulate, double *slot,
                           ChunkWs *ws) noexcept nogil:
    """One chunk of ``nb`` rows, ``X`` = its first row (row ``r0`` of the
    pass): E-step, row outputs and statistics.

    The chunk's statistics (layout of ``stat_type``) are written into (or,
    with ``accumulate``, added to) ``slot``.

    Within the chunk, log-densities and responsibilities are stored
    component-major (``lp[k * nb + b]``) so that per-row work vectorises
    over rows. In an E-step they stay in the data's precision (float32 data:
    float32 log-sum-exp, twice the SIMD lanes). With ``centres`` (one
    reference per component, see ``em_pass``) the statistics are taken
    about them by the row kernels of csrc/fe_gmm.h, in any mode; otherwise
    about the global shift: float32 'tied' E-steps by fe_stats_tied_f32, the
    rest by float64 dot products of quadratic features (fe_gram_f64).

    ``a``: the pass's operands (PassArgs); ``ws``: this thread's workspace (ChunkWs, carved by _chunk_workspace).
    Returns the chunk's weighted log-likelihood sum_n w_n log p(x_n).
    """
    cdef Py_ssize_t D = a.D, K = a.K
    cdef int cov_type = a.cov_type, mode = a.mode
    cdef bint do_stats = a.do_stats
    cdef const floating *sw = NULL if a.sw == NULL else <const floating *>a.sw + r0
    cdef floating *xcT = <floating *>ws.xcT
    cdef floating *lpf
    cdef floating *rf
    cdef Py_ssize_t b, k
    cdef double ll = 0.0
    # statistics about each component's own reference (see em_pass)
    cdef bint own_centres = do_stats and a.centres != NULL
    # float32 'tied' E-step about the shift: fe_stats_tied_f32
    cdef bint tied_f = (floating is float and do_stats and not own_centres
                        and mode == RESP_ESTEP and cov_type == COV_TIED)
    # float32 spherical statistics reuse the fused E-step's squared
    # distances (ws.Rs)
    cdef bint sph_r = (floating is float and own_centres and a.fused_a != NULL
                       and mode == RESP_ESTEP and cov_type == COV_SPHERICAL
                       and a.reuse_distances)
    if floating is double:
        lpf = ws.lpT  # float64 responsibilities feed the statistics in place
    else:
        lpf = <floating *>ws.lpf

    # 1. centre the chunk on the global shift, transposed (D x nb)
    if floating is double:
        fe_center_T_f64(X, nb, <int>D, <const floating *>a.shift, xcT)
    else:
        fe_center_T_f32(X, nb, <int>D, <const floating *>a.shift, xcT)

    if mode == RESP_ONE and cov_type == COV_FULL and do_stats:
        # the data's weighted moments (see fe_moments_*); FT as scratch
        if floating is double:
            fe_moments_f64(xcT, nb, <int>D, sw, ws.FT, slot, accumulate)
        else:
            fe_moments_f32(xcT, nb, <int>D, sw, ws.FT, slot, accumulate)
        return 0.0

    if mode == RESP_ESTEP:
        _log_densities(a, xcT, nb, ws, lpf, <floating *>ws.Rs if sph_r else NULL)
        ll = _normalise_rows(a, r0, nb, ws, lpf)
        if do_stats and sw != NULL and not tied_f:
            for k in range(K):
                rf = lpf + k * nb
                for b in range(nb):
                    rf[b] = rf[b] * sw[b]
    else:
        _input_responsibilities(a, sw, r0, nb, ws.lpT)
    if not do_stats:
        return ll
    # 4. statistics
    if own_centres:
        _centre_statistics(a, X, nb, accumulate, slot, ws, lpf, sph_r)
    else:
        _shift_statistics(a, sw, xcT, nb, accumulate, slot, ws, lpf, tied_f)
    return ll


cdef void _input_responsibilities(const PassArgs *a, const floating *sw, Py_ssize_t r0,
                                  Py_ssize_t nb, double *lpT) noexcept nogil:
    """Weighted responsibilities w gamma (K x nb, float64) of the chunk from
    the pass's input: given responsibilities, labels (one-hot) or, for the
    data's moments, gamma = 1 (K = 1)."""
    cdef Py_ssize_t K = a.K, b, k
    cdef const double *resp_in = NULL if a.resp_in == NULL else a.resp_in + r0 * K
    cdef const int *labels_in = NULL if a.labels_in == NULL else a.labels_in + r0
    cdef double *r
    if a.mode == RESP_GIVEN:
        for k in range(K):
            r = lpT + k * nb
            for b in range(nb):
                r[b] = resp_in[b * K + k] * (1.0 if sw == NULL else <double>sw[b])
    elif a.mode == RESP_LABELS:
        for b in range(nb * K):
            lpT[b] = 0.0
        for b in range(nb):
            lpT[labels_in[b] * nb + b] = 1.0 if sw == NULL else <double>sw[b]
    else:  # RESP_ONE (K == 1)
        for b in range(nb):
            lpT[b] = 1.0 if sw == NULL else <double>sw[b]


cdef void _shift_statistics(const PassArgs *a, const floating *sw, const floating *xcT,
                            Py_ssize_t nb, bint accumulate, double *slot, ChunkWs *ws,
                            floating *lpf, bint tied_f) noexcept nogil:
    """4b. The chunk's statistics about the global shift, into ``slot``:
    float32 'tied' E-steps by fe_stats_tied_f32 (float64 N_k and S1_k from
    renormalised float32 responsibilities, FT as its scratch); otherwise
    slot (K x P) = (w gamma)^T (K x nb) @ FT^T (nb x P) in float64, FT the
    quadratic features [1; xc; q(xc)] (float64 E-steps left their
    responsibilities in lpT), as K P dot products of rows contiguous over
    the chunk (fe_gram_f64, csrc/fe_gram.h: nothing packed).

    Where fe_gram_enabled() is 0 (the baseline build on a CPU without FMA) a
    GEMM computes the transpose instead, SP (P x K) = FT @ (w gamma), and
    adds it into slot: BLAS packs its operands, and in this orientation it
    packs FT (by far the larger) as the matrix whose columns are contiguous,
    a plain copy. In the other one, OpenBLAS's SkylakeX kernels pack it
    with a transposing copy: measured on Zen 4 with K = 16, P = 153 (D = 16)
    and 512 to 2048 rows, 27-30 GFLOP/s here against 16-19 in the other
    orientation (the Haswell kernels: 25-31 either way)."""
    cdef Py_ssize_t D = a.D, K = a.K, P = a.P, k, p
    if floating is float:
        if tied_f:
            fe_stats_tied_f32(lpf, nb, <int>D, <int>K, sw, xcT, ws.FT, slot, accumulate)
            return
    if floating is double:
        fe_features_T_f64(xcT, nb, <int>D, a.stat_type, 1, ws.FT)
    else:
        fe_features_T_f32(xcT, nb, <int>D, a.stat_type, 1, ws.FT)
    if fe_gram_enabled():
        fe_gram_f64(ws.lpT, ws.FT, nb, <int>P, <int>K, slot, accumulate)
        return
    gemm_rowmajor(False, True, <int>P, <int>K, <int>nb, 1.0,
                  ws.FT, <int>nb, ws.lpT, <int>nb, 0.0, ws.SP, <int>K)
    for k in range(K):
        for p in range(P):
            slot[k * P + p] = (slot[k * P + p] + ws.SP[p * K + k] if accumulate
                               else ws.SP[p * K + k])


cdef void _centre_statistics(const PassArgs *a, const floating *X, Py_ssize_t nb,
                             bint accumulate, double *slot, ChunkWs *ws,
                             floating *lpf, bint sph_r) noexcept nogil:
    """4a. The chunk's statistics about each component's own reference
    (``a.centres``), weights w gamma in lpf (float32 data) or ws.lpT
    (float64, and float32 outside E-steps), into ``slot``. ``sph_r``: float32
    spherical E-step whose squared distances are in ws.Rs."""
    cdef Py_ssize_t D = a.D, K = a.K, P = a.P, e
    cdef Py_ssize_t Dp = padded_width(D, sizeof(floating))
    cdef int stat_type = a.stat_type, mode = a.mode
    cdef const floating *shift = <const floating *>a.shift
    cdef const floating *A = <const floating *>a.A
    cdef const floating *centres = <const floating *>a.centres
    cdef const floating *rows
    cdef floating *xcT = <floating *>ws.xcT
    cdef floating *xp = <floating *>ws.xp
    cdef floating *Zs = <floating *>ws.Zs
    cdef floating *GZs = <floating *>ws.GZs
    cdef floating *mp = <floating *>ws.mp
    cdef floating *Rs = <floating *>ws.Rs
    cdef double *lpT = ws.lpT
    if not accumulate:
        for e in range(K * P):
            slot[e] = 0.0
    if floating is float:
        if mode != RESP_ESTEP:
            for e in range(K * nb):
                lpf[e] = <float>lpT[e]
        if sph_r:
            fe_stats_sph_f32(xcT, nb, <int>D, <int>K, lpf, Rs, A, centres, shift,
                           slot, P)
            return
    if floating is double:
        if stat_type != COV_FULL:
            # the raw rows transposed (D x nb fits in ws.xp's nb x Dp)
            fe_center_T_f64(X, nb, <int>D, NULL, xp)
            fe_stats_diag_T_f64(xp, nb, <int>D, <int>K, stat_type == COV_SPHERICAL,
                                centres, lpf, slot, P)
            return
    if Dp == D:
        rows = X
    else:
        if floating is double:
            fe_pad_rows_f64(X, nb, <int>D, <int>Dp, xp)
        else:
            fe_pad_rows_f32(X, nb, <int>D, <int>Dp, xp)
        rows = xp
    if floating is double:
        fe_pad_rows_f64(centres, K, <int>D, <int>Dp, mp)
        fe_stats_full_f64(rows, nb, <int>D, <int>Dp, <int>K, mp, lpf, Zs, GZs,
                          slot, P)
    else:
        fe_pad_rows_f32(centres, K, <int>D, <int>Dp, mp)
        if stat_type == COV_FULL and Dp == 16 and FE_STATS_FULL16:
            fe_stats_full16_f32(rows, nb, <int>D, <int>K, mp, lpf, GZs, slot, P)
        elif stat_type == COV_FULL:
            fe_stats_full_f32(rows, nb, <int>D, <int>Dp, <int>K, mp, lpf, Zs, GZs,
                            slot, P)
        else:
            fe_stats_diag_f32(rows, nb, <int>D, <int>Dp, <int>K,
                            stat_type == COV_SPHERICAL, mp, lpf, slot, P)


cdef void _log_densities(const PassArgs *a, const floating *xcT, Py_ssize_t nb,
                         ChunkWs *ws, floating *lpf, floating *Rs) noexcept nogil:
    """2. log w_k + log N(x | k) of the chunk's ``nb`` rows (centred and
    transposed in ``xcT``) into lpf (K x nb), in the data's precision.

    ``Rs``: where the float32 spherical kernel leaves the squared distances
    for the statistics (or NULL).
    """
    cdef Py_ssize_t D = a.D, K = a.K
    cdef int cov_type = a.cov_type, tri = a.tri
    cdef const floating *A = <const floating *>a.A
    cdef const floating *crow = <const floating *>a.crow
    cdef const double *const_k = a.const_k
    cdef const floating *fused_a = <const floating *>a.fused_a
    cdef const floating *fused_b = <const floating *>a.fused_b
    cdef floating *Y = <floating *>ws.Y
    cdef floating *G = <floating *>ws.G
    cdef Py_ssize_t n_dd
    if cov_type == COV_FULL and fused_a != NULL:
        # triangular factors, D <= 16: fused, in registers (csrc/fe_gmm.h)
        if floating is double:
            fe_estep_chol_f64(xcT, nb, <int>D, <int>K, tri == TRI_LOWER,
                            fused_a, fused_b, const_k, lpf)
        else:
            fe_estep_chol_f32(xcT, nb, <int>D, <int>K, tri == TRI_LOWER,
                            fused_a, fused_b, const_k, lpf)
    elif cov_type == COV_TIED and fused_a != NULL:
        # triangular factor, D <= 16: y = xc^T L once into Y (D x nb), then
        # the diag kernel's ||y - crow_k||^2 with unit scales (csrc/fe_gmm.h);
        # fused_b = [crow; ones] (K x DD each)
        n_dd = K * fe_estep_chol_width(<int>D)
        if floating is double:
            fe_tied_project_f64(xcT, nb, <int>D, tri == TRI_LOWER, fused_a, Y)
            fe_estep_diag_f64(Y, nb, <int>D, <int>K, fused_b + n_dd, fused_b,
                            const_k, lpf, NULL)
        else:
            fe_tied_project_f32(xcT, nb, <int>D, tri == TRI_LOWER, fused_a, Y)
            fe_estep_diag_f32(Y, nb, <int>D, <int>K, fused_b, fused_b + n_dd,
                            const_k, lpf, NULL)
    elif cov_type == COV_FULL or cov_type == COV_TIED:
        # YT (W x nb) = A^T @ xcT: all K factors in one GEMM per band of
        # columns d (full) -- see _estep_gemm for the triangular bands
        _estep_gemm(A, xcT, Y, nb, D, K * D if cov_type == COV_FULL else D,
                    K if cov_type == COV_FULL else 1, tri)
        if floating is double:
            fe_logprob_chol_f64(Y, nb, <int>K, <int>D, cov_type == COV_TIED,
                              crow, const_k, G, lpf)
        else:
            fe_logprob_chol_f32(Y, nb, <int>K, <int>D, cov_type == COV_TIED,
                              crow, const_k, G, lpf)
    elif fused_a != NULL:
        # diag / spherical, D <= 16: fused, in registers (csrc/fe_gmm.h)
        if floating is double:
            fe_estep_diag_f64(xcT, nb, <int>D, <int>K, fused_a, fused_b, const_k,
                            lpf, NULL)
        else:
            fe_estep_diag_f32(xcT, nb, <int>D, <int>K, fused_a, fused_b, const_k,
                            lpf, Rs)
    else:
        # diag / spherical: direct, A = shifted means (K x D), crow = p^2
        if floating is double:
            fe_logprob_diag_f64(xcT, nb, <int>K, <int>D, cov_type == COV_SPHERICAL,
                              A, crow, const_k, G, lpf)
        else:
            fe_logprob_diag_f32(xcT, nb, <int>K, <int>D, cov_type == COV_SPHERICAL,
                              A, crow, const_k, G, lpf)

cdef double _normalise_rows(const PassArgs *a, Py_ssize_t r0, Py_ssize_t nb,
                            ChunkWs *ws, floating *lpf) noexcept nogil:
    """3. The chunk's log-densities (lpf, K x nb, rows ``r0`` ..) become
    responsibilities in place (log-sum-exp per row); labels, log p(x_n) and
    responsibilities go to the pass's row outputs. Returns
    sum_n w_n log p(x_n)."""
    cdef Py_ssize_t K = a.K
    cdef const floating *sw = NULL if a.sw == NULL else <const floating *>a.sw + r0
    cdef floating *m_f = <floating *>ws.m_f
    cdef floating *s_f = <floating *>ws.s_f
    cdef floating *lse_f = <floating *>ws.lse_f
    cdef floating *out_lpn = NULL if a.out_lpn == NULL else <floating *>a.out_lpn + r0
    cdef floating *out_resp = NULL if a.out_resp == NULL else <floating *>a.out_resp + r0 * K
    cdef long long *out_labels = NULL if a.out_labels == NULL else a.out_labels + r0
    cdef Py_ssize_t b, k
    cdef floating *rf
    cdef double ll
    if floating is double:
        if out_labels != NULL:
            fe_argmax_cols_f64(lpf, nb, <int>K, m_f, out_labels)
        fe_lse_cols_f64(lpf, nb, <int>K, m_f, s_f, lse_f)
        ll = fe_wsum_f64(lse_f, sw, nb)
    else:
        if out_labels != NULL:
            fe_argmax_cols_f32(lpf, nb, <int>K, m_f, out_labels)
        fe_lse_cols_f32(lpf, nb, <int>K, m_f, s_f, lse_f)
        ll = fe_wsum_f32(lse_f, sw, nb)
    if out_lpn != NULL:
        for b in range(nb):
            out_lpn[b] = lse_f[b]
    if out_resp != NULL:
        for k in range(K):
            rf = lpf + k * nb
            for b in range(nb):
                out_resp[b * K + k] = rf[b]
    return ll




cdef double _process_partition(const PassArgs *a, const floating *X,
                               Py_ssize_t c0, Py_ssize_t c1, double *slot,
                               char *thread_ws, int *cancel) noexcept nogil:
    """Chunks c0 .. c1-1 of X in order, statistics summed into ``slot``, in
    the workspace ``thread_ws`` of the calling thread; stops early when the
    pass is interrupted (``cancel``)."""
    cdef double ll = 0.0
    cdef Py_ssize_t ci, r0
    cdef Carver cv = Carver(thread_ws, 0)
    cdef ChunkWs ws = _chunk_workspace(&cv, a.B, a.D, a.K, a.P,
                                       _estep_width(a.cov_type, a.K, a.D),
                                       sizeof(floating), a.cov_type == COV_TIED)
    for ci in range(c0, c1):
        if interrupted(cancel):
            break
        r0 = ci * a.B
        ll += _process_chunk(a, X + r0 * a.D, r0, min(a.B, a.N - r0), ci > c0,
                             slot, &ws)
    return ll


class EStep(NamedTuple):
    """Responsibilities from an E-step with these operands (see em_pass).

    ``A``: full (D, K*D) stacked factors, column d*K+k = column d of L_k;
    tied (D, D) = L; diag / spherical (K, D) shifted means mu'. ``crow``:
    full (D*K,) rows mu'_k^T L_k laid out d-major (index d*K+k); tied
    (D*K,) likewise with L; diag (K*D,) precisions p^2 = 1/var; spherical
    (K,) precisions. ``const_k``: (K,) float64 log w_k + log det L_k -
    D/2 log(2 pi). ``triangle``: 'upper' / 'lower' when every factor in A is
    (lets the kernels skip structural zeros), else 'general'.
    ``reuse_distances``: float32 'spherical' statistics taken from the
    E-step's squared distances to the current means (corrected to the
    references); False computes them from the rows (a pass repeated about
    new references, far from the E-step's means).
    """
    A: object
    crow: object
    const_k: object
    triangle: str = "general"
    reuse_distances: bool = True


class Given(NamedTuple):
    """Given responsibilities: (N, K) float64."""
    resp: object


class Labels(NamedTuple):
    """Hard labels (one-hot responsibilities): (N,) int32 in [0, K)."""
    labels: object
    n_components: int


class Ones(NamedTuple):
    """K = 1 and gamma = 1: the data's weighted moments."""


class RowOutputs(NamedTuple):
    """Per-row outputs of an E-step (each optional): ``log_prob`` (N,)
    log p(x_n); ``resp`` (N, K) responsibilities; ``labels`` (N,) int64
    argmax_k of w_k N(x_n | k)."""
    log_prob: object = None
    resp: object = None
    labels: object = None


def em_pass(const floating[:, ::1] X, sample_weight, const floating[::1] shift,
            str cov_type, source, stats=None, centres=None, outputs=None,
            Py_ssize_t chunk=256, int n_threads=1):
    """One fused pass over X; returns sum_n w_n log p(x_n) (0 unless E-step).

    Parameters
    ----------
    X : (N, D) floating, C-contiguous
    sample_weight : (N,) floating or None (unit weights)
    shift : (D,) floating; the global centre c
    cov_type : 'full', 'tied', 'diag' or 'spherical'
    source : where the responsibilities come from: ``EStep`` operands,
        ``Given`` responsibilities, ``Labels`` or ``Ones`` (K = 1)
    stats : (K, P) float64 output (overwritten), or None for no statistics.
        P = n_stat_features of the covariance type; a 'tied' pass may ask
        for 'full' statistics (P of 'full') about ``centres``: the tied
        covariance is then the sum of the components' scatters, exact for
        components far from ``shift``.
    centres : (K, D) floating references of the statistics, one per
        component (usually the current means): S1_k and S2_k are then sums
        of w gamma (x - centres[k]) and its squares / products, with no
        cancellation however far the components lie from ``shift``. None:
        statistics about ``shift`` (the only choice for 'tied' statistics).
    outputs : ``RowOutputs`` (E-step only) or None
    chunk : rows per chunk (fastem._parallel.chunk_rows of
        chunk_bytes_per_row)
    n_threads : OpenMP threads
    """
    cdef PassArgs a
    cdef floating *fused = NULL
    cdef double[:, ::1] st
    if chunk < 1 or n_threads < 1:
        raise ValueError("em_pass: chunk and n_threads must be >= 1")
    memset(&a, 0, sizeof(PassArgs))
    a.N, a.D, a.B = X.shape[0], X.shape[1], chunk
    _set_kind(&a, cov_type, source, stats)
    if shift.shape[0] != a.D:
        raise ValueError("em_pass: shift must have D entries")
    a.shift = &shift[0]
    _set_weights(&a, X, sample_weight)
    _set_centres(&a, X, centres)
    _set_outputs(&a, X, outputs)
    if a.mode == RESP_ESTEP:
        fused = _set_estep(&a, X, source)
    else:
        _set_given(&a, source)
    if a.N == 0:
        free(fused)
        if a.do_stats:
            st = stats
            st[:, :] = 0.0
        return 0.0
    try:
        return _run_pass(&a, &X[0, 0], stats, n_threads)
    finally:
        free(fused)


cdef void _set_kind(PassArgs *a, str cov_type, source, stats) except *:
    """Covariance type, mode, K and the statistics' layout, checked."""
    if cov_type not in COV_TYPES:
        raise ValueError(f"em_pass: unknown covariance type {cov_type!r}")
    a.cov_type = COV_TYPES[cov_type]
    if isinstance(source, EStep):
        a.mode, a.K = RESP_ESTEP, len(source.const_k)
    elif isinstance(source, Given):
        a.mode, a.K = RESP_GIVEN, source.resp.shape[1]
    elif isinstance(source, Labels):
        a.mode, a.K = RESP_LABELS, source.n_components
    elif isinstance(source, Ones):
        a.mode, a.K = RESP_ONE, 1
    else:
        raise TypeError("em_pass: source must be EStep, Given, Labels or Ones")
    if a.K < 1:
        raise ValueError("em_pass: K must be >= 1")
    a.stat_type = a.cov_type
    a.P = n_stat_features(a.cov_type, a.D)
    a.do_stats = stats is not None
    if not a.do_stats:
        return
    if (a.cov_type == COV_TIED and stats.shape[1] == n_stat_features(COV_FULL, a.D)):
        a.stat_type, a.P = COV_FULL, stats.shape[1]
    if stats.dtype != np.float64 or stats.shape != (a.K, a.P):
        raise ValueError(f"em_pass: stats must be float64 ({a.K}, {a.P})")


cdef void _set_weights(PassArgs *a, const floating[:, ::1] X, sample_weight) except *:
    # (X fixes the data's type: every floating array of a pass has it)
    cdef const floating[::1] sw
    if sample_weight is None:
        return
    sw = sample_weight
    if sw.shape[0] != a.N:
        raise ValueError("em_pass: sample_weight must have N entries")
    if a.N > 0:
        a.sw = &sw[0]


cdef void _set_centres(PassArgs *a, const floating[:, ::1] X, centres) except *:
    cdef const floating[:, ::1] c
    if centres is None or not a.do_stats:
        return
    c = centres
    if c.shape[0] != a.K or c.shape[1] != a.D:
        raise ValueError("em_pass: centres must be (K, D)")
    if a.stat_type == COV_TIED or a.mode == RESP_ONE:
        raise ValueError("em_pass: 'tied' statistics and moments are about the shift")
    a.centres = &c[0, 0]


cdef void _set_outputs(PassArgs *a, const floating[:, ::1] X, outputs) except *:
    cdef floating[::1] lpn
    cdef floating[:, ::1] resp
    cdef long long[::1] labels
    if outputs is None or a.N == 0:
        return
    if a.mode != RESP_ESTEP:
        raise ValueError("em_pass: row outputs need an E-step")
    if outputs.log_prob is not None:
        lpn = outputs.log_prob
        if lpn.shape[0] != a.N:
            raise ValueError("em_pass: log_prob must have N entries")
        a.out_lpn = &lpn[0]
    if outputs.resp is not None:
        resp = outputs.resp
        if resp.shape[0] != a.N or resp.shape[1] != a.K:
            raise ValueError("em_pass: resp must be (N, K)")
        a.out_resp = &resp[0, 0]
    if outputs.labels is not None:
        labels = outputs.labels
        if labels.shape[0] != a.N:
            raise ValueError("em_pass: labels must have N entries")
        a.out_labels = &labels[0]


cdef floating *_set_estep(PassArgs *a, const floating[:, ::1] X, source) except? NULL:
    """The E-step operands, checked; returns the packed fused operands
    (owned by the caller, NULL where no fused kernel applies)."""
    cdef const floating[:, ::1] A = source.A
    cdef const floating[::1] crow = source.crow
    cdef const double[::1] const_k = source.const_k
    cdef Py_ssize_t D = a.D, K = a.K
    cdef floating *fused
    if source.triangle not in TRIANGLES:
        raise ValueError(f"em_pass: unknown triangle {source.triangle!r}")
    a.tri = TRIANGLES[source.triangle]
    a.reuse_distances = source.reuse_distances
    if a.cov_type == COV_FULL:
        ok = A.shape[0] == D and A.shape[1] == K * D and crow.shape[0] == D * K
    elif a.cov_type == COV_TIED:
        ok = A.shape[0] == D and A.shape[1] == D and crow.shape[0] == D * K
    elif a.cov_type == COV_DIAG:
        ok = A.shape[0] == K and A.shape[1] == D and crow.shape[0] == K * D
    else:
        ok = A.shape[0] == K and A.shape[1] == D and crow.shape[0] == K
    if not ok:
        raise ValueError("em_pass: E-step operands of the wrong shape")
    a.A, a.crow, a.const_k = &A[0, 0], &crow[0], &const_k[0]
    fused = _fused_operands(A, crow, a.cov_type, K, a.tri)
    if fused != NULL:
        a.fused_a = fused
        a.fused_b = fused + fused_a_len(a.cov_type, K, D)
    return fused


cdef void _set_given(PassArgs *a, source) except *:
    """Given responsibilities or labels, checked (labels in [0, K))."""
    cdef const double[:, ::1] resp
    cdef const int[::1] labels
    if isinstance(source, Given):
        resp = source.resp
        if resp.shape[0] != a.N:
            raise ValueError("em_pass: resp must be (N, K)")
        if a.N > 0:
            a.resp_in = &resp[0, 0]
    elif isinstance(source, Labels):
        labels = source.labels
        if labels.shape[0] != a.N:
            raise ValueError("em_pass: labels must have N entries")
        if a.N > 0:
            if np.min(source.labels) < 0 or np.max(source.labels) >= a.K:
                raise ValueError("em_pass: labels must lie in [0, K)")
            a.labels_in = &labels[0]


cdef double _run_pass(PassArgs *a, const floating *X, stats, int n_threads) except? -1.0:
    """The parallel pass: fixed partitions of the chunks (see _common.pxd),
    slot p holding partition p's statistics (K x P) and then its
    log-likelihood, summed in partition order after the region."""
    cdef Py_ssize_t KP = a.K * a.P, p, per_thread
    cdef double ll_total = 0.0
    cdef int tid, cancel = 0
    cdef Partitions pt
    cdef double[:, ::1] st
    cdef void *raw = NULL
    cdef char *ws = NULL
    per_thread = workspace_bytes(a.cov_type, a.K, a.D, a.B, sizeof(floating), a.stat_type)
    pt.slots = NULL
    pt.raw = NULL
    if partitions_init(&pt, a.N, a.B, KP + 1) == 0:
        ws = workspaces_alloc(per_thread, n_threads, &raw)
    if ws == NULL:
        free(raw); partitions_free(&pt)
        raise MemoryError("fastem: could not allocate the mixture pass workspace")
    with nogil:
        for p in prange(pt.n_parts, schedule="dynamic", chunksize=1,
                        num_threads=n_threads):
            tid = omp_get_thread_num()
            slot_open(&pt, p)
            slot_of(&pt, p)[KP] = _process_partition(
                a, X, first_chunk(&pt, p), first_chunk(&pt, p + 1), slot_of(&pt, p),
                ws + tid * per_thread, &cancel)
        partitions_sum(&pt, KP, 1, &ll_total)
    if a.do_stats:
        st = stats
        st[:, :] = 0.0
        partitions_sum(&pt, 0, KP, &st[0, 0])
    partitions_free(&pt)
    free(raw)
    raise_pending(cancel)
    return ll_total


cdef inline Py_ssize_t fused_a_len(int cov_type, Py_ssize_t K, Py_ssize_t D) noexcept nogil:
    """Length of fused_a in the block _fused_operands returns (fused_b follows)."""
    cdef Py_ssize_t DD = fe_estep_chol_width(<int>D)
    if cov_type == COV_FULL:
        return K * DD * DD
    if cov_type == COV_TIED:
        return DD * DD
    return K * DD


cdef floating *_fused_operands(const floating[:, ::1] A, const floating[::1] crow,
                               int cov_type, Py_ssize_t K, int tri) except? NULL:
    """The operands of the fused E-steps (D <= 16, see csrc/fe_gmm.h), packed
    and zero-padded to DD columns in one block [fused_a, fused_b]; NULL when
    no fused kernel applies (D > 16, or factors that are not triangular).

    full / tied with triangular factors: fused_a = the n_fac x DD x DD
    factors, fused_b = the K x DD offsets crow_k (tied: followed by K x DD
    ones, the unit scales of fe_estep_diag on the projected rows, zero
    beyond D like every padded entry). diag / spherical: fused_a,
    fused_b = U, V of fe_estep_diag (K x DD): float64 sqrt(p), (mu - c)
    sqrt(p); float32 mu - c, p (spherical: p_k repeated over d).
    """
    cdef Py_ssize_t D = A.shape[0] if cov_type in (COV_FULL, COV_TIED) else A.shape[1]
    cdef int DD = fe_estep_chol_width(<int>D)
    cdef Py_ssize_t n_fac = K if cov_type == COV_FULL else 1
    cdef Py_ssize_t i, d, k, n_a = fused_a_len(cov_type, K, D)
    cdef floating prec
    cdef floating *fa
    cdef floating *fb
    if DD == 0 or ((cov_type == COV_FULL or cov_type == COV_TIED) and tri == TRI_GENERAL):
        return NULL
    fa = <floating *>calloc(n_a + K * DD * (2 if cov_type == COV_TIED else 1),
                            sizeof(floating))
    if fa == NULL:
        raise MemoryError("fastem: could not allocate the fused E-step operands")
    fb = fa + n_a
    if cov_type == COV_FULL or cov_type == COV_TIED:
        for k in range(n_fac):
            for i in range(D):
                for d in range(D):
                    fa[(k * DD + i) * DD + d] = A[i, d * n_fac + k]
        for k in range(K):
            for d in range(D):
                fb[k * DD + d] = crow[d * K + k]
                if cov_type == COV_TIED:
                    fb[K * DD + k * DD + d] = 1.0
        return fa
    for k in range(K):
        for d in range(D):
            prec = crow[k * D + d] if cov_type == COV_DIAG else crow[k]
            if floating is double:
                fa[k * DD + d] = sqrt(prec)
                fb[k * DD + d] = A[k, d] * sqrt(prec)
            else:
                fa[k * DD + d] = A[k, d]
                fb[k * DD + d] = prec
    return fa


