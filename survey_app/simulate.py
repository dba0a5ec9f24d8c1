"""A simulated panel: worker bots that take a study through its real HTTP pages, as people would.

A bot arrives by the study's link, consents, answers one lineup per page and collects a completion code per HIT; it
sees only what a person sees (the pages and the images in them), never the database. It looks at a lineup
through ``perception``: an observer limited to the face band and to human efficiency for faces, so it cannot read a
faint face out of grain the way pixel correlation does, and a blank or pure-noise image tells it nothing; where a
study asks how sure it is, it rates its confidence from the same evidence as its choice. It answers a control
(mock-witness) item like any other, since nothing on the page tells them apart. Its kind sets its efficiency, its
criterion for "not in this lineup" and how often it answers without looking: attentive bots are as efficient as the
model allows and always look, casual ones are less efficient and answer a third of the lineups at random, careless
ones click the first face half the time, and random ones click anything. So a lab can rehearse a study, and the
skilled-worker filter has something real to find. The bots are not people: what they recognise says what this
observer model recognises.
"""
from __future__ import annotations

import base64
import io
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import numpy as np
import requests
from PIL import Image
from tqdm import tqdm

from mi_harness.answers import simulated_worker_id

from .perception import PIPELINE_EFFICIENCY, Observer, judge

PROFILES = {
    # name: (share of the panel, range of face efficiency, range of the "not in this lineup" criterion,
    #        chance of answering without looking (a lapse), and what a lapse clicks)
    "attentive": (0.55, (0.003, PIPELINE_EFFICIENCY), (0.015, 0.04), 0.0, "any"),
    "casual": (0.25, (0.001, 0.002), (0.01, 0.04), 0.3, "any"),
    "careless": (0.10, (0.0005, 0.001), (0.0, 0.02), 0.5, "first"),
    "random": (0.10, None, None, 1.0, "any"),
}
"""Efficiencies bracket those measured for face identification (of the order of 1%, Gold, Bennett & Sekuler
1999), the attentive kind at the top, which is the perception model's own. The criterion is the margin of the
best face's similarity over the runner-up's below which a bot says "not in this lineup": the median margin is
about 0.2 when a held-out photo of the person is the probe and about 0.02 for a blank or pure-noise probe."""


class PanelError(RuntimeError):
    pass


@dataclass
class Persona:
    worker_id: str
    profile: str
    efficiency: float
    absent_criterion: float
    seed: int

    @property
    def observer(self) -> Observer | None:
        return None if self.profile == "random" else Observer(self.efficiency, self.absent_criterion)


@dataclass
class BotResult:
    persona: Persona
    answers: int = 0
    codes: list[str] = field(default_factory=list)
    stopped: str = ""
    error: str | None = None


def personas(count: int, seed: int = 0, prefix: str = "bot") -> list[Persona]:
    """``count`` workers with profiles in the PROFILES shares (largest remainder), shuffled by ``seed``."""
    if count < 1:
        raise ValueError("a panel needs at least one worker")
    shares = {name: profile[0] * count for name, profile in PROFILES.items()}
    counts = {name: int(v) for name, v in shares.items()}
    for name in sorted(shares, key=lambda n: counts[n] - shares[n])[: count - sum(counts.values())]:
        counts[name] += 1
    rng = random.Random(seed)
    names = [name for name, n in counts.items() for _ in range(n)]
    rng.shuffle(names)
    out = []
    for k, name in enumerate(names):
        _, efficiency, criterion, _, _ = PROFILES[name]
        out.append(Persona(simulated_worker_id(prefix, seed, k + 1), name,
                           rng.uniform(*efficiency) if efficiency else 0.0,
                           rng.uniform(*criterion) if criterion else 0.0, rng.randrange(2**31)))
    return out


def respond(persona: Persona, probes: list[np.ndarray], faces: list[np.ndarray], can_say_absent: bool, scale: int,
            rng: random.Random) -> tuple[int | None, int | None]:
    """The index of the chosen face (None for "not in this lineup") and, when the study asks for it (``scale``
    points), the confidence rating: from the same look at the lineup as the choice (``perception.Judgement``), or at
    random for an answer given without looking."""
    _, _, _, lapse, lapse_pick = PROFILES[persona.profile]
    if lapse and rng.random() < lapse:  # an answer without looking
        if lapse_pick == "first":
            pick = 0
        else:
            pick = rng.randrange(len(faces) + can_say_absent)
            pick = None if pick == len(faces) else pick
        return pick, rng.randint(1, scale) if scale else None
    seen = judge(persona.observer, probes, faces, can_say_absent, np.random.default_rng(rng.getrandbits(64)))
    return seen.pick, seen.confidence(scale) if scale else None


class _Page(HTMLParser):
    """The parts of a survey page a bot acts on: hidden inputs, choice buttons, images, completion codes."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, str] = {}
        self.choices: list[str] = []
        self.confidences: list[str] = []  # the points of the confidence scale, when the study asks
        self.images: dict[str, str] = {}  # alt -> src
        self.codes: list[str] = []
        self.resume_codes: list[str] = []  # the code that lets this worker continue in another browser
        self._in_code: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden":
            self.inputs[a.get("name", "")] = a.get("value", "")
        elif tag in ("button", "input") and a.get("name") == "choice":  # buttons, or radios when confidence is asked
            self.choices.append(a.get("value", ""))
        elif tag == "input" and a.get("name") == "confidence":
            self.confidences.append(a.get("value", ""))
        elif tag == "img":
            self.images[a.get("alt", "")] = a.get("src", "")
        elif tag == "code" and "completion-code" in (a.get("class") or ""):
            self._in_code = self.codes
        elif tag == "code" and "resume-code" in (a.get("class") or ""):
            self._in_code = self.resume_codes

    def handle_data(self, data):
        if self._in_code is not None and data.strip():
            self._in_code.append(data.strip())

    def handle_endtag(self, tag):
        if tag == "code":
            self._in_code = None


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


class Bot:
    """One simulated worker with its own cookie jar, taking up to ``hits`` HITs. Like a person, it keeps the resume
    code its pages show (``on_resume_code``), and a bot that comes back in a new cookie jar (the demo after an
    interruption) brings it (``resume_code``) to continue as itself."""

    def __init__(self, base_url: str, slug: str, persona: Persona, hits: int, timeout: float = 60.0,
                 stop: threading.Event | None = None, resume_code: str | None = None,
                 on_resume_code=lambda worker, code: None) -> None:
        self.resume_code, self.on_resume_code = resume_code, on_resume_code
        self.base = base_url.rstrip("/") + "/"
        self.stop = stop or threading.Event()
        self.slug = slug
        self.persona = persona
        self.hits = hits
        self.timeout = timeout
        self.http = requests.Session()
        self.rng = random.Random(persona.seed)

    def _get(self, path: str) -> requests.Response:
        return self._send("GET", path)

    def _post(self, path: str, data: dict) -> requests.Response:
        return self._send("POST", path, data)

    def _send(self, method: str, path: str, data: dict | None = None, attempts: int = 5) -> requests.Response:
        """One request, tried again (as a person would reload) when the server says it is busy (503) or the
        connection drops; a resent answer is stored once, so this is safe for the answer form too."""
        url = urljoin(self.base, path.lstrip("/"))
        for attempt in range(attempts):
            try:
                response = self.http.request(method, url, data=data, timeout=self.timeout)
            except requests.ConnectionError:
                if attempt == attempts - 1:
                    raise
            else:
                if response.status_code != 503 or attempt == attempts - 1:
                    break
            time.sleep(0.2 * 2**attempt)
        if response.status_code >= 400:
            raise PanelError(f"{method} {response.url}: HTTP {response.status_code}")
        return response

    def _image(self, src: str) -> np.ndarray:
        """The pixels of an image the page shows inline (a data: URI, as survey_app.images writes them)."""
        head, _, payload = src.partition(",")
        if head != "data:image/png;base64" or not payload:
            raise PanelError(f"the page shows an image that is not an inline PNG: {src[:60]!r}")
        data = base64.b64decode(payload)
        return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float64) / 255.0

    def run(self, on_answer=lambda: None) -> BotResult:
        result = BotResult(self.persona)
        try:
            self._run(result, on_answer)
        except (PanelError, requests.RequestException) as exc:
            result.error = str(exc)
        finally:
            self.http.close()
        return result

    def _run(self, result: BotResult, on_answer) -> None:
        response = self._get(f"/s/{self.slug}/?workerId={self.persona.worker_id}")
        page = parse(response.text)
        if "worker_id" in page.inputs:  # the consent page (a bot's new cookie jar is never logged in)
            response = self._post(f"/s/{self.slug}/consent", {
                "csrf_token": page.inputs.get("csrf_token", ""), "worker_id": self.persona.worker_id,
                "consent": "yes", **({"resume_code": self.resume_code} if self.resume_code else {})})
        while True:
            if self.stop.is_set():
                result.stopped = "interrupted"
                return
            page = parse(response.text)
            if page.resume_codes and page.resume_codes[0] != self.resume_code:
                self.resume_code = page.resume_codes[0]
                self.on_resume_code(self.persona.worker_id, self.resume_code)
            if not page.choices:
                result.codes = page.codes
                if "/done" in response.url and len(page.codes) < self.hits:
                    response = self._get(f"/s/{self.slug}/task?more=1")
                    more = parse(response.text)
                    if not more.choices:
                        result.codes = more.codes
                        result.stopped = "no work left"
                        return
                    continue
                result.stopped = "done" if "/done" in response.url else "no work left"
                return
            faces = [self._image(page.images[f"Face {k + 1}"]) for k in range(len(page.choices))
                     if f"Face {k + 1}" in page.images]
            tokens = [c for c in page.choices if c != "absent"]
            probes = [self._image(page.images["Image to match"])]
            if "Blurred photo" in page.images:
                probes.append(self._image(page.images["Blurred photo"]))
            pick, confidence = respond(self.persona, probes, faces, "absent" in page.choices, len(page.confidences),
                                       self.rng)
            form = {"csrf_token": page.inputs["csrf_token"], "assignment": page.inputs["assignment"],
                    "choice": "absent" if pick is None else tokens[pick]}
            if confidence is not None:
                form["confidence"] = page.confidences[confidence - 1]
            response = self._post(f"/s/{self.slug}/answer", form)
            result.answers += 1
            on_answer()


def run_panel(base_url: str, slug: str, panel: list[Persona], hits_per_worker: int = 3, concurrency: int = 8,
              expected_answers: int | None = None, progress: bool = True, resume_codes: dict | None = None,
              on_resume_code=lambda worker, code: None) -> list[BotResult]:
    """Send the panel through the study, ``concurrency`` bots at a time; each stops after
    ``hits_per_worker`` HITs or when the study has no work for it. Ctrl-C stops every bot after its current
    answer (what it answered is stored; the rest of its HIT waits for the same bot to log in again, with the
    resume code it kept: ``resume_codes`` worker -> code, reported as learnt to ``on_resume_code``)."""
    lock, stop = threading.Lock(), threading.Event()
    bar = tqdm(total=expected_answers, desc="simulated panel", unit="answer", disable=not progress)

    def tick() -> None:
        with lock:
            bar.update()

    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        return list(pool.map(lambda p: Bot(base_url, slug, p, hits_per_worker, stop=stop,
                                           resume_code=(resume_codes or {}).get(p.worker_id),
                                           on_resume_code=on_resume_code).run(tick), panel))
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


PANEL_COLUMNS = ["worker", "profile", "efficiency", "absent_criterion", "answers", "hits_completed", "stopped", "error"]


def panel_rows(results: list[BotResult]) -> list[dict]:
    """One row per bot: who it pretended to be and what it did (the answers themselves are in the survey)."""
    return [{"worker": r.persona.worker_id, "profile": r.persona.profile, "efficiency": round(r.persona.efficiency, 5),
             "absent_criterion": round(r.persona.absent_criterion, 4), "answers": r.answers,
             "hits_completed": len(r.codes), "stopped": r.stopped, "error": r.error or ""} for r in results]
