"""Reading data files for the command line: .npy, .npz, .csv, .tsv, .txt.

Every reader returns a validated 2-D float array (float32 or float64) and
the column names, or raises ``ValueError`` / ``FileNotFoundError`` /
``PermissionError`` with a one-line message that names the file and, for
text files, the line and column at fault.
"""
import csv
import math
import os
import re
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

_FLOAT32_MAX = float(np.finfo(np.float32).max)


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



def check_readable_file(path, what, missing=None):
    """Raise a one-line error unless ``path`` is a readable file.

    ``what`` names it in the messages ("data file", "model file").
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{missing or 'no such ' + what}: {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory, not a {what}")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"cannot read {path!r}: permission denied")


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
        a number); lines starting with ``#`` and blank lines are skipped. A
        first row of integers that looks like numeric column names is read
        as data, with a ``UserWarning``.
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
    PermissionError
        If ``path`` cannot be read.
    ValueError
        Unsupported extension, unreadable or corrupted file, ragged or
        non-numeric text, missing values (NaN), non-finite values (inf),
        values too large for float32 with ``dtype="float32"``, empty data.
    """
    path = os.fspath(path)
    target = _dtype_arg(dtype)
    check_readable_file(path, "data file", missing="no such file")
    ext = os.path.splitext(path)[1].lower()
    if key is not None and ext != ".npz":
        raise ValueError(f"key={key!r} applies to .npz files only, not {path!r}")
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
    if isinstance(X, np.ndarray) and X.ndim == 1:
        X = X.reshape(-1, 1)
    if target is np.float32:
        X = _to_float32(X, path)
    try:
        X = check_array(X, name=repr(path), dtype=target)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    if columns is None:
        columns = [f"column {j + 1}" for j in range(X.shape[1])]
    return X, columns


def _exc_text(exc):
    """``exc`` as one line; its type is named when its text alone is unclear."""
    text = " ".join(str(exc).split())
    if isinstance(exc, (ValueError, OSError, EOFError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _to_float32(X, path):
    """``X`` as float32; ValueError if a finite value overflows float32."""
    if not isinstance(X, np.ndarray) or X.dtype == np.float32 or X.dtype.kind != "f":
        return X  # check_array converts or rejects it
    with np.errstate(over="ignore"):
        X32 = X.astype(np.float32)
    # one pass without a temporary; float32 values cannot overflow a float64 sum
    if not np.isfinite(np.sum(X32, dtype=np.float64)):
        # the first value finite in X but not in float32
        overflow = ~np.isfinite(X32) & np.isfinite(X)
        if overflow.any():
            row, col = np.argwhere(overflow)[0]
            raise ValueError(
                f"{path!r}: the value {float(X[row, col])!r} (row {row}, column {col + 1}) "
                "is too large for float32; use --dtype float64"
            )
    return X32


def _read_npy(path):
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path!r}: cannot read this .npy file ({_exc_text(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - a corrupted header can raise
        # OSError, EOFError, tokenize.TokenError, SyntaxError, OverflowError...
        raise ValueError(
            f"{path!r}: not a valid .npy file (truncated or corrupted: {_exc_text(exc)})"
        ) from None


def _read_npz(path, key):
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - BadZipFile, OSError, EOFError...
        raise ValueError(f"{path!r}: not a valid .npz file ({_exc_text(exc)})") from None
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
        except MemoryError as exc:
            raise ValueError(
                f"{path!r}: cannot read array {key!r}: out of memory ({exc})"
            ) from None
        except Exception as exc:  # noqa: BLE001 - zip CRC errors, object
            # arrays, truncation, corrupted headers (TokenError, SyntaxError)
            raise ValueError(
                f"{path!r}: cannot read array {key!r} ({_exc_text(exc)})"
            ) from None


# --------------------------------------------------------------------------
# text files


def _is_number(field):
    try:
        float(field)
    except ValueError:
        return False
    return True


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
            if not has_header and _may_be_header(first, X):
                warnings.warn(
                    f"{path!r}: line {header_line} ({_shorten(first)}) was read as "
                    "data, but it looks like a header of numeric column names; "
                    "if it is one, delete it or give the columns non-numeric names",
                    UserWarning,
                    stacklevel=3,
                )
            return X, columns
    # slow path: find the first problem and say where it is
    _diagnose_text(path, delimiter, has_header, columns, dtype)
    if failure is not None:
        raise ValueError(f"{path!r}: cannot read as numbers ({failure})")
    return X, columns  # pragma: no cover - diagnose raises on non-finite data


def _shorten(fields, n=6):
    shown = [x.strip() for x in fields[:n]]
    return ",".join(shown + ["..."] if len(fields) > n else shown)


def _is_integer_literal(field):
    return re.fullmatch(r"[+-]?[0-9]+", field.strip()) is not None


def _may_be_header(first, X):
    """Whether a first row made only of numbers looks like column names.

    It does when all its fields are written as integers and either the
    fields number the columns (``0,1,...,D-1`` or ``1,...,D``, D >= 3) or
    the rows below hold non-integer values (float data under a header such
    as pandas' default ``0,1,2``, or years); only the next 10,000 rows are
    looked at.
    """
    if not all(_is_integer_literal(x) for x in first):
        return False
    values = [int(x) for x in first]
    n = len(values)
    if n >= 3 and values in (list(range(n)), list(range(1, n + 1))):
        return True
    body = X[1:10_001]
    return bool(np.any(body != np.round(body)))


def _diagnose_text(path, delimiter, has_header, columns, dtype=np.float64):
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
                    if math.isnan(value):
                        kind = "missing"
                    elif math.isinf(value):
                        kind = "non-finite"
                    elif dtype is np.float32 and abs(value) > _FLOAT32_MAX:
                        kind = "float32"
                    else:
                        kind = None
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
        where = (f"{path!r}: line {lineno} (data row "
                 f"{_row_hint(path, delimiter, lineno, has_header)})")
        if kind == "missing":
            what = "an empty cell" if cell == "" else f"a missing value ({cell!r})"
            raise ValueError(
                f"{where} has {what} in column {columns[j]!r}; remove or impute "
                "missing values first"
            )
        if kind == "non-finite":
            raise ValueError(
                f"{where} has a non-finite value ({cell!r}) in column {columns[j]!r}; "
                "fastem needs finite numbers: remove or replace infinite values"
            )
        if kind == "float32":
            raise ValueError(
                f"{where} has a value too large for float32 ({cell!r}) in column "
                f"{columns[j]!r}; use --dtype float64"
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
