"""scikit-learn style estimator plumbing: parameters, repr, fitted checks."""
import inspect

from fastem._exceptions import NotFittedError


class BaseEstimator:
    """Base class giving ``get_params``/``set_params`` and a readable repr.

    Subclasses list every constructor argument as a keyword in ``__init__``
    and store it unchanged under the same name (scikit-learn's contract), so
    ``sklearn.base.clone`` and grid searches work on fastem estimators.
    """

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, p in sig.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep=True):
        """Parameters of this estimator.

        Parameters
        ----------
        deep : bool, default=True
            Ignored (fastem estimators hold no sub-estimators); kept for
            scikit-learn compatibility.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set parameters of this estimator.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
        """
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator "
                    f"{type(self).__name__}. Valid parameters are: {valid}."
                )
            setattr(self, name, value)
        return self

    def save(self, path):
        """Save this fitted estimator to a model file.

        The file is a NumPy ``.npz`` archive of the fitted arrays plus JSON
        metadata (fastem version, class, parameters); nothing is pickled.
        Load it back with :func:`fastem.load`.

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
        NotFittedError
            If the estimator is not fitted.
        """
        from fastem._persistence import save_model

        return save_model(self, path)

    def __repr__(self):
        defaults = {
            name: p.default
            for name, p in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = []
        for name in self._param_names():
            value = getattr(self, name)
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = value is default or bool(value == default)
            except Exception:  # arrays and other objects without scalar ==
                same = False
            if not same:
                changed.append(f"{name}={_short_repr(value)}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_fastem_version"] = _version()
        return state

    def __setstate__(self, state):
        state = dict(state)
        state.pop("_fastem_version", None)
        self.__dict__.update(state)


def _short_repr(value):
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"array(shape={value.shape}, dtype={value.dtype})"
    return repr(value)


def _version():
    from fastem import __version__

    return __version__


def check_is_fitted(estimator, attribute):
    """Raise NotFittedError unless ``estimator`` has the fitted ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. "
            "Call 'fit' with appropriate arguments before using this method."
        )
