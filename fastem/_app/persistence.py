"""Model files: fitted estimators as .npz archives with JSON metadata.

Format (version 1)
------------------
A model file is an uncompressed NumPy ``.npz`` archive (a zip of ``.npy``
files) holding

``__fastem__``
    A 0-d unicode array with a JSON object::

        {"format": "fastem-model", "format_version": 1,
         "fastem_version": "0.1.0", "numpy_version": "...",
         "class": "GaussianMixture",
         "params": {...},            # JSON-representable get_params() values
         "array_params": [...],      # names of params stored as arrays
         "attributes": {...},        # scalar / list fitted attributes
         "array_attributes": [...]}  # names of fitted attributes stored as arrays

``param.<name>``
    A parameter whose value is an array (``init=array``, ``means_init``...).

``attr.<name>``
    A fitted attribute (name ending in ``_``) whose value is an array.

Nothing is pickled: files are read with ``allow_pickle=False``, and only
estimator classes exported by :mod:`fastem` can be named in a file, so loading
an untrusted file cannot run code. The format version grows when the layout
changes; files from a newer version are refused with a message saying so.
"""
import json
import numbers
import os
import tempfile
import warnings

import numpy as np

FORMAT_NAME = "fastem-model"
#: current model-file layout version; readers accept this and older
FORMAT_VERSION = 1
METADATA_KEY = "__fastem__"
_PARAM_PREFIX = "param."
_ATTR_PREFIX = "attr."


def _estimator_classes():
    """Estimator classes a model file may name: those exported by fastem."""
    from sklearn.base import BaseEstimator

    import fastem

    classes = {}
    for name in getattr(fastem, "__all__", ()):
        obj = getattr(fastem, name, None)
        if isinstance(obj, type) and issubclass(obj, BaseEstimator):
            classes[obj.__name__] = obj
    return classes


def _fitted_attribute_names(estimator):
    return sorted(
        name
        for name in vars(estimator)
        if name.endswith("_") and not name.startswith("_")
    )


def _json_value(value):
    """Return ``(ok, json_value)`` for a parameter or scalar attribute."""
    if value is None or isinstance(value, (bool, str)):
        return True, value
    if isinstance(value, np.bool_):
        return True, bool(value)
    if isinstance(value, (numbers.Integral, np.integer)):
        return True, int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        v = float(value)
        # JSON has no inf/nan: keep them as tagged strings
        if not np.isfinite(v):
            return True, {"float": repr(v)}
        return True, v
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            ok, v = _json_value(item)
            if not ok:
                return False, None
            out.append(v)
        return True, out
    return False, None


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def save_model(estimator, path):
    """Write a fitted fastem estimator to ``path`` (see module docstring).

    Parameters
    ----------
    estimator : fastem estimator
        Fitted (has at least one attribute ending in ``_``).
    path : str or os.PathLike
        Destination, written as given (no extension is added). The file is
        written to a temporary name and renamed, so a failed save never
        leaves a half-written model behind.

    Raises
    ------
    NotFittedError
        If the estimator has no fitted attributes.
    TypeError
        If a fitted attribute is neither an array nor a JSON scalar/list.
    """
    from sklearn.exceptions import NotFittedError

    from fastem import __version__

    cls_name = type(estimator).__name__
    fitted = _fitted_attribute_names(estimator)
    if not fitted:
        raise NotFittedError(
            f"This {cls_name} instance is not fitted yet; fit it before saving."
        )
    arrays = {}
    params, array_params, dropped = _split_params(estimator, arrays)
    if dropped:
        warnings.warn(
            f"{cls_name} parameter(s) {', '.join(dropped)} cannot be stored in "
            "a model file (not a number, string, list or array); the saved "
            "model will have their default value.",
            UserWarning,
            stacklevel=3,
        )
    attributes, array_attributes = _split_attributes(estimator, fitted, arrays)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastem_version": __version__,
        "numpy_version": np.__version__,
        "class": cls_name,
        "params": params,
        "array_params": array_params,
        "dropped_params": dropped,
        "attributes": attributes,
        "array_attributes": array_attributes,
    }
    arrays[METADATA_KEY] = np.array(json.dumps(metadata, sort_keys=True))
    return _write_npz_atomically(os.fspath(path), arrays)


def _split_params(estimator, arrays):
    """Sort ``get_params()`` into JSON values, arrays and dropped names.

    Array parameters go into ``arrays`` (as ``param.<name>``). Returns the
    JSON-valued parameters (dict), the names of the array parameters and
    the names of those that cannot be stored (dropped).
    """
    params, array_params, dropped = {}, [], []
    for name, value in estimator.get_params().items():
        if isinstance(value, np.ndarray):
            _check_plain_array(value, f"parameter {name!r}")
            arrays[_PARAM_PREFIX + name] = value
            array_params.append(name)
            continue
        ok, jv = _json_value(value)
        if ok:
            params[name] = jv
        else:
            # a Generator/RandomState random_state, a callable init...: the
            # fitted model does not need it; store the default instead
            dropped.append(name)
    return params, array_params, dropped


def _split_attributes(estimator, fitted, arrays):
    """Sort the fitted attributes into JSON values and arrays.

    Arrays with at least one dimension go into ``arrays`` (as
    ``attr.<name>``); 0-d arrays are stored as their scalar. Returns the
    JSON-valued attributes (dict) and the names of the array attributes;
    raises TypeError for an attribute of any other type.
    """
    attributes, array_attributes = {}, []
    for name in fitted:
        value = getattr(estimator, name)
        if isinstance(value, np.ndarray) and value.ndim > 0:
            _check_plain_array(value, f"attribute {name!r}")
            arrays[_ATTR_PREFIX + name] = value
            array_attributes.append(name)
            continue
        if isinstance(value, np.ndarray):  # 0-d array
            value = value.item()
        ok, jv = _json_value(value)
        if not ok:
            raise TypeError(
                f"cannot save {type(estimator).__name__}: fitted attribute "
                f"{name!r} has type {type(value).__name__}, which the model "
                "format cannot store"
            )
        attributes[name] = jv
    return attributes, array_attributes


def _write_npz_atomically(path, arrays):
    """Write ``arrays`` as an .npz at ``path`` through a temporary file in
    the same directory, renamed into place (removed if anything fails)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastem-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _check_plain_array(value, what):
    if value.dtype.hasobject or value.dtype.kind not in "biufcUS":
        raise TypeError(
            f"cannot save {what}: arrays of dtype {value.dtype} are not "
            "supported by the model format"
        )


def _bad(path, why):
    return ValueError(f"{path!r} is not a valid fastem model file: {why}")


def read_metadata(path):
    """Read and check the JSON metadata of a model file without loading it.

    Parameters
    ----------
    path : str or os.PathLike
        Model file written by ``save``.

    Returns
    -------
    metadata : dict
        The metadata described in the module docstring.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not a fastem model file, is corrupted or truncated,
        or was written by a newer format version.
    """
    with _open(path) as archive:
        return _metadata(archive, os.fspath(path))


def _open(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    if os.path.isdir(path):
        raise _bad(path, "it is a directory")
    try:
        archive = np.load(path, allow_pickle=False)
    except PermissionError:
        raise
    except Exception as exc:  # any decoding failure means: not a model file
        raise _bad(path, f"cannot open it as an .npz archive "
                         f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _bad(path, "it holds a single array, not an .npz model archive")
    return archive


def _read_member(archive, key, path):
    if key not in archive.files:
        raise _bad(path, f"entry {key!r} is missing")
    try:
        return archive[key]
    except Exception as exc:  # a corrupted header or body, whatever the parser says
        raise _bad(path, f"entry {key!r} is corrupted ({type(exc).__name__}: {exc})") from exc


def _metadata(archive, path):
    if METADATA_KEY not in archive.files:
        raise _bad(path, f"it has no {METADATA_KEY!r} metadata entry")
    raw = _read_member(archive, METADATA_KEY, path)
    try:
        metadata = json.loads(str(raw[()]))
    except (ValueError, TypeError, IndexError) as exc:
        raise _bad(path, f"the metadata is not valid JSON ({exc})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise _bad(path, "the metadata does not describe a fastem model")
    version = metadata.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _bad(path, f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        from fastem import __version__

        raise ValueError(
            f"{path!r} was written by fastem {metadata.get('fastem_version', '?')} "
            f"in model format version {version}; this fastem {__version__} "
            f"reads format versions up to {FORMAT_VERSION}. Upgrade fastem "
            "to load it."
        )
    expected = {
        "class": str,
        "params": dict,
        "array_params": list,
        "attributes": dict,
        "array_attributes": list,
    }
    for key, typ in expected.items():
        if not isinstance(metadata.get(key), typ):
            raise _bad(path, f"metadata field {key!r} is missing or malformed")
    return metadata


def load(path):
    """Load an estimator saved with ``estimator.save(path)``.

    Model files are NumPy ``.npz`` archives with JSON metadata; they are
    read with ``allow_pickle=False`` and may only name estimator classes
    that fastem exports, so loading a file never runs code from it.

    Parameters
    ----------
    path : str or os.PathLike
        Model file.

    Returns
    -------
    estimator : fastem estimator
        Fitted, with the saved parameters and fitted attributes.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is corrupted or truncated, names an unknown estimator
        class, lacks an entry its metadata lists, holds parameters or
        fitted arrays that are invalid or inconsistent with each other (the
        checks every inference method runs), or was written by a newer
        model format version.
    """
    path_s = os.fspath(path)
    with _open(path_s) as archive:
        meta = _metadata(archive, path_s)
        classes = _estimator_classes()
        cls = classes.get(meta["class"])
        if cls is None:
            raise _bad(
                path_s,
                f"unknown estimator class {meta['class']!r} (this fastem knows "
                f"{', '.join(sorted(classes)) or 'none'})",
            )
        valid = set(cls().get_params())
        params, unknown = {}, []
        for name, value in meta["params"].items():
            if name in valid:
                params[name] = _from_json(value)
            else:
                unknown.append(name)
        for name in meta["array_params"]:
            if name in valid:
                params[name] = _read_member(archive, _PARAM_PREFIX + name, path_s)
            else:
                unknown.append(name)
        if unknown:
            warnings.warn(
                f"{path_s!r}: ignoring parameter(s) {', '.join(sorted(unknown))} "
                f"that this fastem's {cls.__name__} does not have",
                UserWarning,
                stacklevel=2,
            )
        estimator = cls(**params)
        for name, value in meta["attributes"].items():
            _check_attr_name(name, path_s)
            setattr(estimator, name, _from_json(value))
        for name in meta["array_attributes"]:
            _check_attr_name(name, path_s)
            setattr(estimator, name, _read_member(archive, _ATTR_PREFIX + name, path_s))
    # the same checks as inference: parameters, then the fitted arrays
    # against each other (shapes, dtypes, finiteness, weights, factors)
    try:
        estimator._check_loaded()
    except (ValueError, TypeError, AttributeError) as exc:
        raise _bad(path_s, str(exc)) from exc
    return estimator


load_model = load


def _check_attr_name(name, path):
    if not (isinstance(name, str) and name.isidentifier() and name.endswith("_")
            and not name.startswith("_")):
        raise _bad(path, f"invalid fitted attribute name {name!r}")


def describe(path):
    """A human-readable multi-line description of a model file.

    Parameters
    ----------
    path : str or os.PathLike
        Model file.

    Returns
    -------
    text : str
    """
    est = load(path)
    meta = read_metadata(path)
    lines = [
        f"{meta['class']} (fastem model format {meta['format_version']}, "
        f"saved by fastem {meta.get('fastem_version', '?')})",
        f"file: {os.fspath(path)} ({os.path.getsize(path):,} bytes)",
        "parameters:",
    ]
    params = est.get_params()
    for name in sorted(params):
        value = params[name]
        if isinstance(value, np.ndarray):
            value = f"array(shape={value.shape}, dtype={value.dtype})"
        else:
            value = repr(value)
        lines.append(f"  {name} = {value}")
    lines.append("fitted attributes:")
    with np.printoptions(precision=4, suppress=True, linewidth=100, threshold=60):
        for name in _fitted_attribute_names(est):
            value = getattr(est, name)
            if isinstance(value, np.ndarray):
                head = f"  {name}: array(shape={value.shape}, dtype={value.dtype})"
                if value.size <= 60:
                    body = np.array2string(value)
                    lines.append(head)
                    lines.extend("    " + s for s in body.splitlines())
                else:
                    lines.append(head)
            elif isinstance(value, list) and len(value) > 8:
                shown = ", ".join(f"{v:.6g}" if isinstance(v, float) else repr(v)
                                  for v in value[-3:])
                lines.append(f"  {name}: list of {len(value)}, last: [..., {shown}]")
            else:
                lines.append(f"  {name} = {value!r}")
    return "\n".join(lines)
