# Ctrl-C during a pass: every kernel that loops over row chunks calls
# interrupted() between chunks. OpenMP thread 0 -- the thread that entered
# the pass, Python's main thread when the estimator was called from it --
# takes the GIL and runs Python's pending signal handlers; when one raises
# (KeyboardInterrupt), the shared flag makes every thread skip its remaining
# chunks, and after the parallel region the kernel frees its workspaces and
# calls raise_pending(), which propagates the exception the handler set.
# Taking an uncontended GIL costs well under a microsecond, against tens of
# microseconds or more of work per chunk.
from fastem._kernels._openmp cimport omp_get_thread_num

cdef extern from "Python.h":
    # declared without an exception value: the error it sets stays pending
    # until raise_pending() propagates it, outside the parallel region
    int PyErr_CheckSignals()


cdef inline bint interrupted(int *flag) noexcept nogil:
    """True when the pass must stop (a signal handler raised)."""
    if flag[0]:
        return True
    if omp_get_thread_num() == 0:
        with gil:
            if PyErr_CheckSignals() != 0:
                flag[0] = 1
    return flag[0] != 0


cdef inline int raise_pending(int flag) except -1:
    """Propagate the exception a signal handler raised during the pass."""
    if flag:
        return -1
    return 0
