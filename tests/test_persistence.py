import json
import zipfile

import numpy as np
import pytest

import fastem
from fastem import GaussianMixture, KMeans, NotFittedError, load
from fastem._app.persistence import FORMAT_VERSION, METADATA_KEY, read_metadata


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 1.0], [0.0, 6.0, -1.0]])
    X = np.concatenate([c + rng.normal(size=(150, 3)) for c in centres])
    return X


@pytest.fixture(scope="module")
def kmeans(data):
    return KMeans(n_clusters=3, random_state=0).fit(data)


def _rewrite(path, out, edit_metadata=None, drop=None):
    """Copy a model file with its metadata edited / an entry dropped."""
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    meta = json.loads(str(entries[METADATA_KEY][()]))
    if edit_metadata is not None:
        edit_metadata(meta)
    entries[METADATA_KEY] = np.array(json.dumps(meta))
    if drop is not None:
        del entries[drop]
    with open(out, "wb") as fh:
        np.savez(fh, **entries)
    return out


def _fitted(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}


def _assert_same_fitted(a, b):
    fa, fb = _fitted(a), _fitted(b)
    assert set(fa) == set(fb)
    for name, value in fa.items():
        other = fb[name]
        if isinstance(value, np.ndarray):
            assert isinstance(other, np.ndarray), name
            assert other.dtype == value.dtype, name
            np.testing.assert_array_equal(other, value, err_msg=name)
        else:
            assert other == value, name


def test_kmeans_round_trip(tmp_path, data, kmeans):
    path = tmp_path / "km.npz"
    kmeans.save(path)
    loaded = load(path)
    assert type(loaded) is type(kmeans)
    assert loaded.get_params() == kmeans.get_params()
    _assert_same_fitted(kmeans, loaded)
    np.testing.assert_array_equal(loaded.predict(data), kmeans.predict(data))
    np.testing.assert_array_equal(loaded.transform(data), kmeans.transform(data))
    assert loaded.score(data) == kmeans.score(data)


def test_kmeans_float32_round_trip(tmp_path, data):
    X = data.astype(np.float32)
    km = KMeans(n_clusters=3, random_state=1).fit(X)
    km.save(tmp_path / "km32.npz")
    loaded = load(tmp_path / "km32.npz")
    assert loaded.cluster_centers_.dtype == km.cluster_centers_.dtype
    np.testing.assert_array_equal(loaded.predict(X), km.predict(X))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_round_trip(tmp_path, data, covariance_type):
    gmm = GaussianMixture(n_components=3, covariance_type=covariance_type,
                          random_state=0).fit(data)
    path = tmp_path / f"gmm-{covariance_type}.npz"
    gmm.save(path)
    loaded = load(path)
    assert loaded.get_params() == gmm.get_params()
    _assert_same_fitted(gmm, loaded)
    np.testing.assert_array_equal(loaded.predict(data), gmm.predict(data))
    np.testing.assert_array_equal(loaded.predict_proba(data), gmm.predict_proba(data))
    np.testing.assert_array_equal(loaded.score_samples(data), gmm.score_samples(data))
    assert loaded.bic(data) == gmm.bic(data)


def test_array_params_round_trip(tmp_path, data):
    init = data[[0, 200, 400]].copy()
    km = KMeans(n_clusters=3, init=init, n_init=1).fit(data)
    km.save(tmp_path / "km.npz")
    loaded = load(tmp_path / "km.npz")
    np.testing.assert_array_equal(loaded.init, init)
    np.testing.assert_array_equal(loaded.predict(data), km.predict(data))

    gmm = GaussianMixture(n_components=3, means_init=init, weights_init=np.full(3, 1 / 3),
                          random_state=0).fit(data)
    gmm.save(tmp_path / "gmm.npz")
    loaded = load(tmp_path / "gmm.npz")
    np.testing.assert_array_equal(loaded.means_init, init)
    np.testing.assert_array_equal(loaded.weights_init, np.full(3, 1 / 3))
    np.testing.assert_array_equal(loaded.predict_proba(data), gmm.predict_proba(data))


def test_file_format_is_npz_with_json_metadata(tmp_path, kmeans):
    path = tmp_path / "model.fastem"  # any name: no extension added
    assert kmeans.save(path) == str(path)
    assert path.exists() and not (tmp_path / "model.fastem.npz").exists()
    with np.load(path, allow_pickle=False) as f:  # nothing pickled
        assert "attr.cluster_centers_" in f.files
        meta = json.loads(str(f[METADATA_KEY][()]))
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["fastem_version"] == fastem.__version__
    assert meta["class"] == "KMeans"
    assert meta["params"]["n_clusters"] == 3
    assert "cluster_centers_" in meta["array_attributes"]
    assert meta == read_metadata(path)


def test_generator_random_state_is_dropped_with_warning(tmp_path, data):
    km = KMeans(n_clusters=2, random_state=np.random.default_rng(0)).fit(data)
    with pytest.warns(UserWarning, match="random_state"):
        km.save(tmp_path / "km.npz")
    loaded = load(tmp_path / "km.npz")
    assert loaded.random_state is None
    np.testing.assert_array_equal(loaded.predict(data), km.predict(data))


def test_save_unfitted_raises(tmp_path):
    with pytest.raises(NotFittedError):
        KMeans(n_clusters=2).save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load(tmp_path / "nope.npz")


def test_load_not_a_zip(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a model" * 10)
    with pytest.raises(ValueError, match="not a valid fastem model file"):
        load(path)


def test_load_truncated(tmp_path, kmeans):
    path = tmp_path / "km.npz"
    kmeans.save(path)
    raw = path.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 10, 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="not a valid fastem model file"):
            load(bad)


def test_load_corrupted_member(tmp_path, kmeans):
    path = tmp_path / "km.npz"
    kmeans.save(path)
    raw = bytearray(path.read_bytes())
    # flip bytes inside the stored cluster centres: the zip CRC catches it
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("attr.cluster_centers_.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + info.compress_size - 8] ^= 0xFF
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupted"):
        load(bad)


def test_load_newer_format_version(tmp_path, kmeans):
    path = tmp_path / "km.npz"
    kmeans.save(path)

    def bump(meta):
        meta["format_version"] = FORMAT_VERSION + 1
        meta["fastem_version"] = "99.0"

    newer = _rewrite(path, tmp_path / "newer.npz", bump)
    with pytest.raises(ValueError, match=r"fastem 99\.0 .*format version 2.*Upgrade fastem"):
        load(newer)


def test_load_unknown_class(tmp_path, kmeans):
    path = tmp_path / "km.npz"
    kmeans.save(path)
    bad = _rewrite(path, tmp_path / "bad.npz", lambda m: m.update({"class": "os.system"}))
    with pytest.raises(ValueError, match="unknown estimator class 'os.system'"):
        load(bad)


def test_load_missing_entry_and_bad_metadata(tmp_path, kmeans):
    path = tmp_path / "km.npz"
    kmeans.save(path)
    bad = _rewrite(path, tmp_path / "missing.npz", drop="attr.cluster_centers_")
    with pytest.raises(ValueError, match="'attr.cluster_centers_' is missing"):
        load(bad)
    bad = _rewrite(path, tmp_path / "nokey.npz", lambda m: m.pop("params"))
    with pytest.raises(ValueError, match="'params' is missing or malformed"):
        load(bad)
    bad = _rewrite(path, tmp_path / "attr.npz",
                   lambda m: m["attributes"].update({"__class__": 1}))
    with pytest.raises(ValueError, match="invalid fitted attribute name"):
        load(bad)
    # an .npz that is not a model, and a lone .npy
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(ValueError, match="no '__fastem__' metadata"):
        load(plain)
    lone = tmp_path / "lone.npy"
    np.save(lone, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        load(lone)
    garbage = _rewrite(path, tmp_path / "json.npz")
    with np.load(garbage) as f:
        entries = {k: f[k] for k in f.files}
    entries[METADATA_KEY] = np.array("{not json")
    with open(garbage, "wb") as fh:
        np.savez(fh, **entries)
    with pytest.raises(ValueError, match="not valid JSON"):
        load(garbage)


def test_object_arrays_are_refused(tmp_path, kmeans):
    path = tmp_path / "km.npz"
    kmeans.save(path)
    with np.load(path) as f:
        entries = {k: f[k] for k in f.files}
    entries["attr.cluster_centers_"] = np.array([object(), 1], dtype=object)
    bad = tmp_path / "obj.npz"
    with open(bad, "wb") as fh:
        np.savez(fh, **entries)
    with pytest.raises(ValueError, match="corrupted"):
        load(bad)


def test_describe(tmp_path, kmeans):
    from fastem._app.persistence import describe

    path = tmp_path / "km.npz"
    kmeans.save(path)
    text = describe(path)
    assert text.startswith("KMeans (fastem model format 1")
    assert "n_clusters = 3" in text
    assert "cluster_centers_: array(shape=(3, 3)" in text
