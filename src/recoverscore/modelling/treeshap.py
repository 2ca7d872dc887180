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

The speed. Within a tree, a row's SHAP values depend only on which way it goes at each split. The
kernel takes rows in chunks (in parallel); per tree it evaluates every split for the whole chunk,
one feature column at a time, into one bit per split (the row's "key"), groups the chunk's rows
by key with a hash table, computes the tree's contributions once per distinct key, and adds them
to every row of the group. Batches repeat keys (on the project's data about 1 row in 5 brings a
new key for 31-leaf trees, 2 in 3 for 63-leaf trees), and the per-key work runs leaf by leaf with
the loop over keys innermost: branch-free, the same few instructions over contiguous arrays.

Determinism: each row is written by one thread only; a tree's contributions for a key are summed
in a fixed order (leaves, then path features) before being added to the row, and trees are added
in model order. The result is bit-for-bit the same for any thread count, chunk size or grouping.
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
from numba import njit, prange

from recoverscore.errors import RecoverscoreError

KZERO = float(np.float32(1e-35))
"""LightGBM's ``kZeroThreshold`` (a float literal widened to double): inputs no larger in
magnitude are read as exactly 0 (the dense row parser drops them)."""

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


class _Model(NamedTuple):
    """The flattened model the compiled kernel reads (numba takes a NamedTuple of arrays)."""

    # trees
    tree_node_start: np.ndarray  # int64: first internal node (global index)
    tree_n_nodes: np.ndarray  # int64: internal nodes; 0 for a single-leaf tree
    tree_leaf_start: np.ndarray  # int64
    tree_n_leaves: np.ndarray  # int64
    tree_feature_start: np.ndarray  # int64: into tree_features
    tree_n_features: np.ndarray  # int64: distinct features the tree splits on
    tree_features: np.ndarray  # int64: global feature of each tree-local feature
    # internal nodes, in LightGBM's split_index order within a tree
    node_feature: np.ndarray  # int64
    node_threshold: np.ndarray  # float64
    node_nan_left: np.ndarray  # uint64: 1 if NaN goes left
    node_zero_left: np.ndarray  # uint64: 1 if 0 (|x| <= KZERO) goes left
    node_cat_start: np.ndarray  # int64: first word in cat_words, -1 for a numerical split
    node_cat_words: np.ndarray  # int64: words in the category bitset
    cat_words: np.ndarray  # uint64: bit c of a node's bitset = category c goes left
    # leaves
    leaf_value: np.ndarray  # float64
    leaf_path_start: np.ndarray  # int64: into path_*
    leaf_path_len: np.ndarray  # int64
    leaf_slot_start: np.ndarray  # int64: into slot_* (one slot per distinct path feature)
    leaf_n_slots: np.ndarray  # int64
    leaf_table_start: np.ndarray  # int64: into tables, -1 when evaluated per key
    path_node: np.ndarray  # int64: tree-local internal node on the path
    path_left: np.ndarray  # uint8: 1 if the path goes left there
    path_slot: np.ndarray  # int64: the slot of that node's feature
    slot_feature: np.ndarray  # int64: tree-local feature
    slot_cover: np.ndarray  # float64: z
    slot_coef: np.ndarray  # float64 [slot, o]: the factor on H: -1 if o = 0, (1 - z) / z if 1
    tables: np.ndarray  # float64: H(u) for u in 0 .. 2^d - 1 per tabulated leaf
    gl_nodes: np.ndarray  # float64 [d, k]: Gauss-Legendre nodes on [0, 1] for d path features
    gl_weights: np.ndarray  # float64 [d, k]


# --- the compiled kernel ------------------------------------------------------------------------

_ONE = np.uint64(1)


@njit(cache=True)
def _category_left(x: float, words: np.ndarray, start: int, n_words: int) -> np.uint64:
    """LightGBM's categorical rule: NaN and negative codes go right, else bit ``int(x)``."""
    if not x > -1.0 or x >= 2147483648.0:  # NaN, int(x) < 0, or beyond int32 (C++ gives < 0)
        return np.uint64(0)
    code = int(x)  # truncation toward zero, like static_cast<int>
    if code >= 64 * n_words:
        return np.uint64(0)
    return (words[start + (code >> 6)] >> np.uint64(code & 63)) & _ONE


@njit(cache=True)
def _tree_keys(columns: np.ndarray, m: _Model, t: int, keys: np.ndarray) -> None:
    """keys[w, r] bit b = 1 when row r goes left at the tree's split 64 w + b."""
    rows = columns.shape[1]
    n_words = (m.tree_n_nodes[t] + 63) >> 6
    keys[:n_words, :rows] = 0
    for j in range(m.tree_n_nodes[t]):
        node = m.tree_node_start[t] + j
        column = columns[m.node_feature[node]]
        word = keys[j >> 6]
        shift = np.uint64(j & 63)
        if m.node_cat_start[node] >= 0:
            start, n_cat = m.node_cat_start[node], m.node_cat_words[node]
            for r in range(rows):
                word[r] |= _category_left(column[r], m.cat_words, start, n_cat) << shift
        else:
            threshold = m.node_threshold[node]
            nan_left, zero_left = m.node_nan_left[node], m.node_zero_left[node]
            for r in range(rows):
                x = column[r]
                left = np.uint64(x <= threshold)
                if abs(x) <= KZERO:  # LightGBM reads it as 0: missing under "Zero"
                    left = zero_left
                if x != x:  # NaN: the default side, or read as 0 under "None"
                    left = nan_left
                word[r] |= left << shift


@njit(cache=True)
def _hash(keys: np.ndarray, n_words: int, r: int) -> np.uint64:
    """splitmix64 finaliser over a row's key words: keys differing in one bit spread apart."""
    h = np.uint64(0x9E3779B97F4A7C15)
    for w in range(n_words):
        h ^= keys[w, r]
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


@njit(cache=True)
def _group_rows(
    keys: np.ndarray,
    n_words: int,
    rows: int,
    slots: np.ndarray,
    group: np.ndarray,
    first: np.ndarray,
) -> int:
    """Group rows with equal keys (open addressing); returns the number of groups.

    group[r] = the row's group, first[g] = a row of group g."""
    mask = slots.size - 1
    slots[:] = -1
    n_groups = 0
    for r in range(rows):
        i = np.int64(_hash(keys, n_words, r) & np.uint64(mask))
        while True:
            g = slots[i]
            if g < 0:
                slots[i] = n_groups
                first[n_groups] = r
                group[r] = n_groups
                n_groups += 1
                break
            same = True
            for w in range(n_words):
                if keys[w, first[g]] != keys[w, r]:
                    same = False
                    break
            if same:
                group[r] = g
                break
            i = (i + 1) & mask
    return n_groups


@njit(cache=True)
def _group_decisions(
    keys: np.ndarray, n_nodes: int, first: np.ndarray, n_groups: int, went_left: np.ndarray
) -> None:
    """went_left[j, g] = 1 when the rows of group g go left at split j (unpacked from the key, so
    that the leaf loops below run over contiguous groups)."""
    for j in range(n_nodes):
        word, shift = j >> 6, np.uint64(j & 63)
        for g in range(n_groups):
            went_left[j, g] = np.uint8((keys[word, first[g]] >> shift) & _ONE)


@njit(cache=True)
def _tabulated_leaf(
    m: _Model,
    leaf: int,
    went_left: np.ndarray,
    n_groups: int,
    pattern: np.ndarray,
    acc: np.ndarray,
) -> None:
    """Add a tabulated leaf's contributions for every group to acc[tree feature, group].

    Innermost loops run over groups: branch-free, and the pattern loop vectorises."""
    d = m.leaf_n_slots[leaf]
    pattern[:n_groups] = np.int32((1 << d) - 1)  # bit i: the group satisfies slot i's splits
    for e in range(m.leaf_path_start[leaf], m.leaf_path_start[leaf] + m.leaf_path_len[leaf]):
        side, wanted, slot = went_left[m.path_node[e]], m.path_left[e], np.int32(m.path_slot[e])
        for g in range(n_groups):
            pattern[g] &= ~(np.int32(side[g] ^ wanted) << slot)
    base = m.leaf_table_start[leaf]
    slot0 = m.leaf_slot_start[leaf]
    for i in range(d):
        target = acc[m.slot_feature[slot0 + i]]
        # o_i = 0: -H(s); o_i = 1: H(s - i) (1 - z_i) / z_i. Clearing bit i covers both cases.
        if_failed, if_satisfied = m.slot_coef[slot0 + i, 0], m.slot_coef[slot0 + i, 1]
        clear, bit = np.int32(~(1 << i)), np.int32(i)
        for g in range(n_groups):
            s = pattern[g]
            factor = if_satisfied if (s >> bit) & 1 else if_failed
            target[g] += m.tables[base + (s & clear)] * factor


@njit(cache=True)
def _direct_leaf(
    m: _Model, leaf: int, went_left: np.ndarray, g: int, acc: np.ndarray, scratch: np.ndarray
) -> None:
    """Add an untabulated leaf's contributions for group g to acc:
    v (o_i - z_i) int_0^1 prod_{j != i} (z_j + t (o_j - z_j)) dt, by Gauss-Legendre."""
    d = m.leaf_n_slots[leaf]
    slot0 = m.leaf_slot_start[leaf]
    o, suffix, integral = scratch[0], scratch[1], scratch[2]
    o[:d] = 1.0
    for e in range(m.leaf_path_start[leaf], m.leaf_path_start[leaf] + m.leaf_path_len[leaf]):
        if went_left[m.path_node[e], g] != m.path_left[e]:
            o[m.path_slot[e]] = 0.0
    integral[:d] = 0.0
    for k in range((d + 1) // 2):  # degree d - 1 integrand: ceil(d / 2) nodes are exact
        t, weight = m.gl_nodes[d, k], m.gl_weights[d, k]
        suffix[d] = 1.0
        for i in range(d - 1, -1, -1):
            z = m.slot_cover[slot0 + i]
            suffix[i] = suffix[i + 1] * (z + t * (o[i] - z))
        prefix = weight
        for i in range(d):
            integral[i] += prefix * suffix[i + 1]
            z = m.slot_cover[slot0 + i]
            prefix *= z + t * (o[i] - z)
    value = m.leaf_value[leaf]
    for i in range(d):
        z = m.slot_cover[slot0 + i]
        acc[m.slot_feature[slot0 + i], g] += value * (o[i] - z) * integral[i]


@njit(cache=True)
def _explain_chunk(X: np.ndarray, m: _Model, out: np.ndarray) -> None:
    """out[:, :n_features] = every tree's SHAP values for the rows of X, trees in model order."""
    rows, n_features = X.shape
    columns = np.empty((n_features, rows))  # a split reads one feature for every row
    for r in range(rows):  # explicit loops here and below: array expressions compile slowly
        for f in range(n_features):
            columns[f, r] = X[r, f]
    max_nodes = max(m.tree_n_nodes.max(), 1)
    keys = np.empty(((max_nodes + 63) >> 6, rows), dtype=np.uint64)
    n_slots = 1
    while n_slots < 2 * rows:
        n_slots *= 2
    slots = np.empty(n_slots, dtype=np.int64)
    group = np.empty(rows, dtype=np.int64)
    first = np.empty(rows, dtype=np.int64)
    went_left = np.empty((max_nodes, rows), dtype=np.uint8)
    pattern = np.empty(rows, dtype=np.int32)
    acc = np.empty((max(m.tree_n_features.max(), 1), rows))  # [tree feature, group]
    scratch = np.empty((3, m.gl_nodes.shape[0] + 1))
    phi = np.zeros((n_features, rows))  # feature-major: the per-tree additions are contiguous
    for t in range(m.tree_n_nodes.size):
        n_nodes = m.tree_n_nodes[t]
        if n_nodes == 0:
            continue  # a single leaf: only the expected value
        _tree_keys(columns, m, t, keys)
        n_groups = _group_rows(keys, (n_nodes + 63) >> 6, rows, slots, group, first)
        _group_decisions(keys, n_nodes, first, n_groups, went_left)
        n_tree_features = m.tree_n_features[t]
        for k in range(n_tree_features):
            acc[k, :n_groups] = 0.0
        for leaf in range(m.tree_leaf_start[t], m.tree_leaf_start[t] + m.tree_n_leaves[t]):
            if m.leaf_table_start[leaf] >= 0:
                _tabulated_leaf(m, leaf, went_left, n_groups, pattern, acc)
            else:
                for g in range(n_groups):
                    _direct_leaf(m, leaf, went_left, g, acc, scratch)
        for k in range(n_tree_features):
            contribution = acc[k]
            target = phi[m.tree_features[m.tree_feature_start[t] + k]]
            for r in range(rows):
                target[r] += contribution[group[r]]
    for r in range(rows):
        for f in range(n_features):
            out[r, f] = phi[f, r]


@njit(cache=True, parallel=True)
def _explain(X: np.ndarray, m: _Model, n_chunks: int, out: np.ndarray) -> None:
    """Chunks of rows in parallel; each row belongs to one chunk, so one thread writes it."""
    chunk_rows = (X.shape[0] + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        start = c * chunk_rows
        stop = min(start + chunk_rows, X.shape[0])
        if start < stop:
            _explain_chunk(X[start:stop], m, out[start:stop])


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


def _check_model(model: dict[str, Any]) -> None:
    if model.get("num_tree_per_iteration", 1) != 1 or model.get("num_class", 1) != 1:
        raise UnsupportedModel(
            f"{model.get('num_class')} classes / {model.get('num_tree_per_iteration')} trees per "
            "iteration: only models with one raw output are supported"
        )
    if len(model["feature_names"]) != int(model["max_feature_idx"]) + 1:
        raise UnsupportedModel("feature_names do not match max_feature_idx")
    if model.get("average_output", False):
        raise UnsupportedModel("averaged output (boosting=rf): only summed trees are supported")


class _Builder:
    """Walks the dump's trees once, collecting the flattened arrays."""

    def __init__(self) -> None:
        self.columns: dict[str, list] = {name: [] for name in _Model._fields}
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
        c = self.columns
        c["node_feature"].append(int(node["split_feature"]))
        if node["decision_type"] == "==":
            categories = [int(s) for s in str(node["threshold"]).split("||")]
            n_words = max(categories) // 64 + 1
            words = [0] * n_words
            for category in categories:
                words[category >> 6] |= 1 << (category & 63)
            c["node_threshold"].append(0.0)
            c["node_nan_left"].append(0)
            c["node_zero_left"].append(0)
            c["node_cat_start"].append(len(self.cat_words))
            c["node_cat_words"].append(n_words)
            self.cat_words.extend(words)
            return
        if node["decision_type"] != "<=":
            raise UnsupportedModel(f"decision type {node['decision_type']!r}")
        threshold = float(node["threshold"])
        if abs(threshold) >= _DUMPED_INF:  # dump_model() clips +-inf (NaN-vs-rest splits)
            threshold = np.copysign(np.inf, threshold)
        missing = node["missing_type"]
        default_left = bool(node["default_left"])
        zero_compared = threshold >= 0.0
        if missing == "None":  # NaN is read as 0, and 0 is compared
            nan_left, zero_left = zero_compared, zero_compared
        elif missing == "Zero":  # NaN is read as 0, and 0 is missing
            nan_left, zero_left = default_left, default_left
        elif missing == "NaN":  # NaN is missing, 0 is compared
            nan_left, zero_left = default_left, zero_compared
        else:
            raise UnsupportedModel(f"missing type {missing!r}")
        c["node_threshold"].append(threshold)
        c["node_nan_left"].append(int(nan_left))
        c["node_zero_left"].append(int(zero_left))
        c["node_cat_start"].append(-1)
        c["node_cat_words"].append(0)

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

    def model(self, max_bytes: int) -> _Model:
        starts, tables = self.tables(max_bytes)
        max_d = max((len(covers) for covers in self.leaf_covers), default=0)
        nodes, weights = _gauss_legendre(max_d)
        arrays: dict[str, np.ndarray] = {}
        for name in _Model._fields:
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
        return _Model(
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
        model: _Model,
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
        _check_model(model)
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
                    _explain(X, self._model, _chunks(X.shape[0], numba.get_num_threads()), out)
            finally:
                numba.set_num_threads(previous)
        out[:, -1] = self.expected_value
        return out
