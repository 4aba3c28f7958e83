"""Reading data files for the command line: .npy, .npz, .csv, .tsv, .txt.

Every reader returns a validated 2-D float array (float32 or float64) and
the column names, or raises ``ValueError`` / ``FileNotFoundError`` with a
one-line message that names the file and, for text files, the line and
column at fault.
"""
import csv
import math
import os
import warnings
from importlib import resources

import numpy as np

from fastem._validation import check_array

#: file extensions understood by :func:`read_data`, with their delimiter
#: (None: runs of whitespace)
TEXT_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None}
BINARY_EXTENSIONS = (".npy", ".npz")
SUPPORTED = BINARY_EXTENSIONS + tuple(TEXT_DELIMITERS)

# cell contents read as "missing" in text files (compared lower-case)
_MISSING = {"", "na", "nan", "n/a", "null", "none", "?", "-", "--", "#n/a"}


def faithful_path():
    """Path of the Old Faithful data shipped in ``fastem/data/faithful.csv``."""
    return str(resources.files("fastem.data").joinpath("faithful.csv"))


def load_faithful():
    """The Old Faithful geyser data: 272 eruptions, (duration, waiting) in minutes.

    Returns
    -------
    X : ndarray of shape (272, 2), float64
        Eruption duration and waiting time until the next eruption.
    columns : list of str
        ``["eruptions", "waiting"]``.
    """
    return read_data(faithful_path())


def _dtype_arg(dtype):
    if dtype is None:
        return (np.float64, np.float32)
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}.")
    return dt.type


def read_data(path, *, key=None, dtype=None):
    """Read a data matrix from a file, chosen by its extension.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy`` (opened memory-mapped, not read into memory unless a dtype
        conversion is needed), ``.npz`` (one array, or the one named by
        ``key``), ``.csv`` (comma-separated), ``.tsv``/``.tab``
        (tab-separated) or ``.txt`` (whitespace-separated). Text files may
        start with a header row (detected: a first row in which no field is
        a number); lines starting with ``#`` and blank lines are skipped.
    key : str, optional
        Array to use in a ``.npz`` archive holding several.
    dtype : {None, "float32", "float64"}, default=None
        Floating type of the result. None keeps float32/float64 binary data
        as is and reads everything else as float64.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        C-contiguous float32 or float64, finite. A 1-D array in a binary
        file is read as a single feature.
    columns : list of str
        Column names: the header of a text file, else ``"column 1"``, ...

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Unsupported extension, unreadable file, ragged or non-numeric text,
        missing values (NaN), empty data.
    """
    path = os.fspath(path)
    target = _dtype_arg(dtype)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory, not a data file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        X, columns = _read_npy(path), None
    elif ext == ".npz":
        X, columns = _read_npz(path, key), None
    elif ext in TEXT_DELIMITERS:
        X, columns = _read_text(path, TEXT_DELIMITERS[ext], target)
    else:
        raise ValueError(
            f"{path!r}: unsupported file type {ext or '(no extension)'!r}; "
            f"use one of {', '.join(SUPPORTED)}"
        )
    if key is not None and ext != ".npz":
        raise ValueError(f"key={key!r} applies to .npz files only, not {path!r}")
    if isinstance(X, np.ndarray) and X.ndim == 1:
        X = X.reshape(-1, 1)
    try:
        X = check_array(X, name=repr(path), dtype=target)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    if columns is None:
        columns = [f"column {j + 1}" for j in range(X.shape[1])]
    return X, columns


def _read_npy(path):
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path!r}: cannot read this .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise ValueError(
            f"{path!r}: not a valid .npy file (truncated or corrupted: {exc})"
        ) from None


def _read_npz(path, key):
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path!r}: not a valid .npz file ({exc})") from None
    with archive:
        keys = list(archive.files)
        if key is None:
            if len(keys) != 1:
                listed = ", ".join(keys) if keys else "none"
                raise ValueError(
                    f"{path!r} holds {len(keys)} arrays ({listed}); choose one "
                    "with --key"
                )
            key = keys[0]
        elif key not in keys:
            raise ValueError(
                f"{path!r} has no array {key!r}; it holds: {', '.join(keys)}"
            )
        try:
            return archive[key]
        except Exception as exc:  # zip CRC errors, object arrays, truncation
            raise ValueError(
                f"{path!r}: cannot read array {key!r} ({exc})"
            ) from None


# --------------------------------------------------------------------------
# text files


def _is_number(field):
    try:
        float(field)
    except ValueError:
        return False
    return True


def _split(line, delimiter):
    if delimiter is None:
        return line.split()
    return next(csv.reader([line], delimiter=delimiter))


def _records(path, delimiter):
    """Yield (line_number, fields) for each non-blank, non-comment record."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        if delimiter is None:
            for lineno, line in enumerate(f, start=1):
                fields = line.split()
                if fields and not fields[0].startswith("#"):
                    yield lineno, fields
            return
        reader = csv.reader(f, delimiter=delimiter)
        start = 1
        for fields in reader:
            lineno = start
            start = reader.line_num + 1
            if not fields or all(not x.strip() for x in fields) and len(fields) == 1:
                continue
            if fields[0].lstrip().startswith("#"):
                continue
            yield lineno, fields


def _first_record(path, delimiter):
    for lineno, fields in _records(path, delimiter):
        return lineno, fields
    return None, None


def _read_text(path, delimiter, dtype):
    try:
        header_line, first = _first_record(path, delimiter)
    except UnicodeDecodeError:
        raise ValueError(
            f"{path!r} is not a UTF-8 text file; for binary data use .npy or .npz"
        ) from None
    except csv.Error as exc:
        raise ValueError(f"{path!r}: malformed CSV ({exc})") from None
    if first is None:
        raise ValueError(f"{path!r} is empty: no data rows")
    has_header = not any(_is_number(x.strip()) for x in first)
    if has_header:
        columns = [x.strip() or f"column {j + 1}" for j, x in enumerate(first)]
    else:
        columns = [f"column {j + 1}" for j in range(len(first))]

    X = None
    if dtype is None or isinstance(dtype, tuple):
        dtype = np.float64
    try:
        with warnings.catch_warnings():
            # "input contained no data": reported below as an error
            warnings.simplefilter("ignore", UserWarning)
            X = np.loadtxt(
                path,
                delimiter=delimiter,
                skiprows=header_line if has_header else 0,
                dtype=dtype,
                ndmin=2,
                comments="#",
                quotechar='"' if delimiter is not None else None,
                encoding="utf-8-sig",
            )
    except ValueError as exc:
        failure = str(exc)
    else:
        failure = None
        if X.shape[0] == 0:
            raise ValueError(f"{path!r} has a header but no data rows")
        with np.errstate(invalid="ignore", over="ignore"):
            finite = np.isfinite(np.sum(X, dtype=np.float64))
        if finite:
            return X, columns
    # slow path: find the first problem and say where it is
    _diagnose_text(path, delimiter, has_header, columns)
    if failure is not None:
        raise ValueError(f"{path!r}: cannot read as numbers ({failure})")
    return X, columns  # pragma: no cover - diagnose raises on non-finite data


def _diagnose_text(path, delimiter, has_header, columns):
    """Raise ValueError describing the first problem in a text data file."""
    n_cols = len(columns)
    records = _records(path, delimiter)
    if has_header:
        header_line, _ = next(records)
    else:
        header_line = None
    first_data = True
    for lineno, fields in records:
        if len(fields) != n_cols:
            ref = f"the header (line {header_line})" if has_header else "the first row"
            raise ValueError(
                f"{path!r}: line {lineno} has {len(fields)} fields but "
                f"{ref} has {n_cols} (ragged rows)"
            )
        bad = []
        for j, raw in enumerate(fields):
            cell = raw.strip()
            if cell.lower() in _MISSING:
                kind = "missing"
            else:
                try:
                    value = float(cell)
                except ValueError:
                    kind = "text"
                else:
                    kind = None if math.isfinite(value) else "missing"
            if kind is not None:
                bad.append((j, kind, cell))
        if not bad:
            first_data = False
            continue
        text = [(j, c) for j, kind, c in bad if kind == "text"]
        if first_data and text:
            names = ", ".join(repr(columns[j]) for j, _ in text)
            examples = ", ".join(repr(c) for _, c in text[:3])
            plural = "s" if len(text) > 1 else ""
            raise ValueError(
                f"{path!r}: non-numeric column{plural} {names} (values like "
                f"{examples} on line {lineno}); remove {'them' if plural else 'it'} "
                "or encode as numbers"
            )
        j, kind, cell = bad[0]
        if kind == "missing":
            what = "an empty cell" if cell == "" else f"a missing value ({cell!r})"
            raise ValueError(
                f"{path!r}: line {lineno} (data row {_row_hint(path, delimiter, lineno, has_header)}) "
                f"has {what} in column {columns[j]!r}; remove or impute missing "
                "values first"
            )
        raise ValueError(
            f"{path!r}: line {lineno}, column {columns[j]!r}: {cell!r} is not a number"
        )


def _row_hint(path, delimiter, lineno, has_header):
    """0-based data row index of the record on ``lineno``."""
    row = -1 if has_header else 0
    for ln, _ in _records(path, delimiter):
        if ln >= lineno:
            break
        row += 1
    return row


# --------------------------------------------------------------------------
# writing results


def write_array(path, array, *, header=None, fmt=None):
    """Write ``array`` to ``path``: .npy, or text for .csv/.tsv/.txt.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its extension picks the format (default .npy when the
        extension is not a text one).
    array : ndarray of shape (n,) or (n, k)
        Labels (integers) or probabilities.
    header : list of str, optional
        Column names for text output.
    fmt : str, optional
        ``numpy.savetxt`` format; default ``%d`` for integers, ``%.6g`` else.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext in TEXT_DELIMITERS:
        delimiter = TEXT_DELIMITERS[ext] or " "
        if fmt is None:
            fmt = "%d" if array.dtype.kind in "iub" else "%.6g"
        np.savetxt(
            path,
            array,
            fmt=fmt,
            delimiter=delimiter,
            header=delimiter.join(header) if header else "",
            comments="",
        )
    else:
        with open(path, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
