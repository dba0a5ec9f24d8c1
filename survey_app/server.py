"""`mi-harness serve` in a child process on a free port: the real production server, for the simulated
panel, the demo and the tests, stopped cleanly however the caller ends."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mi_harness_command() -> list[str]:
    script = Path(sys.executable).with_name("mi-harness")
    found = str(script) if script.exists() else shutil.which("mi-harness")
    return [found] if found else [sys.executable, "-c", "from mi_harness.cli import main; main()"]


class ServerProcess:
    """Serve the survey database ``url`` on ``host:port`` (a free port when 0); the server's output goes to
    ``log`` (a temporary file when None), so a chatty server can never block on a full pipe."""

    def __init__(self, url: str, port: int = 0, host: str = "127.0.0.1", workers: int = 2, threads: int = 4,
                 log: str | Path | None = None, ready_timeout: float = 60.0) -> None:
        self.port = port or free_port()
        self.base = f"http://{host}:{self.port}"
        self.log_path = Path(log) if log else Path(tempfile.mkstemp(prefix="mi-survey-", suffix=".log")[1])
        self._log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [*mi_harness_command(), "serve", "--database", url, "--bind", f"{host}:{self.port}",
             "--workers", str(workers), "--threads", str(threads)],
            stdout=self._log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise ServerError(f"the survey server exited: {self.output()[-2000:]}")
            try:
                if requests.get(self.base + "/hello", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        self.stop()
        raise ServerError(f"the survey server did not answer within {ready_timeout:.0f} s")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> str:
        """Stop the server (SIGTERM, then SIGKILL after 20 s) and return what it printed."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.output()

    def wait(self) -> int:
        return self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
