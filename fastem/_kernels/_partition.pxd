# The fixed partitions of a pass now live in the common kernel layer,
# _common.pxd (with the Partitions driver, the floating type and workspace
# carving); this name is kept for kernels written against it.
from fastem._kernels._common cimport (
    MAX_PARTITIONS, MAX_SLOT_DOUBLES, n_partitions, partition_start)
