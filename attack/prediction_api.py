"""The only door through which an attacker reaches a model.

A prediction service takes images: ``confidences`` returns f~(x), the confidence vector after the owner's
countermeasure, for each image sent, and counts one query per image. That counter is what black-box query
budgets and the reported query counts are measured against.

Attacks search the model's attack space (pixels for softmax and MLP, the DAE's 300-unit code, whose encoder
and decoder are treated as known to the attacker, as in the paper's Process-DAE). A black-box attacker asks
through ``query``: with ``door="image"`` (the default, a service someone could run) a point z of the code space
is sent as the image decode(z), so the service computes f(decode(z)) from pixels. ``door="latent"`` is the
latent-space oracle, kept only to compare with: codes go straight to the classifier head, a service no one
runs. For softmax and the MLP the two doors are the same, since decode is the identity.

A white-box attacker holds the model and also gets the gradient of the model's own (unprotected)
confidence with respect to its point in the attack space.
"""
from __future__ import annotations

import torch

from .countermeasures import Countermeasure
from .models import FaceModel

DOORS = ("image", "latent")


class PredictionAPI:
    def __init__(self, model: FaceModel, countermeasure: Countermeasure | None = None, device: str = "cpu",
                 door: str = "image") -> None:
        if door not in DOORS:
            raise ValueError(f"the black-box door must be one of {', '.join(DOORS)}, got {door!r}")
        self.model = model.to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.countermeasure = countermeasure or Countermeasure()
        self.device = device
        self.door = door
        self.queries = 0

    @property
    def attack_dim(self) -> int:
        return self.model.attack_dim

    @property
    def pixels(self) -> int:
        return self.model.pixels

    def confidences(self, pixels: torch.Tensor) -> torch.Tensor:
        """The service: f~ for each image (a row of ``pixels`` values); one query per image."""
        if pixels.dim() != 2 or pixels.shape[1] != self.pixels:
            raise ValueError(f"the prediction API takes images of {self.pixels} pixels, got a tensor of shape "
                             f"{tuple(pixels.shape)}")
        self.queries += len(pixels)
        with torch.no_grad():
            return self.countermeasure.apply(torch.softmax(self.model(pixels), dim=1))

    def latent_confidences(self, code: torch.Tensor) -> torch.Tensor:
        """The latent-space oracle: f~ of the classifier head on each code; one query per code."""
        self.queries += len(code)
        with torch.no_grad():
            return self.countermeasure.apply(torch.softmax(self.model.classify(code), dim=1))

    def query(self, code: torch.Tensor) -> torch.Tensor:
        """A black-box query from the attack space, through the configured door."""
        if self.door == "latent":
            return self.latent_confidences(code)
        with torch.no_grad():
            images = self.model.decode(code)
        return self.confidences(images)

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
