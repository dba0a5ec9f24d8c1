"""The paper's privacy-aware CART: the sensitive feature forced to one level of the tree.

Above the chosen level the tree grows as CART does (scikit-learn's best split, one node at a time) but may not
use the sensitive feature; at that level every node splits on the sensitive feature (the best binary split of its
values, where the node's rows hold more than one); below it, each branch is an ordinary CART tree without the
sensitive feature. ``depth=None`` puts it at the bottom: a full tree without it, then a split on it under every
leaf that has a mix. The paper found that the deeper the feature, the less the white-box attack learns, at little
cost in model accuracy.
"""
from __future__ import annotations

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from .tree_model import Feature, TreeModel


class _Builder:
    def __init__(self, rows: np.ndarray, labels: np.ndarray, n_classes: int, sensitive: int, seed: int) -> None:
        self.rows, self.labels, self.n_classes = rows, labels, n_classes
        self.sensitive, self.seed = sensitive, seed
        self.others = [j for j in range(rows.shape[1]) if j != sensitive]
        self.nodes: list[dict] = []

    def _node(self, index: np.ndarray) -> int:
        self.nodes.append({"counts": np.bincount(self.labels[index], minlength=self.n_classes).tolist()})
        return len(self.nodes) - 1

    def _split(self, index: np.ndarray, columns: list[int]) -> tuple[int, int] | None:
        """CART's best split of these rows on these columns: (column, highest code that goes left)."""
        if len(np.unique(self.labels[index])) < 2:
            return None
        stump = DecisionTreeClassifier(max_depth=1, random_state=self.seed)
        stump.fit(self.rows[np.ix_(index, columns)], self.labels[index])
        if stump.tree_.node_count < 3:
            return None
        return columns[stump.tree_.feature[0]], int(np.floor(stump.tree_.threshold[0]))

    def _sensitive_cut(self, index: np.ndarray) -> tuple[int, int] | None:
        """The forced split on the sensitive feature: CART's best where it helps, else the lowest value present
        against the rest; None where the rows all share one value."""
        present = np.unique(self.rows[index, self.sensitive])
        if len(present) < 2:
            return None
        return self._split(index, [self.sensitive]) or (self.sensitive, int(present[0]))

    def _branch(self, node: int, index: np.ndarray, column: int, cut: int, grow) -> None:
        left = self.rows[index, column] <= cut
        self.nodes[node].update(feature=column, cut=cut)
        self.nodes[node]["left"] = grow(index[left])
        self.nodes[node]["right"] = grow(index[~left])

    def forced(self, index: np.ndarray, depth: int) -> int:
        """Grow CART without the sensitive feature to ``depth``, split on it there, then CART below."""
        node = self._node(index)
        if depth == 0:
            split = self._sensitive_cut(index)
            if split is None:
                self._graft(node, index)
            else:
                self._branch(node, index, *split, grow=lambda i: self._graft(self._node(i), i))
            return node
        split = self._split(index, self.others)
        if split is not None:
            self._branch(node, index, *split, grow=lambda i: self.forced(i, depth - 1))
        return node

    def bottom(self, index: np.ndarray) -> int:
        """CART without the sensitive feature, then a split on it under every leaf whose rows have a mix."""
        node = self._node(index)
        split = self._split(index, self.others)
        if split is not None:
            self._branch(node, index, *split, grow=self.bottom)
        elif (cut := self._sensitive_cut(index)) is not None:
            self._branch(node, index, *cut, grow=self._node)
        return node

    def _graft(self, node: int, index: np.ndarray) -> int:
        """Under ``node`` (already made for these rows), an ordinary CART tree without the sensitive feature."""
        split = self._split(index, self.others)
        if split is not None:
            self._branch(node, index, *split, grow=lambda i: self._graft(self._node(i), i))
        return node


def train_with_feature_at(rows: np.ndarray, labels: np.ndarray, features: list[Feature], classes: list[str],
                          sensitive: int, depth: int | None, seed: int = 0) -> TreeModel:
    """A tree whose nodes at ``depth`` (root = 0; None = the bottom) split on the sensitive feature, and no
    other node does."""
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be 0 (the root) or more, or None for the bottom; got {depth}")
    builder = _Builder(np.asarray(rows, dtype=int), np.asarray(labels, dtype=int), len(classes), sensitive, seed)
    everyone = np.arange(len(rows))
    if depth is None:
        builder.bottom(everyone)
    else:
        builder.forced(everyone, depth)
    nodes = []
    for node in builder.nodes:
        entry = {"counts": node["counts"]}
        if "feature" in node:
            feature = features[node["feature"]]
            entry.update(feature=feature.name, left_values=feature.values[: node["cut"] + 1], left=node["left"],
                         right=node["right"])
        nodes.append(entry)
    return TreeModel.from_json({"format": "mi-harness/tree", "version": 1, "classes": classes,
                                "features": [{"name": f.name, "values": f.values} for f in features],
                                "nodes": nodes})
