import numpy as np
import pytest

from fastem import SelectKResult, select_k
from fastem._app.io import load_faithful
from fastem._app.select_k import elbow_k


@pytest.fixture(scope="module")
def blobs():
    """Four well-separated blobs at the corners of a square (known K=4).

    The symmetric layout makes K=2 and K=3 ambiguous (several equally good
    partitions), as real structure should be for the stability method.
    """
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    return np.concatenate([c + rng.normal(size=(100, 2)) for c in centres])


@pytest.fixture(scope="module")
def faithful():
    return load_faithful()[0]


@pytest.fixture(scope="module")
def blobs_result(blobs):
    return select_k(blobs, range(1, 8), n_runs=6, random_state=0, n_threads=1)


def test_blobs_all_methods_recover_k(blobs_result):
    r = blobs_result
    # elbow, information criterion (BIC) and stability all find K=4; AIC,
    # whose penalty does not grow with n, may over-fit
    assert r.recommended["elbow"] == 4
    assert r.recommended["bic"] == 4
    assert r.recommended["stability"] == 4
    assert r.recommended["aic"] >= 4
    np.testing.assert_array_equal(r.k, np.arange(1, 8))
    assert np.all(np.isfinite(r.objective)) and np.all(np.diff(r.objective[:4]) < 0)
    # K=4 is perfectly stable, K=2, 3 are not
    assert r.stability_mean[3] == pytest.approx(1.0)
    assert r.stability_std[3] == pytest.approx(0.0)
    assert r.stability_mean[1] < 0.9 and r.stability_mean[2] < 0.9


def test_blobs_gmm_stability_float32(blobs):
    r = select_k(blobs.astype(np.float32), [2, 3, 4, 5], methods=["bic", "stability"],
                 model="gmm", covariance_type="diag", n_runs=5, random_state=0, n_threads=1)
    assert r.recommended == {"bic": 4, "stability": 4}
    assert np.isnan(r.objective).all() and np.isnan(r.aic).all()


def test_faithful_bic_and_stability_recommend_two(faithful):
    # raw, unscaled data, as in the lectures
    r = select_k(faithful, range(1, 7), methods=("bic", "stability"), n_runs=8,
                 random_state=0, n_threads=1)
    assert r.recommended["bic"] == 2
    assert r.recommended["stability"] == 2
    assert r.stability_mean[1] == pytest.approx(1.0)


def test_faithful_gmm_stability_recommends_two(faithful):
    r = select_k(faithful, range(1, 6), methods=("stability",), model="gmm",
                 n_runs=6, random_state=1, n_threads=1)
    assert r.recommended["stability"] == 2


def test_reproducible(blobs):
    a = select_k(blobs, [2, 4], n_runs=3, random_state=5, n_threads=1)
    b = select_k(blobs, [2, 4], n_runs=3, random_state=5, n_threads=1)
    for name in ("objective", "bic", "aic", "stability_mean", "stability_std"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_table_str_markdown(blobs_result):
    r = blobs_result
    assert isinstance(r, SelectKResult)
    rows = r.table
    assert [row["k"] for row in rows] == list(range(1, 8))
    assert set(rows[0]) == {"k", "objective", "bic", "aic", "stability_mean",
                            "stability_std"}
    assert rows[3]["bic"] == r.bic[3]
    text = str(r)
    assert "recommended K: elbow 4, BIC 4, AIC " in text
    assert text.endswith(", stability 4")
    line4 = [ln for ln in text.splitlines() if ln.strip().startswith("4 ")][0]
    assert line4.count("*") == 3 + (r.recommended["aic"] == 4)
    md = r.to_markdown()
    assert md.splitlines()[0] == "| K | objective J | BIC | AIC | stability | ± sd |"
    assert md.count("\\*") == 4


def test_subset_of_methods(blobs):
    r = select_k(blobs, range(1, 9), methods="elbow", n_init=2, random_state=0, n_threads=1)
    assert r.methods == ("elbow",)
    assert r.recommended == {"elbow": 4}
    assert set(r.table[0]) == {"k", "objective"}
    assert np.isnan(r.bic).all() and np.isnan(r.stability_mean).all()


def test_plot(tmp_path, blobs_result):
    pytest.importorskip("matplotlib")
    path = tmp_path / "k.png"
    fig = blobs_result.plot(path)
    assert path.stat().st_size > 10_000
    assert len(fig.axes) == 3
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig2, axes = plt.subplots(1, 3)
    assert blobs_result.plot(ax=axes) is fig2
    with pytest.raises(ValueError, match="needs 3 Axes"):
        blobs_result.plot(ax=axes[0])
    plt.close("all")


def test_plot_without_matplotlib(monkeypatch, blobs_result):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "fastem\[plot\]"'):
        blobs_result.plot()


def test_elbow_rule():
    k = np.arange(1, 9)
    # sharp knee at 3
    assert elbow_k(k, [100, 50, 10, 8, 6, 5, 4, 3]) == 3
    # scale invariance
    assert elbow_k(k * 10, 1e6 * np.array([100, 50, 10, 8, 6, 5, 4, 3])) == 30
    # straight line and concave curves: no elbow
    assert elbow_k(k, 100 - 10 * k) is None
    assert elbow_k(k, 100 - k**2) is None
    # too few points, flat curve
    assert elbow_k([1, 2], [5, 1]) is None
    assert elbow_k(k, np.ones(8)) is None
    # NaN ignored
    assert elbow_k(k, [100, np.nan, 10, 8, 6, 5, 4, 3]) == 3


def test_verbose_progress(blobs, capsys):
    select_k(blobs, [1, 2], n_runs=2, random_state=0, verbose=1)
    err = capsys.readouterr().err
    assert "K=1" in err and "K=2" in err


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"k_range": [1, 500]}, ValueError, "only 400 samples"),
        ({"k_range": []}, ValueError, "k_range is empty"),
        ({"k_range": [0, 2]}, ValueError, ">= 1"),
        ({"k_range": [1.5]}, TypeError, "iterable of ints"),
        ({"methods": ["elbow", "gap"]}, ValueError, "methods must be one of"),
        ({"model": "dbscan"}, ValueError, "model must be one of"),
        ({"covariance_type": "round"}, ValueError, "covariance_type"),
        ({"n_runs": 1}, ValueError, "n_runs must be >= 2"),
    ],
)
def test_errors(blobs, kwargs, error, match):
    with pytest.raises(error, match=match):
        select_k(blobs, **{"k_range": [1, 2], "n_threads": 1, **kwargs})
