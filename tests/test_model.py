"""The recovery model: calibrated, monotone where the domain says so, reproducible, no pickle;
k-fold on small files, the scorecard when it ranks better, scikit-learn's contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from recoverscore.data.schemas import TIERS, probability_column
from recoverscore.data.synthetic import generate_frame
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling import model as model_module
from recoverscore.modelling.calibration import apply_calibration
from recoverscore.modelling.evaluate import binary_metrics, truth_metrics
from recoverscore.modelling.features import STANDARD_FEATURES, DebtorFeatures
from recoverscore.modelling.model import (
    RecoveryModel,
    TrainConfig,
    cross_validate,
    data_digest,
    load_train_config,
    prepare_training_data,
)
from recoverscore.modelling.scorecard import ScorecardModel

CONFIG = load_train_config()


def _fit(
    frame: pd.DataFrame,
    config: TrainConfig = CONFIG,
    tier: str | None = "given_tier",
    **params,
) -> RecoveryModel:
    model = config.model.estimator(config.features.transformer(), tier).set_params(**params)
    return model.fit(frame, frame["recovered"].to_numpy(int))


@pytest.fixture(scope="module")
def split():
    frame = generate_frame(12_000, seed=21, as_of="2026-06-30")
    return frame.iloc[:9_000], frame.iloc[9_000:]


@pytest.fixture(scope="module")
def model(split):
    return _fit(split[0], kind="lightgbm")


def test_beats_the_scorecard_and_tracks_the_truth_on_every_tier(model, split):
    train, test = split
    p = model.recovery_probability(test)
    card = ScorecardModel(model.features_, "given_tier").fit(
        train, train["recovered"].to_numpy(int)
    )
    auc_model = roc_auc_score(test["recovered"], p)
    auc_card = roc_auc_score(test["recovered"], card.recovery_probability(test))
    assert auc_model > auc_card
    truth = truth_metrics(model.tier_probabilities(test), test)
    assert (truth["correlation"] > 0.8).all(), truth
    assert (truth["mae"] < 0.12).all(), truth  # 9k rows; about 0.04 at 200k


def test_calibrated(model, split):
    test = split[1]
    metrics = binary_metrics(test["recovered"].to_numpy(int), model.recovery_probability(test))
    assert metrics["ece"] < 0.03
    assert model.calibration_["method"] in ("isotonic", "platt")
    assert set(model.calibration_losses_) == {"isotonic", "platt"}


@settings(max_examples=30, deadline=None)
@given(a=st.floats(0, 1), b=st.floats(0, 1), method=st.sampled_from(["isotonic", "platt"]))
def test_calibration_never_reorders(model, a, b, method):
    cal = (
        model.calibration_
        if model.calibration_["method"] == method
        else (
            {"method": "platt", "a": 1.3, "b": -0.2}
            if method == "platt"
            else {"method": "isotonic", "x": [0.1, 0.5, 0.9], "y": [0.05, 0.5, 0.8]}
        )
    )
    lo, hi = sorted((a, b))
    assert apply_calibration(cal, np.array([lo]))[0] <= apply_calibration(cal, np.array([hi]))[0]


@settings(max_examples=25, deadline=None)
@given(start=st.integers(0, 2_900), extra_days=st.integers(1, 2_000))
def test_recovery_never_rises_with_age_under_any_tier(model, split, start, extra_days):
    rows = split[1].iloc[start : start + 100]
    older = rows.assign(due_date=rows["due_date"] - pd.Timedelta(days=extra_days))
    before, after = model.tier_probabilities(rows), model.tier_probabilities(older)
    assert (after.to_numpy() <= before.to_numpy() + 1e-12).all()


ASSET_FEATURES = ("owns_real_estate", "owns_vehicle", "has_equity_holdings")
RAISING = (*ASSET_FEATURES, "n_assets", "has_attachable_asset", "n_partial_payments")


@pytest.fixture(scope="module")
def constrained(split):
    """A model asked to let recovery never fall with assets or partial payments as well."""
    monotone = {**CONFIG.model.monotone, **dict.fromkeys(RAISING, 1)}
    return _fit(split[0], kind="lightgbm", monotone=monotone)


@settings(max_examples=20, deadline=None)
@given(start=st.integers(0, 2_900), asset=st.sampled_from(ASSET_FEATURES), extra=st.integers(1, 4))
def test_added_constraints_hold_for_assets_and_partial_payments(
    constrained, split, start, asset, extra
):
    rows = split[1].iloc[start : start + 100]
    richer = rows.assign(**{asset: True})
    assert (
        constrained.tier_probabilities(richer).to_numpy()
        >= constrained.tier_probabilities(rows).to_numpy() - 1e-12
    ).all()
    payers = rows[rows["n_partial_payments"] > 0]
    more = payers.assign(n_partial_payments=payers["n_partial_payments"] + extra)
    assert (
        constrained.tier_probabilities(more).to_numpy()
        >= constrained.tier_probabilities(payers).to_numpy() - 1e-12
    ).all()


def test_tier_probabilities_and_predict_proba_agree(model, split):
    test = split[1].head(500)
    matrix = model.tier_probabilities(test)
    assert list(matrix.columns) == [probability_column(t) for t in TIERS]
    for tier in TIERS:
        np.testing.assert_array_equal(
            matrix[probability_column(tier)], model.recovery_probability(test, tier)
        )
    np.testing.assert_array_equal(model.predict_proba(test)[:, 1], model.recovery_probability(test))
    given_p = model.recovery_probability(test)
    codes = pd.Categorical(test["given_tier"], categories=TIERS).codes
    np.testing.assert_array_equal(given_p, matrix.to_numpy()[np.arange(len(test)), codes])
    assert matrix.nunique().min() > 10  # the tier changes the answer


def test_tier_probabilities_are_lightgbms_own_dataframe_prediction(model, split):
    """The float-matrix fast path gives LightGBM's DataFrame answer exactly, unseen levels too."""
    test = split[1].head(400).copy()
    test.iloc[:50, test.columns.get_loc("region")] = "atlantis"  # unseen: missing in the model
    test.iloc[50:60, test.columns.get_loc("industry")] = None
    matrix = model.tier_probabilities(test)
    for tier in TIERS:
        design = model._design(test, tier)
        raw = model.booster_.predict(design, num_iteration=model.best_iteration_)
        expected = apply_calibration(model.calibration_, raw)
        np.testing.assert_array_equal(matrix[probability_column(tier)].to_numpy(), expected)


def test_state_round_trip_gives_identical_predictions(model, split):
    text, state = model.state()
    assert text.startswith("tree") and state["kind"] == "lightgbm"
    loaded = RecoveryModel.from_state(text, state)
    test = split[1]
    pd.testing.assert_frame_equal(loaded.tier_probabilities(test), model.tier_probabilities(test))
    assert loaded.get_params(deep=False).keys() == model.get_params(deep=False).keys()


def test_same_seed_same_model_text(split):
    rows = split[0].head(3_000)
    assert _fit(rows, kind="lightgbm").state()[0] == _fit(rows, kind="lightgbm").state()[0]


def test_plain_recovery_model_without_tiers(split):
    rows = split[0].head(3_000).drop(columns=["given_tier"])
    config = CONFIG.model_copy(
        update={"data": CONFIG.data.model_copy(update={"tier_column": None})}
    )
    prepared = prepare_training_data(rows, config)
    model = _fit(prepared.frame, config, tier=None, kind="lightgbm")
    matrix = model.tier_probabilities(split[1].head(50))
    assert (matrix.nunique(axis=1) == 1).all()  # one answer, whatever the tier


def test_users_own_file_trains_from_config_alone(split):
    rows = split[0].head(3_000)
    own = rows[["debtor_id", "principal", "due_date", "contact_status", "recovered"]].assign(
        as_of=rows["as_of"],
        score_a=np.random.default_rng(0).normal(size=len(rows)),
        segment=np.where(rows["owns_real_estate"], "home", "none"),
    )
    standard = ["days_past_due", "log_principal", "amount_band", "contact_status"]
    config = TrainConfig.model_validate(
        {
            "data": {"tier_column": None},
            "features": {
                "disabled": [name for name in STANDARD_FEATURES if name not in standard],
                "extra_numeric": ["score_a"],
                "extra_categorical": ["segment"],
            },
        }
    )
    prepared = prepare_training_data(own, config)
    model = _fit(prepared.frame, config, tier=None, kind="lightgbm")
    assert set(model.input_names) == {*standard, "score_a", "segment"}
    assert model.recovery_probability(own).shape == (len(own),)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f, c: (f.drop(columns="recovered"), c), "no column 'recovered'"),
        (lambda f, c: (f.assign(recovered=True), c), "single class"),
        (lambda f, c: (f.head(50), c), "too few rows to train: 50 valid"),
        (lambda f, c: (f.drop(columns="given_tier"), c), "set data.tier_column to null"),
        (lambda f, c: (f.assign(recovered="maybe"), c), "must be binary"),
        (lambda f, c: (f.assign(given_tier="prayer"), c), "unknown tiers \\['prayer'\\]"),
        (lambda f, c: (f.drop(columns="debtor_id"), c), "no column 'debtor_id'"),
        (lambda f, c: (f.drop(columns="as_of"), c), "'as_of'.*needed by the date features"),
    ],
)
def test_training_data_errors_are_one_clear_line(split, change, message):
    frame, config = change(split[0].head(1_000).copy(), CONFIG)
    with pytest.raises(RecoverscoreError, match=message):
        prepare_training_data(frame, config)


def test_bad_rows_are_set_aside_with_reasons(split):
    frame = split[0].head(1_000).copy()
    frame.loc[frame.index[3], "principal"] = -1.0
    prepared = prepare_training_data(frame, CONFIG)
    assert len(prepared.frame) == 999 and prepared.rejected["row"].tolist() == [4]
    assert "principal" in prepared.rejected["failed_checks"].iloc[0]


def test_data_digest_identifies_rows(split):
    rows = split[0].head(100)
    assert data_digest(rows) == data_digest(rows.copy())
    assert data_digest(rows) != data_digest(rows.assign(principal=rows["principal"] + 1))
    assert all(i not in data_digest(rows) for i in rows["debtor_id"])


def test_split_is_stratified_disjoint_and_complete(split):
    prepared = prepare_training_data(split[0].head(2_000), CONFIG)
    train, test = prepared.split(CONFIG.data, seed=1)
    assert len(train.frame) + len(test.frame) == 2_000
    assert not set(train.frame["debtor_id"]) & set(test.frame["debtor_id"])
    assert abs(train.y.mean() - test.y.mean()) < 0.02
    np.testing.assert_array_equal(test.y, test.frame["recovered"].to_numpy(int))


def test_defaults_behave_on_a_thousand_rows():
    small = generate_frame(1_000, seed=5, as_of="2026-06-30")
    other = generate_frame(5_000, seed=6, as_of="2026-06-30")
    model = _fit(small)
    assert roc_auc_score(other["recovered"], model.recovery_probability(other)) > 0.68
    assert (
        binary_metrics(other["recovered"].to_numpy(int), model.recovery_probability(other))["ece"]
        < 0.07
    )


# --- small files: k-fold rounds, out-of-fold calibration, every row trains -------------------


def test_a_small_file_takes_its_rounds_from_cross_validation_and_trains_on_every_row(
    split, monkeypatch
):
    rows = split[0].head(2_000)
    seen = {}
    real_train = model_module.lgb.train

    def spy(params, train_set, num_boost_round, **kwargs):
        seen["rows"], seen["rounds"] = len(train_set.data), num_boost_round
        seen["valid_sets"] = kwargs.get("valid_sets")
        return real_train(params, train_set, num_boost_round, **kwargs)

    monkeypatch.setattr(model_module.lgb, "train", spy)
    fitted = _fit(rows, kind="lightgbm")
    assert seen["rows"] == len(rows) and seen["valid_sets"] is None
    assert seen["rounds"] == fitted.cv_["rounds"] == fitted.booster_.num_trees()
    assert fitted.cv_["folds"] == CONFIG.model.cv_folds
    in_sample = roc_auc_score(rows["recovered"], fitted.recovery_probability(rows))
    assert 0.6 < fitted.cv_["lightgbm_oof_auc"] < in_sample


def test_a_large_file_keeps_its_holdouts(split, monkeypatch):
    seen = {}
    real_train = model_module.lgb.train

    def spy(params, train_set, num_boost_round, **kwargs):
        seen["rows"] = len(train_set.data)
        return real_train(params, train_set, num_boost_round, **kwargs)

    monkeypatch.setattr(model_module.lgb, "train", spy)
    rows = split[0].head(3_000)
    fitted = _fit(rows, kind="lightgbm", small_data_rows=1_000)
    holdout = max(round(0.1 * 3_000), CONFIG.model.min_holdout_rows)  # validation, calibration
    assert seen["rows"] == 3_000 - 2 * holdout
    assert fitted.cv_ == {}


def _own_file(n: int, seed: int, interaction: bool) -> pd.DataFrame:
    """A file with only its own columns: monotone effects, or one strong interaction."""
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(size=(3, n))
    grade = rng.choice(["a", "b", "c", "d"], size=n)
    logit = 1.2 * x1 - 1.0 * x2 + 0.8 * x3 + 0.6 * (grade == "a") - 0.6 * (grade == "d")
    if interaction:
        logit = 2.5 * np.sign(x1) * np.sign(x2) + 0.2 * x3
    return pd.DataFrame(
        {
            "loan_id": [f"L{i}" for i in range(n)],
            "x1": x1,
            "x2": x2,
            "x3": x3,
            "grade": grade,
            "paid": rng.random(n) < 1 / (1 + np.exp(-logit)),
        }
    )


OWN_CONFIG = TrainConfig.model_validate(
    {
        "data": {"id_column": "loan_id", "target": "paid", "tier_column": None},
        "features": {
            "disabled": list(STANDARD_FEATURES),
            "extra_numeric": ["x1", "x2", "x3"],
            "extra_categorical": ["grade"],
        },
    }
)


@pytest.mark.parametrize(
    ("rows", "seed", "interaction", "winner"),
    [(400, 2, False, "scorecard"), (1_200, 4, True, "lightgbm")],
)
def test_auto_keeps_the_better_ranker_out_of_fold(rows, seed, interaction, winner):
    frame = _own_file(rows, seed=seed, interaction=interaction)
    prepared = prepare_training_data(frame, OWN_CONFIG)
    fitted = OWN_CONFIG.estimator().fit(prepared.frame, prepared.y)
    scores = {k: fitted.cv_[f"{k}_oof_auc"] for k in ("lightgbm", "scorecard")}
    assert fitted.kind_ == max(scores, key=scores.get) == winner, scores
    p = fitted.recovery_probability(frame)
    assert p.shape == (len(frame),) and ((p > 0) & (p < 1)).all()


def test_a_scorecard_model_round_trips_through_json(split):
    rows = split[0].head(1_500)
    fitted = _fit(rows, kind="scorecard")
    text, state = fitted.state()
    assert text is None and state["scorecard"]["bins"]
    loaded = RecoveryModel.from_state(None, state)
    pd.testing.assert_frame_equal(
        loaded.tier_probabilities(split[1].head(300)), fitted.tier_probabilities(split[1].head(300))
    )


def test_cross_validate_compares_on_the_same_folds():
    frame = _own_file(600, seed=2, interaction=False)
    prepared = prepare_training_data(frame, OWN_CONFIG)
    table = cross_validate(prepared.frame, prepared.y, OWN_CONFIG.estimator(), folds=3)
    assert list(table.index) == ["model", "scorecard"]
    assert (table["folds"] == 3).all() and (table["auc_sd"] > 0).all()
    assert ((table["oof_auc"] > 0.6) & (table["oof_auc"] < 1)).all()


# --- scikit-learn's contract ---------------------------------------------------------------


@pytest.mark.parametrize(
    "check",
    [check_no_attributes_set_in_init, check_get_params_invariance, check_set_params],
)
def test_scikit_learn_estimator_contract(check):
    check("RecoveryModel", RecoveryModel(DebtorFeatures(), "given_tier", learning_rate=0.1))


def test_default_constructible():
    check_parameters_default_constructible("RecoveryModel", RecoveryModel())


def test_grid_search_and_cross_val_score_tune_a_hyperparameter():
    frame = _own_file(800, seed=7, interaction=True)
    X, y = frame.drop(columns="paid"), frame["paid"].to_numpy(int)
    estimator = OWN_CONFIG.estimator().set_params(kind="lightgbm", max_rounds=200)
    search = GridSearchCV(estimator, {"min_data_in_leaf": [5, 400]}, scoring="roc_auc", cv=2).fit(
        X, y
    )
    results = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"min_data_in_leaf": 5} and results[0] > results[1] + 0.1
    scores = cross_val_score(clone(estimator), X, y, scoring="roc_auc", cv=3)
    assert len(scores) == 3 and (scores > 0.7).all()
    assert search.best_estimator_.booster_.params["min_data_in_leaf"] == 5


def test_numpy_input_is_a_clear_error(split):
    with pytest.raises(RecoverscoreError, match="needs a pandas DataFrame"):
        RecoveryModel().fit(split[0].to_numpy(), split[0]["recovered"].to_numpy(int))


@pytest.mark.parametrize("small_data_rows", [20_000, 1_000], ids=["k-fold", "holdouts"])
def test_progress_is_told_after_every_boosting_round(split, small_data_rows):
    rows = split[0].head(3_000)
    calls: list[tuple[int, int]] = []
    model = CONFIG.model.estimator(CONFIG.features.transformer(), "given_tier").set_params(
        kind="lightgbm", small_data_rows=small_data_rows, max_rounds=60, num_threads=1
    )
    model.fit(rows, rows["recovered"].to_numpy(int), on_round=lambda *a: calls.append(a))
    runs = [[]]  # boosting runs: k-fold then the final fit, or the one fit on holdouts
    for done, most in calls:
        if done == 1 and runs[-1]:
            runs.append([])
        runs[-1].append((done, most))
    for boosted in runs:
        assert [d for d, _ in boosted] == list(range(1, len(boosted) + 1))
        assert len({m for _, m in boosted}) == 1 and boosted[-1][0] <= boosted[0][1]
    trees = model.booster_.current_iteration()
    if small_data_rows > len(rows):
        assert (
            len(runs) == 2
            and runs[0][0][1] == 60
            and runs[1] == [(d, trees) for d in range(1, trees + 1)]
        )
    else:
        # early stopping (patience 100) never ends these 60 rounds early; the model keeps the
        # best of them
        assert len(runs) == 1 and runs[0][0][1] == 60 and len(runs[0]) == 60 >= trees
