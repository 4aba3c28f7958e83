"""Threading and chunking policy shared by the estimators.

The kernels parallelise over row chunks with OpenMP and call BLAS on each
chunk from inside the parallel region; BLAS must then run on one thread, or
every OpenMP thread would start its own BLAS team (oversubscription).
"""
from threadpoolctl import ThreadpoolController

# Working set per chunk that should stay in a core's L2 cache.
L2_TARGET_BYTES = 256 * 1024


_controller = None


def blas_single_threaded():
    """Context manager limiting BLAS (OpenBLAS, MKL, ...) to one thread.

    The controller, which scans the process's loaded libraries (~10 ms), is
    created once, at the first fit: by then the BLAS the kernels call
    (scipy's, loaded with the kernels) and numpy's are loaded.
    """
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def chunk_rows(n_columns, itemsize, *, min_rows=64, max_rows=4096):
    """Rows per chunk so that one chunk's ``n_columns``-wide work fits in L2.

    A power of two between ``min_rows`` and ``max_rows``. It depends only on
    the problem's shape and dtype, never on the thread count: the chunking
    fixes the order of floating-point sums, so results stay bit-identical
    whatever the number of threads.

    Parameters
    ----------
    n_columns : int
        Values held per row of a chunk (for K-means, centres + features).
    itemsize : int
        Bytes per value.
    """
    rows = L2_TARGET_BYTES // max(1, n_columns * itemsize)
    rows = max(min_rows, min(max_rows, rows))
    return 1 << (int(rows).bit_length() - 1)
