"""Input of the Dask estimators: X (and sample_weight) as row blocks.

One mechanism decides the blocks: X is rechunked to ``block_rows`` rows
(all columns in one block), a size fixed by the data's shape and dtype
only. The order of the floating-point sums then depends on the data alone,
not on how the user chunked it nor on the cluster, so every fit of the
same data gives bit-identical results.
"""
import math
import numbers

import numpy as np
import dask
import dask.array as da

# bytes of X per block when block_rows is not given. Every block is a task
# per pass, and a task costs the client and scheduler about 2-4 ms of CPU
# (graph, scheduling, messages) whatever its size: at N=2e7, D=32 float32,
# 20 iterations, 64 MiB blocks (39 per pass) spent 5.3-5.7 s of client CPU
# and made fastem.dask 1.9x the in-memory fit; 256 MiB blocks (10 per pass)
# spend 2.2 s.
BLOCK_BYTES = 256 * 2**20
# but at least this many blocks where X has the rows: the workers' shares of
# a few blocks are uneven (5 blocks on 2 workers: one runs 3, 1.2x the mean,
# and a GMM fit at N=2e7, D=16 took 1.30x the in-memory fit). Not more: at
# N=2e7, D=32, 20 blocks of 128 MiB made a K-means fit 1.47x the in-memory
# one where 10 of 256 MiB took 1.17x (the bounded passes are short, and each
# task costs the client, the scheduler and the worker some CPU)
MIN_BLOCKS = 8
# rows per block in this range (at least the kernels' largest chunk, 4096
# rows: each block is one kernel pass, chunked as any pass is)
MIN_BLOCK_ROWS, MAX_BLOCK_ROWS = 4096, 2**22
# persist='auto' keeps X in the workers' memory when it takes at most this
# fraction of it
PERSIST_FRACTION = 0.5


def default_block_rows(n_samples, n_features, dtype):
    """Rows per block: X cut into equal blocks (the last one at most a row
    per block shorter), as few as give at most ``BLOCK_BYTES`` and
    ``MAX_BLOCK_ROWS`` rows per block, at least ``MIN_BLOCKS`` and an even
    number of them (two or four workers get equal shares), each at least
    ``MIN_BLOCK_ROWS`` rows. It depends on X's shape and dtype only (not on
    its chunks or the cluster).

    (Equal blocks: at N=2e7, D=32 float32, blocks of 2**21 rows left the
    tenth block half full, and the worker without it idle 5 % of the fit.)
    """
    row_bytes = max(1, n_features * np.dtype(dtype).itemsize)
    n_blocks = max(MIN_BLOCKS, -(-n_samples * row_bytes // BLOCK_BYTES),
                   -(-n_samples // MAX_BLOCK_ROWS))
    n_blocks += n_blocks % 2
    return max(MIN_BLOCK_ROWS, -(-n_samples // n_blocks))


def scheduler_workers(client):
    """{address: identity} of the workers the scheduler has now, asked of it.

    Not ``client.scheduler_info()["workers"]``: that call refreshes the
    client's cached identity and then returns the cache, which the client's
    periodic update (which fetches no per-worker information in current
    distributed) can replace in between, so that a healthy cluster reads as
    one without workers (seen in CI).
    """
    return client.sync(client.scheduler.identity)["workers"]


def check_cluster():
    """Raise if the current distributed client has no workers.

    Without a distributed client, dask's default (local) scheduler runs
    the tasks, which is fine.
    """
    try:
        from distributed import default_client
        client = default_client()
    except (ImportError, ValueError):
        return None
    if not scheduler_workers(client):
        raise ValueError(
            "The Dask client has no workers: start some (or wait for them with "
            "client.wait_for_workers(n)) before fitting."
        )
    return client


def _cluster_memory(client):
    if client is None:
        return None
    limits = [w.get("memory_limit") or 0 for w in scheduler_workers(client).values()]
    return sum(limits) or None


# how long a pass waits for a worker when the cluster has none (a nanny
# restarting a killed worker takes a few seconds)
_WORKER_WAIT_S = 30

class Blocks:
    """X and sample_weight as aligned lists of row blocks (dask Delayed).

    Attributes
    ----------
    X : dask.array.Array, (n_samples, n_features), float32 or float64
    sw : dask.array.Array (n_samples,) of X's dtype, or None
    x_blocks, w_blocks : lists of Delayed (w_blocks: None entries if no sw)
    starts : ndarray (n_blocks + 1,), first row of each block, then n_samples
    """

    def __init__(self, X, sample_weight=None, *, block_rows=None, persist="auto"):
        X = as_dask_array(X, block_rows)
        n_samples, n_features = X.shape
        rows = block_rows or default_block_rows(n_samples, n_features, X.dtype)
        X = X.rechunk((rows, n_features))
        sw = None if sample_weight is None else _as_weights(sample_weight, X)
        client = check_cluster()
        self.persisted = _should_persist(persist, X, client)
        if self.persisted:
            X, sw = (dask.persist(X) + (None,)) if sw is None else dask.persist(X, sw)
        self.X, self.sw, self.client = X, sw, client
        self.n_samples, self.n_features, self.dtype = n_samples, n_features, X.dtype
        self.block_rows = rows
        self.x_blocks = list(X.to_delayed().ravel())
        self.w_blocks = (list(sw.to_delayed().ravel()) if sw is not None
                         else [None] * len(self.x_blocks))
        self.starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        self.workers = None
        # the futures of the last pass, released once the next is submitted
        self.last_pass = []

    def place(self, refresh=False):
        """The worker each block's tasks run on (None without a distributed
        client); chosen once, again (``refresh``) when one of them has left.

        A block held in memory stays where it is; the others are spread
        in contiguous runs, in block order, over the workers (sorted).
        Tasks pinned there are never stolen by another worker, so no
        block is copied between workers and per-block state stays put.
        """
        if self.client is None:
            return None
        if self.workers is not None and not refresh:
            return self.workers
        alive = sorted(scheduler_workers(self.client))
        if not alive:  # a worker may be restarting (its nanny): wait for one
            try:
                self.client.wait_for_workers(1, timeout=_WORKER_WAIT_S)
            except TimeoutError:
                pass
            alive = sorted(scheduler_workers(self.client))
        if not alive:
            raise ValueError(
                f"The Dask client has had no workers for {_WORKER_WAIT_S} s: the fit "
                "cannot go on. Start workers (or a LocalCluster) and fit again.")
        if self.workers is not None and set(self.workers) <= set(alive):
            return self.workers
        if self.persisted:
            from distributed import futures_of, wait

            wait(futures_of(self.X))  # where each block is held, once it is
        # blocks already in memory (persisted here or by the caller) stay put
        keys = [b.key for b in self.x_blocks]
        who = self.client.sync(self.client.scheduler.who_has, keys=keys)
        held = {k: [w for w in who.get(k, ()) if w in alive] for k in keys}
        n = len(self.x_blocks)
        self.workers = [
            (held.get(b.key) or [alive[i * len(alive) // n]])[0]
            for i, b in enumerate(self.x_blocks)
        ]
        return self.workers

    def alive(self):
        """Whether every worker of the current placement is still there."""
        if self.client is None or self.workers is None:
            return True
        alive = set(scheduler_workers(self.client))
        return set(self.workers) <= alive

    def __len__(self):
        return len(self.x_blocks)

    def rows(self, indices):
        """Rows of X at the given global indices (a small array, computed)."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0:
            return np.empty((0, self.n_features), self.dtype)
        return np.ascontiguousarray(self.X[indices].compute())


def as_dask_array(X, block_rows=None):
    """X as a 2-D float32/float64 dask array with known row chunks.

    NumPy arrays and memmaps are wrapped (chunked along rows); other
    numeric dtypes become float64, lazily. Values are checked (NaN,
    infinity) in the first pass over the data, block by block.
    """
    if not isinstance(X, da.Array):
        if hasattr(X, "__dask_graph__"):
            raise TypeError(
                f"X is a {type(X).__name__}; pass a dask.array.Array (for a dask "
                "DataFrame: df.to_dask_array(lengths=True))."
            )
        X = np.asarray(X) if not isinstance(X, np.ndarray) else X
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}.")
        rows = block_rows or default_block_rows(
            *X.shape, X.dtype if X.dtype.kind == "f" else np.float64)
        X = da.from_array(X, chunks=(rows, -1))
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}.")
    if any(math.isnan(c) for c in X.chunks[0]) or any(math.isnan(c) for c in X.chunks[1]):
        raise ValueError(
            "X has unknown chunk sizes, so its blocks of rows cannot be "
            "aligned: call X.compute_chunk_sizes() first (or, from a dask "
            "DataFrame, df.to_dask_array(lengths=True))."
        )
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must have at least one sample and one feature, got shape {X.shape}.")
    if X.dtype.kind not in "fiub" or X.dtype.kind == "f" and X.dtype.itemsize > 8:
        raise TypeError(f"X must hold real numbers, got dtype {X.dtype}.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return X


def _as_weights(sample_weight, X):
    """sample_weight as a 1-D dask array aligned with X's row blocks."""
    n_samples = X.shape[0]
    if isinstance(sample_weight, numbers.Number):
        return da.full(n_samples, sample_weight, dtype=X.dtype, chunks=X.chunks[0])
    if not isinstance(sample_weight, da.Array):
        sample_weight = np.asarray(sample_weight)
        if sample_weight.dtype.kind not in "fiub":
            raise TypeError(f"sample_weight must be numeric, got dtype {sample_weight.dtype}.")
        sample_weight = da.from_array(sample_weight, chunks=-1)
    if sample_weight.dtype.kind not in "fiub":
        raise TypeError(f"sample_weight must be numeric, got dtype {sample_weight.dtype}.")
    if sample_weight.ndim != 1 or sample_weight.shape[0] != n_samples:
        raise ValueError(
            "sample_weight must be a 1-D array with one weight per sample: "
            f"expected shape ({n_samples},), got {sample_weight.shape}."
        )
    return sample_weight.astype(X.dtype).rechunk((X.chunks[0],))


def _should_persist(persist, X, client):
    if persist == "auto":
        memory = _cluster_memory(client)
        return memory is None or X.nbytes <= PERSIST_FRACTION * memory
    if not isinstance(persist, (bool, np.bool_)):
        raise ValueError(f"persist must be 'auto', True or False, got {persist!r}.")
    return bool(persist)
