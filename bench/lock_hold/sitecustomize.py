"""Loaded by every process of a server that bench/lock_hold.py starts (this folder is put first on PYTHONPATH): times
how long each SQLite write holds the writer lock (``<database>.writelock``) and waits for it, by what took it, and
appends the new figures to ``$MI_LOCK_HOLD_DIR/<pid>.jsonl`` every second (only what is new: the writing must not
weigh on the server it measures). Not part of the survey."""
import json
import os
import sys
import threading
import time
from collections import deque

FOLDER = os.environ.get("MI_LOCK_HOLD_DIR")
WRITERS = ("_commit", "_hand_out_work", "consent")
"""What took the lock, by the survey function found first up the stack: the answers' group commit, a HIT's
hand-out, a worker's consent; anything else is "other"."""

if FOLDER:
    import survey_app.db as database

    locked = database._LockedConnection
    held = deque()  # (kind, when, hold s, wait s); appended by request threads, emptied by the writer thread
    owner = {"pid": None}
    take, give = locked.begin_immediate, locked._release

    def _write_out() -> None:
        path = os.path.join(FOLDER, f"{os.getpid()}.jsonl")
        while True:
            time.sleep(1)
            lines = []
            while held:
                lines.append(json.dumps(held.popleft()))
            if lines:
                with open(path, "a") as out:
                    out.write("\n".join(lines) + "\n")

    def begin_immediate(self) -> None:
        if owner["pid"] != os.getpid():  # the first write of a forked worker: its own figures, its own writer thread
            owner["pid"] = os.getpid()
            held.clear()
            threading.Thread(target=_write_out, daemon=True).start()
        frame, kind = sys._getframe(1), "other"
        while frame is not None:
            if frame.f_code.co_name in WRITERS:
                kind = frame.f_code.co_name
                break
            frame = frame.f_back
        asked = time.perf_counter()
        take(self)
        self._hold_since, self._hold_kind, self._hold_wait = time.perf_counter(), kind, time.perf_counter() - asked

    def _release(self) -> None:
        if self._locked:
            held.append((self._hold_kind, time.time(), time.perf_counter() - self._hold_since, self._hold_wait))
        give(self)

    locked.begin_immediate, locked._release = begin_immediate, _release
