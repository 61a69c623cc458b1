"""The whole local path on the real stack: upload -> assessed -> planned -> enhanced ->
completed -> MySQL rows, S3 renditions and CloudFront invalidations."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import boto3
import pytest
import requests

import schemas
from imaging.samples import generate_sample_batch
from infra.namespace import namespace_env, namespaced
from infra.workers import start_worker
from profiles import load_profile
from tests.conftest import API_KEY, TEST_WEB_PORT, _drop_namespace, run_query
from tests.integration.test_assess_agent import _produce, _wait_events
from tests.integration.test_ingest_api import upload
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

MIXED = ["mug-plain-sharp.jpg", "bottle-plain-blurred.jpg", "sneaker-plain-dark.jpg",
         "box-wood-cluttered.jpg", "box-plain-small.jpg", "tshirt-plain-small-noisy.jpg"]


def _s3(settings):
    return boto3.client("s3", endpoint_url=settings.s3_endpoint,
                        aws_access_key_id=settings.s3_access_key,
                        aws_secret_access_key=settings.s3_secret_key,
                        region_name=settings.s3_region)


def _counts(db_query, image_ids) -> dict[str, tuple[int, int, int]]:
    marks = ", ".join(["%s"] * len(image_ids))
    jobs = db_query(f"SELECT image_id, job_id FROM enhancement_jobs WHERE image_id IN ({marks})",
                    tuple(image_ids))
    result = {}
    for image_id in image_ids:
        job_ids = [j["job_id"] for j in jobs if j["image_id"] == image_id]
        steps = db_query("SELECT COUNT(*) AS n FROM processing_steps WHERE job_id = %s",
                         (job_ids[0],))[0]["n"] if job_ids else 0
        after = db_query("SELECT COUNT(*) AS n FROM quality_metrics WHERE image_id = %s AND "
                         "metric_type = 'after'", (image_id,))[0]["n"]
        result[image_id] = (len(job_ids), steps, after)
    return result


def test_mixed_batch_completes_with_rows_objects_and_invalidations(worker, stack, db_query,
                                                                   topic_reader):
    _, settings = stack
    samples = {s.name: s for s in generate_sample_batch()}
    ids = {}
    for name in MIXED:
        response = upload(worker, samples[name].data, filename=name, sku_id="e2e-" + name[:-4])
        assert response.status_code in (200, 201), response.text
        ids[response.json()["image_id"]] = name

    events = _wait_events(topic_reader, "completed", lambda e: e["image_id"] in ids, len(ids),
                          timeout=180)
    completed = {e["image_id"]: e for e in events}
    s3 = _s3(settings)
    for image_id, event in completed.items():
        schemas.validate_event("image_completed", event)
        assert event["status"] in ("completed", "skipped")
        if event["before"]["tier"] == "excellent":
            assert event["status"] == "skipped" and event["steps"] == []
        else:
            assert event["status"] == "completed" and event["steps"]
            if not event["kept_original"]:
                # Published: it scored better, or it is an upscale (credited nothing for
                # its interpolated pixels) that scored no worse within the tolerance.
                before, after = event["before"]["overall_score"], event["after"]["overall_score"]
                large = max(o["width"] for o in event["outputs"] if o["name"] == "large")
                upscaled = large > event["before"]["metrics"]["width"]
                tolerance = load_profile("default").outputs.upscaled_score_tolerance
                assert after > before or (upscaled and after >= before - tolerance), event
            else:
                assert "published the original" in event["kept_original_reason"]
        assert len(event["outputs"]) == 8  # 2 sizes x 2 formats, versioned + alias
        for output in event["outputs"]:
            bucket, key = output["uri"][5:].split("/", 1)
            head = s3.head_object(Bucket=bucket, Key=key)
            assert head["ContentLength"] == output["size_bytes"]
        assert event["cdn_url"].startswith(f"https://{settings.cdn_domain}/enhanced/{image_id}/")

    rows = wait_for(lambda: _complete_rows(db_query, ids), 60)
    for row in rows:
        event = completed[row["image_id"]]
        assert row["status"] == event["status"]
        assert row["cloudfront_url"] == event["cdn_url"]
    counts = _counts(db_query, list(ids))
    for image_id, (jobs, steps, after) in counts.items():
        assert (jobs, steps, after) == (1, len(completed[image_id]["steps"]), 1), ids[image_id]

    # Forced redelivery of every upload: the same jobs, no duplicate rows.
    uploaded = [m for m in topic_reader("uploaded") if m["key"].decode() in ids]
    for message in uploaded:
        _produce(settings, "uploaded", message["key"].decode(), message["value"])
    _wait_events(topic_reader, "completed", lambda e: e["image_id"] in ids, 2 * len(ids),
                 timeout=180)
    time.sleep(3)  # let the sink write the redelivered events
    assert _counts(db_query, list(ids)) == counts

    # CloudFront: every alias path of every image was invalidated.
    cloudfront = boto3.client("cloudfront", endpoint_url=settings.cloudfront_endpoint,
                              region_name="us-east-1", aws_access_key_id="x",
                              aws_secret_access_key="x")
    alias_paths = {"/" + o["uri"][5:].split("/", 1)[1] for e in completed.values()
                   for o in e["outputs"] if o["alias"]}
    wait_for(lambda: alias_paths <= _invalidated_paths(cloudfront), 60)


def _complete_rows(db_query, ids):
    marks = ", ".join(["%s"] * len(ids))
    rows = db_query(f"SELECT image_id, status, cloudfront_url FROM product_images "
                    f"WHERE image_id IN ({marks})", tuple(ids))
    done = [r for r in rows if r["status"] in ("completed", "skipped")]
    return rows if len(done) == len(ids) else None


def _invalidated_paths(cloudfront) -> set[str]:
    paths: set[str] = set()
    for dist in cloudfront.list_distributions().get("DistributionList", {}).get("Items", []):
        listing = cloudfront.list_invalidations(DistributionId=dist["Id"])
        for item in listing.get("InvalidationList", {}).get("Items", []):
            inv = cloudfront.get_invalidation(DistributionId=dist["Id"], Id=item["Id"])
            paths.update(inv["Invalidation"]["InvalidationBatch"]["Paths"].get("Items", []))
    return paths




def test_worker_killed_mid_batch_completes_every_image_once(stack, db_query):
    """SIGKILL a worker while it works through a batch, restart it: each image once."""
    _, settings = stack
    run = uuid.uuid4().hex[:8]
    env = namespace_env("kill", run)
    scoped = namespaced(settings, env)
    port = TEST_WEB_PORT + 5
    log = settings.logs_dir / f"worker-kill-{run}.log"
    worker = start_worker(port, log, env=env)
    try:
        worker.wait_ready(120)
        worker.wait_log("[^Worker]: Ready", 120)
        ids = []
        for sample in generate_sample_batch():
            response = requests.post(worker.base_url + "/api/images/upload",
                                     headers={"X-API-Key": API_KEY},
                                     data={"seller_id": "kill", "sku_id": sample.name[:-4]},
                                     files={"file": (sample.name, sample.data)}, timeout=60)
            assert response.status_code in (200, 201), response.text
            ids.append(response.json()["image_id"])

        def completed() -> int:
            marks = ", ".join(["%s"] * len(ids))
            return run_query(scoped, f"SELECT COUNT(*) AS n FROM product_images WHERE image_id IN"
                                  f" ({marks}) AND status IN ('completed', 'skipped')",
                          ids)[0]["n"]

        wait_for(lambda: completed() >= 2, 120)
        assert completed() < len(ids), "the batch finished before the kill; nothing tested"
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(10)

        worker = start_worker(port, log, env=env)
        worker.wait_ready(120)
        wait_for(lambda: completed() == len(ids), 240)
        marks = ", ".join(["%s"] * len(ids))
        jobs = run_query(scoped, f"SELECT image_id, COUNT(*) AS n FROM enhancement_jobs WHERE "
                              f"image_id IN ({marks}) GROUP BY image_id", ids)
        assert len(jobs) == len(ids) and {j["n"] for j in jobs} == {1}
        dup_steps = run_query(scoped, "SELECT job_id, step_order, COUNT(*) AS n FROM "
                                   "processing_steps GROUP BY job_id, step_order HAVING n > 1")
        assert dup_steps == []
    finally:
        worker.stop()
        asyncio.run(_drop_namespace(scoped))
