"""The whole worker cycle against `mi-harness serve`: task page, its images, the answer (BENCHMARKS.md).

    .venv/bin/python bench/bench_cycle.py --repeats 3                 # saturation: /hello, page views, cycles
    .venv/bin/python bench/bench_cycle.py --repeats 1 --think 2,6     # how many thinking workers one server holds

Each repeat, for each database (SQLite, and PostgreSQL in a schema of its own, dropped afterwards): a fresh database
at the head migration; a study of the paper authors' 198 reconstructions (../shared/data/paper_reconstructions,
final images; default settings but answers_per_item 10,000, so the work never runs out); `mi-harness serve` with
its defaults (cores + 1 processes x 4 threads). Then, for --seconds each, measured after --saturation-warmup:

1. /hello, the same server's bare endpoint, driven by wrk (Debian's, two threads, --people connections): the ceiling,
   measured first and again last, the higher of the two kept (wrk opens its connections at once, and now and then
   the server's processes take them so unevenly that one process serves nearly all of them and /hello runs at a third
   of its rate, the machine half idle; the higher ceiling makes every ratio smaller, never larger);
2. reload: --people simulated workers join (the link with a workerId, consent) and reload their task page as
   fast as the server answers: page views per second;
3. cycle: --people workers loop as people do, with no think time: the task page, its 6-7 images (inline in the
   page since issue 14; fetched one by one from the older code's /img/ URLs, so the code before can be measured by
   the same client), the style sheet and script once (as a browser cache keeps them), the answer as task.js sends
   it, asking for the next task's page in the answer's own response (an older server ignores that and redirects;
   a redirect is followed, as a browser does; --no-script: the plain form's POST and the GET its redirect leads to,
   as a browser without JavaScript sends them); after each HIT of 10 the done page and "take another batch"; after
   3 HITs a new person (a new workerId, no cookie) takes the place. Cycles per second are answers acknowledged (a
   303, or the next task's page) in the measured window.

The simulated workers are an asyncio client in this process (wrk's Lua scripting cannot keep a cookie and a page
per connection reliably: Debian's wrk 4.1.0 corrupted strings and crashed under such a script). Each worker has
its own HTTP/1.1 keep-alive connection, reopened when the server closes it, as a browser does, and sends one
request at a time (a browser fetches images on up to six connections at once). Latency: request written to
response read, per request kind. Every acknowledged answer is checked against the database afterwards: stored,
once, with the choice sent.

With --think MIN,MAX: each worker looks at a lineup for MIN..MAX seconds (uniform) between its images and its
answer, and arrivals are spread over one think time; --steps gives the numbers of workers to try in turn, each for
--warmup + --seconds on the same server, until one where a kind's p95 (page, image or answer) reaches 300 ms.

CPU, in cores, for every run: the client's (this process's CPU time for the crowd; wrk's from getrusage for
/hello), the server's (its gunicorn processes, /proc), PostgreSQL's (its processes) and the whole machine's busy
cores (/proc/stat), so a run disturbed by other work on the machine shows; and the median time of a bare durable SQLite
commit on the same disk just before the run, the floor under every write. Results: bench/results/cycle.json and
cycle_think.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import resource
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np
import requests
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from survey_app.db import make_engine
from survey_app.importer import create_from_source
from survey_app.migrate import upgrade
from survey_app.models import Answer, Assignment, Worker
from survey_app.studies import set_run_status

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAPER = HERE.parent.parent / "shared" / "data" / "paper_reconstructions"
POSTGRES = os.environ.get("MI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
KINDS = ("page", "image", "answer", "static", "join", "consent", "done")
P95_LIMIT_MS = 300
CYCLE_KINDS = ("page", "image", "answer")
TICKS = os.sysconf("SC_CLK_TCK")


def fresh_database(kind: str, workdir: Path) -> tuple[str, callable]:
    """A new SQLite file, or a new PostgreSQL schema; and the function that drops it."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / f'bench-{secrets.token_hex(4)}.db'}", lambda: None
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return f"{POSTGRES}?options=-csearch_path%3D{schema}", drop


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these processes."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def children_of(pid: int) -> list[int]:
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return found


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return pids


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (every core, every process)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICKS


class CpuMeter:
    """CPU cores used during a run: by wrk, by the server, by PostgreSQL, by the machine as a whole."""

    def __init__(self, server_pid: int) -> None:
        self.server = children_of(server_pid)
        self.postgres = postgres_pids()
        self.start = (time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN), process_cpu(self.server),
                      process_cpu(self.postgres), machine_busy())

    def cores(self) -> dict:
        t0, r0, s0, p0, m0 = self.start
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.monotonic() - t0
        return {"client": (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / wall,
                "server": (process_cpu(self.server) - s0) / wall, "postgres": (process_cpu(self.postgres) - p0) / wall,
                "machine": (machine_busy() - m0) / wall}


def free_port() -> int:
    """A port below Linux's ephemeral range (32768-60999), where the crowd's own connections cannot take it."""
    while True:
        port = 20000 + random.randrange(12000)
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port


def start_server(url: str, port: int, workers: int, threads: int, env: dict | None = None) -> subprocess.Popen:
    """`mi-harness serve` as a user starts it (``env``: its environment, default this process's); ready when /hello
    answers (patient: the machine may be busy)."""
    process = subprocess.Popen([str(Path(sys.executable).with_name("mi-harness")), "serve", "--database", url,
                                "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:  # e.g. its port was taken meanwhile
            raise RuntimeError(f"the server exited ({process.returncode}) before answering /hello")
        try:
            if requests.get(f"http://127.0.0.1:{port}/hello", timeout=5).ok:
                return process
        except requests.RequestException:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("the server did not answer /hello within 120 s")


def wrk_hello(base: str, connections: int, seconds: float, server_pid: int) -> dict:
    """The ceiling: wrk (C, two threads) on the same server's bare /hello."""
    meter = CpuMeter(server_pid)
    process = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s", "-s",
                              str(HERE / "wrk" / "hello.lua"), base + "/hello"],
                             capture_output=True, text=True, timeout=seconds + 120)
    result = json.loads(process.stdout.strip().splitlines()[-1])
    result["cpu_cores"] = meter.cores()
    return result


class Connection:
    """One HTTP/1.1 keep-alive connection, as a browser keeps one: reopened when the server has closed it (gunicorn
    closes an idle one after 2 s), and a request the server dropped unanswered on closing is sent again (safe for
    every request here: a repeated answer is stored once)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, method: str, path: str, cookie: str | None, body: bytes = b"",
                      extra: str = "") -> tuple[int, dict, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{extra}"
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        if method == "POST":
            head += f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        message = (head + "\r\n").encode() + body
        for attempt in range(2):
            if self.reader is None or self.reader.at_eof():
                await self.close()
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(message)
                status_line, _, header_block = (await self.reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
                continue
            headers = {}
            for line in header_block.decode("latin-1").split("\r\n"):
                if line:
                    name, _, value = line.partition(":")
                    headers[name.lower()] = value.strip()
            payload = await self.reader.readexactly(int(headers.get("content-length", 0)))
            if headers.get("connection", "").lower() == "close":
                await self.close()
            return int(status_line.split()[1]), headers, payload
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')
HIDDEN = re.compile(rb'<input type="hidden" name="([^"]+)" value="([^"]*)"')
CHOICE = re.compile(rb'name="choice" value="([^"]+)"')
IMAGE = re.compile(rb'src="(/img/[^"]+)"')
INLINE_IMAGE = b'src="data:image/png;base64,'
STATIC = re.compile(rb'"(/static/[^"]+)"')


def skimmed(page: bytes) -> tuple[bytes, int]:
    """The page with its inline images' data cut out, and how many it had. The client's searches then read a few
    kilobytes, not the 60 of six images: that is a browser's work, on the worker's machine, and here it took the
    server's cores (a tenth of a millisecond a cycle, measured)."""
    parts = page.split(INLINE_IMAGE)
    return parts[0] + b"".join(INLINE_IMAGE + part[part.find(b'"'):] for part in parts[1:]), len(parts) - 1


class Crowd:
    """Simulated workers, each with its own session and connection, doing what a person does (module docstring)."""

    def __init__(self, base: str, slug: str, prefix: str, mode: str, people: int, hits: int,
                 think: tuple[float, float], warmup: float, seconds: float, script: bool = True) -> None:
        url = urlsplit(base)
        self.answer_header = "X-Survey-Next: task\r\n" if script else ""
        self.people = people
        self.host, self.port, self.slug, self.prefix, self.mode = url.hostname, url.port, slug, prefix, mode
        self.hits, self.think, self.rng = hits, think, random.Random(prefix)
        self.start, self.warmup, self.seconds = time.monotonic(), warmup, seconds
        self.keep_from = self.stop_at = math.inf  # the window opens once every place has seen its first task
        self.places_working: set[int] = set()
        self.latency = {kind: [] for kind in KINDS}
        self.counts = {"acked": 0, "rejected": 0, "no_work": 0, "unexpected": 0, "people": 0, "resent": 0,
                       "answers_in_window": 0}
        self.acks: list[tuple[str, str]] = []
        self.problems: list[str] = []

    async def send(self, connection: Connection, kind: str, method: str, path: str, jar: dict, body: bytes = b"",
                   extra: str = ""):
        started = time.monotonic()
        cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
        status, headers, payload = await connection.request(method, path, cookie, body, extra)
        now = time.monotonic()
        if self.keep_from <= now <= self.stop_at:
            self.latency[kind].append((now - started) * 1e6)
        if "set-cookie" in headers:
            name, _, value = headers["set-cookie"].split(";", 1)[0].partition("=")
            jar[name] = value
        return status, headers, payload

    def note(self, problem: str) -> None:
        self.counts["unexpected"] += 1
        if len(self.problems) < 10:
            self.problems.append(problem)

    def working(self, slot: int) -> None:
        """A place's first task page: once every place has had one, the measured window opens after the warm-up
        (the crowd's first arrival, everyone handed a HIT at once, is not the steady state)."""
        self.places_working.add(slot)
        if len(self.places_working) == self.people and self.keep_from == math.inf:
            self.open_window()

    def open_window(self) -> None:
        self.keep_from = time.monotonic() + self.warmup
        self.stop_at = self.keep_from + self.seconds

    async def place(self, slot: int) -> None:
        """One place in the crowd: a person works through their HITs, then the next person arrives."""
        await asyncio.sleep(self.rng.uniform(0, self.think[1]))  # arrivals spread over one think time
        generation = 0
        while time.monotonic() < self.stop_at:
            generation += 1
            connection = Connection(self.host, self.port)
            try:
                await self.person(connection, f"{self.prefix}-{slot}-{generation}", slot)
            finally:
                await connection.close()

    async def person(self, connection: Connection, name: str, slot: int) -> None:
        slug, jar = self.slug, {}
        status, _, page = await self.send(connection, "join", "GET", f"/s/{slug}/?workerId={name}", jar)
        if status != 200:
            return self.note(f"join: HTTP {status}")
        self.counts["people"] += 1
        form = urlencode({"csrf_token": CSRF.search(page).group(1).decode(), "worker_id": name, "consent": "yes"})
        status, _, _ = await self.send(connection, "consent", "POST", f"/s/{slug}/consent", jar, form.encode())
        if status != 303:
            return self.note(f"consent: HTTP {status}")
        path, hits, static_fetched, shown = f"/s/{slug}/task", 0, False, None
        while hits < self.hits and time.monotonic() < self.stop_at:
            if shown is not None:  # the answer's response was the next task's page (task.js)
                status, headers, page, shown = 200, {}, shown, None
            else:
                status, headers, page = await self.send(connection, "page", "GET", path, jar)
            page, inline = skimmed(page)
            if status == 303 and headers.get("location", "").endswith("/done"):
                await self.send(connection, "done", "GET", f"/s/{slug}/done", jar)
                hits, path = hits + 1, f"/s/{slug}/task?more=1"
                continue
            choices = [c.decode() for c in CHOICE.findall(page)]
            if status != 200 or not choices:
                if status == 200:
                    self.counts["no_work"] += 1
                return self.note(f"task page: HTTP {status}") if status != 200 else None
            self.working(slot)
            if self.mode == "reload":
                continue
            if not static_fetched:
                static_fetched = True
                for asset in STATIC.findall(page):
                    await self.send(connection, "static", "GET", asset.decode(), jar)
            linked = IMAGE.findall(page)
            if len(linked) + inline < 6:
                self.note("task page: fewer than six images")
            for image in linked:
                status, _, _ = await self.send(connection, "image", "GET", image.decode(), jar)
                if status != 200:
                    self.note(f"image: HTTP {status}")
            if self.think[1] > 0:
                await asyncio.sleep(self.rng.uniform(*self.think))
            fields = {name.decode(): value.decode() for name, value in HIDDEN.findall(page)}
            fields["choice"] = self.rng.choice(choices)
            status, headers, reply = await self.send(connection, "answer", "POST", f"/s/{slug}/answer", jar,
                                                     urlencode(fields).encode(), self.answer_header)
            path = f"/s/{slug}/task"
            if status == 200 and self.answer_header:  # the page the answer leads to came with it (task.js)
                if headers.get("content-location", "").endswith("/done"):
                    status, headers = 303, {}
                    hits, path = hits + 1, f"/s/{slug}/task?more=1"
                elif b'name="choice"' in reply:  # a plain search, not a regex over the images
                    status, headers, shown = 303, {}, reply
            if status == 303:
                self.counts["acked"] += 1
                self.counts["answers_in_window"] += self.keep_from <= time.monotonic() <= self.stop_at
                self.acks.append((fields["assignment"], fields["choice"]))
                if headers.get("location", "").endswith("/done"):  # the HIT's last answer (since issue 14)
                    await self.send(connection, "done", "GET", f"/s/{slug}/done", jar)
                    hits, path = hits + 1, f"/s/{slug}/task?more=1"
            else:
                self.counts["rejected"] += 1
                self.note(f"answer: HTTP {status}")


JOIN_LIMIT_S = 90


def run_crowd(base: str, slug: str, prefix: str, mode: str, people: int, hits: int, seconds: float, server_pid: int,
              think: tuple[float, float] = (0.0, 0.0), warmup: float = 0.0, script: bool = True) -> dict:
    """``people`` workers; latencies, rates and CPU from a window of ``seconds`` that opens ``warmup`` seconds after
    every place has seen its first task. The client's CPU is this process's own CPU time in the window (it does
    nothing else meanwhile)."""
    crowd = Crowd(base, slug, prefix, mode, people, hits, think, warmup, seconds, script)
    cpu = {}

    async def main():
        places = [asyncio.create_task(crowd.place(slot)) for slot in range(people)]
        joined_by = time.monotonic() + JOIN_LIMIT_S
        while crowd.keep_from == math.inf and time.monotonic() < joined_by:
            await asyncio.sleep(0.1)
        if crowd.keep_from == math.inf:  # some places never got work: measure anyway, and say so
            crowd.note(f"only {len(crowd.places_working)} of {people} places got a task within {JOIN_LIMIT_S} s")
            crowd.open_window()
        await asyncio.sleep(max(0.0, crowd.keep_from - time.monotonic()))
        meter, client_before = CpuMeter(server_pid), time.process_time()
        await asyncio.sleep(max(0.0, crowd.stop_at - time.monotonic()))
        cpu.update(meter.cores(), client=(time.process_time() - client_before) / seconds)
        results = await asyncio.gather(*places, return_exceptions=True)
        for failure in (r for r in results if isinstance(r, BaseException)):
            crowd.note(f"client: {failure!r}")

    asyncio.run(main())
    return {"latency_us": crowd.latency, "counts": crowd.counts, "acks": crowd.acks, "problems": crowd.problems,
            "cpu_cores": cpu, "seconds": seconds, "window_monotonic": (crowd.keep_from, crowd.stop_at)}


def sqlite_commit_ms(folder: Path, n: int = 30) -> float:
    """Median time of one durable SQLite commit (WAL, synchronous=FULL, one row) in ``folder``: the least a survey
    write holds the writer lock for, on this disk, at this moment (other programs' writes slow it down)."""
    path = folder / f"commit-{secrets.token_hex(4)}.db"
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE t (x INTEGER)")
    times = []
    for k in range(n):
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t VALUES (?)", (k,))
        connection.execute("COMMIT")
        times.append((time.perf_counter() - started) * 1000)
    connection.close()
    for leftover in folder.glob(path.name + "*"):
        leftover.unlink()
    return round(statistics.median(times), 2)


def percentiles(samples_us: list[int]) -> dict:
    if not samples_us:
        return {"n": 0}
    p50, p95, p99 = np.percentile(np.asarray(samples_us) / 1000, [50, 95, 99])
    return {"n": len(samples_us), "p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "p99_ms": round(p99, 2)}


def check_answers(url: str, acks: list[tuple[str, str]], prefix: str) -> dict:
    """Every acknowledged answer against the database: stored, once, with the choice that was sent."""
    sent: dict[str, str] = {}
    acked_twice = 0
    for token, choice in acks:
        acked_twice += token in sent
        sent[token] = choice
    engine = make_engine(url)
    with Session(engine) as db:
        stored = db.execute(select(Assignment.token, Answer.choice).join(Answer, Answer.assignment_id == Assignment.id)
                            .join(Worker, Worker.id == Answer.worker_id)
                            .where(Worker.external_id.like(f"{prefix}-%"))).all()
    engine.dispose()
    stored_choice = {}
    stored_twice = 0
    for token, choice in stored:
        stored_twice += token in stored_choice
        stored_choice[token] = choice
    lost = sum(token not in stored_choice for token in sent)
    changed = sum(token in stored_choice and stored_choice[token] != (-1 if choice == "absent" else int(choice) - 1)
                  for token, choice in sent.items())
    return {"acknowledged": len(acks), "stored": len(stored), "lost": lost, "changed": changed,
            "duplicated": acked_twice + stored_twice,
            "stored_not_acknowledged": sum(token not in sent for token in stored_choice)}


def new_study(url: str, answers_per_item: int):
    upgrade(url)
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as db:
        study = create_from_source(db, "bench", {"answers_per_item": answers_per_item}, folder=str(PAPER),
                                   csv=str(PAPER / "manifest.csv"), where={"kind": "final_image"})
        set_run_status(db, study, 1, "open")
        db.commit()
    engine.dispose()
    return study.slug


def summarise(result: dict) -> dict:
    return {"kinds": {kind: percentiles(result["latency_us"].get(kind, [])) for kind in KINDS},
            "counts": result["counts"], "problems": result["problems"], "cpu_cores": result["cpu_cores"]}


def saturation_run(kind: str, args, workdir: Path) -> dict:
    url, drop = fresh_database(kind, workdir)
    try:
        slug = new_study(url, answers_per_item=10_000)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(url, port, args.workers, args.threads)
        disk = sqlite_commit_ms(workdir)
        try:
            hellos = [wrk_hello(base, args.people, args.seconds, server.pid)]
            reload_ = run_crowd(base, slug, f"R{secrets.token_hex(3)}", "reload", args.people, args.hits,
                                args.seconds, server.pid, warmup=args.saturation_warmup)
            prefix = f"C{secrets.token_hex(3)}"
            cycle = run_crowd(base, slug, prefix, "cycle", args.people, args.hits, args.seconds, server.pid,
                              warmup=args.saturation_warmup, script=args.script)
            hellos.append(wrk_hello(base, args.people, args.seconds, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
        answers = check_answers(url, cycle["acks"], prefix)
    finally:
        drop()
    rates = [h["requests"] / (h["duration_us"] / 1e6) for h in hellos]
    hello = hellos[rates.index(max(rates))]
    hello_per_s = max(rates)
    pages_per_s = len(reload_["latency_us"]["page"]) / args.seconds
    cycles_per_s = cycle["counts"]["answers_in_window"] / args.seconds
    return {"database": kind, "load_average": os.getloadavg(), "sqlite_commit_ms": disk,
            "hello_per_s": round(hello_per_s), "hello_runs_per_s": [round(r) for r in rates],
            "hello_p95_ms": hello["p95_us"] / 1000,
            "hello_cpu_cores": hello["cpu_cores"],
            "pages_per_s": round(pages_per_s, 1), "page_ratio": pages_per_s / hello_per_s,
            "cycles_per_s": round(cycles_per_s, 1), "cycle_ratio": cycles_per_s / hello_per_s,
            "reload": summarise(reload_), "cycle": summarise(cycle), "answers": answers}


def think_run(kind: str, args, workdir: Path) -> dict:
    """Increasing numbers of thinking workers on one server, until a request kind's p95 passes the limit."""
    url, drop = fresh_database(kind, workdir)
    steps = []
    try:
        slug = new_study(url, answers_per_item=10_000)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(url, port, args.workers, args.threads)
        try:
            for people in args.steps:
                prefix = f"T{secrets.token_hex(3)}"
                result = run_crowd(base, slug, prefix, "cycle", people, args.hits, args.seconds, server.pid,
                                   think=args.think, warmup=args.warmup, script=args.script)
                step = summarise(result)
                step.update(people=people, cycles_per_s=round(result["counts"]["answers_in_window"] / args.seconds, 1),
                            answers=check_answers(url, result["acks"], prefix))
                step["held"] = all(step["kinds"][k].get("p95_ms", 0) < P95_LIMIT_MS for k in CYCLE_KINDS)
                steps.append(step)
                print(json.dumps({"database": kind, "people": step["people"], "held": step["held"],
                                  "cycles_per_s": step["cycles_per_s"],
                                  "p95_ms": {k: step["kinds"][k].get("p95_ms") for k in ("page", "image", "answer")},
                                  "cpu_cores": step["cpu_cores"], "answers": step["answers"]}), flush=True)
                if not step["held"]:
                    break
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        drop()
    held = [s["people"] for s in steps if s["held"]]
    return {"database": kind, "steps": steps, "held": max(held) if held else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--people", type=int, default=64, help="simulated workers at once, without think time")
    parser.add_argument("--seconds", type=float, default=10, help="length of each measured wrk run")
    parser.add_argument("--hits", type=int, default=3, help="HITs a simulated person takes before leaving")
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) + 1,
                        help="gunicorn worker processes (serve's default: cores + 1)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (serve's default)")
    parser.add_argument("--think", type=lambda s: tuple(float(v) for v in s.split(",")),
                        help="MIN,MAX seconds a worker looks at a lineup before answering: the capacity sweep")
    parser.add_argument("--steps", type=lambda s: [int(v) for v in s.split(",")], default=[100, 200, 400, 800, 1600],
                        help="numbers of thinking workers to try, in order")
    parser.add_argument("--saturation-warmup", type=float, default=2,
                        help="seconds of each saturation run not measured (everyone joins)")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of each think step not measured")
    parser.add_argument("--no-script", dest="script", action="store_false",
                        help="answer as a browser without JavaScript: the form's POST, then its redirect to the task")
    parser.add_argument("--nice", type=int, default=0,
                        help="run the benchmark (client, server, wrk) at this niceness; below 0 needs root")
    parser.add_argument("--out", default=None, help="results file (default bench/results/cycle[_think].json)")
    args = parser.parse_args()
    os.nice(args.nice)
    databases = args.database or ["sqlite", "postgresql"]
    output = {"settings": {k: v for k, v in vars(args).items()}, "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="mi-bench-cycle-") as tmp:
        if args.think:
            output["think"] = {kind: [think_run(kind, args, Path(tmp)) for _ in range(args.repeats)]
                               for kind in databases}
            name = "cycle_think.json"
        else:
            results = {}
            for kind in databases:
                runs = []
                for _ in range(args.repeats):
                    run = saturation_run(kind, args, Path(tmp))
                    runs.append(run)
                    print(json.dumps({k: run[k] for k in ("database", "sqlite_commit_ms", "hello_per_s", "pages_per_s",
                                                          "page_ratio", "cycles_per_s", "cycle_ratio", "answers")}),
                          flush=True)
                    print(json.dumps({"cycle_latency": run["cycle"]["kinds"], "cpu": run["cycle"]["cpu_cores"],
                                      "hello_cpu": run["hello_cpu_cores"], "problems": run["cycle"]["problems"]}),
                          flush=True)
                median = {key: statistics.median(r[key] for r in runs)
                          for key in ("hello_per_s", "pages_per_s", "page_ratio", "cycles_per_s", "cycle_ratio")}
                median.update(lost=sum(r["answers"]["lost"] + r["answers"]["changed"] for r in runs),
                              duplicated=sum(r["answers"]["duplicated"] for r in runs))
                print(json.dumps({kind: median}), flush=True)
                results[kind] = {"median": median, "runs": runs}
            output["saturation"] = results
            name = "cycle.json"
    output["load_average_after"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    Path(args.out or RESULTS / name).write_text(json.dumps(output, indent=1))


if __name__ == "__main__":
    main()
