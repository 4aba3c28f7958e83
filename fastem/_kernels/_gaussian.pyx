"""Chunked, fused E-step + sufficient-statistics kernel for Gaussian mixtures.

One call of :func:`em_pass` reads X once. For every chunk of rows it

1. centres the chunk on a fixed global shift ``c`` (the weighted data mean):
   ``xc = x - c``. Means enter as ``mu' = mu - c``; densities and statistics
   are invariant to the shift, but float32 data with a large offset no longer
   cancels (scikit-learn issue 30382).
2. computes the log-density of every component from the Cholesky factor
   ``L_k`` of its precision (``precision_k = L_k L_k^T``)::

       log N(x | mu_k, Sigma_k) = -D/2 log(2 pi) + sum_d log L_k[d, d]
                                  - 1/2 || (x - mu_k)^T L_k ||^2

   full:  Y = Xc @ [L_1 .. L_K] in ONE GEMM (the factors stacked d-major into
          a D x (K*D) operand), minus the row ``mu'_k^T L_k``, squared, summed
          over d;
   tied:  Y = Xc @ L, then || y - mu'_k^T L ||^2 for every k;
   diag:  || (x - mu) * p ||^2 = xc^2 . p^2 - 2 xc . (mu' p^2) + mu'^2 . p^2,
          the first two terms as ONE GEMM of [xc, xc^2] (B x 2D) with a
          (2D x K) matrix, the last folded into the per-component constant;
   spherical: the same with [xc, |xc|^2] (B x (D+1)).
3. adds log w_k, takes the log-sum-exp of the row (vectorised exp, see
   _gmm_simd.h), and turns the row into responsibilities gamma_nk; the
   weighted log-likelihood sum_n w_n log p(x_n) is accumulated in float64.
4. accumulates the weighted sufficient statistics with ONE float64 GEMM:
   ``stats (K x P) += (w * gamma)^T @ F`` with the quadratic features
   F = [1, xc, q(xc)] of the centred chunk, q = vech(xc xc^T) (full, upper
   triangle row by row), xc^2 (diag), |xc|^2 (spherical) or nothing (tied:
   its second moment does not depend on the responsibilities). Column 0 of
   the result is N_k, columns 1..D are S1_k = sum gamma xc, the rest S2_k.

Nothing of size N x K or N x K x D is allocated: per-thread workspaces hold
one chunk. Rows are cut into chunks of a fixed size that does not depend on
the thread count; chunks are processed in rounds of ROUND chunks, each chunk
writing its partial statistics into its own slot, and the slots are added
into the totals in slot order after the round. Every floating-point sum is
therefore done in the same order whatever the number of threads: 1 and N
threads give bit-identical results.
"""
from cython.parallel cimport prange
from libc.math cimport log

from fastem._kernels._blas cimport floating, gemm_rowmajor
from fastem._kernels._openmp cimport omp_get_thread_num

cdef extern from "_gmm_simd.h" nogil:
    double fe_lse_resp(double *lp, int K)
    void fe_sqnorm_full_d(const double *y, const double *c, int K, int D, double *acc)
    void fe_sqnorm_full_f(const float *y, const float *c, int K, int D, float *acc)
    void fe_sqnorm_tied_d(const double *y, const double *c, int K, int D, double *acc)
    void fe_sqnorm_tied_f(const float *y, const float *c, int K, int D, float *acc)

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

# chunks per round (fixed: the reduction order must not depend on threads)
cdef enum:
    _ROUND = 32
ROUND = _ROUND
# bytes of per-chunk working set aimed at (per-core L2 is 1 MiB here)
_CHUNK_BYTES = 640 * 1024


def n_stat_features(int cov_type, Py_ssize_t D):
    """Number P of quadratic features [1, xc, q(xc)] for a covariance type."""
    if cov_type == COV_FULL:
        return 1 + D + D * (D + 1) // 2
    if cov_type == COV_TIED:
        return 1 + D
    if cov_type == COV_DIAG:
        return 1 + 2 * D
    return 2 + D


def _estep_width(int cov_type, Py_ssize_t K, Py_ssize_t D):
    # columns of the E-step GEMM output / operand per row
    if cov_type == COV_FULL:
        return K * D
    if cov_type == COV_TIED:
        return D
    if cov_type == COV_DIAG:
        return 2 * D
    return D + 1


def chunk_rows(int cov_type, Py_ssize_t K, Py_ssize_t D, Py_ssize_t itemsize):
    """Rows per chunk: the chunk's K-wide work fits in L2; thread-independent."""
    cdef Py_ssize_t P = n_stat_features(cov_type, D)
    cdef Py_ssize_t W = _estep_width(cov_type, K, D)
    cdef Py_ssize_t per_row = itemsize * (D + W + K) + 8 * (P + K)
    cdef Py_ssize_t B = _CHUNK_BYTES // per_row
    B = (B // 16) * 16
    return int(max(32, min(1024, B)))


def workspace_sizes(int cov_type, Py_ssize_t K, Py_ssize_t D, Py_ssize_t B):
    """(floating elements, float64 elements) of ONE thread's workspace."""
    cdef Py_ssize_t P = n_stat_features(cov_type, D)
    cdef Py_ssize_t W = _estep_width(cov_type, K, D)
    return int(B * (D + W + K) + K), int(B * (P + K))


cdef inline void _build_features(const floating *xc, Py_ssize_t nb, Py_ssize_t D,
                                 int cov_type, bint quad, double *F,
                                 Py_ssize_t P) noexcept nogil:
    """F[b] = [1, xc_b, q(xc_b)] in float64 (q only when ``quad``)."""
    cdef Py_ssize_t b, i, j, col
    cdef const floating *x
    cdef double *f
    cdef double s, v
    for b in range(nb):
        x = xc + b * D
        f = F + b * P
        f[0] = 1.0
        for i in range(D):
            f[1 + i] = <double>x[i]
        if not quad:
            continue
        if cov_type == COV_FULL:
            col = 1 + D
            for i in range(D):
                v = f[1 + i]
                for j in range(i, D):
                    f[col + j - i] = v * f[1 + j]
                col += D - i
        elif cov_type == COV_DIAG:
            for i in range(D):
                f[1 + D + i] = f[1 + i] * f[1 + i]
        elif cov_type == COV_SPHERICAL:
            s = 0.0
            for i in range(D):
                s = s + f[1 + i] * f[1 + i]
            f[1 + D] = s


cdef double _process_chunk(
        const floating *X, Py_ssize_t nb, Py_ssize_t D, Py_ssize_t K,
        const floating *sw, const floating *shift, int cov_type, int mode,
        const floating *A, const floating *crow, const double *const_k,
        const double *resp_in, const int *labels_in,
        bint do_stats, double *slot, Py_ssize_t P,
        floating *fws, double *dws,
        floating *out_lpn, floating *out_resp, long long *out_labels) noexcept nogil:
    """One chunk of ``nb`` rows: E-step, row outputs and statistics.

    Returns the chunk's weighted log-likelihood sum_n w_n log p(x_n).
    """
    cdef Py_ssize_t W, b, k, i, best
    cdef floating *xc = fws
    cdef floating *Y = fws + nb * D
    cdef floating *facc
    cdef double *F = dws
    cdef double *lp = dws + nb * P
    cdef double *row
    cdef const floating *xr
    cdef floating *xcr
    cdef double ll = 0.0, lse, w, m
    cdef bint need_F, quad

    if cov_type == COV_FULL:
        W = K * D
    elif cov_type == COV_TIED:
        W = D
    elif cov_type == COV_DIAG:
        W = 2 * D
    else:
        W = D + 1
    facc = Y + nb * W  # nb * K floating scratch (+ K), after Y

    # 1. centre the chunk on the global shift (in the data's precision)
    for b in range(nb):
        xr = X + b * D
        xcr = xc + b * D
        for i in range(D):
            xcr[i] = xr[i] - shift[i]

    # features: needed for the statistics, and as the E-step GEMM operand
    # for diag/spherical float64 data
    quad = do_stats or (mode == RESP_ESTEP and cov_type >= COV_DIAG)
    need_F = do_stats or (mode == RESP_ESTEP and cov_type >= COV_DIAG
                          and floating is double)
    if need_F:
        _build_features(xc, nb, D, cov_type, quad, F, P)

    if mode == RESP_ESTEP:
        # 2. log N(x | k) + log w_k into lp (nb x K)
        if cov_type == COV_FULL or cov_type == COV_TIED:
            gemm_rowmajor(False, False, <int>nb, <int>W, <int>D, <floating>1.0,
                          xc, <int>D, A, <int>W, <floating>0.0, Y, <int>W)
            for b in range(nb):
                row = lp + b * K
                if floating is double:
                    if cov_type == COV_FULL:
                        fe_sqnorm_full_d(Y + b * W, crow, <int>K, <int>D, row)
                    else:
                        fe_sqnorm_tied_d(Y + b * W, crow, <int>K, <int>D, row)
                    for k in range(K):
                        row[k] = const_k[k] - 0.5 * row[k]
                else:
                    if cov_type == COV_FULL:
                        fe_sqnorm_full_f(Y + b * W, crow, <int>K, <int>D, facc)
                    else:
                        fe_sqnorm_tied_f(Y + b * W, crow, <int>K, <int>D, facc)
                    for k in range(K):
                        row[k] = const_k[k] - 0.5 * <double>facc[k]
        else:
            # diag / spherical: G = [xc, q(xc)] @ A  (A is W x K)
            if floating is double:
                gemm_rowmajor(False, False, <int>nb, <int>K, <int>W, 1.0,
                              F + 1, <int>P, A, <int>K, 0.0, lp, <int>K)
                for b in range(nb):
                    row = lp + b * K
                    for k in range(K):
                        row[k] = const_k[k] - 0.5 * row[k]
            else:
                for b in range(nb):
                    xcr = xc + b * D
                    for i in range(D):
                        Y[b * W + i] = xcr[i]
                    if cov_type == COV_DIAG:
                        for i in range(D):
                            Y[b * W + D + i] = xcr[i] * xcr[i]
                    else:
                        Y[b * W + D] = 0
                        for i in range(D):
                            Y[b * W + D] = Y[b * W + D] + xcr[i] * xcr[i]
                gemm_rowmajor(False, False, <int>nb, <int>K, <int>W, <floating>1.0,
                              Y, <int>W, A, <int>K, <floating>0.0, facc, <int>K)
                for b in range(nb):
                    row = lp + b * K
                    for k in range(K):
                        row[k] = const_k[k] - 0.5 * <double>facc[b * K + k]

        # 3. labels, log-sum-exp, responsibilities, log-likelihood
        for b in range(nb):
            row = lp + b * K
            if out_labels != NULL:
                best = 0
                m = row[0]
                for k in range(1, K):
                    if row[k] > m:
                        m = row[k]
                        best = k
                out_labels[b] = best
            lse = fe_lse_resp(row, <int>K)
            w = 1.0 if sw == NULL else <double>sw[b]
            ll += w * lse
            if out_lpn != NULL:
                out_lpn[b] = <floating>lse
            if out_resp != NULL:
                for k in range(K):
                    out_resp[b * K + k] = <floating>row[k]
            if sw != NULL and do_stats:
                for k in range(K):
                    row[k] = row[k] * w
    elif mode == RESP_GIVEN:
        for b in range(nb):
            w = 1.0 if sw == NULL else <double>sw[b]
            for k in range(K):
                lp[b * K + k] = resp_in[b * K + k] * w
    elif mode == RESP_LABELS:
        for b in range(nb):
            w = 1.0 if sw == NULL else <double>sw[b]
            for k in range(K):
                lp[b * K + k] = 0.0
            lp[b * K + labels_in[b]] = w
    else:  # RESP_ONE (K == 1)
        for b in range(nb):
            lp[b] = 1.0 if sw == NULL else <double>sw[b]

    # 4. statistics: slot (K x P) = (w gamma)^T (K x nb) @ F (nb x P), float64
    if do_stats:
        gemm_rowmajor(True, False, <int>K, <int>P, <int>nb, 1.0,
                      lp, <int>K, F, <int>P, 0.0, slot, <int>P)
    return ll


def em_pass(const floating[:, ::1] X,
            const floating[::1] sample_weight,
            const floating[::1] shift,
            int cov_type,
            int mode,
            const floating[:, ::1] A,
            const floating[::1] crow,
            const double[::1] const_k,
            const double[:, ::1] resp_in,
            const int[::1] labels_in,
            double[:, ::1] stats,
            double[:, ::1] slots,
            floating[:, ::1] fws,
            double[:, ::1] dws,
            floating[::1] out_lpn,
            floating[:, ::1] out_resp,
            long long[::1] out_labels,
            Py_ssize_t n_components,
            Py_ssize_t chunk,
            int n_threads):
    """One fused pass over X; returns sum_n w_n log p(x_n) (0 unless E-step).

    Parameters
    ----------
    X : (N, D) floating, C-contiguous
    sample_weight : (N,) or (0,) floating; empty means unit weights
    shift : (D,) floating; the global centre c
    cov_type, mode : ints from COV_TYPES / RESP_MODES
    A : E-step operand: full (D, K*D) stacked factors, column d*K+k = column
        d of L_k; tied (D, D) = L; diag (2D, K) = [-2 mu' p^2 ; p^2]^T-stacked;
        spherical (D+1, K) = [-2 p_k^2 mu'_k ; p_k^2]
    crow : full (D*K,) row ``mu'_k^T L_k`` laid out d-major (index d*K+k);
        tied (D*K,) likewise with L; unused otherwise
    const_k : (K,) log w_k + log det L_k - D/2 log(2 pi) (diag/spherical:
        minus 1/2 sum_d mu'^2 p^2 as well)
    resp_in : (N, K) float64 for mode "given", else (0, K)
    labels_in : (N,) int32 for mode "labels", else (0,)
    stats : (K, P) float64 output (overwritten) or (0, P) for no statistics
    slots : (ROUND, K*P) float64 scratch
    fws, dws : (n_threads, *) per-thread workspaces (see workspace_sizes)
    out_lpn : (N,) log p(x_n) or (0,)
    out_resp : (N, K) responsibilities or (0, K)
    out_labels : (N,) int64 argmax_k of w_k N(x_n | k), or (0,)
    n_components : K
    chunk : rows per chunk (see chunk_rows)
    n_threads : OpenMP threads
    """
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = n_components
    cdef Py_ssize_t P = stats.shape[1]
    cdef Py_ssize_t B = chunk
    cdef Py_ssize_t n_chunks = (N + B - 1) // B
    cdef Py_ssize_t KP = K * P
    cdef bint do_stats = stats.shape[0] > 0
    cdef Py_ssize_t first, nr, s, ci, r0, nb, e, t
    cdef int tid
    cdef double ll_total = 0.0
    cdef double[::1] slot_ll = _zeros(_ROUND)
    cdef double *slot_ll_p = &slot_ll[0]
    cdef double *slots_p = &slots[0, 0]
    cdef double *stats_p = NULL
    cdef const floating *X_p = NULL
    cdef const floating *sw_p = NULL
    cdef const floating *shift_p = &shift[0]
    cdef const floating *A_p = NULL
    cdef const floating *crow_p = NULL
    cdef const double *const_p = NULL
    cdef const double *resp_p = NULL
    cdef const int *lab_p = NULL
    cdef floating *fws_p = &fws[0, 0]
    cdef double *dws_p = &dws[0, 0]
    cdef Py_ssize_t fstride = fws.shape[1], dstride = dws.shape[1]
    cdef floating *lpn_p = NULL
    cdef floating *resp_out_p = NULL
    cdef long long *lab_out_p = NULL

    if N == 0:
        return 0.0
    if slots.shape[0] < _ROUND or slots.shape[1] < KP:
        raise ValueError("slots workspace too small")
    if fws.shape[0] < n_threads or dws.shape[0] < n_threads:
        raise ValueError("workspace has fewer rows than threads")
    X_p = &X[0, 0]
    if sample_weight.shape[0] > 0:
        sw_p = &sample_weight[0]
    if mode == RESP_ESTEP:
        A_p = &A[0, 0]
        const_p = &const_k[0]
        if cov_type <= COV_TIED:
            crow_p = &crow[0]
    elif mode == RESP_GIVEN:
        resp_p = &resp_in[0, 0]
    elif mode == RESP_LABELS:
        lab_p = &labels_in[0]
    if do_stats:
        stats_p = &stats[0, 0]
        for e in range(KP):
            stats_p[e] = 0.0
    if out_lpn.shape[0] > 0:
        lpn_p = &out_lpn[0]
    if out_resp.shape[0] > 0:
        resp_out_p = &out_resp[0, 0]
    if out_labels.shape[0] > 0:
        lab_out_p = &out_labels[0]

    with nogil:
        first = 0
        while first < n_chunks:
            nr = min(<Py_ssize_t>_ROUND, n_chunks - first)
            for s in prange(nr, schedule="static", num_threads=n_threads):
                tid = omp_get_thread_num()
                ci = first + s
                r0 = ci * B
                nb = min(B, N - r0)
                slot_ll_p[s] = _process_chunk(
                    X_p + r0 * D, nb, D, K,
                    NULL if sw_p == NULL else sw_p + r0,
                    shift_p, cov_type, mode, A_p, crow_p, const_p,
                    NULL if resp_p == NULL else resp_p + r0 * K,
                    NULL if lab_p == NULL else lab_p + r0,
                    do_stats, slots_p + s * KP, P,
                    fws_p + tid * fstride, dws_p + tid * dstride,
                    NULL if lpn_p == NULL else lpn_p + r0,
                    NULL if resp_out_p == NULL else resp_out_p + r0 * K,
                    NULL if lab_out_p == NULL else lab_out_p + r0)
            # deterministic reduction: slots added in slot order
            for s in range(nr):
                ll_total += slot_ll_p[s]
            if do_stats:
                for e in prange(KP, schedule="static", num_threads=n_threads):
                    for t in range(nr):
                        stats_p[e] += slots_p[t * KP + e]
            first += _ROUND
    return ll_total


cdef double[::1] _zeros(Py_ssize_t n):
    import numpy as np
    return np.zeros(n)
