"""MySQL / MariaDB access through an asyncmy pool, and the migration runner.

Transient faults (server gone, connection refused or dropped, deadlock, lock wait timeout)
become :class:`ServiceUnavailable` so callers retry; anything else is a
:class:`PermanentError`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import asyncmy
from asyncmy.cursors import DictCursor
from asyncmy.errors import InterfaceError, MySQLError, OperationalError

from imaging.errors import ConfigurationError, PermanentError, ServiceUnavailable
from streams.settings import Settings

# Client/server error codes that mean "try again later".
_TRANSIENT_CODES = {1040, 1053, 1205, 1213, 2002, 2003, 2005, 2006, 2013, 2055}
_UNKNOWN_DATABASE = 1049
_MIGRATION_LOCK = "imgstream_migrations"
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class Database:
    """A pool of connections to the project's database (created when missing)."""

    def __init__(self, pool: Any, name: str) -> None:
        self._pool = pool
        self.name = name

    @classmethod
    async def connect(cls, settings: Settings, *, create: bool = True) -> Database:
        if not _IDENTIFIER.match(settings.db_name):
            raise ConfigurationError(f"db_name {settings.db_name!r}: letters, digits, _ only")
        params = dict(
            host=settings.db_host,
            port=settings.db_port,
            user=settings.db_user,
            password=settings.db_password,
            autocommit=True,
            connect_timeout=5,
            # A hung server must not block a handler forever: the query fails as
            # transient (2013) and is retried.
            read_timeout=settings.db_read_timeout_seconds,
        )
        async with _wrapped("connect"):
            try:
                pool = await asyncmy.create_pool(
                    minsize=1, maxsize=settings.db_pool_size, db=settings.db_name, **params
                )
            except OperationalError as exc:
                if not (create and exc.args and exc.args[0] == _UNKNOWN_DATABASE):
                    raise
                # Only a missing database is created here: a production user that owns an
                # existing database needs no global CREATE privilege.
                conn = await asyncmy.connect(**params)
                try:
                    async with conn.cursor() as cur:
                        await cur.execute(
                            f"CREATE DATABASE IF NOT EXISTS `{settings.db_name}` "
                            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                        )
                finally:
                    await conn.ensure_closed()
                pool = await asyncmy.create_pool(
                    minsize=1, maxsize=settings.db_pool_size, db=settings.db_name, **params
                )
        return cls(pool, settings.db_name)

    async def close(self) -> None:
        self._pool.close()
        await self._pool.wait_closed()

    async def execute(self, sql: str, args: Sequence[Any] | None = None) -> int:
        """Run one statement; returns the affected row count."""
        async with self.connection() as conn, conn.cursor() as cur:
            return await cur.execute(sql, args)

    async def fetchone(self, sql: str, args: Sequence[Any] | None = None) -> dict | None:
        async with self.connection() as conn, conn.cursor(DictCursor) as cur:
            await cur.execute(sql, args)
            return await cur.fetchone()

    async def fetchall(self, sql: str, args: Sequence[Any] | None = None) -> list[dict]:
        async with self.connection() as conn, conn.cursor(DictCursor) as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        async with _wrapped("query"), self._pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """A connection inside BEGIN ... COMMIT (ROLLBACK on any error)."""
        async with self.connection() as conn:
            await conn.begin()
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()


@asynccontextmanager
async def _wrapped(what: str) -> AsyncIterator[None]:
    try:
        yield
    except OperationalError as exc:
        code = exc.args[0] if exc.args else None
        if code in _TRANSIENT_CODES:
            raise ServiceUnavailable(f"database {what}: {exc}") from exc
        raise PermanentError(f"database {what}: {exc}") from exc
    except InterfaceError as exc:
        # A pooled connection the server or the network dropped ("Not connected"): the
        # pool discards it on release, so the retry gets a new one.
        raise ServiceUnavailable(f"database {what}: {exc}") from exc
    except MySQLError as exc:
        raise PermanentError(f"database {what}: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise ServiceUnavailable(f"database {what}: {exc}") from exc


# --- migrations -----------------------------------------------------------------------


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) for every file in schemas/sql, in version order."""
    folder = resources.files("schemas") / "sql"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


def split_statements(sql: str) -> list[str]:
    """Split a migration on ``;`` at line ends; our migrations hold no procedures."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


async def apply_migrations(db: Database) -> list[str]:
    """Apply pending migrations once, even with several processes starting together.

    A named lock serialises concurrent starters; an applied migration whose file changed
    afterwards is a configuration error (write a new migration instead).
    """
    applied_now: list[str] = []
    async with db.connection() as conn, conn.cursor() as cur:
        await cur.execute("SELECT GET_LOCK(%s, 60)", (_MIGRATION_LOCK,))
        (locked,) = await cur.fetchone()
        if locked != 1:
            raise ServiceUnavailable("could not take the migration lock within 60 s")
        try:
            await cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version VARCHAR(128) PRIMARY KEY,"
                " checksum CHAR(64) NOT NULL,"
                " applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))"
            )
            await cur.execute("SELECT version, checksum FROM schema_migrations")
            done = {row[0]: row[1] for row in await cur.fetchall()}
            for version, sql in migration_files():
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if version in done:
                    if done[version] != checksum:
                        raise ConfigurationError(
                            f"migration {version} changed after it was applied; "
                            "add a new migration instead of editing an applied one"
                        )
                    continue
                for statement in split_statements(sql):
                    await cur.execute(statement)
                await cur.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                    (version, checksum),
                )
                applied_now.append(version)
        finally:
            await cur.execute("SELECT RELEASE_LOCK(%s)", (_MIGRATION_LOCK,))
    return applied_now
