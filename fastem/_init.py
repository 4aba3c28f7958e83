"""Seeding of centres: greedy k-means++ and random rows.

Shared by KMeans and GaussianMixture. The passes over the data run in the
compiled core (``fastem._kernels._kmeanspp``); this module only draws random
numbers and picks rows.
"""
import math

import numpy as np

from fastem._kernels import load_kernels
from fastem._parallel import chunk_rows
from fastem._sparse import dense_rows, issparse
from fastem._sparse import greedy_kmeans_plusplus as sparse_kmeans_plusplus
from fastem._validation import (
    check_array,
    check_int,
    check_random_state,
    check_sample_weight,
    effective_n_threads,
)
_kpp = load_kernels("_kmeanspp")
_lloyd = load_kernels("_lloyd")


# up to this many centres, each row's nearest-centre index is kept in 16 bits
_UINT16_CENTRES = 65535

# greedy k-means++ builds 7-bit codes of X for its quantised bound (see
# _QuantisedRows) once this many centres are chosen, if at least three times
# as many steps remain: building them costs about one pass over X, and the
# bound saves most of a pass per step once the centres cover the data
# (before, a candidate still beats many of the rows and they have to be
# read anyway)
_QBOUND_FROM_CENTRE = 32


def kmeans_plusplus(X, n_clusters, *, sample_weight=None, x_squared_norms=None,
                    random_state=None, n_local_trials=None, n_threads=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007).

    The first centre is a random row (drawn with probability proportional to
    its weight). Each further centre is the best of ``n_local_trials``
    candidates drawn with probability proportional to ``w * D(x)^2`` (the
    weighted squared distance to the closest centre so far), "best" meaning
    the lowest resulting potential ``sum_i w_i D(x_i)^2``. Each step is one
    parallel pass over X and never allocates anything of size n x k.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Data; float32 is kept, other dtypes become float64. Sparse data are
        used as CSR without densifying them (same seeds as on
        ``X.toarray()`` for the same ``random_state``).
    n_clusters : int
        Number of centres to choose.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples (unit weights if None).
    x_squared_norms : None
        Accepted for scikit-learn compatibility and ignored.
    random_state : int, Generator, RandomState or None, default=None
        Seed of the random draws.
    n_local_trials : int, default=None
        Candidates per step; ``2 + int(log(n_clusters))`` if None.
    n_threads : int, default=None
        OpenMP threads (all allowed cores if None).

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
        The chosen rows of X, in X's float dtype.
    indices : ndarray of shape (n_clusters,)
        Their row indices in X.

    Notes
    -----
    On dense data, with at least 128 clusters and rows at least four times
    as wide as their codes (float32 from 32 features, float64 from 16), the
    seeding keeps, from its 32nd centre on, a 7-bit code of every row (one
    byte per feature rounded up to a multiple of 32, plus 8 bytes per row:
    about a quarter of float32 X at 64 features, an eighth of float64 X),
    from which a lower bound on each row's distance to the candidates rules
    out most rows without reading them. The bound is exact, so the seeds are
    those of the plain algorithm.
    """
    X = check_array(X, accept_sparse=True)
    n_clusters = check_int(n_clusters, "n_clusters", min_value=1, max_value=X.shape[0])
    if n_local_trials is not None:
        n_local_trials = check_int(n_local_trials, "n_local_trials", min_value=1)
    sw = check_sample_weight(sample_weight, X.shape[0], X.dtype)
    rng = check_random_state(random_state)
    threads = effective_n_threads(n_threads)
    indices = greedy_kmeans_plusplus(X, n_clusters, sw, rng, n_local_trials,
                                     threads)
    if issparse(X):
        return dense_rows(X, indices), indices
    return X[indices].copy(), indices


def greedy_kmeans_plusplus(X, n_clusters, sample_weight, rng, n_local_trials,
                           n_threads):
    """Row indices of greedy k-means++ seeds; inputs already validated.

    Distances are computed directly (never by the expansion), so no frame
    shift is needed; rows whose closest centre provably beats a candidate
    are skipped without reading them (see ``fastem._kernels._kmeanspp``).
    After the first centre, each step is one parallel pass over X: the pass
    that measures the candidates also takes the previous step's centre into
    account, and returns the chunk potentials each candidate would leave.
    """
    if issparse(X):  # same algorithm and draws on CSR rows
        return sparse_kmeans_plusplus(X, n_clusters, sample_weight, rng, n_local_trials,
                                      n_threads)
    n_samples, n_features = X.shape
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    indices = np.empty(n_clusters, dtype=np.intp)
    chosen = np.empty((n_clusters, n_features))  # float64 copies of the centres
    if sample_weight is None:
        first = int(rng.integers(n_samples))
    else:
        first = int(rng.choice(n_samples, p=sample_weight / sample_weight.sum(dtype=np.float64)))
    indices[0] = first
    chosen[0] = X[first]
    state = _GreedyState(X, sample_weight, first, n_clusters, n_local_trials, n_threads)
    for c in range(1, n_clusters):
        candidates = state.draw_candidates(rng)
        potentials = state.candidate_potentials(candidates, chosen[:c])
        pick = int(np.argmin(potentials))
        best = candidates[pick]
        indices[c] = best
        chosen[c] = X[best]
        state.accept(best, c, pick)
    return indices


class _GreedyState:
    """What greedy k-means++ keeps per row between its steps.

    ``closest``: each row's squared distance to its closest chosen centre
    (float32 whatever X's dtype, scaled by ``scale``: enough for sampling,
    half the memory); ``nearest``: that centre; ``chunk_pot``: the
    potential sum_i w_i D_i^2 of every chunk of ``rows`` rows.

    The centre chosen last is applied lazily: ``candidate_potentials``
    measured the candidates against every row and recorded in ``improves``
    which rows the winner improves, so ``accept`` only notes the winner
    (``last``, its index and its candidate slot ``last_pick``), and the
    next pass over X (or ``_settle`` of a chunk the sampler reads first)
    applies it from there. The three kernels that share this state are
    called only from here.
    """

    def __init__(self, X, sample_weight, first, n_clusters, n_local_trials, n_threads):
        n_samples = X.shape[0]
        self.X, self.sample_weight, self.n_threads = X, sample_weight, n_threads
        self.sw = sample_weight if sample_weight is not None else np.empty(0, X.dtype)
        self.rows = chunk_rows(X.shape[1], X.dtype.itemsize, min_rows=256)
        n_chunks = -(-n_samples // self.rows)
        self.closest = np.empty(n_samples, dtype=np.float32)
        self.nearest = np.empty(n_samples, dtype=np.uint16 if n_clusters <= _UINT16_CENTRES
                                else np.int32)
        self.improves = np.zeros(n_samples, dtype=np.uint16)
        self.chunk_pot = np.empty(n_chunks)
        self.chunk_pots = np.empty((n_chunks, n_local_trials))
        self.potentials = np.empty(n_local_trials)
        self.n_local_trials = n_local_trials
        self.scale = _distance_scale(X, X[first])
        self.quantised = None
        self.quantise_at = (_QBOUND_FROM_CENTRE if _QuantisedRows.pays_off(X, n_clusters)
                            else None)
        _kpp.kpp_init_closest(X, self.sw, X[first], self.closest, self.nearest,
                            self.chunk_pot, self.rows, n_threads, self.scale)
        # the centre chosen last, not yet applied (index 0: none)
        self.last, self.last_index, self.last_pick = X[first], 0, 0

    def draw_candidates(self, rng):
        """``n_local_trials`` rows drawn with probability w_i D_i^2."""
        chunk_cum = np.cumsum(self.chunk_pot)
        targets = rng.uniform(size=self.n_local_trials) * chunk_cum[-1]
        return _draw_rows(targets, chunk_cum, self.closest, self.sample_weight,
                          self.rows, self._settle)

    def candidate_potentials(self, candidates, chosen):
        """The potential each candidate row would leave (one pass over X,
        which also applies the centre chosen last); ``chosen``: the centres
        so far (float64), for the pruning of rows."""
        cand = self.X[candidates]
        if len(chosen) == self.quantise_at:
            self.quantised = _QuantisedRows.build(self.X, self.n_threads)
        bound = None if self.quantised is None else self.quantised.bound(candidates)
        _kpp.kpp_candidate_potentials(
            self.X, self.sw, cand, self.scale * _quarter_sqdist(chosen, cand),
            self.closest, self.nearest, self.improves,
            (self.last, self.last_index, self.last_pick),
            (self.chunk_pots, self.potentials), self.rows, self.n_threads, self.scale,
            bound)
        return self.potentials

    def accept(self, row, index, pick):
        """Row ``row`` becomes centre ``index``: it was candidate ``pick`` of
        the last ``candidate_potentials``."""
        self.chunk_pot[:] = self.chunk_pots[:, pick]
        self.last, self.last_index, self.last_pick = self.X[row], index, pick

    def _settle(self, start, stop):
        """Apply the centre chosen last to rows start .. stop-1."""
        if self.last_index > 0:
            _kpp.kpp_settle_rows(self.X, self.last, self.last_index, self.last_pick,
                               self.improves, self.closest, self.nearest, start, stop,
                               self.scale)


class _QuantisedRows:
    """7-bit codes of X's rows for the candidate pass's quantised bound.

    Row x is x = lo + step * x~ + r_x with codes x~ in 0..127 (lo: the
    columns' minima over sampled rows; step: their largest column range /
    127, one scalar so that |x~ - q~|^2 is an integer sum), and the kernels
    keep |x~|^2 and an upper bound on |r_x| per row; ``fe_kpp_qbound`` in
    csrc/fe_kmeans.h derives the bound.
    """

    def __init__(self, codes, norms, errs, step):
        self.codes, self.norms, self.errs = codes, norms, errs
        self.inv_step = 1.0 / step

    @staticmethod
    def width(n_features):
        """Bytes per row of codes: n_features rounded up to the kernel's block."""
        return -(-n_features // _kpp.CODE_BLOCK) * _kpp.CODE_BLOCK

    @staticmethod
    def pays_off(X, n_clusters):
        """Whether seeding n_clusters centres from X should use the bound:
        enough steps after the codes are built (measured: it gains from
        K = 128 on), and codes at most a quarter of a row (float32 rows of
        16 features take longer with the bound, 32 shorter)."""
        width = _QuantisedRows.width(X.shape[1])
        return (n_clusters >= 4 * _QBOUND_FROM_CENTRE and width <= _kpp.CODE_MAX_WIDTH
                and 4 * width <= X.shape[1] * X.dtype.itemsize)

    @classmethod
    def build(cls, X, n_threads):
        """The codes of X, or None where the bound cannot be used (X's range
        is beyond what the kernel's float32 thresholds hold).

        The offsets and the step come from the range of evenly spaced rows
        (``_SPREAD_SAMPLE``, no pass over X): a row outside that range is
        clipped, which only widens its own residual.
        """
        n, d = X.shape
        sample = X[np.linspace(0, n - 1, min(n, _SPREAD_SAMPLE)).astype(np.intp)]
        lo = sample.min(axis=0).astype(np.float64)
        step = float(np.max(sample.max(axis=0) - lo)) / 127.0
        if step == 0.0:  # the sampled rows are all equal: any step will do
            step = 1.0
        if not 1e-30 < step < 1e30:
            return None
        codes = np.empty((n, cls.width(d)), dtype=np.uint8)
        norms = np.empty(n, dtype=np.int32)
        errs = np.empty(n, dtype=np.float32)
        _kpp.kpp_quantize(X, lo, step, codes, norms, errs, n_threads)
        return cls(codes, norms, errs, step)

    def bound(self, candidates):
        """The ``bound`` argument of kpp_candidate_potentials for these rows."""
        padded = -(-len(candidates) // 8) * 8
        qcodes = np.zeros((padded, self.codes.shape[1]), dtype=np.int8)
        qnorms = np.zeros(padded, dtype=np.int32)
        qerrs = np.zeros(padded, dtype=np.float32)
        qcodes[:len(candidates)] = self.codes[candidates].view(np.int8)
        qnorms[:len(candidates)] = self.norms[candidates]
        qerrs[:len(candidates)] = self.errs[candidates]
        return (self.codes, self.norms, self.errs, qcodes, qnorms, qerrs, self.inv_step)


# rows sampled (evenly spaced, no random draw) to estimate the data's spread
_SPREAD_SAMPLE = 1024


def _distance_scale(X, first):
    """Power of two that brings float64 data's squared distances near 1.

    ``closest`` holds squared distances in float32, whose range (1e-38 to
    3e38) float64 data can leave (X * 1e-25, X * 1e20). Multiplying every
    squared distance by a power of two is exact, so it changes no draw and
    no comparison: seeds are those of the unscaled algorithm, and the same
    for X and X times any constant. The spread is the mean squared
    distance of evenly spaced rows to the first centre; float32 data keep
    scale 1 (their distances are computed in float32 anyway).
    """
    if X.dtype != np.float64:
        return 1.0
    rows = X[np.linspace(0, X.shape[0] - 1, min(X.shape[0], _SPREAD_SAMPLE)).astype(np.intp)]
    spread = float(np.mean(np.square(rows - first).sum(axis=1)))
    if spread == np.inf:
        raise ValueError(
            "X's values are too large in magnitude: their squared distances "
            "overflow float64. Rescale X (for example with "
            "sklearn.preprocessing.StandardScaler)."
        )
    if not spread > 0:  # all sampled rows equal the first centre
        return 1.0
    return float(np.ldexp(1.0, -int(np.round(np.log2(spread)))))


def _quarter_sqdist(centres, points):
    """||c_a - q||^2 / 4 for all centres a and points q (the pruning bounds)."""
    diff = centres[:, None, :] - points[None, :, :].astype(np.float64)
    return np.ascontiguousarray(np.einsum("ijk,ijk->ij", diff, diff) / 4.0)


def _draw_rows(targets, chunk_cum, closest, sample_weight, rows, settle):
    """Rows i with cumulative potential sum_{j<=i} w_j D_j^2 first >= target.

    Two-level search: the chunk from the per-chunk cumulative potentials, then
    the row from a cumulative sum over that chunk only, once ``settle`` has
    brought that chunk's closest distances up to date.
    """
    n_samples = closest.shape[0]
    out = np.empty(targets.shape[0], dtype=np.intp)
    chunk_ids = np.minimum(np.searchsorted(chunk_cum, targets), chunk_cum.shape[0] - 1)
    for t, (target, c) in enumerate(zip(targets, chunk_ids)):
        start = c * rows
        stop = min(start + rows, n_samples)
        settle(start, stop)
        pot = closest[start:stop].astype(np.float64)
        if sample_weight is not None:
            pot *= sample_weight[start:stop]
        before = chunk_cum[c - 1] if c > 0 else 0.0
        within = np.searchsorted(np.cumsum(pot), target - before)
        out[t] = start + min(int(within), stop - start - 1)
    return out


def random_rows(n_samples, n_rows, sample_weight, rng):
    """Distinct random row indices, drawn with probability proportional to weight."""
    if sample_weight is None:
        return rng.choice(n_samples, size=n_rows, replace=False)
    p = sample_weight / sample_weight.sum(dtype=np.float64)
    if np.count_nonzero(p) < n_rows:
        raise ValueError(
            f"Only {np.count_nonzero(p)} samples have a positive sample_weight, "
            f"fewer than the {n_rows} requested clusters/components."
        )
    return rng.choice(n_samples, size=n_rows, replace=False, p=p)


# ---------------------------------------------------------------------------
# k-means|| (Bahmani, Moseley, Vattani, Kumar, Vassilvitskii 2012)
#
# Rounds of independent sampling replace k-means++'s k sequential draws:
#   C = {one row drawn with probability w_i / W};  phi = sum_i w_i D_i^2
#   each round: every row joins C independently with probability
#       min(1, l w_i D_i^2 / phi)           (l = oversampling * k; l rows
#   expected), then D_i^2 and phi are updated for the new members of C;
#   finally each candidate is weighted by the total weight of the rows
#   closest to it, and weighted greedy k-means++ picks k centres among them.
# The per-row work is written for one block of rows (``kmeans_parallel_*``);
# a block keeps its rows' D_i^2 and nearest candidate between rounds. The
# in-memory ``kmeans_parallel`` runs them on X as one block, fastem.dask on
# every block of a dask array, through the same driver (``KMeansParallel``).

#: rounds and oversampling factor (l = 2k) of the published algorithm
N_ROUNDS = 5
OVERSAMPLING = 2.0


def kmeans_parallel_start(n_samples):
    """A block's per-row state: D_i^2 (float64, +inf: no candidate yet) and
    the index of its nearest candidate."""
    return np.full(n_samples, np.inf), np.full(n_samples, -1, dtype=np.int32)


def kmeans_parallel_update(X, sample_weight, state, new, first_index, n_threads):
    """Bring a block's state up to date with the new candidates ``new``
    (rows in X's dtype, numbered from ``first_index``); returns the block's
    potential ``sum_i w_i D_i^2`` (float64). ``state`` is modified in place.

    The nearest new candidate of each row comes from the K-means assignment
    kernel (GEMM in the candidates' frame); its squared distance is then
    recomputed exactly, so D_i^2 never carries the expansion's rounding.
    BLAS must already be single-threaded.
    """
    from fastem._kmeans import assign_pass, inference_frame

    closest, nearest = state
    new = np.ascontiguousarray(new, dtype=X.dtype)
    frame_centres, frame = inference_frame(new, X.dtype)
    labels = assign_pass(X, None, frame_centres, frame, n_threads)[0]
    dist = np.empty(X.shape[0])
    _lloyd.assigned_sqdist(X, new, labels, dist, n_threads)
    better = dist < closest
    closest[better] = dist[better]
    nearest[better] = labels[better] + first_index
    if sample_weight is None:
        return float(closest.sum())
    return float(np.dot(sample_weight.astype(np.float64), closest))


def kmeans_parallel_sample(X, sample_weight, state, factor, seed, block_index):
    """Rows of a block drawn by one round: row i is taken when
    ``u_i < factor * w_i * D_i^2`` (factor = l / phi; inf takes every row of
    positive potential), ``u`` from ``default_rng([seed, block_index])``.

    Returns the block's drawn rows (X's dtype), in row order.
    """
    closest = state[0]
    u = np.random.default_rng([seed, block_index]).uniform(size=closest.shape[0])
    potential = closest if sample_weight is None else closest * sample_weight
    with np.errstate(invalid="ignore"):  # inf * 0: a row at a candidate
        taken = np.flatnonzero(u < factor * potential)
    return np.ascontiguousarray(X[taken])


def kmeans_parallel_weights(sample_weight, state, n_candidates):
    """Total weight (float64) of the rows of a block nearest to each candidate."""
    nearest = state[1]
    return np.bincount(nearest, weights=None if sample_weight is None
                       else sample_weight.astype(np.float64), minlength=n_candidates)


class KMeansParallel:
    """The k-means|| driver, over any set of row blocks.

    ``blocks`` does the per-row work on every block and combines the
    results in block order; it provides ``locate(target)`` (the row whose
    cumulative weight first exceeds ``target``, and the total weight),
    ``update(new, first_index)`` (sum of the blocks' potentials),
    ``sample(factor, seed)`` (the drawn rows of every block, in block
    order) and ``weights(n_candidates)`` (summed candidate weights).
    """

    def __init__(self, n_rounds=N_ROUNDS, oversampling=OVERSAMPLING):
        self.n_rounds = n_rounds
        self.oversampling = oversampling

    def candidates(self, blocks, n_clusters, rng):
        """Weighted candidates: (rows (m, d) in X's dtype, weights (m,))."""
        first = blocks.locate(rng.uniform())
        rows = [first[None, :]]
        n_cand = 1
        potential = blocks.update(rows[0], 0)
        rounds = 0
        # the published rounds, then (rarely: tiny or very redundant data)
        # rounds taking every row not yet at a candidate until there are k
        while potential > 0 and (rounds < self.n_rounds or n_cand < n_clusters):
            factor = (self.oversampling * n_clusters / potential
                      if rounds < self.n_rounds else np.inf)
            new = blocks.sample(factor, int(rng.integers(2**63 - 1)))
            rounds += 1
            if new.shape[0]:
                potential = blocks.update(new, n_cand)
                rows.append(new)
                n_cand += new.shape[0]
        return np.concatenate(rows), blocks.weights(n_cand)

    def seeds(self, blocks, n_clusters, rng, n_threads):
        """k centres: weighted greedy k-means++ on the candidates."""
        cand, weights = self.candidates(blocks, n_clusters, rng)
        if cand.shape[0] < n_clusters:
            # fewer distinct rows than clusters: repeat candidates (weight
            # 0, so they are picked only once nothing else is left)
            extra = np.arange(n_clusters - cand.shape[0]) % cand.shape[0]
            cand = np.concatenate([cand, cand[extra]])
            weights = np.concatenate([weights, np.zeros(extra.shape[0])])
        cand = np.ascontiguousarray(cand)
        idx = greedy_kmeans_plusplus(cand, n_clusters, weights.astype(cand.dtype),
                                     rng, None, n_threads)
        return cand[idx]


class _OneBlock:
    """X as a single block, for the in-memory ``kmeans_parallel``."""

    def __init__(self, X, sample_weight, n_threads):
        self.X, self.sw, self.n_threads = X, sample_weight, n_threads
        self.state = kmeans_parallel_start(X.shape[0])

    def locate(self, u):
        n = self.X.shape[0]
        if self.sw is None:
            return self.X[min(int(u * n), n - 1)]
        cum = np.cumsum(self.sw, dtype=np.float64)
        return self.X[min(int(np.searchsorted(cum, u * cum[-1], side="right")), n - 1)]

    def update(self, new, first_index):
        return kmeans_parallel_update(self.X, self.sw, self.state, new, first_index,
                                      self.n_threads)

    def sample(self, factor, seed):
        return kmeans_parallel_sample(self.X, self.sw, self.state, factor, seed, 0)

    def weights(self, n_candidates):
        return kmeans_parallel_weights(self.sw, self.state, n_candidates)


def kmeans_parallel(X, n_clusters, sample_weight, rng, n_threads, *,
                    n_rounds=N_ROUNDS, oversampling=OVERSAMPLING):
    """k-means|| seeds of X (in X's dtype); inputs already validated.

    The first candidate is a row drawn with probability proportional to its
    weight (never simply X[0]); the candidates keep the weight of the rows
    closest to them. Per round, ``rng`` gives one seed and
    ``kmeans_parallel_sample`` draws one uniform per row from it. BLAS must
    already be single-threaded.
    """
    blocks = _OneBlock(X, sample_weight, n_threads)
    return KMeansParallel(n_rounds, oversampling).seeds(blocks, n_clusters, rng, n_threads)
