"""One pass over the blocks: a task per block, a tree reduction in block order.

The combination order is fixed by the number of blocks only (pairs of
neighbours, level by level), so the sums do not depend on which worker
computed which block, nor when. The tree's lower levels are tasks (down to
``CLIENT_PARTIALS`` partial results), its last levels run on the client.

On a distributed cluster each block task is pinned to one worker
(``Blocks.place``): where the block is held if it was persisted. Work
stealing then never copies a block to another worker, and state a task
keeps on its worker (``_state``) is found by the next pass. A pinned task
cannot run elsewhere, so the pass is watched: if a worker of the placement
leaves (killed, lost), the pass is cancelled and submitted again on a new
placement (lost blocks are recomputed from their source by dask; tasks
rebuild state they do not find).
"""
import asyncio
import uuid

import dask

# dask's task spec (the module is private, but it is what dask.delayed
# itself builds, in every dask the extra allows: >= 2025.1)
from dask._task_spec import DataNode, List, Task, TaskRef
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

# seconds between two looks at the cluster while a pinned pass runs
WATCH_S = 0.5
# the last levels of the reduction tree run on the client, from at most this
# many partial results: each combination in the graph is a task and a
# transfer between workers (about 2-4 ms of CPU of the client, scheduler
# and workers, which share the cores), while the client adds small partials
# in microseconds. Partials are k x d (x d) float64 statistics per block.
CLIENT_PARTIALS = 16


def add(a, b):
    """Element-wise sum of two statistics (arrays, floats or tuples of them)."""
    if isinstance(a, tuple):
        return tuple(add(x, y) for x, y in zip(a, b))
    return a + b


# The graphs of a pass are written as layers of tasks, not built by
# calling ``dask.delayed`` per task: each such call merges the graphs of its
# arguments and tokenises them. Measured (30 passes over 10 tiny blocks,
# LocalCluster 2 x 1, loaded machine): client CPU 60-98 ms per pass with
# dask.delayed, 44-50 ms with these layers; the client shares the machine's
# cores with the workers.

def _graph(layers, inputs):
    """A graph of ``layers`` ({name: MaterializedLayer}, each depending on
    those before it) on top of the graphs of the Delayed ``inputs`` (each
    distinct graph merged once)."""
    below = {}  # id -> graph; holding each graph keeps its id unique (a
    # DelayedLeaf's ``.dask`` is a new graph at each access, so the id of one
    # not held could be reused by the next, and a graph would be dropped)
    for d in inputs:
        if d is not None:
            graph = d.dask
            below.setdefault(id(graph), graph)
    names = set().union(*(g.layers for g in below.values()))
    dependencies = {}
    for name in layers:
        dependencies[name] = set(names)
        names.add(name)
    return HighLevelGraph.merge(*below.values(), HighLevelGraph(layers, dependencies))


def _ref(d):
    return None if d is None else TaskRef(d.key)


def _pair_up(level, pair):
    """The next level of the reduction tree: neighbours (0, 1), (2, 3), ...
    combined by ``pair(a, b, i)`` (i: the pair's position); an odd last
    item goes up as it is."""
    return [pair(level[i], level[i + 1], i // 2) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)]


def tree(parts, combine, until=CLIENT_PARTIALS):
    """The lower levels of the reduction tree of Delayed ``parts``, as tasks.

    Neighbours are combined pairwise, level by level, while more than
    ``until`` items remain; returns that level (Delayed). ``reduce_level``
    on their results finishes the same tree on the client.
    """
    name = f"{combine.__name__}-{uuid.uuid4().hex}"
    tasks, level, depth = {}, [p.key for p in parts], 0

    def pair(a, b, i):
        key = (name, depth, i)
        tasks[key] = Task(key, combine, TaskRef(a), TaskRef(b))
        return key

    while len(level) > until:
        level = _pair_up(level, pair)
        depth += 1
    if not tasks:
        return list(parts)
    graph = _graph({name: MaterializedLayer(tasks)}, parts)
    by_key = {p.key: p for p in parts}
    return [by_key[key] if key in by_key else Delayed(key, graph, layer=name)
            for key in level]


def reduce_level(values, combine):
    """Finish the reduction tree on the client: ``values`` (the results of a
    ``tree`` level, in order) combined by the same pairing."""
    level = list(values)
    while len(level) > 1:
        level = _pair_up(level, lambda a, b, i: combine(a, b))
    return level[0]


def compute_reduced(parts, combine=add):
    """The combined results of Delayed ``parts`` (any scheduler, not pinned)."""
    return reduce_level(dask.compute(*tree(parts, combine)), combine)


def _apply(func, head, params, index, start):
    """A block task: ``func(x, w[, state], *params, index, start)``."""
    return func(*head, *params, index, start)


def block_tasks(func, blocks, *args, state=None, workers=None):
    """``func(x, w, *args, index, start)`` for every block, as Delayed.

    ``args`` (parameters: centres, a PassSpec) are one node of the graph
    per worker, pinned with that worker's tasks: each worker receives them
    once per pass, with its tasks (not from another worker, which would
    add a transfer before its first task). Keys are unique per call: two
    passes with equal inputs never share results that the first one's
    clean-up may release. ``state``: a list of per-block Delayed objects
    passed after ``w`` (k-means|| rows' state). ``workers``: the worker of
    each block (its tasks pinned there: one layer per worker, annotated),
    or None.
    """
    token = uuid.uuid4().hex
    name, params = f"{func.__name__}-{token}", f"params-{token}"
    by_worker, params_of = {}, {}
    for i, (xb, wb) in enumerate(zip(blocks.x_blocks, blocks.w_blocks)):
        worker = None if workers is None else workers[i]
        tasks = by_worker.setdefault(worker, {})
        if worker not in params_of:  # the worker's own copy of the parameters
            key = params_of[worker] = (params, len(params_of))
            tasks[key] = DataNode(key, args)
        extra = () if state is None else (_ref(state[i]),)
        tasks[(name, i)] = Task((name, i), _apply, func,
                                List(TaskRef(xb.key), _ref(wb), *extra),
                                TaskRef(params_of[worker]), i, int(blocks.starts[i]))
    layers, layer_of = {}, {}
    for n, (worker, tasks) in enumerate(by_worker.items()):
        pin = None if worker is None else dict(workers=[worker], allow_other_workers=False)
        layers[f"{name}-{n}"] = MaterializedLayer(tasks, annotations=pin)
        layer_of.update(dict.fromkeys(tasks, f"{name}-{n}"))
    inputs = blocks.x_blocks + blocks.w_blocks + ([] if state is None else list(state))
    graph = _graph(layers, inputs)
    return [Delayed((name, i), graph, layer=layer_of[(name, i)]) for i in range(len(blocks))]


def run_pass(blocks, build):
    """The results of ``build(workers)`` (a list of Delayed built from
    pinned block tasks), gathered by the client, in order.

    Without a distributed client: dask's local scheduler, nothing pinned.
    """
    workers = blocks.place()
    if workers is None:
        return list(dask.compute(*build(None)))
    from distributed import wait

    client = blocks.client
    while True:
        futures = client.compute(build(workers))
        # The last pass's results are released only now: a release sent
        # just before the new graph would hold it back for the client's
        # message batching interval (10 ms), and the scheduler's messages to
        # the workers for theirs (5 ms).
        blocks.last_pass = futures
        while True:
            try:
                wait(futures, timeout=WATCH_S)
                return client.gather(futures)
            except (TimeoutError, asyncio.TimeoutError):  # distinct before Python 3.11
                if not blocks.alive():  # its pinned tasks would wait forever
                    client.cancel(futures)
                    break
        workers = blocks.place(refresh=True)


def map_reduce(func, blocks, *args, combine=add, state=None):
    """Run ``func`` on every block and return the combined result (computed)."""
    return reduce_level(run_pass(blocks, lambda workers: tree(
        block_tasks(func, blocks, *args, state=state, workers=workers), combine)), combine)


def map_collect(func, blocks, *args, state=None):
    """Run ``func`` on every block and return the list of results, in order."""
    return run_pass(blocks, lambda workers: block_tasks(func, blocks, *args, state=state,
                                                        workers=workers))
