"""k-means|| over the blocks of a dask array.

The driver is the in-memory one (``fastem._init.KMeansParallel``); this
module only runs its per-block steps as tasks. Each block's per-row state
(squared distance to the nearest candidate and its index) stays on the
workers between rounds (persisted), and only the drawn rows, one potential
per block and the candidates' weights come back to the client.
"""
import dask
import numpy as np

from fastem._init import KMeansParallel
from fastem.dask import _tasks
from fastem.dask._reduce import block_tasks, compute_reduced, map_collect, map_reduce


class BlockSeeding:
    """The block operations ``KMeansParallel`` needs, on ``Blocks``."""

    def __init__(self, blocks, n_threads):
        self.blocks = blocks
        self.n_threads = n_threads
        self.state = [None] * len(blocks)

    def locate(self, u):
        """The row whose cumulative weight first exceeds u * total weight."""
        b = self.blocks
        if b.sw is None:
            return b.rows([min(int(u * b.n_samples), b.n_samples - 1)])[0]
        totals = np.array(map_collect(_tasks.weight_total, b))
        cum = np.cumsum(totals)
        target = u * cum[-1]
        i = min(int(np.searchsorted(cum, target, side="right")), len(b) - 1)
        task = dask.delayed(_tasks.locate_row, pure=True)(
            b.x_blocks[i], b.w_blocks[i], target - (cum[i - 1] if i else 0.0), i,
            int(b.starts[i]))
        return task.compute()

    def update(self, new, first_index):
        tasks = block_tasks(_tasks.parallel_update, self.blocks, new, first_index,
                            self.n_threads, state=self.state)
        done = dask.persist(*tasks)
        self.state = [t[0] for t in done]
        return float(compute_reduced([t[1] for t in done]))

    def sample(self, factor, seed):
        rows = map_collect(_tasks.parallel_sample, self.blocks, factor, seed,
                           state=self.state)
        return np.ascontiguousarray(np.concatenate(rows))

    def weights(self, n_candidates):
        return map_reduce(_tasks.parallel_weights, self.blocks, n_candidates,
                          state=self.state)


def kmeans_parallel_blocks(blocks, n_clusters, rng, n_threads):
    """k-means|| seeds (X's dtype) of the blocks: the in-memory algorithm,
    the rows' uniform draws seeded per block."""
    return KMeansParallel().seeds(BlockSeeding(blocks, n_threads), n_clusters, rng,
                                  n_threads)


def weighted_random_rows(blocks, n_rows, rng):
    """Distinct row indices drawn with probability proportional to weight.

    The in-memory draw (``fastem._init.random_rows``: numpy's
    ``Generator.choice(n, size, replace=False, p=w / sum(w))``) over
    blocks: each round draws as many uniforms as rows are missing, finds
    the rows whose cumulative weight first exceeds ``u * total`` (rows
    already drawn weigh zero) and keeps the new distinct ones, in order of
    first appearance. The same ``rng`` gives the same rows as in memory
    (up to the rounding of the cumulative sums, block by block here).
    """
    found = np.empty(0, dtype=np.int64)
    while found.size < n_rows:
        u = rng.random(n_rows - found.size)
        totals = np.array(map_collect(_tasks.draw_total, blocks, found))
        cum = np.cumsum(totals)
        targets = u * cum[-1]
        block_of = np.minimum(np.searchsorted(cum, targets, side="right"), len(blocks) - 1)
        new = np.empty(u.size, dtype=np.int64)
        for b in np.unique(block_of):
            sel = np.flatnonzero(block_of == b)
            new[sel] = dask.delayed(_tasks.draw_locate, pure=True)(
                blocks.x_blocks[b], blocks.w_blocks[b], found,
                targets[sel] - (cum[b - 1] if b else 0.0), int(b),
                int(blocks.starts[b])).compute()
        _, first = np.unique(new, return_index=True)
        found = np.concatenate([found, new[np.sort(first)]])
    return found
