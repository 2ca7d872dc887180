"""Off-policy evaluation: hand-computed cases, properties, honesty, input checks, and a world
where the truth is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recoverscore.data.costs import load_costs
from recoverscore.data.facts import DebtFacts
from recoverscore.data.schemas import TIERS, probability_column, tier_codes
from recoverscore.data.synthetic import generate_frame, legacy_probabilities
from recoverscore.errors import RecoverscoreError
from recoverscore.strategy.offpolicy import (
    ESTIMATORS,
    NET_RECOVERY,
    RESULT_COLUMNS,
    Thresholds,
    describe,
    estimate_value,
    evaluate_policy,
)
from recoverscore.strategy.policy import Cases, economics, load_policy_config
from tests.conftest import AS_OF

K = len(TIERS)


def _estimates(result: pd.DataFrame) -> dict[str, float]:
    return dict(zip(result["estimator"], result["estimate"], strict=True))


def _full_support(n: int) -> np.ndarray:
    return np.full((n, K), 1 / K)


# --- hand-computed cases -------------------------------------------------------------------------

# Four debts. Logged tiers, their propensities and rewards:
#   debt 0: soft_reminder (0), p = 0.5,  r = 10
#   debt 1: mediation (1),     p = 0.25, r = 0
#   debt 2: soft_reminder (0), p = 0.8,  r = 4
#   debt 3: litigation (3),    p = 0.5,  r = 20
# Target: soft_reminder for debts 0, 1, 2 and litigation for debt 3.
# Weights w = pi(a | x) / p: debt 0: 1/0.5 = 2; debt 1: 0 (target is not mediation);
#   debt 2: 1/0.8 = 1.25; debt 3: 1/0.5 = 2.
# logged: (10 + 0 + 4 + 20) / 4 = 8.5
# IPS:    (2*10 + 0 + 1.25*4 + 2*20) / 4 = (20 + 5 + 40) / 4 = 16.25
# SNIPS:  65 / (2 + 0 + 1.25 + 2) = 65 / 5.25 = 12.380952...
# ESS:    (5.25)^2 / (4 + 0 + 1.5625 + 4) = 27.5625 / 9.5625 = 2.882352...
# Direct model q (rows: debts, columns: tiers):
#   debt 0: [8, 1, 1, 1]  -> target tier 0: 8,  logged tier 0: 8,  residual 10 - 8 = 2
#   debt 1: [6, 2, 0, 0]  -> target tier 0: 6,  logged tier 1: 2,  residual 0 - 2 = -2
#   debt 2: [5, 0, 0, 0]  -> target tier 0: 5,  logged tier 0: 5,  residual 4 - 5 = -1
#   debt 3: [0, 0, 0, 16] -> target tier 3: 16, logged tier 3: 16, residual 20 - 16 = 4
# DM: (8 + 6 + 5 + 16) / 4 = 8.75
# DR: DM + (2*2 + 0*(-2) + 1.25*(-1) + 2*4) / 4 = 8.75 + (4 - 1.25 + 8) / 4 = 8.75 + 2.6875
#     = 11.4375
HAND = {
    "reward": np.array([10.0, 0.0, 4.0, 20.0]),
    "action": ["soft_reminder", "mediation", "soft_reminder", "litigation"],
    "propensity": np.array([0.5, 0.25, 0.8, 0.5]),
    "target": ["soft_reminder", "soft_reminder", "soft_reminder", "litigation"],
    "direct": np.array(
        [[8.0, 1, 1, 1], [6.0, 2, 0, 0], [5.0, 0, 0, 0], [0.0, 0, 0, 16]],
    ),
}
NO_CHECKS = Thresholds(min_propensity=0.0, max_unsupported_share=1.0, min_ess=0.0)


def test_every_estimator_by_hand():
    result = estimate_value(
        HAND["reward"],
        HAND["action"],
        HAND["propensity"],
        HAND["target"],
        _full_support(4),
        HAND["direct"],
        thresholds=NO_CHECKS,
        n_resamples=200,
    )
    assert list(result.columns) == list(RESULT_COLUMNS)
    assert list(result["estimator"]) == list(ESTIMATORS)
    got = _estimates(result)
    assert got["logged"] == pytest.approx(8.5)
    assert got["ips"] == pytest.approx(16.25)
    assert got["snips"] == pytest.approx(65 / 5.25)
    assert got["dm"] == pytest.approx(8.75)
    assert got["dr"] == pytest.approx(11.4375)
    ess = result.set_index("estimator")["ess"]
    assert ess["ips"] == pytest.approx(5.25**2 / 9.5625)
    assert ess["logged"] == 4 and np.isnan(ess["dm"])
    assert (result["n"] == 4).all() and result["reliable"].all()


def test_stochastic_target_by_hand():
    """Target: half soft_reminder, half litigation for every debt. Weights: debt 0: 0.5/0.5 = 1;
    debt 1: 0; debt 2: 0.5/0.8 = 0.625; debt 3: 0.5/0.5 = 1.
    IPS = (10 + 0 + 2.5 + 20) / 4 = 8.125; SNIPS = 32.5 / 2.625.
    DM = mean of 0.5 q0 + 0.5 q3 = (4.5 + 3 + 2.5 + 8) / 4 = 4.5;
    DR = 4.5 + (1*2 + 0 + 0.625*(-1) + 1*4) / 4 = 4.5 + 1.34375 = 5.84375."""
    target = np.tile([0.5, 0.0, 0.0, 0.5], (4, 1))
    result = estimate_value(
        HAND["reward"],
        tier_codes(HAND["action"]),  # positions work as well as names
        HAND["propensity"],
        target,
        _full_support(4),
        HAND["direct"],
        thresholds=NO_CHECKS,
        n_resamples=50,
    )
    got = _estimates(result)
    assert got["ips"] == pytest.approx(8.125)
    assert got["snips"] == pytest.approx(32.5 / 2.625)
    assert got["dm"] == pytest.approx(4.5)
    assert got["dr"] == pytest.approx(5.84375)


def test_both_rewards_are_scaled_and_share_resamples():
    recovered = HAND["reward"] > 0
    result = evaluate_policy(
        HAND["reward"],
        recovered,
        HAND["action"],
        HAND["propensity"],
        HAND["target"],
        _full_support(4),
        thresholds=NO_CHECKS,
        n_resamples=300,
        seed=3,
    )
    net = result[result["reward"] == "net_recovery"].set_index("estimator")
    rate = result[result["reward"] == "recovery_rate"].set_index("estimator")
    assert list(net.index) == ["logged", "ips", "snips"]  # no direct model: no DM, DR
    assert net.loc["ips", "estimate"] == pytest.approx(16.25 * 1000)
    assert (net["unit"] == NET_RECOVERY.unit).all() and (rate["unit"] == "rate").all()
    # recovered = [1, 0, 1, 1]: logged 0.75, IPS (2 + 1.25 + 2) / 4 = 1.3125
    assert rate.loc["logged", "estimate"] == pytest.approx(0.75)
    assert rate.loc["ips", "estimate"] == pytest.approx(1.3125)
    alone = estimate_value(
        HAND["reward"],
        HAND["action"],
        HAND["propensity"],
        HAND["target"],
        _full_support(4),
        kind=NET_RECOVERY,
        thresholds=NO_CHECKS,
        n_resamples=300,
        seed=3,
    ).set_index("estimator")
    pd.testing.assert_frame_equal(net.drop(columns="reward"), alone.drop(columns="reward"))


def _random_log(n: int = 50) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=n),
        rng.integers(0, K, n),
        rng.uniform(0.2, 1.0, n),
        rng.integers(0, K, n),
        _full_support(n),
    )


def test_bootstrap_interval_by_an_independent_loop():
    reward, action, propensity, target, _ = log = _random_log()
    result = estimate_value(
        *log, thresholds=NO_CHECKS, n_resamples=400, confidence=0.9, seed=11
    ).set_index("estimator")
    # the same resamples, drawn one at a time, and numpy's percentile
    draws = np.random.default_rng(11).integers(0, len(reward), size=(400, len(reward)))
    w = (target == action) / propensity
    ips = (w * reward)[draws].mean(axis=1)
    snips = (w * reward)[draws].sum(axis=1) / w[draws].sum(axis=1)
    for name, values in (("ips", ips), ("snips", snips)):
        low, high = np.nanpercentile(values, [5, 95])
        assert result.loc[name, "ci_low"] == pytest.approx(low)
        assert result.loc[name, "ci_high"] == pytest.approx(high)
    assert (result["confidence"] == 0.9).all()


def test_same_seed_same_interval_other_seed_other_interval():
    log = _random_log()
    a = estimate_value(*log, thresholds=NO_CHECKS, n_resamples=100, seed=1)
    b = estimate_value(*log, thresholds=NO_CHECKS, n_resamples=100, seed=1)
    c = estimate_value(*log, thresholds=NO_CHECKS, n_resamples=100, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low"], c["ci_low"])
    assert np.allclose(a["estimate"], c["estimate"])


# --- properties ----------------------------------------------------------------------------------


@st.composite
def logs(draw, min_n: int = 2, max_n: int = 12):
    """A small log: rewards of every tier for every debt, a logging policy with rational
    probabilities c / 10 (every tier at least 0.1), and the tier each debt was given."""
    n = draw(st.integers(min_n, max_n))
    rewards = draw(hnp.arrays(float, (n, K), elements=st.floats(-1e4, 1e4, allow_subnormal=False)))
    counts = np.array(
        [draw(st.sampled_from(_SPLITS)) for _ in range(n)],
    )
    action = np.array([draw(st.integers(0, K - 1)) for _ in range(n)])
    return rewards, counts, action


_SPLITS = [c for c in np.ndindex(*(10,) * K) if sum(c) == 10 and min(c) >= 1]


def _expanded(rewards: np.ndarray, counts: np.ndarray) -> tuple:
    """The exact expectation over the logging policy's draws, as a log: debt i appears with
    tier k in counts[i, k] of its 10 copies, so averaging over the copies is averaging over
    P(tier k | debt i) = counts[i, k] / 10."""
    debt = np.repeat(np.arange(len(counts)), 10)
    action = np.concatenate([np.repeat(np.arange(K), c) for c in counts])
    mu = counts / 10
    return debt, action, rewards[debt, action], mu[debt, action], mu[debt]


@settings(max_examples=40, deadline=None)
@given(logs())
def test_target_equal_to_logging_policy(log):
    rewards, counts, action = log
    mu = counts / 10
    n = len(counts)
    reward = rewards[np.arange(n), action]
    # one draw of the log: every weight is 1, so IPS and SNIPS are the mean reward exactly
    got = _estimates(
        estimate_value(
            reward, action, mu[np.arange(n), action], mu, mu, thresholds=NO_CHECKS, n_resamples=5
        )
    )
    assert got["ips"] == pytest.approx(reward.mean(), abs=1e-9)
    assert got["snips"] == pytest.approx(reward.mean(), abs=1e-9)
    # the expectation over draws: IPS is the expected reward of the logging policy
    debt, a, r, p, support = _expanded(rewards, counts)
    got = _estimates(
        estimate_value(r, a, p, mu[debt], support, thresholds=NO_CHECKS, n_resamples=5)
    )
    assert got["ips"] == pytest.approx((mu * rewards).sum(axis=1).mean(), rel=1e-9, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(logs(), st.data())
def test_ips_is_unbiased_for_any_target(log, data):
    rewards, counts, _ = log
    n = len(counts)
    target = np.array([data.draw(st.integers(0, K - 1)) for _ in range(n)])
    debt, a, r, p, support = _expanded(rewards, counts)
    got = _estimates(
        estimate_value(r, a, p, target[debt], support, thresholds=NO_CHECKS, n_resamples=5)
    )
    truth = rewards[np.arange(n), target].mean()
    assert got["ips"] == pytest.approx(truth, rel=1e-9, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    logs(),
    st.data(),
    hnp.arrays(float, 12, elements=st.floats(1e-3, 1.0)),
)
def test_dr_with_a_perfect_direct_model_is_the_direct_method(log, data, propensities):
    rewards, _, action = log
    n = len(action)
    target = np.array([data.draw(st.integers(0, K - 1)) for _ in range(n)])
    result = estimate_value(
        rewards[np.arange(n), action],
        action,
        propensities[:n],  # any propensities: the residuals they weigh are zero
        target,
        _full_support(n),
        rewards,
        thresholds=NO_CHECKS,
        n_resamples=20,
    )
    got = _estimates(result)
    assert got["dr"] == pytest.approx(got["dm"], rel=1e-9, abs=1e-6)
    assert got["dm"] == pytest.approx(rewards[np.arange(n), target].mean(), rel=1e-9, abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(logs(min_n=3), st.randoms(use_true_random=False))
def test_estimates_do_not_depend_on_row_order(log, random):
    rewards, counts, action = log
    n = len(action)
    mu = counts / 10
    order = list(range(n))
    random.shuffle(order)
    order = np.array(order)

    def run(rows: np.ndarray) -> pd.DataFrame:
        return estimate_value(
            rewards[rows, action[rows]],
            action[rows],
            mu[rows, action[rows]],
            np.zeros(n, dtype=int),
            mu[rows],
            rewards[rows] * 0.9,
            thresholds=NO_CHECKS,
            n_resamples=20,
        )

    a, b = run(np.arange(n)), run(order)
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a["ess"], b["ess"], rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(logs(), st.integers(0, 2**32 - 1), st.integers(1, 200))
def test_intervals_contain_the_point_estimate(log, seed, n_resamples):
    rewards, counts, action = log
    n = len(action)
    mu = counts / 10
    result = estimate_value(
        rewards[np.arange(n), action],
        action,
        mu[np.arange(n), action],
        mu[:, ::-1] / mu[:, ::-1].sum(axis=1, keepdims=True),
        mu,
        rewards * 1.1,
        thresholds=NO_CHECKS,
        n_resamples=max(n_resamples, 20),
        seed=seed,
    )
    slack = 1e-9 * (1 + np.abs(result["estimate"]))
    assert (result["ci_low"] <= result["estimate"] + slack).all(), result
    assert (result["estimate"] <= result["ci_high"] + slack).all(), result


# --- honesty -------------------------------------------------------------------------------------


def _overlap_case(n: int = 1_000, unsupported: int = 100) -> dict:
    """The staircase, with exploration only in the first n - ``unsupported`` debts: in the
    others the logging policy never gives litigation, and the target wants it."""
    rng = np.random.default_rng(5)
    support = np.tile([0.85, 0.05, 0.05, 0.05], (n, 1))
    support[n - unsupported :] = [1.0, 0.0, 0.0, 0.0]
    action = (support.cumsum(axis=1) > rng.random(n)[:, None]).argmax(axis=1)
    reward = rng.normal(100, 10, n)
    return {
        "reward": reward,
        "action": action,
        "propensity": support[np.arange(n), action],
        "target": np.full(n, 3),
        "support": support,
        "direct": np.full((n, K), 100.0),
    }


def test_target_on_unsupported_tiers_is_not_reported_as_a_number():
    case = _overlap_case(unsupported=100)  # 10% of the target's decisions
    result = estimate_value(**case).set_index("estimator")
    assert result.loc["logged", "reliable"]
    for name in ("ips", "snips", "dm", "dr"):
        assert not result.loc[name, "reliable"]
        assert result.loc[name, "status"] == "insufficient_overlap"
        reason = result.loc[name, "reason"]
        assert reason.startswith("insufficient overlap:")
        assert "10.0% of debts" in reason and "litigation 10.0%" in reason
        assert np.isfinite(result.loc[name, "estimate"])  # kept, but flagged
    lines = describe(result.reset_index())
    assert lines[1] == "IPS, recovery rate: " + result.loc["ips", "reason"]


def test_unsupported_share_at_the_threshold_passes_and_above_it_fails():
    case = _overlap_case(unsupported=50)  # exactly 5%
    # ESS of the litigation weights (1/0.05 on about 47 debts) is about 47: keep it out of the way
    lenient = Thresholds(min_ess=0.0)
    assert estimate_value(**case, thresholds=lenient)["reliable"].all()
    case = _overlap_case(unsupported=51)
    assert not estimate_value(**case, thresholds=lenient).set_index("estimator")["reliable"]["dm"]


def test_tiny_effective_sample_flags_the_weighting_estimators_only():
    case = _overlap_case(unsupported=0)
    result = estimate_value(**case).set_index("estimator")  # litigation given to about 5%
    ess = result.loc["ips", "ess"]
    assert 20 < ess < 100
    for name in ("ips", "snips", "dr"):
        assert result.loc[name, "status"] == "insufficient_overlap"
        assert f"effective sample of {ess:,.1f} of 1,000 debts" in result.loc[name, "reason"]
    assert result.loc["dm", "reliable"] and result.loc["logged", "reliable"]
    relaxed = estimate_value(**case, thresholds=Thresholds(min_ess=20)).set_index("estimator")
    assert relaxed["reliable"].all()


def test_target_never_matching_the_log_leaves_snips_undefined_and_flagged():
    n = 20
    result = estimate_value(
        np.ones(n),
        np.zeros(n, dtype=int),
        np.ones(n),
        np.full(n, 2),
        np.tile([1.0, 0, 0, 0], (n, 1)),
        n_resamples=50,
    ).set_index("estimator")
    assert result.loc["ips", "estimate"] == 0.0 and result.loc["ips", "ess"] == 0.0
    assert np.isnan(result.loc["snips", "estimate"])
    assert not result.loc[["ips", "snips"], "reliable"].any()


def test_describe_prints_numbers_with_their_interval():
    result = evaluate_policy(
        HAND["reward"],
        HAND["reward"] > 0,
        HAND["action"],
        HAND["propensity"],
        HAND["target"],
        _full_support(4),
        direct_net=HAND["direct"],
        thresholds=NO_CHECKS,
        n_resamples=100,
    )
    lines = describe(result)
    assert len(lines) == len(result) == 8
    assert lines[0].startswith("logged policy, net recovery: 8,500 CNY per 1,000 debtors (95%")
    assert lines[1].startswith("IPS, net recovery: 16,250 CNY per 1,000 debtors (95% interval")
    assert lines[1].endswith("; effective sample 3 of 4")
    assert lines[3].startswith("DM, net recovery: 8,750 CNY per 1,000 debtors (95% interval")
    assert "effective sample" not in lines[0] + lines[3]  # no weights behind these
    assert lines[5].startswith("logged policy, recovery rate: 75.0% (95% interval")


# --- input checks --------------------------------------------------------------------------------


def _hand(**changes) -> dict:
    args = {
        "reward": HAND["reward"],
        "action": HAND["action"],
        "propensity": HAND["propensity"],
        "target": HAND["target"],
        "support": _full_support(4),
        "direct": HAND["direct"],
        "n_resamples": 10,
    }
    return {**args, **changes}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reward": np.ones(3)}, r"reward has 3 values for 4 debts"),
        ({"reward": np.ones((4, 1))}, r"one value per debt \(1-d\)"),
        ({"reward": np.array([1.0, np.nan, 0, 0])}, r"reward has 1 missing or infinite"),
        ({"reward": ["a", "b", "c", "d"]}, r"reward must be numbers, one per debt"),
        (
            {
                "reward": np.ones(1),
                "action": ["mediation"],
                "propensity": [1.0],
                "target": ["mediation"],
                "support": _full_support(1),
                "direct": None,
            },
            r"at least 2 debts",
        ),
        (
            {"action": ["soft_reminder", "prayer", "mediation", "litigation"]},
            r"action: unknown tier\(s\) \['prayer'\]",
        ),
        ({"action": np.array([0, 1, 4, 2])}, r"action holds tier position\(s\) \[4\]"),
        ({"action": np.zeros((4, 1))}, r"action must be one tier per debt \(1-d\)"),
        ({"propensity": np.array([0.5, 0.0, 0.8, 0.5])}, r"propensity must lie in \(0, 1\]"),
        ({"propensity": np.array([0.5, 1.2, 0.8, 0.5])}, r"\(e\.g\. 1\.2\)"),
        ({"propensity": np.array([0.5, -0.1, 0.8, 0.5])}, r"1 value\(s\) do not"),
        (
            {"target": ["mediation", "court", "mediation", "mediation"]},
            r"target: unknown tier\(s\) \['court'\]",
        ),
        ({"target": np.full((4, K), 0.3)}, r"target rows must sum to 1"),
        ({"target": np.full((4, 3), 1 / 3)}, r"target must be debts x tiers = \(4, 4\)"),
        (
            {"target": pd.DataFrame(np.full((4, K), 0.25), columns=["a", "b", "c", "d"])},
            r"target needs exactly the tier columns",
        ),
        ({"support": np.full((4, K), 1.5)}, r"support must hold probabilities in \[0, 1\]"),
        ({"support": np.full((3, K), 0.25)}, r"support must be debts x tiers"),
        ({"direct": np.ones((4, 3))}, r"direct model of recovery_rate must be debts x tiers"),
        ({"direct": np.full((4, K), np.inf)}, r"direct model .* 16 missing or infinite"),
        ({"n_resamples": 0}, r"n_resamples must be at least 1"),
        ({"confidence": 1.0}, r"confidence must be strictly between 0 and 1"),
    ],
)
def test_bad_inputs_are_one_clear_error(changes, message):
    with pytest.raises(RecoverscoreError, match=message):
        estimate_value(**_hand(**changes))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_propensity": 1.0}, r"min_propensity must be in \[0, 1\)"),
        ({"max_unsupported_share": 1.5}, r"max_unsupported_share must be in \[0, 1\]"),
        ({"min_ess": -1}, r"min_ess must be at least 0"),
    ],
)
def test_bad_thresholds_are_one_clear_error(kwargs, message):
    with pytest.raises(RecoverscoreError, match=message):
        Thresholds(**kwargs)


def test_data_frames_are_read_by_tier_name():
    shuffled = list(reversed(TIERS))
    support = pd.DataFrame(_full_support(4), columns=shuffled)
    direct = pd.DataFrame(HAND["direct"], columns=list(TIERS))[shuffled]
    result = estimate_value(**_hand(support=support, direct=direct, thresholds=NO_CHECKS))
    assert _estimates(result)["dr"] == pytest.approx(11.4375)


# --- a world where the truth is known ------------------------------------------------------------


def test_doubly_robust_finds_the_true_value_in_the_synthetic_world(world_config):
    """30% exploration, recorded propensities, 20,000 debts. Target: the tier worth most under
    the truth. True value: mean over debts of the true expected net value of the target's tier
    (``policy.economics`` with the world's recovery shares and no discounting, which is what the
    world's outcomes average to). The direct model is deliberately wrong (every probability
    shrunk by a fifth), so DM misses and DR has to correct it with the weights."""
    history = generate_frame(20_000, seed=21, as_of=AS_OF, config=world_config)
    settings_ = load_policy_config().model_copy(
        update={
            "discount_rate": 0.0,
            "recovery_share": {t: world_config.recovery_share[t].mean for t in TIERS},
        }
    )
    costs = load_costs()
    truth = history[[f"p_true_{t}" for t in TIERS]].set_axis(
        [probability_column(t) for t in TIERS], axis=1
    )
    true_value = economics(
        Cases.build(DebtFacts.compute(history, 3), truth), settings_, costs
    ).value
    wrong = economics(
        Cases.build(DebtFacts.compute(history, 3), truth * 0.8), settings_, costs
    ).value
    target = true_value.argmax(axis=1)
    net = (history["amount_recovered"] - history["costs"]).to_numpy()
    result = evaluate_policy(
        net,
        history["recovered"],
        history["given_tier"],
        history["propensity"],
        target,
        legacy_probabilities(history, world_config.legacy_policy),
        direct_net=wrong,
        direct_recovered=truth.to_numpy() * 0.8,
        n_resamples=300,
        seed=1,
    )
    net_rows = result[result["reward"] == "net_recovery"].set_index("estimator")
    rate_rows = result[result["reward"] == "recovery_rate"].set_index("estimator")
    assert net_rows["reliable"].all() and rate_rows["reliable"].all()
    true_net = true_value[np.arange(len(target)), target].mean() * 1000
    true_rate = truth.to_numpy()[np.arange(len(target)), target].mean()
    # net recovery is heavy-tailed (enterprise principals run to millions): 10% on 20,000 debts
    for rows, true, tolerance in ((net_rows, true_net, 0.1), (rate_rows, true_rate, 0.03)):
        dr, dm = rows.loc["dr"], rows.loc["dm"]
        assert dr["ci_low"] <= true <= dr["ci_high"], (rows, true)
        assert abs(dr["estimate"] - true) < tolerance * true
        assert abs(dr["estimate"] - true) < abs(dm["estimate"] - true)
        assert not dm["ci_low"] <= true <= dm["ci_high"]  # the wrong model alone misses
        assert rows.loc["logged", "ci_high"] < true  # the oracle beats the staircase
