"""A worker whose database is unreachable: clear 503s, nothing stored or emitted."""

from __future__ import annotations

import hashlib
import time

import boto3
import pytest
import requests

from infra.workers import start_worker
from tests import hostile_files as hf
from tests.conftest import API_KEY, RUN_ID, TEST_WEB_PORT

pytestmark = pytest.mark.integration


def test_unreachable_database_answers_503_and_stores_nothing(worker, stack, topic_reader):
    _, settings = stack
    events_before = len(topic_reader("uploaded"))
    broken = start_worker(TEST_WEB_PORT + 1,
                          settings.logs_dir / f"worker-test-{RUN_ID}-nodb.log",
                          env={"IMGSTREAM_DB_PORT": "1",
                               "IMGSTREAM_APP_ID": settings.app_id + "-nodb"})
    try:
        deadline = time.monotonic() + 60
        while broken.health() is None and time.monotonic() < deadline:
            time.sleep(0.25)  # until the web server answers at all
        health = requests.get(broken.base_url + "/api/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["checks"]["database"].startswith("error:")

        data = hf.photo(seed=41)
        response = requests.post(
            broken.base_url + "/api/images/upload", headers={"X-API-Key": API_KEY},
            data={"seller_id": "s-outage", "sku_id": "k-outage"},
            files={"file": ("a.jpg", data)}, timeout=30)
        assert response.status_code == 503
        assert response.json()["error"] == "unavailable"
        assert broken.process.poll() is None  # still serving, still retrying
        sha = hashlib.sha256(data).hexdigest()
        s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint,
                          aws_access_key_id=settings.s3_access_key,
                          aws_secret_access_key=settings.s3_secret_key,
                          region_name=settings.s3_region)
        listed = s3.list_objects_v2(Bucket=settings.originals_bucket,
                                    Prefix=f"originals/{sha[:2]}/{sha}")
        assert listed.get("KeyCount", 0) == 0
    finally:
        broken.stop()
    assert len(topic_reader("uploaded")) == events_before
