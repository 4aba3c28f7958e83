"""The one chunk-size policy (fastem._parallel.chunk_rows)."""
import pytest

from fastem._parallel import L2_TARGET_BYTES, ROW_ALIGN, chunk_rows


@pytest.mark.parametrize("n_values,itemsize", [(96, 4), (12, 8), (1, 8), (5000, 8)])
def test_uneven_chunk_fits_l2_and_is_aligned(n_values, itemsize):
    rows = chunk_rows(n_values, itemsize)
    assert rows % ROW_ALIGN == 0 and 64 <= rows <= 4096
    # the largest aligned count that fits, unless a clamp decides
    if 64 < rows < 4096:
        assert rows * n_values * itemsize <= L2_TARGET_BYTES
        assert (rows + ROW_ALIGN) * n_values * itemsize > L2_TARGET_BYTES


@pytest.mark.parametrize("n_rows", [1, 15, 16, 17, 848, 849, 1024, 1700, 5003, 8192,
                                    10**6 + 7])
def test_chunks_of_a_pass_are_evened_out(n_rows):
    widest = chunk_rows(96, 4)                       # 848 rows
    rows = chunk_rows(96, 4, n_rows=n_rows)
    n_chunks = -(-n_rows // widest)
    assert rows <= widest and rows % ROW_ALIGN == 0
    # the same number of chunks as the uneven split, none of them longer
    # than the first, and the last one shorter by less than one aligned
    # block per chunk
    assert -(-n_rows // rows) == n_chunks
    last = n_rows - (n_chunks - 1) * rows
    assert 0 < last <= rows
    assert rows - last < ROW_ALIGN * n_chunks


def test_a_mini_batch_splits_in_two_equal_chunks():
    # 1024 rows at 848 rows per chunk: 512 + 512, not 848 + 176
    assert chunk_rows(96, 4, n_rows=1024) == 512
