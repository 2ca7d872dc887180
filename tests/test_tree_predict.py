"""The tier predictor: every tier's score in one walk, the same bits as LightGBM's ``predict``."""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoverscore.data.schemas import TIERS, probability_column
from recoverscore.data.synthetic import generate_frame
from recoverscore.modelling import tree_predict
from recoverscore.modelling.calibration import apply_calibration
from recoverscore.modelling.model import load_train_config
from recoverscore.modelling.tree_predict import TierPredictor
from recoverscore.modelling.treeshap import UnsupportedModel
from tests.forests import QUIET, awkward_rows, make_data


def _per_tier(model: lgb.Booster, X: np.ndarray, tier: int | None, n_tiers: int, **predict):
    """LightGBM's answer: one ``predict`` per tier code written into the tier column."""
    columns = []
    for code in range(n_tiers if tier is not None else 1):
        X = X.copy()
        if tier is not None:
            X[:, tier] = code
        columns.append(model.predict(X, **predict))
    return np.column_stack(columns)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(60, 1500),
    n_numeric=st.integers(1, 5),
    categories=st.lists(st.sampled_from([2, 4, 30, 90]), min_size=1, max_size=2),
    tier_kind=st.sampled_from(["categorical", "numeric", "none"]),
    nan=st.sampled_from([0.0, 0.1, 0.4]),
    num_leaves=st.integers(2, 80),
    max_depth=st.sampled_from([-1, 2, 4, 9]),
    min_data_in_leaf=st.integers(1, 40),
    rounds=st.integers(1, 25),
    missing=st.sampled_from(["nan", "zero", "none"]),
)
def test_random_models_give_lightgbms_bits_under_every_tier(
    seed,
    n,
    n_numeric,
    categories,
    tier_kind,
    nan,
    num_leaves,
    max_depth,
    min_data_in_leaf,
    rounds,
    missing,
):
    rng = np.random.default_rng(seed)
    X, y = make_data(rng, n, n_numeric, categories, nan)
    n_tiers = 4
    tier = {"categorical": n_numeric, "numeric": 1 % n_numeric, "none": None}[tier_kind]
    if tier is not None:  # the tier drives the label, so trees split on it
        codes = rng.integers(0, n_tiers, n)
        X[:, tier] = codes
        y = np.where(rng.random(n) < 0.3, codes % 2, y)
    categorical = list(range(n_numeric, X.shape[1]))
    params = {
        "objective": "binary",
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
    data = lgb.Dataset(X, y, categorical_feature=categorical, free_raw_data=False)
    model = lgb.train(params, data, num_boost_round=rounds)
    rows = awkward_rows(model, make_data(rng, 300, n_numeric, categories, nan)[0], n_numeric)
    k = int(rng.integers(1, model.num_trees() + 1))
    predictor = TierPredictor.from_booster(model, k, tier, n_tiers)
    expected = _per_tier(model, rows, tier, n_tiers, num_iteration=k, raw_score=True)
    np.testing.assert_array_equal(predictor.raw_scores(rows), expected)
    expected = _per_tier(model, rows, tier, n_tiers, num_iteration=k)
    np.testing.assert_array_equal(predictor.probabilities(rows), expected)


def test_threads_give_the_same_bits_as_one_row_at_a_time(monkeypatch):
    rng = np.random.default_rng(3)
    X, y = make_data(rng, 5000, 4, [4, 150], 0.05)
    params = {"objective": "binary", **QUIET, "num_leaves": 63, "max_cat_to_onehot": 2}
    model = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[4, 5]), num_boost_round=30)
    predictor = TierPredictor.from_booster(model, 30, 4, 4)
    together = predictor.probabilities(X)  # above SERIAL_ROWS: the parallel walk
    assert len(X) >= tree_predict.SERIAL_ROWS
    np.testing.assert_array_equal(together, _per_tier(model, X, 4, 4))
    np.testing.assert_array_equal(together[7:8], predictor.probabilities(X[7:8]))
    monkeypatch.setattr(tree_predict, "SERIAL_ROWS", 10**9)
    np.testing.assert_array_equal(together, predictor.probabilities(X))


@pytest.fixture(scope="module")
def recovery_model():
    model = load_train_config().estimator().set_params(kind="lightgbm")
    history = generate_frame(6000, seed=1, as_of="2026-06-30")
    return model.fit(history, history["recovered"].to_numpy(int))


def test_the_recovery_model_scores_every_tier_with_lightgbms_numbers(recovery_model):
    frame = generate_frame(3000, seed=5, as_of="2026-06-30")
    assert recovery_model._tier_predictor() is not None
    scored = recovery_model.tier_probabilities(frame)
    for tier in TIERS:
        raw = recovery_model.booster_.predict(
            recovery_model._design(frame, tier), num_iteration=recovery_model.best_iteration_
        )
        expected = apply_calibration(recovery_model.calibration_, raw)
        np.testing.assert_array_equal(scored[probability_column(tier)].to_numpy(), expected)


def test_refitting_rebuilds_the_predictor(recovery_model):
    """A cached predictor of the previous booster would score with the old trees."""
    model = load_train_config().estimator().set_params(kind="lightgbm")
    first = generate_frame(3000, seed=2, as_of="2026-06-30")
    model.fit(first, first["recovered"].to_numpy(int))
    frame = generate_frame(500, seed=6, as_of="2026-06-30")
    before = model.tier_probabilities(frame)
    second = generate_frame(3000, seed=3, as_of="2026-06-30")
    model.fit(second, second["recovered"].to_numpy(int))
    after = model.tier_probabilities(frame)
    assert not np.array_equal(before.to_numpy(), after.to_numpy())
    raw = model.booster_.predict(
        model._design(frame, TIERS[2]), num_iteration=model.best_iteration_
    )
    expected = apply_calibration(model.calibration_, raw)
    np.testing.assert_array_equal(after[probability_column(TIERS[2])].to_numpy(), expected)


def test_a_model_it_cannot_reproduce_falls_back_to_lightgbm(recovery_model, monkeypatch):
    frame = generate_frame(300, seed=7, as_of="2026-06-30")
    expected = recovery_model.tier_probabilities(frame)

    def refuse(*args, **kwargs):
        raise UnsupportedModel("a test")

    monkeypatch.setattr(TierPredictor, "from_booster", refuse)
    monkeypatch.delitem(recovery_model.__dict__, "_predictor")
    assert recovery_model._tier_predictor() is None
    np.testing.assert_array_equal(recovery_model.tier_probabilities(frame), expected)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"objective": "regression"}, "only plain binary"),
        ({"objective": "binary", "sigmoid": 2.0}, "only plain binary"),
        ({"objective": "multiclass", "num_class": 3}, "one raw output"),
        ({"objective": "binary", "linear_tree": True}, "linear trees"),
    ],
)
def test_models_it_cannot_reproduce_are_refused(params, reason):
    rng = np.random.default_rng(4)
    X, y = make_data(rng, 400, 3, [], 0.0)
    if params.get("objective") == "multiclass":
        y = rng.integers(0, 3, len(y))
    model = lgb.train({**QUIET, **params}, lgb.Dataset(X, y), num_boost_round=3)
    with pytest.raises(UnsupportedModel, match=reason):
        TierPredictor.from_booster(model, 3, None, 4)


def test_wrong_shapes_and_pickling_are_clear_errors():
    rng = np.random.default_rng(1)
    X, y = make_data(rng, 300, 3, [], 0.0)
    predictor = TierPredictor.from_booster(
        lgb.train({"objective": "binary", **QUIET}, lgb.Dataset(X, y), 3), 3, None, 4
    )
    assert predictor.probabilities(np.zeros((0, 3))).shape == (0, 1)
    with pytest.raises(ValueError, match="3 columns"):
        predictor.probabilities(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(predictor)
