"""One pass over the blocks: a task per block, a tree reduction in block order.

The combination order is fixed by the number of blocks only (pairs of
neighbours, level by level), so the sums do not depend on which worker
computed which block, nor when.

On a distributed cluster each block task is pinned to one worker
(``Blocks.place``): where the block is held if it was persisted. Work
stealing then never copies a block to another worker, and state a task
keeps on its worker (``_state``) is found by the next pass. A pinned task
cannot run elsewhere, so the pass is watched: if a worker of the placement
leaves (killed, lost), the pass is cancelled and submitted again on a new
placement (lost blocks are recomputed from their source by dask; tasks
rebuild state they do not find).
"""
import dask

# seconds between two looks at the cluster while a pinned pass runs
WATCH_S = 0.5


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


def block_tasks(func, blocks, *args, state=None, workers=None):
    """``func(x, w, *args, index, start)`` for every block, as Delayed.

    ``args`` (parameters: centres, a PassSpec) are put in the graph once,
    so each worker receives them once per pass. Keys are unique per call
    (``pure=False``): two passes with equal inputs never share results
    that the first one's clean-up may release. ``state``: a list of
    per-block Delayed objects passed after ``w`` (k-means|| rows' state).
    ``workers``: the worker of each block (tasks pinned there), or None.
    """
    shared = [dask.delayed(a, pure=True, traverse=False) for a in args]
    tasks = []
    for i, (xb, wb) in enumerate(zip(blocks.x_blocks, blocks.w_blocks)):
        extra = () if state is None else (state[i],)
        pin = {} if workers is None else dict(workers=[workers[i]],
                                               allow_other_workers=False)
        with dask.annotate(**pin):
            tasks.append(dask.delayed(func, pure=False)(
                xb, wb, *extra, *shared, i, int(blocks.starts[i])))
    return tasks


def run_pass(blocks, build):
    """Compute ``build(workers)`` (a Delayed built from pinned block tasks).

    Without a distributed client: dask's local scheduler, nothing pinned.
    """
    workers = blocks.place()
    if workers is None:
        return dask.compute(build(None))[0]
    client = blocks.client
    while True:
        future = client.compute(build(workers))
        while True:
            try:
                return future.result(timeout=WATCH_S)
            except TimeoutError:
                if not blocks.alive():  # its pinned tasks would wait forever
                    future.cancel()
                    break
        workers = blocks.place()


def map_reduce(func, blocks, *args, combine=add, state=None):
    """Run ``func`` on every block and return the combined result (computed)."""
    return run_pass(blocks, lambda workers: tree(
        block_tasks(func, blocks, *args, state=state, workers=workers), combine))


def map_collect(func, blocks, *args, state=None):
    """Run ``func`` on every block and return the list of results, in order."""
    return list(run_pass(blocks, lambda workers: dask.delayed(tuple, pure=False)(
        block_tasks(func, blocks, *args, state=state, workers=workers))))
