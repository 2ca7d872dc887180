"""The backtest: joining outcomes to scored runs, its statistics against independent
computations, its warnings, plots and every error a user can hit."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import brier_score_loss, roc_auc_score

from recoverscore.data.schemas import TIERS, Outcomes, probability_column, value_column
from recoverscore.data.validation import validate
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring.backtest import (
    bernoulli_z,
    by_decile,
    by_tier,
    check_scored,
    compare_cells,
    join_outcomes,
    mean_interval,
    run_backtest,
)
from recoverscore.scoring.package import ModelPackage

Z_975 = 1.959963984540054  # standard normal quantiles, written out so tests do not share code
Z_80 = 0.8416212335729143


def scored_frame(
    ids: list[str],
    as_of: str,
    tiers: list[str] | str,
    p: float | list[float] = 0.5,
    version: str = "7",
    id_column: str = "debtor_id",
    cells: list[str] | None = None,
) -> pd.DataFrame:
    """A scored run by hand: the columns the backtest reads, every tier predicted ``p``."""
    n = len(ids)
    frame = pd.DataFrame(
        {
            id_column: ids,
            "as_of": pd.Timestamp(as_of),
            "model_version": version,
            "recommended_tier": tiers if isinstance(tiers, list) else [tiers] * n,
            "expected_net_value": 100.0,
        }
    )
    for tier in TIERS:
        frame[probability_column(tier)] = p
        frame[value_column(tier)] = 100.0
    if cells is not None:
        frame["cell"] = cells
    return frame


def outcomes_frame(
    ids: list[str], dates: list[str] | str, recovered: list[bool], id_column: str = "debtor_id"
) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            id_column: ids,
            "recovered": recovered,
            "amount_recovered": [1000.0 if r else 0.0 for r in recovered],
            "costs": 100.0,
            "outcome_date": dates if isinstance(dates, list) else [dates] * n,
        }
    )


def joined(frame: pd.DataFrame, **columns) -> pd.DataFrame:
    """A joined frame as the reports read it, built by hand."""
    return frame.assign(**columns)


# --- joining -------------------------------------------------------------------------------------


def test_latest_scoring_on_or_before_the_outcome_date_wins_and_a_rerun_replaces_its_run():
    january = scored_frame(["A", "B", "C"], "2026-01-01", "soft_reminder", version="1")
    february = scored_frame(["A", "B"], "2026-02-01", "litigation", version="2")
    rerun = scored_frame(["B"], "2026-02-01", "mediation", version="3")  # same date: replaces
    outcomes = outcomes_frame(
        ["A", "B", "C", "D", "E"],
        ["2026-01-15", "2026-03-01", "2025-12-31", "2026-03-01", "2026-02-01"],
        [True, False, True, False, True],
    )
    outcomes.loc[4, "debtor_id"] = "A"  # A twice: both outcomes of A are rejected
    result = join_outcomes([january, february, rerun], outcomes)
    frame = result.frame.set_index("debtor_id")
    assert frame.loc["B", "tier"] == "mediation" and frame.loc["B", "model_version"] == "3"
    assert frame.loc["B", "run"] == 2
    assert list(frame.index) == ["B"]
    reasons = dict(zip(result.rejects["row"], result.rejects["failed_checks"], strict=True))
    assert reasons[1] == reasons[5] == "debtor_id: field_uniqueness"
    assert reasons[3] == "outcome_date: no scoring on or before it"  # C scored after its outcome
    assert reasons[4] == "debtor_id: not among the scored debts"
    assert result.counts == {
        "outcomes_in": 5,
        "matched": 1,
        "rejected": 4,
        "runs": 3,
        "scored_rows": 6,
        "scored_debts": 3,
        "scored_without_outcome": 2,
        "scored_in_several_runs": 1,
    }
    assert result.rejects.columns[:2].tolist() == ["row", "failed_checks"]
    assert result.rejects.loc[result.rejects["row"] == 4, "debtor_id"].item() == "D"


def test_an_outcome_dated_the_day_of_its_scoring_joins_it():
    scored = scored_frame(["A"], "2026-03-01", "mediation")
    result = join_outcomes([scored], outcomes_frame(["A"], "2026-03-01", [True]))
    assert result.frame["tier"].tolist() == ["mediation"] and result.rejects.empty


def test_given_tier_overrides_the_recommendation_and_picks_its_prediction():
    scored = scored_frame(["A", "B"], "2026-01-01", "soft_reminder")
    scored[probability_column("litigation")] = [0.9, 0.8]
    outcomes = outcomes_frame(["A", "B"], "2026-06-01", [True, False])
    outcomes["given_tier"] = ["litigation", None]
    frame = join_outcomes([scored], outcomes).frame
    assert frame["tier"].tolist() == ["litigation", "soft_reminder"]
    assert frame["predicted"].tolist() == [0.9, 0.5]
    assert frame["net"].tolist() == [900.0, -100.0]


def test_a_model_with_its_own_id_name_joins_on_it():
    scored = scored_frame(["K1", "K2"], "2026-01-01", "mediation", id_column="case_no")
    outcomes = outcomes_frame(["K1", "K2"], "2026-05-01", [True, False], id_column="case_no")
    result = join_outcomes([scored], outcomes)
    assert result.id_column == "case_no" and result.frame["case_no"].tolist() == ["K1", "K2"]
    with pytest.raises(RecoverscoreError, match="outcomes lack case_no"):
        join_outcomes([scored], outcomes_frame(["K1"], "2026-05-01", [True]))


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_joining_is_order_invariant(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 10_000)))
    ids = [f"X{i}" for i in range(30)]
    runs = [
        scored_frame(ids[: 10 + 10 * k], f"2026-0{k + 1}-01", TIERS[k], p=0.2 * (k + 1))
        for k in range(3)
    ]
    dates = [f"2026-0{m}-15" for m in rng.integers(1, 5, size=30)]
    outcomes = outcomes_frame(ids, dates, list(rng.random(30) < 0.4))
    baseline = join_outcomes(runs, outcomes)
    shuffled = join_outcomes(
        [run.sample(frac=1, random_state=int(rng.integers(1 << 30))) for run in runs],
        outcomes.sample(frac=1, random_state=int(rng.integers(1 << 30))),
    )

    def key(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns="row").sort_values("debtor_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(key(baseline.frame), key(shuffled.frame))
    assert baseline.counts == shuffled.counts


def test_outcome_rows_that_break_the_contract_are_rejected_with_their_reasons():
    scored = scored_frame(["A", "B", "C", "D"], "2026-01-01", "mediation")
    outcomes = outcomes_frame(["A", "B", "C", "D"], "2026-06-01", [True, True, False, False])
    outcomes = outcomes.astype({"amount_recovered": object, "outcome_date": object})
    outcomes.loc[1, "amount_recovered"] = 0.0  # recovered, nothing came back
    outcomes.loc[2, "amount_recovered"] = -5.0
    outcomes.loc[3, "outcome_date"] = "next spring"
    result = join_outcomes([scored], outcomes)
    reasons = dict(zip(result.rejects["row"], result.rejects["failed_checks"], strict=True))
    assert reasons[2] == "amount_recovered: amount_recovered > 0 exactly when recovered"
    assert "amount_recovered: greater_than_or_equal_to(0)" in reasons[3]
    assert reasons[4] == "outcome_date: parse as date"
    assert result.frame["debtor_id"].tolist() == ["A"]


def test_user_errors_are_one_line(tmp_path):
    scored = scored_frame(["A"], "2026-01-01", "mediation")
    outcomes = outcomes_frame(["A"], "2026-06-01", [True])
    cases = [
        ([scored.drop(columns="p_mediation")], outcomes, "lacks p_mediation"),
        ([scored], outcomes.drop(columns=["costs", "outcome_date"]), "lack costs, outcome_date"),
        ([scored, scored.rename(columns={"debtor_id": "case_no"})], outcomes, "differently"),
        ([scored], outcomes_frame(["Z"], "2026-06-01", [True]), "none of the 1 outcomes"),
        ([scored.assign(recommended_tier="prison")], outcomes, "break the scored contract"),
        ([pd.DataFrame()], outcomes, "no columns"),
        ([], outcomes, "at least one scored file"),
    ]
    for runs, frame, message in cases:
        with pytest.raises(RecoverscoreError, match=message) as error:
            join_outcomes(runs, frame)
        assert "\n" not in str(error.value)


def test_a_duplicated_scored_id_within_one_run_is_an_error_naming_the_file():
    scored = scored_frame(["A", "A"], "2026-01-01", "mediation")
    with pytest.raises(RecoverscoreError, match=r"march\.csv: 2 of 2 rows break"):
        check_scored(scored, "march.csv")


# --- statistics against independent computations -------------------------------------------------


def test_bernoulli_z_by_hand():
    z, p = bernoulli_z(np.array([1, 0, 1, 1]), np.array([0.5, 0.5, 0.2, 0.8]))
    expected = (3 - 2.0) / math.sqrt(0.25 + 0.25 + 0.16 + 0.16)
    assert z == pytest.approx(expected)
    assert p == pytest.approx(math.erfc(expected / math.sqrt(2)))  # two-sided normal tail
    assert all(math.isnan(v) for v in bernoulli_z(np.array([1, 0]), np.array([1.0, 0.0])))


def test_by_tier_by_hand():
    frame = pd.DataFrame(
        {
            "tier": ["mediation"] * 4 + ["litigation"] * 2,
            "recovered": [True, False, True, True, False, False],
            "predicted": [0.5, 0.5, 0.5, 0.5, 0.3, 0.1],
            "net": [10.0, -2, 10, 10, -50, -50],
            "expected_net": [4.0] * 6,
        }
    )
    table = by_tier(frame)
    assert table.index.tolist() == ["mediation", "litigation"]  # escalation order
    row = table.loc["mediation"]
    assert (row["debts"], row["share"], row["realised_rate"]) == (4, 4 / 6, 0.75)
    assert row["z"] == pytest.approx((3 - 2) / math.sqrt(4 * 0.25))
    # Wilson score interval for 3 of 4, written out
    n, phat, z = 4, 0.75, Z_975
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    assert (row["rate_ci_low"], row["rate_ci_high"]) == pytest.approx(
        (centre - half, centre + half)
    )
    assert row["realised_net_per_debt"] == 7.0 and row["realised_over_predicted"] == 1.5
    assert table.loc["litigation", "realised_rate"] == 0.0


def test_decile_test_by_hand_and_its_p_value_from_the_chi_square():
    frame = pd.DataFrame(
        {"recovered": [1, 1, 0, 0, 1, 0], "predicted": [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]}
    )
    table, test = by_decile(frame, groups=2)
    top, bottom = (
        (2 - 2.4) / math.sqrt(0.09 + 0.16 + 0.21),
        (1 - 0.6) / math.sqrt(0.21 + 0.16 + 0.09),
    )
    assert table["z"].tolist() == pytest.approx([top, bottom])
    assert test.statistic == pytest.approx(top**2 + bottom**2) and test.df == 2
    assert test.p_value == pytest.approx(math.exp(-test.statistic / 2))  # chi-square, 2 df
    assert test.largest_gap == pytest.approx(abs(1 / 3 - 0.2))


def test_calibrated_outcomes_are_flagged_at_the_test_level_and_shifted_ones_always():
    rng = np.random.default_rng(5)
    flagged, shifted = [], []
    for _ in range(300):
        p = rng.beta(2, 3, size=2_000)
        y = rng.random(2_000) < p
        flagged.append(by_decile(pd.DataFrame({"recovered": y, "predicted": p}))[1].p_value < 0.05)
        y = rng.random(2_000) < np.clip(p + 0.06, 0, 1)
        shifted.append(by_decile(pd.DataFrame({"recovered": y, "predicted": p}))[1].p_value < 0.05)
    assert 0.02 <= np.mean(flagged) <= 0.09
    assert np.mean(shifted) > 0.95


def test_cell_comparison_is_welchs_test():
    rng = np.random.default_rng(1)
    champion, value = rng.lognormal(8, 1.5, 400), rng.lognormal(8.1, 1.5, 300)
    frame = pd.DataFrame(
        {"cell": ["champion"] * 400 + ["value"] * 300, "net": np.r_[champion, value]}
    )
    row = compare_cells(frame, resamples=2000, seed=3).loc["value"]
    v1, v2 = champion.var(ddof=1) / 400, value.var(ddof=1) / 300
    t = (value.mean() - champion.mean()) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / 399 + v2**2 / 299)  # Welch-Satterthwaite
    assert row["difference"] == pytest.approx(value.mean() - champion.mean())
    assert row["t"] == pytest.approx(t)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), df))
    half = stats.t.ppf(0.975, df) * math.sqrt(v1 + v2)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (row["difference"] - half, row["difference"] + half)
    )
    assert row["lift"] == pytest.approx(row["difference"] / champion.mean())
    assert row["boot_ci_low"] < row["difference"] < row["boot_ci_high"]
    assert row["boot_ci_high"] - row["boot_ci_low"] == pytest.approx(2 * half, rel=0.2)


def test_an_equal_challenger_is_flagged_about_as_often_as_the_level_on_heavy_tails():
    rng = np.random.default_rng(8)
    p_values = []
    for _ in range(400):
        net = rng.lognormal(9, 1.6, 3_000) - 2_000  # heavy right tail, some losses
        cells = np.where(rng.random(3_000) < 0.2, "challenger", "champion")
        frame = pd.DataFrame({"cell": cells, "net": net})
        p_values.append(compare_cells(frame, resamples=0).loc["challenger", "p_value"])
    p_values = np.array(p_values)
    assert 0.025 <= np.mean(p_values < 0.05) <= 0.08
    assert stats.kstest(p_values, "uniform").pvalue > 0.001


def test_mean_interval_is_the_t_interval():
    values = np.array([3.0, 5.0, 10.0])
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / math.sqrt(3)
    assert mean_interval(values) == pytest.approx((6 - half, 6 + half))
    assert all(math.isnan(v) for v in mean_interval(np.array([1.0])))


# --- the whole backtest on a scored synthetic portfolio -------------------------------------------


@pytest.fixture(scope="module")
def package(model_dir) -> ModelPackage:
    return ModelPackage.load(model_dir)


@pytest.fixture(scope="module")
def month(package):
    """A month of debts scored with the matrix policy, split into cells, and its outcomes."""
    import recoverscore
    from recoverscore.data.schemas import Portfolio
    from recoverscore.data.synthetic import generate_frame
    from recoverscore.scoring import simulate

    world = generate_frame(4_000, seed=21, as_of="2026-06-30", id_prefix="M-")
    portfolio = world[list(Portfolio.to_schema().columns)]
    champion = recoverscore.score(portfolio, package, policy="matrix", explain=False)
    value = recoverscore.score(portfolio, package, policy="value", explain=False)
    cells = [
        simulate.Cell("champion", 0.7, champion["recommended_tier"]),
        simulate.Cell("value", 0.25, value["recommended_tier"]),
        simulate.Cell("explore", 0.05),
    ]
    scored = simulate.assign_design(champion, "test-month", cells)
    return world, scored, simulate.simulate_outcomes(scored, world, seed=4).outcomes


def test_backtest_of_a_month(month, package):
    _, scored, outcomes = month
    result = run_backtest([scored], outcomes, package=package, resamples=200)
    frame = result.joined.frame
    assert len(frame) == len(outcomes) == 4_000 and result.counts["rejected"] == 0
    y = frame["recovered"].to_numpy(int)
    assert result.quality.loc["auc", "realised"] == pytest.approx(
        roc_auc_score(y, frame["predicted"])
    )
    assert result.quality.loc["brier", "realised"] == pytest.approx(
        brier_score_loss(y, frame["predicted"])
    )
    assert math.isnan(result.quality.loc["auc", "training"])  # the fixture's package has none
    assert set(result.by_cell.index) == {"champion", "value", "explore"}
    assert result.by_cell["debts"].sum() == 4_000
    assert set(result.comparison.index) == {"value", "explore"}
    net = (outcomes["amount_recovered"] - outcomes["costs"]).groupby(scored["cell"]).mean()
    assert result.by_cell["net_per_debt"].to_dict() == pytest.approx(net.to_dict())
    assert result.model_versions == [package.label]
    assert result.by_tier["debts"].sum() == 4_000 and result.by_decile["debts"].sum() == 4_000


def test_training_figures_come_from_the_package(month, package):
    _, scored, outcomes = month
    metadata = {**package.metadata, "test_auc": 0.8, "test_brier": 0.17, "test_ece": 0.01}
    known = replace(package, metadata=metadata)
    result = run_backtest([scored], outcomes, package=known, version="9", resamples=0)
    assert result.quality["training"].tolist() == [0.8, 0.17, 0.01]
    assert any("the model given (9) did not score these debts" in n for n in result.notes)


def test_a_tier_that_works_worse_than_predicted_is_warned_about_and_chance_is_not(month):
    _, scored, outcomes = month
    calibrated = scored.copy()
    rng = np.random.default_rng(0)
    p = calibrated["p_litigation"].to_numpy()
    recovered = rng.random(len(p)) < p
    truthful = outcomes.assign(
        recovered=recovered,
        amount_recovered=np.where(recovered, 1000.0, 0.0),
        given_tier="litigation",
    )
    quiet = run_backtest([calibrated], truthful, resamples=0)
    assert quiet.warnings == []
    worse = rng.random(len(p)) < p * 0.6
    broken = truthful.assign(recovered=worse, amount_recovered=np.where(worse, 1000.0, 0.0))
    loud = run_backtest([calibrated], broken, resamples=0)
    assert any(
        w.startswith("litigation: realised recovery") and "worse" in w for w in loud.warnings
    )
    assert any(w.startswith("calibration:") for w in loud.warnings)
    tolerant = run_backtest([calibrated], broken, resamples=0, tolerance=0.5)
    assert tolerant.warnings == []  # significant, but not by a margin that matters


def test_without_cells_or_without_a_champion_cell_there_is_nothing_to_compare(month):
    _, scored, outcomes = month
    plain = run_backtest([scored.drop(columns="cell")], outcomes, resamples=0)
    assert plain.by_cell.empty and plain.comparison.empty
    assert "no experiment cells in the scored files: no cell comparison" in plain.notes
    renamed = run_backtest([scored], outcomes, champion="incumbent", resamples=0)
    assert renamed.comparison.empty and not renamed.by_cell.empty
    assert any("no cell is named 'incumbent'" in n for n in renamed.notes)


def test_plots_and_metrics_carry_no_ids(month):
    _, scored, outcomes = month
    result = run_backtest([scored], outcomes, resamples=0)
    figures = result.figures()
    assert set(figures) == {"calibration_on_outcomes", "lift_by_tier", "cells"}
    ticks = [t.get_text() for t in figures["lift_by_tier"].axes[0].get_xticklabels()]
    assert ticks == ["soft reminder", "mediation", "payment order", "litigation"][: len(ticks)]
    ids = set(scored["debtor_id"])
    for figure in figures.values():
        texts = [t.get_text() for t in figure.findobj(lambda a: hasattr(a, "get_text"))]
        assert not ids & {word for text in texts for word in text.split()}
    metrics = result.metrics()
    assert all(np.isfinite(v) for v in metrics.values())
    assert not any(i in key for key in metrics for i in ids)
    assert metrics["count_matched"] == 4_000


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"alpha": 0}, "alpha"),
        ({"tolerance": 1.5}, "tolerance"),
        ({"confidence": 1}, "confidence"),
        ({"resamples": -1}, "resamples"),
    ],
)
def test_bad_settings_are_one_line_errors(settings_, message):
    scored = scored_frame(["A"], "2026-01-01", "mediation")
    with pytest.raises(RecoverscoreError, match=message):
        run_backtest([scored], outcomes_frame(["A"], "2026-06-01", [True]), **settings_)


def test_the_outcomes_contract_checks_what_it_says():
    frame = outcomes_frame(["A", "B"], "2026-06-01", [True, False])
    frame["given_tier"] = ["litigation", "jail"]
    report = validate(frame, Outcomes)
    assert report.failures[["row", "column"]].values.tolist() == [[2, "given_tier"]]
