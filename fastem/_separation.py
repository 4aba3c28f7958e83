"""Half the distance from each centre to its nearest other one, the bound
Hamerly's passes test rows against (dense, ``fastem._kmeans.bound_updates``,
and sparse, ``fastem._sparse``)."""
import numpy as np


def half_separations(centres, sqnorms, rel_err):
    """Lower bounds on 0.5 min_{j != i} ||c_i - c_j|| for each centre, float64.

    The k x k squared distances come from one GEMM by the expansion
    ||c_i||^2 + ||c_j||^2 - 2 c_i.c_j (an exact difference per pair, as
    scipy's cdist takes, costs k^2 d scalar operations on one thread: at
    k = 1024, d = 1536, 0.6 s, more than a whole Lloyd pass). The
    expansion's absolute rounding error is at most ``rel_err`` (||c_i||^2 +
    ||c_j||^2) when ``rel_err`` bounds the relative error of a d-term dot
    product (about (d + 2) eps; the cross term is bounded by the norms), so
    subtracting twice that leaves a value no larger than the exact squared
    distance, as the bounds require. A single centre gets +inf.

    Parameters
    ----------
    centres : (k, d) float64
    sqnorms : (k,) float64, the centres' squared norms
    rel_err : float
    """
    low = np.asarray(sqnorms, dtype=np.float64) * (1.0 - 2.0 * rel_err)
    between = centres @ centres.T
    between *= -2.0
    between += low[:, None]
    between += low[None, :]
    np.fill_diagonal(between, np.inf)
    return 0.5 * np.sqrt(np.maximum(between.min(axis=1), 0.0)) * (1.0 - 1e-12)
