"""fastem's estimators on Dask arrays: fits beyond one machine's memory.

``fastem.dask.KMeans`` and ``fastem.dask.GaussianMixture`` take a
``dask.array.Array`` chunked along rows (or a NumPy array, wrapped). Each
iteration is one pass over the blocks: a task per block runs the same
compiled pass as the in-memory fit and returns the block's statistics
(K x D x D at most), the statistics are added in block order by a tree
reduction, and the M-step and the stopping test run on the client. Install
with ``pip install "fastem[dask]"`` (dask[array] and distributed).
"""
try:
    import dask  # noqa: F401
    import dask.array  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without dask
    raise ImportError(
        "fastem.dask needs dask[array] (and distributed for a cluster): "
        'pip install "fastem[dask]"'
    ) from exc

from fastem.dask._kmeans import KMeans
from fastem.dask._mixture import GaussianMixture

__all__ = ["KMeans", "GaussianMixture"]
