"""The ``fastem`` command line (also ``python -m fastem``).

Commands: ``demo``, ``fit``, ``predict``, ``info``, ``select-k``; run
``fastem COMMAND --help`` for each. Errors print one line on standard error
and exit with status 1 (2 for a bad command line, 130 on Ctrl-C); ``--debug``
shows the traceback instead. Output files are checked before any fit starts.
"""
import argparse
import contextlib
import math
import os
import sys
import time
import warnings

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_MODELS = {"kmeans": "KMeans", "gmm": "GaussianMixture"}
_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
# files 'fastem predict -o' writes: .npy, or text
_RESULT_EXTENSIONS = (".npy", ".csv", ".tsv", ".tab", ".txt")


def _estimators():
    from fastem import GaussianMixture, KMeans

    return {"kmeans": KMeans, "gmm": GaussianMixture}


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are a single line on standard error."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} "
                              f"(see '{self.prog} --help')\n")


# largest count accepted by the integer options (the kernels use C ints)
_MAX_COUNT = 2**31 - 1


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value > _MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{text} is too large (at most {_MAX_COUNT})")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"seed must be in [0, 2**32), got {text!r}")
    return value


def _threads(text):
    """A thread count: positive (capped to the CPUs available) or negative
    (-1: all CPUs, -2: all but one, ...)."""
    from fastem._validation import available_cpus

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("0 threads: use a positive count, or -1 for all cores")
    cpus = available_cpus()
    # more threads than CPUs only costs memory and time
    return max(value, -cpus) if value < 0 else min(value, cpus)


def _tolerance(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


_K_FORMAT = "use K values like 1:10 (inclusive), 2:20:2 or 2,3,5"


def parse_k_range(text):
    """Parse ``"1:10"`` (inclusive), ``"2:20:2"``, ``"2,3,5"`` or ``"4"``.

    Parameters
    ----------
    text : str
        ``START:STOP`` or ``START:STOP:STEP`` (both ends included), or a
        comma-separated list of K values.

    Returns
    -------
    ks : range or list of int
        The K values, >= 1, at least one. A ``START:STOP`` range is returned
        as a ``range`` (never expanded here, so a huge STOP costs nothing
        until it is compared with the number of samples).

    Raises
    ------
    argparse.ArgumentTypeError
        Malformed text, an empty or reversed range, a step < 1, or K < 1.
    """
    text = text.strip()
    if ":" in text:
        parts = _k_ints(text.split(":"), text)
        if len(parts) not in (2, 3):
            raise argparse.ArgumentTypeError(f"{_K_FORMAT}; got {text!r}")
        start, stop, step = (parts + [1])[:3]
        if step < 1:
            raise argparse.ArgumentTypeError(f"the step of {text!r} must be >= 1")
        if stop < start:
            raise argparse.ArgumentTypeError(
                f"{text!r} is empty: the start must not exceed the stop (e.g. 1:10)"
            )
        ks = range(start, stop + 1, step)
    else:
        ks = _k_ints([p for p in text.split(",") if p.strip()], text)
        if not ks:
            raise argparse.ArgumentTypeError(f"no K values in {text!r}; {_K_FORMAT}")
    if _k_min(ks) < 1:
        raise argparse.ArgumentTypeError(f"K values must be >= 1, got {text!r}")
    return ks


def _k_ints(parts, text):
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_K_FORMAT}; got {text!r}") from None


def _k_min(ks):
    """Smallest value of ``parse_k_range``'s result (a range is not iterated)."""
    return ks[0] if isinstance(ks, range) else min(ks)


def _k_max(ks):
    """Largest value of ``parse_k_range``'s result (a range is not iterated)."""
    return ks[-1] if isinstance(ks, range) else max(ks)


def build_parser():
    """The argument parser of the ``fastem`` command.

    Each sub-command's arguments come from its ``_add_*`` function; every
    sub-command also takes ``--debug`` (through the ``common`` parent).
    """
    from fastem import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")

    parser = _Parser(
        prog="fastem",
        description="K-means and Gaussian mixtures by EM on large CPU datasets.",
        epilog="Run 'fastem COMMAND --help' for the options of a command. "
               "Data files: .npy (memory-mapped), .npz, .csv, .tsv, .txt.",
    )
    parser.add_argument("--version", action="version", version=f"fastem {__version__}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_demo(sub, common)
    _add_fit(sub, common)
    _add_predict(sub, common)
    _add_info(sub, common)
    _add_select_k(sub, common)
    return parser


def _add_demo(sub, common):
    """The ``demo`` sub-command: K-means and a mixture on Old Faithful."""
    p = sub.add_parser(
        "demo", parents=[common],
        help="fit K-means and a Gaussian mixture to the Old Faithful data",
        description="Fit K-means (K=2) and a full-covariance Gaussian mixture (K=2) "
                    "to the Old Faithful geyser data shipped with fastem, print a "
                    "summary and write a figure (needs matplotlib: "
                    "pip install \"fastem[plot]\").",
    )
    p.add_argument("-o", "--output", default="fastem-demo.png", metavar="PNG",
                   help="figure file (default: %(default)s)")
    p.add_argument("--no-plot", action="store_true", help="do not write the figure")
    p.add_argument("--random-state", type=_seed, default=0, metavar="SEED",
                   help="seed of the fits (default: %(default)s)")
    p.set_defaults(func=_cmd_demo)


def _add_fit(sub, common):
    """The ``fit`` sub-command: fit a model to a data file and save it."""
    p = sub.add_parser(
        "fit", parents=[common], help="fit a model to a data file and save it",
        description="Fit K-means or a Gaussian mixture to DATA and save the model "
                    "(a .npz model file; read it with 'fastem info' or fastem.load).",
    )
    p.add_argument("data", metavar="DATA", help="data file (.npy, .npz, .csv, .tsv, .txt)")
    p.add_argument("--model", required=True, choices=sorted(_MODELS),
                   help="kmeans or gmm (Gaussian mixture)")
    p.add_argument("-k", "--k", dest="k", required=True, type=_positive_int, metavar="K",
                   help="number of clusters / mixture components")
    p.add_argument("--covariance-type", choices=_COVARIANCE_TYPES, default=None,
                   help="covariance of each component (gmm only; default: full)")
    _data_options(p)
    _fit_options(p)
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="model file to write (.npz)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_fit)


def _add_predict(sub, common):
    """The ``predict`` sub-command: labels or responsibilities of a data file."""
    p = sub.add_parser(
        "predict", parents=[common], help="labels (or probabilities) for a data file",
        description="Assign each row of DATA to a cluster with a saved MODEL. "
                    "Writes .npy, or text when OUT ends in .csv/.tsv/.txt; without "
                    "-o, prints text to standard output.",
    )
    p.add_argument("model", metavar="MODEL", help="model file written by 'fastem fit'")
    p.add_argument("data", metavar="DATA", help="data file (.npy, .npz, .csv, .tsv, .txt)")
    p.add_argument("-o", "--output", metavar="OUT", default=None,
                   help="output file (.npy, .csv, .tsv or .txt)")
    p.add_argument("--proba", action="store_true",
                   help="write the n_samples x K responsibilities (gmm models)")
    p.add_argument("--key", default=None, help="array to read from a .npz DATA file")
    p.add_argument("--n-threads", type=_threads, default=None, metavar="N",
                   help="threads, at most the cores available; -1: all, -2: all but "
                        "one (default: all cores)")
    p.set_defaults(func=_cmd_predict)


def _add_info(sub, common):
    """The ``info`` sub-command: describe a saved model."""
    p = sub.add_parser("info", parents=[common], help="describe a saved model",
                       description="Print the class, parameters and fitted "
                                   "attributes stored in a model file.")
    p.add_argument("model", metavar="MODEL", help="model file")
    p.set_defaults(func=_cmd_info)


def _add_select_k(sub, common):
    """The ``select-k`` sub-command: compare numbers of clusters K."""
    p = sub.add_parser(
        "select-k", parents=[common], help="compare numbers of clusters K",
        description="For each K: the K-means objective and its elbow, BIC and AIC "
                    "of Gaussian mixtures, and the stability of the partitions "
                    "across random initialisations (adjusted Rand index). Prints "
                    "the table and the K each method recommends.",
    )
    p.add_argument("data", metavar="DATA", help="data file (.npy, .npz, .csv, .tsv, .txt)")
    p.add_argument("--model", choices=sorted(_MODELS), default=None,
                   help="kmeans: elbow + stability of K-means; gmm: BIC, AIC + "
                        "stability of mixtures (default: all methods, stability "
                        "of K-means)")
    p.add_argument("-k", "--k", dest="k", type=parse_k_range, default=parse_k_range("1:10"),
                   metavar="RANGE", help="K values: 1:10 (inclusive, default), 2:20:2 or 2,3,5")
    p.add_argument("--methods", default=None, metavar="LIST",
                   help="comma-separated subset of elbow,bic,aic,stability")
    p.add_argument("--covariance-type", choices=_COVARIANCE_TYPES, default="full",
                   help="covariance of the mixtures (default: %(default)s)")
    p.add_argument("--n-runs", type=_positive_int, default=10, metavar="N",
                   help="runs per K for stability (default: %(default)s)")
    _data_options(p)
    _fit_options(p, n_init_default=3)
    p.add_argument("--plot", metavar="PNG", default=None, help="write the criteria plot")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_select_k)


def _data_options(p):
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="floating type of the data in memory (default: float32/"
                        "float64 binary data kept, text read as float64)")
    p.add_argument("--key", default=None, help="array to read from a .npz DATA file")


def _fit_options(p, n_init_default=None):
    p.add_argument("--n-init", type=_positive_int, default=n_init_default, metavar="N",
                   help="initialisations, best kept" + (
                       " (default: the estimator's)" if n_init_default is None
                       else " (default: %(default)s)"))
    p.add_argument("--max-iter", type=_positive_int, default=None, metavar="N",
                   help="maximum iterations (default: the estimator's)")
    p.add_argument("--tol", type=_tolerance, default=None,
                   help="convergence tolerance, >= 0 (default: the estimator's)")
    p.add_argument("--random-state", type=_seed, default=None, metavar="SEED",
                   help="seed for reproducible results")
    p.add_argument("--n-threads", type=_threads, default=None, metavar="N",
                   help="threads, at most the cores available; -1: all, -2: all but "
                        "one (default: all cores)")


# ----------------------------------------------------------------------------
# commands


def _check_output(path, option, *, extensions=None, inputs=()):
    """Raise ValueError now if ``path`` cannot be written, before any fit.

    Parameters
    ----------
    path : str
        The output file named by ``option``.
    option : str
        The option, for the message (``"-o"``, ``"--plot"``).
    extensions : sequence of str, optional
        Accepted extensions (lower case, with the dot).
    inputs : sequence of str
        Input files that ``path`` must not overwrite.
    """
    if not path:
        raise ValueError(f"{option}: the file name is empty")
    if os.path.isdir(path):
        raise ValueError(f"{option} {path!r} is a directory; give a file name")
    ext = os.path.splitext(path)[1].lower()
    if extensions is not None and ext not in extensions:
        raise ValueError(
            f"{option} {path!r}: unsupported file type {ext or '(no extension)'!r}; "
            f"use one of {', '.join(extensions)}"
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise ValueError(f"{option} {path!r}: the directory {directory!r} {what}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path!r}: cannot write in {directory!r} (permission denied)")
    if os.path.exists(path):
        if not os.path.isfile(path):
            # a device such as /dev/null would be replaced by the model file
            raise ValueError(f"{option} {path!r} is not a regular file")
        if not os.access(path, os.W_OK):
            raise ValueError(f"{option} {path!r}: the file exists and is read-only")
        for other in inputs:
            if os.path.exists(other) and os.path.samefile(path, other):
                raise ValueError(
                    f"{option} {path!r} is the input file {other!r}; choose another "
                    "output file"
                )


def _check_figure_path(path, option):
    """Check a figure file (needs matplotlib) before any fit."""
    try:
        import matplotlib  # noqa: F401 - a module set to None counts as missing
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise ImportError(f"{option} needs matplotlib: pip install \"fastem[plot]\"") from None
    formats = sorted("." + ext for ext in FigureCanvasBase.get_supported_filetypes())
    _check_output(path, option, extensions=formats)


def _check_model_file(path):
    """Raise a one-line error now if ``path`` cannot be a model file."""
    from fastem._app.io import check_readable_file

    check_readable_file(path, "model file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # model files are zip (.npz) archives
        raise ValueError(
            f"{path!r} is not a valid fastem model file: it is not an .npz archive "
            "(model files are written by 'fastem fit')"
        )


@contextlib.contextmanager
def _reading_model(path):
    """Report any failure to read the model file ``path`` as a ValueError.

    ``fastem.load`` raises ValueError for the problems it recognises; a
    damaged file can also make numpy or zipfile raise other exceptions
    (BadZipFile, OSError, EOFError, tokenize.TokenError, SyntaxError,
    KeyError, MemoryError for a header claiming a huge array...): each
    becomes "not a valid fastem model file: TYPE: text".
    """
    try:
        yield
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - see the docstring
        text = " ".join(str(exc).split())
        raise ValueError(
            f"{path!r} is not a valid fastem model file: {type(exc).__name__}"
            + (f": {text}" if text else "")
        ) from exc


def _load_model(path):
    """``fastem.load(path)`` with one-line errors (see ``_reading_model``)."""
    from fastem._app.persistence import load

    _check_model_file(path)
    with _reading_model(path):
        return load(path)


def _cmd_demo(args):
    from fastem._app.demo import run_demo

    if not args.no_plot and _has_matplotlib():
        # without matplotlib the demo says how to get the figure and goes on
        _check_figure_path(args.output, "-o")
    run_demo(output=args.output, plot=not args.no_plot, random_state=args.random_state)
    return EXIT_OK


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _read(args):
    from fastem._app.io import read_data

    return read_data(args.data, key=args.key, dtype=args.dtype)


def _describe_data(path, X):
    return f"{path!r} ({X.shape[0]} samples x {X.shape[1]} features, {X.dtype})"


def _cmd_fit(args):
    from fastem._app.io import read_data

    if args.model == "kmeans" and args.covariance_type is not None:
        raise ValueError("--covariance-type applies to --model gmm only")
    # fail before a long fit, not after it
    _check_output(args.output, "-o", inputs=[args.data])
    X, _ = read_data(args.data, key=args.key, dtype=args.dtype)
    n_samples = X.shape[0]
    if args.k > n_samples:
        raise ValueError(
            f"K={args.k} is larger than the number of samples ({n_samples}) in {args.data!r}"
        )
    cls = _estimators()[args.model]
    params = {"n_clusters" if args.model == "kmeans" else "n_components": args.k}
    if args.model == "gmm":
        params["covariance_type"] = args.covariance_type or "full"
    for name in ("n_init", "max_iter", "tol", "random_state", "n_threads"):
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    est = cls(**params)
    saved = est.get_params()
    if not args.quiet:
        # per-iteration progress: the estimators' verbose output (iteration,
        # objective/change, timings), every iteration
        progress = {"verbose": 2 if "verbose_interval" in saved else 1}
        if "verbose_interval" in saved:
            progress["verbose_interval"] = 1
        est.set_params(**{k: v for k, v in progress.items() if k in saved})
    what = f"{type(est).__name__}(K={args.k}"
    what += f", {params['covariance_type']} covariance)" if args.model == "gmm" else ")"
    if not args.quiet:
        print(f"fitting {what} to {_describe_data(args.data, X)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    # estimators print progress on stdout (scikit-learn's convention): send
    # it to stderr so that stdout carries only the result
    with contextlib.redirect_stdout(sys.stderr):
        est.fit(X)
    elapsed = time.perf_counter() - t0
    # the progress display is not part of the model
    est.set_params(**{k: saved[k] for k in ("verbose", "verbose_interval") if k in saved})
    est.save(args.output)

    print(f"{what} fitted to {_describe_data(args.data, X)} in {elapsed:.3f} s")
    if args.model == "kmeans":
        print(f"  iterations: {est.n_iter_}; objective (sum of squared distances): "
              f"{est.inertia_:.6g}")
    else:
        state = "converged" if est.converged_ else "not converged"
        print(f"  iterations: {est.n_iter_} ({state}); log-likelihood per sample: "
              f"{est.lower_bound_:.6g}")
    print(f"  model written to {args.output}")
    return EXIT_OK


def _cmd_predict(args):
    import numpy as np

    from fastem._app.io import read_data, write_array

    if args.output is not None:
        _check_output(args.output, "-o", extensions=_RESULT_EXTENSIONS,
                      inputs=[args.model, args.data])
    model = _load_model(args.model)
    if args.proba and not hasattr(model, "predict_proba"):
        raise ValueError(
            f"--proba needs a Gaussian mixture model; {args.model!r} holds a "
            f"{type(model).__name__}"
        )
    if args.n_threads is not None and "n_threads" in model.get_params():
        model.set_params(n_threads=args.n_threads)
    X, _ = read_data(args.data, key=args.key)
    if args.proba:
        result = np.asarray(model.predict_proba(X))
        header = [f"p{j}" for j in range(result.shape[1])]
    else:
        result = np.asarray(model.predict(X))
        header = ["label"]
    if args.output is None:
        fmt = "%d" if result.dtype.kind in "iub" else "%.6g"
        np.savetxt(sys.stdout, result, fmt=fmt, delimiter=",")
        return EXIT_OK
    write_array(args.output, result, header=header)
    what = "probabilities" if args.proba else "labels"
    print(f"wrote {what} for {result.shape[0]} samples to {args.output}")
    return EXIT_OK


def _cmd_info(args):
    from fastem._app.persistence import describe

    _check_model_file(args.model)
    with _reading_model(args.model):
        text = describe(args.model)
    print(text)
    return EXIT_OK


def _describe_ks(ks):
    if isinstance(ks, range) and len(ks) > 10:
        return f"{ks.start}..{ks[-1]}" + (f" (step {ks.step})" if ks.step != 1 else "")
    return ", ".join(map(str, ks))


def _cmd_select_k(args):
    from fastem._app.select_k import METHODS, select_k

    if args.methods is not None:
        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValueError(
                f"--methods: unknown method(s) {', '.join(unknown) or '(none given)'}; "
                f"choose from {','.join(METHODS)}"
            )
    elif args.model == "kmeans":
        methods = ("elbow", "stability")
    elif args.model == "gmm":
        methods = ("bic", "aic", "stability")
    else:
        methods = METHODS
    if "stability" in methods and args.n_runs < 2:
        raise ValueError("--n-runs must be at least 2 for the stability method")
    if args.plot is not None:
        _check_figure_path(args.plot, "--plot")
    X, _ = _read(args)
    if _k_max(args.k) > X.shape[0]:
        raise ValueError(
            f"K={_k_max(args.k)} is larger than the number of samples ({X.shape[0]}) "
            f"in {args.data!r}; use a smaller --k range"
        )
    kwargs = {}
    for name in ("max_iter", "tol"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if not args.quiet:
        print(f"select-k on {_describe_data(args.data, X)}, K in {_describe_ks(args.k)}",
              file=sys.stderr, flush=True)
    result = select_k(
        X, args.k, methods=methods, model=args.model or "kmeans",
        covariance_type=args.covariance_type, n_runs=args.n_runs, n_init=args.n_init,
        random_state=args.random_state, n_threads=args.n_threads,
        verbose=0 if args.quiet else 1, **kwargs,
    )
    print(result.to_markdown() if args.markdown else str(result))
    if args.plot is not None:
        result.plot(path=args.plot)
        print(f"plot written to {args.plot}")
    return EXIT_OK


# ----------------------------------------------------------------------------
# entry point


# errors that bad input (files, options, data) can cause: reported as one
# line; any other exception is a bug in fastem and is reported as such
_INPUT_ERRORS = (ValueError, TypeError, OSError, ImportError, MemoryError,
                 OverflowError, Warning)


def _one_line(exc):
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    if isinstance(exc, MemoryError):
        return "out of memory" + (f": {text}" if text else "")
    if not isinstance(exc, _INPUT_ERRORS):
        return (f"internal error ({name}: {text}); this is a bug in fastem: please "
                "report it with the traceback that --debug shows")
    if isinstance(exc, (ValueError, TypeError, OSError, ImportError)) and text:
        # FileNotFoundError from open() reads "[Errno 2] No such file or
        # directory: 'x'": keep it, it is clear
        return text
    return f"{name}: {text}" if text else name


def _show_warning(message, category, filename, lineno, file=None, line=None):
    text = " ".join(str(message).split())
    print(f"fastem: warning: {text}", file=sys.stderr)


def main(argv=None):
    """Run the ``fastem`` command line.

    Every error is reported as one line on standard error (``--debug``
    shows the traceback instead); Ctrl-C stops the command with status 130.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 1 on an error, 2 on a bad command line, 130 when
        interrupted.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("fastem: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    debug = getattr(args, "debug", False)
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except BrokenPipeError:
            # output piped into a program that stopped reading (| head)
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")
            return EXIT_OK
        except Exception as exc:
            if debug:
                raise
            print(f"fastem {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_ERROR
