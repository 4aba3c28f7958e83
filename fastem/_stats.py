"""Column statistics of large arrays with bounded temporary memory."""
import numpy as np

from fastem._kernels import load_kernels
from fastem._parallel import chunk_rows
from fastem._validation import effective_n_threads

column_moments = load_kernels("_stats").column_moments


def column_mean_var(X, sample_weight=None, n_threads=None):
    """Column means and (population) variances of X, in float64.

    One parallel pass over X (no temporary the size of X): moments are
    accumulated in float64 about the first row, which sits inside the data,
    so the variance does not suffer the cancellation of E[x^2] - E[x]^2.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64, C order
    sample_weight : ndarray of shape (n_samples,), X's dtype, optional
        Weighted moments if given.
    n_threads : int, optional
        OpenMP threads (all allowed cores if None).

    Returns
    -------
    mean, var : ndarray of shape (n_features,), float64
    """
    ref = X[0].astype(np.float64)
    return mean_var_from_moments(ref, *column_moments_about(X, sample_weight, ref,
                                                            n_threads))


def column_moments_about(X, sample_weight, ref, n_threads=None):
    """Weighted column moments of X about ``ref``: one pass, float64 sums.

    The statistics of one block of rows, which add over blocks: fastem.dask
    sums them over a dask array's blocks (all about the same ``ref``), the
    in-memory ``column_mean_var`` takes X as one block.

    Returns
    -------
    total : float, sum_i w_i
    s1, s2 : ndarray of shape (n_features,), float64
        ``sum_i w_i (x_i - ref)`` and ``sum_i w_i (x_i - ref)^2``.
    """
    n_features = X.shape[1]
    s1 = np.empty(n_features)
    s2 = np.empty(n_features)
    sw = sample_weight if sample_weight is not None else np.empty(0, X.dtype)
    total = column_moments(X, sw, np.ascontiguousarray(ref, dtype=np.float64), s1, s2,
                           chunk_rows(n_features, X.dtype.itemsize, n_rows=X.shape[0], min_rows=256),
                           effective_n_threads(n_threads))
    return total, s1, s2


def mean_var_from_moments(ref, total, s1, s2):
    """Mean and (population) variance from ``column_moments_about``'s sums."""
    d1 = s1 / total
    return ref + d1, np.maximum(s2 / total - d1 * d1, 0.0)


def frame_shift(mean, var, dtype):
    """The point the distance kernels subtract from every row.

    ``||x - c||^2`` is computed as ``||x||^2 - 2 x.c + ||c||^2``, whose
    rounding error grows with ``||x||^2``: data far from the origin compared
    with its spread (``||mean||^2 > sum(var)``) are shifted by their mean,
    never copied: the dense passes' tiles subtract the shift as they read a
    value (csrc/fe_tiles.h); only the GEMM paths (CPUs without FMA, and
    ``transform``) copy a chunk at a time into the frame. Data already
    around the origin are used as they are.
    """
    if float(np.dot(mean, mean)) > float(np.sum(var)):
        return mean.astype(dtype)
    return np.zeros(mean.shape[0], dtype=dtype)
