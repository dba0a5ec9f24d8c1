"""The paper's three face-recognition models.

Every model is split into ``encode`` (pixels -> the space MI-Face searches), ``classify`` (that space ->
logits) and ``decode`` (that space -> pixels). For softmax regression and the MLP the search space is the
pixel space and both maps are the identity; for the stacked denoising autoencoder it is the 300-unit code,
as in the paper, where Process-DAE decodes, cleans and re-encodes between gradient steps.
"""
from __future__ import annotations

import torch
from torch import nn

from .faces import N_PIXELS, N_SUBJECTS

ARCHITECTURES = ("softmax", "mlp", "dae")


def sigmoid_glorot_(layer: nn.Linear) -> nn.Linear:
    """Glorot initialisation scaled by 4 for sigmoid units, as in the Theano tutorials the paper built on.

    PyTorch's default init leaves 3000 sigmoid units over 10304 pixels all near 0.5, and SGD then crawls.
    """
    bound = 4.0 * (6.0 / (layer.in_features + layer.out_features)) ** 0.5
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)
    return layer


class FaceModel(nn.Module):
    name: str
    attack_dim: int
    pixels: int = N_PIXELS
    classes: int = N_SUBJECTS

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return code

    def classify(self, code: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def from_pixel_layer(self, pre: torch.Tensor) -> torch.Tensor:
        """Logits from the pixel layer's pre-activations, for a model whose pixel layer is read by nothing else:
        training then need not hold that layer's weights (SpanTrainedLayer, attack/training.py)."""
        raise NotImplementedError

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.classify(self.encode(pixels))

    def dims(self) -> dict:
        """The input and output sizes when they are not the AT&T faces' (a checkpoint of another gallery)."""
        return {k: v for k, v in (("pixels", self.pixels), ("classes", self.classes))
                if v != {"pixels": N_PIXELS, "classes": N_SUBJECTS}[k]}

    def config(self) -> dict:
        return {"architecture": self.name, **self.dims()}


class SoftmaxRegression(FaceModel):
    name = "softmax"

    def __init__(self, pixels: int = N_PIXELS, classes: int = N_SUBJECTS) -> None:
        super().__init__()
        self.pixels, self.classes = pixels, classes
        self.attack_dim = pixels
        self.linear = nn.Linear(pixels, classes)

    def classify(self, code: torch.Tensor) -> torch.Tensor:
        return self.linear(code)


class MLP(FaceModel):
    """One hidden layer of sigmoid units (3000 in the paper) and a softmax output."""

    name = "mlp"

    def __init__(self, hidden: int = 3000, pixels: int = N_PIXELS, classes: int = N_SUBJECTS) -> None:
        super().__init__()
        self.pixels, self.classes = pixels, classes
        self.attack_dim = pixels
        self.hidden = hidden
        self.net = nn.Sequential(sigmoid_glorot_(nn.Linear(pixels, hidden)), nn.Sigmoid(),
                                 nn.Linear(hidden, classes))

    def classify(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code)

    def from_pixel_layer(self, pre: torch.Tensor) -> torch.Tensor:
        return self.net[1:](pre)

    def config(self) -> dict:
        return {"architecture": self.name, "hidden": self.hidden, **self.dims()}


class StackedDAE(FaceModel):
    """Sigmoid encoder layers (1000 and 300 in the paper) with tied-weight decoders, and a softmax head.

    The decoders share the encoder weights (as in the Theano stacked-DAE tutorial the paper built on), so
    fine-tuning the encoder keeps ``decode`` consistent with ``encode``: Process-DAE depends on that.
    """

    name = "dae"

    def __init__(self, layers: tuple[int, ...] = (1000, 300), pixels: int = N_PIXELS,
                 classes: int = N_SUBJECTS) -> None:
        super().__init__()
        self.pixels, self.classes = pixels, classes
        self.layers = tuple(layers)
        sizes = (pixels, *self.layers)
        self.encoders = nn.ModuleList(sigmoid_glorot_(nn.Linear(a, b)) for a, b in zip(sizes[:-1], sizes[1:]))
        self.decoder_biases = nn.ParameterList(nn.Parameter(torch.zeros(a)) for a in sizes[:-1])
        self.head = nn.Linear(sizes[-1], classes)
        self.attack_dim = sizes[-1]

    def encode_layer(self, i: int, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoders[i](h))

    def decode_layer(self, i: int, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h @ self.encoders[i].weight + self.decoder_biases[i])

    def encode(self, pixels: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        h = pixels
        for i in range(len(self.encoders) if depth is None else depth):
            h = self.encode_layer(i, h)
        return h

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        h = code
        for i in reversed(range(len(self.encoders))):
            h = self.decode_layer(i, h)
        return h

    def classify(self, code: torch.Tensor) -> torch.Tensor:
        return self.head(code)

    def config(self) -> dict:
        return {"architecture": self.name, "layers": list(self.layers), **self.dims()}


def build_model(architecture: str, **config) -> FaceModel:
    config = {k: v for k, v in config.items() if k != "architecture"}
    if architecture == "softmax":
        return SoftmaxRegression(**config)
    if architecture == "mlp":
        return MLP(**config)
    if architecture == "dae":
        if "layers" in config:
            config["layers"] = tuple(config["layers"])
        return StackedDAE(**config)
    raise ValueError(f"unknown model architecture {architecture!r}: expected one of {', '.join(ARCHITECTURES)}")
