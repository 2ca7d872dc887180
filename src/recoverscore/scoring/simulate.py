"""The synthetic loop's *act* and *observe*: experiment designs and outcomes drawn from the truth.

On the synthetic world the whole loop runs without waiting a year for outcomes: score a
portfolio, split it into experiment cells, work each debt in its tier, draw what happens from
the world's true probability of that tier (``simulate_outcomes``), backtest, and retrain on the
history enlarged by what was observed.

``assign_design`` splits scored debts into cells by a keyed hash of the id and the experiment's
name (the same debt, the same cell, on every run), each cell with its own tiers (a strategy's
choices, e.g. another policy's scored file or, in a benchmark, the oracle's) or, for an
exploration cell, a tier drawn uniformly among the tiers the guardrails allow. It records the
probability that each debt got its tier under the whole design, which is what the next
training's logging policy and the off-policy estimators read as ``propensity``. Scoring with
an experiment assigns cells inside the pipeline; this function serves simulations whose
strategies scoring cannot run, such as the oracle's, and designs tried on already-scored files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recoverscore.data.costs import CostConfig, load_costs
from recoverscore.data.schemas import (
    TIERS,
    Portfolio,
    SyntheticHistory,
    tier_codes,
    true_probability_column,
    value_column,
    with_id_column,
)
from recoverscore.data.synthetic import SyntheticConfig, draw_outcomes, load_synthetic_config
from recoverscore.data.validation import validate
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring.backtest import check_scored
from recoverscore.strategy.experiment import design_propensity, explore_tiers, keyed_uniform

# --- experiment designs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """An experiment cell: its name, its share of the debts, and the tier it gives each debt
    (``None``: uniform exploration among the tiers the guardrails allow)."""

    name: str
    share: float
    tiers: Sequence[str] | np.ndarray | None = None


def allowed_tiers(scored: pd.DataFrame, ignore: Sequence[str] = ("LOW_SUPPORT",)) -> np.ndarray:
    """Which tiers the guardrails leave each scored debt (debts x tiers), read from its
    ``excluded_tiers`` (``tier:CODE;...``); codes in ``ignore`` (the safe policy's low support)
    do not exclude, since trying unsupported tiers is what an exploration cell is for."""
    excluded = scored["excluded_tiers"].astype("string").fillna("")
    kept = "|".join(re.escape(code) for code in ignore) or "(?!)"
    mask = np.empty((len(scored), len(TIERS)), dtype=bool)
    for j, tier in enumerate(TIERS):
        removed = excluded.str.contains(rf"(?:^|;){tier}:(?!(?:{kept})(?:;|$))", regex=True)
        mask[:, j] = ~removed.to_numpy(dtype=bool)
    return mask


def assign_design(
    scored: pd.DataFrame,
    experiment: str,
    cells: Sequence[Cell],
    allowed: np.ndarray | None = None,
    champion: str = "champion",
) -> pd.DataFrame:
    """The scored frame as the design works it: each debt in its cell, with that cell's tier.

    ``recommended_tier`` and ``expected_net_value`` become the cell's tier and its value;
    ``cell``, ``assignment_propensity`` (P(this tier | debt) under the whole design: the sum
    over cells of the cell's share times its probability of giving it) and ``champion_tier``
    are added. The champion cell must have tiers. ``allowed``: tiers an exploration cell may
    draw from (default: ``allowed_tiers(scored)``).
    """
    n = len(scored)
    codes, shares = _check_design(cells, champion, n)
    allowed = allowed_tiers(scored) if allowed is None else np.asarray(allowed, dtype=bool)
    if allowed.shape != (n, len(TIERS)) or not allowed.any(axis=1).all():
        raise RecoverscoreError(
            f"allowed must be one row of {len(TIERS)} tiers per debt, each with a tier allowed"
        )
    ids = scored.iloc[:, 0]
    which = np.minimum(
        np.searchsorted(np.cumsum(shares), keyed_uniform(ids, experiment, "cell"), side="right"),
        len(cells) - 1,
    )
    explored = explore_tiers(ids, experiment, allowed)
    chosen = np.empty(n, dtype=np.intp)
    for k, tier_codes_k in enumerate(codes):
        pick = explored if tier_codes_k is None else tier_codes_k
        chosen[which == k] = pick[which == k]
    probability = design_propensity(chosen, list(codes), np.asarray(shares), allowed)
    champion_codes = codes[[c.name for c in cells].index(champion)]
    values = scored[[value_column(t) for t in TIERS]].to_numpy(dtype=float)
    names = np.asarray(TIERS, dtype=object)
    return scored.assign(
        recommended_tier=names[chosen],
        expected_net_value=values[np.arange(n), chosen],
        cell=np.asarray([c.name for c in cells], dtype=object)[which],
        assignment_propensity=probability,
        champion_tier=names[champion_codes],
    )


def _check_design(
    cells: Sequence[Cell], champion: str, n: int
) -> tuple[list[np.ndarray | None], np.ndarray]:
    names = [c.name for c in cells]
    if not cells or any(not name for name in names) or len(set(names)) != len(names):
        raise RecoverscoreError(f"cells need distinct, non-empty names; got {names}")
    shares = np.array([c.share for c in cells], dtype=float)
    if (shares <= 0).any() or not np.isclose(shares.sum(), 1.0):
        raise RecoverscoreError(f"cell shares must be above 0 and add up to 1; got {list(shares)}")
    if champion not in names or cells[names.index(champion)].tiers is None:
        raise RecoverscoreError(f"the design needs a champion cell {champion!r} with tiers")
    codes = []
    for cell in cells:
        if cell.tiers is None:
            codes.append(None)
            continue
        if len(cell.tiers) != n:
            raise RecoverscoreError(f"cell {cell.name}: {len(cell.tiers)} tiers for {n} debts")
        try:
            codes.append(tier_codes(np.asarray(cell.tiers, dtype=object)))
        except ValueError as error:
            raise RecoverscoreError(f"cell {cell.name}: {error}") from None
    return codes, shares


# --- outcomes from the truth ---------------------------------------------------------------------


@dataclass(frozen=True)
class Simulated:
    """Outcomes drawn for scored debts, and the same debts as history rows for retraining.

    ``outcomes``: the outcomes contract (id, recovered, amount, costs, outcome date).
    ``history``: the world's portfolio columns, ``given_tier`` (the tier worked),
    ``propensity`` (its assignment propensity; 1 without an experiment), the outcomes, the
    truth, and ``cell`` and ``champion_tier`` where the scoring had them: a synthetic history
    to append to the one the model was trained on. ``unworked``: scored rows without a tier.
    """

    outcomes: pd.DataFrame
    history: pd.DataFrame
    unworked: int


def simulate_outcomes(
    scored: pd.DataFrame,
    world: pd.DataFrame,
    *,
    seed: int,
    config: SyntheticConfig | None = None,
    costs: CostConfig | None = None,
) -> Simulated:
    """Draw what happens to each scored debt worked in its recommended tier, from the world's
    true probability of that tier (``p_true_<tier>``), with the world's own outcome draw.

    ``world``: the synthetic file the scored portfolio came from (same ids, its portfolio
    columns and the truth). The debts must have been scored as of the world's date: the truth
    holds for that decision date. Outcomes are known ``horizon_days`` after it. The same inputs
    and ``seed`` give the same outcomes.
    """
    config = config or load_synthetic_config()
    costs = costs or load_costs()
    scored = check_scored(scored, "the scored file", ("as_of", "recommended_tier"))
    id_column = str(scored.columns[0])
    world = _check_world(world, id_column)
    worked = scored["recommended_tier"].notna().to_numpy()
    scored = scored[worked]
    rows = world.set_index(world[id_column].astype("string")).reindex(
        scored[id_column].astype("string")
    )
    missing = rows["as_of"].isna().to_numpy()
    if missing.any():
        raise RecoverscoreError(
            f"{missing.sum():,} of {len(scored):,} scored debts are not in the world file: "
            "give the world the scored portfolio was taken from"
        )
    rows = rows.reset_index(drop=True)
    scored = scored.reset_index(drop=True)
    moved = (rows["as_of"] != scored["as_of"]).to_numpy()
    if moved.any():
        first = int(np.flatnonzero(moved)[0])
        when, truth_date = scored["as_of"].iloc[first], rows["as_of"].iloc[first]
        raise RecoverscoreError(
            f"{moved.sum():,} debts were scored as of another date than the world's truth "
            f"(e.g. {when:%Y-%m-%d}, world {truth_date:%Y-%m-%d}): score the world's portfolio "
            "as of its own date"
        )
    tiers = scored["recommended_tier"].to_numpy(dtype=object)
    truth = rows[[true_probability_column(t) for t in TIERS]].to_numpy(dtype=float)
    p = truth[np.arange(len(rows)), tier_codes(tiers)]
    drawn = draw_outcomes(np.random.default_rng(seed), rows, tiers, p, config, costs)
    outcome_date = rows["as_of"] + pd.Timedelta(days=config.horizon_days)
    outcomes = pd.concat([rows[[id_column]], drawn, outcome_date.rename("outcome_date")], axis=1)
    propensity = (
        scored["assignment_propensity"].astype(float).fillna(1.0)
        if "assignment_propensity" in scored.columns
        else pd.Series(1.0, index=scored.index)
    )
    portfolio = [id_column if c == "debtor_id" else c for c in Portfolio.to_schema().columns]
    history = pd.concat(
        [
            rows[[c for c in portfolio if c in rows.columns]],
            pd.DataFrame({"given_tier": tiers.astype(str), "propensity": propensity.to_numpy()}),
            drawn,
            rows[[true_probability_column(t) for t in TIERS]],
            scored[[c for c in ("cell", "champion_tier") if c in scored.columns]],
        ],
        axis=1,
    )
    return Simulated(outcomes, history, int((~worked).sum()))


def _check_world(world: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """The world's portfolio columns and truth, typed; a bad world file is one error."""
    if id_column not in world.columns:
        raise RecoverscoreError(
            f"the world file has no {id_column!r} column (the scored file's id column)"
        )
    needed = [*Portfolio.to_schema().columns, *(true_probability_column(t) for t in TIERS)]
    report = validate(world, with_id_column(SyntheticHistory, id_column, needed))
    if not report.is_valid:
        first = report.failures.iloc[0]
        where = "(file)" if pd.isna(first["row"]) else f"row {first['row']}"
        raise RecoverscoreError(
            f"the world file fails its contract ({len(report.failures):,} failures; first: "
            f"{where}, {first['column']}: {first['check']}): run recoverscore validate on it"
        )
    return report.valid.reset_index(drop=True)
