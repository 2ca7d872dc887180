"""Every tier's raw score in one walk of the trees: LightGBM's numbers, about four times sooner.

Scoring asks the model for P(recover) under each of the four tiers. LightGBM answers one tier per
``predict`` call, so each row walks every tree four times, although the rows differ only in the
tier column and most trees never split on it. This predictor walks each tree once per row and
forks only at the splits on the tier: the paths of the tiers that go left and of those that go
right continue separately, each ending in its own leaf. Each tier's leaf values are added in the
trees' order, as LightGBM adds them, so the raw scores are the same numbers bit for bit, and the
probability is LightGBM's ``1 / (1 + exp(-raw))`` of them.

The split rules (thresholds, the side of NaN and of zero, category bitsets) are read from the
model's dump by ``treeshap.add_node_rule``, the same reading the TreeSHAP kernel uses; the compiled
walk is below. Built once per loaded model, kept on the model object, never saved or pickled.
"""

from __future__ import annotations

import math
import threading
from typing import Any, NamedTuple

import lightgbm as lgb
import numba
import numpy as np
from numba import njit, prange

from recoverscore.modelling.treeshap import (
    NodeRule,
    UnsupportedModel,
    add_node_rule,
    check_model,
)
from recoverscore.modelling.treeshap_kernel import KZERO, category_left

SERIAL_ROWS = 256
"""Fewer rows than this are walked on the calling thread: a served request's few rows take
microseconds, less than waking a thread team."""

_LOCK = threading.Lock()  # numba's fallback threading layer (workqueue) must not be re-entered


class Forest(NamedTuple):
    """The trees as the compiled walk reads them (numba takes a NamedTuple of arrays)."""

    tree_root: np.ndarray  # int64: the root's node index, or ~leaf for a single-leaf tree
    node_feature: np.ndarray  # int64
    node_threshold: np.ndarray  # float64
    node_nan_left: np.ndarray  # uint64: 1 if NaN goes left
    node_zero_left: np.ndarray  # uint64: 1 if 0 (|x| <= KZERO) goes left
    node_cat_start: np.ndarray  # int64: first word in cat_words, -1 for a numerical split
    node_cat_words: np.ndarray  # int64
    node_tier_left: np.ndarray  # int64: on a split on the tier, bit k = tier k goes left; else -1
    node_left: np.ndarray  # int64: child node index, or ~leaf
    node_right: np.ndarray  # int64
    cat_words: np.ndarray  # uint64
    leaf_value: np.ndarray  # float64


@njit(cache=True, inline="always")
def _goes_left(x: float, f: Forest, node: int) -> bool:
    if f.node_cat_start[node] >= 0:
        return category_left(x, f.cat_words, f.node_cat_start[node], f.node_cat_words[node]) == 1
    if x != x:  # NaN: the default side, or read as 0 under "None"
        return f.node_nan_left[node] == 1
    if abs(x) <= KZERO:  # LightGBM reads it as 0: missing under "Zero"
        return f.node_zero_left[node] == 1
    return x <= f.node_threshold[node]


@njit(cache=True)
def _walk(
    X: np.ndarray, f: Forest, n_tiers: int, first: int, last: int, sigmoid: bool, out: np.ndarray
) -> None:
    """Raw scores of rows ``first:last`` under every tier into ``out[row, tier]``; with
    ``sigmoid``, LightGBM's probabilities of them (``math.exp`` is the C library's, as in
    LightGBM, so the numbers are the same to the last bit)."""
    all_tiers = (1 << n_tiers) - 1
    stack_node = np.empty(n_tiers, dtype=np.int64)  # pending forks: at most one per tier
    stack_mask = np.empty(n_tiers, dtype=np.int64)
    for r in range(first, last):
        row = X[r]
        for t in range(f.tree_root.size):
            stack_node[0] = f.tree_root[t]
            stack_mask[0] = all_tiers
            top = 1
            while top > 0:
                top -= 1
                node, mask = stack_node[top], stack_mask[top]
                while node >= 0:
                    split = f.node_tier_left[node]
                    if split < 0:
                        if _goes_left(row[f.node_feature[node]], f, node):
                            node = f.node_left[node]
                        else:
                            node = f.node_right[node]
                        continue
                    left, right = mask & split, mask & ~split
                    if left and right:  # the tiers part: follow left, come back for right
                        stack_node[top] = f.node_right[node]
                        stack_mask[top] = right
                        top += 1
                    if left:
                        node, mask = f.node_left[node], left
                    else:
                        node, mask = f.node_right[node], right
                value = f.leaf_value[~node]
                for k in range(n_tiers):
                    if mask >> k & 1:
                        out[r, k] += value
        if sigmoid:
            for k in range(n_tiers):
                out[r, k] = 1.0 / (1.0 + math.exp(-out[r, k]))


@njit(cache=True, parallel=True)
def _walk_parallel(
    X: np.ndarray, f: Forest, n_tiers: int, chunks: int, sigmoid: bool, out: np.ndarray
) -> None:
    rows = X.shape[0]
    for c in prange(chunks):
        _walk(X, f, n_tiers, rows * c // chunks, rows * (c + 1) // chunks, sigmoid, out)


_NODE_FIELDS = tuple(name for name in Forest._fields if name.startswith("node_"))


class _Reader:
    """Collects the dump's trees into the ``Forest`` arrays."""

    def __init__(self, tier_feature: int | None, n_tiers: int) -> None:
        self.tier_feature, self.n_tiers = tier_feature, n_tiers
        self.nodes: dict[str, list] = {name: [] for name in _NODE_FIELDS}
        self.roots: list[int] = []
        self.cat_words: list[int] = []
        self.leaf_value: list[float] = []

    def add_tree(self, tree: dict[str, Any]) -> None:
        self.roots.append(self._add(tree["tree_structure"]))

    def _add(self, node: dict[str, Any]) -> int:
        """Index of the node (or ~leaf), children added depth first."""
        if "split_index" not in node:
            if "leaf_coeff" in node:
                raise UnsupportedModel("linear trees (linear_tree=True)")
            self.leaf_value.append(float(node["leaf_value"]))
            return ~(len(self.leaf_value) - 1)
        c = self.nodes
        index = len(c["node_feature"])
        rule = add_node_rule(c, self.cat_words, node)
        on_tier = int(node["split_feature"]) == self.tier_feature
        c["node_tier_left"].append(self._tiers_left(rule) if on_tier else -1)
        c["node_left"].append(0)
        c["node_right"].append(0)
        c["node_left"][index] = self._add(node["left_child"])
        c["node_right"][index] = self._add(node["right_child"])
        return index

    def _tiers_left(self, rule: NodeRule) -> int:
        """Bit k set when tier code k goes left at this split (codes are small whole numbers:
        a categorical split tests bit k of its bitset, a numerical one compares, 0 as zero)."""
        bits = 0
        for code in range(self.n_tiers):
            if rule.words:
                left = code < 64 * len(rule.words) and rule.words[code >> 6] >> (code & 63) & 1
            else:
                left = rule.zero_left if code == 0 else code <= rule.threshold
            bits |= int(bool(left)) << code
        return bits

    def forest(self) -> Forest:
        c = self.nodes
        unsigned = ("node_nan_left", "node_zero_left")
        arrays = {
            name: np.asarray(values, dtype=np.uint64 if name in unsigned else np.int64)
            for name, values in c.items()
            if name != "node_threshold"
        }
        arrays["node_threshold"] = np.asarray(c["node_threshold"], dtype=np.float64)
        return Forest(
            tree_root=np.asarray(self.roots, dtype=np.int64),
            **arrays,
            cat_words=np.asarray(self.cat_words, dtype=np.uint64),
            leaf_value=np.asarray(self.leaf_value, dtype=np.float64),
        )


class TierPredictor:
    """Raw scores and probabilities of one binary LightGBM model under every tier at once.

    ``tier_feature``: the column of the tier code (0 .. ``n_tiers`` - 1), or ``None`` for a model
    without one (then one score per row). Build with ``from_booster``.
    """

    def __init__(self, forest: Forest, n_features: int, tier_feature: int | None, n_tiers: int):
        self._forest = forest
        self.n_features = n_features
        self.tier_feature = tier_feature
        self.n_tiers = n_tiers if tier_feature is not None else 1

    @classmethod
    def from_booster(
        cls, booster: lgb.Booster, num_iteration: int, tier_feature: int | None, n_tiers: int
    ) -> TierPredictor:
        """The predictor of the booster's first ``num_iteration`` iterations; raises
        ``UnsupportedModel`` for what it cannot reproduce exactly (then use ``predict``)."""
        dump = booster.dump_model(num_iteration=num_iteration)
        check_model(dump)
        if str(dump.get("objective", "")).split() != ["binary", "sigmoid:1"]:
            raise UnsupportedModel(f"objective {dump.get('objective')!r}: only plain binary")
        reader = _Reader(tier_feature, n_tiers)
        for tree in dump["tree_info"]:
            reader.add_tree(tree)
        return cls(reader.forest(), len(dump["feature_names"]), tier_feature, n_tiers)

    def __reduce__(self) -> tuple:
        """Refuse to be pickled: rebuilt from the booster where it is loaded."""
        raise TypeError("a TierPredictor is not pickled: build it with from_booster where needed")

    def raw_scores(self, X: np.ndarray) -> np.ndarray:
        """(rows, n_tiers) raw scores; ``X`` the float matrix LightGBM predicts from (its tier
        column is ignored: every tier is scored)."""
        return self._run(X, sigmoid=False)

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """(rows, n_tiers) probabilities, LightGBM's ``1 / (1 + exp(-raw))``."""
        return self._run(X, sigmoid=True)

    def _run(self, X: np.ndarray, sigmoid: bool) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"X must be a 2-D matrix with {self.n_features} columns, got shape {X.shape}"
            )
        out = np.zeros((X.shape[0], self.n_tiers))
        if X.shape[0] < SERIAL_ROWS:
            _walk(X, self._forest, self.n_tiers, 0, X.shape[0], sigmoid, out)
            return out
        with _LOCK:
            chunks = numba.get_num_threads() * 4
            _walk_parallel(X, self._forest, self.n_tiers, chunks, sigmoid, out)
        return out
