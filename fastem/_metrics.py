"""Agreement between two partitions: the adjusted Rand index."""
import numpy as np

__all__ = ["adjusted_rand_score"]


def _check_labels(labels_true, labels_pred):
    a = np.asarray(labels_true)
    b = np.asarray(labels_pred)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(
            "labels_true and labels_pred must be 1-D arrays of cluster labels; "
            f"got shapes {a.shape} and {b.shape}."
        )
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            "labels_true and labels_pred must have the same length; got "
            f"{a.shape[0]} and {b.shape[0]}."
        )
    return a, b


def _pairs(counts):
    """Sum over ``counts`` of n * (n - 1) / 2, exactly (int64), as a float."""
    counts = counts.astype(np.int64, copy=False)
    return float(np.sum(counts * (counts - 1) // 2))


def adjusted_rand_score(labels_true, labels_pred):
    """Adjusted Rand index between two partitions of the same samples.

    The Rand index counts the pairs of samples on which two partitions
    agree (both put the pair in the same cluster, or both in different
    clusters). The adjusted index (Hubert and Arabie, 1985) rescales it so
    that identical partitions score 1 and the expected score of independent
    random partitions with the same cluster sizes is 0:

    .. math::

        \\mathrm{ARI} = \\frac{\\sum_{ij} \\binom{n_{ij}}{2} - E}
                              {\\tfrac12 (A + B) - E},
        \\quad A = \\sum_i \\binom{a_i}{2},\\;
        B = \\sum_j \\binom{b_j}{2},\\;
        E = A B / \\binom{n}{2},

    where :math:`n_{ij}` is the contingency table of the two labelings and
    :math:`a_i`, :math:`b_j` its row and column sums. The score is symmetric
    and does not depend on the label values, only on the grouping. It can
    be negative (less agreement than chance).

    Only the non-empty cells of the contingency table are formed, so the
    cost is that of sorting the ``n_samples`` label pairs, whatever the
    number of clusters.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        One partition, as cluster labels (any hashable, sortable values).
    labels_pred : array-like of shape (n_samples,)
        The other partition.

    Returns
    -------
    ari : float
        Adjusted Rand index, at most 1.0. Degenerate cases follow
        scikit-learn: fewer than two samples, or both partitions a single
        cluster, or both all singletons, score 1.0.

    Raises
    ------
    ValueError
        If the inputs are not 1-D or differ in length.

    Examples
    --------
    >>> from fastem import adjusted_rand_score
    >>> adjusted_rand_score([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    >>> round(adjusted_rand_score([0, 0, 1, 1], [0, 0, 1, 2]), 4)
    0.5714
    """
    a, b = _check_labels(labels_true, labels_pred)
    n = a.shape[0]
    if n < 2:
        return 1.0
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    ia = ia.reshape(-1).astype(np.int64, copy=False)
    ib = ib.reshape(-1).astype(np.int64, copy=False)
    n_b = int(ib.max()) + 1
    _, cells = np.unique(ia * n_b + ib, return_counts=True)

    sum_cells = _pairs(cells)
    sum_a = _pairs(np.bincount(ia))
    sum_b = _pairs(np.bincount(ib))
    total = n * (n - 1) / 2.0
    expected = sum_a * sum_b / total
    maximum = 0.5 * (sum_a + sum_b)
    if maximum == expected:
        # only when both partitions are one cluster, or both all singletons:
        # they are then identical
        return 1.0
    return float((sum_cells - expected) / (maximum - expected))
