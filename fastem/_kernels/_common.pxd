# The layer every kernel shares, in one cimport:
#
#     from fastem._kernels._common cimport (floating, Partitions, ...)
#
# * ``floating``: the fused float/double type of every kernel (_blas.pxd).
# * Chunks: a pass walks X in chunks of ``chunk_rows`` consecutive rows (the
#   last one may be shorter). The number of rows is chosen in Python by ONE
#   policy, ``fastem._parallel.chunk_rows`` (a chunk's working set fits in
#   L2), from the bytes per row the kernel declares; it depends only on the
#   problem's shape and dtype, never on the thread count.
# * Partitions: the chunks are split into at most MAX_PARTITIONS contiguous
#   runs. Each run is accumulated sequentially into its own slot (slot_len
#   doubles) by whichever thread takes it (dynamic schedule, so a
#   descheduled thread does not stall the pass), and the slots are then
#   added in partition order (partitions_sum). The split depends only on the
#   number of chunks and the slot size, never on the thread count, so the
#   order of every floating-point sum is fixed and 1 and N threads agree bit
#   for bit. The thread that takes a partition zeroes its slot first
#   (slot_open), so the slots' pages are first touched, and faulted in, by
#   the threads that use them, in parallel. Each slot starts on its own
#   cache line: two threads on neighbouring partitions never write to one
#   line (a shared line bounces between their cores at every row's update).
# * Workspaces: a kernel describes the arrays of one thread's workspace in
#   ONE function that takes them, in order, from a Carver (carve()). Run on
#   a Carver without memory (base NULL) it only adds up the size; run on the
#   allocated block it hands out the same offsets. Size and layout cannot
#   disagree. Inside a prange, carve into a variable the loop body ASSIGNS
#   (return the layout as a struct by value): Cython makes assigned
#   variables thread-private, but not pointers filled through an address
#   (&p), which would then be shared by all threads.
# * Checks: a kernel entry point checks every shape and count it relies on
#   (``require``) before it touches memory; compiled code runs without
#   bounds checks, so nothing it did not check may reach it.
from cython.parallel cimport prange
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from fastem._kernels._blas cimport floating

cdef enum:
    MAX_PARTITIONS = 64
    # the slots of all partitions together stay below this many doubles
    # (16 MiB; at least 8 partitions whatever their size). The slots are
    # allocated by every pass: past glibc's largest mmap threshold (32 MiB)
    # each pass maps fresh pages and faults on all of them. With 64 MiB
    # (41 partitions of k x d sums at k = 256, d = 784) a dense Lloyd pass
    # took 442 ms against 291 ms with 16 MiB (n = 7e4, float32, 2 threads),
    # and 406 against 244 ms at d = 64, k = 1024 (n = 2e5)
    MAX_SLOT_DOUBLES = 2 * 1024 * 1024
    # alignment of every array carved from a workspace (a cache line, and
    # the widest vector)
    CARVE_ALIGN = 64
    # elements per block of partitions_sum_parallel
    SUM_BLOCK = 8192


cdef inline int require(bint ok, str message) except -1:
    """Raise ValueError(message) unless ok: an entry point's operand check."""
    if not ok:
        raise ValueError(message)
    return 0


cdef inline int require_pass(Py_ssize_t n, Py_ssize_t d, Py_ssize_t n_weights,
                             Py_ssize_t chunk_rows, int n_threads,
                             str kernel) except -1:
    """The operands every pass over X (n, d) shares: at least one row and
    one column, n weights (or none: unit weights), chunks and threads."""
    require(n >= 1 and d >= 1, f"{kernel}: X must have at least one row and one column")
    require(n_weights == 0 or n_weights == n,
            f"{kernel}: sample_weight must have one entry per row of X (or none)")
    require(chunk_rows >= 1 and n_threads >= 1,
            f"{kernel}: chunk_rows and n_threads must be >= 1")
    return 0


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


cdef struct Partitions:
    Py_ssize_t n_rows       # rows of the pass
    Py_ssize_t chunk_rows   # rows per chunk (the last chunk may be shorter)
    Py_ssize_t n_chunks
    Py_ssize_t n_parts
    Py_ssize_t slot_len     # doubles per partition slot
    Py_ssize_t slot_stride  # doubles from one slot to the next: whole cache lines
    double *slots           # n_parts slots, the first CARVE_ALIGN-aligned
    void *raw               # the allocation (free(raw) releases the slots)


cdef inline int partitions_init(Partitions *pt, Py_ssize_t n_rows,
                                Py_ssize_t chunk_rows,
                                Py_ssize_t slot_len) noexcept nogil:
    """The fixed partitions of a pass and their slots, not yet zeroed (see
    slot_open); -1 when the slots cannot be allocated (pt.slots is then
    NULL).

    Not calloc: its fresh pages stay the shared zero page until written,
    and when a pass's first access to one is a read (sum += ...), the write
    after it faults again and flushes the page from every core's TLB. At
    n = 1e5, d = 768, k = 1024 float32 (8 slots of 6 MiB, mapped afresh by
    every pass) those double faults took 15 % of a Lloyd fit."""
    cdef Py_ssize_t line = CARVE_ALIGN // sizeof(double)
    pt.n_rows = n_rows
    pt.chunk_rows = chunk_rows
    pt.n_chunks = (n_rows + chunk_rows - 1) // chunk_rows
    pt.slot_len = slot_len
    pt.slot_stride = (slot_len + line - 1) // line * line
    pt.n_parts = n_partitions(pt.n_chunks, slot_len)
    pt.raw = malloc(pt.n_parts * pt.slot_stride * sizeof(double) + CARVE_ALIGN)
    pt.slots = NULL if pt.raw == NULL else <double *>(
        (<uintptr_t>pt.raw + CARVE_ALIGN - 1) // CARVE_ALIGN * CARVE_ALIGN)
    return -1 if pt.slots == NULL else 0


cdef inline Py_ssize_t first_chunk(const Partitions *pt, Py_ssize_t p) noexcept nogil:
    """First chunk of partition p (p == n_parts: one past the last chunk)."""
    return partition_start(p, pt.n_parts, pt.n_chunks)


cdef inline Py_ssize_t chunk_len(const Partitions *pt, Py_ssize_t c) noexcept nogil:
    """Rows of chunk c (which starts at row c * chunk_rows)."""
    return min(pt.chunk_rows, pt.n_rows - c * pt.chunk_rows)


cdef inline double *slot_of(const Partitions *pt, Py_ssize_t p) noexcept nogil:
    return pt.slots + p * pt.slot_stride


cdef inline double *slot_open(const Partitions *pt, Py_ssize_t p) noexcept nogil:
    """Zero partition p's slot and return it: the first thing the thread
    that takes partition p does (every partition is taken, even when a pass
    is interrupted, so partitions_sum never reads an unwritten slot)."""
    memset(slot_of(pt, p), 0, pt.slot_len * sizeof(double))
    return slot_of(pt, p)


cdef inline void partitions_sum(const Partitions *pt, Py_ssize_t e0, Py_ssize_t n,
                               double *out) noexcept nogil:
    """out[e] += slot_p[e0 + e] for p = 0, 1, ... in order, e < n: the fixed
    reduction order of every pass (out is zeroed by the caller, or holds
    the running totals the pass updates)."""
    cdef Py_ssize_t p, e
    cdef const double *s
    for p in range(pt.n_parts):
        s = slot_of(pt, p) + e0
        for e in range(n):
            out[e] += s[e]


cdef inline void partitions_sum_parallel(const Partitions *pt, Py_ssize_t e0,
                                         Py_ssize_t n, double *out,
                                         int n_threads) noexcept nogil:
    """partitions_sum over blocks of SUM_BLOCK elements in parallel: each
    element is still its slots' sum in partition order, so the result is
    partitions_sum's bit for bit. For the k x d sums of the K-means passes
    (8 slots of 12 MiB at k = 1024, d = 1536), which one thread would read
    alone."""
    cdef Py_ssize_t b, n_blocks = (n + SUM_BLOCK - 1) // SUM_BLOCK
    for b in prange(n_blocks, schedule='static', num_threads=n_threads):
        partitions_sum(pt, e0 + b * SUM_BLOCK, min(<Py_ssize_t>SUM_BLOCK, n - b * SUM_BLOCK),
                       out + b * SUM_BLOCK)


cdef inline void partitions_free(Partitions *pt) noexcept nogil:
    free(pt.raw)
    pt.raw = NULL
    pt.slots = NULL


cdef struct Carver:
    char *base          # the workspace, or NULL to measure only
    Py_ssize_t size     # bytes handed out so far (aligned)


cdef inline void *carve(Carver *cv, Py_ssize_t count, Py_ssize_t itemsize) noexcept nogil:
    """The next ``count`` items of a workspace, CARVE_ALIGN-aligned (NULL
    while measuring)."""
    cdef Py_ssize_t start = (cv.size + CARVE_ALIGN - 1) // CARVE_ALIGN * CARVE_ALIGN
    cv.size = start + count * itemsize
    return NULL if cv.base == NULL else <void *>(cv.base + start)


cdef inline Py_ssize_t carved_size(const Carver *cv) noexcept nogil:
    """Bytes of one workspace measured by a Carver, rounded up to CARVE_ALIGN
    (so that consecutive per-thread workspaces stay aligned)."""
    return (cv.size + CARVE_ALIGN - 1) // CARVE_ALIGN * CARVE_ALIGN


cdef inline char *workspaces_alloc(Py_ssize_t per_thread, int n_threads,
                                   void **raw) noexcept nogil:
    """n_threads workspaces of ``per_thread`` bytes (a carved_size), the
    first CARVE_ALIGN-aligned; free(raw[0]) releases them. NULL if out of
    memory."""
    raw[0] = malloc(per_thread * n_threads + CARVE_ALIGN)
    if raw[0] == NULL:
        return NULL
    return <char *>((<uintptr_t>raw[0] + CARVE_ALIGN - 1) // CARVE_ALIGN * CARVE_ALIGN)


cdef inline Py_ssize_t padded_width(Py_ssize_t d, Py_ssize_t itemsize) noexcept nogil:
    """d rounded up to whole 64-byte vectors (rows of the padded copies)."""
    return ((d * itemsize + 63) // 64) * 64 // itemsize
