"""Experiment sizing: the unequal-allocation formula by hand, its power by simulation, errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recoverscore.errors import RecoverscoreError
from recoverscore.scoring.sizing import SHARES, experiment_size, realised_net

Z_975 = 1.959963984540054  # standard normal quantiles, written out
Z_80 = 0.8416212335729143


def _net(mean: float, sd: float, n: int = 10_000, seed: int = 0) -> np.ndarray:
    """Values with exactly this mean and sample standard deviation."""
    x = np.random.default_rng(seed).standard_normal(n)
    return mean + sd * (x - x.mean()) / x.std(ddof=1)


def test_the_formula_by_hand():
    size = experiment_size(_net(1_000.0, 8_000.0), 0.05, share=0.1, monthly=50_000)
    unit = (Z_975 + Z_80) ** 2 * 8_000.0**2 / 50.0**2
    assert size.debts == math.ceil(unit * (1 / 0.1 + 1 / 0.9))
    assert size.challenger_debts == math.ceil(0.1 * size.debts)
    assert size.months == pytest.approx(size.debts / 50_000)
    assert size.difference == pytest.approx(50.0)
    assert size.table.index.tolist() == list(SHARES)
    assert size.table.loc[0.5, "debts"] == math.ceil(unit * 4)
    assert size.table["debts"].is_monotonic_decreasing  # an even split needs the fewest
    assert "challenger cell of 10.0%" in size.sentence()
    assert size.sentence().startswith("With 50,000 debts a month, a 5% lift")


def test_months_give_the_smallest_share_that_fits():
    net = _net(1_000.0, 8_000.0)
    size = experiment_size(net, 0.05, monthly=400_000, months=3)
    assert size.fits and size.debts <= 1_200_000 and 0 < size.share < 0.5
    smaller = experiment_size(net, 0.05, share=size.share - 0.001)
    assert smaller.debts > 1_200_000
    assert f"for {math.ceil(size.months * 10) / 10:.1f} months" in size.sentence()
    hopeless = experiment_size(net, 0.05, monthly=1_000, months=2)
    assert not hopeless.fits and hopeless.share == 0.5
    assert "even an even split takes" in hopeless.sentence()


def test_neither_share_nor_months_is_an_even_split():
    size = experiment_size(_net(500.0, 2_000.0), 0.1)
    assert size.share == 0.5 and size.months is None and "months" not in size.table
    assert size.sentence().startswith("A 10% lift")


def test_the_promised_power_holds_in_simulation():
    """Heavy-tailed net recovery, sized by the formula, tested by Welch: detected about
    ``power`` of the time."""
    rng = np.random.default_rng(3)
    history = rng.lognormal(6.0, 1.0, 200_000) - 200.0
    size = experiment_size(history, 0.10, share=0.3)
    detected = []
    for _ in range(400):
        champion = rng.lognormal(6.0, 1.0, size.debts - size.challenger_debts) - 200.0
        base = history.mean()
        challenger = rng.lognormal(6.0, 1.0, size.challenger_debts) - 200.0 + 0.10 * base
        detected.append(stats.ttest_ind(challenger, champion, equal_var=False).pvalue < 0.05)
    assert 0.74 <= np.mean(detected) <= 0.87


def test_realised_net_reads_histories_and_outcomes():
    frame = pd.DataFrame({"amount_recovered": ["100.5", "0"], "costs": ["20", "30"]})
    assert realised_net(frame).tolist() == [80.5, -30.0]
    with pytest.raises(RecoverscoreError, match="lacks costs"):
        realised_net(frame.drop(columns="costs"), "h.csv")
    with pytest.raises(RecoverscoreError, match="1 rows have no readable"):
        realised_net(frame.assign(costs=["20", "lots"]))


@pytest.mark.parametrize(
    ("net", "kwargs", "message"),
    [
        (_net(-5.0, 10.0), {}, "not positive"),
        (_net(5.0, 10.0), {"lift": 0}, "lift"),
        (_net(5.0, 10.0), {"power": 1.0}, "power"),
        (_net(5.0, 10.0), {"alpha": 0}, "alpha"),
        (_net(5.0, 10.0), {"share": 1.0}, "share"),
        (_net(5.0, 10.0), {"share": 0.1, "months": 2, "monthly": 10}, "not both"),
        (_net(5.0, 10.0), {"months": 2}, "needs monthly"),
        (_net(5.0, 10.0), {"monthly": 0}, "monthly"),
        (np.array([1.0]), {}, "at least two"),
        (np.array([1.0, np.nan]), {}, "at least two finite"),
    ],
)
def test_bad_inputs_are_one_line_errors(net, kwargs, message):
    arguments = {"lift": 0.05, **kwargs}
    lift = arguments.pop("lift")
    with pytest.raises(RecoverscoreError, match=message):
        experiment_size(net, lift, **arguments)
