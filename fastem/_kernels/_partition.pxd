# Fixed partitions of a pass over row chunks.
#
# A pass splits its chunks into at most MAX_PARTITIONS contiguous runs. Each
# run is accumulated sequentially into its own slot by whichever thread takes
# it (dynamic schedule, so a descheduled thread does not stall the pass), and
# the slots are then added in partition order. The split depends only on the
# number of chunks and the slot size, never on the thread count, so the order
# of every floating-point sum is fixed and 1 and N threads agree bit for bit.

cdef enum:
    MAX_PARTITIONS = 64
    # the slots of all partitions together stay below this many doubles
    MAX_SLOT_DOUBLES = 8 * 1024 * 1024


cdef inline Py_ssize_t n_partitions(Py_ssize_t n_chunks,
                                    Py_ssize_t slot_len) noexcept nogil:
    cdef Py_ssize_t p = MAX_PARTITIONS
    if p * slot_len > MAX_SLOT_DOUBLES:
        p = max(<Py_ssize_t>8, MAX_SLOT_DOUBLES // slot_len)
    return max(<Py_ssize_t>1, min(p, n_chunks))


cdef inline Py_ssize_t partition_start(Py_ssize_t p, Py_ssize_t n_parts,
                                       Py_ssize_t n_chunks) noexcept nogil:
    """First chunk of partition p: an even split of n_chunks into n_parts."""
    return (p * n_chunks) // n_parts
