"""A decision tree as the attacks see it: categorical features, each inner node sending a row left when its
feature's value is in a set, each leaf holding the training counts of every class.

This is also a JSON form (``mi-harness/tree``, version 1), so a tree trained elsewhere (BigML, R, another
library) can be written in it and attacked; a scikit-learn tree trained on the integer codes of the features
converts into it. Rows are integer codes: column j holds the index of the value in ``features[j].values``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "mi-harness/tree"


class TreeError(ValueError):
    pass


@dataclass
class Feature:
    name: str
    values: list[str]


@dataclass
class TreeModel:
    features: list[Feature]
    classes: list[str]
    feature: np.ndarray  # per node: index of the feature tested, -1 at a leaf
    left_values: np.ndarray  # per node x max values: True where that value goes left
    left: np.ndarray  # per node: child index, -1 at a leaf
    right: np.ndarray
    counts: np.ndarray  # per node x class: training rows of each class that reached the node

    @property
    def is_leaf(self) -> np.ndarray:
        return self.feature < 0

    def apply(self, rows: np.ndarray) -> np.ndarray:
        """The leaf each row (integer codes, one column per feature) ends in."""
        rows = np.asarray(rows, dtype=int)
        node = np.zeros(len(rows), dtype=int)
        active = ~self.is_leaf[node]
        while active.any():
            current = node[active]
            values = rows[active, self.feature[current]]
            go_left = self.left_values[current, values]
            node[active] = np.where(go_left, self.left[current], self.right[current])
            active = ~self.is_leaf[node]
        return node

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """The class index of each row: the majority class of its leaf (ties to the first class)."""
        return self.counts[self.apply(rows)].argmax(axis=1)

    def allowed(self, feature: int) -> np.ndarray:
        """Per node x value of ``feature``: whether a row with that value can reach the node (the path's tests)."""
        size = len(self.features[feature].values)
        allowed = np.zeros((len(self.feature), size), dtype=bool)
        allowed[0] = True
        for node in range(len(self.feature)):  # parents come before their children
            if self.is_leaf[node]:
                continue
            mask = self.left_values[node, :size] if self.feature[node] == feature else np.ones(size, dtype=bool)
            allowed[self.left[node]] = allowed[node] & mask
            allowed[self.right[node]] = allowed[node] & (~mask if self.feature[node] == feature else mask)
        return allowed

    def depth_of(self, feature: int) -> list[int]:
        """The depths (root = 0) of the nodes that test ``feature``."""
        depth = np.zeros(len(self.feature), dtype=int)
        for node in range(len(self.feature)):
            if not self.is_leaf[node]:
                depth[self.left[node]] = depth[self.right[node]] = depth[node] + 1
        return sorted(int(d) for d in depth[self.feature == feature])

    # -- the JSON form ------------------------------------------------------------------------------------

    def to_json(self) -> dict:
        nodes = []
        for node in range(len(self.feature)):
            entry: dict = {"counts": [int(c) for c in self.counts[node]]}
            if not self.is_leaf[node]:
                f = self.features[self.feature[node]]
                entry.update(feature=f.name, left_values=[v for k, v in enumerate(f.values)
                                                          if self.left_values[node, k]],
                             left=int(self.left[node]), right=int(self.right[node]))
            nodes.append(entry)
        return {"format": FORMAT, "version": 1, "classes": self.classes,
                "features": [{"name": f.name, "values": f.values} for f in self.features], "nodes": nodes}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def from_json(cls, data: dict) -> TreeModel:
        """Validates as it reads: every problem names the node or field it is in."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TreeError(f"not a tree model: format must be {FORMAT!r}")
        if data.get("version") != 1:
            raise TreeError(f"tree model version {data.get('version')!r} is not supported (this reads version 1)")
        try:
            features = [Feature(str(f["name"]), [str(v) for v in f["values"]]) for f in data["features"]]
            classes = [str(c) for c in data["classes"]]
            nodes = list(data["nodes"])
        except (KeyError, TypeError) as exc:
            raise TreeError(f"tree model: missing or malformed field {exc}") from None
        if not nodes or not classes or not features:
            raise TreeError("tree model: it needs features, classes and at least one node")
        names = {f.name: k for k, f in enumerate(features)}
        width = max(len(f.values) for f in features)
        n = len(nodes)
        tree = cls(features, classes, np.full(n, -1), np.zeros((n, width), dtype=bool), np.full(n, -1),
                   np.full(n, -1), np.zeros((n, len(classes))))
        for k, node in enumerate(nodes):
            counts = node.get("counts")
            if not isinstance(counts, list) or len(counts) != len(classes):
                raise TreeError(f"node {k}: counts must list one number per class ({len(classes)})")
            tree.counts[k] = counts
            if "feature" not in node:
                continue
            if node["feature"] not in names:
                raise TreeError(f"node {k}: unknown feature {node['feature']!r}")
            f = names[node["feature"]]
            unknown = [v for v in node.get("left_values", []) if v not in features[f].values]
            if unknown:
                raise TreeError(f"node {k}: {node['feature']} has no value {unknown[0]!r}")
            children = (node.get("left"), node.get("right"))
            if not all(isinstance(c, int) and k < c < n for c in children):
                raise TreeError(f"node {k}: left and right must be later nodes (between {k + 1} and {n - 1})")
            tree.feature[k] = f
            tree.left_values[k, [features[f].values.index(v) for v in node["left_values"]]] = True
            tree.left[k], tree.right[k] = children
        return tree

    @classmethod
    def load(cls, path: str | Path) -> TreeModel:
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise TreeError(f"cannot read a tree model from {path}: {exc}") from None


def from_sklearn(classifier, features: list[Feature], classes: list[str]) -> TreeModel:
    """A fitted ``DecisionTreeClassifier`` trained on integer codes: a split ``x[j] <= t`` sends the values whose
    code is at most t left. Nodes are renumbered parents first (scikit-learn's order already is)."""
    tree = classifier.tree_
    width = max(len(f.values) for f in features)
    n = tree.node_count
    left_values = np.zeros((n, width), dtype=bool)
    feature = np.where(tree.children_left >= 0, tree.feature, -1)
    for node in np.flatnonzero(feature >= 0):
        left_values[node, : int(np.floor(tree.threshold[node])) + 1] = True
    fractions = tree.value[:, 0, :]
    counts = np.zeros((n, len(classes)))
    counts[:, classifier.classes_.astype(int)] = fractions / fractions.sum(1, keepdims=True) * \
        tree.n_node_samples[:, None]
    return TreeModel(features, classes, feature.astype(int), left_values, tree.children_left.astype(int),
                     tree.children_right.astype(int), np.rint(counts))
