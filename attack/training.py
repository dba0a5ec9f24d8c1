"""Training the face models with stochastic gradient descent, as in the paper.

Training stops when training-set performance has not improved for ``patience`` epochs, the paper's rule,
or at ``max_epochs``. For the classifiers performance is training accuracy (measured on the epoch's
minibatches, so it costs nothing extra); for the DAE's denoising pretraining, which has no labels, it is the
reconstruction loss, improved by at least ``min_delta``. The DAE is first pretrained layer by layer as
denoising autoencoders (masking noise), then fine-tuned with its softmax head.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .faces import Faces, Split
from .models import FaceModel, StackedDAE, build_model

INPUT_INITS = ("random", "span")

# Named training settings, per architecture, applied over the model's defaults; explicit settings win over them.
# "paper" trains as the paper did (the default). "faces" is the MLP setting whose reconstructions are faces
# (BENCHMARKS.md, "Closing the gap"): the pixel layer starts in the span of the training photos, so that its
# untouched initial weights are not grain, and weight decay over 120 epochs shrinks what is left of the start.
# Attack such a model with the "faces" preset (attack/reconstruct.py). Measured on the MLP only.
RECIPES: dict[str, dict[str, dict]] = {
    "paper": {"softmax": {}, "mlp": {}, "dae": {}},
    "faces": {"mlp": {"input_init": "span", "weight_decay": 5e-3, "max_epochs": 120}},
}


@dataclass
class TrainConfig:
    lr: float = 0.1
    batch_size: int = 10
    patience: int = 100
    max_epochs: int = 500
    min_delta: float = 1e-4
    pretrain_lr: float = 0.01
    pretrain_epochs: int = 200
    corruption: float = 0.3
    seed: int = 0
    # L2 penalty on the classifier's weight matrices (not biases), as torch's SGD weight_decay: d/dW of
    # (weight_decay / 2) |W|^2. The Theano tutorial MLP the paper built on used L2_reg = 1e-4 on |W|^2, i.e. 2e-4.
    weight_decay: float = 0.0
    # Multiplies the initial weights of the layer that reads the pixels. SGD changes that layer only within the
    # span of the training images, so the rest of its initial weights stays as drawn: the attack's gradient sees
    # it as grain (BENCHMARKS.md, "MLP reconstructions"). 1 = the models' own initialisation.
    input_init_scale: float = 1.0
    # How the layer that reads the pixels starts: "random" (the models' own, the paper's) or "span": random
    # combinations of the centred training photos (span_init_), so that the layer, and with it the attack's
    # gradient, stays in the space of faces: SGD only ever adds outer products with training photos. A study
    # option (BENCHMARKS.md, "First layer started in the training photos' span"): faces, short of the target.
    input_init: str = "random"
    # With input_init "span": start the layer in the span of only the photos' top principal components (0 = all
    # of them). What a few components hold is a face's coarse shape; the rest, each photo's own detail. A study
    # option too: SGD still adds outer products with every photo.
    input_init_rank: int = 0
    recipe: str = "paper"  # the RECIPES entry these settings started from, recorded with the checkpoint

    def __post_init__(self) -> None:
        check_recipe(self.recipe)
        if self.input_init not in INPUT_INITS:
            raise ValueError(f"the input layer's initialisation must be one of {', '.join(INPUT_INITS)}, "
                             f"got {self.input_init!r}")
        if self.input_init_rank < 0:
            raise ValueError("the input layer's initial rank must be 0 (all photos) or more, "
                             f"got {self.input_init_rank}")
        if self.input_init_rank and self.input_init != "span":
            raise ValueError("an initial rank applies to the span initialisation only (input_init='span')")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight decay must be 0 or more, got {self.weight_decay}")
        if not self.input_init_scale >= 0:
            raise ValueError(f"the input layer's initial scale must be 0 or more, got {self.input_init_scale}")

    @classmethod
    def for_architecture(cls, architecture: str, recipe: str = "paper", **overrides) -> "TrainConfig":
        """Defaults per model, chosen so each converges on 280 images within minutes on two cores, then the
        recipe's settings, then the overrides."""
        base = {"softmax": {"lr": 0.1, "batch_size": 10},
                "mlp": {"lr": 0.1, "batch_size": 20},
                "dae": {"lr": 0.1, "batch_size": 20}}[architecture]
        base.update(recipe_settings(recipe, architecture), recipe=recipe)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


def check_recipe(recipe: str) -> None:
    if recipe not in RECIPES:
        raise ValueError(f"the training recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")


def recipe_settings(recipe: str, architecture: str) -> dict:
    check_recipe(recipe)
    if architecture not in RECIPES[recipe]:
        raise ValueError(f"the {recipe!r} recipe is for {', '.join(RECIPES[recipe])} only, not {architecture}")
    return RECIPES[recipe][architecture]


def model_label(meta: dict) -> str:
    """What items of a checkpoint name as their model: the architecture, with the recipe when it is not the
    paper's, so that a model trained otherwise is its own condition ("mlp-faces")."""
    recipe = (meta.get("train_config") or {}).get("recipe", "paper")
    architecture = meta["model"]["architecture"]
    return architecture if recipe == "paper" else f"{architecture}-{recipe}"


@dataclass
class TrainResult:
    epochs: int
    stopped_by: str
    train_loss: float
    train_accuracy: float
    validation_accuracy: float
    seconds: float
    pretrain_epochs: list[int] = field(default_factory=list)


def accuracy(model: FaceModel, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def sgd_until_plateau(
    params: list[torch.nn.Parameter],
    batch_loss: Callable[[torch.Tensor], tuple[torch.Tensor, int | None]],
    n: int,
    lr: float,
    batch_size: int,
    patience: int,
    max_epochs: int,
    min_delta: float,
    generator: torch.Generator,
    desc: str,
    weight_decay: float = 0.0,
    after_step: Callable[[], None] | None = None,
) -> tuple[int, str, float]:
    """Minibatch SGD over ``n`` examples; returns (epochs run, why it stopped, best performance).

    ``batch_loss`` returns the minibatch loss and how many it classified correctly (None when there are
    no labels, and then the loss is the performance). ``weight_decay`` applies to weight matrices only.
    ``after_step`` runs after each step, for parameters updated outside ``params`` (SpanTrainedLayer).
    """
    groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
    opt = torch.optim.SGD([g for g in groups if g["params"]], lr=lr)
    best, since_best, epoch = -float("inf"), 0, 0
    bar = tqdm(range(1, max_epochs + 1), desc=desc, unit="epoch", leave=False)
    for epoch in bar:
        order = torch.randperm(n, generator=generator)
        total, correct = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad(set_to_none=False)  # reuse the gradient buffers (124 MB for a DAE's first layer)
            loss, right = batch_loss(idx)
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            total += loss.item() * len(idx)
            correct = correct + right if right is not None else None
        if correct is None:
            performance, margin = -total / n, min_delta
            bar.set_postfix(loss=f"{total / n:.4g}")
        else:
            performance, margin = correct / n, 0.0
            bar.set_postfix(loss=f"{total / n:.4g}", accuracy=f"{performance:.3f}")
        if performance > best + margin:
            best, since_best = performance, 0
        else:
            since_best += 1
            if since_best >= patience:
                return epoch, "plateau", best
    return epoch, "max_epochs", best


def pretrain_dae(model: StackedDAE, x: torch.Tensor, cfg: TrainConfig, generator: torch.Generator) -> list[int]:
    """Greedy layer-wise denoising pretraining: each layer learns to rebuild its clean input from a masked one."""
    epochs = []
    for i in range(len(model.encoders)):
        with torch.no_grad():
            inputs = model.encode(x, depth=i)

        def reconstruction_loss(idx: torch.Tensor, i: int = i, inputs: torch.Tensor = inputs) -> torch.Tensor:
            clean = inputs[idx]
            keep = torch.rand(clean.shape, generator=generator, device="cpu").to(clean.device) >= cfg.corruption
            rebuilt = model.decode_layer(i, model.encode_layer(i, clean * keep))
            return F.binary_cross_entropy(rebuilt, clean, reduction="none").sum(1).mean(), None

        params = [model.encoders[i].weight, model.encoders[i].bias, model.decoder_biases[i]]
        ran, _, _ = sgd_until_plateau(params, reconstruction_loss, len(x), cfg.pretrain_lr, cfg.batch_size,
                                      cfg.patience, cfg.pretrain_epochs, cfg.min_delta, generator,
                                      desc=f"pretrain dae layer {i + 1}")
        epochs.append(ran)
    return epochs


def input_layer(model: FaceModel) -> torch.nn.Linear:
    """The linear layer that reads the pixels (the first one registered, in every architecture)."""
    return next(m for m in model.modules() if isinstance(m, torch.nn.Linear))


def span_init_(layer: torch.nn.Linear, photos: torch.Tensor, rank: int = 0) -> torch.nn.Linear:
    """Redraw ``layer``'s weights as Gaussian combinations of the centred ``photos`` (one photo a row).

    Each row is then a face-like image (a mix of differences from the mean face), and SGD, whose updates to
    this layer are outer products with the photos, keeps every row in their span. The rows are scaled so that
    the pre-activations on the photos spread as much as under the layer's own (Glorot) draw, which the layer
    must already hold: the hidden units start as far from saturation as in the paper's model. ``rank`` > 0 keeps
    only the centred photos' top ``rank`` principal components (their best rank-``rank`` approximation).
    """
    with torch.no_grad():
        photos = photos.to(layer.weight)
        spread = (photos @ layer.weight.T).std()
        centred = photos - photos.mean(0)
        if rank:
            u, s, vh = torch.linalg.svd(centred, full_matrices=False)
            centred = (u[:, :rank] * s[:rank]) @ vh[:rank]
        weight = torch.randn(layer.out_features, len(photos), device=photos.device) @ centred
        weight *= spread / (photos @ weight.T).std()
        layer.weight.copy_(weight)
    return layer


SPAN_TRAINED = ("mlp",)
"""The architectures trained with SpanTrainedLayer. The DAE's pretraining also decodes with its pixel layer, and
DP-SGD clips each photo's gradient, so both train W itself. So does softmax regression, in seconds: its SGD is
chaotic (rounding differences of 1e-14 grow to the size of the weights within four epochs, in float64 too), so
any change in the order of rounding gives another model, and its checkpoints stay those of plain SGD."""


class SpanTrainedLayer:
    """SGD on the MLP's pixel layer W (hidden x pixels), run exactly but without touching W.

    On photo x the gradient of W is an outer product with x, so after any number of SGD steps with weight
    decay W = s W0 + C X: X the n training photos, W0 the initial weights, s the decay so far and C (hidden x n)
    the sum of the updates. The pre-activations of training photo i are then s (X W0^T)_i + (X X^T)_i C^T + b,
    from two products computed once, and a step updates the batch's columns of C: an n-wide step instead of a
    read and write of all of W (124 MB for the MLP) three times a minibatch: 25 to 38 times faster. ``finish``
    writes W once at the end. The same arithmetic as SGD on W, rounded in another order.
    """

    def __init__(self, layer: torch.nn.Linear, photos: torch.Tensor) -> None:
        self.layer, self.photos = layer, photos
        with torch.no_grad():
            self.projected = photos @ layer.weight.T
            self.gram = photos @ photos.T
        self.coefficients = torch.zeros(layer.out_features, len(photos), dtype=photos.dtype, device=photos.device)
        self.scale = 1.0
        self.pre: torch.Tensor | None = None
        self.idx: torch.Tensor | None = None

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """The pre-activations of training photos ``idx``, as a leaf whose gradient the step reads."""
        with torch.no_grad():
            pre = torch.addmm(self.layer.bias, self.gram[idx], self.coefficients.T)
            pre.add_(self.projected[idx], alpha=self.scale)
        self.pre, self.idx = pre.requires_grad_(), idx
        return self.pre

    def step(self, lr: float, weight_decay: float) -> None:
        """W <- W - lr (dL/dW + weight_decay W) with dL/dW = delta^T X[idx]; the bias without decay."""
        delta = self.pre.grad
        with torch.no_grad():
            keep = 1.0 - lr * weight_decay
            self.scale *= keep
            self.coefficients.mul_(keep)
            self.coefficients[:, self.idx] -= lr * delta.T
            self.layer.bias -= lr * delta.sum(0)

    def finish(self) -> None:
        with torch.no_grad():
            self.layer.weight.mul_(self.scale).addmm_(self.coefficients, self.photos)


def train_model(architecture: str, faces: Faces, split: Split, cfg: TrainConfig, device: str = "cpu",
                **model_config) -> tuple[FaceModel, TrainResult]:
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model = build_model(architecture, **model_config).to(device)
    train_idx, val_idx = split.indices(faces, "train"), split.indices(faces, "validation")
    x = torch.from_numpy(faces.flat(train_idx)).to(device)
    if cfg.input_init == "span":
        span_init_(input_layer(model), x, cfg.input_init_rank)
    if cfg.input_init_scale != 1.0:
        with torch.no_grad():
            input_layer(model).weight.mul_(cfg.input_init_scale)
    y = torch.from_numpy(faces.labels[train_idx]).to(device)
    xv = torch.from_numpy(faces.flat(val_idx)).to(device)
    yv = torch.from_numpy(faces.labels[val_idx]).to(device)

    started = time.perf_counter()
    pretrain = pretrain_dae(model, x, cfg, generator) if isinstance(model, StackedDAE) else []

    params, after_step = list(model.parameters()), None
    span = SpanTrainedLayer(input_layer(model), x) if architecture in SPAN_TRAINED else None
    if span is not None:
        params = [p for p in params if p is not span.layer.weight and p is not span.layer.bias]
        after_step = lambda: span.step(cfg.lr, cfg.weight_decay)  # noqa: E731

    def classification_loss(idx: torch.Tensor) -> tuple[torch.Tensor, int]:
        idx = idx.to(device)
        logits = model(x[idx]) if span is None else model.from_pixel_layer(span(idx))
        return F.cross_entropy(logits, y[idx]), int((logits.argmax(1) == y[idx]).sum())

    epochs, stopped_by, _ = sgd_until_plateau(params, classification_loss, len(x), cfg.lr, cfg.batch_size,
                                              cfg.patience, cfg.max_epochs, cfg.min_delta, generator,
                                              desc=f"train {architecture}", weight_decay=cfg.weight_decay,
                                              after_step=after_step)
    if span is not None:
        span.finish()
    seconds = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        train_loss = float(F.cross_entropy(model(x), y))
    result = TrainResult(epochs, stopped_by, train_loss, accuracy(model, x, y), accuracy(model, xv, yv),
                         seconds, pretrain)
    return model, result


def checkpoint_metadata(model: FaceModel, split: Split, cfg: TrainConfig, result: TrainResult, faces: Faces) -> dict:
    return {
        "format": "mi-harness/checkpoint",
        "version": 1,
        "model": model.config(),
        "split": split.to_json(faces.identities),
        **({"gallery": {"source": str(faces.root), "input_size": [faces.shape[1], faces.shape[0]],
                        "identities": list(faces.identities)}} if faces.identities else {}),
        "train_config": asdict(cfg),
        "result": asdict(result),
        "faces_dir": str(faces.root),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
    }
