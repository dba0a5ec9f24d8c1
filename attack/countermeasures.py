"""Countermeasures a model owner can apply to the confidences its prediction API returns.

Each is named by a short spec that travels into bundles and reports unchanged: ``none``, ``round:0.01``
(the paper's rounding to a multiple of r), ``label-only`` (a one-hot of the predicted label) and
``noise:0.05`` (additive Gaussian noise with that standard deviation, clamped to [0, 1]).

Differentially private training is a countermeasure of the model, not of the API: a checkpoint trained with
DP-SGD carries its ``dp:eps=E`` spec in its metadata, and every attack on it records ``dp:eps=E`` (or
``dp:eps=E+round:0.01`` where the API also rounds) as the item's countermeasure, so the survey and the
analysis compare it with the unprotected model as they compare rounding levels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

PAPER_ROUNDING_LEVELS = (0.001, 0.005, 0.01, 0.05)


class Countermeasure:
    spec: str = "none"

    def apply(self, confidences: torch.Tensor) -> torch.Tensor:
        return confidences

    def __str__(self) -> str:
        return self.spec


@dataclass(frozen=True)
class Rounding(Countermeasure):
    r: float

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"round:{self.r:g}"

    def apply(self, confidences: torch.Tensor) -> torch.Tensor:
        return torch.round(confidences / self.r) * self.r


class LabelOnly(Countermeasure):
    spec = "label-only"

    def apply(self, confidences: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(confidences.argmax(1), confidences.shape[1]).to(confidences.dtype)


class AdditiveNoise(Countermeasure):
    def __init__(self, sigma: float, seed: int = 0) -> None:
        self.sigma = sigma
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"noise:{self.sigma:g}"

    def apply(self, confidences: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(confidences.shape, generator=self.generator, dtype=confidences.dtype)
        return (confidences + self.sigma * noise.to(confidences.device)).clamp(0.0, 1.0)


def parse_countermeasure(spec: str, seed: int = 0) -> Countermeasure:
    """Parse a spec; an unknown name or a value outside (0, 1) is an error that says what is accepted."""
    name, _, value = spec.strip().partition(":")
    accepted = "none, round:R, label-only, noise:SIGMA (R and SIGMA in (0, 1))"
    if name == "dp":
        raise ValueError(f"countermeasure {spec!r}: differential privacy is a property of the trained model, not "
                         f"of the API; train one with `mi-harness train --dp-epsilon E` and attack that checkpoint")
    if name == "none" and not value:
        return Countermeasure()
    if name == "label-only" and not value:
        return LabelOnly()
    if name in ("round", "noise"):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"countermeasure {spec!r}: {name} needs a number, e.g. {name}:0.01") from None
        if not 0 < number < 1:
            raise ValueError(f"countermeasure {spec!r}: {number:g} is outside (0, 1)")
        return Rounding(number) if name == "round" else AdditiveNoise(number, seed)
    raise ValueError(f"unknown countermeasure {spec!r}: expected one of {accepted}")


def item_countermeasure(api_spec: str, training_privacy: dict | None) -> str:
    """The countermeasure value of a bundle item: the model's training-time defence, then the API's.

    ``training_privacy`` is a checkpoint's ``privacy`` metadata (None for a model trained without DP).
    """
    if not training_privacy:
        return api_spec
    model_spec = training_privacy["spec"]
    return model_spec if api_spec == "none" else f"{model_spec}+{api_spec}"
