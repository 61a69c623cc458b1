"""The pure parts of ``imgstream replay``: ranges, filters, tier moves, plan changes."""

from __future__ import annotations

import json

import pytest

import schemas
from imaging.assessment import assess_quality
from imaging.errors import ConfigurationError
from imaging.planning import plan_enhancement
from imaging.samples import generate_sample_batch
from profiles import load_profile
from services.model_catalog import load_catalog
from streams.records import deterministic_id
from streams.replay.comparisons import (
    NEVER_ASSESSED,
    ai_cost,
    current_tier,
    describe_plan,
    plan_change,
    plan_signature,
    tier_matrix,
    tier_moves_summary,
)
from streams.replay.options import (
    PartitionRange,
    UploadFilter,
    decode_upload,
    first_offset_at,
    job_id,
    parse_offsets,
    parse_time,
    plan_ranges,
    replay_request,
)
from streams.replay.projection import Projection, _init_projection, dry_run_report, project

UPLOADED = schemas.load_schema("image_uploaded")["examples"][0]


@pytest.fixture(scope="module")
def profile():
    return load_profile("default")


# ---------------------------------------------------------------- times and offsets

def test_times_are_iso_and_default_to_utc():
    assert parse_time("2026-11-22") == parse_time("2026-11-22T00:00:00Z")
    assert parse_time("2026-11-22T10:00:00") == parse_time("2026-11-22T10:00:00+00:00")
    assert parse_time("2026-11-22T12:00:00+02:00") == parse_time("2026-11-22T10:00:00Z")
    assert parse_time("2026-11-22T10:00:00.250Z") - parse_time("2026-11-22T10:00:00Z") == 250
    with pytest.raises(ConfigurationError, match="ISO-8601"):
        parse_time("yesterday")


def test_offset_ranges_parse_with_an_exclusive_or_open_end():
    assert parse_offsets(["0:100-200", "3:5-"]) == {0: (100, 200), 3: (5, None)}
    assert parse_offsets([]) == {}
    for bad in ("0:200-100", "x:1-2", "0:1", "0-1-2", "-1:0-1"):
        with pytest.raises(ConfigurationError, match="--offsets"):
            parse_offsets([bad])
    with pytest.raises(ConfigurationError, match="given twice"):
        parse_offsets(["1:0-1", "1:4-5"])


WATERMARKS = {0: (0, 10), 1: (0, 0), 2: (5, 20)}


def test_ranges_default_to_everything_the_partitions_hold():
    assert plan_ranges(WATERMARKS, first={}, last={}, committed={}) == [
        PartitionRange(0, 0, 10), PartitionRange(1, 0, 0), PartitionRange(2, 5, 20)]


def test_ranges_are_clamped_to_the_partitions():
    ranges = plan_ranges(WATERMARKS, first={0: 3, 2: 0}, last={0: 50, 2: 2}, committed={})
    assert ranges == [PartitionRange(0, 3, 10), PartitionRange(1, 0, 0),
                      PartitionRange(2, 5, 5)]
    assert [r.size for r in ranges] == [7, 0, 0]


def test_committed_offsets_resume_an_interrupted_range():
    ranges = plan_ranges(WATERMARKS, first={0: 2}, last={0: 8}, committed={0: 6, 2: 30})
    assert ranges[0] == PartitionRange(0, 6, 8, resumed=True)
    assert ranges[2] == PartitionRange(2, 20, 20, resumed=True)  # nothing left there
    # A commit behind the range's start (the range moved on) is not a resume point.
    assert plan_ranges(WATERMARKS, first={0: 4}, last={}, committed={0: 2})[0] == \
        PartitionRange(0, 4, 10)


def test_explicit_offsets_read_only_the_partitions_named():
    ranges = plan_ranges(WATERMARKS, first={2: 7}, last={2: 9}, committed={}, only={2})
    assert ranges == [PartitionRange(2, 7, 9)]


def test_time_bounds_are_found_by_binary_search():
    timestamps = [100, 100, 200, 300, 300, 300, 400]
    probes: list[int] = []

    def at(offset: int) -> int:
        probes.append(offset)
        return timestamps[offset]

    assert first_offset_at(300, 0, len(timestamps), at) == 3
    assert len(probes) <= 3
    assert first_offset_at(50, 0, 7, at) == 0
    assert first_offset_at(100, 0, 7, at) == 0
    assert first_offset_at(250, 0, 7, at) == 3
    assert first_offset_at(401, 0, 7, at) == 7
    assert first_offset_at(10, 4, 4, at) == 4  # empty partition: no probe needed


# ---------------------------------------------------------------- messages

def test_filters_by_seller_and_sku():
    doc = {"seller_id": "s1", "sku_id": "k1"}
    assert UploadFilter().matches(doc)
    assert UploadFilter(sellers=frozenset({"s1", "s2"})).matches(doc)
    assert not UploadFilter(sellers=frozenset({"s2"})).matches(doc)
    assert UploadFilter(skus=frozenset({"k1"})).matches(doc)
    assert not UploadFilter(sellers=frozenset({"s1"}), skus=frozenset({"k2"})).matches(doc)


def test_filters_take_catalogue_ids_or_their_keys():
    from streams.identity import parse_catalogue_id

    seller = parse_catalogue_id("Müller GmbH")
    doc = {"seller_id": seller.key, "sku_id": "k1", "seller_label": seller.label}
    assert UploadFilter.of(["Müller GmbH"], []).matches(doc)
    assert UploadFilter.of([" Mu\u0308ller GmbH"], ["k1"]).matches(doc)  # NFD, padded
    assert UploadFilter.of([seller.key], []).matches(doc)  # the key as a row shows it
    assert not UploadFilter.of(["Müller"], []).matches(doc)
    assert not UploadFilter.of(["Müller GmbH"], ["k2"]).matches(doc)
    assert UploadFilter.of(["s1\n"], []).sellers == {"s1\n", "s1"}


def test_invalid_messages_are_recognised_not_raised():
    assert decode_upload(json.dumps(UPLOADED).encode()) == UPLOADED
    for bad in (None, b"", b"not json", b"\xff\xfe", b"[1, 2]", b"null",
                json.dumps({**UPLOADED, "image_id": 7}).encode(),
                json.dumps({k: v for k, v in UPLOADED.items() if k != "original_uri"}).encode()):
        assert decode_upload(bad) is None, bad


def test_replay_requests_are_valid_and_deterministic(profile):
    first = replay_request(UPLOADED, profile, f"imgstream-replay-default-{profile.version}")
    again = replay_request(UPLOADED, profile, "another-group")
    assert first.event_id == again.event_id == deterministic_id(
        "ReplayRequested", UPLOADED["image_id"], "default", profile.version)
    assert first.profile == {"name": "default", "version": profile.version}
    assert first.uploaded == UPLOADED and first.image_id == UPLOADED["image_id"]
    schemas.validate_event("replay_requested", json.loads(first.to_json()))
    assert job_id(UPLOADED["image_id"], profile) == deterministic_id(
        "job", UPLOADED["image_id"], "default", profile.version)


# ---------------------------------------------------------------- comparisons

def test_current_tier_prefers_the_current_result_then_the_latest():
    assert current_tier(None) == NEVER_ASSESSED
    assert current_tier({"current_tier": None, "latest_tier": None}) == NEVER_ASSESSED
    assert current_tier({"current_tier": None, "latest_tier": "poor"}) == "poor"
    assert current_tier({"current_tier": "good", "latest_tier": "poor"}) == "good"


def test_tier_matrix_counts_moves_with_a_row_for_never_assessed():
    matrix = tier_matrix([("excellent", "good"), ("good", "good"), ("good", "poor"),
                          ("poor", "good"), (NEVER_ASSESSED, "poor"), ("good", "poor")])
    assert matrix["excellent"] == {"excellent": 0, "good": 1, "poor": 0}
    assert matrix["good"] == {"excellent": 0, "good": 1, "poor": 2}
    assert matrix["poor"]["good"] == 1 and matrix[NEVER_ASSESSED]["poor"] == 1
    assert list(matrix) == ["excellent", "good", "poor", NEVER_ASSESSED]
    assert tier_moves_summary(matrix) == {"same": 1, "up": 1, "down": 3, "first": 1}


def _step(order, operation, method, cost=0.0):
    return {"order": order, "operation": operation, "method": method,
            "estimated_cost_usd": cost}


def test_plans_compare_by_operation_and_method_in_order():
    planned = [_step(1, "background", "ai", 0.07), _step(0, "contrast", "local"),
               _step(2, "sharpen", "local")]
    recorded = [{"order": 0, "operation": "contrast", "method": "local"},
                {"order": 1, "operation": "background", "method": "ai"},
                {"order": 2, "operation": "sharpen", "method": "local"}]
    assert plan_signature(planned) == plan_signature(recorded)
    assert plan_change(plan_signature(recorded), plan_signature(planned)) == "same"
    local = [{**s, "method": "local"} for s in planned]
    assert plan_change(plan_signature(recorded), plan_signature(local)) == "changed"
    assert plan_change(None, plan_signature(planned)) == "new"
    assert plan_change((), ()) == "same"  # skipped then, skipped now
    assert describe_plan(plan_signature(planned)) == \
        "contrast[local] > background[ai] > sharpen[local]"
    assert describe_plan(()) == "skip" and describe_plan(None) == "(none)"
    assert ai_cost(planned) == 0.07 and ai_cost(local) == 0.0


def _projection(image_id, now, new, *, plan=(), new_plan=(), ai=0.0, request=True,
                error=None):
    return Projection(image_id=image_id, seller_id="s", sku_id=image_id, current_tier=now,
                      current_profile="default 1.0.0", current_plan=plan,
                      would_request=request, new_tier=new, new_plan=new_plan, ai_usd=ai,
                      error=error)


def test_dry_run_report_projects_spend_only_for_work_not_done_yet():
    bg = (("contrast", "local"), ("background", "ai"), ("sharpen", "local"))
    projections = [
        _projection("a", "excellent", "good", plan=(), new_plan=(("sharpen", "local"),)),
        _projection("b", "good", "good", plan=bg, new_plan=bg, ai=0.07),
        _projection("c", "good", "poor", plan=bg, new_plan=bg, ai=0.07, request=False),
        _projection("d", NEVER_ASSESSED, "poor", plan=None, new_plan=bg, ai=0.10),
        _projection("e", "good", None, error="ObjectMissing: gone"),
    ]
    report = dry_run_report(projections, {"remaining_usd": 0.15, "cap_usd": 1.0})
    assert report["tier_moves"]["excellent"]["good"] == 1
    assert report["tier_moves"]["good"] == {"excellent": 0, "good": 1, "poor": 1}
    assert report["tier_moves"][NEVER_ASSESSED]["poor"] == 1
    assert report["plans"]["changed"] == 1 and report["plans"]["same"] == 2
    assert report["plans"]["new"] == 1
    assert report["plans"]["examples"][0]["image_id"] == "a"
    assert report["projected_ai_usd"] == 0.17 and report["projected_ai_images"] == 2
    assert report["fits_budget"] is False
    assert report["failed"] == [{"image_id": "e", "error": "ObjectMissing: gone"}]
    unknown = dry_run_report(projections, None)
    assert unknown["budget"] == "unknown" and unknown["fits_budget"] is None
    json.dumps(report)  # JSON-ready as it is


def test_projection_is_what_assess_and_route_would_decide(profile):
    catalog = load_catalog()
    _init_projection(profile, catalog, None)
    for sample in generate_sample_batch()[:4]:
        projected = project(sample.data)
        report = assess_quality(sample.data, profile)
        assert projected["tier"] == report.judgement.tier
        plan = plan_enhancement(report.event_metrics(), report.judgement.tier,
                                report.subject["box"], profile, catalog)
        assert projected["steps"] == [s.as_dict() for s in plan.steps]
