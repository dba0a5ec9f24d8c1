"""The attack's commands: train the face models, attack them, fetch the faces (loaded lazily by mi_harness.cli)."""
from __future__ import annotations

import functools
from pathlib import Path

import click
import torch

from mi_harness.bundle import BundleError
from mi_harness.bundle_cli import parse_size

from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .faces import FacesError, Split, load_faces, load_gallery_faces
from .fetch import DEFAULT_URL, FetchError, fetch_faces
from .image_prior import parse_prior
from .mi_face import CONFIDENCE_TERMS, STEPS, STOP_RULES
from .models import ARCHITECTURES
from .prediction_api import DOORS
from .private_training import (
    ACCOUNTANTS,
    PrivacyConfig,
    checkpoint_name,
    dp_train_config,
    privacy_summary,
    private_checkpoint_metadata,
    train_private_model,
)
from .reconstruct import PRESETS, AttackRequest, run_attack, save_to_bundle
from .training import RECIPES, TrainConfig, checkpoint_metadata, train_model

DEFAULT_MODELS_DIR = Path("runs/models")
DEFAULT_BUNDLE = Path("runs/bundle")
faces_option = click.option("--faces", "faces_dir", type=click.Path(file_okay=False),
                            help="AT&T faces folder (default: $MI_FACES_DIR, then ../shared/data/att_faces).")


def user_errors(fn):
    """Turn the project's input errors into a clean message and exit status 1, not a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (FacesError, BundleError, CheckpointError, FetchError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
    return wrapper


def check_device(device: str) -> str:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine; use --device cpu", param_hint="--device")
    return device


def parse_labels(text: str, limit: int | None = 40) -> list[int]:
    """'1-40' or '1,3,5-7' (subjects are 1-based, as in s1..s40) -> 0-based labels. ``limit`` None leaves the
    upper bound to the model (a checkpoint of another gallery has its own number of identities)."""
    labels: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            labels += range(int(lo), int(hi or lo) + 1)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use subject numbers like 1-40 or 1,3,5-7", param_hint="--labels") from None
    if not labels or min(labels) < 1 or (limit is not None and max(labels) > limit):
        raise click.BadParameter(f"{text!r}: subjects are numbered 1 to {limit or 'the number of identities'}",
                                 param_hint="--labels")
    return sorted({label - 1 for label in labels})


@click.command()
@click.option("--model", "models", type=click.Choice([*ARCHITECTURES, "all"]), multiple=True, default=["all"],
              show_default=True)
@faces_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=str(DEFAULT_MODELS_DIR), show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for weights and SGD order.")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Seed of the 7/3 train/validation split.")
@click.option("--lr", type=float, help="SGD learning rate (default per model).")
@click.option("--patience", type=int, help="Stop after this many epochs without a better training loss [100].")
@click.option("--max-epochs", type=int, help="Cap on epochs (default per model).")
@click.option("--force", is_flag=True, help="Retrain even where a checkpoint exists.")
@click.option("--recipe", type=click.Choice(list(RECIPES)), default="paper", show_default=True,
              help="paper: as the paper trained; faces (MLP only): the pixel layer started in the training photos' "
                   "span, weight decay 5e-3, 120 epochs, so that reconstructions are faces (attack it with --preset "
                   "faces). The checkpoint is MODEL-RECIPE.pt and its items' model MODEL-RECIPE.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--dp-epsilon", type=float, help="Train with DP-SGD to this ε (per training photo); the checkpoint is "
              "MODEL-dpE.pt and attacks on it carry the countermeasure dp:eps=E. Epochs are then fixed (--max-epochs).")
@click.option("--dp-delta", type=float, help="DP δ, below 1/(training photos) [1e-5].")
@click.option("--dp-max-grad-norm", type=float, help="DP-SGD per-photo clipping norm C [1].")
@click.option("--dp-batch-size", type=int, help="DP-SGD expected (Poisson) batch size [56].")
@click.option("--dp-accountant", type=click.Choice(ACCOUNTANTS), help="Privacy accountant [rdp].")
@click.option("--gallery", "gallery_path", type=click.Path(exists=True),
              help="Train on another dataset: a folder of identity folders or a CSV (file, identity); needs "
                   "--input-size. Default: the AT&T faces at 92x112.")
@click.option("--input-size", help="With --gallery: the models' input, WIDTHxHEIGHT grey (e.g. 64x64).")
@user_errors
def train(models, faces_dir, out_dir, seed, split_seed, lr, patience, max_epochs, force, recipe, device, dp_epsilon,
          dp_delta, dp_max_grad_norm, dp_batch_size, dp_accountant, gallery_path, input_size) -> None:
    """Train the paper's face models and save checkpoints (reused unless --force)."""
    if bool(gallery_path) != bool(input_size):
        raise click.UsageError("--gallery and --input-size go together (the paper's models have a fixed input)")
    architectures = ARCHITECTURES if "all" in models else models
    if recipe != "paper":
        if dp_epsilon is not None:
            raise click.UsageError(f"--recipe {recipe} does not apply with --dp-epsilon: DP-SGD has its own settings")
        if "all" in models:
            architectures = tuple(RECIPES[recipe])
        wrong = [arch for arch in architectures if arch not in RECIPES[recipe]]
        if wrong:
            raise click.UsageError(f"the {recipe} recipe is for {', '.join(RECIPES[recipe])} only, not "
                                   f"{', '.join(wrong)}")
    device = check_device(device)
    privacy = None
    dp_options = {"--dp-delta": dp_delta, "--dp-max-grad-norm": dp_max_grad_norm, "--dp-batch-size": dp_batch_size,
                  "--dp-accountant": dp_accountant}
    if dp_epsilon is None:
        given = [name for name, value in dp_options.items() if value is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)} only apply with --dp-epsilon")
    else:
        if patience is not None:
            raise click.UsageError("--patience does not apply with --dp-epsilon: DP training runs fixed epochs")
        if dp_batch_size is not None and dp_batch_size < 1:
            raise click.BadParameter(f"{dp_batch_size}: the batch size must be at least 1",
                                     param_hint="--dp-batch-size")
        given = {"delta": dp_delta, "max_grad_norm": dp_max_grad_norm, "accountant": dp_accountant}
        privacy = PrivacyConfig(dp_epsilon, **{k: v for k, v in given.items() if v is not None})
    faces = load_gallery_faces(gallery_path, parse_size(input_size)) if gallery_path else load_faces(faces_dir)
    split = Split.for_faces(faces, split_seed)
    for arch in architectures:
        path = Path(out_dir) / checkpoint_name(arch, privacy, recipe)
        if path.exists() and not force:
            differences = privacy.differences(load_checkpoint(path)[1].get("privacy") or {}) if privacy else []
            if differences:  # its attacks would carry this dp:eps label for a model trained otherwise
                raise click.ClickException(f"{path} was trained with other DP settings ({'; '.join(differences)}): "
                                           "pass --force to retrain it, or --out another folder")
            click.echo(f"{arch}: reusing {path} (pass --force to retrain)")
            continue
        if privacy is None:
            cfg = TrainConfig.for_architecture(arch, recipe, seed=seed, lr=lr, patience=patience,
                                               max_epochs=max_epochs)
            model, result = train_model(arch, faces, split, cfg, device, **faces.model_dims())
            metadata, note = checkpoint_metadata(model, split, cfg, result, faces), ""
        else:
            cfg = dp_train_config(arch, seed=seed, lr=lr, max_epochs=max_epochs, batch_size=dp_batch_size)
            model, result, report = train_private_model(arch, faces, split, cfg, privacy, device=device,
                                                        **faces.model_dims())
            metadata = private_checkpoint_metadata(model, split, cfg, result, faces, report)
            note = f", {privacy_summary(report)}"
        save_checkpoint(path, model, metadata)
        click.echo(f"{arch}: train accuracy {result.train_accuracy:.3f}, validation accuracy "
                   f"{result.validation_accuracy:.3f}, {result.epochs} epochs ({result.stopped_by}), "
                   f"{result.seconds:.0f}s{note} -> {path}")


@click.command()
@click.option("--model", type=click.Choice(ARCHITECTURES), help="Use MODELS_DIR/MODEL.pt.")
@click.option("--recipe", type=click.Choice(list(RECIPES)), default="paper", show_default=True,
              help="With --model: the model trained with `train --recipe` (MODELS_DIR/MODEL-RECIPE.pt).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="A checkpoint file (instead of --model).")
@click.option("--models-dir", type=click.Path(file_okay=False), default=str(DEFAULT_MODELS_DIR), show_default=True)
@click.option("--labels", default="1-40", show_default=True,
              help="Subjects to invert: 1-40, or 1,3,5-7 (for a model of another gallery, its identities' numbers "
                   "in the gallery's order).")
@click.option("--access", type=click.Choice(["whitebox", "blackbox"]), default="whitebox", show_default=True)
@click.option("--countermeasure", default="none", show_default=True,
              help="none, round:R (e.g. round:0.01), label-only, noise:SIGMA.")
@click.option("--blur", help="Deblurring attack from a blurred photo: gaussian:SIGMA or pixelate:BLOCK.")
@click.option("--deblur-mu", type=float, default=1.0, show_default=True, help="Weight of the blur-consistency term.")
@click.option("--alpha", type=int, help="Maximum iterations [5000; 300 when deblurring].")
@click.option("--beta", type=int, help="Plateau window [100].")
@click.option("--gamma", type=float, help="Target confidence (or cost) [0.99].")
@click.option("--lam", type=float, help="Gradient step size lambda [0.1; 10 for dae].")
@click.option("--step", type=click.Choice(STEPS), help="plain: x - lambda grad (paper, default); normalized: "
              "the gradient divided by its root mean square.")
@click.option("--start-value", type=float, help="x_0 is the (encoded) image of this constant [0; 0.5 for dae].")
@click.option("--stop-rule", type=click.Choice(STOP_RULES),
              help="confidence: f >= gamma (released code, default); cost: c <= gamma (paper text); "
                   "none: only alpha and beta [default for deblurring].")
@click.option("--process-every", type=int, help="Run Process-DAE every N steps, 0 = never [0].")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="paper", show_default=True,
              help="paper: Algorithm 1 as published; faces: -log f cost and normalized step from mid-grey, to the "
                   "plateau or 300 steps (for a model trained with --recipe faces); smooth: -log f, normalized step "
                   "and a total-variation prior, 300 steps. Both depart from the paper; options given here win.")
@click.option("--prior", help="Image prior in AUXTERM: tv:WEIGHT (total variation, e.g. tv:0.1), or none.")
@click.option("--confidence-term", type=click.Choice(CONFIDENCE_TERMS),
              help="linear: c = 1 - f (paper, default); log: c = -log f, whose gradient does not vanish.")
@click.option("--estimator", type=click.Choice(["fd", "nes"]), default="nes", show_default=True,
              help="Black-box gradient estimator.")
@click.option("--fd-step", type=float, default=0.01, show_default=True, help="Finite-difference step h.")
@click.option("--nes-sigma", type=float, default=0.01, show_default=True)
@click.option("--nes-samples", type=int, default=50, show_default=True)
@click.option("--query-budget", type=int, help="Black-box: most queries per label.")
@click.option("--door", type=click.Choice(DOORS), default="image", show_default=True,
              help="Black-box queries: image (every query is a picture, as a real service takes; the DAE's code z "
                   "is sent as decode(z)) or latent (codes straight to the DAE's classifier head: the latent-space "
                   "oracle).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=str(DEFAULT_BUNDLE), show_default=True)
@click.option("--replace", is_flag=True, help="Start a new bundle instead of adding to an existing one.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@faces_option
@user_errors
def attack(model, recipe, checkpoint, models_dir, labels, access, countermeasure, blur, deblur_mu, alpha, beta, gamma,
           lam, step, start_value, stop_rule, process_every, preset, prior, confidence_term, estimator, fd_step,
           nes_sigma, nes_samples, query_budget, door, out_dir, replace, seed, device, faces_dir) -> None:
    """Invert a model with MI-Face and add the reconstructions to a bundle."""
    if bool(model) == bool(checkpoint):
        raise click.UsageError("give exactly one of --model or --checkpoint")
    if checkpoint and recipe != "paper":
        raise click.UsageError("--recipe applies to --model (a checkpoint file records its own recipe)")
    if access == "whitebox" and query_budget is not None:
        raise click.UsageError("--query-budget applies to --access blackbox")
    if access == "whitebox" and door != "image":
        raise click.UsageError("--door applies to --access blackbox")
    config = {"alpha": alpha, "beta": beta, "gamma": gamma, "lam": lam, "stop_rule": stop_rule,
              "process_every": process_every, "query_budget": query_budget, "step": step, "start_value": start_value,
              "confidence_term": confidence_term}
    if prior is not None:
        try:
            config.update({"tv_weight": 0.0, **parse_prior(prior)})  # `none` turns a preset's prior off
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--prior") from None
    est_params = {"h": fd_step} if estimator == "fd" else {"sigma": nes_sigma, "samples": nes_samples}
    request = AttackRequest(Path(checkpoint) if checkpoint else Path(models_dir) / checkpoint_name(model, None, recipe),
                            parse_labels(labels, limit=None), access, countermeasure, blur, config, estimator,
                            est_params, deblur_mu, check_device(device), seed, preset=preset, door=door)
    output = run_attack(request, faces_dir=faces_dir)
    save_to_bundle(output, out_dir, append=not replace)
    target = output.config.gamma
    reached = sum(i.confidence >= target for i in output.items)
    mean = lambda key: sum(getattr(i, key) for i in output.items) / len(output.items)  # noqa: E731
    click.echo(f"{len(output.items)} reconstructions -> {out_dir}: {reached} reach confidence {target}, "
               f"mean {mean('iterations'):.0f} iterations, {mean('queries'):.0f} queries, "
               f"{max(i.seconds for i in output.items):.1f}s")


@click.command("fetch-faces")
@click.option("--url", default=DEFAULT_URL, show_default=True)
@click.option("--dest", type=click.Path(file_okay=False), default="~/.local/share/mi-harness/att_faces",
              show_default=True)
@user_errors
def fetch_faces_command(url, dest) -> None:
    """Download the AT&T faces archive, verify every image, and unpack it."""
    path = fetch_faces(url, Path(dest).expanduser())
    click.echo(f"AT&T faces verified and installed in {path}; use --faces {path} or set MI_FACES_DIR")

