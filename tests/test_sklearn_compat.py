"""fastem's estimators as scikit-learn estimators.

scikit-learn's own conformance suite (``check_estimator``) runs on every
public estimator, then the workflows users build around them: pipelines,
searches, cross-validation, cloning, pickling, pandas output and feature
names, metadata routing of ``sample_weight``, and scikit-learn's exception
and warning classes.
"""
import pickle
import warnings

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_html_repr
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastem
from fastem import GaussianMixture, KMeans, MiniBatchKMeans


def _expected_failed_checks(estimator):
    # scikit-learn marks the same check as an expected failure for its own
    # KMeans and MiniBatchKMeans (a subclass of fastem's KMeans here)
    # (sklearn/utils/_test_common/instance_generator.py): seeding
    # draws rows with probability proportional to their weight, and a row
    # of weight 2 is not drawn exactly as two copies of it would be, so the
    # fitted centres can differ. (Integer weights equal repeated rows from
    # the same initial centres: tests/test_kmeans.py.)
    if isinstance(estimator, KMeans):
        reason = ("sample_weight is not equivalent to removing/repeating samples "
                  "in the random seeding (as for scikit-learn's KMeans).")
        return {
            "check_sample_weight_equivalence_on_dense_data": reason,
            "check_sample_weight_equivalence_on_sparse_data": reason,  # sparse input
        }
    return {}


@parametrize_with_checks([KMeans(), MiniBatchKMeans(), GaussianMixture()],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


def _blobs(n=300, d=4, k=3, seed=0, spread=0.5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(k, d))
    y = rng.integers(k, size=n)
    return centres[y] + spread * rng.normal(size=(n, d)), y


def test_estimators_are_sklearn_estimators():
    for est in (KMeans(3), GaussianMixture(2)):
        assert isinstance(est, sklearn.base.BaseEstimator)
        tags = est.__sklearn_tags__()
        assert tags.estimator_type in ("clusterer", "density_estimator")
        assert "<div" in estimator_html_repr(est)
    assert sklearn.base.is_clusterer(KMeans())
    assert fastem.NotFittedError is NotFittedError
    assert fastem.ConvergenceWarning is ConvergenceWarning


def test_pipeline_fit_predict_transform_score():
    X, _ = _blobs()
    pipe = make_pipeline(StandardScaler(), KMeans(3, random_state=0)).fit(X)
    Xs = StandardScaler().fit_transform(X)
    km = KMeans(3, random_state=0).fit(Xs)
    np.testing.assert_array_equal(pipe.predict(X), km.predict(Xs))
    np.testing.assert_allclose(pipe.transform(X), km.transform(Xs))
    assert pipe.score(X) == pytest.approx(km.score(Xs))

    gpipe = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(X)
    gm = GaussianMixture(3, random_state=0).fit(Xs)
    np.testing.assert_array_equal(gpipe.predict(X), gm.predict(Xs))
    assert gpipe.score(X) == pytest.approx(gm.score(Xs))


def test_grid_search_with_ari_scorer_finds_true_k():
    X, y = _blobs(n=400, k=3, seed=1)
    pipe = Pipeline([("scale", StandardScaler()), ("km", KMeans(random_state=0))])
    search = GridSearchCV(pipe, {"km__n_clusters": [2, 3, 5]},
                          scoring="adjusted_rand_score", cv=3).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    assert search.best_params_ == {"km__n_clusters": 3}
    assert search.best_score_ > 0.95
    # refit model agrees with a direct fit
    direct = make_pipeline(StandardScaler(), KMeans(3, random_state=0)).fit(X)
    assert adjusted_rand_score(search.predict(X), direct.predict(X)) == 1.0


def test_grid_search_default_score():
    X, _ = _blobs(n=300, k=3, seed=2)
    search = GridSearchCV(GaussianMixture(random_state=0),
                          {"n_components": [1, 3], "covariance_type": ["diag", "full"]},
                          cv=3).fit(X)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_params_["n_components"] == 3
    km_search = GridSearchCV(KMeans(random_state=0), {"n_clusters": [1, 3]}, cv=3).fit(X)
    # KMeans.score is minus the inertia: more clusters score higher
    assert km_search.best_params_ == {"n_clusters": 3}


def test_cross_val_score_matches_manual_folds():
    X, _ = _blobs(n=300, k=2, seed=3)
    cv = KFold(3)
    scores = cross_val_score(GaussianMixture(2, random_state=0), X, cv=cv)
    manual = [GaussianMixture(2, random_state=0).fit(X[tr]).score(X[te])
              for tr, te in cv.split(X)]
    np.testing.assert_allclose(scores, manual, rtol=1e-12)
    km_scores = cross_val_score(KMeans(2, random_state=0), X, cv=cv)
    km_manual = [KMeans(2, random_state=0).fit(X[tr]).score(X[te]) for tr, te in cv.split(X)]
    np.testing.assert_allclose(km_scores, km_manual, rtol=1e-12)


@pytest.mark.parametrize("est", [KMeans(3, random_state=0), GaussianMixture(3, random_state=0)])
def test_clone_pickle_joblib(est, tmp_path):
    X, _ = _blobs()
    fitted = clone(est).fit(X)
    assert not hasattr(clone(fitted), "labels_") and not hasattr(clone(fitted), "means_")
    for restored in (pickle.loads(pickle.dumps(fitted)),
                     joblib.load(joblib.dump(fitted, tmp_path / "m.joblib")[0])):
        np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))


def test_set_output_pandas_and_feature_names():
    pd = pytest.importorskip("pandas")
    X, _ = _blobs()
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    km = KMeans(3, random_state=0).set_output(transform="pandas").fit(df)
    np.testing.assert_array_equal(km.feature_names_in_, ["a", "b", "c", "d"])
    out = km.transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["kmeans0", "kmeans1", "kmeans2"]
    np.testing.assert_allclose(out.to_numpy(), KMeans(3, random_state=0).fit(X).transform(X))
    # scikit-learn's behaviour: renamed columns are an error, a bare array a warning
    with pytest.raises(ValueError, match="feature names should match"):
        km.predict(df.rename(columns={"a": "z"}))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        km.predict(X)
    gm = GaussianMixture(2, random_state=0).fit(df)
    np.testing.assert_array_equal(gm.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="feature names should match"):
        gm.score_samples(df.rename(columns={"b": "y"}))


def test_metadata_routing_of_sample_weight():
    X, _ = _blobs(n=200)
    w = np.random.default_rng(0).integers(1, 4, size=X.shape[0]).astype(float)
    with sklearn.config_context(enable_metadata_routing=True):
        for est in (KMeans(3, random_state=0), GaussianMixture(3, random_state=0)):
            pipe = make_pipeline(
                StandardScaler().set_fit_request(sample_weight=False),
                clone(est).set_fit_request(sample_weight=True))
            pipe.fit(X, sample_weight=w)
            Xs = StandardScaler().fit_transform(X)
            direct = clone(est).fit(Xs, sample_weight=w)
            np.testing.assert_array_equal(pipe.predict(X), direct.predict(Xs))
            assert pipe.score(X) == pytest.approx(direct.score(Xs))


def test_sklearn_exceptions_are_raised():
    X, _ = _blobs()
    for est in (KMeans(3), GaussianMixture(2)):
        with pytest.raises(NotFittedError):
            est.predict(X)
    with pytest.warns(ConvergenceWarning):
        GaussianMixture(3, max_iter=1, tol=0, random_state=0).fit(X)
    # filters written for scikit-learn silence fastem's warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=sklearn.exceptions.ConvergenceWarning)
        GaussianMixture(3, max_iter=1, tol=0, random_state=0).fit(X)


def test_feature_names_out_of_a_loaded_model(tmp_path):
    X, _ = _blobs()
    km = KMeans(3, random_state=0).fit(X)
    km.save(tmp_path / "km.npz")
    loaded = fastem.load(tmp_path / "km.npz")
    assert list(loaded.get_feature_names_out()) == ["kmeans0", "kmeans1", "kmeans2"]
    np.testing.assert_array_equal(loaded.transform(X), km.transform(X))
