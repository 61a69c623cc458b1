"""The worker: ``imgstream worker`` (``python -m streams.app worker``) builds it here.

Importing this module declares things and does nothing else. :func:`create_worker`
builds everything a worker runs with when one starts: it checks the settings, loads the
profile and the model catalog, pins the CPUs, installs the faust patches, builds the faust
app with its topics and shared resources, and registers the agents (``agents/``, one
module per stage) and the web views. Agents' handlers are plain functions of
``(event, worker)``: unit tests call them with a fake worker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import faust

from imaging.errors import ConfigurationError, PermanentError
from imaging.planning import check_routing_models
from imaging.profile import Profile
from profiles import load_profile
from services.model_catalog import ModelCatalog, load_catalog
from streams.handoff import PixelHandoff
from streams.processing import Stage
from streams.records import Event
from streams.resources import Resources
from streams.settings import Settings, get_settings
from streams.topics import Topics

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """What a running worker's agents and views share."""

    settings: Settings
    profile: Profile
    catalog: ModelCatalog
    app: faust.App
    topics: Topics
    resources: Resources
    # Per-stage state that views also read (e.g. the budget tables), by stage name.
    state: dict[str, Any] = field(default_factory=dict)
    # Enhanced pixels from enhance_local/enhance_ai to finalize in this process.
    handoff: PixelHandoff = field(default_factory=lambda: PixelHandoff(0))

    def profile_for(self, ref: Mapping[str, Any]) -> Profile:
        """The profile an event was made with: the worker's own, or another one named by
        a replay (``imgstream replay --profile``). A version this worker does not have is
        a PermanentError: results must never mix two versions of a profile."""
        if ref.get("name") == self.profile.name and ref.get("version") == self.profile.version:
            return self.profile
        try:
            named = _named_profile(str(ref.get("name")), self.settings.profiles_dir)
            check_routing_models(named, self.catalog)
        except ConfigurationError as exc:
            raise PermanentError(f"event names profile {ref}: {exc}") from None
        if named.version != ref.get("version"):
            raise PermanentError(f"event was made with profile {named.name} "
                                 f"{ref.get('version')}; this worker has version "
                                 f"{named.version}")
        return named

    async def send(self, topic: str, event: Event) -> None:
        """Send ``event`` to the topic named ``topic`` (``"assessed"``...), keyed as that
        topic is declared (``streams.topics``), and wait for the broker's ack."""
        await self.topics.send(topic, event, validate=self.settings.validate_events)

    @property
    def image_pool(self):
        return self.resources.image_pool

    def run_stage(self, topic: faust.TopicT, stage: Stage, concurrency: int = 1,
                  needs_resources: bool = True) -> None:
        """Attach an agent that runs ``stage`` over ``topic`` (after the database and
        the store are open, unless the stage needs neither)."""

        async def agent(stream):
            if needs_resources:
                await self.resources.ready_with_retry()
            await stage.run(stream)

        agent.__name__ = agent.__qualname__ = stage.name
        self.app.agent(topic, name=stage.name, concurrency=concurrency)(agent)


@cache
def _named_profile(name: str, folder) -> Profile:
    return load_profile(name, folder)


def load_configuration(settings: Settings) -> tuple[Profile, ModelCatalog]:
    """The worker's profile and catalog; ConfigurationError names what is wrong."""
    from streams.budget import budget_zone

    problems = settings.production_problems()
    if problems:
        raise ConfigurationError("production settings missing:\n  " + "\n  ".join(problems))
    profile = load_profile(settings.profile, settings.profiles_dir)
    catalog = load_catalog()
    check_routing_models(profile, catalog)  # an unknown or retired model stops us here
    budget_zone(settings.budget_timezone)
    return profile, catalog


def create_worker(settings: Settings | None = None) -> Worker:
    """Build a worker: configuration, process tuning, the faust app and its agents."""
    import cv2

    from agents import ALL_STAGES
    from streams import api, dashboard, faust_fixes, ingest, kafka_tuning, recovery, web

    settings = settings or get_settings()
    profile, catalog = load_configuration(settings)
    (settings.home / "workers").mkdir(parents=True, exist_ok=True)
    if settings.cpus:  # before any thread starts: threads inherit the process's CPU set
        os.sched_setaffinity(0, settings.cpus)
    cv2.setNumThreads(settings.opencv_threads)  # parallelism is across photos
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
        web_router_enabled=settings.faust_views,
        web_tables_enabled=settings.faust_views,
    )
    worker = Worker(settings=settings, profile=profile, catalog=catalog, app=app,
                    topics=Topics(app, settings), resources=Resources(settings),
                    handoff=PixelHandoff(settings.handoff_bytes))
    _add_shared_resources(worker)
    for stage in ALL_STAGES:
        stage.register(worker)
    ingest.register(worker)
    web.register(worker)
    api.register(worker)
    dashboard.register(worker)
    recovery.register(worker)
    return worker


def _add_shared_resources(worker: Worker) -> None:
    from mode import Service

    @worker.app.service
    class SharedResources(Service):
        """Declares topics and opens the database and store when the worker starts."""

        async def on_started(self) -> None:
            for topic in worker.topics.all():
                await topic.maybe_declare()
            self.add_future(worker.resources.ready_with_retry())

        async def on_stop(self) -> None:
            await worker.resources.close()


def main() -> None:
    """``python -m streams.app worker ...``: faust's command line for a built worker."""
    try:
        worker = create_worker()
    except ConfigurationError as exc:
        raise SystemExit(f"imgstream: {exc}") from None
    worker.app.main()


if __name__ == "__main__":
    main()
