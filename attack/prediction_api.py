"""The only door through which an attacker reaches a model.

It returns the confidence vector f~(x) after the owner's countermeasure, and to a white-box attacker also
the gradient of the model's own (unprotected) confidence. Every input row is one query; the counter is what
the black-box query budgets and the reported query counts are measured against.

Inputs are in the model's attack space (pixels for softmax and MLP, the 300-unit code for the DAE). The DAE's
encoder and decoder are treated as known to the attacker, as in the paper's Process-DAE.
"""
from __future__ import annotations

import torch

from .countermeasures import Countermeasure
from .models import FaceModel


class PredictionAPI:
    def __init__(self, model: FaceModel, countermeasure: Countermeasure | None = None, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.countermeasure = countermeasure or Countermeasure()
        self.device = device
        self.queries = 0

    @property
    def attack_dim(self) -> int:
        return self.model.attack_dim

    @property
    def pixels(self) -> int:
        return self.model.pixels

    def confidences(self, code: torch.Tensor) -> torch.Tensor:
        """f~ for each row of ``code``; counts one query per row."""
        self.queries += len(code)
        with torch.no_grad():
            return self.countermeasure.apply(torch.softmax(self.model.classify(code), dim=1))

    def confidences_and_gradient(self, code: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """White-box access: f~ for each row, and the gradient of the true f_label with respect to the row."""
        self.queries += len(code)
        code = code.detach().requires_grad_(True)
        with torch.enable_grad():
            probs = torch.softmax(self.model.classify(code), dim=1)
            target = probs.gather(1, labels[:, None]).sum()
            (grad,) = torch.autograd.grad(target, code)
        return self.countermeasure.apply(probs.detach()), grad

    def true_confidence(self, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The model's unprotected confidence in ``labels`` for finished images; not an attacker query."""
        with torch.no_grad():
            return torch.softmax(self.model(pixels), dim=1).gather(1, labels[:, None])[:, 0]

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode(pixels)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.model.decode(code)
