"""A machine stand-in for the human lineup: would an independent recogniser name the right person?

The recogniser is not the attacked model: it is nearest neighbour over all 400 AT&T photos, once in a
standardised pixel space (each image z-scored, so similarity is Pearson correlation and the contrast
stretch of a reconstruction does not matter) and once in an eigenface space (PCA of those standardised
images). A subject's score is its best-matching photo; top-1 and top-5 are over subjects. SSIM to the
subject's training photos says how close the picture is, not only whether it is the closest.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np
from skimage.metrics import structural_similarity
from sklearn.decomposition import PCA

from .bundle import Bundle, Item
from .faces import HEIGHT, N_SUBJECTS, WIDTH, Faces, subject_label

SPACES = ("pixel", "eigen")


def standardise(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float64)
    flat = flat - flat.mean(1, keepdims=True)
    return flat / np.maximum(flat.std(1, keepdims=True), 1e-12)


class Recogniser:
    def __init__(self, faces: Faces, eigen_components: int = 100) -> None:
        self.faces = faces
        self.reference = standardise(faces.images)
        self.pca = PCA(n_components=eigen_components, random_state=0).fit(self.reference)
        self.reference_eigen = self.pca.transform(self.reference)

    def subject_ranks(self, images: np.ndarray, labels: np.ndarray,
                      exclude: list[int | None] | None = None) -> dict[str, np.ndarray]:
        """For each space, the rank (0 = best) of the true subject among the 40.

        ``exclude`` names, per image, a reference photo to leave out: the photo a deblurring attacker held,
        which its own blurred copy would otherwise match trivially.
        """
        query = standardise(images)
        scores = {
            "pixel": query @ self.reference.T / query.shape[1],
            "eigen": -np.linalg.norm(self.pca.transform(query)[:, None, :] - self.reference_eigen[None], axis=2),
        }
        ranks = {}
        for space, score in scores.items():
            for row, index in enumerate(exclude or []):
                if index is not None:
                    score[row, index] = -np.inf
            per_subject = np.full((len(query), N_SUBJECTS), -np.inf)
            np.maximum.at(per_subject.T, self.faces.labels, score.T)
            true = per_subject[np.arange(len(query)), labels]
            # ties count against the true subject: a blank image matching everyone equally names no one
            ranks[space] = (per_subject > true[:, None]).sum(1) + (per_subject == true[:, None]).sum(1) - 1
        return ranks

    def ssim_to_subject(self, image: np.ndarray, label: int, numbers: list[int]) -> float:
        refs = [self.faces.images[self.faces.index_of(label, n)] for n in numbers]
        img = image.reshape(HEIGHT, WIDTH).astype(np.float64)
        return float(np.mean([structural_similarity(img, ref.astype(np.float64), data_range=1.0) for ref in refs]))


DEFAULT_GROUPING = ("model", "attack", "countermeasure", "blur")  # blur: a params key of deblurring items


@dataclass
class GroupScore:
    group: dict[str, str]
    n: int
    top1_pixel: float
    top5_pixel: float
    top1_eigen: float
    top5_eigen: float
    ssim: float
    confidence: float | None
    aux_top1_pixel: float | None = None
    aux_top1_eigen: float | None = None
    aux_ssim: float | None = None


def score_images(recogniser: Recogniser, images: np.ndarray, labels: np.ndarray, train_numbers: list[list[int]],
                 exclude: list[int | None]) -> dict[str, np.ndarray]:
    ranks = recogniser.subject_ranks(images, labels, exclude)
    ssim = np.array([recogniser.ssim_to_subject(img, lab, nums)
                     for img, lab, nums in zip(images, labels, train_numbers)])
    return {"top1_pixel": ranks["pixel"] < 1, "top5_pixel": ranks["pixel"] < 5,
            "top1_eigen": ranks["eigen"] < 1, "top5_eigen": ranks["eigen"] < 5, "ssim": ssim}


def group_value(item: Item, key: str) -> str:
    """An item field, or a key of its params (so a converted CSV's extra columns can be grouped on)."""
    if key in Item.__dataclass_fields__ and key != "params":
        return str(getattr(item, key))
    return str(item.params.get(key, "-"))


def source_photo_index(faces: Faces, item: Item) -> int | None:
    """The gallery index of the photo a deblurring item started from ("s3/7.pgm"), if it names one."""
    source = item.params.get("blurred_photo")
    if not source:
        return None
    subject, number = source.removesuffix(".pgm").split("/")
    return faces.index_of(subject_label(subject), int(number))


def evaluate_bundle(bundle: Bundle, recogniser: Recogniser,
                    grouping: tuple[str, ...] = DEFAULT_GROUPING) -> list[GroupScore]:
    split = bundle.dataset.get("split") or {}
    labels = np.array([subject_label(i.subject) for i in bundle.items])
    numbers = [split.get(i.subject, {}).get("train") or list(range(1, 11)) for i in bundle.items]
    images = np.stack([bundle.load_image(i.image) for i in bundle.items])
    exclude = [source_photo_index(recogniser.faces, i) for i in bundle.items]
    scores = score_images(recogniser, images, labels, numbers, exclude)
    with_aux = [k for k, i in enumerate(bundle.items) if i.aux_image]
    aux_scores = {}
    if with_aux:
        aux_images = np.stack([bundle.load_image(bundle.items[k].aux_image) for k in with_aux])
        aux = score_images(recogniser, aux_images, labels[with_aux], [numbers[k] for k in with_aux],
                           [exclude[k] for k in with_aux])
        aux_scores = {k: {m: v[j] for m, v in aux.items()} for j, k in enumerate(with_aux)}

    groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for k, item in enumerate(bundle.items):
        groups[tuple(group_value(item, key) for key in grouping)].append(k)
    results = []
    for key, members in sorted(groups.items()):
        confs = [bundle.items[k].confidence for k in members if bundle.items[k].confidence is not None]
        mean = {name: float(np.mean(values[members])) for name, values in scores.items()}
        aux = [aux_scores[k] for k in members if k in aux_scores]
        aux_mean = {name: float(np.mean([a[name] for a in aux])) if aux else None for name in scores}
        results.append(GroupScore(dict(zip(grouping, key)), len(members), mean["top1_pixel"], mean["top5_pixel"],
                                  mean["top1_eigen"], mean["top5_eigen"], mean["ssim"],
                                  float(np.mean(confs)) if confs else None, aux_mean["top1_pixel"],
                                  aux_mean["top1_eigen"], aux_mean["ssim"]))
    return results


def format_table(groups: list[GroupScore]) -> str:
    keys = list(groups[0].group) if groups else list(DEFAULT_GROUPING)
    widths = [max([len(k)] + [len(g.group[k]) for g in groups]) for k in keys]
    header = " ".join(f"{k:{w}}" for k, w in zip(keys, widths)) + \
        f" {'n':>4} {'top1 px':>8} {'top5 px':>8} {'top1 eig':>8} {'top5 eig':>8} {'SSIM':>6} {'conf':>6}" \
        "  blurred input (top1 px / eig / SSIM)"
    lines = [header, "-" * len(header)]
    pct = lambda v: f"{100 * v:7.1f}%"  # noqa: E731
    for g in groups:
        conf = f"{g.confidence:6.3f}" if g.confidence is not None else "     -"
        aux = (f"  {100 * g.aux_top1_pixel:.1f}% / {100 * g.aux_top1_eigen:.1f}% / {g.aux_ssim:.3f}"
               if g.aux_top1_pixel is not None else "")
        names = " ".join(f"{g.group[k]:{w}}" for k, w in zip(keys, widths))
        lines.append(f"{names} {g.n:4d} {pct(g.top1_pixel)} "
                     f"{pct(g.top5_pixel)} {pct(g.top1_eigen)} {pct(g.top5_eigen)} {g.ssim:6.3f} {conf}{aux}")
    return "\n".join(lines)


def groups_as_rows(groups: list[GroupScore]) -> list[dict]:
    rows = []
    for g in groups:
        row = asdict(g)
        rows.append({**row.pop("group"), **row})
    return rows
