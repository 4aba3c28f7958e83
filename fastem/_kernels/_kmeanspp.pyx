"""Greedy k-means++ seeding: the kernels of ``fastem._init._GreedyState``
(see the note below). Chunks, partitions and the fixed reduction order as in
_lloyd.pyx; shared helpers in _kmeans_common.pxd.
"""
from cython.parallel cimport prange
from libc.float cimport FLT_MAX
from libc.math cimport fabs, floor, isfinite, sqrt
from libc.stdint cimport int8_t, int32_t, uint8_t, uint16_t
from libc.stdlib cimport malloc, free

from fastem._kernels._common cimport floating, require, require_pass
from fastem._kernels._openmp cimport omp_get_thread_num
from fastem._kernels._interrupt cimport interrupted, raise_pending
from fastem._kernels._kmeans_common cimport _sqdist
from fastem._kernels._kmeans_c cimport (
    FE_KPP_QBLOCK, FE_PREFETCH_ROWS, fe_cand_bit, fe_kpp_qbound, fe_kpp_rows_f32,
    fe_kpp_rows_f64, fe_prefetch_row)

# ---------------------------------------------------------------------------
# Greedy k-means++ seeding
#
# Each step draws L candidates with probability proportional to w_i D(x_i)^2
# (D = distance to the closest chosen centre), evaluates the potential
# sum_i w_i min(D(x_i)^2, ||x_i - q||^2) of every candidate q, keeps the
# best, and updates D. After a first pass that initialises D, each step is
# a single parallel pass over X (the candidate pass), which also applies the
# previous step's update.
#
# Sampling needs a cumulative sum over all rows; instead of an O(n) cumsum
# per step, a draw first picks a chunk from the (n_chunks,) cumulative chunk
# potentials, then a row inside that chunk. The candidate pass returns, for
# every chunk and candidate, the chunk's potential if that candidate were
# chosen, summed in a fixed order from the very float32 values D^2 will
# take; so once a candidate is picked its column is the next step's chunk
# potentials, with no drift and no pass to recompute them.
#
# Four exact savings keep the passes from re-reading all of X every step:
#
# * Pruning. Every row remembers which chosen centre a is closest to. By the
#   triangle inequality ||x - q|| >= ||q - a|| - ||x - a||, so when
#   ||q - a||^2 / 4 >= ||x - a||^2 = D(x)^2, q cannot beat a for x and
#   min(D(x)^2, ||x - q||^2) = D(x)^2 without reading x. The caller passes
#   the table ||c_a - q||^2 / 4; a relative margin PRUNE_MARGIN keeps the
#   test on the safe side of rounding. Rows for which every candidate is
#   pruned cost two loads.
# * Quantised bound. When the caller keeps 7-bit codes of X's rows
#   (``kpp_quantize``: one byte per feature, a quarter of float32 X),
#   the rows the triangle inequality keeps are first tested against a lower
#   bound on their distance to every candidate computed from the codes by
#   exact integer dot products (``fe_kpp_qbound`` in csrc/fe_kmeans.h
#   derives it). Late in the seeding a candidate beats a few percent of the
#   rows and the bound rules out nearly all the others, so each step reads
#   the codes instead of X.
# * Improvement masks. The candidate pass records, per row, a bit for each
#   candidate that is closer than D(x). Taking the chosen one into account
#   only recomputes the rows whose bit is set for it (a few percent of the
#   rows after the first steps).
# * Deferred updates. That recomputation is done by the next candidate pass,
#   chunk by chunk, right before the chunk's rows are tested (the masks are
#   still those of the previous pass at that point), so that no separate
#   pass scans the masks. The only rows read earlier are those of the chunks
#   a draw lands in (``kpp_settle_rows``), which clears their bits.
# ---------------------------------------------------------------------------

cdef double PRUNE_MARGIN = 1.0 + 1e-4

# codes are 0..127: a product of two fits 14 bits and a pair of products
# int16, and |x~ - q~|^2 <= 2 * 127^2 * width fits int32 up to this width
cdef Py_ssize_t QBOUND_MAX_WIDTH = 65536
# for the caller that allocates the codes (fastem._init._QuantisedRows)
CODE_BLOCK = FE_KPP_QBLOCK
CODE_MAX_WIDTH = QBOUND_MAX_WIDTH


cdef struct QBound:
    # the quantised bound of the candidate pass (see fe_kpp_qbound_ref)
    const uint8_t *codes       # (n, dp) 7-bit codes of the rows
    Py_ssize_t dp              # code row width: d rounded up to FE_KPP_QBLOCK
    const int32_t *cnorm       # (n,) |x~|^2
    const float *cerr          # (n,) upper bounds on |x - lo - step x~|
    const int8_t *qcodes       # (Lp, dp) the candidates' codes, Lp = L rounded up to 8
    const int32_t *qnorm       # (Lp,)
    const float *qerr          # (Lp,)
    float inv_step             # 1 / step
    double cur_factor          # rounding margin of the measured distances / scale

# index of a row's nearest chosen centre: 16 bits when k <= 65535 (the usual
# case; it saves memory on large data), else 32
ctypedef fused centre_index:
    uint16_t
    int32_t


cdef inline float _to_float32(double v) noexcept nogil:
    """Round a squared distance to float32, saturating instead of overflowing."""
    return <float>(v if v < FLT_MAX else FLT_MAX)

def kpp_init_closest(const floating[:, ::1] X,
                     const floating[::1] sample_weight,
                     const floating[::1] centre,
                     float[::1] closest,
                     centre_index[::1] nearest,
                     double[::1] chunk_pot,
                     Py_ssize_t chunk_rows,
                     int n_threads,
                     double scale):
    """Closest distances and chunk potentials for the first centre.

    Parameters
    ----------
    X : (n, d) data
    sample_weight : (n,) or length 0 for unit weights
    centre : (d,) the first centre
    closest : (n,) float32 out, squared distance to the closest chosen
        centre (float32 whatever X's dtype: seeding needs no more, and it
        halves this array's memory for float64 data)
    nearest : (n,) uint16 or int32 out, index of that centre (0)
    chunk_pot : (n_chunks,) out, sum_{i in chunk} w_i closest_i
    scale : power of two multiplying every squared distance (float64 data:
        keeps them inside float32's range; exact, so the draws do not
        depend on it); 1 for float32 data
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t nbmax = chunk_rows
    cdef Py_ssize_t n_chunks = (n + nbmax - 1) // nbmax if nbmax > 0 else 0
    cdef Py_ssize_t c, start, nb, i
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef int cancel = 0
    require_pass(n, d, sample_weight.shape[0], chunk_rows, n_threads, "kpp_init_closest")
    require(centre.shape[0] == d, "kpp_init_closest: centre must have X's d entries")
    require(closest.shape[0] == n and nearest.shape[0] == n,
            "kpp_init_closest: closest and nearest must have one entry per row")
    require(chunk_pot.shape[0] == n_chunks,
            "kpp_init_closest: chunk_pot must have one entry per chunk")
    with nogil:
        for c in prange(n_chunks, schedule='dynamic', chunksize=4,
                        num_threads=n_threads):
            if interrupted(&cancel):
                continue
            start = c * nbmax
            nb = min(nbmax, n - start)
            for i in range(start, start + nb):
                closest[i] = _to_float32(scale * _sqdist(&X[i, 0], &centre[0], d))
                nearest[i] = 0
            chunk_pot[c] = _chunk_potential(&closest[start],
                                            swp + start if swp != NULL else NULL, nb)
    raise_pending(cancel)


cdef inline double _chunk_potential(const float *closest, const floating *sw,
                                    Py_ssize_t nb) noexcept nogil:
    """sum_i w_i closest_i over one chunk, in 8 interleaved partial sums.

    Row i goes to partial sum i % 8 and the partial sums are added in a
    fixed tree at the end: the order depends only on nb, and the 8
    independent chains (which the compiler may keep in vector registers
    without reassociating anything) avoid one long chain of dependent adds.
    """
    cdef double acc[8]
    cdef Py_ssize_t i, k
    for k in range(8):
        acc[k] = 0.0
    i = 0
    if sw == NULL:
        while i + 8 <= nb:
            for k in range(8):
                acc[k] += <double>closest[i + k]
            i += 8
        for k in range(nb - i):
            acc[k] += <double>closest[i + k]
    else:
        while i + 8 <= nb:
            for k in range(8):
                acc[k] += <double>sw[i + k] * <double>closest[i + k]
            i += 8
        for k in range(nb - i):
            acc[k] += <double>sw[i + k] * <double>closest[i + k]
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


def kpp_quantize(const floating[:, ::1] X,
                 const double[::1] lo,
                 double step,
                 uint8_t[:, ::1] codes,
                 int32_t[::1] norms,
                 float[::1] errs,
                 int n_threads):
    """7-bit codes of X's rows, for the quantised bound of the candidate pass.

    Row x gets codes x~_j = round((x_j - lo_j) / step) clipped to 0..127
    (zero beyond column d), norms = |x~|^2 and errs = an upper bound on
    |r| = |x - lo - step x~|. Any codes give a valid bound as long as errs
    bounds the residual of the codes chosen (rows outside lo's range are
    clipped and get a larger residual): the residual is computed in float64
    and its bound covers that computation's rounding (see
    ``_quantize_row``).

    Parameters
    ----------
    X : (n, d) data
    lo : (d,) per-feature offsets
    step : the code step, > 0 and finite
    codes : (n, dp) uint8 out, dp a multiple of FE_KPP_QBLOCK, d <= dp <= 65536
    norms : (n,) int32 out
    errs : (n,) float32 out
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], i
    cdef Py_ssize_t dp = codes.shape[1]
    require_pass(n, d, 0, 1, n_threads, "kpp_quantize")
    require(lo.shape[0] == d and codes.shape[0] == n and norms.shape[0] == n
            and errs.shape[0] == n,
            "kpp_quantize: lo must have X's d entries, codes, norms and errs one "
            "row / entry per row of X")
    require(d <= dp <= QBOUND_MAX_WIDTH and dp % FE_KPP_QBLOCK == 0,
            "kpp_quantize: codes must have d <= width <= 65536 columns, a multiple "
            "of FE_KPP_QBLOCK")
    require(step > 0 and isfinite(step), "kpp_quantize: step must be positive and finite")
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            _quantize_row(&X[i, 0], d, dp, &lo[0], step, &codes[i, 0], &norms[i], &errs[i])


cdef inline void _quantize_row(const floating *x, Py_ssize_t d, Py_ssize_t dp,
                               const double *lo, double step, uint8_t *code,
                               int32_t *norm, float *err) noexcept nogil:
    """One row of ``kpp_quantize``.

    Rounding: the residual r_j = (x_j - lo_j) - step c_j takes three float64
    roundings, each at most 2^-53 times a value no larger than |v_j| + step
    (v_j = x_j - lo_j; |step c_j| <= |v_j| + step / 2 since c_j is v_j / step
    rounded, or clipped towards it), so |computed - exact| <= 2^-51 (|v_j| +
    step) per coordinate and sqrt(d) 2^-51 (max_j |v_j| + step) in norm; the
    sum and root add a relative d 2^-53, below the factor 1 + 1e-6 up to
    d = 1e9. The float32 rounding of the result is below that factor too.
    """
    cdef double v, c, r, e2 = 0.0, vmax = 0.0
    cdef double inv_step = 1.0 / step
    cdef int32_t nn = 0
    cdef Py_ssize_t j
    for j in range(d):
        v = <double>x[j] - lo[j]
        c = floor(v * inv_step + 0.5)
        c = 0.0 if c < 0.0 else (127.0 if c > 127.0 else c)
        r = v - step * c
        e2 += r * r
        vmax = max(vmax, fabs(v))
        nn += <int32_t>(c * c)
        code[j] = <uint8_t>c
    for j in range(d, dp):
        code[j] = 0
    norm[0] = nn
    err[0] = <float>(sqrt(e2) * (1.0 + 1e-6) + sqrt(<double>d) * (vmax + step) * 2.0 ** -50)


cdef inline void _kpp_apply(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                            const floating *centre, int32_t index, uint16_t bit,
                            uint16_t *improves, float *closest,
                            centre_index *nearest, int32_t *todo,
                            double scale) noexcept nogil:
    """Take centre ``index`` (candidate bit ``bit`` of the last pass) into
    account for nb consecutive rows, and clear that bit.

    Only the rows whose mask has the bit can change: they are listed first
    (branch-free), then recomputed with their data prefetched a few rows
    ahead (they are scattered, and few). Recomputing gives bit for bit the
    distance the candidate pass compared (``_kpp_sqdist``), so a row changes
    exactly when the pass found the centre closer.
    """
    cdef Py_ssize_t i, t, n_todo = 0
    cdef double dist
    for i in range(nb):
        todo[n_todo] = <int32_t>i
        n_todo += (improves[i] & bit) != 0
    for t in range(n_todo):
        if t + FE_PREFETCH_ROWS < n_todo:
            fe_prefetch_row(x + todo[t + FE_PREFETCH_ROWS] * d, d * sizeof(floating))
        i = todo[t]
        improves[i] &= ~bit
        dist = _to_float32(scale * _sqdist(x + i * d, centre, d))
        if dist < closest[i]:
            closest[i] = <float>dist
            nearest[i] = <centre_index>index


def kpp_settle_rows(const floating[:, ::1] X,
                    const floating[::1] centre,
                    int32_t index,
                    Py_ssize_t candidate,
                    uint16_t[::1] improves,
                    float[::1] closest,
                    centre_index[::1] nearest,
                    Py_ssize_t start, Py_ssize_t stop,
                    double scale):
    """Apply the deferred update of centre ``index`` (candidate
    ``candidate`` of the last pass) to rows start..stop-1 now.

    For the rows a draw reads before the next candidate pass; clearing their
    bits leaves nothing for that pass to redo there.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef int32_t *todo
    require(d >= 1 and centre.shape[0] == d,
            "kpp_settle_rows: centre must have X's d >= 1 entries")
    require(improves.shape[0] == n and closest.shape[0] == n and nearest.shape[0] == n,
            "kpp_settle_rows: improves, closest and nearest must have one entry per row")
    require(0 <= start and stop <= n, "kpp_settle_rows: rows start..stop must lie in X")
    require(0 <= index and (index < 65536 or centre_index is int32_t) and candidate >= 0,
            "kpp_settle_rows: index must fit nearest's type, candidate be >= 0")
    if stop <= start:
        return
    todo = <int32_t *>malloc((stop - start) * sizeof(int32_t))
    if todo == NULL:
        raise MemoryError("fastem: could not allocate the k-means++ workspace")
    with nogil:
        _kpp_apply(&X[start, 0], stop - start, d, &centre[0], index,
                   fe_cand_bit(candidate), &improves[start], &closest[start],
                   &nearest[start], todo, scale)
    free(todo)


def kpp_candidate_potentials(const floating[:, ::1] X,
                             const floating[::1] sample_weight,
                             const floating[:, ::1] candidates,
                             const double[:, ::1] quarter_sqdist,
                             float[::1] closest,
                             centre_index[::1] nearest,
                             uint16_t[::1] improves,
                             last,
                             out,
                             Py_ssize_t chunk_rows,
                             int n_threads,
                             double scale,
                             bound=None):
    """potentials[l] = sum_i w_i min(closest_i, ||x_i - q_l||^2).

    Parameters
    ----------
    candidates : (L, d) the candidate rows
    quarter_sqdist : (n_centres, L) ||c_a - q_l||^2 / 4 for every chosen
        centre a (the pruning bounds)
    closest, nearest : (n,) in/out, see ``kpp_init_closest``; the last
        chosen centre is taken into account first (see below)
    improves : (n,) uint16 in/out: on entry the masks of the last pass, on
        exit bit l set where candidate l is closer than closest_i (see
        ``fe_cand_bit``)
    last : (last_centre, last_index, last_candidate): the centre chosen
        after the last pass, its index among the chosen centres, and which
        candidate of that pass it was; last_index = 0 when there is none to
        apply (the first step: ``kpp_init_closest`` did it)
    out : (chunk_pots, potentials). chunk_pots (n_chunks, L): sum_{i in
        chunk} w_i min(closest_i, float32(||x_i - q_l||^2)); column l holds
        the chunk potentials that choosing candidate l leaves, summed in the
        order the next step relies on (rows no candidate can beat first, in
        8 partial sums, then the measured rows in order). potentials (L,):
        their totals, in chunk order whatever the thread count.
    bound : None, or (codes, norms, errs, qcodes, qnorms, qerrs, inv_step)
        for the quantised bound: ``kpp_quantize``'s outputs for X, the same
        for the candidates (their rows of codes viewed as int8, padded with
        rows of zeros to a multiple of 8 rows), and 1 / step. Rows it rules
        out join the rows the triangle inequality rules out (their sum
        comes first).
    """
    cdef const floating[::1] last_centre = last[0]
    cdef int32_t last_index = last[1]
    cdef Py_ssize_t last_candidate = last[2]
    cdef double[:, ::1] chunk_pots = out[0]
    cdef double[::1] potentials = out[1]
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t L = quarter_sqdist.shape[1]
    cdef Py_ssize_t nbmax = chunk_rows
    cdef Py_ssize_t n_chunks = (n + nbmax - 1) // nbmax if nbmax > 0 else 0
    cdef Py_ssize_t c, start, l, tid
    cdef int cancel = 0
    cdef uint16_t last_bit = fe_cand_bit(last_candidate)
    cdef const floating *swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef const floating *lcp = NULL
    # float64 data: the potentials measure the distances in float64, one
    # slot of L per chunk (float32 data: they are the chunk potentials)
    cdef double *slots = NULL
    cdef int32_t *todo
    cdef Py_ssize_t a, n_centres = quarter_sqdist.shape[0]
    cdef double *qmin
    cdef Py_ssize_t n_bad = 0
    cdef QBound qb
    cdef QBound *qbp = NULL
    cdef uint8_t *maybe = NULL
    cdef const uint8_t[:, ::1] codes
    cdef const int32_t[::1] cnorm, qnorm
    cdef const float[::1] cerr, qerr
    cdef const int8_t[:, ::1] qcodes
    require_pass(n, d, sample_weight.shape[0], chunk_rows, n_threads,
                 "kpp_candidate_potentials")
    require(L >= 1 and candidates.shape[0] == L and candidates.shape[1] == d,
            "kpp_candidate_potentials: candidates must be (L, d), quarter_sqdist "
            "(centres chosen, L)")
    require(n_centres >= 1 and (last_index == 0 or 0 < last_index < n_centres
                                and last_centre.shape[0] == d and last_candidate >= 0),
            "kpp_candidate_potentials: last must be (centre (d,), its index among the "
            "chosen centres, its candidate index), or index 0")
    require(closest.shape[0] == n and nearest.shape[0] == n and improves.shape[0] == n,
            "kpp_candidate_potentials: closest, nearest and improves must have one "
            "entry per row")
    require(chunk_pots.shape[0] == n_chunks and chunk_pots.shape[1] == L
            and potentials.shape[0] == L,
            "kpp_candidate_potentials: out must be (chunk_pots (n_chunks, L), "
            "potentials (L,))")
    if last_index > 0:
        lcp = &last_centre[0]
    if bound is not None:
        codes, cnorm, cerr, qcodes, qnorm, qerr, qb.inv_step = bound
        qb.dp = codes.shape[1]
        require(codes.shape[0] == n and d <= qb.dp <= QBOUND_MAX_WIDTH
                and qb.dp % FE_KPP_QBLOCK == 0 and cnorm.shape[0] == n
                and cerr.shape[0] == n and qcodes.shape[0] >= L
                and qcodes.shape[0] % 8 == 0 and qcodes.shape[1] == qb.dp
                and qnorm.shape[0] == qcodes.shape[0] and qerr.shape[0] == qcodes.shape[0]
                and qb.inv_step > 0 and isfinite(qb.inv_step),
                "kpp_candidate_potentials: bound must be (codes (n, dp), norms (n,), "
                "errs (n,), candidate codes (Lp, dp), norms (Lp,), errs (Lp,), 1 / step > 0) "
                "with d <= dp <= 65536 a multiple of FE_KPP_QBLOCK and L <= Lp, a "
                "multiple of 8")
        qb.codes = &codes[0, 0]
        qb.cnorm = &cnorm[0]
        qb.cerr = &cerr[0]
        qb.qcodes = &qcodes[0, 0]
        qb.qnorm = &qnorm[0]
        qb.qerr = &qerr[0]
        # the measured distances carry at most d * 2^-23 relative rounding
        qb.cur_factor = (PRUNE_MARGIN + d * 2.0 ** -23) / scale
        qbp = &qb
    todo = <int32_t *>malloc(n_threads * nbmax * sizeof(int32_t))
    qmin = <double *>malloc(n_centres * sizeof(double))
    if qbp != NULL:
        maybe = <uint8_t *>malloc(n_threads * nbmax)
    if floating is double:
        slots = <double *>malloc(n_chunks * L * sizeof(double))
    if (todo == NULL or qmin == NULL or (floating is double and slots == NULL)
            or (qbp != NULL and maybe == NULL)):
        free(slots); free(todo); free(qmin); free(maybe)
        raise MemoryError("fastem: could not allocate the k-means++ workspace")
    with nogil:
        for a in range(n_centres):
            qmin[a] = quarter_sqdist[a, 0]
            for l in range(1, L):
                if quarter_sqdist[a, l] < qmin[a]:
                    qmin[a] = quarter_sqdist[a, l]
        # one chunk at a time: a thread that the OS preempts mid-pass
        # strands as little work as possible (the other finishes the rest)
        for c in prange(n_chunks, schedule='dynamic', chunksize=1,
                        num_threads=n_threads):
            if interrupted(&cancel):
                continue
            tid = omp_get_thread_num()
            start = c * nbmax
            n_bad += _kpp_candidates_chunk(&X[start, 0], min(nbmax, n - start), d,
                                           swp + start if swp != NULL else NULL,
                                           &candidates[0, 0], L,
                                           qmin, n_centres, &closest[start],
                                           &nearest[start], &improves[start],
                                           lcp, last_index, last_bit,
                                           todo + tid * nbmax, &chunk_pots[c, 0],
                                           slots + c * L if slots != NULL else NULL,
                                           scale, qbp, start,
                                           maybe + tid * nbmax if maybe != NULL else NULL)
        for l in range(L):
            potentials[l] = 0.0
        for c in range(n_chunks):
            for l in range(L):
                potentials[l] += slots[c * L + l] if slots != NULL else chunk_pots[c, l]
    free(slots); free(todo); free(qmin); free(maybe)
    raise_pending(cancel)
    require(n_bad == 0, "kpp_candidate_potentials: nearest holds indices of centres "
            "not chosen yet: its state was not written by these kernels")


cdef inline Py_ssize_t _kpp_qfilter(const QBound *qb, Py_ssize_t start, int32_t *todo,
                                    Py_ssize_t n_todo, const float *closest,
                                    const floating *sw, Py_ssize_t L, uint8_t *maybe,
                                    double *pruned) noexcept nogil:
    """Keep in todo[0..returned) the rows of todo the quantised bound cannot
    rule out (in order); add the others' w_i closest_i to *pruned (8
    interleaved partial sums in todo order, then a fixed tree)."""
    cdef double acc[8]
    cdef Py_ssize_t t, k, i, n_keep = 0
    cdef int keep
    fe_kpp_qbound(qb.codes + start * qb.dp, qb.dp, qb.cnorm + start, qb.cerr + start,
                  todo, n_todo, closest, qb.cur_factor, qb.qcodes, qb.qnorm, qb.qerr, L,
                  qb.inv_step, maybe)
    for k in range(8):
        acc[k] = 0.0
    for t in range(n_todo):
        i = todo[t]
        keep = maybe[t]
        todo[n_keep] = <int32_t>i
        n_keep += keep
        acc[t & 7] += <double>(1 - keep) * ((sw[i] if sw != NULL else 1.0) * closest[i])
    pruned[0] = pruned[0] + (((acc[0] + acc[1]) + (acc[2] + acc[3]))
                             + ((acc[4] + acc[5]) + (acc[6] + acc[7])))
    return n_keep


cdef Py_ssize_t _kpp_candidates_chunk(const floating *x, Py_ssize_t nb, Py_ssize_t d,
                                      const floating *sw, const floating *cand,
                                      Py_ssize_t L, const double *qmin, Py_ssize_t n_centres,
                                      float *closest,
                                      centre_index *nearest,
                                      uint16_t *improves,
                                      const floating *last_centre, int32_t last_index,
                                      uint16_t last_bit,
                                      int32_t *todo, double *sums,
                                      double *pots, double scale,
                                      const QBound *qb, Py_ssize_t start,
                                      uint8_t *maybe) noexcept nogil:
    """One chunk of the candidate pass (see kpp_candidate_potentials);
    returns the number of rows whose ``nearest`` is not a chosen centre (0).

    sums[l] receives sum_i w_i min(closest_i, float32(||x_i - q_l||^2)) and,
    for float64 data, pots[l] the same sum without the rounding to float32.

    First the deferred update of the last chosen centre (``_kpp_apply``).
    Then every row is tested against the pruning bounds (this reads only
    closest and nearest, without branches): ``qmin[a]`` is the smallest bound
    ||c_a - q_l||^2 / 4 of centre a over the candidates, so one comparison
    tells whether any candidate could beat a; rows that none can beat add
    w_i closest_i to every sum (8 interleaved partial sums, added in a fixed
    tree). With ``qb``, the rows kept are then tested against the quantised
    bound, whose survivors are compacted in todo (in order) and the others
    add w_i closest_i to a second set of 8 partial sums. The other rows are
    measured against all L candidates in one
    sweep over the row (``fe_kpp_rows_*`` in csrc/fe_kmeans.h): on typical data a
    row that one candidate may beat is not ruled out for most of the others
    either, and measuring them all together shares the loads of x and the
    final reductions, with no unpredictable branch per candidate. Whether a
    candidate beats a row does not depend on whether a valid bound would have
    skipped the measurement.
    """
    cdef Py_ssize_t i, k, l, a, n_todo = 0, n_bad = 0
    cdef double acc[8]
    cdef double pruned, cur
    cdef int keep
    if last_centre != NULL:
        _kpp_apply(x, nb, d, last_centre, last_index, last_bit, improves,
                   closest, nearest, todo, scale)
    for k in range(8):
        acc[k] = 0.0
    i = 0
    while i < nb:
        # rows i..i+7 go to partial sums 0..7 (fully unrolled: the partial
        # sums stay in registers)
        for k in range(8):
            if i + k < nb:
                cur = closest[i + k]
                improves[i + k] = 0
                a = nearest[i + k]
                if <size_t>a >= <size_t>n_centres:  # a state no kernel wrote: refused
                    n_bad += 1
                    a = 0
                keep = qmin[a] < cur * PRUNE_MARGIN
                # branch-free: always write, advance only for kept rows; a
                # kept row adds (0 * its potential) = 0 exactly
                todo[n_todo] = <int32_t>(i + k)
                n_todo += keep
                acc[k] += <double>(1 - keep) * ((sw[i + k] if sw != NULL else 1.0) * cur)
        i += 8
    pruned = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
    if qb != NULL and n_todo > 0:
        n_todo = _kpp_qfilter(qb, start, todo, n_todo, closest, sw, L, maybe, &pruned)
    if floating is float:
        fe_kpp_rows_f32(x, d, todo, n_todo, closest, sw, cand, L, improves, sums)
    else:
        fe_kpp_rows_f64(x, d, todo, n_todo, closest, sw, cand, L, improves,
                            sums, pots, scale)
    for l in range(L):
        sums[l] = pruned + sums[l]
        if pots != NULL:
            pots[l] = pruned + pots[l]
    return n_bad
