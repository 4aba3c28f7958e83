"""Warnings and errors raised by fastem."""


class ConvergenceWarning(UserWarning):
    """An iterative fit stopped at ``max_iter`` before meeting its tolerance.

    Mirrors ``sklearn.exceptions.ConvergenceWarning`` so that the same warning
    filters work after switching the import.
    """


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``."""
