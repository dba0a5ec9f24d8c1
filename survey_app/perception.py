"""How the simulated panel sees a lineup: an observer limited to the face band and to human efficiency for faces,
so that it cannot read a faint face out of heavy grain the way pixel correlation does.

Pixel correlation is close to the ideal observer for a known face in white noise: it integrates every pixel and
finds a signal far below what a person can see. People are not ideal, and two measured facts bound them:

* they identify faces from a narrow band of object spatial frequencies, under two octaves wide and most
  sensitive at 8–13 cycles per face width (Näsänen 1999, Vision Research 39:3824; Parker & Costen 1999, Current
  Psychology 18:118, put it at 8–16, best near 11); faces filtered outside it are barely identified even where an
  ideal observer still could (Gold, Bennett & Sekuler 1999, Vision Research 39:3537);
* their efficiency for identifying faces in noise (the ideal observer's threshold energy over theirs) is of the
  order of one percent (Gold, Bennett & Sekuler 1999), well below letters' ~10% (Pelli et al. 2006).

The observer here:

1. sees the face band only: a log-Gaussian annulus ``BAND_OCTAVES`` wide at half height, centred at
   ``BAND_CENTRE`` cycles per face width (the face spans ``FACE_WIDTH`` of the frame), and in it the local energy
   a population of complex cells reports (the amplitude of the monogenic signal: the band-passed image and its
   two Riesz transforms), pooled over ``POOLING`` pixels, which tolerates the small shifts of pose between two
   photos of a person;
2. calls a face more like the probe the more their local-energy maps correlate, and picks the most alike, or
   says "not in this lineup" when the best does not beat the runner-up by its criterion (a relative judgement
   with a best-minus-next rule, as in Clark's 2003 WITNESS model of lineup decisions), and rates its confidence
   by how far that margin lies from the criterion (``Judgement``);
3. sees the probe through internal noise, after the linear amplifier model (Pelli 1981; Legge, Kersten & Burgess
   1987; Gold, Bennett & Sekuler 1999, Nature 402:176): a fixed equivalent input noise (``EQUIVALENT_NOISE``, so
   a blank image carries no signal) and, for an observer of efficiency η below the computation's own
   (``PIPELINE_EFFICIENCY``, measured), noise in proportion to the probe's own white noise (estimated from the
   image, ``noise_level``) that brings the whole to η.

Steps 1 and 2 alone already lose as much as people do: measured against the ideal observer on 5-face lineups
of AT&T photos in white noise, this computation's efficiency is about 0.45%, at the low end of the human range.
On clean held-out photos it picks the right person about 80% of the time, near what people achieve matching
unfamiliar faces (Bruce et al. 1999, J Exp Psychol Appl 5:339, about 70% in 1-in-10 arrays). Nothing here is
fitted to the deep face judge the panel is compared with. The bots remain a model: their accuracy says what this
observer recognises, not what people do.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

BAND_CENTRE = 8.0
"""Cycles per face width at the centre of the band people use for identity (Näsänen 1999: most sensitive at 8–13;
Parker & Costen 1999: 8–16, harmonic mean 11.1)."""
BAND_OCTAVES = 2.0
"""Full width at half height of the band, in octaves (Näsänen 1999: just under two)."""
FACE_WIDTH = 0.7
"""Share of the image width the face spans (cheek to cheek in the AT&T frames, about 64 of 92 pixels)."""
POOLING = 1.5
"""Standard deviation, in pixels, of the Gaussian over which local energy is pooled (a complex cell's
tolerance to a small shift, about a fifth of a period at the band's centre)."""
PIPELINE_EFFICIENCY = 0.0045
"""The efficiency of this computation alone, measured against the ideal observer (template matching with the
five known faces) in white noise: the noise variance at which each is right in half of 5-face lineups of AT&T
photos, 0.93² and 13.9² (``bench/bench_panel.py --efficiency``, 300 lineups a noise level: 0.0044)."""
EQUIVALENT_NOISE = 0.025
"""The observer's own additive noise (the linear amplifier model's equivalent input noise), as a white-noise
standard deviation on the [0, 1] intensity scale. Chosen, not measured: a face of about 1% RMS contrast on a
mid-grey is then at threshold, and a blank image or its 8-bit ripple (a tenth of this) gives no signal."""


@dataclass(frozen=True)
class Observer:
    """One worker's eye: efficiency for faces (at most PIPELINE_EFFICIENCY) and a criterion for "not in this
    lineup" (the least margin of the best face's similarity over the runner-up's)."""

    efficiency: float
    criterion: float

    def __post_init__(self) -> None:
        if not 0 < self.efficiency <= PIPELINE_EFFICIENCY:
            raise ValueError(f"efficiency must be in (0, {PIPELINE_EFFICIENCY}], not {self.efficiency}")

    def internal_noise(self, external: float) -> float:
        """The internal noise's standard deviation for a probe with white external noise ``external``: what
        lowers the computation's own efficiency to this observer's, plus the equivalent input noise."""
        return float(np.sqrt((PIPELINE_EFFICIENCY / self.efficiency - 1) * external**2 + EQUIVALENT_NOISE**2))


def band_filter(shape: tuple[int, int]) -> np.ndarray:
    """The face band's gain over the real-FFT grid of an image of ``shape`` mirror-padded to twice its size."""
    height, width = shape
    fy = np.fft.fftfreq(2 * height)[:, None]
    fx = np.fft.rfftfreq(2 * width)[None, :]
    cycles_per_face = np.hypot(fx, fy) * FACE_WIDTH * width
    sigma = BAND_OCTAVES / (2 * np.sqrt(2 * np.log(2)))
    with np.errstate(divide="ignore"):
        octaves = np.log2(cycles_per_face / BAND_CENTRE)
    gain = np.exp(-octaves**2 / (2 * sigma**2))
    gain[0, 0] = 0.0
    return gain


@lru_cache(maxsize=8)
def _quadrature_filters(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The band filter and its two Riesz transforms (the odd-symmetric partners that make local energy)."""
    height, width = shape
    gain = band_filter(shape)
    fy = np.fft.fftfreq(2 * height)[:, None]
    fx = np.fft.rfftfreq(2 * width)[None, :]
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    return gain, gain * 1j * fx / radius, gain * 1j * fy / radius


def local_energy(image: np.ndarray) -> np.ndarray:
    """The face band's local energy (the monogenic signal's amplitude: what a population of complex cells tuned
    to the band reports), pooled over POOLING pixels, standardised; all zeros for an image with nothing in the
    band."""
    image = np.asarray(image, dtype=np.float64)
    height, width = image.shape
    padded = np.pad(image - image.mean(), ((0, height), (0, width)), mode="symmetric")
    spectrum = np.fft.rfft2(padded)
    parts = [np.fft.irfft2(spectrum * f, s=padded.shape)[:height, :width] for f in _quadrature_filters(image.shape)]
    energy = ndimage.gaussian_filter(np.sqrt(sum(p * p for p in parts)), POOLING).ravel()
    energy -= energy.mean()
    norm = np.linalg.norm(energy)
    return energy / norm if norm > 1e-12 else energy * 0.0


_FACES: OrderedDict[bytes, np.ndarray] = OrderedDict()
_FACES_LOCK = threading.Lock()  # the panel's bots run in threads and share this memory


def _face_energy(image: np.ndarray) -> np.ndarray:
    """local_energy of a lineup photo, remembered: a study shows the same few hundred photos again and again."""
    image = np.ascontiguousarray(image, dtype=np.float64)
    key = hashlib.blake2b(image.tobytes(), digest_size=16, person=str(image.shape).encode()[:16]).digest()
    with _FACES_LOCK:
        energy = _FACES.get(key)
        if energy is not None:
            _FACES.move_to_end(key)
            return energy
    energy = local_energy(image)  # outside the lock: two threads may both compute it, never corrupt the memory
    with _FACES_LOCK:
        _FACES[key] = energy
        while len(_FACES) > 1024:
            _FACES.popitem(last=False)
    return energy


def noise_level(image: np.ndarray) -> float:
    """The white noise in an image, from the median absolute finest diagonal Haar coefficient (Donoho &
    Johnstone 1994): edges and shading barely reach that band, grain fills it. About 0.015 for AT&T photos."""
    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    x = image[:h, :w]
    diagonal = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2
    return float(np.median(np.abs(diagonal)) / 0.6745)


def similarities(observer: Observer, probes: list[np.ndarray], faces: list[np.ndarray],
                 rng: np.random.Generator) -> np.ndarray:
    """How much each face looks like what the observer saw of the probes (one noisy look at each, averaged):
    the correlation of local energies in the face band."""
    templates = np.stack([_face_energy(f) for f in faces])
    seen = []
    for probe in probes:
        probe = np.asarray(probe, dtype=np.float64)
        noisy = probe + observer.internal_noise(noise_level(probe)) * rng.standard_normal(probe.shape)
        seen.append(templates @ local_energy(noisy))
    return np.mean(seen, axis=0)


CONFIDENCE_SPAN = 0.4
"""How far past the observer's criterion the best face's margin over the runner-up must lie for it to be certain of
an identification. Chosen, not measured: about twice the median margin of an attentive bot whose probe is a held-out
photo of the person (0.2), so that such a bot spreads its ratings over the scale."""


@dataclass(frozen=True)
class Judgement:
    """What the observer made of a lineup: the face it picks (None: "not in this lineup") and how clearly, as the
    share of the way from its decision bound to certainty (0 to 1)."""

    pick: int | None
    strength: float

    def confidence(self, scale: int) -> int:
        """The rating on a 1..``scale`` confidence scale: equal steps of strength. Confidence follows the same
        evidence as the choice (the margin of the best face over the runner-up, as in Clark's WITNESS model), so a
        bot's confident identifications are more often right than its guesses, as people's are."""
        return 1 + min(scale - 1, int(self.strength * scale))


def judge(observer: Observer, probes: list[np.ndarray], faces: list[np.ndarray], can_say_absent: bool,
          rng: np.random.Generator) -> Judgement:
    """The face the observer picks, or None for "not in this lineup" (the best face does not beat the runner-up
    by the observer's criterion), and how clearly. An identification's strength is how far the margin passes the
    criterion (or zero, when the lineup must be answered with a face), over CONFIDENCE_SPAN; a rejection's is how
    far the margin falls short of the criterion, over the criterion."""
    values = similarities(observer, probes, faces, rng)
    order = np.argsort(values)[::-1]
    best = int(order[0])
    margin = float(values[best] - values[order[1]])
    if can_say_absent and margin < observer.criterion:
        return Judgement(None, float(np.clip((observer.criterion - margin) / observer.criterion, 0, 1)))
    bound = observer.criterion if can_say_absent else 0.0
    return Judgement(best, float(np.clip((margin - bound) / CONFIDENCE_SPAN, 0, 1)))
