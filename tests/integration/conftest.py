"""Fixtures shared by the integration tests."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.database import Database


@pytest.fixture()
def scratch_settings(stack):
    """The stack's settings with a database of their own, dropped afterwards."""
    _, settings = stack
    scratch = settings.model_copy(
        update={"db_name": f"imgstream_scratch_{uuid.uuid4().hex[:8]}"})
    yield scratch

    async def drop():
        db = await Database.connect(scratch)
        await db.execute(f"DROP DATABASE IF EXISTS `{scratch.db_name}`")
        await db.close()

    asyncio.run(drop())
