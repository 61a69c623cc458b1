"""POST /api/images/upload on a real worker, with the real broker, MariaDB and S3 server."""

from __future__ import annotations

import json

import boto3
import pytest
import requests

import schemas
from streams.records import SCHEMA_VERSION
from tests import hostile_files as hf
from tests.conftest import API_KEY

pytestmark = pytest.mark.integration


def upload(worker, data: bytes, filename: str = "photo.jpg", content_type: str | None = None,
           api_key: str | None = API_KEY, **fields) -> requests.Response:
    form = {"seller_id": "seller-1", "sku_id": "SKU-1", "product_group_id": "grp-1"}
    form.update(fields)
    form = {k: v for k, v in form.items() if v is not None}
    file_tuple = (filename, data, content_type) if content_type else (filename, data)
    headers = {"X-API-Key": api_key} if api_key else {}
    return requests.post(worker.base_url + "/api/images/upload", data=form,
                         files={"file": file_tuple}, headers=headers, timeout=30)


@pytest.fixture()
def s3(stack):
    _, settings = stack
    client = boto3.client("s3", endpoint_url=settings.s3_endpoint,
                          aws_access_key_id=settings.s3_access_key,
                          aws_secret_access_key=settings.s3_secret_key,
                          region_name=settings.s3_region)

    def keys() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=settings.originals_bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    client.object_keys = keys
    return client


def _uploaded_events(topic_reader, image_id: str, expect: int = 1) -> list[dict]:
    return [json.loads(m["value"]) for m in topic_reader("uploaded", expect=expect)
            if m["key"] == image_id.encode()]


def test_upload_stores_records_and_emits(worker, stack, s3, db_query, topic_reader):
    _, settings = stack
    data = hf.photo(800, 600, seed=11)
    response = upload(worker, data, sku_id="SKU-new")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["duplicate"] is False and body["status"] == "uploaded"
    assert (body["width"], body["height"], body["format"]) == (800, 600, "jpeg")

    key = body["original_uri"].split("/", 3)[3]
    stored = s3.get_object(Bucket=settings.originals_bucket, Key=key)
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "image/jpeg"

    [row] = db_query("SELECT * FROM product_images WHERE image_id = %s", (body["image_id"],))
    assert (row["seller_id"], row["sku_id"], row["product_group_id"]) == (
        "seller-1", "SKU-new", "grp-1")
    assert row["status"] == "uploaded" and row["content_sha256"] == body["content_sha256"]

    [event] = _uploaded_events(topic_reader, body["image_id"])
    schemas.validate_event("image_uploaded", event)
    assert event["original_uri"] == body["original_uri"]
    assert event["size_bytes"] == len(data)


def test_same_bytes_twice_make_one_object(worker, s3, db_query):
    data = hf.photo(500, 400, seed=12)
    first = upload(worker, data, sku_id="SKU-dup")
    second = upload(worker, data, sku_id="SKU-dup")
    other_listing = upload(worker, data, sku_id="SKU-dup-2")
    assert (first.status_code, second.status_code, other_listing.status_code) == (201, 200, 201)
    assert second.json()["duplicate"] is True
    assert first.json()["image_id"] == second.json()["image_id"]
    assert other_listing.json()["image_id"] != first.json()["image_id"]
    sha = first.json()["content_sha256"]
    assert [k for k in s3.object_keys() if sha in k] == [f"originals/{sha[:2]}/{sha}.jpg"]
    rows = db_query("SELECT image_id FROM product_images WHERE content_sha256 = %s", (sha,))
    assert len(rows) == 2  # two listings share one stored object


def test_exif_orientation_is_recorded(worker, topic_reader):
    response = upload(worker, hf.photo(320, 200, seed=13, exif_orientation=6), sku_id="SKU-rot")
    assert response.status_code == 201
    assert (response.json()["width"], response.json()["height"]) == (200, 320)
    [event] = _uploaded_events(topic_reader, response.json()["image_id"])
    assert event["orientation"] == 6


BAD_UPLOADS = [
    ("empty", dict(data=b""), 400, "empty_file"),
    ("text renamed .jpg", dict(data=hf.text_as_jpg()), 415, "not_an_image"),
    ("truncated jpeg", dict(data=hf.truncated_jpeg()), 422, "corrupt_image"),
    ("png bomb 50000x50000", dict(data=hf.png_bomb_header(), filename="bomb.png"), 413,
     "image_too_large"),
    ("gif", dict(data=hf.gif(), filename="a.gif"), 415, "unsupported_format"),
    ("over byte limit", dict(data=b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024)), 413,
     "file_too_large"),
    ("missing seller_id", dict(data=hf.photo(seed=15), seller_id=None), 400, "missing_field"),
    ("control character in sku_id", dict(data=hf.photo(seed=15), sku_id="SKU\x071"), 400,
     "invalid_field"),
    ("sku_id of 129 characters", dict(data=hf.photo(seed=15), sku_id="ü" * 129), 400,
     "invalid_field"),
    ("seller_id not UTF-8", dict(data=hf.photo(seed=15), seller_id="Müller".encode("latin-1")),
     400, "invalid_field"),
    ("wrong api key", dict(data=hf.photo(seed=16), api_key="wrong"), 401, "unauthorized"),
    ("no api key", dict(data=hf.photo(seed=17), api_key=None), 401, "unauthorized"),
]


def test_a_good_photo_gets_in_whatever_its_name_or_declared_type(worker, db_query):
    response = upload(worker, hf.photo(seed=14), filename="../../etc/pass..wd.jpg",
                      content_type="image/png", sku_id="SKU-odd-name")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["notes"] == ["type_mismatch: sent as PNG, the content is JPEG"]
    [row] = db_query("SELECT filename FROM product_images WHERE image_id = %s",
                     (body["image_id"],))
    assert row["filename"] == "pass..wd.jpg"


@pytest.mark.parametrize("kwargs,status,code", [b[1:] for b in BAD_UPLOADS],
                         ids=[b[0] for b in BAD_UPLOADS])
def test_bad_uploads_are_refused_and_leave_nothing(worker, s3, db_query, topic_reader,
                                                   kwargs, status, code):
    objects_before = set(s3.object_keys())
    rows_before = db_query("SELECT COUNT(*) AS n FROM product_images")[0]["n"]
    events_before = len(topic_reader("uploaded"))

    response = upload(worker, **kwargs)

    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and len(body["reason"]) > 10
    assert set(s3.object_keys()) == objects_before
    assert db_query("SELECT COUNT(*) AS n FROM product_images")[0]["n"] == rows_before
    assert len(topic_reader("uploaded")) == events_before


def test_health_and_metrics(worker):
    health = requests.get(worker.base_url + "/api/health", timeout=10).json()
    assert health == {"status": "ok", "checks": {"database": "ok", "object_store": "ok",
                                                 "broker": "ok", "tables": "ok",
                                                 "agents": "ok"}}
    upload(worker, hf.photo(seed=19), sku_id="SKU-metrics")
    upload(worker, b"", sku_id="SKU-metrics")
    text = requests.get(worker.base_url + "/metrics", timeout=10).text
    assert 'imgstream_uploads_total{code="ok",outcome="created"}' in text
    assert 'imgstream_uploads_total{code="empty_file",outcome="rejected"}' in text
    assert "imgstream_upload_seconds_bucket" in text
    assert 'imgstream_events_emitted_total{event_type="ImageUploaded"}' in text
    assert 'imgstream_consumer_lag{topic="' in text


def _post_raw(worker, body: bytes, content_type: str) -> requests.Response:
    return requests.post(worker.base_url + "/api/images/upload", data=body, timeout=30,
                         headers={"X-API-Key": API_KEY, "Content-Type": content_type})


@pytest.mark.parametrize("body, content_type", [
    (b"whatever", "multipart/form-data"),  # no boundary
    (b"garbage that is not multipart at all", "multipart/form-data; boundary=xyz"),
    (b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"
     b"\xff\xd8\xff\xe0 truncated, no closing boundary", "multipart/form-data; boundary=xyz"),
    (b"--xyz\r\nno headers end here", "multipart/form-data; boundary=xyz"),
], ids=["no-boundary", "garbage", "truncated", "broken-part-headers"])
def test_malformed_multipart_is_a_counted_4xx(worker, s3, body, content_type):
    before = set(s3.object_keys())
    response = _post_raw(worker, body, content_type)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.json()["error"] in {"malformed_multipart", "missing_file",
                                        "missing_field"}
    assert set(s3.object_keys()) == before
    metrics = requests.get(worker.base_url + "/metrics", timeout=10).text
    assert 'imgstream_uploads_total{code="' in metrics


def test_a_client_gone_mid_upload_leaves_nothing_and_the_api_goes_on(worker, s3):
    import socket
    from urllib.parse import urlsplit

    before = set(s3.object_keys())
    url = urlsplit(worker.base_url)
    head = (f"POST /api/images/upload HTTP/1.1\r\nHost: {url.hostname}\r\n"
            f"X-API-Key: {API_KEY}\r\nContent-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: 500000\r\n\r\n").encode()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head + b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; "
                            b"filename=\"a.jpg\"\r\n\r\n" + b"\xff" * 10_000)
    response = upload(worker, hf.photo(320, 240, seed=41), sku_id="after-abort")
    assert response.status_code == 201, response.text
    assert set(s3.object_keys()) - before == {response.json()["original_uri"].split("/", 3)[3]}


def test_a_burst_of_uploads_from_one_key_gets_429_with_retry_after(worker, stack):
    from concurrent.futures import ThreadPoolExecutor

    _, settings = stack
    count = settings.upload_burst + 180

    def post(_):
        return requests.post(worker.base_url + "/api/images/upload", data=b"x", timeout=30,
                             headers={"X-API-Key": "test-key-2",
                                      "Content-Type": "multipart/form-data; boundary=b"})

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(post, range(count)))
    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses][:20]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert all(r.status_code in (400, 429) for r in responses)
    # Another key is not held back by this one.
    assert upload(worker, hf.photo(320, 240, seed=43), sku_id="other-key").status_code == 201


def test_identical_concurrent_uploads_make_one_event(worker, topic_reader, db_query):
    from concurrent.futures import ThreadPoolExecutor

    data = hf.photo(400, 300, seed=47)
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: upload(worker, data, sku_id="SKU-burst"),
                                  range(20)))
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    image_id = responses[0].json()["image_id"]
    assert len(_uploaded_events(topic_reader, image_id)) == 1
    assert db_query("SELECT COUNT(*) AS n FROM product_images WHERE image_id = %s",
                    (image_id,))[0]["n"] == 1


def test_re_uploading_a_failed_photo_drives_it_again(worker, topic_reader, db_query, stack):
    _, settings = stack
    data = hf.photo(400, 300, seed=53)
    first = upload(worker, data, sku_id="SKU-retry")
    image_id = first.json()["image_id"]
    from tests.integration.test_assess_agent import _wait_events

    _wait_events(topic_reader, "assessed", lambda e: e["image_id"] == image_id, 1)
    from tests.conftest import run_query

    run_query(settings, "UPDATE product_images SET status = 'failed', last_error = 'x' "
                        "WHERE image_id = %s", (image_id,))
    again = upload(worker, data, sku_id="SKU-retry")
    assert again.status_code == 200 and again.json()["status"] == "uploaded"
    assert len(_uploaded_events(topic_reader, image_id, expect=2)) == 2


def test_an_operator_retries_a_failed_photo_over_the_api_and_the_cli(worker, topic_reader,
                                                                     stack):
    import subprocess
    import sys

    from tests.conftest import ADMIN_KEY, run_query
    from tests.integration.test_assess_agent import _wait_events

    _, settings = stack
    image_id = upload(worker, hf.photo(400, 300, seed=59), sku_id="SKU-op-retry").json()[
        "image_id"]
    _wait_events(topic_reader, "assessed", lambda e: e["image_id"] == image_id, 1)
    url = f"{worker.base_url}/api/images/{image_id}/retry"
    assert requests.post(url, headers={"X-API-Key": API_KEY}, timeout=10).status_code == 401
    not_failed = requests.post(url, headers={"X-API-Key": ADMIN_KEY}, timeout=10)
    assert not_failed.status_code == 409 and "not failed" in not_failed.json()["reason"]
    missing = requests.post(f"{worker.base_url}/api/images/{'0' * 32}/retry",
                            headers={"X-API-Key": ADMIN_KEY}, timeout=10)
    assert missing.status_code == 404

    def fail_it():
        run_query(settings, "UPDATE product_images SET status = 'failed', last_error = 'x' "
                            "WHERE image_id = %s", (image_id,))

    fail_it()
    retried = requests.post(url, headers={"X-API-Key": ADMIN_KEY}, timeout=10)
    assert retried.status_code == 202, retried.text
    assert len(_uploaded_events(topic_reader, image_id, expect=2)) == 2
    _wait_events(topic_reader, "assessed", lambda e: e["image_id"] == image_id, 2)

    fail_it()
    cli = subprocess.run([sys.executable, "-m", "streams.cli", "retry", image_id,
                          "--api", worker.base_url], capture_output=True, text=True,
                         timeout=60)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "driven again" in cli.stdout
    assert len(_uploaded_events(topic_reader, image_id, expect=3)) == 3


def test_catalogue_ids_with_spaces_slashes_and_accents_are_keyed_safely(worker, stack,
                                                                         db_query,
                                                                         topic_reader):
    """Ids as catalogues have them get in; events, rows and paths use their keys."""
    import unicodedata
    from urllib.parse import urlsplit

    from streams.identity import parse_catalogue_id
    from tests.conftest import ADMIN_KEY, run_query
    from tests.integration.test_assess_agent import _wait_events
    from tests.polling import wait_for

    _, settings = stack
    seller, sku, group = "Müller & Söhne GmbH", "Tasse 0,5 l / blau ☕", "../../Küche"
    keys = {name: parse_catalogue_id(value).key
            for name, value in (("seller", seller), ("sku", sku), ("group", group))}
    data = hf.photo(640, 480, seed=61)
    response = upload(worker, data, seller_id=unicodedata.normalize("NFD", seller),
                      sku_id=sku, product_group_id=group)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["seller_id"], body["sku_id"], body["product_group_id"]) == (
        keys["seller"], keys["sku"], keys["group"])
    assert (body["seller_label"], body["sku_label"], body["product_group_label"]) == (
        seller, sku, group)
    image_id = body["image_id"]

    [row] = db_query("SELECT seller_id, sku_id, product_group_id, seller_label, sku_label,"
                     " product_group_label FROM product_images WHERE image_id = %s",
                     (image_id,))
    assert row == {"seller_id": keys["seller"], "sku_id": keys["sku"],
                   "product_group_id": keys["group"], "seller_label": seller,
                   "sku_label": sku, "product_group_label": group}

    [event] = _uploaded_events(topic_reader, image_id)
    schemas.validate_event("image_uploaded", event)
    assert event["schema_version"] == SCHEMA_VERSION
    assert (event["seller_id"], event["seller_label"]) == (keys["seller"], seller)
    assert (event["sku_id"], event["sku_label"]) == (keys["sku"], sku)
    assert (event["product_group_id"], event["product_group_label"]) == (keys["group"], group)

    # The same photo under the same ids, spelt in NFC this time: the same listing photo.
    again = upload(worker, data, seller_id=seller, sku_id=sku, product_group_id=group)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["image_id"] == image_id

    completed = _wait_events(topic_reader, "completed",
                             lambda e: e["image_id"] == image_id, 1, timeout=240)[0]
    schemas.validate_event("image_completed", completed)
    assert (completed["seller_label"], completed["sku_label"]) == (seller, sku)
    aliases = [o for o in completed["outputs"] if o["alias"]]
    assert aliases
    for output in completed["outputs"]:
        key = output["uri"].split("/", 3)[3]
        assert key.startswith(f"enhanced/{image_id}/") and ".." not in key, key
        assert urlsplit(output["url"]).path == "/" + key
    assert all("Müller" not in o["url"] and "Küche" not in o["url"] for o in aliases)
    [row] = wait_for(lambda: db_query(
        "SELECT status, cloudfront_url FROM product_images WHERE image_id = %s"
        " AND status IN ('completed', 'skipped')", (image_id,)), timeout=60)
    assert urlsplit(row["cloudfront_url"]).path.startswith(f"/enhanced/{image_id}/")

    # An operator's retry rebuilds the event from the row: keys and labels again.
    run_query(settings, "UPDATE product_images SET status = 'failed' WHERE image_id = %s",
              (image_id,))
    retried = requests.post(f"{worker.base_url}/api/images/{image_id}/retry",
                            headers={"X-API-Key": ADMIN_KEY}, timeout=10)
    assert retried.status_code == 202, retried.text
    first, second = _uploaded_events(topic_reader, image_id, expect=2)
    assert {k: v for k, v in second.items() if k != "occurred_at"} == {
        k: v for k, v in first.items() if k != "occurred_at"}


def test_an_operator_drives_stranded_photos_again_over_the_api_and_the_cli(worker,
                                                                          topic_reader,
                                                                          stack):
    """Photos whose events were lost (a broker that came back empty) sit unfinished: the
    ones unchanged for longer than asked are driven again, the others are left alone."""
    import subprocess
    import sys

    from tests.conftest import ADMIN_KEY, run_query
    from tests.polling import wait_for

    _, settings = stack
    old, recent = (upload(worker, hf.photo(400, 300, seed=seed), sku_id=f"SKU-strand-{seed}")
                   .json()["image_id"] for seed in (61, 67))

    def status(image_id: str) -> str:
        return run_query(settings, "SELECT status FROM product_images WHERE image_id = %s",
                         (image_id,))[0]["status"]

    wait_for(lambda: {status(old), status(recent)} <= {"completed", "skipped"}, 120)

    def strand(image_id: str, seconds_ago: int) -> None:
        run_query(settings, "UPDATE product_images SET status = 'analyzed', updated_at ="
                            " CURRENT_TIMESTAMP(3) - INTERVAL %s SECOND WHERE image_id = %s",
                  (seconds_ago, image_id))

    strand(old, 3600)
    strand(recent, 0)
    url = f"{worker.base_url}/api/images/retry-stranded"
    assert requests.post(url, headers={"X-API-Key": API_KEY}, timeout=10).status_code == 401
    assert requests.post(url + "?older_than=-1", headers={"X-API-Key": ADMIN_KEY},
                         timeout=10).status_code == 400
    swept = requests.post(url + "?older_than=600", headers={"X-API-Key": ADMIN_KEY},
                          timeout=30)
    assert swept.status_code == 202, swept.text
    assert old in swept.json()["redriven"] and recent not in swept.json()["redriven"]
    assert len(_uploaded_events(topic_reader, old, expect=2)) == 2
    assert len(_uploaded_events(topic_reader, recent)) == 1
    again = requests.post(url + "?older_than=600", headers={"X-API-Key": ADMIN_KEY},
                          timeout=30)
    assert old not in again.json()["redriven"]  # driven just now: not stranded
    wait_for(lambda: status(old) in ("completed", "skipped"), 120)

    strand(old, 3600)
    cli = subprocess.run([sys.executable, "-m", "streams.cli", "retry", "--stranded",
                          "--older-than", "600", "--api", worker.base_url],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert f"{old}: uploaded (driven again)" in cli.stdout
    assert len(_uploaded_events(topic_reader, old, expect=3)) == 3
