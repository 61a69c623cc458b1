"""Start faust workers as child processes and wait until their API answers.

Used by the demo and by the integration tests, which run the real worker command.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    web_port: int
    log_path: Path
    started_at: float
    log_offset: int = 0  # where this run's output starts in an appended log

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(self.base_url + "/api/health", timeout=3) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                return json.loads(exc.read())
            except ValueError:
                return None
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def wait_ready(self, timeout: float = 90.0) -> float:
        """Block until /api/health says ok; returns seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}; "
                                   f"see {self.log_path}")
            health = self.health()
            if health and health.get("status") == "ok":
                return time.monotonic() - self.started_at
            time.sleep(0.25)
        raise TimeoutError(f"worker on port {self.web_port} not healthy after {timeout:.0f}s; "
                           f"see {self.log_path}")

    def wait_log(self, marker: str, timeout: float = 90.0) -> float:
        """Block until ``marker`` appears in the worker's log; returns seconds since start.

        faust logs "[^Worker]: Ready" once agents have joined their consumer group, which
        is later than the web API answering.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as log:
                log.seek(self.log_offset)
                found = marker.encode() in log.read()
            if found:
                return time.monotonic() - self.started_at
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}")
            time.sleep(0.1)
        raise TimeoutError(f"{marker!r} not in {self.log_path} after {timeout:.0f}s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Stop the worker (SIGTERM: graceful; SIGKILL: a crash)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode

    def rss_mb(self) -> float | None:
        try:
            with open(f"/proc/{self.process.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None


def start_worker(web_port: int, log_path: Path, env: Mapping[str, str] | None = None,
                 loglevel: str = "info") -> WorkerProcess:
    """Run ``imgstream worker`` in its own session, output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {}), "IMGSTREAM_WEB_PORT": str(web_port)}
    with log_path.open("ab") as log:
        offset = log.tell()
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--web-port", str(web_port),
             "-l", loglevel],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env,
            start_new_session=True,
        )
    return WorkerProcess(process, web_port, log_path, time.monotonic(), offset)
