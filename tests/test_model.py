"""The recovery model: calibrated, monotone where the domain says so, reproducible, no pickle."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from recoverscore.data.schemas import TIERS, probability_column
from recoverscore.data.synthetic import generate_frame
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.evaluate import Scorecard, binary_metrics, truth_metrics
from recoverscore.modelling.features import STANDARD_FEATURES
from recoverscore.modelling.model import (
    RecoveryModel,
    TrainConfig,
    apply_calibration,
    data_digest,
    load_train_config,
    prepare_training_data,
)

CONFIG = load_train_config()


def _fit(frame: pd.DataFrame, config: TrainConfig = CONFIG, tier: str | None = "given_tier"):
    model = RecoveryModel(config.features.transformer(), tier, config.model)
    return model.fit(frame, frame["recovered"].to_numpy(int))


@pytest.fixture(scope="module")
def split():
    frame = generate_frame(12_000, seed=21, as_of="2026-06-30")
    return frame.iloc[:9_000], frame.iloc[9_000:]


@pytest.fixture(scope="module")
def model(split):
    return _fit(split[0])


def test_beats_the_scorecard_and_tracks_the_truth_on_every_tier(model, split):
    train, test = split
    p = model.recovery_probability(test)
    card = Scorecard(model.features_, "given_tier").fit(train, train["recovered"].to_numpy(int))
    auc_model = roc_auc_score(test["recovered"], p)
    auc_card = roc_auc_score(test["recovered"], card.recovery_probability(test))
    assert auc_model > auc_card
    truth = truth_metrics(model.tier_matrix(test), test)
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
    before, after = model.tier_matrix(rows), model.tier_matrix(older)
    assert (after.to_numpy() <= before.to_numpy() + 1e-12).all()


@settings(max_examples=20, deadline=None)
@given(
    start=st.integers(0, 2_900),
    asset=st.sampled_from(["owns_real_estate", "owns_vehicle", "has_equity_holdings"]),
    extra=st.integers(1, 4),
)
def test_recovery_never_falls_with_assets_or_partial_payments(model, split, start, asset, extra):
    rows = split[1].iloc[start : start + 100]
    richer = rows.assign(**{asset: True})
    assert (
        model.tier_matrix(richer).to_numpy() >= model.tier_matrix(rows).to_numpy() - 1e-12
    ).all()
    payers = rows[rows["n_partial_payments"] > 0]
    more = payers.assign(n_partial_payments=payers["n_partial_payments"] + extra)
    assert (
        model.tier_matrix(more).to_numpy() >= model.tier_matrix(payers).to_numpy() - 1e-12
    ).all()


def test_tier_matrix_and_predict_proba_agree(model, split):
    test = split[1].head(500)
    matrix = model.tier_matrix(test)
    assert list(matrix.columns) == [probability_column(t) for t in TIERS]
    for tier in TIERS:
        np.testing.assert_array_equal(
            matrix[probability_column(tier)], model.predict_proba(test, tier)[:, 1]
        )
    given_p = model.recovery_probability(test)
    codes = pd.Categorical(test["given_tier"], categories=TIERS).codes
    np.testing.assert_array_equal(given_p, matrix.to_numpy()[np.arange(len(test)), codes])
    assert matrix.nunique().min() > 10  # the tier changes the answer


def test_tier_matrix_is_lightgbms_own_dataframe_prediction(model, split):
    """The float-matrix fast path gives LightGBM's DataFrame answer exactly, unseen levels too."""
    test = split[1].head(400).copy()
    test.iloc[:50, test.columns.get_loc("region")] = "atlantis"  # unseen: missing in the model
    test.iloc[50:60, test.columns.get_loc("industry")] = None
    matrix = model.tier_matrix(test)
    for tier in TIERS:
        design = model._design(test, tier)
        raw = model.booster_.predict(design, num_iteration=model.best_iteration_)
        expected = apply_calibration(model.calibration_, raw)
        np.testing.assert_array_equal(matrix[probability_column(tier)].to_numpy(), expected)


def test_save_load_gives_identical_predictions_and_holds_no_pickle(model, split, tmp_path):
    model.save(tmp_path / "pkg")
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == ["model.txt", "package.json"]
    assert (tmp_path / "pkg" / "model.txt").read_text().startswith("tree")
    package = json.loads((tmp_path / "pkg" / "package.json").read_text())
    assert package["tier_column"] == "given_tier" and package["versions"]["lightgbm"]
    loaded = RecoveryModel.load(tmp_path / "pkg")
    test = split[1]
    pd.testing.assert_frame_equal(loaded.tier_matrix(test), model.tier_matrix(test))


def test_a_tampered_or_incomplete_package_is_refused(model, tmp_path):
    model.save(tmp_path / "pkg")
    text = (tmp_path / "pkg" / "model.txt").read_text()
    (tmp_path / "pkg" / "model.txt").write_text(text.replace("tree", "tree ", 1))
    with pytest.raises(RecoverscoreError, match="does not match"):
        RecoveryModel.load(tmp_path / "pkg")
    (tmp_path / "pkg" / "package.json").unlink()
    with pytest.raises(RecoverscoreError, match=r"package\.json is missing"):
        RecoveryModel.load(tmp_path / "pkg")


def test_same_seed_same_model_file(split, tmp_path):
    rows = split[0].head(3_000)
    _fit(rows).save(tmp_path / "a")
    _fit(rows).save(tmp_path / "b")
    assert (tmp_path / "a" / "model.txt").read_bytes() == (
        tmp_path / "b" / "model.txt"
    ).read_bytes()


def test_plain_recovery_model_without_tiers(split):
    rows = split[0].head(3_000).drop(columns=["given_tier"])
    config = CONFIG.model_copy(
        update={"data": CONFIG.data.model_copy(update={"tier_column": None})}
    )
    prepared = prepare_training_data(rows, config)
    model = _fit(prepared.frame, config, tier=None)
    matrix = model.tier_matrix(split[1].head(50))
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
    model = _fit(prepared.frame, config, tier=None)
    assert set(model.feature_names_) == {*standard, "score_a", "segment"}
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
    assert "principal" in prepared.rejected["reasons"].iloc[0]


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
