"""Outages of the database and the object store in the middle of a batch: every photo
completes exactly once, none ends ``failed``, nothing is dead-lettered for being down.

One worker whose MariaDB and S3 connections go through TCP proxies the test cuts: 30 s
without the database, then 10 s without the object store, while 32 photos are in the
pipeline. The stages wait the outages out (retrying with bounded backoff) and go on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from urllib.parse import urlsplit

import pytest

from imaging.samples import generate_sample_batch
from infra.namespace import namespace_env, namespaced
from infra.workers import start_worker
from tests.conftest import MEASURED, _drop_namespace, run_query
from tests.e2e.test_ai_budget import completed_count, upload_all
from tests.polling import wait_for
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

WORKER_PORT = 16179


def _statuses(settings, ids: list[str]) -> dict[str, int]:
    marks = ", ".join(["%s"] * len(ids))
    rows = run_query(settings, f"SELECT status, COUNT(*) AS n FROM product_images WHERE"
                               f" image_id IN ({marks}) GROUP BY status", ids)
    return {row["status"]: row["n"] for row in rows}


def test_database_and_object_store_outages_are_waited_out(stack):
    _, settings = stack
    run = uuid.uuid4().hex[:8]
    s3 = urlsplit(settings.s3_endpoint)
    db_proxy, s3_proxy = TcpProxy(settings.db_host, settings.db_port), TcpProxy(s3.hostname,
                                                                               s3.port)
    env = {**namespace_env("outage", run),
           "IMGSTREAM_DB_PORT": str(db_proxy.start()),
           "IMGSTREAM_S3_ENDPOINT": f"http://127.0.0.1:{s3_proxy.start()}"}
    scoped = namespaced(settings, env)
    worker = start_worker(WORKER_PORT, settings.logs_dir / f"worker-outage-{run}.log", env=env)
    photos = [s.data for s in generate_sample_batch(seed=61, count=32)]
    try:
        worker.wait_ready(120)
        worker.wait_log("[^Worker]: Ready", 120)
        ids = upload_all(worker.base_url, photos, f"outage-{run}")
        db_proxy.cut()
        done_at_cut = completed_count(scoped, ids)
        time.sleep(30)
        s3_proxy.cut()  # the object store goes as the database comes back
        db_proxy.restore()
        time.sleep(10)
        done_after_db = completed_count(scoped, ids)
        s3_proxy.restore()
        started = time.monotonic()
        try:
            wait_for(lambda: completed_count(scoped, ids) == len(ids), 600)
        except AssertionError:
            raise AssertionError(f"statuses {_statuses(scoped, ids)}") from None
        recovered = time.monotonic() - started
    finally:
        worker.stop()
        db_proxy.stop()
        s3_proxy.stop()
    try:
        assert done_at_cut < len(ids), "the outage must hit photos in flight"
        assert "failed" not in _statuses(scoped, ids)
        letters = run_query(scoped, "SELECT stage, error_class, COUNT(*) AS n FROM"
                                    " dead_letters GROUP BY stage, error_class")
        assert letters == [], letters
        jobs = run_query(scoped, "SELECT COUNT(*) AS n, COUNT(DISTINCT image_id) AS d FROM"
                                 " enhancement_jobs")[0]
        assert jobs["n"] == jobs["d"] == len(ids)  # each photo completed exactly once
        MEASURED["outages: 30 s database, then 10 s object store, 32 photos"] = (
            f"{len(ids) - done_at_cut} in flight at the cut ({done_after_db} done before the "
            f"store came back); all completed once, none failed, no dead letters; the last "
            f"{recovered:.0f} s after the store came back")
    finally:
        asyncio.run(_drop_namespace(scoped))
