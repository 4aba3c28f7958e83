"""What fastem.dask's estimators share around their fits.

Each one is the in-memory estimator's parameters plus ``threads_per_task``,
``block_rows`` and ``persist``; its fitted model converts to the in-memory
estimator (``to_local``), which does all inference: block by block and
lazily for per-row outputs, or over blocks reduced to a number (scores).
"""
from fastem._base import unchanged_on_error
from fastem._validation import check_int
from fastem.dask import _tasks
from fastem.dask._blocks import Blocks, as_dask_array
from fastem.dask._reduce import map_reduce

# parameters of the Dask estimators that the in-memory ones do not have
DASK_PARAMS = ("threads_per_task", "block_rows", "persist")


class DaskEstimator:
    """Mixin: parameters, blocks and inference of a fastem.dask estimator.

    Subclasses define ``to_local()`` and ``_fit_blocks(blocks, threads)``.
    """

    def _local_params(self, drop=()):
        """The in-memory estimator's parameters (``n_threads`` from
        ``threads_per_task``), without those in ``drop``."""
        params = self.get_params()
        for name in DASK_PARAMS + tuple(drop):
            params.pop(name)
        return dict(params, n_threads=self.threads_per_task)

    def _blocks(self, X, sample_weight=None, persist=None):
        """X (and weights) as the estimator's row blocks; ``persist`` None:
        the ``persist`` parameter (fits), False for one-pass scores."""
        return Blocks(X, sample_weight, block_rows=_block_rows(self.block_rows),
                      persist=self.persist if persist is None else persist)

    def fit(self, X, y=None, sample_weight=None):
        """Fit on the row blocks of X.

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)
            Chunked along rows (columns are put in one block); a NumPy array
            or memmap is wrapped. float32 and float64 are kept.
        y : Ignored
        sample_weight : dask.array.Array or array-like of shape (n_samples,), default=None
            Non-negative weights.

        Returns
        -------
        self : estimator
        """
        with unchanged_on_error(self):
            threads = check_int(self.threads_per_task, "threads_per_task", min_value=1)
            self._fit_blocks(self._blocks(X, sample_weight), threads)
        return self

    def _check_features(self, n_features, local):
        if n_features != local.n_features_in_:
            raise ValueError(f"X has {n_features} features, but {type(self).__name__} "
                             f"was fitted with {local.n_features_in_} features.")

    def _lazy(self, X, method, dtype=None, width=None):
        """``to_local().method`` on every block of X, as a lazy dask array
        (of ``width`` columns, or one value per row if None)."""
        local = self.to_local()
        X = as_dask_array(X, _block_rows(self.block_rows))
        self._check_features(X.shape[1], local)
        X = X.rechunk({1: -1})
        func = getattr(local, method)
        dtype = X.dtype if dtype is None else dtype
        if width is None:
            return X.map_blocks(func, dtype=dtype, drop_axis=1)
        return X.map_blocks(func, dtype=dtype, chunks=(X.chunks[0], (width,)))

    def _score_blocks(self, X, sample_weight=None):
        """(in-memory model, X's blocks checked for finite values), for one
        pass that reduces X to a number."""
        local = self.to_local()
        blocks = self._blocks(X, sample_weight, persist=False)
        self._check_features(blocks.n_features, local)
        map_reduce(_tasks.check_block, blocks)
        return local, blocks

    def save(self, path):
        """Write the ordinary fastem model file (:func:`fastem.load` reads it
        back as the in-memory estimator).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        path : str
        """
        return self.to_local().save(path)


def _block_rows(value):
    return None if value is None else check_int(value, "block_rows", min_value=1)
