"""Connections a worker shares between its agents and views, opened once at start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from imaging.errors import RetryableError, ServiceUnavailable
from services.bedrock import BedrockClient
from services.database import Database, apply_migrations
from services.model_catalog import load_catalog
from services.object_store import ObjectStore
from streams.settings import Settings

log = logging.getLogger(__name__)


class Resources:
    """The image thread pool, database pool, object store and Bedrock client of a worker
    (migrations applied before first use)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Image work (decode, metrics, operations, encodes) never runs on the event loop.
        self.image_pool = ThreadPoolExecutor(max_workers=settings.image_threads,
                                             thread_name_prefix="image")
        self._db: Database | None = None
        self._store: ObjectStore | None = None
        self._bedrock: BedrockClient | None = None
        self._lock = asyncio.Lock()
        #: Awaited before every new paid model call; raises to refuse it (set by
        #: streams.recovery: a worker whose broker was lost must not pay any more).
        self.before_paying: Callable[[], Awaitable[None]] | None = None

    @property
    def is_ready(self) -> bool:
        return self._db is not None and self._store is not None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise ServiceUnavailable("database not connected yet")
        return self._db

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            raise ServiceUnavailable("object store not initialised yet")
        return self._store

    @property
    def bedrock(self) -> BedrockClient:
        """The Bedrock runtime client (its result cache lives in the object store)."""
        if self._bedrock is None:
            self._bedrock = BedrockClient(self.settings, load_catalog(), self.store,
                                          before_paying=lambda: self.before_paying)
        return self._bedrock

    async def ready(self) -> None:
        """Open everything once; raises ServiceUnavailable while a service is down."""
        if self.is_ready:
            return
        async with self._lock:
            if self._store is None:
                store = ObjectStore(self.settings)
                await store.ensure_buckets()
                self._store = store
            if self._db is None:
                db = await Database.connect(self.settings)
                try:
                    applied = await apply_migrations(db)
                except BaseException:
                    await db.close()
                    raise
                if applied:
                    log.info("applied migrations: %s", ", ".join(applied))
                self._db = db

    async def ready_with_retry(self, max_delay: float = 15.0) -> None:
        """Keep trying until every service answers (start-up while the DB is still down).

        Even a permanent-looking failure (credentials, a bucket owned by someone else) is
        retried, loudly: an agent that raised here would be dead for good while the worker
        looked alive; this way /api/health reports the problem and it heals once fixed."""
        delay = 0.5
        while True:
            try:
                await self.ready()
                return
            except RetryableError as exc:
                log.warning("resources not ready (%s); retrying in %.1fs", exc, delay)
            except Exception as exc:
                log.error("resources failed to start (%s: %s); retrying in %.1fs",
                          type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    async def close(self) -> None:
        if self._bedrock is not None:
            self._bedrock.close()
            self._bedrock = None
        if self._db is not None:
            await self._db.close()
            self._db = None
        if self._store is not None:
            self._store.close()
            self._store = None
