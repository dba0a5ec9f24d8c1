"""One attack run, from a checkpoint to bundle items: what `mi-harness attack` and the demo call.

It wires the pieces the paper describes: the model behind a prediction API with a countermeasure,
MI-Face white-box or black-box, Process-DAE for the autoencoder, and the blurred-photo side information
for deblurring. Re-running the same configuration replaces its items instead of adding copies.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mi_harness.bundle import Bundle, BundleError, Item, read_bundle, to_png_pixels, write_bundle

from .checkpoints import load_checkpoint
from .countermeasures import item_countermeasure, parse_countermeasure
from .deblur import BlurConsistency, parse_blur
from .faces import Faces, Split, load_faces, load_gallery_faces
from .gallery import dataset_section, gallery_image_name, gallery_images
from .gradient_estimators import build_estimator
from .mi_face import Inversion, MIFace, MIFaceConfig
from .prediction_api import PredictionAPI
from .process_dae import ProcessDAE
from .training import model_label

ACCESS = ("whitebox", "blackbox")

# Where a model or attack needs other MI-Face settings than the paper's defaults (MIFaceConfig), and why:
# - dae: the all-zero code decodes to noise far from any face, so the search starts from the code of a grey
#   image; its head sees 300 sigmoid codes through small weights, so lambda = 0.1 moves a code by ~1e-3 a step
#   and lambda = 10 is used; re-encoding is a strong attractor for our DAE and Process-DAE lowers
#   identification at every frequency we measured (BENCHMARKS.md), so it is off unless asked for.
# - deblurring starts from the blurred photo, which is already confidently classified: only alpha and beta stop.
MODEL_DEFAULTS = {"softmax": {}, "mlp": {}, "dae": {"start_value": 0.5, "lam": 10.0, "process_every": 0}}
DEBLUR_DEFAULTS = {"alpha": 300, "stop_rule": "none"}
# Named MI-Face settings, applied over the model's defaults; explicit settings win over them. "paper" is
# Algorithm 1 as published (the default). "smooth" departs from it (BENCHMARKS.md, "MLP reconstructions: why
# they were not faces"): the cost -log f~, whose gradient leaves x_0 where the model is confidently wrong, the
# normalized step, and a total-variation prior in AUXTERM, run for 300 steps. It removes the blank images and
# the grain, but on our MLP what is left is a smooth blob, not a recognisable face: the grain comes from the
# first layer's initial weights, which training never touches, not from the attack. "faces" is the attack half
# of the MLP setting whose reconstructions are faces (with the "faces" training recipe, attack/training.py;
# BENCHMARKS.md, "Closing the gap"): -log f~ and the normalized step from a mid-grey x_0, where the model is not
# confidently wrong as it is at black, to the plateau (at most 300 steps), with no prior.
PRESETS = {"paper": {},
           "smooth": {"confidence_term": "log", "step": "normalized", "lam": 0.01, "tv_weight": 0.1,
                      "stop_rule": "none", "alpha": 300},
           "faces": {"confidence_term": "log", "step": "normalized", "lam": 0.01, "start_value": 0.5,
                     "stop_rule": "none", "alpha": 300}}


def mi_face_config(architecture: str, deblurring: bool, overrides: dict, preset: str = "paper") -> MIFaceConfig:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    settings = {**MODEL_DEFAULTS.get(architecture, {}), **(DEBLUR_DEFAULTS if deblurring else {}), **PRESETS[preset]}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return MIFaceConfig(**settings)


@dataclass
class AttackRequest:
    checkpoint: Path
    labels: list[int]
    access: str = "whitebox"
    countermeasure: str = "none"
    blur: str | None = None
    mi_face: dict = field(default_factory=dict)  # MIFaceConfig fields that override the defaults and preset
    estimator: str = "nes"
    estimator_params: dict = field(default_factory=dict)
    deblur_mu: float = 1.0
    device: str = "cpu"
    seed: int = 0
    show_progress: bool = True
    preset: str = "paper"  # a PRESETS name
    door: str = "image"  # black-box queries: images (a real service) or "latent", the DAE's code-space oracle

    def __post_init__(self) -> None:
        if self.access not in ACCESS:
            raise ValueError(f"access must be whitebox or blackbox, got {self.access!r}")
        bad = [label for label in self.labels if label < 0]
        if bad or not self.labels:  # the upper bound is the model's (run_attack)
            raise ValueError(f"labels must be subjects numbered from 1, got {[b + 1 for b in bad] or 'none'}")
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        parse_countermeasure(self.countermeasure)  # a bad spec is refused before any checkpoint is read


@dataclass
class AttackOutput:
    items: list[Item]
    images: dict[str, np.ndarray]
    split: Split
    inversions: list[Inversion]
    config: MIFaceConfig
    faces: Faces


def attack_name(request: AttackRequest, config: MIFaceConfig) -> str:
    """The bundle's attack field. What changes what people are shown is a distinct attack: "+faces" for the faces
    preset, "+tv" for an image prior (the smooth preset's, or one given)."""
    if request.blur:
        name = "deblur"
    else:
        name = "mi-face" if request.access == "whitebox" else "mi-face-blackbox"
    return name + ("+faces" if request.preset == "faces" else "") + ("+tv" if config.tv_weight else "")


def blurred_inputs(faces: Faces, split: Split, labels: list[int], blur) -> tuple[torch.Tensor, list[int]]:
    """Blur one validation photo of each subject: a picture of the person the model never saw."""
    numbers = [split.validation[label][0] for label in labels]
    clean = torch.from_numpy(np.stack([faces.images[faces.index_of(lab, n)].reshape(-1)
                                       for lab, n in zip(labels, numbers)]))
    return blur(clean), numbers


def faces_of(meta: dict, faces: Faces | None, faces_dir: str | Path | None) -> Faces:
    """The photos a checkpoint was trained on: its recorded gallery at its input size, or the AT&T faces."""
    gallery = meta.get("gallery")
    if gallery is None:
        return faces if faces is not None and faces.identities is None else load_faces(faces_dir)
    width, height = gallery["input_size"]
    if faces is not None and faces.identities == tuple(gallery["identities"]) and faces.shape == (height, width):
        return faces
    faces = load_gallery_faces(gallery["source"], (width, height))
    if faces.identities != tuple(gallery["identities"]):
        raise ValueError(f"the gallery {gallery['source']} no longer holds the identities the model was trained on")
    return faces


def run_attack(request: AttackRequest, faces: Faces | None = None, keep_history: bool = False,
               faces_dir: str | Path | None = None) -> AttackOutput:
    """Invert ``request.labels`` of a checkpoint; ``faces`` (else loaded: the checkpoint's gallery, or the AT&T
    faces from ``faces_dir``) gives deblurring its photos and the bundle its gallery."""
    model, meta = load_checkpoint(request.checkpoint, request.device)
    faces = faces_of(meta, faces, faces_dir)
    too_high = [label + 1 for label in request.labels if label >= model.classes]
    if too_high:
        raise ValueError(f"labels {too_high} are beyond the model's {model.classes} identities")
    split = Split.from_json(meta["split"], list(faces.identities) if faces.identities else None)
    height, width = faces.shape
    countermeasure = parse_countermeasure(request.countermeasure, seed=request.seed)
    recorded_countermeasure = item_countermeasure(request.countermeasure, meta.get("privacy"))  # dp:eps=8 etc.
    api = PredictionAPI(model, countermeasure, request.device, door=request.door)
    estimator = None
    if request.access == "blackbox":
        estimator = build_estimator(request.estimator, **request.estimator_params,
                                    **({"seed": request.seed} if request.estimator == "nes" else {}))
    config = mi_face_config(model.name, bool(request.blur), request.mi_face, request.preset)
    process = ProcessDAE(api.encode, api.decode, shape=(height, width)) \
        if model.name == "dae" and config.process_every else None
    attack = MIFace(api, config, process=process, estimator=estimator, show_progress=request.show_progress,
                    image_shape=(height, width))

    start = aux = blur = None
    blur_numbers: list[int] = []
    if request.blur:
        if faces.identities is not None:
            raise ValueError("deblurring is built for the AT&T faces' 92x112 photos; attack this model without --blur")
        blur = parse_blur(request.blur)
        start, blur_numbers = blurred_inputs(faces, split, request.labels, blur)
        aux = BlurConsistency(blur, start.to(request.device), api.decode, request.deblur_mu)
    inversions = attack.invert(request.labels, start=start, aux=aux, keep_history=keep_history)

    name = attack_name(request, config)
    label = model_label(meta)
    settings = {**attack.settings(), "preset": request.preset}
    items, images = [], {}
    for k, inv in enumerate(inversions):
        subject = faces.name_of(inv.label)
        parts = [label, name, recorded_countermeasure] + ([request.blur] if request.blur else []) \
            + (["latent"] if estimator is not None and request.door == "latent" else []) + [subject]
        item_id = re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(parts))
        image_name = f"items/{item_id}.png"
        stretch = not request.blur  # deblurred faces keep the blurred photo's scale, for a fair comparison
        images[image_name] = to_png_pixels(inv.image.reshape(height, width).numpy(), stretch=stretch)
        aux_name = None
        params = {**settings, "stopped_by": inv.stopped_by, "cost": inv.cost,
                  "reported_confidence": inv.reported_confidence, "png": "minmax" if stretch else "clip",
                  "checkpoint": {"architecture": meta["model"], "seed": meta["train_config"]["seed"],
                                 "recipe": meta["train_config"].get("recipe", "paper"),
                                 "split_seed": split.seed, "privacy": meta.get("privacy")},
                  "device": request.device, "batch": len(inversions)}
        if request.blur:
            aux_name = f"items/{item_id}.blurred.png"
            images[aux_name] = to_png_pixels(start[k].reshape(height, width).numpy(), stretch=False)
            params["deblur_mu"] = request.deblur_mu
        items.append(Item(id=item_id, subject=subject, model=label, attack=name,
                          countermeasure=recorded_countermeasure, image=image_name, aux_image=aux_name,
                          blur=request.blur or None,
                          source_photo=gallery_image_name(inv.label, blur_numbers[k]) if request.blur else None,
                          confidence=inv.true_confidence, iterations=inv.iterations, queries=inv.queries,
                          seconds=inv.seconds, params=params))
    return AttackOutput(items, images, split, inversions, config, faces)


def save_to_bundle(output: AttackOutput, destination: str | Path, append: bool = True) -> Bundle:
    """Write the items into a bundle, adding to (or replacing same-id items of) an existing one."""
    destination = Path(destination)
    existing = read_bundle(destination) if append and (destination / "manifest.json").is_file() else None
    images = dict(output.images)
    if existing is not None:
        if existing.dataset.get("split_seed") != output.split.seed:
            raise BundleError(destination, [
                f"the bundle's split seed is {existing.dataset.get('split_seed')}, the model's is "
                f"{output.split.seed}: lineups would use photos the model trained on as validation photos"])
        new_ids = {i.id for i in output.items}
        items = [i for i in existing.items if i.id not in new_ids] + output.items
        bundle = Bundle(dataset=existing.dataset, gallery=existing.gallery, items=items)
    else:
        gallery, gallery_pixels = gallery_images(output.faces, output.split)
        images.update(gallery_pixels)
        bundle = Bundle(dataset=dataset_section(output.split, output.faces), gallery=gallery, items=output.items)
    write_bundle(bundle, destination, images, copy_from=existing.root if existing else None)
    return bundle
