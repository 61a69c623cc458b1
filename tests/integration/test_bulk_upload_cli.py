"""`imgstream upload` against a real worker: concurrency, progress, summary, exit code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import hostile_files as hf
from tests.conftest import API_KEY

pytestmark = pytest.mark.integration


def test_upload_folder_reports_each_outcome(worker, tmp_path, db_query):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i in range(6):
        (folder / f"item-{i}.jpg").write_bytes(hf.photo(400, 300, seed=100 + i))
    (folder / "sub" / "item-0-copy.jpg").write_bytes(hf.photo(400, 300, seed=100))
    (folder / "broken.jpg").write_bytes(hf.truncated_jpeg())
    (folder / "notes.txt").write_text("ignored: not an image suffix")

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", "upload", str(folder), "--seller", "bulk-1",
             "--api", worker.base_url, "--api-key", API_KEY, "-c", "4", *extra],
            capture_output=True, text=True, timeout=120,
        )

    result = run()
    out = result.stdout
    assert result.returncode == 1, out  # one rejection makes the run fail
    assert "8 files: 7 created, 0 already known, 1 rejected, 0 failed" in out
    assert "broken.jpg" in out and "damaged or incomplete" in out

    rows = db_query("SELECT sku_id FROM product_images WHERE seller_id = 'bulk-1'")
    assert sorted(r["sku_id"] for r in rows) == sorted(
        [f"item-{i}" for i in range(6)] + ["item-0-copy"])

    again = run()
    assert "8 files: 0 created, 7 already known, 1 rejected, 0 failed" in again.stdout
