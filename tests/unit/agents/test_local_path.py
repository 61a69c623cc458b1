"""The local path's handlers, one photo through assess -> route -> enhance_local ->
finalize with a fake worker (real image code, in-memory store and topics)."""

import pytest

from agents.assess import assess_replayed, assess_uploaded
from agents.enhance_local import enhance_plan
from agents.finalize import finalize_image
from agents.route import route_report
from imaging.errors import ObjectMissing, PermanentError
from streams.records import ReplayRequested, deterministic_id
from tests.unit.agents.fakes import FakeWorker, product_photo, uploaded_photo


@pytest.fixture
def saved(monkeypatch):
    """What the handlers hand to MySQL (the SQL itself is covered by integration tests)."""
    rows = []

    async def save(db, event):
        rows.append(event)

    monkeypatch.setattr("agents.assess.save_assessment", save)
    return rows


async def test_a_photo_goes_from_upload_to_published_renditions(tmp_path, saved):
    worker = FakeWorker(tmp_path)
    uploaded = uploaded_photo(worker, product_photo(blurred=True))

    await assess_uploaded(uploaded, worker)
    [(topic, key, report)] = worker.sent
    assert (topic, key) == ("assessed", uploaded.image_id)
    assert saved == [report] and report.profile == worker.profile.ref

    await route_report(report, worker)
    [plan] = worker.sent_to("enhance_local")
    assert plan.image_id == uploaded.image_id and plan.before["tier"] == report.tier
    assert not plan.skip and plan.steps  # a blurred photo gets steps, all local

    await enhance_plan(plan, worker)
    [enhanced] = worker.sent_to("enhanced")
    # The pixels wait in the process for finalize: no intermediate is stored.
    assert enhanced.enhanced_uri not in worker.resources.store.objects
    assert len(worker.handoff) == 1
    assert [s["operation"] for s in enhanced.steps] == [s["operation"] for s in plan.steps]

    await finalize_image(enhanced, worker)
    [completed] = worker.sent_to("completed")
    assert completed.status == "completed" and completed.job_id == plan.job_id
    for output in completed.outputs:
        assert output["uri"] in worker.resources.store.objects
    assert completed.cdn_url.startswith(f"https://{worker.settings.cdn_domain}/")


async def test_finalize_elsewhere_enhances_again_and_publishes_the_same_bytes(tmp_path,
                                                                             saved):
    worker = FakeWorker(tmp_path)
    uploaded = uploaded_photo(worker, product_photo(blurred=True))
    await assess_uploaded(uploaded, worker)
    await route_report(worker.sent_to("assessed")[0], worker)
    await enhance_plan(worker.sent_to("enhance_local")[0], worker)
    [enhanced] = worker.sent_to("enhanced")
    await finalize_image(enhanced, worker)  # the pixels from this process
    await finalize_image(enhanced, worker)  # a process without them: made again
    here, elsewhere = worker.sent_to("completed")
    assert worker.handoff.hits == 1 and worker.handoff.misses == 1
    assert [o["uri"] for o in here.outputs] == [o["uri"] for o in elsewhere.outputs]


async def test_catalogue_labels_travel_to_the_completed_event_and_stay_out_of_paths(
        tmp_path, saved):
    worker = FakeWorker(tmp_path)
    uploaded = uploaded_photo(worker, product_photo(blurred=True), seller="Müller GmbH",
                              sku="../Tasse / blau")
    assert uploaded.seller_id.startswith("u-") and uploaded.sku_label == "../Tasse / blau"

    await assess_uploaded(uploaded, worker)
    [report] = worker.sent_to("assessed")
    await route_report(report, worker)
    [plan] = worker.sent_to("enhance_local")
    await enhance_plan(plan, worker)
    [enhanced] = worker.sent_to("enhanced")
    await finalize_image(enhanced, worker)
    [completed] = worker.sent_to("completed")
    for event in (report, plan, completed):
        assert (event.seller_id, event.sku_id) == (uploaded.seller_id, uploaded.sku_id)
        assert (event.seller_label, event.sku_label) == ("Müller GmbH", "../Tasse / blau")
    for output in completed.outputs:
        assert output["uri"].startswith(f"s3://{worker.settings.enhanced_bucket}/enhanced/"
                                        f"{uploaded.image_id}/")
        assert "Tasse" not in output["url"] and ".." not in output["url"]


async def test_assess_refuses_an_object_that_is_not_the_named_content(tmp_path, saved):
    worker = FakeWorker(tmp_path)
    uploaded = uploaded_photo(worker, product_photo())
    worker.resources.store.objects[uploaded.original_uri] = product_photo(seed=4)
    with pytest.raises(PermanentError, match="sha256 mismatch"):
        await assess_uploaded(uploaded, worker)
    assert worker.sent == [] and saved == []


async def test_assess_of_a_missing_original_is_permanent(tmp_path, saved):
    worker = FakeWorker(tmp_path)
    uploaded = uploaded_photo(worker, product_photo())
    worker.resources.store.objects.clear()
    with pytest.raises(ObjectMissing):
        await assess_uploaded(uploaded, worker)


async def test_a_replay_naming_another_image_is_refused(tmp_path, saved):
    worker = FakeWorker(tmp_path)
    uploaded = uploaded_photo(worker, product_photo())
    request = ReplayRequested.new(
        event_id=deterministic_id("r"), image_id="f" * 32, replay_id="replay-1",
        profile=worker.profile.ref, uploaded=uploaded.to_document())
    with pytest.raises(PermanentError, match="another image"):
        await assess_replayed(request, worker)


async def test_a_replay_under_an_unknown_profile_version_is_permanent(tmp_path, saved):
    worker = FakeWorker(tmp_path)
    uploaded = uploaded_photo(worker, product_photo())
    request = ReplayRequested.new(
        event_id=deterministic_id("r"), image_id=uploaded.image_id, replay_id="replay-1",
        profile={"name": "default", "version": "0.0.1"}, uploaded=uploaded.to_document())
    with pytest.raises(PermanentError, match="this worker has version"):
        await assess_replayed(request, worker)


async def test_with_ai_disabled_route_never_asks_the_budget(tmp_path, saved):
    worker = FakeWorker(tmp_path, ai_enabled=False)
    uploaded = uploaded_photo(worker, product_photo(background="desk"))
    await assess_uploaded(uploaded, worker)
    await route_report(worker.sent_to("assessed")[0], worker)
    assert worker.sent_to("ai_requests") == []
    [plan] = worker.sent_to("enhance_local")
    assert all(s["method"] == "local" for s in plan.steps)


async def test_a_skipped_plan_publishes_the_original(tmp_path, saved):
    worker = FakeWorker(tmp_path)
    uploaded = uploaded_photo(worker, product_photo())
    await assess_uploaded(uploaded, worker)
    await route_report(worker.sent_to("assessed")[0], worker)
    [plan] = worker.sent_to("enhance_local")
    plan.skip, plan.steps = True, []
    await enhance_plan(plan, worker)
    [enhanced] = worker.sent_to("enhanced")
    assert enhanced.enhanced_uri == plan.source_uri and enhanced.steps == []
    await finalize_image(enhanced, worker)
    [completed] = worker.sent_to("completed")
    assert completed.status == "skipped" and not completed.kept_original


async def test_an_ai_request_asks_the_budget_of_the_day_its_report_was_made(tmp_path, saved):
    worker = FakeWorker(tmp_path)
    uploaded = uploaded_photo(worker, product_photo(blurred=True, size=(300, 225)))
    await assess_uploaded(uploaded, worker)
    [report] = worker.sent_to("assessed")
    report.occurred_at = "2026-03-01T23:59:59.500Z"  # routed (or redelivered) after midnight
    await route_report(report, worker)
    [request] = worker.sent_to("ai_requests")
    assert request.budget_day == request.budget_key == "2026-03-01"
    assert [key for topic, key, _ in worker.sent if topic == "ai_requests"] == ["2026-03-01"]
