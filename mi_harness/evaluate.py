"""Machine stand-ins for the human lineup: would an independent recogniser name the right person?

The recogniser is not the attacked model: it is nearest neighbour over the bundle's gallery (for the AT&T faces,
all 400 photos) in three spaces, for any dataset: grey or colour images of any size.
The deep judge (``mi_harness.deep_face``, dlib's ResNet face descriptor) asks what a face recogniser would
answer; it leads, because it is the closest machine stand-in for a person. The pixel judge (each image
z-scored, so similarity is Pearson correlation and contrast stretch does not matter) and the eigenface judge
(PCA of those standardised images) find a signal even under noise no person can see. A subject's score is its
best-matching photo; top-1 and top-5 are over subjects. SSIM to the subject's training photos says how close
the picture is, not only whether it is the closest.

Items that screening (``mi_harness.screening``) finds unusable for a person (near-constant, grain) count as
failures of the attack under every judge: a study leaves them out, so the attack gains nothing from them.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np
from skimage.metrics import structural_similarity
from sklearn.decomposition import PCA
from tqdm import tqdm

from .bundle import Bundle, Item
from .conditions import CONDITION
from .deep_face import SAME_PERSON_DISTANCE, DeepFaceJudge, subject_distances, true_subject_ranks
from .galleries import Gallery, load_photo
from .judges import JUDGE_MEANINGS
from .screening import screen_image

SPACES = ("pixel", "eigen")


def standardise(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float64)
    flat = flat - flat.mean(1, keepdims=True)
    return flat / np.maximum(flat.std(1, keepdims=True), 1e-12)


@dataclass
class References:
    """The photos the judges compare against: pixels in [0, 1] ((n, h, w) grey or (n, h, w, 3) colour), each
    photo's identity (an index into ``identities``), its name in the bundle and its role."""
    images: np.ndarray
    labels: np.ndarray
    identities: list[str]
    names: list[str]
    roles: list[str]

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> References:
        if not bundle.gallery:
            raise ValueError(f"{bundle.root or 'the bundle'} has no gallery: the judges need real photos")
        identities = list(dict.fromkeys(g.subject for g in bundle.gallery))
        index = {identity: k for k, identity in enumerate(identities)}
        return cls(np.stack([bundle.load_image(g.image) for g in bundle.gallery]),
                   np.array([index[g.subject] for g in bundle.gallery]), identities,
                   [g.image for g in bundle.gallery], [g.role for g in bundle.gallery])

    @classmethod
    def from_gallery(cls, gallery: Gallery, size: tuple[int, int], colour: bool, seed: int = 0) -> References:
        """Another gallery as the judges' references, at the bundle's size and mode."""
        roles = gallery.roles(seed)
        identities = gallery.identities
        index = {identity: k for k, identity in enumerate(identities)}
        images = [load_photo(p.path, size, colour).astype(np.float32) / 255.0
                  for p in tqdm(gallery.photos, desc="reference photos", leave=False, disable=None)]
        return cls(np.stack(images), np.array([index[p.identity] for p in gallery.photos]), identities,
                   [p.key for p in gallery.photos], [roles[p.key] for p in gallery.photos])

    def label(self, identity: str) -> int:
        return self.identities.index(identity)


class Recogniser:
    def __init__(self, references: References, eigen_components: int = 100,
                 deep_judge: DeepFaceJudge | None = None) -> None:
        self.references = references
        self.n_identities = len(references.identities)
        self.reference = standardise(references.images)
        components = min(eigen_components, *self.reference.shape)
        self.pca = PCA(n_components=components, random_state=0).fit(self.reference)
        self.reference_eigen = self.pca.transform(self.reference)
        self._deep_judge = deep_judge
        self._reference_deep: np.ndarray | None = None

    @property
    def deep_judge(self) -> DeepFaceJudge:
        """Loaded on first use, so callers of the pixel and eigen spaces alone do not pay for dlib."""
        if self._deep_judge is None:
            self._deep_judge = DeepFaceJudge()
        return self._deep_judge

    @property
    def reference_deep(self) -> np.ndarray:
        """The gallery's descriptors, from the on-disk cache after the first time (keyed by the pixels)."""
        if self._reference_deep is None:
            self._reference_deep = self.deep_judge.gallery_descriptors(self.references.images)
        return self._reference_deep

    def deep_scores(self, images: np.ndarray, labels: np.ndarray,
                    exclude: list[int | None] | None = None) -> dict[str, np.ndarray]:
        """The deep judge per image: rank of the true subject (0 = named), the nearest subject's label, and the
        descriptor distance to the true subject's nearest photo (``exclude`` as in ``subject_ranks``)."""
        descriptors = self.deep_judge.cached_descriptors(images)  # the report's lineup pass reads them back
        per_subject = subject_distances(descriptors, self.reference_deep, self.references.labels,
                                        self.n_identities, exclude)
        return {"rank": true_subject_ranks(per_subject, labels), "nearest": per_subject.argmin(1),
                "distance": per_subject[np.arange(len(images)), labels]}

    def subject_ranks(self, images: np.ndarray, labels: np.ndarray,
                      exclude: list[int | None] | None = None) -> dict[str, np.ndarray]:
        """For each space, the rank (0 = best) of the true subject among the gallery's identities.

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
            per_subject = np.full((len(query), self.n_identities), -np.inf)
            np.maximum.at(per_subject.T, self.references.labels, score.T)
            true = per_subject[np.arange(len(query)), labels]
            # ties count against the true subject: a blank image matching everyone equally names no one
            ranks[space] = (per_subject > true[:, None]).sum(1) + (per_subject == true[:, None]).sum(1) - 1
        return ranks

    def ssim_to_subject(self, image: np.ndarray, label: int) -> float:
        """Mean SSIM to the subject's training photos (all its photos where the gallery has no training role)."""
        own = np.flatnonzero(self.references.labels == label)
        train = [k for k in own if self.references.roles[k] == "train"]
        colour = image.ndim == 3
        return float(np.mean([structural_similarity(image.astype(np.float64),
                                                    self.references.images[k].astype(np.float64), data_range=1.0,
                                                    channel_axis=2 if colour else None)
                              for k in (train or own)]))


DEFAULT_GROUPING = CONDITION
JUDGED = ("top1_deep", "top5_deep", "deep_same_person", "top1_pixel", "top5_pixel", "top1_eigen", "top5_eigen")
"""Per-item scores that an unusable item fails: the study leaves the item out, so no judge credits the attack."""


@dataclass
class GroupScore:
    group: dict[str, str]
    n: int
    unusable: int
    top1_deep: float
    top5_deep: float
    deep_distance: float
    deep_same_person: float
    top1_pixel: float
    top5_pixel: float
    top1_eigen: float
    top5_eigen: float
    ssim: float
    confidence: float | None
    unusable_reasons: str = ""
    aux_top1_deep: float | None = None
    aux_top1_pixel: float | None = None
    aux_top1_eigen: float | None = None
    aux_ssim: float | None = None


def score_images(recogniser: Recogniser, images: np.ndarray, labels: np.ndarray,
                 exclude: list[int | None]) -> dict[str, np.ndarray]:
    """Every judge's verdict per image, before screening."""
    ranks = recogniser.subject_ranks(images, labels, exclude)
    deep = recogniser.deep_scores(images, labels, exclude)
    ssim = np.array([recogniser.ssim_to_subject(img, lab) for img, lab in zip(images, labels)])
    return {"top1_deep": deep["rank"] < 1, "top5_deep": deep["rank"] < 5, "deep_nearest": deep["nearest"],
            "deep_distance": deep["distance"], "deep_same_person": deep["distance"] < SAME_PERSON_DISTANCE,
            "top1_pixel": ranks["pixel"] < 1, "top5_pixel": ranks["pixel"] < 5,
            "top1_eigen": ranks["eigen"] < 1, "top5_eigen": ranks["eigen"] < 5, "ssim": ssim}


def group_value(item: Item, key: str) -> str:
    """An item field, or a key of its params (so a converted CSV's extra columns can be grouped on)."""
    if key in Item.__dataclass_fields__ and key != "params":
        value = getattr(item, key)
        return "-" if value is None else str(value)
    return str(item.params.get(key, "-"))


def source_photo_index(references: References, item: Item) -> int | None:
    """The reference index of the photo a deblurring item started from, if it names one."""
    return references.names.index(item.source_photo) if item.source_photo in references.names else None


@dataclass
class BundleScores:
    """Per-item judges' verdicts (arrays aligned with ``bundle.items``), screening, and the blurred inputs'."""
    scores: dict[str, np.ndarray]
    usable: np.ndarray
    reasons: list[str | None]
    aux: dict[int, dict[str, float]]
    identities: list[str]


def score_bundle(bundle: Bundle, recogniser: Recogniser) -> BundleScores:
    if not bundle.items:
        raise ValueError(f"{bundle.root or 'the bundle'} has no reconstructions to evaluate")
    references = recogniser.references
    unknown = sorted({i.subject for i in bundle.items} - set(references.identities))
    if unknown:
        raise ValueError(f"the judges' gallery has no photo of {', '.join(unknown[:5])}")
    labels = np.array([references.label(i.subject) for i in bundle.items])
    images = np.stack([bundle.load_image(i.image) for i in bundle.items])
    exclude = [source_photo_index(references, i) for i in bundle.items]
    scores = score_images(recogniser, images, labels, exclude)
    verdicts = [screen_image(image) for image in images]
    with_aux = [k for k, i in enumerate(bundle.items) if i.aux_image]
    aux_scores = {}
    if with_aux:
        aux_images = np.stack([bundle.load_image(bundle.items[k].aux_image) for k in with_aux])
        aux = score_images(recogniser, aux_images, labels[with_aux], [exclude[k] for k in with_aux])
        aux_scores = {k: {m: v[j] for m, v in aux.items()} for j, k in enumerate(with_aux)}
    return BundleScores(scores, np.array([v.usable for v in verdicts]), [v.reason for v in verdicts], aux_scores,
                        references.identities)


def item_rows(bundle: Bundle, scored: BundleScores) -> list[dict]:
    """One row per reconstruction: what each judge answered and what screening said."""
    s = scored.scores
    return [{"id": item.id, "subject": item.subject, "model": item.model, "attack": item.attack,
             "countermeasure": item.countermeasure, "blur": group_value(item, "blur"),
             "usable": bool(scored.usable[k]), "unusable_reason": scored.reasons[k] or "",
             "deep_nearest": scored.identities[int(s["deep_nearest"][k])], "top1_deep": bool(s["top1_deep"][k]),
             "top5_deep": bool(s["top5_deep"][k]), "deep_distance": round(float(s["deep_distance"][k]), 4),
             "deep_same_person": bool(s["deep_same_person"][k]), "top1_pixel": bool(s["top1_pixel"][k]),
             "top5_pixel": bool(s["top5_pixel"][k]), "top1_eigen": bool(s["top1_eigen"][k]),
             "top5_eigen": bool(s["top5_eigen"][k]), "ssim": round(float(s["ssim"][k]), 4)}
            for k, item in enumerate(bundle.items)]


def group_scores(bundle: Bundle, scored: BundleScores,
                 grouping: tuple[str, ...] = DEFAULT_GROUPING) -> list[GroupScore]:
    """Group means; an unusable item fails every judge (``JUDGED``), its distance and SSIM are kept as measured."""
    scores = {name: np.where(scored.usable, values, False) if name in JUDGED else values
              for name, values in scored.scores.items()}
    groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for k, item in enumerate(bundle.items):
        groups[tuple(group_value(item, key) for key in grouping)].append(k)
    results = []
    for key, members in sorted(groups.items()):
        confs = [bundle.items[k].confidence for k in members if bundle.items[k].confidence is not None]
        mean = {name: float(np.mean(scores[name][members])) for name in (*JUDGED, "deep_distance", "ssim")}
        aux = [scored.aux[k] for k in members if k in scored.aux]
        aux_mean = {name: float(np.mean([a[name] for a in aux])) if aux else None
                    for name in ("top1_deep", "top1_pixel", "top1_eigen", "ssim")}
        reasons = sorted(r for k in members if (r := scored.reasons[k]))
        results.append(GroupScore(
            dict(zip(grouping, key)), len(members), len(reasons), mean["top1_deep"], mean["top5_deep"],
            mean["deep_distance"], mean["deep_same_person"], mean["top1_pixel"], mean["top5_pixel"],
            mean["top1_eigen"], mean["top5_eigen"], mean["ssim"], float(np.mean(confs)) if confs else None,
            ", ".join(f"{reason} {reasons.count(reason)}" for reason in sorted(set(reasons))),
            aux_mean["top1_deep"], aux_mean["top1_pixel"], aux_mean["top1_eigen"], aux_mean["ssim"]))
    return results


def evaluate_bundle(bundle: Bundle, recogniser: Recogniser,
                    grouping: tuple[str, ...] = DEFAULT_GROUPING) -> list[GroupScore]:
    return group_scores(bundle, score_bundle(bundle, recogniser), grouping)


def format_table(groups: list[GroupScore]) -> str:
    keys = list(groups[0].group) if groups else list(DEFAULT_GROUPING)
    widths = [max([len(k)] + [len(g.group[k]) for g in groups]) for k in keys]
    header = " ".join(f"{k:{w}}" for k, w in zip(keys, widths)) + \
        f" {'n':>4} {'unus.':>5} {'top1 deep':>9} {'top5 deep':>9} {'dist':>5} {'<0.6':>6}" \
        f" {'top1 px':>8} {'top5 px':>8} {'top1 eig':>8} {'top5 eig':>8} {'SSIM':>6} {'conf':>6}" \
        "  blurred input (top1 deep / px / eig / SSIM)"
    lines = [header, "-" * len(header)]
    pct = lambda v, w=8: f"{100 * v:{w - 1}.1f}%"  # noqa: E731
    for g in groups:
        conf = f"{g.confidence:6.3f}" if g.confidence is not None else "     -"
        aux = (f"  {100 * g.aux_top1_deep:.1f}% / {100 * g.aux_top1_pixel:.1f}% / {100 * g.aux_top1_eigen:.1f}%"
               f" / {g.aux_ssim:.3f}" if g.aux_top1_pixel is not None else "")
        names = " ".join(f"{g.group[k]:{w}}" for k, w in zip(keys, widths))
        lines.append(f"{names} {g.n:4d} {g.unusable:5d} {pct(g.top1_deep, 9)} {pct(g.top5_deep, 9)} "
                     f"{g.deep_distance:5.2f} {pct(g.deep_same_person, 6)} {pct(g.top1_pixel)} "
                     f"{pct(g.top5_pixel)} {pct(g.top1_eigen)} {pct(g.top5_eigen)} {g.ssim:6.3f} {conf}{aux}")
    lines += ["", "Top-1/top-5 over all the gallery's identities; an unusable item (screening: near-constant or grain) "
              "counts as a failure under every judge. dist: mean descriptor distance to the true subject; "
              f"<{SAME_PERSON_DISTANCE}: share the recogniser would call the same person.",
              *(f"  {meaning}" for meaning in JUDGE_MEANINGS.values()),
              "Machine judges are not people: a study's lineups measure what people see."]
    return "\n".join(lines)


def groups_as_rows(groups: list[GroupScore]) -> list[dict]:
    rows = []
    for g in groups:
        row = asdict(g)
        rows.append({**row.pop("group"), **row})
    return rows
