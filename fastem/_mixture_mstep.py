"""Gaussian-mixture maths outside the hot loop (K x D x D work, numpy/scipy).

* M-step: parameters from the float64 sufficient statistics that the kernel
  (``fastem._kernels._gaussian.em_pass``) accumulates on data centred on a
  global shift ``c`` or on one reference per component (``c_k``, usually its
  current mean: the E-steps of 'full', 'diag' and 'spherical', and of 'tied'
  far from ``c``, whose statistics then have the 'full' layout).
* Cholesky factors of the precisions, as scikit-learn computes them (to
  rounding).
* The E-step operands the kernel takes (stacked factors, shifted means,
  per-component constants).
* Checks of user-given initial parameters.

Notation: for component k, ``G_k = sum_n w_n gamma_nk``,
``S1_k = sum_n w_n gamma_nk (x_n - c)`` and ``S2_k`` the matching second
moment of ``x_n - c`` (full: all products, diag: squares, spherical: squared
norms). scikit-learn regularises ``N_k = G_k + 10 eps`` and computes
``mu_k = sum gamma x / N_k``; with ``d_k = mu_k - c`` that is exactly
``d_k = (S1_k - 10 eps c) / N_k``, and the covariance formulas below are the
same exact algebra rewritten in shifted coordinates, so that the large
``c``-dependent terms never meet in floating point.

Covariances are the responsibility-weighted scatter about the new means,
``sum_n g_nk (x_n - mu_k)(x_n - mu_k)^T / N_k`` (+ reg_covar), for every
covariance type. That is scikit-learn's formula for 'full'; for 'diag',
'spherical' and 'tied' scikit-learn uses ``E[x x^T] - mu mu^T`` instead,
which in exact arithmetic differs by ``mu^2 * 10 eps / N_k``: negligible in
float64 (the two agree to ~1e-13 relative on ordinary data), but in float32
(eps = 1.2e-7) it turns a component with a large mean into a wrong, even
negative, variance (scikit-learn issue 30382). fastem avoids it.
"""
import math

import numpy as np
from scipy import linalg

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

_LOG_2PI = math.log(2.0 * math.pi)


def singular_covariance_message(dtype=np.float64):
    msg = (
        "Fitting the mixture model failed because some components have "
        "ill-defined (singular) covariance matrices even after adding "
        "reg_covar to their diagonal, for instance because a component "
        "collapsed onto a few identical points. Increase reg_covar, use fewer "
        "components (n_components), or check the data for duplicated points "
        "and constant or duplicated features (and consider scaling it)."
    )
    if np.dtype(dtype) == np.float32:
        msg += " Passing float64 data instead of float32 can also help."
    return msg


def unpack_vech(packed, n_features):
    """(K, D(D+1)/2) upper triangles, row by row -> (K, D, D) symmetric."""
    K = packed.shape[0]
    iu = np.triu_indices(n_features)
    out = np.empty((K, n_features, n_features))
    out[:, iu[0], iu[1]] = packed
    out[:, iu[1], iu[0]] = packed
    return out


def m_step(stats, shift, covariance_type, reg_covar, eps_reg, tied_moments=None,
           previous=None, empty_threshold=None):
    """Weights, means and covariances from the sufficient statistics.

    Parameters
    ----------
    stats : ndarray (K, P), float64
        Columns: G_k, S1_k (D), S2_k (type dependent; for 'tied' none, with
        ``tied_moments``, or the 'full' layout about per-component
        references, without).
    shift : ndarray (D,) or (K, D), float64
        The centre ``c`` of the statistics: global, or one per component
        (``c_k``; every formula below holds with ``c`` replaced by ``c_k``).
    covariance_type : str
    reg_covar : float
    eps_reg : float
        The regulariser added to G_k (scikit-learn: 10 * eps of the dtype).
    tied_moments : tuple (W, S, T0), for 'tied' statistics about the shift
        Total weight, sum_n w_n (x_n - c) and sum_n w_n (x_n - c)(x_n - c)^T.
    previous : tuple (means, covariances) or None
        Parameters kept for components that lost all their points.
    empty_threshold : float or None
        A component is empty when G_k <= empty_threshold.

    Returns
    -------
    nk : (K,) G_k + eps_reg
    means : (K, D)
    covariances : type-shaped, float64
    empty : (K,) bool
    """
    K = stats.shape[0]
    D = shift.shape[-1]
    G = stats[:, 0]
    S1 = stats[:, 1:1 + D]
    nk = G + eps_reg
    d = (S1 - eps_reg * shift) / nk[:, None]
    means = shift + d
    if covariance_type == "full":
        S2 = unpack_vech(stats[:, 1 + D:], D)
        # sum_n g (xc - d)(xc - d)^T = S2 - S1 d^T - d S1^T + G d d^T
        outer_s1d = S1[:, :, None] * d[:, None, :]
        cov = (S2 - outer_s1d - np.transpose(outer_s1d, (0, 2, 1))
               + G[:, None, None] * d[:, :, None] * d[:, None, :])
        cov /= nk[:, None, None]
        idx = np.arange(D)
        cov[:, idx, idx] += reg_covar
    elif covariance_type == "tied" and tied_moments is None:
        # 'full' statistics about each component's reference: the sum of the
        # components' scatters, each as in 'full'
        S2 = unpack_vech(stats[:, 1 + D:], D)
        outer_s1d = S1.T @ d
        cov = S2.sum(axis=0) - outer_s1d - outer_s1d.T + (G[:, None] * d).T @ d
        cov /= nk.sum()
        cov[np.diag_indices(D)] += reg_covar
    elif covariance_type == "tied":
        # sum_k sum_n g (xc - d_k)(xc - d_k)^T / sum_k N_k, using
        # sum_k S2_k = T0 (the responsibilities of a sample sum to 1):
        #   T0 - sum_k (S1_k d_k^T + d_k S1_k^T - G_k d_k d_k^T)
        _, _, T0 = tied_moments
        total = nk.sum()
        outer_s1d = S1.T @ d
        cov = T0 - outer_s1d - outer_s1d.T + (G[:, None] * d).T @ d
        cov /= total
        cov[np.diag_indices(D)] += reg_covar
    elif covariance_type == "diag":
        # sum_n g (xc - d)^2 / N_k = (S2 - 2 d S1 + G d^2) / N_k
        S2 = stats[:, 1 + D:1 + 2 * D]
        cov = (S2 - 2.0 * d * S1 + G[:, None] * d ** 2) / nk[:, None] + reg_covar
    else:
        # mean over features of the diagonal variances
        S2 = stats[:, 1 + D]
        cov = ((S2 - 2.0 * np.einsum("kd,kd->k", d, S1) + G * np.einsum("kd,kd->k", d, d))
               / nk) / D + reg_covar

    empty = np.zeros(K, dtype=bool)
    if previous is not None and empty_threshold is not None:
        empty = G <= empty_threshold
        if empty.any() and covariance_type != "tied":
            prev_means, prev_cov = previous
            means[empty] = prev_means[empty]
            cov[empty] = prev_cov[empty]
        elif empty.any():
            means[empty] = previous[0][empty]
    return nk, means, cov, empty


def statistics_layout(covariance_type):
    """Layout of the statistics online EM keeps: 'tied' keeps each
    component's scatter ('full' layout) about its own reference."""
    return "full" if covariance_type == "tied" else covariance_type


def recentre_statistics(stats, old, new, layout):
    """Statistics about per-component references ``old`` re-expressed about ``new``.

    With ``delta_k = new_k - old_k``, every row satisfies
    ``x - new_k = (x - old_k) - delta_k``, so, exactly (only rounding):

    * ``S1' = S1 - G delta``
    * full: ``S2' = S2 - S1 delta^T - delta S1^T + G delta delta^T``
    * diag: ``S2' = S2 - 2 delta * S1 + G delta^2`` (per feature)
    * spherical: ``S2' = S2 - 2 delta . S1 + G |delta|^2``

    Statistics about the same reference can then be blended linearly.

    Parameters
    ----------
    stats : ndarray (K, P), float64, in ``layout`` ('full', 'diag' or
        'spherical'; see ``m_step``)
    old, new : ndarray (K, D), float64

    Returns
    -------
    stats : ndarray (K, P), a new array
    """
    D = old.shape[1]
    G = stats[:, 0]
    S1 = stats[:, 1:1 + D]
    delta = new - old
    out = stats.copy()
    out[:, 1:1 + D] = S1 - G[:, None] * delta
    if layout == "full":
        iu = np.triu_indices(D)
        s1_delta = S1[:, :, None] * delta[:, None, :]
        change = (G[:, None, None] * delta[:, :, None] * delta[:, None, :]
                  - s1_delta - np.transpose(s1_delta, (0, 2, 1)))
        out[:, 1 + D:] += change[:, iu[0], iu[1]]
    elif layout == "diag":
        out[:, 1 + D:] += G[:, None] * delta ** 2 - 2.0 * delta * S1
    else:
        out[:, 1 + D] += G * np.einsum("kd,kd->k", delta, delta) - 2.0 * np.einsum(
            "kd,kd->k", delta, S1)
    return out


def compute_precision_cholesky(covariances, covariance_type, dtype=np.float64):
    """Cholesky factors of the precisions, as scikit-learn computes them.

    full/tied: ``cov_chol = cholesky(cov, lower=True)`` and
    ``prec_chol = inv(cov_chol).T`` (upper triangular,
    ``precision = prec_chol @ prec_chol.T``); diag/spherical:
    ``1 / sqrt(cov)``. A covariance that is not positive definite raises a
    ValueError that says what to do.
    """
    if covariance_type in ("full", "tied"):
        covs = covariances[None] if covariance_type == "tied" else covariances
        if not np.all(np.isfinite(covs)):
            raise ValueError(singular_covariance_message(dtype))
        # batched over components (one LAPACK call each, no Python loop):
        # the lower Cholesky factor, then its inverse (lower triangular: the
        # rounding LU leaves above the diagonal is dropped, so the kernel
        # sees exact structural zeros), transposed
        try:
            cov_chol = np.linalg.cholesky(covs)
        except np.linalg.LinAlgError:
            raise ValueError(singular_covariance_message(dtype)) from None
        out = np.ascontiguousarray(np.transpose(np.tril(np.linalg.inv(cov_chol)), (0, 2, 1)))
        return out[0] if covariance_type == "tied" else out
    if np.any(covariances <= 0.0) or not np.all(np.isfinite(covariances)):
        raise ValueError(singular_covariance_message(dtype))
    return 1.0 / np.sqrt(covariances)


def precision_cholesky_from_precisions(precisions, covariance_type):
    """scikit-learn's factor of user-given precisions (upper triangular)."""
    if covariance_type == "full":
        return np.stack([_flip(linalg.cholesky(_flip(p), lower=True)) for p in precisions])
    if covariance_type == "tied":
        return _flip(linalg.cholesky(_flip(precisions), lower=True))
    return np.sqrt(precisions)


def _flip(a):
    return a[::-1, ::-1]


def precisions_from_cholesky(prec_chol, covariance_type):
    if covariance_type == "full":
        return np.matmul(prec_chol, np.transpose(prec_chol, (0, 2, 1)))
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol ** 2


def covariances_from_precisions(precisions, covariance_type):
    if covariance_type in ("full", "tied"):
        return np.linalg.inv(precisions)
    return 1.0 / precisions


def log_det_cholesky(prec_chol, covariance_type, n_features):
    """sum_d log L[d, d] per component (= -1/2 log det Sigma_k)."""
    if covariance_type == "full":
        return np.sum(np.log(np.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)
    if covariance_type == "tied":
        return np.sum(np.log(np.diag(prec_chol)))
    if covariance_type == "diag":
        return np.sum(np.log(prec_chol), axis=1)
    return n_features * np.log(prec_chol)


def estep_operands(weights, means, prec_chol, covariance_type, shift, dtype):
    """The kernel's E-step operands for the current parameters.

    Returns ``(A, crow, const_k)``: see ``_gaussian.em_pass``. All are
    computed in float64 from float64 (or the stored) parameters and cast to
    the data's dtype at the end (``const_k`` stays float64).
    """
    means = np.asarray(means, dtype=np.float64)
    prec_chol = np.asarray(prec_chol, dtype=np.float64)
    K, D = means.shape
    mu = means - shift  # means in shifted coordinates
    with np.errstate(divide="ignore"):
        log_w = np.log(np.asarray(weights, dtype=np.float64))
    const = log_w + log_det_cholesky(prec_chol, covariance_type, D) - 0.5 * D * _LOG_2PI
    if covariance_type == "full":
        # column d*K + k of A is column d of L_k
        A = np.ascontiguousarray(np.transpose(prec_chol, (1, 2, 0)).reshape(D, D * K))
        crow = np.einsum("kd,kde->ek", mu, prec_chol).reshape(-1)
    elif covariance_type == "tied":
        A = prec_chol
        crow = (mu @ prec_chol).T.reshape(-1)
    else:
        # diag / spherical: direct distances in the kernel
        A = mu
        crow = (prec_chol ** 2).reshape(-1)
    return (np.ascontiguousarray(A, dtype=dtype), np.ascontiguousarray(crow, dtype=dtype),
            np.ascontiguousarray(const, dtype=np.float64))


def n_parameters(covariance_type, n_components, n_features):
    """Free parameters of the model (scikit-learn's count)."""
    K, D = n_components, n_features
    if covariance_type == "full":
        cov_params = K * D * (D + 1) / 2.0
    elif covariance_type == "diag":
        cov_params = K * D
    elif covariance_type == "tied":
        cov_params = D * (D + 1) / 2.0
    else:
        cov_params = K
    return int(cov_params + D * K + K - 1)


# --------------------------------------------------------------------------
# user-given initial parameters

def _as_float_array(value, name):
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}.")
    arr = np.array(arr, dtype=np.float64)  # a copy: the caller's array is never touched
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return arr


def check_weights_init(weights, n_components, dtype):
    w = _as_float_array(weights, "weights_init")
    if w.shape != (n_components,):
        raise ValueError(
            f"weights_init should have shape ({n_components},) (one weight per "
            f"component), but got {w.shape}."
        )
    if np.any(w < 0.0) or np.any(w > 1.0):
        raise ValueError(
            "weights_init should be in the range [0, 1], but got min "
            f"{w.min():.5g}, max {w.max():.5g}."
        )
    atol = 1e-6 if np.dtype(dtype) == np.float32 else 1e-8
    if abs(1.0 - w.sum()) > atol:
        raise ValueError(
            f"weights_init should sum to 1, but sums to {w.sum():.10g}; "
            "normalise it (weights_init / weights_init.sum())."
        )
    return w


def check_means_init(means, n_components, n_features):
    m = _as_float_array(means, "means_init")
    if m.shape != (n_components, n_features):
        raise ValueError(
            f"means_init should have shape ({n_components}, {n_features}) "
            f"(n_components, n_features), but got {m.shape}."
        )
    return m


def check_precisions_init(precisions, covariance_type, n_components, n_features):
    p = _as_float_array(precisions, "precisions_init")
    shapes = {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }
    expected = shapes[covariance_type]
    if p.shape != expected:
        raise ValueError(
            f"precisions_init for covariance_type={covariance_type!r} should "
            f"have shape {expected}, but got {p.shape}."
        )
    if covariance_type in ("full", "tied"):
        mats = p if covariance_type == "full" else p[None]
        for k, mat in enumerate(mats):
            if not np.allclose(mat, mat.T) or not np.all(np.linalg.eigvalsh(mat) > 0.0):
                where = f" (component {k})" if covariance_type == "full" else ""
                raise ValueError(
                    f"precisions_init{where} should be symmetric and positive-"
                    "definite (all eigenvalues > 0)."
                )
    elif np.any(p <= 0.0):
        raise ValueError(
            f"precisions_init for covariance_type={covariance_type!r} should be "
            "positive."
        )
    return p
