"""MySQL's record of which results had their CDN paths invalidated (cdn_invalidations).

The cdn_sink's memory of confirmed batches lives in one process; this record survives
restarts, so a completion delivered again after a crash is acked without a second
(billed) invalidation of the same paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from services.database import Database


class InvalidationRecords:
    def __init__(self, database: Callable[[], Database]) -> None:
        self._database = database  # resolved per call: the pool opens after start

    async def done(self, tokens: Iterable[str]) -> set[str]:
        """Which of ``tokens`` were invalidated already."""
        tokens = list(tokens)
        if not tokens:
            return set()
        marks = ", ".join(["%s"] * len(tokens))
        rows = await self._database().fetchall(
            f"SELECT source_token FROM cdn_invalidations WHERE source_token IN ({marks})",
            tokens)
        return {row["source_token"] for row in rows}

    async def remember(self, tokens: Iterable[str], caller_reference: str) -> None:
        rows = [(token, caller_reference) for token in tokens]
        if not rows:
            return
        async with self._database().transaction() as conn, conn.cursor() as cur:
            await cur.executemany("INSERT IGNORE INTO cdn_invalidations (source_token,"
                                  " caller_reference) VALUES (%s, %s)", rows)
