"""The structured arguments of the K-means kernels (dense and CSR).

Kernel entry points take a few operands instead of long positional lists:
arrays that travel together are passed as one of these NamedTuples and
unpacked inside the kernel into typed memoryviews, so a wrong dtype or
layout raises ValueError there and each length is checked before compiled
code indexes it. The array a tuple's fields must match (X's dtype or
float64) is said per field: dense kernels keep their bounds in X's dtype,
the CSR kernels (``_sparse.pyx``) in float64.

Pure Python, shared by the dense (``_bounded.pyx``) and CSR
(``_sparse.pyx``) kernels; each module re-exports the tuples it takes, so
``_bounded.CentreMoves`` and ``_sparse.CentreMoves`` are these classes.
"""
from typing import NamedTuple


class CentreMoves(NamedTuple):
    """How the centres moved since the bounds were last valid.

    ``half_sep`` (k,) float64: (lower bounds on) half the distance from
    each centre to its nearest other centre, zeros where not computed;
    ``drift`` (k,) float64: (upper bounds on) how far each centre moved
    (both rounded outward by the caller); ``fresh``: assign every row from
    scratch (a full search, bounds set anew; the dense pass also recomputes
    the sums) instead of starting from the bounds.
    """
    half_sep: object
    drift: object
    fresh: bool


class RowBounds(NamedTuple):
    """Each row's state between bounded passes, updated in place.

    ``upper`` and ``lower`` (n,): the bounds on the distance to the row's
    own centre and to every other centre, in X's dtype for the dense pass
    (``_bounded.bounded_pass``) and in float64 for the CSR pass
    (``_sparse.bounded_pass``, whose margins are float64 roundings);
    ``labels`` (n,) int32.
    """
    upper: object
    lower: object
    labels: object


class FeatureMajorCentres(NamedTuple):
    """Centres as the CSR kernels read them.

    ``centres_t`` (d, kp) in X's dtype: the k centres feature-major, kp = k
    rounded up to the kernels' tile (``_sparse.TILE_COLUMNS``), the padding
    columns zero; ``csq`` (k,) float64: their squared norms (of the values
    rounded to X's dtype). Built by ``fastem._sparse.feature_major``.
    """
    centres_t: object
    csq: object


class KppPoints(NamedTuple):
    """The dense points a CSR k-means++ pass measures every row against.

    ``points_t`` (d, mp) in X's dtype, feature-major: columns 0..m-1 are
    the points (m = len(psq)), the others zero; ``present`` (d,) uint8:
    non-zero where some column of ``points_t`` is (every row of
    ``points_t`` where it is 0 must be zero); ``psq`` (m,) float64: the
    points' squared norms; ``apply``: column 0 is the centre chosen last,
    applied to the closest distances before the other columns (the
    candidates) are measured; ``scale``: the power of two multiplying every
    squared distance (that of the closest distances; exact).
    """
    points_t: object
    present: object
    psq: object
    apply: bool
    scale: float
