"""Fitted state that cannot corrupt memory.

Every method that hands fitted arrays to compiled code takes K and D from
those arrays and checks them first; ``set_params`` after ``fit`` changes
nothing ``predict`` computes; ``fastem.load`` runs the same checks, so a
crafted or corrupted model file gives one ``ValueError``. The mutation fuzz
at the end loads and uses many altered model files in a subprocess, where a
crash would show as a signal instead of taking the test run down.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastem
from fastem import GaussianMixture, KMeans
from fastem._validation import available_cpus, effective_n_threads

COV_TYPES = ["full", "tied", "diag", "spherical"]


def _data(n=120, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0, 0], [6, 6, 0], [0, 6, 6]])[:, :d]
    return centres[rng.integers(3, size=n)] + rng.normal(size=(n, d))


def _gm_outputs(gm, X):
    return (gm.predict(X), gm.predict_proba(X), gm.score_samples(X), gm.score(X),
            gm.bic(X), gm.aic(X), gm.sample(5)[0])


@pytest.mark.parametrize("cov", COV_TYPES)
def test_set_params_after_fit_changes_no_prediction(cov):
    X = _data()
    gm = GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    before = _gm_outputs(gm, X)
    other = "diag" if cov != "diag" else "full"
    gm.set_params(n_components=1000, covariance_type=other)
    for a, b in zip(before, _gm_outputs(gm, X)):
        np.testing.assert_array_equal(a, b)

    km = KMeans(3, random_state=0).fit(X)
    labels, dist, score = km.predict(X), km.transform(X), km.score(X)
    km.set_params(n_clusters=1000)
    np.testing.assert_array_equal(km.predict(X), labels)
    np.testing.assert_array_equal(km.transform(X), dist)
    assert km.score(X) == score


def _corrupt(est, name, value):
    setattr(est, name, value)
    return est


@pytest.mark.parametrize("name,value,match", [
    ("cluster_centers_", np.zeros((3, 1)), "cluster_centers_ has shape"),
    ("cluster_centers_", np.zeros((3, 3), dtype=np.int64), "float32 or float64"),
    ("cluster_centers_", np.full((3, 3), np.nan), "NaN"),
    ("cluster_centers_", np.zeros(3), "2-D"),
    ("cluster_centers_", [[0.0, 0.0, 0.0]], "2-D"),
    ("n_features_in_", 5, "cluster_centers_ has shape"),
    ("n_features_in_", "3", "n_features_in_ must be an int"),
])
def test_inconsistent_kmeans_state_raises(name, value, match):
    X = _data()
    km = _corrupt(KMeans(3, random_state=0).fit(X), name, value)
    for method in (km.predict, km.transform, km.score):
        with pytest.raises(ValueError, match=match):
            method(X)
    with pytest.raises(ValueError, match=match):
        km.save(os.devnull)


def _gm_corruptions():
    K, D = 3, 3
    return [
        ("full", "means_", np.zeros((K, 1)), "means_ has shape"),
        ("full", "weights_", np.full(7, 1 / 7), "means_ has shape"),
        ("full", "weights_", np.array([0.5, 0.6, -0.1]), "weights_ must be >= 0"),
        ("full", "weights_", np.array([0.5, 0.2, 0.2]), "sum to 1"),
        ("full", "precisions_cholesky_", np.zeros((K, D, 1)), "precisions_cholesky_ has shape"),
        ("full", "precisions_cholesky_", np.ones((K, D, D)), "triangular"),
        ("full", "precisions_cholesky_", -np.eye(D)[None].repeat(K, 0), "positive diagonal"),
        ("tied", "precisions_cholesky_", np.eye(D)[None], "precisions_cholesky_ has shape"),
        ("diag", "precisions_cholesky_", -np.ones((K, D)), "positive"),
        ("spherical", "precisions_cholesky_", np.array([1.0, np.inf, 1.0]), "NaN or infinity"),
        ("diag", "means_", np.zeros((K, D), dtype=np.complex128), "float32 or float64"),
        ("full", "n_features_in_", 4, "means_ has shape"),
    ]


@pytest.mark.parametrize("cov,name,value,match", _gm_corruptions())
def test_inconsistent_mixture_state_raises(cov, name, value, match):
    X = _data()
    gm = _corrupt(GaussianMixture(3, covariance_type=cov, random_state=0).fit(X), name, value)
    for method in (gm.predict, gm.predict_proba, gm.score_samples, gm.score, gm.bic, gm.aic):
        with pytest.raises(ValueError, match=match):
            method(X)
    with pytest.raises(ValueError, match=match):
        gm.sample(3)
    with pytest.raises(ValueError, match=match):
        gm.save(os.devnull)


def test_sample_checks_covariances():
    gm = GaussianMixture(2, covariance_type="full", random_state=0).fit(_data())
    gm.covariances_ = -gm.covariances_
    with pytest.raises(ValueError, match="positive definite"):
        gm.sample(3)


def test_n_threads_is_capped_to_the_allowed_cpus():
    limit = effective_n_threads(None)
    assert limit <= available_cpus()
    for n in (limit, limit + 1, 1000, 100_000):
        assert effective_n_threads(n) == limit
    assert effective_n_threads(-1) == min(limit, available_cpus())
    assert effective_n_threads(-10**6) == 1
    with pytest.raises(ValueError, match="not 0"):
        effective_n_threads(0)
    X = _data(n=500)
    for est in (KMeans(3, random_state=0), GaussianMixture(3, random_state=0)):
        ref = est.set_params(n_threads=1).fit(X).predict(X)
        got = est.set_params(n_threads=100_000).fit(X).predict(X)
        np.testing.assert_array_equal(ref, got)


# ----------------------------------------------------------------------
# model-file mutation fuzz

_FUZZ_SCRIPT = textwrap.dedent(r'''
    import io, json, sys, zipfile
    import numpy as np
    import fastem

    LOG2PI = np.log(2 * np.pi)

    def reference_labels(est, X):
        """numpy reference of predict from the loaded arrays (None: a tie)."""
        if isinstance(est, fastem.KMeans):
            c = est.cluster_centers_.astype(np.float64)
            score = -((X[:, None, :] - c[None]) ** 2).sum(-1)
        else:
            cov = est.covariance_type
            w, mu = est.weights_.astype(np.float64), est.means_.astype(np.float64)
            pc = est.precisions_cholesky_.astype(np.float64)
            K, D = mu.shape
            z = X[:, None, :] - mu[None]
            with np.errstate(all="ignore"):
                if cov == "full":
                    y = np.einsum("nkd,kde->nke", z, pc)
                    logdet = np.log(np.diagonal(pc, axis1=1, axis2=2)).sum(1)
                elif cov == "tied":
                    y = z @ pc
                    logdet = np.log(np.diag(pc)).sum()
                elif cov == "diag":
                    y = z * pc[None]
                    logdet = np.log(pc).sum(1)
                else:
                    y = z * pc[None, :, None]
                    logdet = D * np.log(pc)
                score = np.log(w) + logdet - 0.5 * D * LOG2PI - 0.5 * (y ** 2).sum(-1)
        order = np.sort(score, axis=1)
        margin = order[:, -1] - order[:, -2] if score.shape[1] > 1 else np.inf
        labels = np.argmax(score, axis=1)
        clear = np.isfinite(order[:, -1]) & (margin > 1e-6 * (1 + np.abs(order[:, -1])))
        return labels, clear

    def use(path, X):
        est = fastem.load(path)
        labels = est.predict(X)
        if isinstance(est, fastem.KMeans):
            est.transform(X); est.score(X)
        else:
            est.predict_proba(X); est.score_samples(X); est.score(X)
            est.bic(X); est.aic(X); est.sample(4)
        ref, clear = reference_labels(est, X.astype(np.float64))
        if not np.array_equal(labels[clear], ref[clear]):
            return "WRONG prediction"
        return "ok"

    X = np.load(sys.argv[2])
    paths = sys.argv[3:]
    for path in paths:
        print("start", path, flush=True)
        try:
            outcome = use(path, X)
        except ValueError as exc:
            outcome = "valueerror"
        except Exception as exc:
            outcome = f"WRONG {type(exc).__name__}: {exc}"
        print(outcome, path, flush=True)
    print("done", len(paths), flush=True)
''')


def _read_npz(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write_npz(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _array_mutations(arr, rng):
    """Altered versions of one array: shapes, dtypes and single values."""
    out = [arr[:-1], np.concatenate([arr, arr[:1]]), arr.reshape(-1), arr[None],
           np.asarray(arr.ravel()[0]), arr.T.copy(), np.zeros((0,) + arr.shape[1:])]
    out += [arr.astype(t) for t in (np.int64, np.float16, np.complex128, bool, "U3")]
    for value in (np.nan, np.inf, -np.inf, -1.0, 0.0, 1e300, -1e300, 1e-300):
        bad = arr.astype(np.float64).copy()
        bad.flat[int(rng.integers(bad.size))] = value
        with np.errstate(over="ignore"):  # 1e300 becomes inf in float32
            out.append(bad.astype(arr.dtype) if arr.dtype.kind == "f" else bad)
    return out


def _metadata_mutations(meta):
    out = []
    params = dict(meta["params"])
    for key, values in {
        "n_components": [7, 0, -1, "3", None, 10**12],
        "n_clusters": [7, 0, "3"],
        "covariance_type": ["full", "tied", "diag", "spherical", "bogus", 3],
        "n_threads": [100_000, 0, -100, "x", 2.5],
    }.items():
        if key in params:
            for v in values:
                out.append({**meta, "params": {**params, key: v}})
    attrs = dict(meta["attributes"])
    for v in (7, 1, 0, -3, "3", None, True, 2.0, [3]):
        out.append({**meta, "attributes": {**attrs, "n_features_in_": v}})
    out.append({**meta, "attributes": {k: v for k, v in attrs.items() if k != "n_features_in_"}})
    for name in meta["array_attributes"]:
        out.append({**meta, "array_attributes": [a for a in meta["array_attributes"] if a != name]})
    out.append({**meta, "class": "KMeans" if meta["class"] != "KMeans" else "GaussianMixture"})
    out.append({**meta, "class": "Pipeline"})
    out.append({**meta, "format_version": 99})
    return out


def _make_mutants(tmp_path):
    rng = np.random.default_rng(0)
    X = _data(n=60)
    models = [KMeans(3, random_state=0).fit(X), KMeans(3, random_state=0).fit(X.astype(np.float32))]
    models += [GaussianMixture(3, covariance_type=c, random_state=0).fit(X) for c in COV_TYPES]
    models.append(GaussianMixture(3, covariance_type="full", random_state=0)
                  .fit(X.astype(np.float32)))
    paths = []

    def add(arrays, tag):
        path = tmp_path / f"m{len(paths):04d}-{tag}.npz"
        _write_npz(path, arrays)
        paths.append(str(path))

    for i, model in enumerate(models):
        base_path = tmp_path / f"base{i}.npz"
        model.save(base_path)
        arrays = _read_npz(base_path)
        meta = json.loads(str(arrays["__fastem__"][()]))
        add(arrays, "unchanged")
        for key in [k for k in arrays if k.startswith("attr.")]:
            for bad in _array_mutations(arrays[key], rng):
                add({**arrays, key: bad}, key)
        for bad_meta in _metadata_mutations(meta):
            add({**arrays, "__fastem__": np.array(json.dumps(bad_meta))}, "meta")
        # byte-level damage: flipped bytes and truncation
        raw = base_path.read_bytes()
        for j in range(25):
            data = bytearray(raw)
            for pos in rng.integers(len(data), size=int(rng.integers(1, 4))):
                data[pos] ^= int(rng.integers(1, 256))
            path = tmp_path / f"b{i}-{j}.npz"
            path.write_bytes(bytes(data))
            paths.append(str(path))
        for cut in (10, len(raw) // 2, len(raw) - 5):
            path = tmp_path / f"t{i}-{cut}.npz"
            path.write_bytes(raw[:cut])
            paths.append(str(path))
    csv = tmp_path / "data.csv"
    np.savetxt(csv, X, delimiter=",")
    paths.append(str(csv))
    return X, paths


def test_model_file_mutation_fuzz(tmp_path):
    X, paths = _make_mutants(tmp_path)
    x_path = tmp_path / "X.npy"
    np.save(x_path, X)
    script = tmp_path / "fuzz.py"
    script.write_text(_FUZZ_SCRIPT)
    # the subprocess imports the same fastem as this process
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(fastem.__file__))}
    proc = subprocess.run([sys.executable, str(script), "run", str(x_path), *paths],
                          capture_output=True, text=True, timeout=600, env=env)
    lines = proc.stdout.splitlines()
    started = [line.split(" ", 1)[1] for line in lines if line.startswith("start ")]
    assert proc.returncode == 0, (
        f"fuzz process died with status {proc.returncode} while using "
        f"{started[-1] if started else '?'}:\n{proc.stderr[-2000:]}")
    wrong = [line for line in lines if line.startswith("WRONG")]
    assert not wrong, "\n".join(wrong[:20])
    outcomes = [line.split(" ", 1)[0] for line in lines
                if line.split(" ", 1)[0] in ("ok", "valueerror")]
    assert len(outcomes) == len(paths) and lines[-1] == f"done {len(paths)}"
    # the unchanged files load and predict; most mutants are refused
    assert outcomes.count("ok") >= 7
    assert outcomes.count("valueerror") > len(paths) // 2
    assert len(paths) > 800
