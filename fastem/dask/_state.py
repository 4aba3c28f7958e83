"""Per-block state that a fit keeps on the workers between its passes.

A pass whose block tasks carry state (the bounds of K-means' bounded
passes: O(rows) per block) stores it here, in the worker process that ran
the task, under ``(fit_id, block index)``; the fit's block tasks are
pinned to one worker each (``_reduce``), so the next pass finds it there.
The fit releases its entries on every worker when it ends, whatever the
outcome (``release``). A task that does not find its block's state (the
worker was replaced) rebuilds it from scratch.
"""
import threading

_LOCK = threading.Lock()
_STORE = {}


def get(fit_id, index):
    """The state of block ``index`` of fit ``fit_id`` in this process, or None."""
    with _LOCK:
        return _STORE.get((fit_id, index))


def put(fit_id, index, state):
    """Keep ``state``: (pass number, the block's state, that pass's result)."""
    with _LOCK:
        _STORE[(fit_id, index)] = state


def release(fit_id):
    """Drop every state of ``fit_id`` held by this process; returns how many."""
    with _LOCK:
        keys = [key for key in _STORE if key[0] == fit_id]
        for key in keys:
            del _STORE[key]
    return len(keys)


def held(fit_id=None):
    """(entries, bytes) held by this process (of one fit, or of all)."""
    with _LOCK:
        states = [s for key, s in _STORE.items() if fit_id is None or key[0] == fit_id]
    return len(states), sum(s[1].nbytes for s in states)
