"""One pass over the blocks: a task per block, a tree reduction in block order.

The combination order is fixed by the number of blocks only (pairs of
neighbours, level by level), so the sums do not depend on which worker
computed which block, nor when.
"""
import dask
import numpy as np


def add(a, b):
    """Element-wise sum of two statistics (arrays, floats or tuples of them)."""
    if isinstance(a, tuple):
        return tuple(add(x, y) for x, y in zip(a, b))
    return a + b


def tree(parts, combine):
    """Combine Delayed ``parts`` pairwise, neighbours first, in order."""
    level = list(parts)
    while len(level) > 1:
        level = [dask.delayed(combine, pure=False)(level[i], level[i + 1])
                 if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0]


def block_tasks(func, blocks, *args, state=None):
    """``func(x, w, *args, index, start)`` for every block, as Delayed.

    ``args`` (parameters: centres, a PassSpec) are put in the graph once,
    so each worker receives them once per pass. Keys are unique per call
    (``pure=False``): two passes with equal inputs never share results
    that the first one's clean-up may release. ``state``: a list of
    per-block Delayed objects passed after ``w`` (k-means|| rows' state).
    """
    shared = [dask.delayed(a, pure=True, traverse=False) for a in args]
    tasks = []
    for i, (xb, wb) in enumerate(zip(blocks.x_blocks, blocks.w_blocks)):
        extra = () if state is None else (state[i],)
        tasks.append(dask.delayed(func, pure=False)(
            xb, wb, *extra, *shared, i, int(blocks.starts[i])))
    return tasks


def map_reduce(func, blocks, *args, combine=add, state=None):
    """Run ``func`` on every block and return the combined result (computed)."""
    return dask.compute(tree(block_tasks(func, blocks, *args, state=state), combine))[0]


def map_collect(func, blocks, *args, state=None):
    """Run ``func`` on every block and return the list of results, in order."""
    return list(dask.compute(*block_tasks(func, blocks, *args, state=state)))


def as_float(values):
    return np.asarray(values, dtype=np.float64)
