"""What an event may name: events are data, not capabilities.

Anyone who can write a topic can write any event. A worker therefore reads and writes only
the buckets it is configured for, and an upload's image id must be the one its seller,
SKU and content hash make; anything else is a :class:`~imaging.errors.ForgedEvent`
(dead-lettered with the reason). An approval to spend money is minted only by the budget
gate after it reserved the money: its event id is a MAC (``IMGSTREAM_SIGNING_KEY``) of
what it approves, so an approval written by anyone else is refused before any call.
docs/architecture.md has the trust model and the Kafka ACLs a production deployment
should set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from imaging.errors import ForgedEvent
from services.object_store import ObjectUri
from streams.identity import key_matches_label
from streams.records import AIEnhancementApproved, ImageUploaded, image_id_for
from streams.settings import Settings


def original_uri(uri: str, settings: Settings) -> ObjectUri:
    """``uri`` as an original this worker stores (its originals bucket, originals/)."""
    parsed = ObjectUri.parse(uri)
    if parsed.bucket != settings.originals_bucket or not parsed.key.startswith("originals/"):
        raise ForgedEvent(f"{uri} is not an original of this deployment "
                          f"(s3://{settings.originals_bucket}/originals/...)")
    return parsed


def intermediate_uri(uri: str, job_id: str, settings: Settings) -> ObjectUri:
    """``uri`` as the enhanced intermediate of ``job_id`` (enhanced bucket, work/<job>/)."""
    parsed = ObjectUri.parse(uri)
    if (parsed.bucket != settings.enhanced_bucket
            or not parsed.key.startswith(f"work/{job_id}/")):
        raise ForgedEvent(f"{uri} is not the intermediate of job {job_id}")
    return parsed


def check_upload_identity(uploaded: ImageUploaded) -> None:
    """The image id must be the one its seller, SKU and content hash make, and a label
    must be the catalogue id its key was made from (a label is shown as the seller's
    or SKU's name, so it must not say another one)."""
    expected = image_id_for(uploaded.seller_id, uploaded.sku_id, uploaded.content_sha256)
    if uploaded.image_id != expected:
        raise ForgedEvent(f"image id {uploaded.image_id} does not match seller "
                          f"{uploaded.seller_id}, SKU {uploaded.sku_id} and its content")
    for name, key, label in (
            ("seller", uploaded.seller_id, uploaded.seller_label),
            ("sku", uploaded.sku_id, uploaded.sku_label),
            ("product_group", uploaded.product_group_id, uploaded.product_group_label)):
        if label is not None and (key is None or not key_matches_label(key, label)):
            raise ForgedEvent(f"{name}_label {label!r} is not the id that makes the key "
                              f"{name}_id {key!r}")


def approval_id(key: str, *, request_id: str, reservation_id: str, budget_day: str,
                reserved_usd: float, plan: dict[str, Any], finished: bool) -> str:
    """The event id of an approval: a MAC of everything it allows (32 hex characters)."""
    signed = json.dumps([request_id, reservation_id, budget_day, round(reserved_usd, 6),
                         plan, finished], sort_keys=True, separators=(",", ":"))
    return hmac.new(key.encode(), signed.encode(), hashlib.sha256).hexdigest()[:32]


def check_approval(approval: AIEnhancementApproved, settings: Settings) -> None:
    """ForgedEvent unless the budget gate minted ``approval`` as it is."""
    expected = approval_id(
        settings.signing_key, request_id=approval.request_id,
        reservation_id=approval.reservation_id, budget_day=approval.budget_day,
        reserved_usd=approval.reserved_usd, plan=approval.plan,
        finished=approval.reserved_usd == 0.0)
    if not hmac.compare_digest(approval.event_id, expected):
        raise ForgedEvent(f"approval {approval.event_id} for request {approval.request_id} "
                          "was not issued by the budget gate (its id does not verify)")
