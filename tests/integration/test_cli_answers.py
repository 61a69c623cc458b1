"""The CLI answers, against a real worker: `upload` prints each file's image id (table or
JSON) and with --wait follows the photos to the end; `show`, `images` and `batch` wrap the
API; nothing to upload is an error that says so."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imaging.samples import generate_sample_batch
from tests.conftest import ADMIN_KEY, API_KEY, RUN_ID

pytestmark = pytest.mark.integration

SELLER = f"cli-{RUN_ID}"


def imgstream(*args: str, key: str = ADMIN_KEY, timeout: float = 400
              ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args, "--api-key", key],
                          capture_output=True, text=True, timeout=timeout)


def test_nothing_to_upload_exits_non_zero_and_says_why(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = imgstream("upload", str(empty), "--seller", SELLER, "--api", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "no supported image files in" in result.stdout

    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "notes.txt").write_text("not a photo")
    result = imgstream("upload", str(tmp_path / "texts"), "--seller", SELLER, "--json",
                       "--api", "http://127.0.0.1:9")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["error"] == "no_files"
    assert document["skipped"][0]["file"].endswith("notes.txt")
    assert "not a supported image type (.txt" in document["skipped"][0]["reason"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-photos")
    for sample in generate_sample_batch(count=3):
        (folder / sample.name).write_bytes(sample.data)
    (folder / "notes.txt").write_text("skipped: not an image suffix")
    return folder


@pytest.fixture(scope="module")
def waited(worker, folder):
    """`upload --wait --json` of three photos: the JSON document."""
    result = imgstream("upload", str(folder), "--seller", SELLER, "--wait", "--json",
                       "--api", worker.base_url, key=API_KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_upload_wait_json_follows_every_photo_to_its_result(waited):
    files = waited["files"]
    assert len(files) == 3 and waited["unfinished"] == []
    assert [s["file"].rsplit("/", 1)[-1] for s in waited["skipped"]] == ["notes.txt"]
    for entry in files:
        assert entry["outcome"] == "created" and len(entry["image_id"]) == 32
        result = entry["result"]
        assert result["image_id"] == entry["image_id"]
        assert result["status"] in ("completed", "skipped"), result
        assert result["before"]["tier"] in ("excellent", "good", "fair", "poor")
        if result["status"] == "completed":
            assert result["after"]["tier"] and result["url"].startswith("http")
            assert isinstance(result["cost_usd"], float)


def test_upload_wait_prints_a_table_of_ids_then_results(worker, folder, waited):
    # The same files again: duplicates, already finished, so --wait returns at once.
    result = imgstream("upload", str(folder), "--seller", SELLER, "--wait",
                       "--api", worker.base_url, key=API_KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "3 files: 0 created, 3 already known, 0 rejected, 0 failed, 1 skipped" in out
    assert "skipped " in out and "notes.txt: not a supported image type" in out
    for entry in waited["files"]:
        name = entry["file"].rsplit("/", 1)[-1]
        lines = [line for line in out.splitlines() if line.startswith(name)]
        # One line with the id after the upload, one with the result after the wait.
        assert any(entry["image_id"] in line and "duplicate" in line for line in lines), out
        done = entry["result"]
        assert any("->" in line or done["status"] == "skipped" for line in lines), out
        if done["url"]:
            assert any(done["url"] in line and "$" in line for line in lines), out


def test_show_and_images_wrap_the_api(worker, waited):
    image_id = waited["files"][0]["image_id"]
    shown = imgstream("show", image_id, "--api", worker.base_url)
    assert shown.returncode == 0, shown.stderr
    assert image_id in shown.stdout and f"seller {SELLER}" in shown.stdout
    assert "quality" in shown.stdout
    as_json = json.loads(imgstream("show", image_id, "--json", "--api", worker.base_url).stdout)
    assert as_json["image_id"] == image_id and as_json["seller_id"] == SELLER

    listed = imgstream("images", "--seller", SELLER, "--api", worker.base_url)
    assert listed.returncode == 0, listed.stderr
    for entry in waited["files"]:
        assert entry["image_id"] in listed.stdout
    page = json.loads(imgstream("images", "--seller", SELLER, "--limit", "2", "--json",
                                "--api", worker.base_url).stdout)
    assert len(page["items"]) == 2 and page["next_cursor"]

    missing = imgstream("show", "0" * 32, "--api", worker.base_url)
    assert missing.returncode == 1 and "not_found" in missing.stdout


def test_batch_enhance_waits_and_reports(worker, waited):
    ids = [entry["image_id"] for entry in waited["files"]]
    done = imgstream("batch", "enhance", *ids, "--wait", "--api", worker.base_url)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert "completed, 100% of 3" in last, done.stdout
    batch_id = done.stdout.split()[1].rstrip(":")
    results = imgstream("batch", "results", batch_id, "--json", "--api", worker.base_url)
    assert {item["image_id"] for item in json.loads(results.stdout)["items"]} == set(ids)
    refused = imgstream("batch", "status", batch_id, "--api", worker.base_url, key=API_KEY)
    assert refused.returncode == 1 and "HTTP 401" in refused.stdout
