"""The database boundary when the server goes away under a pooled connection: every way
a dropped connection surfaces is ServiceUnavailable (retried), never PermanentError
(dead-lettered), and the pool serves again once the server is back."""

from __future__ import annotations

import asyncio

import pytest

from imaging.errors import ServiceUnavailable
from services.database import Database
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture()
def proxied(scratch_settings):
    proxy = TcpProxy(scratch_settings.db_host, scratch_settings.db_port)
    port = proxy.start()
    yield proxy, scratch_settings.model_copy(update={"db_port": port})
    proxy.stop()


async def _pool(settings) -> Database:
    db = await Database.connect(settings)
    await db.execute("CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY)")
    return db


def test_a_connection_dropped_between_queries_is_transient(proxied):
    proxy, settings = proxied

    async def scenario() -> None:
        db = await _pool(settings)
        try:
            assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
            proxy.cut()  # the pooled connection dies while it sits in the pool
            with pytest.raises(ServiceUnavailable):
                await db.fetchone("SELECT 1 AS one")
            proxy.restore()
            assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
        finally:
            await db.close()

    asyncio.run(scenario())


def test_a_connection_dropped_inside_a_transaction_is_transient(proxied):
    proxy, settings = proxied

    async def scenario() -> None:
        db = await _pool(settings)
        try:
            with pytest.raises(ServiceUnavailable):
                async with db.transaction() as conn, conn.cursor() as cur:
                    await cur.execute("INSERT INTO t VALUES (1)")
                    proxy.cut()  # mid-transaction: the query fails, then the rollback
                    await cur.execute("INSERT INTO t VALUES (2)")
            proxy.restore()
            # The server rolled the transaction back with the connection.
            assert await db.fetchall("SELECT id FROM t") == []
        finally:
            await db.close()

    asyncio.run(scenario())


def test_a_connection_closed_under_a_handler_is_transient_and_replaced(proxied):
    """asyncmy closes a connection whose peer vanished; a query still on its way then
    fails "Not connected" (an InterfaceError, not an OperationalError). Seen once in the
    outage e2e test, where it dead-lettered a photo as permanent."""
    _, settings = proxied

    async def scenario() -> None:
        db = await _pool(settings)
        try:
            with pytest.raises(ServiceUnavailable, match="Not connected"):
                async with db.connection() as conn:
                    conn.close()  # what asyncmy does when the server drops the socket
                    async with conn.cursor() as cur:
                        await cur.execute("SELECT 1")
            # The pool dropped the closed connection: the retry gets a new one.
            assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
        finally:
            await db.close()

    asyncio.run(scenario())
