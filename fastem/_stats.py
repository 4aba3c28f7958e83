"""Column statistics of large arrays with bounded temporary memory."""
import numpy as np

_BLOCK_ROWS = 65536


def column_mean_var(X, block_rows=_BLOCK_ROWS):
    """Column means and (population) variances of X, in float64.

    X is read in blocks of rows and the block results are merged with Chan et
    al.'s pairwise update, so the temporaries are one block, not a copy of X,
    and the variance does not suffer the cancellation of E[x^2] - E[x]^2.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    block_rows : int
        Rows per block.

    Returns
    -------
    mean, var : ndarray of shape (n_features,), float64
    """
    n_features = X.shape[1]
    mean = np.zeros(n_features)
    m2 = np.zeros(n_features)
    count = 0
    for start in range(0, X.shape[0], block_rows):
        block = X[start:start + block_rows]
        nb = block.shape[0]
        bmean = block.mean(axis=0, dtype=np.float64)
        bm2 = np.square(block - bmean).sum(axis=0)
        total = count + nb
        delta = bmean - mean
        mean += delta * (nb / total)
        m2 += bm2 + delta**2 * (count * nb / total)
        count = total
    return mean, m2 / count


def frame_shift(mean, var, dtype):
    """The point the distance kernels subtract from every row.

    ``||x - c||^2`` is computed as ``||x||^2 - 2 x.c + ||c||^2``, whose
    rounding error grows with ``||x||^2``: data far from the origin compared
    with its spread (``||mean||^2 > sum(var)``) are shifted by their mean,
    chunk by chunk, never copied whole. Data already around the origin are
    used as they are, which saves a copy of every chunk.
    """
    if float(np.dot(mean, mean)) > float(np.sum(var)):
        return mean.astype(dtype)
    return np.zeros(mean.shape[0], dtype=dtype)
