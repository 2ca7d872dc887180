"""Strategy experiments: a random share of debtors gets a challenger strategy, the rest today's.

A history assigned by debt age cannot show what a tier does where it was never tried; the only
way to learn it is to try, on a small random share, and record how likely each debtor was to get
the tier it got. An ``Experiment`` names challenger cells, each with a share and a strategy:
another decision rule (``policy: value``), another registered model version (``model:
challenger``, optionally with its own rule), or uniform exploration among the tiers the
guardrails allow (``explore: true``). Every other debtor is in the ``champion`` cell and gets
what scoring gives without an experiment.

Assignment is deterministic: a keyed hash of the debtor id (SipHash, keyed by the experiment's
name) gives each debtor a number in [0, 1) that picks its cell, so a debtor stays in its cell on
every daily run and rerun, and a new experiment name reshuffles. Exploration draws its tier from
a second keyed hash over the allowed tiers. ``design_propensity`` gives the probability that a
debtor got its tier under the whole design (a share-weighted mixture of the cells' choices),
which the scored output records so the next training and the off-policy estimators can use it.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from recoverscore.config import StrictModel

CHAMPION = "champion"
CellName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=40)]


class Cell(StrictModel):
    """A challenger cell: its share of debtors and its strategy (exactly one kind)."""

    name: CellName
    share: float = Field(gt=0, lt=1)
    policy: str | None = None
    model: str | None = None
    explore: bool = False

    @model_validator(mode="after")
    def _one_strategy(self) -> Cell:
        if self.explore and (self.policy or self.model):
            raise ValueError("explore: an exploration cell takes no policy or model")
        if not (self.explore or self.policy or self.model):
            raise ValueError("give a policy, a model or explore: true")
        if self.name == CHAMPION:
            raise ValueError(f"name: {CHAMPION!r} is the cell of everyone else")
        return self


class Experiment(StrictModel):
    """Named challenger cells; the ``champion`` cell keeps the remaining share."""

    name: str = Field(min_length=1, max_length=80)
    cells: list[Cell] = Field(min_length=1)

    @model_validator(mode="after")
    def _shares(self) -> Experiment:
        names = [c.name for c in self.cells]
        if len(set(names)) != len(names):
            raise ValueError("cells: names must be unique")
        if sum(c.share for c in self.cells) >= 1:
            raise ValueError(
                "cells: shares must add up to less than 1 (the champion keeps the rest)"
            )
        return self

    @property
    def champion_share(self) -> float:
        return 1.0 - sum(c.share for c in self.cells)

    @property
    def names(self) -> list[str]:
        """Cell names, champion first (cell codes index this list)."""
        return [CHAMPION, *(c.name for c in self.cells)]

    @property
    def shares(self) -> np.ndarray:
        return np.array([self.champion_share, *(c.share for c in self.cells)])


def keyed_uniform(ids: pd.Series, experiment: str, purpose: str) -> np.ndarray:
    """A number in [0, 1) per id from a keyed hash: the same id, experiment and purpose always
    give the same number; another experiment name gives unrelated ones."""
    key = hashlib.sha256(f"{experiment}\x00{purpose}".encode()).hexdigest()[:16]
    values = ids.astype("string").str.strip().to_numpy(dtype=object, na_value="")
    hashed = pd.util.hash_array(values, hash_key=key, categorize=False)
    return (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def assign_cells(ids: pd.Series, experiment: Experiment) -> np.ndarray:
    """Each debtor's cell, as a position in ``experiment.names`` (0: the champion)."""
    u = keyed_uniform(ids, experiment.name, "cell")
    edges = np.cumsum(experiment.shares)[:-1]
    return np.searchsorted(edges, u, side="right")


def explore_tiers(ids: pd.Series, experiment: str, allowed: np.ndarray) -> np.ndarray:
    """A tier drawn uniformly among each debtor's allowed tiers (n x tiers mask), by a keyed hash
    of the id and the experiment's name."""
    u = keyed_uniform(ids, experiment, "explore")
    counts = allowed.sum(axis=1)
    pick = np.minimum((u * counts).astype(int), counts - 1)
    order = np.cumsum(allowed, axis=1) - 1  # rank of each allowed tier within its row
    return np.argmax(allowed & (order == pick[:, None]), axis=1)


def design_propensity(
    assigned: np.ndarray,
    choices: list[np.ndarray | None],
    shares: np.ndarray,
    allowed: np.ndarray,
) -> np.ndarray:
    """P(the assigned tier | debtor) under the whole design.

    ``choices[c]``: the tier each debtor would get in cell ``c`` (``None`` for an exploration
    cell, which gives each allowed tier ``1 / allowed``); ``shares[c]``: the cell's share.
    """
    rows = np.arange(len(assigned))
    probability = np.zeros(len(assigned))
    for share, choice in zip(shares, choices, strict=True):
        if choice is None:
            probability += share * allowed[rows, assigned] / allowed.sum(axis=1)
        else:
            probability += share * (choice == assigned)
    return probability
