"""The faust app: ``faust -A streams.app worker`` (or ``imgstream worker``).

Builds the app from settings, declares the topics, opens shared resources at start and
registers the agents and web views. Agents live in ``agents/``, one module per stage.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

import cv2
import faust
from mode import Service

from imaging.errors import ConfigurationError, PermanentError
from imaging.planning import check_routing_models
from imaging.profile import Profile
from profiles import load_profile
from services.model_catalog import load_catalog
from streams import faust_fixes, kafka_tuning
from streams.budget import budget_zone
from streams.resources import Resources
from streams.settings import get_settings
from streams.topics import Topics

log = logging.getLogger(__name__)

settings = get_settings()
if settings.production_problems():
    raise SystemExit("imgstream: production settings missing:\n  "
                     + "\n  ".join(settings.production_problems()))
try:
    # A malformed profile stops the worker here, naming the field and the reason.
    profile = load_profile(settings.profile, settings.profiles_dir)
    catalog = load_catalog()
    check_routing_models(profile, catalog)  # an unknown or retired model stops us here
    budget_zone(settings.budget_timezone)
except ConfigurationError as exc:
    raise SystemExit(f"imgstream: {exc}") from None
(settings.home / "workers").mkdir(parents=True, exist_ok=True)


@cache
def _named_profile(name: str) -> Profile:
    named = load_profile(name, settings.profiles_dir)
    check_routing_models(named, catalog)
    return named


def profile_for(ref: Mapping[str, Any]) -> Profile:
    """The profile an event was made with: the worker's own, or another one named by a
    replay (``imgstream replay --profile``). A version this worker does not have is a
    PermanentError: results must never mix two versions of a profile."""
    if ref.get("name") == profile.name and ref.get("version") == profile.version:
        return profile
    try:
        named = _named_profile(str(ref.get("name")))
    except ConfigurationError as exc:
        raise PermanentError(f"event names profile {ref}: {exc}") from None
    if named.version != ref.get("version"):
        raise PermanentError(f"event was made with profile {named.name} {ref.get('version')};"
                             f" this worker has version {named.version}")
    return named


if settings.cpus:  # before any thread starts: threads inherit the process's CPU set
    os.sched_setaffinity(0, settings.cpus)
cv2.setNumThreads(settings.opencv_threads)  # parallelism is across photos (image_threads)
faust_fixes.install(settings.rebalance_wait_seconds)  # commit only what was processed
# faust hard-codes a 1.5 s fetch wait, and tansu sits a waiting fetch out to its end.
kafka_tuning.limit_fetch_wait(settings.fetch_max_wait_ms)

app = faust.App(
    settings.app_id,
    broker=f"kafka://{settings.kafka_bootstrap}",
    store=settings.store,
    datadir=str(settings.home / "workers" / f"{settings.app_id}-{settings.web_port}"),
    autodiscover=False,
    web_enabled=True,
    web_bind=settings.web_host,
    web_host=settings.web_host,
    web_port=settings.web_port,
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=1,
    topic_disable_leader=True,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=settings.broker_session_timeout,
    producer_max_batch_size=settings.producer_max_batch_size,
)

topics = Topics(app, settings)
resources = Resources(settings)


@app.service
class SharedResources(Service):
    """Declares topics and opens the database and store when the worker starts."""

    async def on_started(self) -> None:
        for topic in topics.all():
            await topic.maybe_declare()
        self.add_future(resources.ready_with_retry())

    async def on_stop(self) -> None:
        await resources.close()


# Registration: importing these modules attaches their agents and views to ``app``.
from agents import (  # noqa: E402,F401
    assess,
    budget_gate,
    cdn_sink,
    dead_letters,
    enhance_ai,
    enhance_local,
    finalize,
    mysql_sink,
    route,
)
from streams import ingest, web  # noqa: E402,F401
