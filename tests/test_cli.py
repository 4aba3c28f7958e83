"""The fastem command line and its data-file reader."""
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import fastem
from fastem import load
from fastem._app.cli import main, parse_k_range
from fastem._app.io import faithful_path, read_data

FASTEM_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastem.__file__)))


def run_cli(*args, cwd, python_prefix=(), env_extra=None):
    """Run ``python -m fastem ARGS`` in a subprocess importing this fastem."""
    env = dict(os.environ)
    env["PYTHONPATH"] = FASTEM_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    cmd = [sys.executable, *python_prefix, *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def assert_one_line_error(err, *fragments):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "internal error" not in err
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture()
def faithful_csv(tmp_path):
    path = tmp_path / "faithful.csv"
    shutil.copy(faithful_path(), path)
    return path


@pytest.fixture(scope="module")
def faithful():
    return read_data(faithful_path())[0]


# ----------------------------------------------------------------------------
# demo


def test_demo_subprocess_no_plot(tmp_path):
    res = run_cli("-m", "fastem", "demo", "--no-plot", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for fragment in ("Old Faithful", "K-means, K=2", "Gaussian mixture, K=2",
                     "weight", "mean", "covariance", "log-likelihood per point",
                     "iterations", "converged", " ms"):
        assert fragment in out
    assert not list(tmp_path.iterdir())


def test_demo_writes_png(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    png = tmp_path / "fastem-demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 30_000
    assert "Figure written to fastem-demo.png" in capsys.readouterr().out
    assert main(["demo", "-o", str(tmp_path / "other.png")]) == 0
    assert (tmp_path / "other.png").exists()


def test_demo_without_matplotlib_in_process(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert 'pip install "fastem[plot]"' in out
    assert not list(tmp_path.iterdir())


def test_demo_without_matplotlib_fresh_process(tmp_path):
    # a fresh interpreter where importing matplotlib fails, as on a machine
    # without it; the demo must still run and say how to get the figure
    block = ("import sys; sys.modules['matplotlib'] = None; "
             "from fastem._app.cli import main; sys.exit(main(['demo']))")
    res = run_cli("-c", block, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert 'pip install "fastem[plot]"' in res.stdout
    assert res.stderr == ""


@pytest.mark.skipif(shutil.which("fastem") is None, reason="fastem console script not installed")
def test_console_script(tmp_path):
    res = subprocess.run(["fastem", "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0
    assert res.stdout.strip() == f"fastem {fastem.__version__}"


# ----------------------------------------------------------------------------
# fit / predict / info


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_fit_predict_info_gmm(tmp_path, faithful_csv, faithful, capsys, covariance_type):
    model = tmp_path / "gmm.npz"
    assert main(["fit", str(faithful_csv), "--model", "gmm", "-k", "2",
                 "--covariance-type", covariance_type, "--random-state", "0",
                 "--n-init", "2", "-o", str(model)]) == 0
    out, err = capsys.readouterr()
    assert "fitting GaussianMixture(K=2" in err  # progress on stderr
    assert "model written to" in out
    est = load(model)
    assert type(est).__name__ == "GaussianMixture"
    assert est.covariance_type == covariance_type and est.n_init == 2
    assert est.verbose == 0  # progress display not stored in the model

    labels = tmp_path / "labels.npy"
    assert main(["predict", str(model), str(faithful_csv), "-o", str(labels)]) == 0
    np.testing.assert_array_equal(np.load(labels), est.predict(faithful))

    proba = tmp_path / "proba.csv"
    assert main(["predict", str(model), str(faithful_csv), "--proba", "-o", str(proba)]) == 0
    read = np.loadtxt(proba, delimiter=",", skiprows=1)
    assert read.shape == (272, 2)
    np.testing.assert_allclose(read, est.predict_proba(faithful), rtol=1e-5, atol=1e-12)
    assert proba.read_text().splitlines()[0] == "p0,p1"
    capsys.readouterr()

    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GaussianMixture (fastem model format 1")
    assert f"covariance_type = '{covariance_type}'" in out
    assert "means_: array(shape=(2, 2)" in out


def test_fit_kmeans_quiet_and_predict_stdout(tmp_path, faithful_csv, faithful, capsys):
    model = tmp_path / "km.npz"
    assert main(["fit", str(faithful_csv), "--model", "kmeans", "-k", "2", "-q",
                 "--random-state", "1", "-o", str(model)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "objective" in out
    assert main(["predict", str(model), str(faithful_csv)]) == 0
    printed = np.array(capsys.readouterr().out.split(), dtype=int)
    np.testing.assert_array_equal(printed, load(model).predict(faithful))
    # labels as csv
    assert main(["predict", str(model), str(faithful_csv), "-o", str(tmp_path / "l.csv")]) == 0
    lines = (tmp_path / "l.csv").read_text().splitlines()
    assert lines[0] == "label" and len(lines) == 273


def test_fit_float32_npy_and_npz(tmp_path, faithful, capsys):
    npy = tmp_path / "x.npy"
    np.save(npy, faithful.astype(np.float32))
    model = tmp_path / "m.npz"
    assert main(["fit", str(npy), "--model", "kmeans", "-k", "3", "-q", "-o", str(model)]) == 0
    assert load(model).cluster_centers_.dtype == np.float32
    assert main(["fit", str(npy), "--model", "kmeans", "-k", "3", "-q", "--dtype", "float64",
                 "-o", str(model)]) == 0
    assert load(model).cluster_centers_.dtype == np.float64
    npz = tmp_path / "x.npz"
    np.savez(npz, data=faithful, other=faithful[:10])
    assert main(["fit", str(npz), "--model", "gmm", "-k", "2", "-q", "--key", "data",
                 "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["fit", str(npz), "--model", "gmm", "-k", "2", "-q", "-o", str(model)]) == 1
    assert_one_line_error(capsys.readouterr().err, "holds 2 arrays", "--key")


def test_fit_subprocess_round_trip(tmp_path, faithful_csv, faithful):
    res = run_cli("-m", "fastem", "fit", "faithful.csv", "--model", "gmm", "-k", "2",
                  "--random-state", "0", "-o", "m.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "fitting GaussianMixture" in res.stderr
    res = run_cli("-m", "fastem", "predict", "m.npz", "faithful.csv", "-o", "l.npy",
                  cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "l.npy"),
                                  load(tmp_path / "m.npz").predict(faithful))


# ----------------------------------------------------------------------------
# select-k


def test_select_k_cli(tmp_path, faithful_csv, capsys):
    plot = tmp_path / "k.png"
    args = ["select-k", str(faithful_csv), "-k", "1:5", "--n-runs", "4",
            "--random-state", "0", "--n-threads", "1"]
    if _has_matplotlib():
        args += ["--plot", str(plot)]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "recommended K:" in out
    assert "BIC 2" in out and "stability 2" in out
    assert "K=5" in err  # progress
    if _has_matplotlib():
        assert plot.stat().st_size > 10_000
    assert main(["select-k", str(faithful_csv), "--model", "gmm", "-k", "2,3", "-q",
                 "--n-runs", "3", "--markdown", "--random-state", "0", "--n-threads", "1"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("| K | BIC | AIC | stability | ± sd |")


def test_select_k_plot_without_matplotlib(faithful_csv, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["select-k", str(faithful_csv), "--plot", "x.png"]) == 1
    assert_one_line_error(capsys.readouterr().err, 'pip install "fastem[plot]"')


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_parse_k_range():
    assert list(parse_k_range("1:10")) == list(range(1, 11))
    assert list(parse_k_range("2:10:4")) == [2, 6, 10]
    assert parse_k_range("2,3,5") == [2, 3, 5]
    assert parse_k_range("4") == [4]
    # a huge range is not expanded
    assert len(parse_k_range("1:99999999999")) == 99999999999


# ----------------------------------------------------------------------------
# errors: one line on stderr, non-zero exit, no traceback


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture()
def bad_files(tmp_path):
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)
    return {
        "ragged": _write(tmp_path, "ragged.csv", "a,b\n1,2\n3,4\n5,6,7\n8,9\n"),
        "text_col": _write(tmp_path, "species.csv",
                           "length,species,width,colour\n1.0,setosa,2.0,red\n"
                           "2.0,virginica,3.0,blue\n"),
        "nan": _write(tmp_path, "nan.csv", "x,y\n1,2\n3,4\n5,nan\n7,8\n"),
        "empty_cell": _write(tmp_path, "empty.csv", "x,y\n1,2\n3,\n5,6\n"),
        "binary": str(tmp_path / "binary.csv"),
        "bad_value": _write(tmp_path, "value.csv", "x,y\n1,2\n3,4\n5,abc\n"),
    }


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["fit", "{tmp}/missing.csv", "--model", "gmm", "-k", "2", "-o", "{tmp}/m.npz"],
         ["no such file", "missing.csv"]),
        (["fit", "{ragged}", "--model", "kmeans", "-k", "2", "-o", "{tmp}/m.npz"],
         ["line 4 has 3 fields", "header (line 1) has 2"]),
        (["fit", "{text_col}", "--model", "kmeans", "-k", "2", "-o", "{tmp}/m.npz"],
         ["non-numeric columns 'species', 'colour'"]),
        (["fit", "{nan}", "--model", "kmeans", "-k", "2", "-o", "{tmp}/m.npz"],
         ["line 4 (data row 2)", "missing value ('nan')", "column 'y'"]),
        (["fit", "{empty_cell}", "--model", "kmeans", "-k", "2", "-o", "{tmp}/m.npz"],
         ["line 3", "empty cell", "column 'y'"]),
        (["fit", "{bad_value}", "--model", "kmeans", "-k", "2", "-o", "{tmp}/m.npz"],
         ["line 4, column 'y': 'abc' is not a number"]),
        (["fit", "{binary}", "--model", "kmeans", "-k", "2", "-o", "{tmp}/m.npz"],
         ["not a UTF-8 text file"]),
        (["fit", "{faithful}", "--model", "gmm", "-k", "500", "-o", "{tmp}/m.npz"],
         ["K=500 is larger than the number of samples (272)"]),
        (["fit", "{faithful}", "--model", "kmeans", "-k", "2", "--covariance-type", "diag",
          "-o", "{tmp}/m.npz"], ["--covariance-type applies to --model gmm only"]),
        (["select-k", "{faithful}", "-k", "1:300"],
         ["K=300 is larger than the number of samples (272)"]),
        (["select-k", "{faithful}", "--methods", "elbow,gap"], ["unknown method(s) gap"]),
        (["predict", "{tmp}/missing.npz", "{faithful}"], ["no such model file"]),
        (["info", "{faithful}"], ["not a valid fastem model file"]),
        (["fit", "{tmp}/data.xlsx", "--model", "kmeans", "-k", "2", "-o", "{tmp}/m.npz"],
         ["unsupported file type '.xlsx'"]),
    ],
)
def test_runtime_errors_one_line(tmp_path, bad_files, capsys, argv, fragments):
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    subs = dict(bad_files, tmp=str(tmp_path), faithful=faithful_path())
    argv = [a.format(**subs) for a in argv]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert_one_line_error(err, *fragments)
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["fit", "x.csv", "--model", "som", "-k", "2", "-o", "m.npz"],
         "argument --model: invalid choice: 'som'"),
        (["fit", "x.csv", "--model", "gmm", "-k", "0", "-o", "m.npz"],
         "expected a positive integer, got '0'"),
        (["fit", "x.csv", "--model", "gmm", "-k", "2", "--covariance-type", "round",
          "-o", "m.npz"], "invalid choice: 'round'"),
        (["fit", "x.csv", "--model", "gmm", "-k", "2", "--dtype", "float16", "-o", "m.npz"],
         "invalid choice: 'float16'"),
        (["fit", "x.csv", "--model", "gmm", "-o", "m.npz"], "required: -k/--k"),
        (["select-k", "x.csv", "-k", "10:1"], "'10:1' is empty: the start must not exceed"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_one_line(capsys, argv, fragment):
    assert main(argv) == 2
    assert_one_line_error(capsys.readouterr().err, fragment)


def test_errors_in_subprocess_and_debug(tmp_path, bad_files):
    res = run_cli("-m", "fastem", "fit", bad_files["nan"], "--model", "gmm", "-k", "2",
                  "-o", "m.npz", cwd=tmp_path)
    assert res.returncode == 1
    assert_one_line_error(res.stderr, "nan.csv", "line 4")
    res = run_cli("-m", "fastem", "fit", "x.csv", "--model", "nope", "-k", "2", "-o", "m",
                  cwd=tmp_path)
    assert res.returncode == 2
    assert_one_line_error(res.stderr, "invalid choice")
    # --debug: the traceback
    res = run_cli("-m", "fastem", "fit", bad_files["nan"], "--model", "gmm", "-k", "2",
                  "-o", "m.npz", "--debug", cwd=tmp_path)
    assert res.returncode == 1
    assert "Traceback" in res.stderr and "ValueError" in res.stderr


def test_no_command_and_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "select-k" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"fastem {fastem.__version__}"


# ----------------------------------------------------------------------------
# data-file reader


def test_read_faithful_header_detected():
    X, columns = read_data(faithful_path())
    assert columns == ["eruptions", "waiting"]
    assert X.shape == (272, 2) and X.dtype == np.float64
    np.testing.assert_array_equal(X[0], [3.6, 79])


def test_read_text_variants(tmp_path):
    expected = np.array([[1.0, 2.5], [3.0, -4.0], [5.0, 6e3]])
    p = _write(tmp_path, "noheader.csv", "1,2.5\n3,-4\n\n# comment\n5,6e3\n")
    X, columns = read_data(p)
    np.testing.assert_array_equal(X, expected)
    assert columns == ["column 1", "column 2"]
    p = _write(tmp_path, "quoted.csv", '\ufeff"a","b"\n1,2.5\n3,-4\n5,6e3\n')
    X, columns = read_data(p, dtype="float32")
    assert columns == ["a", "b"] and X.dtype == np.float32
    np.testing.assert_array_equal(X, expected.astype(np.float32))
    p = _write(tmp_path, "tabs.tsv", "a\tb\n1\t2.5\n3\t-4\n5\t6e3\n")
    X, columns = read_data(p)
    assert columns == ["a", "b"]
    np.testing.assert_array_equal(X, expected)
    p = _write(tmp_path, "spaces.txt", "1  2.5\n 3 -4\n5\t6e3\n")
    np.testing.assert_array_equal(read_data(p)[0], expected)


def test_read_npy_is_memory_mapped(tmp_path):
    p = tmp_path / "x.npy"
    np.save(p, np.arange(12, dtype=np.float32).reshape(6, 2))
    X, _ = read_data(p)
    assert isinstance(X, np.memmap) or isinstance(X.base, np.memmap)
    assert X.dtype == np.float32
    p1 = tmp_path / "one.npy"
    np.save(p1, np.arange(5.0))
    assert read_data(p1)[0].shape == (5, 1)


def test_read_errors(tmp_path):
    with pytest.raises(ValueError, match="empty: no data rows"):
        read_data(_write(tmp_path, "empty.csv", "\n# nothing\n"))
    with pytest.raises(ValueError, match="header but no data rows"):
        read_data(_write(tmp_path, "header.csv", "a,b\n"))
    p = tmp_path / "inf.npy"
    np.save(p, np.array([[1.0, np.inf]]))
    with pytest.raises(ValueError, match="contains infinity"):
        read_data(p)
    p = tmp_path / "trunc.npy"
    np.save(p, np.zeros((100, 3)))
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(ValueError, match="trunc.npy"):
        read_data(p)
    with pytest.raises(ValueError, match="has no array 'zz'"):
        np.savez(tmp_path / "a.npz", x=np.zeros((2, 2)))
        read_data(tmp_path / "a.npz", key="zz")
    with pytest.raises(ValueError, match="applies to .npz files only"):
        read_data(_write(tmp_path, "k.csv", "1,2\n"), key="x")


# ----------------------------------------------------------------------------
# data files: non-finite values, float32 overflow, numeric headers, damaged files


def _rewrite_member(src, dst, member, change):
    """Copy the zip archive ``src`` to ``dst`` with ``change(bytes)`` applied to
    ``member``; the CRCs are recomputed, so only the content is wrong."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        names = zin.namelist()
        assert member in names, names
        for name in names:
            data = zin.read(name)
            zout.writestr(name, change(data) if name == member else data)
    return dst


def _header_edit(old, new):
    def change(data):
        assert old in data, data[:128]
        return data.replace(old, new, 1)
    return change


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("x,y\n1,2\n3,inf\n5,6\n", ["line 3 (data row 1)", "non-finite value ('inf')",
                                    "column 'y'"]),
        ("x,y\n1,2\n-Infinity,4\n", ["line 3 (data row 1)", "non-finite value ('-Infinity')",
                                     "column 'x'"]),
        ("1,2\n3,4\n5,1e400\n", ["line 3 (data row 2)", "non-finite value ('1e400')",
                                 "column 'column 2'"]),
        ("x,y\n1,INF\n", ["line 2 (data row 0)", "non-finite"]),
    ],
)
def test_csv_infinity_is_non_finite_not_missing(tmp_path, capsys, text, fragments):
    path = _write(tmp_path, "inf.csv", text)
    with pytest.raises(ValueError) as info:
        read_data(path)
    assert "missing" not in str(info.value)
    assert main(["fit", path, "--model", "kmeans", "-k", "1", "-o",
                 str(tmp_path / "m.npz")]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err, *fragments)
    assert "missing" not in err


def test_float32_overflow(tmp_path, capsys):
    csv_path = _write(tmp_path, "big.csv", "1,2\n3,1e39\n")
    assert read_data(csv_path)[0][1, 1] == 1e39  # fine in float64
    assert main(["fit", csv_path, "--dtype", "float32", "--model", "kmeans", "-k", "1",
                 "-o", str(tmp_path / "m.npz")]) == 1
    assert_one_line_error(capsys.readouterr().err, "line 2 (data row 1)",
                          "too large for float32 ('1e39')", "--dtype float64")
    npy = tmp_path / "big.npy"
    np.save(npy, np.array([[1.0, 2.0], [-1e39, 4.0]]))
    with pytest.raises(ValueError, match=r"-1e\+39 \(row 1, column 1\) is too large for "
                                         r"float32; use --dtype float64"):
        read_data(npy, dtype="float32")
    X, _ = read_data(npy, dtype="float64")
    assert X[1, 0] == -1e39


@pytest.mark.parametrize(
    "text, warns",
    [
        ("0,1,2\n0.5,1.5,2.5\n1.5,2.5,3.5\n", True),      # pandas' default header
        ("1,2,3\n4,5,6\n7,8,9\n", True),                  # columns numbered 1..D
        ("1990,2000\n0.25,1.5\n3.75,2.0\n", True),        # years over float data
        ("3,1,2\n1,0,3\n5,5,5\n", False),                 # integer data
        ("0,1\n1,0\n0,1\n", False),                       # binary data, 2 columns
        ("0.5,1\n1.5,2.5\n3,4\n", False),                 # a float in the first row
        ("1.0,2.0\n1.5,2.5\n", False),
        ("a,b\n1.5,2.5\n3,4\n", False),                   # a real header
    ],
)
def test_numeric_first_line_header_warning(tmp_path, capsys, text, warns):
    path = _write(tmp_path, "data.csv", text)
    out = tmp_path / "m.npz"
    assert main(["fit", path, "--model", "kmeans", "-k", "1", "-q", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert out.exists()  # the fit still runs
    if warns:
        first = text.splitlines()[0]
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("fastem: warning: ")
        assert f"line 1 ({first}) was read as data" in lines[0]
        assert "header" in lines[0]
        # the line is kept as data
        assert load(out).n_features_in_ == len(first.split(","))
        with pytest.warns(UserWarning, match="looks like a header"):
            assert read_data(path)[0].shape[0] == len(text.splitlines())
    else:
        assert err == ""


def test_numeric_header_warning_shortens_wide_lines(tmp_path):
    header = ",".join(str(j) for j in range(40))
    body = ",".join("0.5" for _ in range(40))
    path = _write(tmp_path, "wide.csv", f"{header}\n{body}\n{body}\n")
    with pytest.warns(UserWarning, match=r"line 1 \(0,1,2,3,4,5,\.\.\.\) was read as data"):
        read_data(path)


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("empty.npy", b"", "not a valid .npy file"),
        ("empty.npz", b"", "not a valid .npz file"),
        ("garbage.npz", b"PK\x03\x04" + bytes(200), "not a valid .npz file"),
        ("empty.csv", b"", "is empty: no data rows"),
        ("blank.txt", b"\n\n   \n", "is empty: no data rows"),
    ],
    ids=["empty.npy", "empty.npz", "garbage.npz", "empty.csv", "blank.txt"],
)
def test_empty_and_garbage_data_files(tmp_path, capsys, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["fit", str(path), "--model", "kmeans", "-k", "1", "-o",
                 str(tmp_path / "m.npz")]) == 1
    assert_one_line_error(capsys.readouterr().err, name, fragment)


def test_corrupted_data_headers(tmp_path, capsys):
    good = tmp_path / "good.npy"
    np.save(good, np.ones((4, 2)))
    shape = b"'shape': (4, 2), }"
    cases = {
        "tokenize.npy": good.read_bytes().replace(shape, b"'shape': (4, 2, }"),
        "overflow.npy": good.read_bytes().replace(shape, b"'shape': (99999999999999999999, 2), }"),
        "toolong.npy": good.read_bytes().replace(shape, b"'shape': (4000000, 2), }"),
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    np.savez(tmp_path / "good.npz", x=np.ones((4, 2)))
    _rewrite_member(tmp_path / "good.npz", tmp_path / "tokenize.npz", "x.npy",
                    _header_edit(shape, b"'shape': (4, 2, }"))
    _rewrite_member(tmp_path / "good.npz", tmp_path / "huge.npz", "x.npy",
                    _header_edit(shape, b"'shape': (99999999999, 2), }"))
    for name in [*cases, "tokenize.npz", "huge.npz"]:
        assert main(["fit", str(tmp_path / name), "--model", "kmeans", "-k", "1", "-o",
                     str(tmp_path / "m.npz")]) == 1, name
        assert_one_line_error(capsys.readouterr().err, name)
    assert not (tmp_path / "m.npz").exists()


# ----------------------------------------------------------------------------
# one-line errors for every bad input; output paths checked before fitting


def _fit_model(tmp_path, model="kmeans"):
    path = tmp_path / f"{model}.npz"
    assert main(["fit", faithful_path(), "--model", model, "-k", "2", "-q",
                 "--random-state", "0", "-o", str(path)]) == 0
    return path


def test_select_k_huge_k_range_subprocess(tmp_path):
    # was a MemoryError traceback: the range was expanded before reading the data
    res = run_cli("-m", "fastem", "select-k", faithful_path(), "--k", "1:99999999999",
                  cwd=tmp_path)
    assert res.returncode == 1
    assert_one_line_error(res.stderr, "K=99999999999 is larger than the number of "
                                      "samples (272)", "--k")


@pytest.mark.parametrize(
    "k, fragment",
    [
        ("10:1", "'10:1' is empty: the start must not exceed the stop"),
        ("1:5:0", "the step of '1:5:0' must be >= 1"),
        ("1:5:-2", "the step of '1:5:-2' must be >= 1"),
        ("0:5", "K values must be >= 1"),
        ("-3", "K values must be >= 1"),
        (",", "no K values in ','"),
        ("1:2:3:4", "use K values like 1:10"),
        ("two", "use K values like 1:10"),
        ("1.5:3", "use K values like 1:10"),
    ],
)
def test_k_range_errors(capsys, k, fragment):
    assert main(["select-k", faithful_path(), "--k", k]) == 2
    assert_one_line_error(capsys.readouterr().err, "argument -k/--k", fragment)


def test_model_file_corrupted_npy_header_subprocess(tmp_path):
    # a header that numpy's tokenizer cannot parse: was "TokenError: ..."
    good = _fit_model(tmp_path)
    bad = _rewrite_member(good, tmp_path / "bad.npz", "attr.cluster_centers_.npy",
                          _header_edit(b"'shape': (2, 2), }", b"'shape': (2, 2, }"))
    for command in (["predict", str(bad), faithful_path()], ["info", str(bad)]):
        res = run_cli("-m", "fastem", *command, cwd=tmp_path)
        assert res.returncode == 1
        assert_one_line_error(res.stderr, "bad.npz' is not a valid fastem model file")


def test_csv_as_model_subprocess(tmp_path):
    # was numpy's "This file contains pickled (object) data..."
    res = run_cli("-m", "fastem", "predict", faithful_path(), faithful_path(), cwd=tmp_path)
    assert res.returncode == 1
    assert_one_line_error(res.stderr, "is not a valid fastem model file",
                          "not an .npz archive")
    assert "pickle" not in res.stderr


def _damaged_models(tmp_path):
    """Model files damaged in various ways, each paired with a fragment of
    the expected error."""
    good = _fit_model(tmp_path)
    member = "attr.cluster_centers_.npy"
    shape = b"'shape': (2, 2), }"
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros((2, 2)))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 3)
    no_meta = tmp_path / "nometa.npz"
    np.savez(no_meta, x=np.zeros(3))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:600])
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    (tmp_path / "adir.npz").mkdir()
    edits = {
        "tokenize": _header_edit(shape, b"'shape': (2, 2, }"),
        "syntax": _header_edit(shape, b"'shape': (2 2), }"),
        "keys": _header_edit(b"'descr'", b"'descX'"),
        "dtype": _header_edit(b"'<f8'", b"'<zz'"),
        "object": _header_edit(b"'<f8'", b"'|O' "),
        "huge": _header_edit(shape, b"'shape': (2, 9999999999999999), }"),
        "negative": _header_edit(shape, b"'shape': (2, -2), }"),
        "short": lambda data: data[:100],
    }
    cases = {name: (_rewrite_member(good, tmp_path / f"{name}.npz", member, change),
                    "is not a valid fastem model file")
             for name, change in edits.items()}
    cases["metadata"] = (
        _rewrite_member(good, tmp_path / "metadata.npz", "__fastem__.npy",
                        _header_edit(b"'descr'", b"'descX'")),
        "is not a valid fastem model file")
    cases.update({
        "npy": (npy, "is not a valid fastem model file"),
        "garbage": (garbage, "is not a valid fastem model file"),
        "nometa": (no_meta, "is not a valid fastem model file"),
        "truncated": (truncated, "is not a valid fastem model file"),
        "empty": (empty, "is not a valid fastem model file"),
        "dir": (tmp_path / "adir.npz", "is a directory, not a model file"),
        "missing": (tmp_path / "missing.npz", "no such model file"),
    })
    return cases


def test_damaged_model_files_one_line(tmp_path, capsys):
    cases = _damaged_models(tmp_path)
    assert len(cases) == 16
    for name, (path, fragment) in cases.items():
        for argv in (["predict", str(path), faithful_path()], ["info", str(path)]):
            assert main(argv) == 1, name
            err = capsys.readouterr().err
            assert_one_line_error(err, fragment)
            assert os.path.basename(path) in err


def test_damaged_model_debug_shows_cause(tmp_path, capsys):
    bad = _rewrite_member(_fit_model(tmp_path), tmp_path / "bad.npz",
                          "attr.cluster_centers_.npy",
                          _header_edit(b"'shape': (2, 2), }", b"'shape': (2, 2, }"))
    with pytest.raises(ValueError, match="not a valid fastem model file") as info:
        main(["info", str(bad), "--debug"])
    assert info.value.__cause__ is not None  # the original exception is kept


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["fit", "{data}", "--model", "gmm", "-k", "2", "-o", "{tmp}"],
         "is a directory; give a file name"),
        (["fit", "{data}", "--model", "gmm", "-k", "2", "-o", "{tmp}/no/m.npz"],
         "the directory '{tmp}/no' does not exist"),
        (["fit", "{data}", "--model", "gmm", "-k", "2", "-o", "{data}/m.npz"],
         "is not a directory"),
        (["fit", "{data}", "--model", "gmm", "-k", "2", "-o", ""], "the file name is empty"),
        (["fit", "{data}", "--model", "gmm", "-k", "2", "-o", "{data}"],
         "is the input file"),
        (["fit", "{data}", "--model", "gmm", "-k", "2", "-o", os.devnull],
         "is not a regular file"),
        (["predict", "{model}", "{data}", "-o", "{tmp}/labels.xlsx"],
         "unsupported file type '.xlsx'; use one of .npy, .csv"),
        (["predict", "{model}", "{data}", "-o", "{tmp}"], "is a directory"),
        (["predict", "{model}", "{data}", "-o", "{data}"], "is the input file"),
        (["predict", "{model}", "{data}", "-o", "{tmp}/no/l.npy"], "does not exist"),
        (["select-k", "{data}", "--k", "1:3", "--plot", "{tmp}"], "is a directory"),
        (["select-k", "{data}", "--k", "1:3", "--plot", "{tmp}/no/k.png"], "does not exist"),
        (["select-k", "{data}", "--k", "1:3", "--plot", "{tmp}/k.xyz"],
         "unsupported file type '.xyz'"),
        (["select-k", "{data}", "--k", "1:3", "--plot", "{tmp}/k"],
         "unsupported file type '(no extension)'"),
        (["demo", "-o", "{tmp}/no/demo.png"], "does not exist"),
        (["demo", "-o", "{tmp}/demo.xyz"], "unsupported file type '.xyz'"),
    ],
)
def test_output_paths_checked_before_fitting(tmp_path, faithful_csv, monkeypatch, capsys,
                                             argv, fragment):
    if any(a in ("--plot", "demo") for a in argv):
        pytest.importorskip("matplotlib")
    model = _fit_model(tmp_path)
    subs = {"tmp": str(tmp_path), "data": str(faithful_csv), "model": str(model)}
    argv = [a.format(**subs) for a in argv]
    fragment = fragment.format(**subs)
    before = sorted(p.name for p in tmp_path.iterdir())

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before checking the output path")

    for cls in (fastem.KMeans, fastem.GaussianMixture):
        monkeypatch.setattr(cls, "fit", no_fit)
        monkeypatch.setattr(cls, "predict", no_fit)
    assert main(argv) == 1
    # no progress line either: the check comes before reading the data
    assert_one_line_error(capsys.readouterr().err, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _without_root_privileges():
    """Command prefix under which file permissions apply, even to root."""
    if not hasattr(os, "geteuid"):
        pytest.skip("no POSIX permissions")
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions do not apply")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]


def test_unwritable_and_unreadable_paths(tmp_path, faithful_csv):
    prefix = _without_root_privileges()
    model = _fit_model(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    read_only = tmp_path / "read-only.npy"
    read_only.write_bytes(b"")
    unreadable_data = tmp_path / "secret.csv"
    unreadable_data.write_text("1,2\n3,4\n")
    unreadable_model = tmp_path / "secret.npz"
    shutil.copy(model, unreadable_model)
    locked.chmod(0o500)
    read_only.chmod(0o444)
    unreadable_data.chmod(0)
    unreadable_model.chmod(0)
    fit = ["fit", "--model", "kmeans", "-k", "2", "--random-state", "0"]
    cases = [
        ([*fit, str(faithful_csv), "-o", str(locked / "m.npz")],
         ["cannot write in", "locked' (permission denied)"]),
        ([*fit, str(unreadable_data), "-o", str(tmp_path / "m.npz")],
         ["cannot read", "secret.csv': permission denied"]),
        (["predict", str(unreadable_model), str(faithful_csv)],
         ["cannot read", "secret.npz': permission denied"]),
        (["predict", str(model), str(faithful_csv), "-o", str(read_only)],
         ["the file exists and is read-only"]),
    ]
    env = dict(os.environ, PYTHONPATH=FASTEM_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        for argv, fragments in cases:
            res = subprocess.run([*prefix, sys.executable, "-m", "fastem", *argv],
                                 cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=300)
            assert res.returncode == 1, res.stderr
            assert_one_line_error(res.stderr, *fragments)
    finally:
        locked.chmod(0o700)
        read_only.chmod(0o644)
        unreadable_data.chmod(0o600)
        unreadable_model.chmod(0o600)


@pytest.mark.parametrize("model", ["kmeans", "gmm"])
def test_tol_zero_accepted(tmp_path, model, capsys):
    out = tmp_path / "m.npz"
    assert main(["fit", faithful_path(), "--model", model, "-k", "2", "-q", "--tol", "0",
                 "--max-iter", "5", "--random-state", "0", "-o", str(out)]) == 0
    est = load(out)
    assert est.tol == 0.0
    assert est.n_iter_ <= 5


@pytest.mark.parametrize(
    "option, value, fragment",
    [
        ("--tol", "-1", "expected a finite number >= 0, got '-1'"),
        ("--tol", "nan", "expected a finite number >= 0, got 'nan'"),
        ("--tol", "inf", "expected a finite number >= 0, got 'inf'"),
        ("--tol", "1e400", "expected a finite number >= 0"),
        ("--tol", "small", "expected a number, got 'small'"),
        ("--n-threads", "0", "0 threads"),
        ("--n-threads", "two", "expected an integer, got 'two'"),
        ("--n-init", "99999999999999999999", "too large (at most 2147483647)"),
        ("--max-iter", "99999999999999999999", "too large (at most 2147483647)"),
        ("--max-iter", "-1", "expected a positive integer"),
        ("-k", "99999999999999999999", "too large"),
        ("-k", "2.5", "expected a positive integer, got '2.5'"),
        ("--random-state", "-1", "seed must be in [0, 2**32)"),
        ("--random-state", "99999999999999999999", "seed must be in [0, 2**32)"),
    ],
)
def test_bad_numbers_are_usage_errors(tmp_path, capsys, option, value, fragment):
    argv = ["fit", faithful_path(), "--model", "gmm", "-k", "2", "-o", str(tmp_path / "m.npz")]
    argv += [f"{option}={value}"]
    assert main(argv) == 2
    assert_one_line_error(capsys.readouterr().err, f"argument {option}", fragment)


def test_bad_n_runs(capsys):
    assert main(["select-k", faithful_path(), "--n-runs", "1"]) == 1
    assert_one_line_error(capsys.readouterr().err, "--n-runs must be at least 2")
    assert main(["select-k", faithful_path(), "--n-runs", "99999999999"]) == 2
    assert_one_line_error(capsys.readouterr().err, "too large")


@pytest.mark.parametrize("threads", ["100000", "99999999999999999999",
                                     "-99999999999999999999", "-1"])
def test_n_threads_out_of_range_is_capped(tmp_path, capsys, threads):
    from fastem._validation import available_cpus

    out = tmp_path / "m.npz"
    assert main(["fit", faithful_path(), "--model", "gmm", "-k", "2", "-q",
                 f"--n-threads={threads}", "-o", str(out)]) == 0
    n = load(out).n_threads
    assert n == -1 if threads == "-1" else 1 <= abs(n) <= available_cpus()
    assert main(["predict", str(out), faithful_path(), f"--n-threads={threads}",
                 "-o", str(tmp_path / "l.npy")]) == 0
    assert np.load(tmp_path / "l.npy").shape == (272,)


def test_internal_errors_are_named_as_bugs(monkeypatch, capsys):
    # an exception that bad input cannot cause is reported as a fastem bug
    # (still one line), and --debug shows it
    import fastem._app.select_k

    def broken(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'shape'")

    monkeypatch.setattr(fastem._app.select_k, "select_k", broken)
    assert main(["select-k", faithful_path(), "-q"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert "internal error (AttributeError:" in lines[0] and "--debug" in lines[0]
    with pytest.raises(AttributeError):
        main(["select-k", faithful_path(), "-q", "--debug"])


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    import fastem._app.select_k

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fastem._app.select_k, "select_k", interrupted)
    assert main(["select-k", faithful_path(), "-q"]) == 130
    assert capsys.readouterr().err == "fastem: interrupted\n"
