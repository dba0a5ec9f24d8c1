"""Unpacking an uploaded, zipped bundle: the only place an upload's archive is opened."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path


class ImportProblem(ValueError):
    """Why a study was not created; nothing was stored."""


def unpack_zip(upload: bytes, workdir: Path) -> Path:
    """A zipped bundle, unpacked safely (no absolute or ``..`` paths); returns the folder holding manifest.json."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(upload))
    except zipfile.BadZipFile:
        raise ImportProblem("the upload is not a zip file") from None
    root = workdir.resolve()
    total = 0
    for info in archive.infolist():
        target = (root / info.filename).resolve()
        if not target.is_relative_to(root):
            raise ImportProblem(f"the zip holds a path outside its folder: {info.filename!r}")
        total += info.file_size
        if total > 1024 * 1024 * 1024:
            raise ImportProblem("the zip unpacks to more than 1 GiB")
    archive.extractall(root)
    manifests = sorted(root.rglob("manifest.json"), key=lambda p: len(p.parts))
    if not manifests:
        raise ImportProblem("the zip holds no manifest.json: zip the bundle folder")
    return manifests[0].parent
