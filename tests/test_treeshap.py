"""The TreeSHAP kernel: LightGBM's own pred_contrib, to 1e-9, on random and project models."""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoverscore.data.synthetic import generate_frame
from recoverscore.modelling import treeshap
from recoverscore.modelling.model import load_train_config
from recoverscore.modelling.treeshap import TreeShapKernel, UnsupportedModel
from tests.forests import QUIET, awkward_rows, make_data

AS_OF = "2026-06-30"
TOLERANCE = 1e-9


def _assert_matches(model: lgb.Booster, kernel: TreeShapKernel, X: np.ndarray, **predict) -> float:
    """The kernel against pred_contrib (and its rows against the raw score); the max difference."""
    expected = model.predict(X, pred_contrib=True, **predict)
    values = kernel.shap_values(X)
    assert values.shape == expected.shape
    difference = float(np.abs(values - expected).max())
    assert difference <= TOLERANCE
    raw = model.predict(X, raw_score=True, **predict)
    np.testing.assert_allclose(values.sum(axis=1), raw, rtol=0, atol=TOLERANCE)
    return difference


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(60, 1500),
    n_numeric=st.integers(1, 6),
    categories=st.lists(st.sampled_from([2, 5, 30, 90]), max_size=2),
    nan=st.sampled_from([0.0, 0.1, 0.4]),
    num_leaves=st.integers(2, 80),
    max_depth=st.sampled_from([-1, 2, 4, 9]),
    min_data_in_leaf=st.integers(1, 40),
    rounds=st.integers(1, 25),
    missing=st.sampled_from(["nan", "zero", "none"]),
    objective=st.sampled_from(["binary", "binary", "regression"]),
    table_bytes=st.sampled_from([treeshap.DEFAULT_TABLE_BYTES, 4096, 0]),
)
def test_random_models_match_pred_contrib(
    seed,
    n,
    n_numeric,
    categories,
    nan,
    num_leaves,
    max_depth,
    min_data_in_leaf,
    rounds,
    missing,
    objective,
    table_bytes,
):
    rng = np.random.default_rng(seed)
    X, y = make_data(rng, n, n_numeric, categories, nan)
    params = {
        "objective": objective,
        **QUIET,
        "seed": seed % 1000,
        "num_leaves": num_leaves,
        "max_depth": max_depth,
        "min_data_in_leaf": min_data_in_leaf,
        "min_data_per_group": 1,
        "cat_smooth": 1.0,
        "max_cat_to_onehot": 3,
        "zero_as_missing": missing == "zero",
        "use_missing": missing != "none",
    }
    categorical = list(range(n_numeric, X.shape[1]))
    data = lgb.Dataset(X, y, categorical_feature=categorical, free_raw_data=False)
    model = lgb.train(params, data, num_boost_round=rounds)
    kernel = TreeShapKernel.from_booster(model, max_table_bytes=table_bytes)
    rows = awkward_rows(model, make_data(rng, 300, n_numeric, categories, nan)[0], n_numeric)
    _assert_matches(model, kernel, rows)
    if model.num_trees() > 1:
        k = int(rng.integers(1, model.num_trees()))
        first_k = TreeShapKernel.from_booster(model, num_iteration=k, max_table_bytes=table_bytes)
        assert first_k.stats.trees == k
        _assert_matches(model, first_k, rows, num_iteration=k)


@pytest.fixture(scope="module")
def wide_model() -> tuple[lgb.Booster, np.ndarray]:
    """Trees with more than 128 splits (keys of several 64-bit words), categorical splits over
    more than 64 categories, NaN-missing data."""
    rng = np.random.default_rng(3)
    X, y = make_data(rng, 6000, 4, [150], 0.05)
    params = {
        "objective": "binary",
        **QUIET,
        "num_leaves": 200,
        "min_data_in_leaf": 2,
        "min_data_per_group": 2,
        "max_cat_to_onehot": 2,
        "max_cat_threshold": 100,
        "cat_smooth": 1.0,
    }
    model = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[4]), num_boost_round=8)
    return model, awkward_rows(model, make_data(rng, 2000, 4, [150], 0.05)[0], 4)


def test_wide_trees_and_many_categories(wide_model):
    model, X = wide_model
    kernel = TreeShapKernel.from_booster(model)
    assert kernel._model.tree_n_nodes.max() > 128
    assert kernel._model.node_cat_words.max() >= 2
    _assert_matches(model, kernel, X)


def test_same_bits_for_any_thread_count_chunk_size_and_table_budget(wide_model, monkeypatch):
    model, X = wide_model
    kernel = TreeShapKernel.from_booster(model)
    one = kernel.shap_values(X, num_threads=1)
    assert np.array_equal(one, kernel.shap_values(X, num_threads=numba.config.NUMBA_NUM_THREADS))
    assert np.array_equal(one[5:9], kernel.shap_values(X[5:9]))  # rows alone, with no others
    assert np.array_equal(one, kernel.shap_values(np.asfortranarray(X)))
    monkeypatch.setattr(treeshap, "CHUNK_ROWS", 7)
    assert np.array_equal(one, kernel.shap_values(X))
    # without tables (every leaf per key) the numbers agree to rounding, not bit for bit
    untabulated = TreeShapKernel.from_booster(model, max_table_bytes=0)
    assert untabulated.stats.tabulated_leaves == 0
    np.testing.assert_allclose(untabulated.shap_values(X), one, rtol=0, atol=1e-12)


def test_a_feature_split_on_again_and_again_along_a_path():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3000, 1))
    y = (np.sin(4 * x[:, 0]) + rng.normal(scale=0.3, size=3000) > 0).astype(int)
    params = {"objective": "binary", **QUIET, "num_leaves": 31, "min_data_in_leaf": 5}
    model = lgb.train(params, lgb.Dataset(x, y), num_boost_round=10)
    kernel = TreeShapKernel.from_booster(model)
    assert kernel.stats.path_features_max == 1 and kernel.stats.depth_max > 3
    _assert_matches(model, kernel, rng.normal(size=(500, 1)))


def test_single_leaf_trees_and_num_iteration():
    """A constant first tree (no split possible), then ordinary trees trained on top of it."""
    rng = np.random.default_rng(9)
    constant = lgb.train(
        {"objective": "binary", **QUIET},
        lgb.Dataset(np.zeros((200, 3)), rng.integers(0, 2, 200)),
        num_boost_round=3,
    )
    X, y = make_data(rng, 800, 3, [], 0.1)
    params = {"objective": "binary", **QUIET, "num_leaves": 7}
    model = lgb.train(params, lgb.Dataset(X, y), num_boost_round=6, init_model=constant)
    kernel = TreeShapKernel.from_booster(model)
    assert kernel.stats.single_leaf_trees == 1 and kernel.stats.trees == 7
    _assert_matches(model, kernel, X)
    only_constant = TreeShapKernel.from_booster(model, num_iteration=1)
    values = only_constant.shap_values(X)
    assert np.all(values[:, :-1] == 0)
    _assert_matches(model, only_constant, X, num_iteration=1)


def test_num_iteration_none_means_the_best_iteration():
    """As in Booster.predict: None is the best iteration when one is recorded, <= 0 all trees."""
    rng = np.random.default_rng(2)
    X, y = make_data(rng, 1000, 4, [5], 0.1)
    model = lgb.train({"objective": "binary", **QUIET}, lgb.Dataset(X, y), 20)
    model.best_iteration = 7  # what early stopping records
    kernel = TreeShapKernel.from_booster(model)
    assert kernel.stats.trees == 7
    _assert_matches(model, kernel, X)  # predict's own default: the best iteration
    assert TreeShapKernel.from_booster(model, num_iteration=0).stats.trees == 20


def test_the_project_recovery_model():
    model = load_train_config().estimator().set_params(kind="lightgbm", num_threads=1)
    history = generate_frame(4000, seed=1, as_of=AS_OF)
    model.fit(history, history["recovered"].to_numpy(int))
    booster, rounds = model.booster_, model.best_iteration_
    kernel = TreeShapKernel.from_booster(booster, num_iteration=rounds)
    assert kernel.feature_names == model.feature_names_
    frame = generate_frame(2000, seed=5, as_of=AS_OF)
    for tier in ("soft_reminder", "litigation"):
        X = model._as_matrix(model._design(frame, tier))
        _assert_matches(booster, kernel, X, num_iteration=rounds)


# --- what the kernel refuses ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model() -> lgb.Booster:
    rng = np.random.default_rng(1)
    X, y = make_data(rng, 300, 3, [], 0.0)
    return lgb.train({"objective": "binary", **QUIET}, lgb.Dataset(X, y), 3)


@pytest.mark.parametrize("shape", [(10, 2), (10, 4), (3,), (2, 3, 1)])
def test_a_matrix_of_the_wrong_shape_is_a_clear_error(small_model, shape):
    kernel = TreeShapKernel.from_booster(small_model)
    with pytest.raises(ValueError, match="3 columns"):
        kernel.shap_values(np.zeros(shape))


def test_the_kernel_is_never_pickled(small_model):
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(TreeShapKernel.from_booster(small_model))


def test_no_rows_give_no_values(small_model):
    assert TreeShapKernel.from_booster(small_model).shap_values(np.zeros((0, 3))).shape == (0, 4)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"linear_tree": True}, "linear trees"),
        ({"objective": "multiclass", "num_class": 3}, "one raw output"),
        ({"boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.5}, "averaged output"),
    ],
)
def test_models_it_cannot_explain_exactly_are_refused(params, reason):
    rng = np.random.default_rng(4)
    X, y = make_data(rng, 400, 3, [], 0.0)
    if params.get("objective") == "multiclass":
        y = rng.integers(0, 3, len(y))
    model = lgb.train(
        {"objective": "binary", **QUIET, **params}, lgb.Dataset(X, y), num_boost_round=3
    )
    with pytest.raises(UnsupportedModel, match=reason) as caught:
        TreeShapKernel.from_booster(model)
    assert reason in caught.value.reason


def test_a_node_without_rows_is_refused(small_model):
    dump = small_model.dump_model()
    node = dump["tree_info"][0]["tree_structure"]
    while "split_index" in node:
        node = node["left_child"]
    node["leaf_count"] = 0
    with pytest.raises(UnsupportedModel, match="without training rows"):
        TreeShapKernel.from_dump(dump)
