"""Estimating the gradient of the query cost q(x) = 1 - f~_label(x) from confidence queries alone.

``fd`` is forward finite differences along every coordinate (d queries a step: exact up to O(h) but costly
in pixel space); ``nes`` is the antithetic Gaussian-smoothing estimator of Ilyas et al. (2018), 2k queries a
step whatever the dimension. Both reuse q(x) that the attack loop already paid for.
"""
from __future__ import annotations

from typing import Callable

import torch

QueryCost = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(points [N, d], row of each point [N]) -> q at each point; each point is one query."""


class FiniteDifferences:
    name = "fd"

    def __init__(self, h: float = 0.01, chunk: int = 1024) -> None:
        if h <= 0:
            raise ValueError(f"finite-difference step h must be positive, got {h}")
        self.h, self.chunk = h, chunk

    def queries_per_step(self, dim: int) -> int:
        return dim

    def estimate(self, query_cost: QueryCost, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        rows, dim = x.shape
        grad = torch.empty_like(x)
        eye = torch.eye(dim, dtype=x.dtype, device=x.device)
        for start in range(0, dim, self.chunk):
            block = eye[start:start + self.chunk] * self.h  # [c, d]
            points = (x[:, None, :] + block[None]).reshape(-1, dim)
            owner = torch.arange(rows, device=x.device).repeat_interleave(len(block))
            costs = query_cost(points, owner).reshape(rows, len(block))
            grad[:, start:start + len(block)] = (costs - base[:, None]) / self.h
        return grad


class NESEstimator:
    name = "nes"

    def __init__(self, sigma: float = 0.01, samples: int = 50, seed: int = 0, chunk: int = 4096) -> None:
        if sigma <= 0 or samples < 1:
            raise ValueError(f"NES needs sigma > 0 and at least one sample, got sigma={sigma}, samples={samples}")
        self.sigma, self.samples, self.chunk = sigma, samples, chunk
        self.generator = torch.Generator().manual_seed(seed)

    def queries_per_step(self, dim: int) -> int:
        return 2 * self.samples

    def estimate(self, query_cost: QueryCost, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        rows, dim = x.shape
        u = torch.randn((rows, self.samples, dim), generator=self.generator, dtype=x.dtype).to(x.device)
        points = torch.cat([x[:, None, :] + self.sigma * u, x[:, None, :] - self.sigma * u], dim=1).reshape(-1, dim)
        owner = torch.arange(rows, device=x.device).repeat_interleave(2 * self.samples)
        costs = torch.cat([query_cost(points[i:i + self.chunk], owner[i:i + self.chunk])
                           for i in range(0, len(points), self.chunk)]).reshape(rows, 2 * self.samples)
        diff = costs[:, :self.samples] - costs[:, self.samples:]
        return (diff[:, :, None] * u).sum(1) / (2 * self.sigma * self.samples)


def build_estimator(name: str, **params) -> FiniteDifferences | NESEstimator:
    if name == "fd":
        return FiniteDifferences(**params)
    if name == "nes":
        return NESEstimator(**params)
    raise ValueError(f"unknown gradient estimator {name!r}: expected fd or nes")
