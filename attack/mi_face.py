"""MI-Face, the paper's Algorithm 1, batched over labels.

    c(x) = 1 - f~_label(x) + AUXTERM(x);  x_0 = start;  x_i = PROCESS(x_{i-1} - lambda * grad c(x_{i-1}))

Each row of the batch is one label with its own stopping state; rows that have stopped leave the batch, so
the remaining ones run at the cost of a smaller tensor. The best x seen (lowest cost) is returned.

Stopping, checked after every step:
- ``alpha`` steps at most;
- the paper's plateau test: c(x_i) >= max(c(x_{i-1}), ..., c(x_{i-beta})) for i >= beta (first at i = beta, against
  x_0 ... x_{beta-1});
- the target test, in one of two readings. ``stop_rule="confidence"`` stops when f~_label(x_i) >= gamma, as
  the authors' released code does; ``stop_rule="cost"`` stops when c(x_i) <= gamma, as the paper's text
  writes it (with gamma = 0.99 that fires as soon as the confidence passes 0.01). ``stop_rule="none"`` keeps
  only the first two, which deblurring uses since its start is already confidently classified.
- in black-box mode, a per-label query budget.

``step="plain"`` is the paper's x - lambda * grad c. Where the model is confidently wrong at x_0 (our MLP gives
some labels 1e-7) that gradient vanishes and the search never leaves x_0; ``step="normalized"`` divides the
gradient by its root mean square, so every step moves a pixel by lambda on average whatever f is.
``confidence_term="log"`` replaces the paper's 1 - f~ by -log f~ (the cross-entropy), whose gradient does not
vanish where f~ is tiny: an image prior in AUXTERM is then weighed against the model's evidence rather than
against a gradient of 1e-7, which would leave the prior alone to flatten the image back to x_0.

Two white-box options shape the gradient instead of adding a competing cost (pixel attack spaces only):
``grad_blur`` smooths grad c with a Gaussian of that many pixels before each step, and ``jitter`` takes the
gradient at the image shifted by up to that many pixels (a fresh random shift each step, shifted back). Both are
the feature-visualisation answer to adversarial grain (Olah et al. 2017, "Feature Visualization"; Mordvintsev et
al. 2015): blur is a preconditioner that favours the low frequencies a face is made of, and jitter makes grain
that works only at one exact pixel position useless. Unlike a prior in AUXTERM, neither is rescaled to a full
step by the normalized step once -log f~ saturates (BENCHMARKS.md, "First layer started in the training
photos' span"), since they change the direction of the model's own gradient, not what is minimised. Measured on
the span-started MLP, both lowered the face recogniser's top-1, the more the stronger (BENCHMARKS.md, "Closing the
gap"): they stay off by default, kept so that the finding can be reproduced.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .faces import HEIGHT, WIDTH
from .gradient_estimators import FiniteDifferences, NESEstimator
from .image_prior import ImagePrior
from .prediction_api import PredictionAPI

STOP_RULES = ("confidence", "cost", "none")
STEPS = ("plain", "normalized")
CONFIDENCE_TERMS = ("linear", "log")
LOG_FLOOR = 1e-30  # -log f~ of a confidence rounded to 0 is -log(1e-30) = 69, not infinity


class AuxTerm(Protocol):
    """Side information: a differentiable cost per row, added to 1 - f~_label."""

    def __call__(self, code: torch.Tensor, rows: torch.Tensor) -> torch.Tensor: ...


@dataclass
class MIFaceConfig:
    alpha: int = 5000
    beta: int = 100
    gamma: float = 0.99
    lam: float = 0.1
    stop_rule: str = "confidence"
    process_every: int = 1
    query_budget: int | None = None
    step: str = "plain"
    start_value: float = 0.0
    tv_weight: float = 0.0  # an image prior in AUXTERM: weight of the image's total variation, 0 = none (paper)
    confidence_term: str = "linear"  # linear: c = 1 - f~ + AUXTERM (paper); log: c = -log f~ + AUXTERM
    grad_blur: float = 0.0  # Gaussian sigma (pixels) applied to grad c before each step; 0 = none (paper)
    jitter: int = 0  # white-box: gradient taken at x rolled by a random shift of up to this many pixels; 0 = none
    jitter_seed: int = 0  # the shifts' random generator, so that a run can be repeated

    def __post_init__(self) -> None:
        problems = []
        if self.alpha < 1:
            problems.append(f"alpha must be at least 1, got {self.alpha}")
        if self.beta < 1:
            problems.append(f"beta must be at least 1, got {self.beta}")
        if not 0 < self.gamma < 1:
            problems.append(f"gamma must be in (0, 1), got {self.gamma}")
        if self.lam <= 0:
            problems.append(f"lambda must be positive, got {self.lam}")
        if self.stop_rule not in STOP_RULES:
            problems.append(f"stop_rule must be one of {', '.join(STOP_RULES)}, got {self.stop_rule!r}")
        if self.step not in STEPS:
            problems.append(f"step must be one of {', '.join(STEPS)}, got {self.step!r}")
        if self.process_every < 0:
            problems.append(f"process_every must be 0 (never) or more, got {self.process_every}")
        if not 0.0 <= self.start_value <= 1.0:
            problems.append(f"start_value must be a pixel value in [0, 1], got {self.start_value}")
        if not self.tv_weight >= 0:
            problems.append(f"tv_weight must be 0 (no prior) or positive, got {self.tv_weight}")
        if self.confidence_term not in CONFIDENCE_TERMS:
            problems.append(f"confidence_term must be one of {', '.join(CONFIDENCE_TERMS)}, "
                            f"got {self.confidence_term!r}")
        elif self.confidence_term == "log" and self.stop_rule == "cost":
            problems.append("stop_rule cost compares 1 - f~ with gamma: with confidence_term log use the "
                            "confidence or none stop rule")
        if not self.grad_blur >= 0:
            problems.append(f"grad_blur must be 0 (none) or a positive sigma in pixels, got {self.grad_blur}")
        if self.jitter < 0:
            problems.append(f"jitter must be 0 (none) or a positive number of pixels, got {self.jitter}")
        if self.query_budget is not None and self.query_budget < 1:
            problems.append(f"query_budget must be positive, got {self.query_budget}")
        if problems:
            raise ValueError("invalid MI-Face settings: " + "; ".join(problems))


@dataclass
class Inversion:
    """One label's result; ``image`` is in pixel space, flattened."""

    label: int
    image: torch.Tensor
    cost: float
    reported_confidence: float
    true_confidence: float
    iterations: int
    queries: int
    seconds: float
    stopped_by: str
    history: list[float] = field(default_factory=list, repr=False)


class MIFace:
    def __init__(self, api: PredictionAPI, config: MIFaceConfig | None = None,
                 process: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 estimator: FiniteDifferences | NESEstimator | None = None, show_progress: bool = True,
                 image_shape: tuple[int, int] = (HEIGHT, WIDTH)) -> None:
        self.api = api
        self.config = config or MIFaceConfig()
        self.prior = None
        if self.config.tv_weight:
            if image_shape[0] * image_shape[1] != api.pixels:
                raise ValueError(f"an image prior needs the image's shape: {image_shape[0]}x{image_shape[1]} is "
                                 f"not the model's {api.pixels} pixels")
            self.prior = ImagePrior(self.config.tv_weight, api.decode, *image_shape)
        self.image_shape = image_shape
        if self.config.grad_blur or self.config.jitter:
            if image_shape[0] * image_shape[1] != api.pixels or api.attack_dim != api.pixels:
                raise ValueError("gradient blur and jitter act on images: they need a pixel attack space (softmax, "
                                 f"MLP) of {image_shape[0]}x{image_shape[1]} pixels")
            if self.config.jitter and estimator is not None:
                raise ValueError("jitter shifts the image the white-box gradient is taken at: a black-box "
                                 "attacker's estimate is not given it")
        self.blur_kernel = gaussian_kernel(self.config.grad_blur) if self.config.grad_blur else None
        self.jitter_generator: torch.Generator | None = None
        self.process = process
        self.estimator = estimator
        if estimator is None and self.config.query_budget is not None:
            raise ValueError("a query budget applies to black-box MI-Face only: give a gradient estimator")
        self.show_progress = show_progress

    @property
    def access(self) -> str:
        return "whitebox" if self.estimator is None else "blackbox"

    def invert(self, labels: list[int] | torch.Tensor, start: torch.Tensor | None = None,
               aux: AuxTerm | None = None, keep_history: bool = False) -> list[Inversion]:
        """Invert every label at once.

        ``start`` (pixels, one row per label) defaults to a constant image of ``start_value``: the paper's
        x_0 = 0 for softmax and MLP. It is encoded into the attack space, so for the DAE x_0 is the code of
        that image rather than the all-zero code, which decodes to noise far from any face.
        """
        cfg, api = self.config, self.api
        device = api.device
        aux = self._with_prior(aux)
        labels = torch.as_tensor(labels, dtype=torch.long, device=device)
        n = len(labels)
        if start is None:
            start = torch.full((n, api.pixels), cfg.start_value)
        with torch.no_grad():
            x = api.encode(start.to(device).float()).clone()  # never write into the caller's tensor
        self.jitter_generator = torch.Generator().manual_seed(cfg.jitter_seed) if cfg.jitter else None

        # Per-row results, filled in when a row stops.
        queries = [0] * n
        iterations = [0] * n
        seconds = [0.0] * n
        stopped_by = ["alpha"] * n
        histories: list[list[float]] = [[] for _ in range(n)]
        best_x, best_cost, best_conf = x.clone(), torch.empty(n, device=device), torch.empty(n, device=device)

        started = time.perf_counter()
        active = torch.arange(n, device=device)  # the rows still searching; all state below is theirs only
        reported, cost, grad = self._measure(x, labels, active, aux)
        grad = self._complete_gradient(x, labels, reported, grad)
        xa, la = x, labels
        # Every row asks the same number of queries a step: one at x_i, and the estimator's probes.
        probes = self.estimator.queries_per_step(api.attack_dim) if self.estimator else 0
        qa = torch.full((n,), 1 + probes, dtype=torch.long, device=device)
        bx, bc, bf = x.clone(), cost.clone(), reported.clone()
        # The last beta costs, a ring: c(x_j) at slot j % beta, starting with c(x_0), so that the plateau test can
        # fire at i = beta (the paper's "i >= beta": x_{i-beta} is then x_0).
        window = torch.full((n, cfg.beta), float("nan"), device=device)
        window[:, 0] = cost
        if keep_history:  # c(x_0), then one entry a step
            for row, c in enumerate(cost.tolist()):
                histories[row].append(c)

        def retire(mask: torch.Tensor, reasons: list[str], i: int) -> None:
            now = time.perf_counter() - started
            rows = active[mask]
            best_x[rows], best_cost[rows], best_conf[rows] = bx[mask], bc[mask], bf[mask]
            for row, reason, q in zip(rows.tolist(), reasons, qa[mask].tolist()):
                iterations[row], seconds[row], stopped_by[row], queries[row] = i, now, reason, q

        bar = tqdm(total=cfg.alpha, desc=f"MI-Face {self.access}", unit="it", leave=False,
                   disable=not self.show_progress)
        i = 0
        for i in range(1, cfg.alpha + 1):
            if self.blur_kernel is not None:
                grad = blur_rows(grad, self.blur_kernel, *self.image_shape)
            if cfg.step == "normalized":  # every coordinate moves lambda on average (root mean square)
                grad = grad / grad.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-30)
            xa = xa - cfg.lam * grad
            if self.process is not None and cfg.process_every and i % cfg.process_every == 0:
                xa = self.process(xa)
            reported, cost, grad = self._measure(xa, la, active, aux)
            qa += 1
            if keep_history:
                for row, c in zip(active.tolist(), cost.tolist()):
                    histories[row].append(c)
            improved = cost < bc
            if improved.all():  # the common case in a descent: no masked copies
                bx, bc, bf = xa, cost, reported
            elif improved.any():
                bc, bf = torch.where(improved, cost, bc), torch.where(improved, reported, bf)
                bx = torch.where(improved[:, None], xa, bx)

            flags = []  # (mask, reason); a later, more telling reason wins
            if cfg.query_budget is not None:
                flags.append((qa + 1 + probes > cfg.query_budget, "budget"))
            if i >= cfg.beta:
                flags.append((cost >= window.max(dim=1).values, "plateau"))
            if cfg.stop_rule == "confidence":
                flags.append((reported >= cfg.gamma, "target"))
            elif cfg.stop_rule == "cost":
                flags.append((cost <= cfg.gamma, "target"))
            window[:, i % cfg.beta] = cost
            bar.update(1)
            if flags:
                done = torch.stack([mask for mask, _ in flags]).any(0)
                if done.any():
                    reasons = [""] * len(active)
                    for mask, reason in flags:
                        for j in torch.nonzero(mask).flatten().tolist():
                            reasons[j] = reason
                    retire(done, [reasons[j] for j in torch.nonzero(done).flatten().tolist()], i)
                    keep = ~done
                    active, la, xa, reported, window = active[keep], la[keep], xa[keep], reported[keep], window[keep]
                    bx, bc, bf, qa = bx[keep], bc[keep], bf[keep], qa[keep]
                    grad = grad[keep] if grad is not None else None
                    bar.set_postfix(active=len(active))
                    if not len(active):
                        break
            # a black-box attacker pays for a gradient only where the search goes on
            grad = self._complete_gradient(xa, la, reported, grad)
            qa += probes
        bar.close()
        if len(active):
            retire(torch.ones(len(active), dtype=torch.bool, device=device), ["alpha"] * len(active), i)

        with torch.no_grad():
            images = api.decode(best_x)
        true_conf = api.true_confidence(images, labels)
        return [Inversion(int(labels[r]), images[r].cpu(), float(best_cost[r]), float(best_conf[r]),
                          float(true_conf[r]), iterations[r], queries[r], seconds[r], stopped_by[r], histories[r])
                for r in range(n)]

    def _with_prior(self, aux: AuxTerm | None) -> AuxTerm | None:
        """The caller's side information (deblurring's blur consistency) plus the configured image prior."""
        if self.prior is None or aux is None:
            return aux or self.prior
        prior = self.prior
        return lambda code, rows: aux(code, rows) + prior(code, rows)

    def _measure(self, x: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor,
                 aux: AuxTerm | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One query per row: reported confidence, cost c, and the part of grad c known without probing
        (all of it for a white-box attacker, only the AUXTERM's for a black-box one)."""
        api = self.api
        grad = None
        if self.estimator is None and self.jitter_generator is not None:
            probs = api.query(x)  # f~ and the cost at x itself; the gradient at a shifted copy
            dy, dx = (int(v) for v in torch.randint(-self.config.jitter, self.config.jitter + 1, (2,),
                                                    generator=self.jitter_generator))
            _, grad_f = api.confidences_and_gradient(roll_rows(x, dy, dx, *self.image_shape), labels)
            grad_f = roll_rows(grad_f, -dy, -dx, *self.image_shape)
            if self.config.confidence_term == "log":
                grad = -grad_f / self._unprotected(x, labels, probs).clamp_min(LOG_FLOOR)[:, None]
            else:
                grad = -grad_f
        elif self.estimator is None:
            probs, grad_f = api.confidences_and_gradient(x, labels)
            if self.config.confidence_term == "log":  # grad(-log f) = -grad f / f, f the unprotected confidence
                grad = -grad_f / self._unprotected(x, labels, probs).clamp_min(LOG_FLOOR)[:, None]
            else:
                grad = -grad_f
        else:  # through the API's door: an image decode(x) unless the latent-space oracle is configured
            probs = api.query(x)
        reported = probs.gather(1, labels[:, None])[:, 0]
        cost = self._confidence_cost(reported)
        if aux is not None:
            code = x.detach().requires_grad_(True)
            with torch.enable_grad():
                aux_cost = aux(code, rows)
                (aux_grad,) = torch.autograd.grad(aux_cost.sum(), code)
            cost = cost + aux_cost.detach()
            grad = aux_grad if grad is None else grad + aux_grad
        return reported, cost, grad

    def _confidence_cost(self, reported: torch.Tensor) -> torch.Tensor:
        if self.config.confidence_term == "log":
            return -torch.log(reported.clamp_min(LOG_FLOOR))
        return 1.0 - reported

    def _unprotected(self, x: torch.Tensor, labels: torch.Tensor, reported_probs: torch.Tensor) -> torch.Tensor:
        """The model's own confidence, which a white-box attacker holds; the reported one when nothing alters it."""
        if str(self.api.countermeasure) == "none":
            return reported_probs.gather(1, labels[:, None])[:, 0]
        with torch.no_grad():
            return torch.softmax(self.api.model.classify(x), dim=1).gather(1, labels[:, None])[:, 0]

    def _complete_gradient(self, x: torch.Tensor, labels: torch.Tensor, reported: torch.Tensor,
                           grad: torch.Tensor | None) -> torch.Tensor:
        if self.estimator is None:
            return grad
        api = self.api

        def query_cost(points: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
            return self._confidence_cost(api.query(points).gather(1, labels[owner][:, None])[:, 0])

        estimate = self.estimator.estimate(query_cost, x, self._confidence_cost(reported))
        return estimate if grad is None else grad + estimate

    def settings(self) -> dict:
        params = asdict(self.config)
        params["access"] = self.access
        if self.estimator is not None:
            params["estimator"] = self.estimator.name
            params["door"] = self.api.door  # image: every query is a picture; latent: the code-space oracle
            params.update({f"estimator_{k}": v for k, v in vars(self.estimator).items()
                           if isinstance(v, (int, float)) and k != "chunk"})
        if self.process is not None and hasattr(self.process, "params"):
            params["process"] = {"name": "process-dae", **self.process.params()}
        return params


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian over +-3 sigma (at least one pixel either side)."""
    radius = max(1, int(3 * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def blur_rows(rows: torch.Tensor, kernel: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Separable Gaussian blur of each flattened image in ``rows``; edges replicated so borders are not darkened."""
    radius = len(kernel) // 2
    grid = rows.reshape(len(rows), 1, height, width)
    k = kernel.to(rows)
    grid = F.conv2d(F.pad(grid, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    grid = F.conv2d(F.pad(grid, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return grid.reshape(len(rows), height * width)


def roll_rows(rows: torch.Tensor, dy: int, dx: int, height: int, width: int) -> torch.Tensor:
    """Each flattened image in ``rows`` shifted cyclically by dy rows and dx columns."""
    return torch.roll(rows.reshape(len(rows), height, width), shifts=(dy, dx), dims=(1, 2)).reshape(len(rows), -1)
