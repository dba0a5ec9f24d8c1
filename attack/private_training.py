"""Differentially private training of the face models with DP-SGD (Opacus), the defence the paper points to.

What the guarantee covers: (ε, δ)-differential privacy with respect to **one training photo** (add or remove
one of the 280 images), for everything the checkpoint holds. The softmax and MLP weights come from DP-SGD
alone. Every trained parameter of the DAE is private too: its greedy denoising pretraining sees the same
training photos, so a non-private pretraining would leave unprotected the encoder and the tied decoder that
MI-Face and Process-DAE use. Pretraining (each layer) and supervised fine-tuning are all DP-SGD phases with
the same Poisson sampling rate and noise multiplier, composed by one accountant: the stated ε is the total.

What it does not cover: a *person*. Each subject has 7 training photos, so the guarantee for a subject is
group privacy over 7 records (for ε = 8 that bound is vacuous), and the class representative MI-Face
recovers is a property of all of them: photo-level DP is not designed to hide it. The fixed hyper-parameters
below were chosen by looking at validation accuracy on a few runs, which no accountant charges for.

DP-SGD needs a data-independent schedule: the non-private rule "stop when training accuracy has not improved
for 100 epochs" reads the training data, so private training runs a fixed number of epochs instead.

Per-photo gradient norms come from Opacus's ghost clipping, which never materialises a photo's gradient (the
MLP's first layer alone would be 124 MB a photo); the DAE's tied denoising layer gets its own norm rule below.
Opacus (and SciPy under it) takes seconds to import, and the CLI imports this module for every command, so
it is imported where training starts.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from .faces import Faces, Split
from .models import FaceModel, StackedDAE, build_model
from .training import TrainConfig, TrainResult, accuracy, checkpoint_metadata

ACCOUNTANTS = ("rdp", "prv")

# Optimisation under DP (TrainConfig fields), the same for every ε: a larger expected batch than the non-private
# 10-20, so the noise on the averaged gradient (noise multiplier x C / batch) is smaller, and a learning rate
# sized for clipped gradients. max_epochs is the fixed number of epochs; pretrain_epochs the DAE's per layer.
DP_TRAIN_DEFAULTS = {
    "softmax": {"lr": 0.2, "batch_size": 56, "max_epochs": 40},
    "mlp": {"lr": 0.5, "batch_size": 56, "max_epochs": 10},
    "dae": {"lr": 0.5, "batch_size": 56, "max_epochs": 20, "pretrain_lr": 0.05, "pretrain_epochs": 5},
}


@dataclass
class PrivacyConfig:
    """The privacy side of DP-SGD; the optimisation side (lr, batch size, epochs) stays in TrainConfig."""

    epsilon: float
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "rdp"

    def __post_init__(self) -> None:
        problems = []
        if not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            problems.append(f"epsilon must be a positive number, got {self.epsilon}")
        if not 0 < self.delta < 1:
            problems.append(f"delta must be in (0, 1), got {self.delta}")
        if not (self.max_grad_norm > 0 and math.isfinite(self.max_grad_norm)):
            problems.append(f"the clipping norm must be a positive number, got {self.max_grad_norm}")
        if self.accountant not in ACCOUNTANTS:
            problems.append(f"accountant must be one of {', '.join(ACCOUNTANTS)}, got {self.accountant!r}")
        if problems:
            raise ValueError("invalid DP settings: " + "; ".join(problems))

    def differences(self, report: dict) -> list[str]:
        """What a checkpoint's privacy report (``PrivateTraining.report``) says that this configuration does not."""
        names = ("epsilon", "delta", "max_grad_norm", "accountant")
        return [f"{name} {report.get(name)!r} there, {getattr(self, name)!r} asked"
                for name in names if report.get(name) != getattr(self, name)]

    @property
    def spec(self) -> str:
        """The countermeasure value attacks on such a model carry in bundles, e.g. ``dp:eps=8``."""
        return f"dp:eps={self.epsilon:g}"


def dp_train_config(architecture: str, **overrides) -> TrainConfig:
    """TrainConfig with the DP defaults of ``architecture``; None overrides are ignored."""
    base = {**DP_TRAIN_DEFAULTS[architecture], **{k: v for k, v in overrides.items() if v is not None}}
    return replace(TrainConfig.for_architecture(architecture), **base)


def checkpoint_name(architecture: str, privacy: PrivacyConfig | None, recipe: str = "paper") -> str:
    """MODEL.pt, MODEL-RECIPE.pt for a training recipe other than the paper's, MODEL-dpE.pt under DP-SGD."""
    if privacy is not None and recipe != "paper":
        raise ValueError(f"DP-SGD trains with its own settings; the {recipe!r} recipe does not apply to it")
    if privacy is not None:
        return f"{architecture}-dp{privacy.epsilon:g}.pt"
    return f"{architecture}.pt" if recipe == "paper" else f"{architecture}-{recipe}.pt"


class TiedDenoisingLayer(nn.Module):
    """One DAE layer as a denoising autoencoder, sharing its encoder weight, bias and decoder bias.

    The tied weight is used twice (encode, then decode with its transpose): Opacus's rule for nn.Linear would
    see one use only, so this module owns the three parameters and has its own per-photo norm rule.
    """

    def __init__(self, model: StackedDAE, i: int) -> None:
        super().__init__()
        self.weight = model.encoders[i].weight
        self.bias = model.encoders[i].bias
        self.decoder_bias = model.decoder_biases[i]

    def forward(self, corrupted: torch.Tensor) -> torch.Tensor:
        hidden = torch.sigmoid(F.linear(corrupted, self.weight, self.bias))
        return torch.sigmoid(hidden @ self.weight + self.decoder_bias)


def tied_layer_norm_sample(layer: TiedDenoisingLayer, activations: list[torch.Tensor],
                           backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
    """Each photo's gradient norm for the three parameters, from its input and the gradient at the output.

    With d2 the gradient at the output's pre-activation and d1 at the hidden one, a photo's weight gradient is
    d1 x^T + h d2^T, whose squared Frobenius norm is |d1|^2 |x|^2 + |h|^2 |d2|^2 + 2 (d1.h)(x.d2).
    """
    x = activations[0].to(backprops.dtype)
    with torch.no_grad():
        h = torch.sigmoid(F.linear(x, layer.weight, layer.bias))
        out = torch.sigmoid(h @ layer.weight + layer.decoder_bias)
        d2 = backprops * out * (1 - out)
        d1 = (d2 @ layer.weight.T) * h * (1 - h)
        dot = lambda a, b: (a * b).sum(1)  # noqa: E731
        weight = dot(d1, d1) * dot(x, x) + dot(h, h) * dot(d2, d2) + 2 * dot(d1, h) * dot(x, d2)
    return {layer.weight: weight.clamp_min(0).sqrt(), layer.bias: d1.norm(dim=1), layer.decoder_bias: d2.norm(dim=1)}


class ReconstructionLoss(nn.Module):
    """Cross-entropy of the rebuilt input against the clean one, summed over pixels: the pretraining loss.

    ``reduction`` is set by Opacus's ghost clipping, which needs the loss of each photo."""

    def __init__(self) -> None:
        super().__init__()
        self.reduction = "mean"

    def forward(self, rebuilt: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        per_photo = F.binary_cross_entropy(rebuilt, clean, reduction="none").sum(1)
        return per_photo.mean() if self.reduction == "mean" else per_photo


class PrivateTraining:
    """One DP-SGD run over several phases sharing one accountant, sampling rate and noise multiplier."""

    def __init__(self, privacy: PrivacyConfig, cfg: TrainConfig, n: int, phase_epochs: list[int],
                 device: str = "cpu") -> None:
        from opacus import PrivacyEngine
        from opacus.accountants.utils import get_noise_multiplier
        from opacus.grad_sample.utils import register_norm_sampler

        register_norm_sampler(TiedDenoisingLayer)(tied_layer_norm_sample)
        if not privacy.delta < 1 / n:
            raise ValueError(f"delta = {privacy.delta:g} is not below 1/n = 1/{n}: a mechanism that publishes one "
                             f"photo outright would meet it; choose a smaller delta")
        if not 1 <= cfg.batch_size <= n:
            raise ValueError(f"the expected batch size must be between 1 and the {n} training photos, got "
                             f"{cfg.batch_size}")
        self.privacy, self.cfg, self.phase_epochs, self.device = privacy, cfg, phase_epochs, device
        with warnings.catch_warnings():  # secure_mode (a cryptographic RNG) is off: reproducible runs, seeded
            warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
            self.engine = PrivacyEngine(accountant=privacy.accountant)
        self.batches_per_epoch = math.ceil(n / cfg.batch_size)  # Opacus samples each photo at 1 / this rate
        self.steps = self.batches_per_epoch * sum(phase_epochs)
        try:
            self.noise_multiplier = get_noise_multiplier(
                target_epsilon=privacy.epsilon, target_delta=privacy.delta, sample_rate=1 / self.batches_per_epoch,
                steps=self.steps, accountant=privacy.accountant)
        except ValueError as exc:  # Opacus: "The privacy budget is too low."
            raise ValueError(f"epsilon = {privacy.epsilon:g} at delta = {privacy.delta:g} over {self.steps} steps is "
                             f"below what the {privacy.accountant} accountant can certify at any noise ({exc}); "
                             f"choose a larger epsilon, fewer epochs or the prv accountant") from None
        self.generator = torch.Generator().manual_seed(cfg.seed)
        # a CPU generator cannot draw noise for parameters on a GPU: Opacus's own RNG then
        self.noise_generator = torch.Generator().manual_seed(cfg.seed + 1) if device == "cpu" else None

    def run_phase(self, module: nn.Module, params: list[nn.Parameter], inputs: torch.Tensor,
                  targets: torch.Tensor, loss_fn: nn.Module, lr: float, epochs: int, desc: str,
                  corruption: float | None = None) -> None:
        """DP-SGD on ``params`` of ``module`` for ``epochs``; the others are frozen meanwhile.

        ``corruption``: masking noise on each sampled batch (denoising pretraining), part of the mechanism's
        own randomness.
        """
        for p in module.parameters():
            p.requires_grad_(any(p is q for q in params))
        optimizer = torch.optim.SGD(params, lr=lr)
        loader = DataLoader(TensorDataset(inputs, targets), batch_size=self.cfg.batch_size, generator=self.generator)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ff]ull backward hook.*")  # hooks on frozen inputs
            # each DAE phase samples the same 280 photos (encoded by the layers below): one logical dataset
            warnings.filterwarnings("ignore", message=".*detected new dataset object.*")
            private, optimizer, criterion, loader = self.engine.make_private(
                module=module, optimizer=optimizer, data_loader=loader, criterion=loss_fn,
                noise_multiplier=self.noise_multiplier, max_grad_norm=self.privacy.max_grad_norm,
                noise_generator=self.noise_generator, grad_sample_mode="ghost")
            for _ in tqdm(range(epochs), desc=desc, unit="epoch", leave=False):
                for xb, yb in loader:
                    xb, yb = xb.to(self.device), yb.to(self.device)
                    if corruption is not None:
                        keep = torch.rand(xb.shape, generator=self.generator) >= corruption
                        xb = xb * keep.to(self.device)
                    optimizer.zero_grad(set_to_none=True)
                    criterion(private(xb), yb).backward()
                    optimizer.step()
        private.to_standard_module()  # hooks and per-photo attributes off the parameters
        for p in module.parameters():
            p.requires_grad_(True)

    def report(self) -> dict:
        """The privacy metadata a checkpoint carries."""
        return {
            "mechanism": "DP-SGD (Opacus ghost clipping, Poisson sampling, flat clipping, Gaussian noise)",
            "unit": "one training photo",
            "spec": self.privacy.spec,
            "epsilon": self.privacy.epsilon,
            "delta": self.privacy.delta,
            "spent_epsilon": float(self.engine.get_epsilon(self.privacy.delta)),
            "accountant": self.privacy.accountant,
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": self.privacy.max_grad_norm,
            "expected_batch_size": self.cfg.batch_size,
            "sample_rate": 1 / self.batches_per_epoch,
            "steps": self.steps,
            "phase_epochs": self.phase_epochs,
        }


def train_private_model(architecture: str, faces: Faces, split: Split, cfg: TrainConfig, privacy: PrivacyConfig,
                        device: str = "cpu", **model_config) -> tuple[FaceModel, TrainResult, dict]:
    """Train ``architecture`` with DP-SGD; returns the model, its TrainResult and the privacy report."""
    torch.manual_seed(cfg.seed)
    model = build_model(architecture, **model_config).to(device)
    train_idx, val_idx = split.indices(faces, "train"), split.indices(faces, "validation")
    x = torch.from_numpy(faces.flat(train_idx))
    y = torch.from_numpy(faces.labels[train_idx])
    xv, yv = torch.from_numpy(faces.flat(val_idx)).to(device), torch.from_numpy(faces.labels[val_idx]).to(device)

    dae = isinstance(model, StackedDAE)
    phases = ([cfg.pretrain_epochs] * len(model.encoders) if dae else []) + [cfg.max_epochs]
    run = PrivateTraining(privacy, cfg, len(x), phases, device)
    started = time.perf_counter()
    if dae:
        for i in range(len(model.encoders)):
            with torch.no_grad():
                inputs = model.encode(x.to(device), depth=i).cpu()
            layer = TiedDenoisingLayer(model, i)
            run.run_phase(layer, list(layer.parameters()), inputs, inputs, ReconstructionLoss(), cfg.pretrain_lr,
                          cfg.pretrain_epochs, f"DP pretrain dae layer {i + 1}", cfg.corruption)
    # the DAE's decoder biases take no part in classification: frozen while the classifier trains
    params = [p for name, p in model.named_parameters() if not name.startswith("decoder_biases")]
    run.run_phase(model, params, x, y, nn.CrossEntropyLoss(), cfg.lr, cfg.max_epochs, f"DP train {architecture}")
    seconds = time.perf_counter() - started
    model.eval()
    x, y = x.to(device), y.to(device)
    with torch.no_grad():
        train_loss = float(F.cross_entropy(model(x), y))
    result = TrainResult(cfg.max_epochs, "fixed epochs (DP)", train_loss, accuracy(model, x, y),
                         accuracy(model, xv, yv), seconds, phases[:-1])
    return model, result, run.report()


def private_checkpoint_metadata(model: FaceModel, split: Split, cfg: TrainConfig, result: TrainResult,
                                faces: Faces, report: dict) -> dict:
    return {**checkpoint_metadata(model, split, cfg, result, faces), "privacy": report}


def privacy_summary(report: dict) -> str:
    return (f"DP-SGD ε={report['epsilon']:g}, δ={report['delta']:g} (accountant {report['accountant']}: "
            f"ε={report['spent_epsilon']:.3f} spent; noise multiplier {report['noise_multiplier']:.3f}, clip "
            f"{report['max_grad_norm']:g}, batch {report['expected_batch_size']}, {report['steps']} steps)")
