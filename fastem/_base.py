"""What every fastem estimator shares beyond scikit-learn's BaseEstimator.

The estimators inherit ``sklearn.base.BaseEstimator`` and the matching
mixins (parameters, repr, tags, ``clone``, ``set_output``, metadata routing,
feature names); this module adds model files and the one way fastem checks
its input data against what ``fit`` saw.
"""
import contextlib

from sklearn.utils.validation import validate_data

from fastem._validation import check_array


class ModelFileMixin:
    """``save`` for fitted estimators (read back with :func:`fastem.load`)."""

    def save(self, path):
        """Save this fitted estimator to a model file.

        The file is a NumPy ``.npz`` archive of the fitted arrays plus JSON
        metadata (fastem version, class, parameters); nothing is pickled.
        Load it back with :func:`fastem.load`. The fitted state is checked
        first: an estimator whose fitted arrays were altered into an
        inconsistent state is not written.

        Parameters
        ----------
        path : str or os.PathLike
            Destination, used as given (no extension added; ``.npz`` is
            customary).

        Returns
        -------
        path : str
            The path written.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        ValueError
            If its fitted attributes are inconsistent.
        """
        from fastem._app.persistence import save_model

        self._fitted_state()
        return save_model(self, path)

    def _check_loaded(self):
        """Checks :func:`fastem.load` runs on a model it has just built."""
        self._check_params()
        self._fitted_state()


def check_data(estimator, X, *, reset, dtype=None, accept_sparse=False):
    """Validate ``X`` for ``fit`` (``reset=True``) or for inference.

    fastem's :func:`~fastem._validation.check_array` converts the data (it
    keeps float32, checks finiteness with one reduction and gives fastem's
    messages); scikit-learn's ``validate_data`` then records or checks
    ``n_features_in_`` and ``feature_names_in_`` on the original object, so
    DataFrames behave as in scikit-learn (names stored, a warning on renamed
    columns). With ``accept_sparse``, scipy.sparse data come back as
    canonical CSR.
    """
    kwargs = {} if dtype is None else {"dtype": dtype}
    arr = check_array(X, accept_sparse=accept_sparse, **kwargs)
    validate_data(estimator, X if hasattr(X, "columns") else arr, reset=reset,
                  skip_check_array=True)
    return arr


@contextlib.contextmanager
def unchanged_on_error(estimator):
    """Restore ``estimator``'s attributes if the block raises.

    ``fit`` records feature names and other state as it goes; an error or a
    Ctrl-C (``KeyboardInterrupt``) in the middle of a refit must leave the
    previously fitted estimator exactly as it was.
    """
    saved = dict(vars(estimator))
    try:
        yield
    except BaseException:
        vars(estimator).clear()
        vars(estimator).update(saved)
        raise
