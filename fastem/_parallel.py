"""Threading and chunking policy shared by the estimators.

The kernels parallelise over row chunks with OpenMP and call BLAS on each
chunk from inside the parallel region; BLAS must then run on one thread, or
every OpenMP thread would start its own BLAS team (oversubscription).
"""
from threadpoolctl import ThreadpoolController

# Working set of one chunk aimed at: it should stay in a core's L2 cache
# (512 KiB to 2 MiB on current x86-64 cores) with room for the operands the
# chunk is combined with (centres, factors), so that per-component loops
# re-read the chunk from cache.
L2_TARGET_BYTES = 320 * 1024
# rows per chunk are a multiple of this (the row blocks of the SIMD kernels)
ROW_ALIGN = 16


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


def chunk_rows(n_values, itemsize=1, *, n_rows=None, min_rows=64, max_rows=4096):
    """Rows per chunk of a kernel pass: the one chunk-size policy of fastem.

    The largest multiple of ``ROW_ALIGN`` rows whose working set (the
    ``n_values * itemsize`` bytes the kernel declares per row of a chunk)
    fits in ``L2_TARGET_BYTES``, clamped to ``[min_rows, max_rows]``. Given
    the rows of the pass (``n_rows``), the same number of chunks is then
    evened out: each chunk takes ``ceil(n_rows / n_chunks)`` rows, rounded
    up to ``ROW_ALIGN``, so that a short pass (a mini-batch of 1024 rows:
    two chunks of 512, not 848 and 176) keeps every thread busy. It depends
    only on the problem's shape and dtype, never on the thread count: the
    chunking fixes the order of floating-point sums, so results stay
    bit-identical whatever the number of threads.

    Parameters
    ----------
    n_values : int
        Values a kernel works on per row of a chunk (for the Lloyd pass,
        ``n_clusters + n_features``: the shifted row and its distances).
    itemsize : int
        Bytes per value (1 when ``n_values`` already counts bytes).
    n_rows : int, optional
        Rows of the pass; without it, the chunks are not evened out.
    min_rows, max_rows : int
        Bounds set by the kernel (multiples of ``ROW_ALIGN``).
    """
    rows = L2_TARGET_BYTES // max(1, int(n_values) * int(itemsize))
    rows = max(min_rows, min(max_rows, rows // ROW_ALIGN * ROW_ALIGN))
    if n_rows is not None and n_rows > 0:
        n_chunks = -(-int(n_rows) // rows)
        even = -(-int(n_rows) // n_chunks)
        rows = min(rows, -(-even // ROW_ALIGN) * ROW_ALIGN)
    return rows
