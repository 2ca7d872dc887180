"""The synthetic loop's act and observe: hashed experiment designs and outcomes from the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import recoverscore
from recoverscore.data.costs import load_costs
from recoverscore.data.schemas import TIERS, Outcomes, Portfolio, SyntheticHistory
from recoverscore.data.synthetic import (
    draw_outcomes,
    expected_net_recovery,
    generate_frame,
    load_synthetic_config,
)
from recoverscore.data.validation import validate
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring.package import ModelPackage
from recoverscore.scoring.simulate import (
    Cell,
    allowed_tiers,
    assign_design,
    simulate_outcomes,
)
from recoverscore.strategy.experiment import keyed_uniform

AS_OF = "2026-06-30"


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    return generate_frame(6_000, seed=31, as_of=AS_OF, id_prefix="W-")


@pytest.fixture(scope="module")
def scored(world, model_dir) -> pd.DataFrame:
    portfolio = world[list(Portfolio.to_schema().columns)]
    return recoverscore.score(portfolio, ModelPackage.load(model_dir), explain=False)


# --- hashing and designs -------------------------------------------------------------------------


def test_keyed_uniform_is_uniform_deterministic_and_keyed():
    ids = pd.Series([f"D{i:09d}" for i in range(50_000)])
    u = keyed_uniform(ids, "march", "cell")
    assert ((u >= 0) & (u < 1)).all()
    assert stats.kstest(u, "uniform").pvalue > 0.001
    assert np.array_equal(u, keyed_uniform(ids.copy(), "march", "cell"))
    assert np.array_equal(u[::-1], keyed_uniform(ids[::-1], "march", "cell"))  # per id
    for other in (keyed_uniform(ids, "april", "cell"), keyed_uniform(ids, "march", "explore")):
        assert abs(np.corrcoef(u, other)[0, 1]) < 0.02


def _tiers(n: int, tier: str) -> np.ndarray:
    return np.full(n, tier, dtype=object)


def test_design_shares_propensities_and_exploration(scored):
    n = len(scored)
    champion = scored["recommended_tier"].to_numpy(dtype=object)
    cells = [
        Cell("champion", 0.6, champion),
        Cell("soft", 0.3, _tiers(n, "soft_reminder")),
        Cell("explore", 0.1),
    ]
    design = assign_design(scored, "exp-1", cells)
    shares = design["cell"].value_counts(normalize=True)
    for cell in cells:  # within 4 binomial standard errors of the design
        assert abs(shares[cell.name] - cell.share) < 4 * np.sqrt(cell.share * (1 - cell.share) / n)
    assert (design["champion_tier"] == champion).all()
    in_champion = design["cell"] == "champion"
    assert (design.loc[in_champion, "recommended_tier"] == champion[in_champion]).all()
    assert (design.loc[design["cell"] == "soft", "recommended_tier"] == "soft_reminder").all()
    allowed = allowed_tiers(scored)
    # propensity by hand: 0.6 [champion's tier] + 0.3 [soft] + 0.1 / allowed count [allowed]
    given = design["recommended_tier"].to_numpy(dtype=object)
    expected = (
        0.6 * (given == champion)
        + 0.3 * (given == "soft_reminder")
        + 0.1 / allowed.sum(axis=1) * allowed[np.arange(n), [TIERS.index(t) for t in given]]
    )
    assert np.allclose(design["assignment_propensity"], expected)
    explored = design[design["cell"] == "explore"]
    codes = np.array([TIERS.index(t) for t in explored["recommended_tier"]])
    assert allowed[np.flatnonzero(design["cell"] == "explore"), codes].all()  # guardrails hold
    values = design[[f"ev_{t}" for t in TIERS]].to_numpy()
    assert np.allclose(
        design["expected_net_value"], values[np.arange(n), [TIERS.index(t) for t in given]]
    )


def test_exploration_is_uniform_among_allowed_tiers():
    n = 40_000
    scored = pd.DataFrame(
        {
            "debtor_id": [f"E{i}" for i in range(n)],
            "excluded_tiers": ["litigation:NO_ASSETS;mediation:LOW_SUPPORT"] * n,
            **{f"ev_{t}": 0.0 for t in TIERS},
            "recommended_tier": "soft_reminder",
            "expected_net_value": 0.0,
        }
    )
    design = assign_design(
        scored, "uniform", [Cell("champion", 0.5, _tiers(n, "soft_reminder")), Cell("x", 0.5)]
    )
    explored = design.loc[design["cell"] == "x", "recommended_tier"].value_counts()
    assert set(explored.index) == {"soft_reminder", "mediation", "payment_order"}
    assert stats.chisquare(explored.to_numpy()).pvalue > 0.001
    soft = design["recommended_tier"] == "soft_reminder"
    assert np.allclose(design.loc[soft, "assignment_propensity"], 0.5 + 0.5 / 3)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1_000_000))
def test_a_debtor_keeps_its_cell_whatever_the_batch(seed):
    rng = np.random.default_rng(seed)
    n = 300
    scored = pd.DataFrame(
        {
            "debtor_id": [f"P{i}" for i in rng.permutation(10 * n)[:n]],
            "excluded_tiers": "",
            **{f"ev_{t}": 0.0 for t in TIERS},
            "recommended_tier": "mediation",
            "expected_net_value": 0.0,
        }
    )
    cells = [Cell("champion", 0.9, _tiers(n, "mediation")), Cell("explore", 0.1)]
    whole = assign_design(scored, "stay", cells).set_index("debtor_id")
    part = scored.sample(n=n // 3, random_state=seed).reset_index(drop=True)
    some = assign_design(
        part, "stay", [Cell("champion", 0.9, _tiers(n // 3, "mediation")), Cell("explore", 0.1)]
    ).set_index("debtor_id")
    pd.testing.assert_frame_equal(whole.loc[some.index, some.columns], some)


def test_allowed_tiers_reads_guardrails_and_ignores_low_support():
    frame = pd.DataFrame(
        {"excluded_tiers": ["", "litigation:NO_ASSETS", "payment_order:LOW_SUPPORT", None]}
    )
    mask = allowed_tiers(frame)
    assert mask.tolist() == [
        [True, True, True, True],
        [True, True, True, False],
        [True, True, True, True],
        [True, True, True, True],
    ]
    assert allowed_tiers(frame, ignore=())[2].tolist() == [True, True, False, True]


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ([Cell("champion", 0.5, None), Cell("b", 0.5)], "champion cell 'champion' with tiers"),
        ([Cell("champion", 0.6, "x"), Cell("b", 0.3)], "add up to 1"),
        ([Cell("champion", 1.0, ["mediation"]), Cell("champion", 0.0)], "distinct"),
        ([Cell("champion", 1.0, ["mediation", "soft_reminder"])], "2 tiers for 1 debts"),
        ([Cell("champion", 1.0, ["arrest"])], "unknown tier"),
    ],
)
def test_bad_designs_are_one_line_errors(cells, message):
    scored = pd.DataFrame(
        {"debtor_id": ["A"], "excluded_tiers": "", **{f"ev_{t}": 0.0 for t in TIERS}}
    )
    with pytest.raises(RecoverscoreError, match=message):
        assign_design(scored, "bad", cells)


# --- outcomes from the truth ----------------------------------------------------------------------


def test_outcomes_follow_the_truth_of_the_tier_worked(world, scored):
    config, costs = load_synthetic_config(), load_costs()
    simulated = simulate_outcomes(scored, world, seed=2)
    outcomes = simulated.outcomes
    assert outcomes["debtor_id"].tolist() == scored["debtor_id"].tolist()
    assert (outcomes["outcome_date"] == pd.Timestamp(AS_OF) + pd.Timedelta(days=365)).all()
    tiers = scored["recommended_tier"].to_numpy(dtype=object)
    p = world[[f"p_true_{t}" for t in TIERS]].to_numpy()[
        np.arange(len(world)), [TIERS.index(t) for t in tiers]
    ]
    y = outcomes["recovered"].to_numpy(dtype=float)
    z = (y.sum() - p.sum()) / np.sqrt((p * (1 - p)).sum())
    assert abs(z) < 4
    expected = expected_net_recovery(world, world, config, costs).to_numpy()[
        np.arange(len(world)), [TIERS.index(t) for t in tiers]
    ]
    net = (outcomes["amount_recovered"] - outcomes["costs"]).to_numpy()
    assert abs(net.mean() - expected.mean()) < 4 * net.std(ddof=1) / np.sqrt(len(net))
    assert validate(outcomes, Outcomes).is_valid


def test_expected_net_recovery_is_the_mean_of_many_draws(world):
    config, costs = load_synthetic_config(), load_costs()
    rows = world.head(50)
    rng = np.random.default_rng(0)
    draws = 4_000
    repeated = rows.loc[rows.index.repeat(draws)].reset_index(drop=True)
    p = np.repeat(rows["p_true_litigation"].to_numpy(), draws)
    drawn = draw_outcomes(rng, repeated, _tiers(len(repeated), "litigation"), p, config, costs)
    mean = (drawn["amount_recovered"] - drawn["costs"]).groupby(repeated.index // draws).mean()
    spread = (drawn["amount_recovered"] - drawn["costs"]).groupby(repeated.index // draws).std()
    expected = expected_net_recovery(rows, rows, config, costs)["litigation"].to_numpy()
    assert (np.abs(mean.to_numpy() - expected) <= 4 * spread.to_numpy() / np.sqrt(draws) + 1).all()


def test_simulation_is_deterministic_by_seed(world, scored):
    first = simulate_outcomes(scored, world, seed=5).outcomes
    pd.testing.assert_frame_equal(first, simulate_outcomes(scored, world, seed=5).outcomes)
    assert not first["recovered"].equals(
        simulate_outcomes(scored, world, seed=6).outcomes["recovered"]
    )


def test_history_rows_are_a_synthetic_history_with_the_design_propensity(world, scored, model_dir):
    n = len(scored)
    design = assign_design(
        scored, "h", [Cell("champion", 0.95, scored["recommended_tier"]), Cell("explore", 0.05)]
    )
    history = simulate_outcomes(design, world, seed=1).history
    report = validate(history, SyntheticHistory)
    assert report.is_valid, report.failures.head()
    assert len(history) == n and history["debtor_id"].is_unique
    assert (history["given_tier"] == design["recommended_tier"]).all()
    assert np.allclose(history["propensity"], design["assignment_propensity"])
    assert (history["cell"] == design["cell"]).all()
    assert (history["champion_tier"] == design["champion_tier"]).all()
    columns = list(Portfolio.to_schema().columns)
    carried = history[columns]  # optional flags as the contract types them (nullable booleans)
    pd.testing.assert_frame_equal(carried, world[columns].astype(carried.dtypes.to_dict()))
    plain = simulate_outcomes(scored, world, seed=1).history
    assert (plain["propensity"] == 1.0).all() and plain["cell"].isna().all()


def test_simulation_errors_are_one_line(world, scored):
    later = scored.assign(as_of=pd.Timestamp("2026-07-31"))
    cases = [
        (scored, world.drop(columns="p_true_litigation"), "p_true_litigation"),
        (scored, world.rename(columns={"debtor_id": "case_no"}), "no 'debtor_id' column"),
        (scored, world.head(100), "5,900 of 6,000 scored debts are not in the world"),
        (later, world, "scored as of another date than the world's truth"),
        (scored.drop(columns="as_of"), world, "lacks as_of"),
    ]
    for frame, source, message in cases:
        with pytest.raises(RecoverscoreError, match=message) as error:
            simulate_outcomes(frame, source, seed=0)
        assert "\n" not in str(error.value)


def test_unworked_debts_are_left_out_and_counted(world, scored):
    frame = scored.astype({"recommended_tier": object})
    frame.loc[:9, "recommended_tier"] = None
    simulated = simulate_outcomes(frame, world, seed=0)
    assert simulated.unworked == 10 and len(simulated.outcomes) == len(scored) - 10
