"""Migrations on the real MariaDB: idempotent, safe when started concurrently, tamper-evident."""

from __future__ import annotations

import asyncio

import pytest

from imaging.errors import ConfigurationError, ServiceUnavailable
from services.database import Database, apply_migrations, migration_files

pytestmark = pytest.mark.integration

SEED_TABLES = {"product_images", "enhancement_jobs", "processing_steps", "quality_metrics",
               "ai_usage_logs", "processed_events", "dead_letters", "schema_migrations"}


def test_apply_twice_and_concurrently(scratch_settings):
    async def run():
        dbs = [await Database.connect(scratch_settings) for _ in range(3)]
        try:
            results = await asyncio.gather(*(apply_migrations(db) for db in dbs))
            again = await apply_migrations(dbs[0])
            tables = {r["t"] for r in await dbs[0].fetchall(
                "SELECT table_name AS t FROM information_schema.tables WHERE table_schema=%s",
                (scratch_settings.db_name,))}
            return results, again, tables
        finally:
            for db in dbs:
                await db.close()

    results, again, tables = asyncio.run(run())
    versions = [v for v, _ in migration_files()]
    assert sorted(results, key=len) == [[], [], versions]  # exactly one starter applied them
    assert again == []
    assert tables >= SEED_TABLES


def test_edited_migration_is_refused(scratch_settings):
    async def run():
        db = await Database.connect(scratch_settings)
        try:
            await apply_migrations(db)
            await db.execute("UPDATE schema_migrations SET checksum = REPEAT('0', 64) "
                             "WHERE version = %s", (migration_files()[0][0],))
            with pytest.raises(ConfigurationError, match="changed after it was applied"):
                await apply_migrations(db)
        finally:
            await db.close()

    asyncio.run(run())


def test_unreachable_database_is_retryable(stack):
    _, settings = stack
    nowhere = settings.model_copy(update={"db_port": 1})
    with pytest.raises(ServiceUnavailable):
        asyncio.run(Database.connect(nowhere))
