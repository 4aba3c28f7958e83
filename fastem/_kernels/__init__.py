"""fastem's compiled core: chunked, OpenMP-parallel passes over the data.

Kernels never validate their inputs and never allocate per-iteration Python
objects; the estimators in ``fastem`` do the checking and own the buffers.
"""
