"""Which services the integration and e2e tests run against.

``IMGSTREAM_TEST_BACKEND`` selects: ``embedded`` (the default: the embedded stack,
``imgstream stack up``), ``containers`` (Kafka, MySQL and an S3 server started by
testcontainers from the images docker-compose.yml pins; needs a Docker engine) or
``auto`` (containers where a Docker engine answers, else embedded). Everything above
the endpoints - namespaces, the worker, every fixture - is the same for both; the
Bedrock emulator and the CloudFront stand-in always come from the embedded stack.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHOICES = ("embedded", "containers", "auto")


@dataclass(frozen=True)
class Backend:
    name: str      # embedded | containers
    reason: str    # why, for the test report header


def choose_backend(requested: str | None, docker_available: bool,
                   testcontainers_installed: bool) -> Backend:
    """The backend for ``IMGSTREAM_TEST_BACKEND=requested`` on this machine."""
    requested = (requested or "embedded").strip().lower()
    if requested not in CHOICES:
        raise ValueError(f"IMGSTREAM_TEST_BACKEND must be one of {CHOICES}, got {requested!r}")
    can_run = docker_available and testcontainers_installed
    missing = ("no Docker engine answers" if not docker_available
               else "the testcontainers package is not installed")
    if requested == "embedded":
        return Backend("embedded", "IMGSTREAM_TEST_BACKEND=embedded (the default)")
    if requested == "containers":
        if not can_run:
            raise RuntimeError(f"IMGSTREAM_TEST_BACKEND=containers, but {missing}")
        return Backend("containers", "IMGSTREAM_TEST_BACKEND=containers")
    if can_run:
        return Backend("containers", "IMGSTREAM_TEST_BACKEND=auto and a Docker engine answers")
    return Backend("embedded", f"IMGSTREAM_TEST_BACKEND=auto and {missing}")


def docker_engine_available(environ: dict[str, str] | None = None) -> bool:
    """Does a Docker engine answer on DOCKER_HOST (unix or tcp) or the default socket?"""
    host = (environ or os.environ).get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(host[len("unix://"):])
                sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b"OK" in sock.recv(1024)
        if host.startswith("tcp://"):
            address, _, port = host[len("tcp://"):].partition(":")
            with socket.create_connection((address, int(port or 2375)), timeout=2):
                return True
    except OSError:
        return False
    return False


def testcontainers_installed() -> bool:
    try:
        import testcontainers  # noqa: F401
    except ImportError:
        return False
    return True


def compose_images(compose_file: Path = ROOT / "docker-compose.yml") -> dict[str, str]:
    """``service: image`` of the compose file (the containers run the same versions)."""
    images, service = {}, None
    for line in compose_file.read_text().splitlines():
        declared = re.match(r"^  ([a-z0-9-]+):\s*$", line)
        if declared:
            service = declared.group(1)
        pinned = re.match(r"^    image:\s*(\S+)\s*$", line)
        if pinned and service:
            images[service] = pinned.group(1)
    return images


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_containers(stack: ExitStack) -> dict[str, str]:
    """Start Kafka, MySQL and SeaweedFS; the IMGSTREAM_* settings that point at them.

    Kept small on purpose: only what the embedded stack's broker, database and object
    store provide, configured as in docker-compose.yml. Not exercised on machines
    without a Docker engine.
    """
    from testcontainers.community.mysql import MySqlContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    images = compose_images()
    password = secrets.token_hex(8)
    # Kafka advertises the host port clients use, so it is chosen before the start.
    kafka_port = _free_port()
    kafka = DockerContainer(images["kafka"]).with_bind_ports(9092, kafka_port)
    for name, value in {
        "KAFKA_NODE_ID": "1", "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{kafka_port}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }.items():
        kafka = kafka.with_env(name, value)
    stack.enter_context(kafka)
    wait_for_logs(kafka, "Kafka Server started", timeout=120)
    mysql = stack.enter_context(MySqlContainer(images["mysql"], username="root",
                                               root_password=password, password=password,
                                               dbname="imgstream"))
    s3 = stack.enter_context(
        DockerContainer(images["seaweedfs"]).with_command("server -s3 -s3.port=8333")
        .with_exposed_ports(8333))
    wait_for_logs(s3, "Start Seaweed S3 API Server", timeout=120)
    return {
        "IMGSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        # Apache Kafka answers ListOffsets correctly for multi-record batches.
        "IMGSTREAM_PRODUCER_MAX_BATCH_SIZE": "16384",
        "IMGSTREAM_DB_HOST": mysql.get_container_host_ip(),
        "IMGSTREAM_DB_PORT": str(mysql.get_exposed_port(3306)),
        "IMGSTREAM_DB_USER": "root",
        "IMGSTREAM_DB_PASSWORD": password,
        "IMGSTREAM_S3_ENDPOINT": (f"http://{s3.get_container_host_ip()}:"
                                  f"{s3.get_exposed_port(8333)}"),
    }
