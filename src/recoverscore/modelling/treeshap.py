"""Exact path-dependent TreeSHAP for LightGBM, several times faster than ``pred_contrib``.

Computes the same numbers as ``booster.predict(X, pred_contrib=True)`` (and shap's
``TreeExplainer(feature_perturbation="tree_path_dependent")``): Shapley values of the raw
(log-odds) output, last column the expected value. Built once per model from
``booster.dump_model()``, kept on the Python object that uses it, never pickled.

The math. For one leaf with value ``v`` and the distinct features ``F`` on its path (``d = |F|``),
let ``z_j`` be the product of the cover ratios (child count / parent count) of the path's splits
on feature ``j``, and ``o_j`` = 1 when the row satisfies every split on ``j`` along the path, else
0. The leaf adds to feature ``i``::

    v (o_i - z_i) sum_{S subset of F-{i}, o_S = 1} |S|! (d-1-|S|)! / d! prod_{j in F-{i}-S} z_j

The sum depends on the row only through its pattern over ``F - {i}``. Call
``H(u) = v sum_{S subset of u} |S|! (d-1-|S|)! / d! prod_{j in F-S} z_j`` for a pattern ``u``
(a set of features with ``o_j`` = 1): when ``i`` is not in ``u`` every term holds ``z_i`` as a
factor, so with ``s`` the row's pattern the leaf adds ``-H(s)`` to a feature with ``o_i`` = 0 and
``H(s - {i}) (1 - z_i) / z_i`` to one with ``o_i`` = 1. One table of ``2^d`` numbers per leaf
answers every feature of the leaf with one lookup each (Fast TreeSHAP v2's idea, its ``d``
per-feature tables folded into one). ``H`` is a sum of positive terms and dividing by ``z_i`` only
cancels a factor, so the lookups lose no precision. The table is filled from the integral form::

    H(u) = v prod_{j not in u} z_j int_0^1 prod_{j in u} (z_j + t (1 - z_j)) (1 - t)^(d-1-|u|) dt

whose integrand is a polynomial of degree ``d - 1``: Gauss-Legendre with ``ceil(d/2)`` nodes is
exact. Leaves with too many path features for a table (or beyond the memory budget) are
evaluated per key from ``int_0^1 prod_{j != i} (z_j + t (o_j - z_j)) dt`` with prefix and suffix
products at the same nodes: O(d^2) work instead of one lookup per feature.

The speed and determinism of the compiled part are described in ``treeshap_kernel``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import lightgbm as lgb
import numba
import numpy as np

from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.treeshap_kernel import FlatModel, explain

MAX_TABLE_FEATURES = 16
"""Leaves with more distinct path features are evaluated per key, not tabulated (2^16 numbers
is 512 KiB per leaf: beyond that a lookup costs a cache miss anyway). Patterns are int32: < 31."""

DEFAULT_TABLE_BYTES = 256 * 2**20
"""Memory budget for the leaf tables; leaves with the fewest path features are tabulated first."""

CHUNK_ROWS = 16384
"""Most rows grouped together per tree: more rows, more repeated keys, but more scratch memory
per thread (about 20 bytes per row and feature, plus 9 per row and split of the largest tree)."""

_LOCK = threading.Lock()  # numba's fallback threading layer (workqueue) must not be re-entered
_DUMPED_INF = 1e300  # dump_model() writes thresholds beyond +-1e300 as +-1e300 (AvoidInf)
_BUILD_ELEMENTS = 2**22  # leaf-table entries built per numpy pass (bounds temporary memory)


class UnsupportedModel(RecoverscoreError):
    """A model this kernel cannot explain exactly; ``reason`` says why. Fall back to
    ``booster.predict(X, pred_contrib=True)``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"TreeSHAP kernel: unsupported model: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class KernelStats:
    """What the kernel was built from and what the pre-computation cost."""

    trees: int
    single_leaf_trees: int
    leaves: int
    depth_mean: float  # per tree: the deepest leaf's depth, averaged over trees with splits
    depth_max: int
    path_features_mean: float  # distinct features on a leaf's path, averaged over leaves
    path_features_max: int
    tabulated_leaves: int
    table_bytes: int
    bytes: int  # every array the kernel keeps, tables included
    precompute_seconds: float


# --- building the flattened model from LightGBM's dump ------------------------------------------


def _gauss_legendre(max_d: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights on [0, 1], row d holding the ceil(d/2)-point rule."""
    k_max = max((max_d + 1) // 2, 1)
    nodes = np.zeros((max_d + 1, k_max))
    weights = np.zeros((max_d + 1, k_max))
    for d in range(1, max_d + 1):
        k = (d + 1) // 2
        x, w = np.polynomial.legendre.leggauss(k)
        nodes[d, :k] = (x + 1.0) / 2.0
        weights[d, :k] = w / 2.0
    return nodes, weights


def _leaf_tables(
    covers: np.ndarray, values: np.ndarray, nodes: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """H(u) for leaves with the same number d of path features: shape (leaves, 2^d).

    H(u) = v * int_0^1 prod_{j in u} (z_j + t (1 - z_j)) prod_{j not in u} z_j (1 - t)^(d-1-|u|) dt;
    the pattern with every feature satisfied is never looked up and is left 0."""
    n, d = covers.shape
    patterns = np.arange(2**d)
    bits = ((patterns[:, None] >> np.arange(d)) & 1).astype(bool)  # (2^d, d)
    exponent = d - 1 - bits.sum(axis=1)
    exponent[-1] = 0
    tables = np.zeros((n, 2**d))
    for t, w in zip(nodes, weights, strict=True):
        product = np.ones((n, 2**d))
        for j in range(d):
            z = covers[:, j : j + 1]
            product *= np.where(bits[:, j], z + t * (1.0 - z), z)
        tables += w * product * (1.0 - t) ** exponent
    tables *= values[:, None]
    tables[:, -1] = 0.0
    return tables


def check_model(model: dict[str, Any]) -> None:
    if model.get("num_tree_per_iteration", 1) != 1 or model.get("num_class", 1) != 1:
        raise UnsupportedModel(
            f"{model.get('num_class')} classes / {model.get('num_tree_per_iteration')} trees per "
            "iteration: only models with one raw output are supported"
        )
    if len(model["feature_names"]) != int(model["max_feature_idx"]) + 1:
        raise UnsupportedModel("feature_names do not match max_feature_idx")
    if model.get("average_output", False):
        raise UnsupportedModel("averaged output (boosting=rf): only summed trees are supported")


class NodeRule(NamedTuple):
    """Where a split sends a value: ``x <= threshold`` goes left, except NaN (``nan_left``) and
    values LightGBM reads as zero (``zero_left``); a categorical split sends the categories in
    its bitset ``words`` left (bit c of the words = category c), everything else right."""

    threshold: float
    nan_left: bool
    zero_left: bool
    words: list[int]


def node_rule(node: dict[str, Any]) -> NodeRule:
    """The rule of one internal node of ``Booster.dump_model()``, as LightGBM applies it."""
    if node["decision_type"] == "==":
        categories = [int(s) for s in str(node["threshold"]).split("||")]
        words = [0] * (max(categories) // 64 + 1)
        for category in categories:
            words[category >> 6] |= 1 << (category & 63)
        return NodeRule(0.0, False, False, words)
    if node["decision_type"] != "<=":
        raise UnsupportedModel(f"decision type {node['decision_type']!r}")
    threshold = float(node["threshold"])
    if abs(threshold) >= _DUMPED_INF:  # dump_model() clips +-inf (NaN-vs-rest splits)
        threshold = float(np.copysign(np.inf, threshold))
    missing = node["missing_type"]
    default_left = bool(node["default_left"])
    zero_compared = threshold >= 0.0
    if missing == "None":  # NaN is read as 0, and 0 is compared
        return NodeRule(threshold, zero_compared, zero_compared, [])
    if missing == "Zero":  # NaN is read as 0, and 0 is missing
        return NodeRule(threshold, default_left, default_left, [])
    if missing == "NaN":  # NaN is missing, 0 is compared
        return NodeRule(threshold, default_left, zero_compared, [])
    raise UnsupportedModel(f"missing type {missing!r}")


def add_node_rule(columns: dict[str, list], cat_words: list[int], node: dict[str, Any]) -> NodeRule:
    """Append one internal node's feature and rule to flat ``node_*`` columns and its category
    bitset to ``cat_words`` (the TreeSHAP kernel and the tier predictor lay nodes out alike)."""
    rule = node_rule(node)
    columns["node_feature"].append(int(node["split_feature"]))
    columns["node_threshold"].append(rule.threshold)
    columns["node_nan_left"].append(int(rule.nan_left))
    columns["node_zero_left"].append(int(rule.zero_left))
    columns["node_cat_start"].append(len(cat_words) if rule.words else -1)
    columns["node_cat_words"].append(len(rule.words))
    cat_words.extend(rule.words)
    return rule


class _Builder:
    """Walks the dump's trees once, collecting the flattened arrays."""

    def __init__(self) -> None:
        self.columns: dict[str, list] = {name: [] for name in FlatModel._fields}
        self.cat_words: list[int] = []
        self.leaf_covers: list[list[float]] = []
        self.depths: list[int] = []
        self.nodes = self.leaves = self.slots = self.paths = self.tree_features = 0
        self.expected_value = 0.0

    def add_tree(self, tree: dict[str, Any]) -> None:
        root = tree["tree_structure"]
        c = self.columns
        if "split_index" not in root:  # a single leaf: a constant
            self._reject_linear(root)
            c["tree_node_start"].append(self.nodes)
            c["tree_n_nodes"].append(0)
            c["tree_leaf_start"].append(self.leaves)
            c["tree_n_leaves"].append(0)
            c["tree_feature_start"].append(self.tree_features)
            c["tree_n_features"].append(0)
            self.expected_value += float(root["leaf_value"])
            return
        internal: dict[int, dict[str, Any]] = {}
        leaves: list[tuple[dict[str, Any], list[tuple[int, bool, int, float]]]] = []
        stack: list[tuple[dict[str, Any], list[tuple[int, bool, int, float]]]] = [(root, [])]
        while stack:
            node, path = stack.pop()
            if "split_index" not in node:
                leaves.append((node, path))
                continue
            internal[int(node["split_index"])] = node
            count = _count(node)
            for child, left in ((node["right_child"], False), (node["left_child"], True)):
                step = (int(node["split_index"]), left, int(node["split_feature"]))
                stack.append((child, [*path, (*step, _count(child) / count)]))
        leaves.sort(key=lambda item: int(item[0]["leaf_index"]))
        features = sorted({int(node["split_feature"]) for node in internal.values()})
        local = {f: k for k, f in enumerate(features)}

        c["tree_node_start"].append(self.nodes)
        c["tree_n_nodes"].append(len(internal))
        c["tree_leaf_start"].append(self.leaves)
        c["tree_n_leaves"].append(len(leaves))
        c["tree_feature_start"].append(self.tree_features)
        c["tree_n_features"].append(len(features))
        c["tree_features"].extend(features)
        for j in range(len(internal)):
            self._add_node(internal[j])
        total = float(_count(root))
        expected = 0.0
        for leaf, path in leaves:
            self._reject_linear(leaf)
            expected += (_count(leaf) / total) * float(leaf["leaf_value"])
            self._add_leaf(leaf, path, local)
        self.expected_value += expected
        self.depths.append(max(len(path) for _, path in leaves))
        self.nodes += len(internal)
        self.leaves += len(leaves)
        self.tree_features += len(features)

    def _add_node(self, node: dict[str, Any]) -> None:
        add_node_rule(self.columns, self.cat_words, node)

    def _add_leaf(
        self,
        leaf: dict[str, Any],
        path: list[tuple[int, bool, int, float]],
        local: dict[int, int],
    ) -> None:
        c = self.columns
        slot_of: dict[int, int] = {}
        covers: list[float] = []
        c["leaf_path_start"].append(self.paths)
        c["leaf_path_len"].append(len(path))
        for node, left, feature, ratio in path:
            if feature not in slot_of:
                slot_of[feature] = len(covers)
                covers.append(1.0)
            slot = slot_of[feature]
            covers[slot] *= ratio  # in path order, as LightGBM multiplies it
            c["path_node"].append(node)
            c["path_left"].append(int(left))
            c["path_slot"].append(slot)
        c["leaf_value"].append(float(leaf["leaf_value"]))
        c["leaf_slot_start"].append(self.slots)
        c["leaf_n_slots"].append(len(covers))
        for feature, slot in slot_of.items():
            c["slot_feature"].append(local[feature])
            c["slot_cover"].append(covers[slot])
            c["slot_coef"].append((-1.0, (1.0 - covers[slot]) / covers[slot]))
        self.leaf_covers.append(covers)
        self.paths += len(path)
        self.slots += len(covers)

    @staticmethod
    def _reject_linear(leaf: dict[str, Any]) -> None:
        if "leaf_coeff" in leaf:
            raise UnsupportedModel("linear trees (linear_tree=True)")

    def tables(self, max_bytes: int) -> tuple[np.ndarray, np.ndarray]:
        """Tabulate leaves, fewest path features first, within the budget; the start of each
        leaf's table (-1: evaluated per key) and the concatenated tables."""
        d = np.array([len(covers) for covers in self.leaf_covers], dtype=np.int64)
        starts = np.full(d.size, -1, dtype=np.int64)
        used = 0
        for leaf in np.argsort(d, kind="stable"):
            size = 2 ** int(d[leaf])
            if d[leaf] > MAX_TABLE_FEATURES or (used + size) * 8 > max_bytes:
                break
            starts[leaf] = used
            used += size
        tables = np.zeros(used)
        values = np.asarray(self.columns["leaf_value"], dtype=np.float64)
        nodes, weights = _gauss_legendre(int(d.max(initial=0)))
        for depth in np.unique(d[starts >= 0]):
            chosen = np.flatnonzero((d == depth) & (starts >= 0))
            per_pass = max(_BUILD_ELEMENTS >> int(depth), 1)
            for first in range(0, chosen.size, per_pass):
                batch = chosen[first : first + per_pass]
                covers = np.array([self.leaf_covers[i] for i in batch]).reshape(batch.size, depth)
                k = (int(depth) + 1) // 2
                block = _leaf_tables(covers, values[batch], nodes[depth, :k], weights[depth, :k])
                for row, leaf in zip(block, batch, strict=True):
                    tables[starts[leaf] : starts[leaf] + row.size] = row
        return starts, tables

    def model(self, max_bytes: int) -> FlatModel:
        starts, tables = self.tables(max_bytes)
        max_d = max((len(covers) for covers in self.leaf_covers), default=0)
        nodes, weights = _gauss_legendre(max_d)
        arrays: dict[str, np.ndarray] = {}
        for name in FlatModel._fields:
            if name in ("leaf_table_start", "tables", "gl_nodes", "gl_weights", "cat_words"):
                continue
            values = self.columns[name]
            if name in ("node_threshold", "leaf_value", "slot_cover"):
                arrays[name] = np.asarray(values, dtype=np.float64)
            elif name == "slot_coef":
                arrays[name] = np.asarray(values, dtype=np.float64).reshape(-1, 2)
            elif name in ("node_nan_left", "node_zero_left"):
                arrays[name] = np.asarray(values, dtype=np.uint64)
            elif name == "path_left":
                arrays[name] = np.asarray(values, dtype=np.uint8)
            else:
                arrays[name] = np.asarray(values, dtype=np.int64)
        return FlatModel(
            **arrays,
            cat_words=np.asarray(self.cat_words, dtype=np.uint64),
            leaf_table_start=starts,
            tables=tables,
            gl_nodes=nodes,
            gl_weights=weights,
        )


def _count(node: dict[str, Any]) -> int:
    count = node["internal_count"] if "split_index" in node else node.get("leaf_count")
    if not count:
        raise UnsupportedModel(
            "a node without training rows (zero or missing count): its cover is undefined"
        )
    return int(count)


def _chunks(rows: int, threads: int) -> int:
    """At most CHUNK_ROWS rows a chunk, and a multiple of the thread count (prange hands each
    thread an equal run of chunks). The values do not depend on it."""
    return math.ceil(max(math.ceil(rows / CHUNK_ROWS), 1) / threads) * threads


# --- the public object --------------------------------------------------------------------------


class TreeShapKernel:
    """Exact TreeSHAP of one LightGBM model; build with ``from_booster`` (or ``from_dump``).

    ``shap_values(X)`` returns what ``booster.predict(X, pred_contrib=True)`` returns for the same
    trees, to within 1e-12 or so on the raw score. Keep the object with the loaded model: the
    pre-computation is per model and is never saved.
    """

    def __init__(
        self,
        model: FlatModel,
        expected_value: float,
        feature_names: list[str],
        stats: KernelStats,
    ) -> None:
        self._model = model
        self.expected_value = expected_value
        self.feature_names = feature_names
        self.n_features = len(feature_names)
        self.stats = stats

    @classmethod
    def from_booster(
        cls,
        booster: lgb.Booster,
        num_iteration: int | None = None,
        *,
        max_table_bytes: int = DEFAULT_TABLE_BYTES,
    ) -> TreeShapKernel:
        """The kernel for the booster's first ``num_iteration`` iterations.

        ``num_iteration`` as in ``Booster.predict``: None means the best iteration if early
        stopping recorded one, else all; <= 0 means all. Raises ``UnsupportedModel``."""
        start = time.perf_counter()
        kernel = cls.from_dump(
            booster.dump_model(num_iteration=num_iteration), max_table_bytes=max_table_bytes
        )
        seconds = time.perf_counter() - start  # dump_model included: it is part of the cost
        kernel.stats = replace(kernel.stats, precompute_seconds=seconds)
        return kernel

    @classmethod
    def from_dump(
        cls, model: dict[str, Any], *, max_table_bytes: int = DEFAULT_TABLE_BYTES
    ) -> TreeShapKernel:
        """The kernel for a ``Booster.dump_model()`` dict (every tree in it)."""
        start = time.perf_counter()
        check_model(model)
        builder = _Builder()
        for tree in model["tree_info"]:
            builder.add_tree(tree)
        flat = builder.model(max_table_bytes)
        d = [len(covers) for covers in builder.leaf_covers]
        stats = KernelStats(
            trees=len(model["tree_info"]),
            single_leaf_trees=int(np.sum(flat.tree_n_nodes == 0)),
            leaves=builder.leaves,
            depth_mean=float(np.mean(builder.depths)) if builder.depths else 0.0,
            depth_max=max(builder.depths, default=0),
            path_features_mean=float(np.mean(d)) if d else 0.0,
            path_features_max=max(d, default=0),
            tabulated_leaves=int(np.sum(flat.leaf_table_start >= 0)),
            table_bytes=flat.tables.nbytes,
            bytes=sum(array.nbytes for array in flat),
            precompute_seconds=time.perf_counter() - start,
        )
        return cls(flat, builder.expected_value, list(model["feature_names"]), stats)

    def __reduce__(self) -> tuple:
        """Refuse to be pickled (or deep-copied): the tables are a per-process cache of the
        booster, to be rebuilt where the booster is loaded, never shipped or saved."""
        raise TypeError("a TreeShapKernel is not pickled: build it with from_booster where needed")

    def shap_values(self, X: np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """SHAP values of the raw score: (rows, n_features + 1), the last column the expected
        value, as ``pred_contrib``. ``X`` as LightGBM predicts from: float64 rows (converted if
        need be), categoricals as integer codes, NaN for missing. ``num_threads`` defaults to
        numba's setting (all cores)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"X must be a 2-D matrix with {self.n_features} columns (the model's features), "
                f"got shape {X.shape}"
            )
        out = np.zeros((X.shape[0], self.n_features + 1))
        if X.shape[0] and self._model.tree_n_nodes.any():
            previous = numba.get_num_threads()
            numba.set_num_threads(num_threads or previous)
            try:
                with _LOCK:
                    explain(X, self._model, _chunks(X.shape[0], numba.get_num_threads()), out)
            finally:
                numba.set_num_threads(previous)
        out[:, -1] = self.expected_value
        return out
