"""The image, batch and statistics API over HTTP, on a worker of this module's own.

Its namespace on the real stack, its own Bedrock emulator (to count AI calls), a
profiles folder with ``premium`` beside ``default``, a batch window of one photo, and
uploader and admin keys. Seller photos are uploaded and processed once under the
default profile; the tests then read, page, filter, re-enhance, batch, cancel and delete
through the API, and every JSON answer is checked against ``schemas/openapi.json``.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import boto3
import pytest
import requests

from imaging.publishing import LEFT_OUT
from infra.namespace import namespace_env, namespaced
from infra.workers import start_worker
from profiles import load_profile
from tests.conftest import MEASURED, _drop_namespace, run_query
from tests.e2e.test_ai_budget import Emulator, ai_eligible_photos
from tests.openapi_check import check_response, documented_routes
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

WORKER_PORT = 16185
EMULATOR_PORT = 16186
ROOT = Path(__file__).resolve().parents[2]
SELLERS = Path("/work/shared/images/sellers") if not (ROOT.parent / "shared").exists() \
    else ROOT.parent / "shared" / "images" / "sellers"
UPLOADER, ADMIN = "api-uploader", "api-admin"
DEFAULT = load_profile("default")
PREMIUM = {"name": "premium", "version": "1.0.0-premium"}
PHOTOS = 9
#: A dress on a red sheet whose contrast step makes the gate refuse the result (a colour
#: cast); published without it (bench/outcome_bench.py, report half).
GATE_FALLBACK_PHOTO = "de478f22"


def write_premium(folder: Path) -> None:
    text = (ROOT / "profiles" / "default.toml").read_text()
    for old, new in {'name = "default"': f'name = "{PREMIUM["name"]}"',
                     f'version = "{DEFAULT.version}"': f'version = "{PREMIUM["version"]}"'
                     }.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (folder / "premium.toml").write_text(text)


def cdn_paths(settings) -> set[str]:
    """Every path the namespace's CloudFront distribution (moto) was asked to invalidate."""
    from services.cloudfront import CloudFront

    async def paths() -> set[str]:
        cloudfront = CloudFront(settings)
        found = set()
        for summary in await cloudfront.list_invalidations():
            full = await cloudfront.get_invalidation(summary["Id"])
            found.update(full["InvalidationBatch"]["Paths"].get("Items") or [])
        return found

    return asyncio.run(paths())


class Api:
    def __init__(self, base: str, settings, emulator: Emulator, worker, start) -> None:
        self.base, self.settings, self.emulator = base, settings, emulator
        self.worker, self._start = worker, start
        self.seller = f"api-{uuid.uuid4().hex[:6]}"
        self.ids: list[str] = []  # seller photos
        self.ai_ids: list[str] = []  # photos the default profile would enhance with AI
        self.fallback_id = ""  # a photo published without the step the gate blamed

    def call(self, method: str, path: str, key: str | None = ADMIN, check: bool = True,
             **kwargs) -> requests.Response:
        headers = {"X-API-Key": key} if key else {}
        response = requests.request(method, self.base + path, headers=headers, timeout=30,
                                    **kwargs)
        if check and response.headers.get("Content-Type", "").startswith("application/json"):
            check_response(method, path, response.status_code, response.json())
        return response

    def kill_and_restart(self) -> None:
        self.worker.stop(signal.SIGKILL)
        self.worker = self._start()
        self.worker.wait_ready(120)
        self.worker.wait_log("[^Worker]: Ready", 120)

    def query(self, sql: str, args=None) -> list[dict]:
        return run_query(self.settings, sql, args)

    def statuses(self, ids) -> dict[str, str]:
        marks = ", ".join(["%s"] * len(ids))
        return {r["image_id"]: r["status"] for r in self.query(
            f"SELECT image_id, status FROM product_images WHERE image_id IN ({marks})",
            tuple(ids))}

    def s3_keys(self, bucket: str, prefix: str) -> list[str]:
        client = boto3.client("s3", endpoint_url=self.settings.s3_endpoint,
                              aws_access_key_id=self.settings.s3_access_key,
                              aws_secret_access_key=self.settings.s3_secret_key,
                              region_name=self.settings.s3_region)
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def api(stack, tmp_path_factory):
    _, settings = stack
    run = uuid.uuid4().hex[:8]
    profiles = tmp_path_factory.mktemp("profiles")
    write_premium(profiles)
    env = {**namespace_env("api", run), "IMGSTREAM_PROFILES_DIR": str(profiles),
           "IMGSTREAM_BEDROCK_ENDPOINT": f"http://127.0.0.1:{EMULATOR_PORT}",
           "IMGSTREAM_API_KEYS": UPLOADER, "IMGSTREAM_ADMIN_KEYS": ADMIN,
           "IMGSTREAM_BATCH_WINDOW": "1", "IMGSTREAM_WEB_PORT": str(WORKER_PORT),
           # No AI money at first: every photo's first pass is local; a test raises it.
           "IMGSTREAM_BUDGET_DAILY_CAP_USD": "0"}
    scoped = namespaced(settings, env)
    emulator = Emulator(EMULATOR_PORT, settings.logs_dir / f"emulator-api-{run}.log", env)
    log = settings.logs_dir / f"worker-api-{run}.log"
    worker = start_worker(WORKER_PORT, log, env=env)
    client = None
    try:
        worker.wait_ready(120)
        worker.wait_log("[^Worker]: Ready", 120)
        client = Api(worker.base_url, scoped, emulator, worker,
                     lambda: start_worker(WORKER_PORT, log, env=env))
        photos = sorted(SELLERS.glob("*/*.jpg"))[:PHOTOS]
        for i, path in enumerate(photos):
            response = client.call("POST", "/api/images/upload", key=UPLOADER,
                                   data={"seller_id": client.seller, "sku_id": f"sku-{i}"},
                                   files={"file": (path.name, path.read_bytes())})
            assert response.status_code == 201, response.text
            client.ids.append(response.json()["image_id"])
        for i, data in enumerate(ai_eligible_photos(3, seed=23)):
            response = client.call("POST", "/api/images/upload", key=UPLOADER,
                                   data={"seller_id": client.seller, "sku_id": f"ai-{i}"},
                                   files={"file": (f"ai-{i}.jpg", data)})
            assert response.status_code == 201, response.text
            client.ai_ids.append(response.json()["image_id"])
        [fallback] = SELLERS.glob(f"*/{GATE_FALLBACK_PHOTO}*.jpg")
        response = client.call("POST", "/api/images/upload", key=UPLOADER,
                               # another seller: the batch and stats tests count this one's
                               data={"seller_id": f"{client.seller}-gate", "sku_id": "fallback"},
                               files={"file": (fallback.name, fallback.read_bytes())})
        assert response.status_code == 201, response.text
        client.fallback_id = response.json()["image_id"]
        everything = client.ids + client.ai_ids + [client.fallback_id]
        wait_for(lambda: all(s in ("completed", "skipped")
                             for s in client.statuses(everything).values()), 240)
        yield client
    finally:
        (client.worker if client else worker).stop()
        emulator.stop()
        asyncio.run(_drop_namespace(scoped))


def test_the_worker_serves_the_openapi_document_of_schemas(api):
    served = api.call("GET", "/api/openapi.json", key=None, check=False).json()
    assert served["paths"].keys() == {p for _, p in documented_routes()}


def test_one_photo_its_reports_steps_and_renditions_that_open(api):
    image_id = api.ids[0]
    doc = api.call("GET", f"/api/images/{image_id}", key=UPLOADER).json()
    assert doc["status"] in ("completed", "skipped") and doc["seller_id"] == api.seller
    assert doc["quality"]["before"]["profile"] == DEFAULT.ref
    assert doc["job"]["profile"] == DEFAULT.ref and doc["history"][0]["job_id"] == \
        doc["job"]["job_id"]
    assert {(r["name"], r["format"]) for r in doc["renditions"]} == {
        ("large", "jpeg"), ("large", "webp"), ("thumb", "jpeg"), ("thumb", "webp")}
    stored = api.s3_keys(api.settings.enhanced_bucket, f"enhanced/{image_id}/current-")
    for rendition in doc["renditions"]:
        opened = requests.get(rendition["url"], timeout=10)  # no key: the link is signed
        assert opened.status_code == 200, rendition["url"]
        assert opened.headers["Content-Type"] == f"image/{rendition['format']}"
        assert len(opened.content) == rendition["bytes"]
        assert rendition["cdn_url"].endswith(rendition["url"].split("/renditions/")[1]
                                             .split("?")[0].replace("large", "current-large")
                                             .replace("thumb", "current-thumb"))
    assert len(stored) == 4
    original = requests.get(doc["original"]["url"], timeout=10)
    assert original.status_code == 200 and len(original.content) == doc["original"]["bytes"]
    tampered = doc["original"]["url"].replace("sig=", "sig=0")
    assert requests.get(tampered, timeout=10).status_code == 401
    quality = api.call("GET", f"/api/images/{image_id}/quality", key=UPLOADER).json()
    assert quality["before"] == doc["quality"]["before"]


def test_a_result_the_gate_refused_is_published_without_the_step_it_blamed(api):
    doc = api.call("GET", f"/api/images/{api.fallback_id}", key=UPLOADER).json()
    job = doc["job"]
    assert doc["status"] == "completed" and job["kept_original"] is False
    left_out = [s for s in job["steps"] if (s["details"] or "").startswith(LEFT_OUT)]
    assert [s["operation"] for s in left_out] == ["contrast"]
    assert "content gate refused it" in left_out[0]["details"]
    assert all(s["success"] for s in job["steps"])


def test_bad_ids_unknown_photos_and_roles(api):
    unknown = "f" * 32
    assert api.call("GET", "/api/images/NOT-AN-ID").status_code == 400
    assert api.call("GET", f"/api/images/{unknown}").status_code == 404
    assert api.call("GET", f"/api/images/{unknown}/quality").status_code == 404
    assert api.call("DELETE", f"/api/images/{unknown}").status_code == 404
    assert api.call("POST", f"/api/images/{unknown}/enhance").status_code == 404
    assert api.call("GET", f"/api/batch/{unknown}/status").status_code == 404
    assert api.call("GET", "/api/batch/nope/status").status_code == 400
    image_id = api.ids[0]
    reads = [("GET", "/api/images"), ("GET", f"/api/images/{image_id}"),
             ("GET", f"/api/images/{image_id}/quality"),
             ("GET", f"/api/images/{image_id}/original")]
    admin_only = [("GET", "/api/stats/usage"), ("GET", "/api/stats/quality"),
                  ("GET", "/api/stats/costs"), ("GET", "/api/pipeline"),
                  ("POST", f"/api/images/{image_id}/enhance"),
                  ("DELETE", f"/api/images/{image_id}"), ("POST", "/api/batch/enhance"),
                  ("GET", f"/api/batch/{'0' * 32}/status")]
    for method, path in reads + admin_only:
        response = api.call(method, path, key=None)
        assert response.status_code == 401, (method, path)
        assert response.json()["error"] == "unauthorized"
    for method, path in reads:
        assert api.call(method, path, key=UPLOADER).status_code == 200, (method, path)
    for method, path in admin_only:
        assert api.call(method, path, key=UPLOADER).status_code == 401, (method, path)
    for path in ("/api/health", "/api/health/bedrock", "/api/health/storage"):
        assert api.call("GET", path, key=None).status_code == 200, path


def test_the_list_filters_and_pages_without_gaps_or_repeats(api):
    seen, cursor, pages = [], None, 0
    while True:
        query = {"seller_id": api.seller, "limit": "4", **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", "/api/images", key=UPLOADER, params=query).json()
        seen += [item["image_id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(api.ids + api.ai_ids) and len(seen) == len(set(seen))
    assert pages == 3
    everything = api.call("GET", "/api/images", params={"seller_id": api.seller,
                                                        "limit": "200"}).json()["items"]
    tiers = {item["image_id"]: (item["after"] or item["before"])["tier"] for item in everything}
    for tier in set(tiers.values()):
        found = api.call("GET", "/api/images", params={"seller_id": api.seller,
                                                       "tier": tier}).json()["items"]
        assert {i["image_id"] for i in found} == {k for k, v in tiers.items() if v == tier}
    future = api.call("GET", "/api/images", params={"since": "2099-01-01T00:00:00Z"}).json()
    assert future["items"] == [] and future["next_cursor"] is None
    for bad in ({"tier": "great"}, {"status": "done"}, {"since": "yesterday"},
                {"cursor": "garbage!"}, {"limit": "0"}, {"colour": "red"}):
        response = api.call("GET", "/api/images", params=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"] == "bad_request" and response.json()["message"]


def test_enhance_is_idempotent_refuses_while_in_flight_and_adds_history(api):
    image_id = api.ids[1]
    done = api.call("POST", f"/api/images/{image_id}/enhance")
    assert done.status_code == 200 and done.json()["status"] in ("completed", "skipped")
    assert api.call("POST", f"/api/images/{image_id}/enhance",
                    json={"profile": "no-such-profile"}).status_code == 400
    assert api.call("POST", f"/api/images/{image_id}/enhance",
                    json={"colour": "red"}).status_code == 400
    first = api.call("POST", f"/api/images/{image_id}/enhance", json={"profile": "premium"})
    assert first.status_code == 202, first.text
    second = api.call("POST", f"/api/images/{image_id}/enhance", json={"profile": "premium"})
    assert second.status_code == 409, second.text
    job_id = first.json()["job_id"]
    wait_for(lambda: api.query("SELECT 1 FROM enhancement_jobs WHERE job_id = %s",
                               (job_id,)), 120)
    doc = api.call("GET", f"/api/images/{image_id}").json()
    assert {h["profile"]["name"] for h in doc["history"]} == {"default", "premium"}
    assert doc["job"]["job_id"] == job_id
    again = api.call("POST", f"/api/images/{image_id}/enhance", json={"profile": "premium"})
    assert again.status_code == 200 and again.json()["job_id"] == job_id


def test_a_batch_runs_to_the_end_with_results_and_progress(api):
    ids = api.ids[2:5]
    created = api.call("POST", "/api/batch/enhance",
                       json={"image_ids": ids, "profile": "premium"})
    assert created.status_code == 202, created.text
    batch_id = created.json()["batch_id"]
    assert created.json()["total"] == 3

    def finished():
        status = api.call("GET", f"/api/batch/{batch_id}/status").json()
        return status if status["state"] == "completed" else None

    status = wait_for(finished, 180)
    assert status["progress"] == 1.0 and status["counts"]["completed"] + \
        status["counts"]["skipped"] == 3
    first = api.call("GET", f"/api/batch/{batch_id}/results", params={"limit": "2"}).json()
    rest = api.call("GET", f"/api/batch/{batch_id}/results",
                    params={"limit": "2", "cursor": first["next_cursor"]}).json()
    items = first["items"] + rest["items"]
    assert [i["image_id"] for i in items] == ids and rest["next_cursor"] is None
    assert all(i["large_url"] and requests.get(i["large_url"], timeout=10).ok for i in items)
    for bad in ({"image_ids": []}, {"image_ids": ["f" * 32]}, {"filter": {}},
                {"image_ids": ids, "filter": {"seller_id": "x"}}, {"profile": "premium"},
                {"filter": {"seller_id": "nobody-has-this"}}):
        assert api.call("POST", "/api/batch/enhance", json=bad).status_code == 400, bad


def test_a_cancelled_batch_sends_nothing_more_and_pays_nothing_more(api):
    received_before = api.emulator.stats()["totals"]["received"]
    created = api.call("POST", "/api/batch/enhance",
                       json={"filter": {"seller_id": api.seller}, "profile": "premium"})
    batch_id = created.json()["batch_id"]

    def started():
        counts = api.call("GET", f"/api/batch/{batch_id}/status").json()["counts"]
        return counts["in_flight"] + counts["completed"] + counts["skipped"]

    wait_for(started, 30, interval=0.05)  # cancel once the first photo is on its way
    cancelled = api.call("POST", f"/api/batch/{batch_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"

    def settled():
        status = api.call("GET", f"/api/batch/{batch_id}/status").json()
        return status if not status["counts"]["in_flight"] else None

    status = wait_for(settled, 120)
    counts = status["counts"]
    assert counts["cancelled"] >= len(api.ids) - 3, counts  # the window is one photo
    assert counts["completed"] + counts["skipped"] >= 1, counts  # started ones finish
    results = api.call("GET", f"/api/batch/{batch_id}/results",
                       params={"limit": "200"}).json()["items"]
    # Photos never enhanced under premium before this batch, and cancelled in it:
    fresh = [i["image_id"] for i in results
             if i["state"] == "cancelled" and i["image_id"] in api.ids[5:]]
    assert fresh
    marks = ", ".join(["%s"] * len(fresh))
    assert api.query(f"SELECT image_id FROM quality_metrics WHERE profile_name = 'premium'"
                     f" AND image_id IN ({marks})", tuple(fresh)) == []
    assert api.query(f"SELECT job_id FROM enhancement_jobs WHERE profile_name = 'premium'"
                     f" AND image_id IN ({marks})", tuple(fresh)) == []
    # Every Bedrock call since the batch began belongs to a photo that was sent.
    received = api.emulator.stats()["totals"]["received"] - received_before
    attempts = api.query(
        "SELECT COALESCE(SUM(u.attempts), 0) AS n FROM ai_usage_logs u JOIN enhance_requests r"
        " ON r.job_id = u.job_id AND r.batch_id = %s WHERE r.state = 'sent'",
        (batch_id,))[0]["n"]
    assert received == attempts
    MEASURED["batch cancel"] = (f"{counts['cancelled']} of {status['total']} photos "
                                f"cancelled, {received} AI calls after the batch began")


def test_a_cancelled_batch_pays_only_for_the_photo_already_sent(api):
    """AI photos whose first pass had no budget: under premium with money, each one sent
    calls Bedrock; after the cancel, the photos not sent are never assessed or paid."""
    assert api.query("SELECT COUNT(*) AS n FROM ai_usage_logs")[0]["n"] == 0
    assert api.call("PUT", "/api/budget/caps", json={"daily_cap_usd": 5.0}).status_code == 202
    wait_for(lambda: api.call("GET", "/api/stats/costs").json()["cap_usd"] == 5.0, 30)
    received_before = api.emulator.stats()["totals"]["received"]
    created = api.call("POST", "/api/batch/enhance",
                       json={"image_ids": api.ai_ids, "profile": "premium"})
    batch_id = created.json()["batch_id"]

    def started():
        counts = api.call("GET", f"/api/batch/{batch_id}/status").json()["counts"]
        return counts["in_flight"] + counts["completed"] + counts["skipped"]

    wait_for(started, 30, interval=0.05)
    assert api.call("POST", f"/api/batch/{batch_id}/cancel").status_code == 200
    status = wait_for(lambda: (lambda s: s if not s["counts"]["in_flight"] else None)(
        api.call("GET", f"/api/batch/{batch_id}/status").json()), 180)
    results = api.call("GET", f"/api/batch/{batch_id}/results").json()["items"]
    sent = [i["image_id"] for i in results if i["state"] != "cancelled"]
    never = [i["image_id"] for i in results if i["state"] == "cancelled"]
    assert len(sent) == 1 and len(never) == 2, results  # the window is one photo
    received = api.emulator.stats()["totals"]["received"] - received_before
    paid = api.query("SELECT u.image_id, u.attempts, u.cost_usd FROM ai_usage_logs u"
                     " JOIN enhancement_jobs j ON j.job_id = u.job_id"
                     " WHERE j.profile_name = 'premium'")
    assert received >= 1 and received == sum(r["attempts"] for r in paid)
    assert {r["image_id"] for r in paid} == set(sent)
    marks = ", ".join(["%s"] * len(never))
    assert api.query(f"SELECT 1 FROM quality_metrics WHERE profile_name = 'premium' AND"
                     f" image_id IN ({marks})", tuple(never)) == []
    assert status["spend_usd"] == pytest.approx(float(sum(r["cost_usd"] for r in paid)))
    MEASURED["batch cancel with AI"] = (f"1 photo sent ({received} Bedrock calls, "
                                        f"${status['spend_usd']:.2f}), 2 cancelled: 0 calls")
    api.call("PUT", "/api/budget/caps", json={"daily_cap_usd": 0.0})


def test_a_batch_survives_its_worker_being_killed(api):
    ids = api.ids[5:8]  # never enhanced under premium (their batch was cancelled)
    created = api.call("POST", "/api/batch/enhance", json={"image_ids": ids,
                                                           "profile": "premium"})
    batch_id = created.json()["batch_id"]
    api.kill_and_restart()
    status = wait_for(lambda: (lambda s: s if s["state"] == "completed" else None)(
        api.call("GET", f"/api/batch/{batch_id}/status").json()), 180)
    assert status["counts"]["completed"] + status["counts"]["skipped"] == 3, status
    done = api.query("SELECT image_id FROM enhancement_jobs WHERE profile_name = 'premium'"
                     " AND image_id IN (%s, %s, %s)", tuple(ids))
    assert {r["image_id"] for r in done} == set(ids)


def test_delete_removes_objects_rows_and_aliases_and_a_reupload_works(api):
    image_id = api.ids[0]
    doc = api.call("GET", f"/api/images/{image_id}").json()
    sha = api.query("SELECT content_sha256 FROM product_images WHERE image_id = %s",
                    (image_id,))[0]["content_sha256"]
    assert api.s3_keys(api.settings.enhanced_bucket, f"enhanced/{image_id}/")
    deleted = api.call("DELETE", f"/api/images/{image_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"]["objects"] >= 9  # 8 renditions + the original
    assert api.s3_keys(api.settings.enhanced_bucket, f"enhanced/{image_id}/") == []
    assert api.s3_keys(api.settings.originals_bucket, f"originals/{sha[:2]}/{sha}") == []
    for table in ("product_images", "quality_metrics", "enhancement_jobs"):
        assert api.query(f"SELECT 1 FROM {table} WHERE image_id = %s", (image_id,)) == []
    assert api.call("GET", f"/api/images/{image_id}").status_code == 404
    assert requests.get(doc["renditions"][0]["url"], timeout=10).status_code == 404
    assert api.query("SELECT 1 FROM deleted_images WHERE image_id = %s", (image_id,))
    assert f"/enhanced/{image_id}/*" in cdn_paths(api.settings)  # invalidated on the CDN

    original = requests.get(doc["original"]["url"], timeout=10)
    assert original.status_code == 404
    path = sorted(SELLERS.glob("*/*.jpg"))[0]
    again = api.call("POST", "/api/images/upload", key=UPLOADER,
                     data={"seller_id": api.seller, "sku_id": "sku-0"},
                     files={"file": (path.name, path.read_bytes())})
    assert again.status_code == 201 and again.json()["image_id"] == image_id
    wait_for(lambda: api.statuses([image_id]).get(image_id) in ("completed", "skipped"), 120)
    assert len(api.s3_keys(api.settings.enhanced_bucket, f"enhanced/{image_id}/current-")) == 4


def test_statistics_and_pipeline_views(api):
    usage = api.call("GET", "/api/stats/usage", params={"days": "2"}).json()
    logged = api.query("SELECT COUNT(*) AS n FROM ai_usage_logs")[0]["n"]
    assert usage["totals"]["calls"] == logged
    quality = api.call("GET", "/api/stats/quality", params={"seller_id": api.seller}).json()
    assert quality["photos"] == len(api.ids) + len(api.ai_ids)
    assert sum(quality["tiers"]["before"].values()) == quality["photos"]
    assert api.call("GET", "/api/stats/usage", params={"days": "0"}).status_code == 400
    pipeline = api.call("GET", "/api/pipeline").json()
    assert {"assess", "route", "finalize", "mysql_sink"} <= {a["name"] for a in
                                                             pipeline["agents"]}
    costs = api.call("GET", "/api/stats/costs").json()
    assert costs["day"]
