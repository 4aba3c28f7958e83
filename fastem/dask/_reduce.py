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
import uuid

# dask's task spec (the module is private, but it is what dask.delayed
# itself builds, in every dask the extra allows: >= 2025.1)
from dask._task_spec import DataNode, List, Task, TaskRef
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

# seconds between two looks at the cluster while a pinned pass runs
WATCH_S = 0.5


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
    below = {id(d.dask): d.dask for d in inputs if d is not None}
    names = set().union(*(g.layers for g in below.values()))
    dependencies = {}
    for name in layers:
        dependencies[name] = set(names)
        names.add(name)
    return HighLevelGraph.merge(*below.values(), HighLevelGraph(layers, dependencies))


def _ref(d):
    return None if d is None else TaskRef(d.key)


def tree(parts, combine):
    """Combine Delayed ``parts`` pairwise, neighbours first, in order."""
    name = f"{combine.__name__}-{uuid.uuid4().hex}"
    tasks, level, depth = {}, [p.key for p in parts], 0
    while len(level) > 1:
        pairs = range(0, len(level), 2)
        for i in pairs:
            if i + 1 < len(level):
                key = (name, depth, i // 2)
                tasks[key] = Task(key, combine, TaskRef(level[i]), TaskRef(level[i + 1]))
        level = [(name, depth, i // 2) if i + 1 < len(level) else level[i] for i in pairs]
        depth += 1
    if not tasks:
        return parts[0]
    return Delayed(level[0], _graph({name: MaterializedLayer(tasks)}, parts), layer=name)


def collect(parts):
    """One Delayed computing the tuple of the Delayed ``parts``' results."""
    key = f"collect-{uuid.uuid4().hex}"
    layer = MaterializedLayer({key: Task(key, tuple, List(*(TaskRef(p.key) for p in parts)))})
    return Delayed(key, _graph({key: layer}, parts))


def block_tasks(func, blocks, *args, state=None, workers=None):
    """``func(x, w, *args, index, start)`` for every block, as Delayed.

    ``args`` (parameters: centres, a PassSpec) are put in the graph once,
    so each worker receives them once per pass. Keys are unique per call:
    two passes with equal inputs never share results that the first one's
    clean-up may release. ``state``: a list of per-block Delayed objects
    passed after ``w`` (k-means|| rows' state). ``workers``: the worker of
    each block (its tasks pinned there: one layer per worker, annotated),
    or None.
    """
    token = uuid.uuid4().hex
    name, params = f"{func.__name__}-{token}", f"params-{token}"
    param_keys = [(params, j) for j in range(len(args))]
    layers = {params: MaterializedLayer({k: DataNode(k, a) for k, a in zip(param_keys, args)})}
    by_worker = {}
    for i, (xb, wb) in enumerate(zip(blocks.x_blocks, blocks.w_blocks)):
        extra = () if state is None else (_ref(state[i]),)
        task = Task((name, i), func, TaskRef(xb.key), _ref(wb), *extra,
                    *(TaskRef(k) for k in param_keys), i, int(blocks.starts[i]))
        by_worker.setdefault(None if workers is None else workers[i], {})[(name, i)] = task
    layer_of = {}
    for n, (worker, tasks) in enumerate(by_worker.items()):
        pin = None if worker is None else dict(workers=[worker], allow_other_workers=False)
        layers[f"{name}-{n}"] = MaterializedLayer(tasks, annotations=pin)
        layer_of.update(dict.fromkeys(tasks, f"{name}-{n}"))
    inputs = blocks.x_blocks + blocks.w_blocks + ([] if state is None else list(state))
    graph = _graph(layers, inputs)
    return [Delayed((name, i), graph, layer=layer_of[(name, i)]) for i in range(len(blocks))]


def run_pass(blocks, build):
    """Compute ``build(workers)`` (a Delayed built from pinned block tasks).

    Without a distributed client: dask's local scheduler, nothing pinned.
    """
    workers = blocks.place()
    if workers is None:
        return build(None).compute()
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
    return list(run_pass(blocks, lambda workers: collect(
        block_tasks(func, blocks, *args, state=state, workers=workers))))
