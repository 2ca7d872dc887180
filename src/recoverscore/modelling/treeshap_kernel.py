"""The compiled half of the TreeSHAP kernel: the flattened model and the numba functions.

``treeshap`` builds a ``FlatModel`` from a LightGBM dump (the math is in its docstring) and calls
``explain`` here; nothing in this module knows about LightGBM.

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

from typing import NamedTuple

import numpy as np
from numba import njit, prange

KZERO = float(np.float32(1e-35))
"""LightGBM's ``kZeroThreshold`` (a float literal widened to double): inputs no larger in
magnitude are read as exactly 0 (the dense row parser drops them)."""


class FlatModel(NamedTuple):
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


_ONE = np.uint64(1)


@njit(cache=True)
def category_left(x: float, words: np.ndarray, start: int, n_words: int) -> np.uint64:
    """LightGBM's categorical rule: NaN and negative codes go right, else bit ``int(x)``."""
    if not x > -1.0 or x >= 2147483648.0:  # NaN, int(x) < 0, or beyond int32 (C++ gives < 0)
        return np.uint64(0)
    code = int(x)  # truncation toward zero, like static_cast<int>
    if code >= 64 * n_words:
        return np.uint64(0)
    return (words[start + (code >> 6)] >> np.uint64(code & 63)) & _ONE


@njit(cache=True)
def _tree_keys(columns: np.ndarray, m: FlatModel, t: int, keys: np.ndarray) -> None:
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
                word[r] |= category_left(column[r], m.cat_words, start, n_cat) << shift
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
    m: FlatModel,
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
    m: FlatModel, leaf: int, went_left: np.ndarray, g: int, acc: np.ndarray, scratch: np.ndarray
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
def _explain_chunk(X: np.ndarray, m: FlatModel, out: np.ndarray) -> None:
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
def explain(X: np.ndarray, m: FlatModel, n_chunks: int, out: np.ndarray) -> None:
    """Chunks of rows in parallel; each row belongs to one chunk, so one thread writes it."""
    chunk_rows = (X.shape[0] + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        start = c * chunk_rows
        stop = min(start + chunk_rows, X.shape[0])
        if start < stop:
            _explain_chunk(X[start:stop], m, out[start:stop])
