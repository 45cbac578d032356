"""The node's PostgreSQL pool (``--database-url``) and versioned schemas for the stores on it.

Every store that lives in PostgreSQL names itself (``"space_secrets"``,
``"webpush"``) and gives its migrations; :func:`migrate` applies the missing
ones on start, in one transaction each, under an advisory lock so several nodes
starting at once migrate once. The schema version of each store is a row of
``schema_versions``. asyncpg pools run ``RESET ALL`` on every release
(FACTS.md), so settings such as ``search_path`` go in ``server_settings`` (a URL
parameter ``?search_path=...`` is one). Nothing here knows what a store keeps.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence, TypeVar
from urllib.parse import urlsplit

from aiohttp import web

from ..background import lives_with
from ..errors import DATABASE_UNAVAILABLE, StartupError

if TYPE_CHECKING:  # imported on first use: a server without --database-url never loads it (10 MB)
    import asyncpg

log = logging.getLogger(__name__)

CREATE_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_versions (
    store   TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)"""
SELECT_VERSION = "SELECT version FROM schema_versions WHERE store = $1"
UPSERT_VERSION = """
INSERT INTO schema_versions (store, version) VALUES ($1, $2)
ON CONFLICT (store) DO UPDATE SET version = excluded.version"""
# Any constant: only servers of this project take it, around migrations.
MIGRATION_LOCK = 0x6E6F7469  # "noti"
POOL_MIN, POOL_MAX = 1, 10


def outages() -> tuple[type[BaseException], ...]:
    """What PostgreSQL going away (down, restarting, out of connections) raises, as opposed to a query's error."""
    import asyncpg
    return (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError,
            asyncpg.exceptions.OperatorInterventionError,
            asyncpg.exceptions.InsufficientResourcesError, asyncpg.InterfaceError)

Result = TypeVar("Result")


def answered_when_down(what: str) -> Callable[[Callable[..., Awaitable[Result]]],
                                              Callable[..., Awaitable[Result]]]:
    """Make a store method raise 503 (:data:`~..errors.DATABASE_UNAVAILABLE`) when PostgreSQL
    does not answer, never a 500: ``what`` names what is kept there (``"space secrets"``)."""
    def decorate(method: Callable[..., Awaitable[Result]]) -> Callable[..., Awaitable[Result]]:
        @functools.wraps(method)
        async def call(*arguments: Any, **keywords: Any) -> Result:
            try:
                return await method(*arguments, **keywords)
            except outages() as error:  # evaluated only when something was raised
                log.warning("PostgreSQL does not answer (%s: %s)", type(error).__name__, error)
                raise DATABASE_UNAVAILABLE(f"The {what} are in PostgreSQL, which does not "
                                           f"answer; try again.") from None
        return call
    return decorate


class DatabaseUnavailable(StartupError):
    """PostgreSQL cannot be reached at start, or its schema is newer than this server."""


def shown_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.username}:***@{parts.hostname}"
                                 + (f":{parts.port}" if parts.port else "")).geturl()


async def migrate(pool: asyncpg.Pool, store: str, migrations: Sequence[Sequence[str]]) -> int:
    """Bring ``store``'s tables to ``len(migrations)``; return the version it was at.

    ``migrations[i]`` holds the statements that upgrade version ``i`` to ``i + 1``.
    A database newer than this server is refused with a sentence, never altered.
    """
    async with pool.acquire() as connection:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await connection.execute(CREATE_VERSIONS)
            found = await connection.fetchval(SELECT_VERSION, store) or 0
            if found > len(migrations):
                raise DatabaseUnavailable(
                    f"The database holds the {store} store at schema version {found}, newer "
                    f"than this server's {len(migrations)}: upgrade the server.")
            for version in range(found, len(migrations)):
                for statement in migrations[version]:
                    await connection.execute(statement)
                await connection.execute(UPSERT_VERSION, store, version + 1)
                log.info("PostgreSQL store %s migrated to version %d", store, version + 1)
    return found


class Database:
    """The pool, opened on start: stores take ``database.pool`` in their own cleanup_ctx."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL pool is not open (the app has not started)")
        return self._pool

    async def open(self) -> None:
        import asyncpg
        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=POOL_MIN,
                                                   max_size=POOL_MAX)
        except (OSError, asyncpg.PostgresError) as error:
            raise DatabaseUnavailable(f"PostgreSQL at {shown_url(self.url)} refused the "
                                      f"connection ({error}): start it, or fix "
                                      f"--database-url.") from None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


POSTGRES_KEY = web.AppKey("postgres", Database)


def setup(app: web.Application, url: str) -> Database:
    """Open the pool with the app (stores register their own cleanup_ctx after this one)."""
    database = app[POSTGRES_KEY] = Database(url)
    lives_with(app, database.open, database.close)
    return database
