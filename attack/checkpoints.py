"""Saving and loading trained models with the metadata that makes a result reproducible.

A checkpoint is written to a temporary file and renamed, so an interrupted save never leaves a torn file
that a later run would mistake for a trained model.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .models import FaceModel, build_model


class CheckpointError(ValueError):
    """A checkpoint file is missing or is not one this project wrote."""


def save_checkpoint(path: str | os.PathLike, model: FaceModel, metadata: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"metadata": metadata, "state_dict": state}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> tuple[FaceModel, dict]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint (train one with `mi-harness train`)")
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
        metadata = blob["metadata"]
        if metadata.get("format") != "mi-harness/checkpoint":
            raise KeyError("format")
    except Exception as exc:  # torch raises many types for a foreign file
        raise CheckpointError(f"{path}: not a mi-harness checkpoint ({exc})") from exc
    model = build_model(**metadata["model"]).to(device)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, metadata
