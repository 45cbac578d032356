"""Secrets of private spaces (``space::name`` channels), kept across restarts.

Backends set and rotate a space's secret at runtime (``PUT /admin/spaces/{space}``);
pages join ``space::name`` with it. :class:`SpaceSecrets` is what
:class:`~notification_service.access.ChannelAccess` asks: every secret is held
in memory so a join never waits for a database, and every change is written
through to a :class:`SpaceSecretBackend` first. Embedded default:
:class:`SqliteSpaceSecrets` (a file in the data directory, versioned schema);
with ``--database-url`` :class:`PostgresSpaceSecrets` (the same table, shared
by every node): a change made on one node is announced with PostgreSQL's
``NOTIFY`` in the transaction that makes it, and every node listens for it
(``LISTEN``) and reloads that space, so a rotation takes effect everywhere without a restart.
Bounded by :class:`SpaceLimits`: at most ``--max-spaces`` secrets and
``--spaces-max-bytes`` of names and secrets (:func:`stored_bytes`); past
either a new space is refused with 507 (rotating an existing one never is).
This module never compares secrets (access.py does, in constant time) and never
logs them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol

from aiohttp import web

from .background import cancel_and_wait
from .config import SETTINGS_KEY, env_name
from .errors import ADMIN_DISABLED, INVALID_SPACE_SECRET, SPACES_FULL, StartupError
from .events import validate_space
from .producers.body import body_too_large, parse_json, read_body
from .stores.postgres import answered_when_down
from .stores.sqlite import migrate
from .tokens import require_token

log = logging.getLogger(__name__)

MIGRATIONS: list[tuple[str, ...]] = [
    ("""
        CREATE TABLE space_secrets (
            space      TEXT PRIMARY KEY,
            secret     TEXT NOT NULL,
            updated_at REAL NOT NULL
        )
    """,),
]
SCHEMA_VERSION = len(MIGRATIONS)
SELECT_ALL = "SELECT space, secret FROM space_secrets"
SELECT_ONE = "SELECT secret FROM space_secrets WHERE space = ?"
UPSERT = """
    INSERT INTO space_secrets (space, secret, updated_at) VALUES (?, ?, ?)
    ON CONFLICT (space) DO UPDATE SET secret = excluded.secret, updated_at = excluded.updated_at
"""
DELETE = "DELETE FROM space_secrets WHERE space = ?"

POSTGRES_STORE = "space_secrets"
POSTGRES_MIGRATIONS: list[tuple[str, ...]] = [
    ("""
        CREATE TABLE space_secrets (
            space      TEXT PRIMARY KEY,
            secret     TEXT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )
    """,),
]
POSTGRES_SELECT_ALL = "SELECT space, secret FROM space_secrets"
POSTGRES_SELECT = "SELECT secret FROM space_secrets WHERE space = $1"
POSTGRES_UPSERT = """
    INSERT INTO space_secrets (space, secret, updated_at) VALUES ($1, $2, $3)
    ON CONFLICT (space) DO UPDATE SET secret = excluded.secret, updated_at = excluded.updated_at
"""
POSTGRES_DELETE = "DELETE FROM space_secrets WHERE space = $1"
CHANGED_CHANNEL = "notification_service_space_secrets"
"""The PostgreSQL ``NOTIFY`` channel of changed spaces; the payload is the space's name."""
LISTEN_RETRY_SECONDS = 1.0
LISTEN_WAIT_SECONDS = 5.0


SPACE_ROW_BYTES = 64
"""What SQLite (and Python's dict) spend per space beyond its two texts."""


def stored_bytes(space: str, secret: str) -> int:
    """What keeping ``space``'s ``secret`` costs against ``--spaces-max-bytes``."""
    return len(space.encode("utf-8")) + len(secret.encode("utf-8")) + SPACE_ROW_BYTES


@dataclass(frozen=True)
class SpaceLimits:
    """At most ``max_spaces`` secrets, of at most ``max_bytes`` (:func:`stored_bytes`) in all."""

    max_spaces: int = 10_000
    max_bytes: int = 8 * 1024 * 1024


class SpaceSecretBackend(Protocol):
    """Durable storage of space secrets; all I/O is async so any database fits."""

    async def load_all(self) -> dict[str, str]: ...

    async def get(self, space: str) -> str | None: ...

    async def put(self, space: str, secret: str) -> None: ...

    async def delete(self, space: str) -> bool: ...

    async def close(self) -> None: ...


class SqliteSpaceSecrets:
    """Space secrets in one SQLite file; schema version in ``PRAGMA user_version``.

    :param path: the database file; created (mode 0600 where supported) on open.

    SQLite calls run in a worker thread so a slow disk never stalls the event loop.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        try:
            self._db = await asyncio.to_thread(self._open)
        except sqlite3.Error as error:
            raise StartupError(
                f"The space secrets database {self.path.resolve()} cannot be opened ({error}): "
                f"if it is damaged, move it away (every space then needs its secret set "
                f"again) or restore it from a backup.") from None

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            if created and os.name == "posix":
                os.chmod(self.path, 0o600)  # the secrets are in clear: only we may read them
            for version in migrate(db, MIGRATIONS):
                log.info("space secrets database %s migrated to version %d", self.path, version)
        except BaseException:
            db.close()
            raise
        return db

    async def load_all(self) -> dict[str, str]:
        return dict(await self._run(lambda db: db.execute(SELECT_ALL).fetchall()))

    async def get(self, space: str) -> str | None:
        row = await self._run(lambda db: db.execute(SELECT_ONE, (space,)).fetchone())
        return None if row is None else row[0]

    async def put(self, space: str, secret: str) -> None:
        await self._run(lambda db: db.execute(UPSERT, (space, secret, time.time())))

    async def delete(self, space: str) -> bool:
        return bool(await self._run(lambda db: db.execute(DELETE, (space,)).rowcount))

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)

    async def _run(self, work):  # type: ignore[no-untyped-def]
        if self._db is None:
            raise RuntimeError("the space secrets database is not open")
        db = self._db
        async with self._lock:
            return await asyncio.to_thread(work, db)


Changed = Callable[[str | None], Awaitable[None]]
"""Told which space changed on another node (None: anything may have, reload all)."""


class PostgresSpaceSecrets:
    """Space secrets in PostgreSQL (``--database-url``), shared by every node.

    :param database: the node's pool (opened before :meth:`open`).

    Every write sends ``NOTIFY`` in its own transaction, so the announcement
    goes out exactly when the change is committed. :meth:`watch` listens on a
    connection of its own (asyncpg's pool forgets ``LISTEN`` on release); after
    a lost connection it reloads everything, since announcements made meanwhile
    are not replayed.
    """

    def __init__(self, database: Any) -> None:
        self.database = database
        self._watcher: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self.listener_pid: int | None = None  # the PostgreSQL backend that listens (for ops)

    async def open(self) -> None:
        from .stores.postgres import migrate
        await migrate(self.database.pool, POSTGRES_STORE, POSTGRES_MIGRATIONS)

    async def load_all(self) -> dict[str, str]:
        return {row[0]: row[1] for row in await self.database.pool.fetch(POSTGRES_SELECT_ALL)}

    async def get(self, space: str) -> str | None:
        return await self.database.pool.fetchval(POSTGRES_SELECT, space)

    async def put(self, space: str, secret: str) -> None:
        await self._write(POSTGRES_UPSERT, space, secret, time.time())

    async def delete(self, space: str) -> bool:
        return await self._write(POSTGRES_DELETE, space) != "DELETE 0"

    @answered_when_down("space secrets")
    async def _write(self, statement: str, space: str, *arguments: Any) -> str:
        async with self.database.pool.acquire() as connection:
            async with connection.transaction():
                status = await connection.execute(statement, space, *arguments)
                await connection.execute("SELECT pg_notify($1, $2)", CHANGED_CHANNEL, space)
        return status

    async def watch(self, changed: Changed) -> None:
        """Call ``changed`` for every space another node (or this one) changes.

        Returns once listening (or after :data:`LISTEN_WAIT_SECONDS` with a warning
        already logged), so a load that follows misses no change.
        """
        self._watcher = asyncio.create_task(self._listen(changed), name="space-secrets-listen")
        try:
            await asyncio.wait_for(self._listening.wait(), LISTEN_WAIT_SECONDS)
        except asyncio.TimeoutError:
            pass

    async def _listen(self, changed: Changed) -> None:
        import asyncpg

        failing = False
        pending: set[asyncio.Task[None]] = set()
        in_order = asyncio.Lock()  # FIFO: a later change is never overwritten by an earlier one

        async def reload(space: str | None) -> None:
            async with in_order:
                try:
                    await changed(space)
                except Exception as error:  # the next change, or a reconnect, reloads it
                    log.warning("could not reload space %s from PostgreSQL: %s", space, error)

        def announced(_connection: Any, _pid: int, _channel: str, space: str) -> None:
            task = asyncio.create_task(reload(space))
            pending.add(task)
            task.add_done_callback(pending.discard)

        while True:
            lost = asyncio.Event()

            try:
                connection = await asyncpg.connect(self.database.url)
            except (OSError, asyncpg.PostgresError) as error:
                if not failing:
                    log.warning("cannot listen for space secret changes in PostgreSQL (%s); "
                                "retrying every %g s", error, LISTEN_RETRY_SECONDS)
                failing = True
                await asyncio.sleep(LISTEN_RETRY_SECONDS)
                continue
            try:
                connection.add_termination_listener(lambda _connection: lost.set())
                await connection.add_listener(CHANGED_CHANNEL, announced)
                self.listener_pid = connection.get_server_pid()
                self._listening.set()
                if failing:
                    await reload(None)  # what changed while we were not listening
                failing = False
                await lost.wait()
                log.warning("lost the PostgreSQL connection that listens for space secret "
                            "changes; reconnecting")
                failing = True
            finally:
                await connection.close()

    async def close(self) -> None:
        watcher, self._watcher = self._watcher, None
        await cancel_and_wait(watcher)


class SpaceSecrets:
    """The secrets of every space, in memory, written through to ``backend``.

    Implements :class:`~notification_service.access.SpaceSecrets`. A rotation
    applies to the next join; listeners who joined earlier stay joined.

    :param limits: how many secrets, of how many bytes, may be kept. The check
        runs before the write with no await in between, so concurrent requests
        cannot pass it together.
    """

    def __init__(self, backend: SpaceSecretBackend, limits: SpaceLimits = SpaceLimits()) -> None:
        self.backend = backend
        self.limits = limits
        self._secrets: dict[str, str] = {}
        self.bytes = 0

    async def load(self) -> None:
        self._secrets = await self.backend.load_all()
        self.bytes = sum(stored_bytes(space, secret) for space, secret in self._secrets.items())

    def get(self, space: str) -> str | None:
        return self._secrets.get(space)

    @property
    def count(self) -> int:
        return len(self._secrets)

    async def set(self, space: str, secret: str) -> bool:
        """Set or rotate; True if the space had no secret before. 507 past the limits."""
        previous = self._secrets.get(space)
        freed = stored_bytes(space, previous) if previous is not None else 0
        grown = self.bytes - freed + stored_bytes(space, secret)
        if previous is None and len(self._secrets) >= self.limits.max_spaces:
            raise SPACES_FULL(f"This server keeps at most {self.limits.max_spaces} space "
                              f"secrets (--max-spaces); delete one first.")
        if grown > self.limits.max_bytes and grown > self.bytes:
            raise SPACES_FULL(f"The space secrets may take at most {self.limits.max_bytes} "
                              f"bytes (--spaces-max-bytes); delete a space or use a shorter "
                              f"secret.")
        self._secrets[space] = secret  # reserved before the write: a concurrent set sees it
        self.bytes = grown
        try:
            await self.backend.put(space, secret)
        except BaseException:
            if previous is None:
                self._secrets.pop(space, None)
            else:
                self._secrets[space] = previous
            self.bytes = self.bytes - stored_bytes(space, secret) + freed
            raise
        return previous is None

    async def delete(self, space: str) -> bool:
        """Forget the space's secret (its channels can no longer be joined); True if it had one."""
        await self.backend.delete(space)
        return self._forget(space)

    def _forget(self, space: str) -> bool:
        secret = self._secrets.pop(space, None)
        if secret is None:
            return False
        self.bytes -= stored_bytes(space, secret)
        return True

    async def reload(self, space: str | None) -> None:
        """Take another node's change of ``space`` (None: of any space) from the backend.

        A change made here is announced too and reloads the value just written,
        so this is idempotent. The limits are not checked: the node that wrote
        the secret checked them.
        """
        if space is None:
            await self.load()
            return
        secret = await self.backend.get(space)
        self._forget(space)
        if secret is not None:
            self._secrets[space] = secret
            self.bytes += stored_bytes(space, secret)


# -- admin routes: PUT/DELETE /admin/spaces/{space} ------------------------

SECRET_MAX_LENGTH = 1024
DATABASE_NAME = "spaces.sqlite3"
SPACES_KEY = web.AppKey("space_secrets", SpaceSecrets)


def _require_admin(request: web.Request) -> None:
    expected = request.app[SETTINGS_KEY].admin_token
    if expected is None:
        raise ADMIN_DISABLED(f"Admin routes are off: start the server with --admin-token "
                             f"<token> (or {env_name('--admin-token')}) and send "
                             f"'Authorization: Bearer <token>'.")
    require_token(request, expected, "admin")


async def put_space(request: web.Request) -> web.Response:
    """Set or rotate the secret pages need to join ``{space}::*`` channels."""
    _require_admin(request)
    space = validate_space(request.match_info["space"])
    raw = await read_body(request, SECRET_MAX_LENGTH + 1024, body_too_large)
    body = parse_json(raw, f"body of PUT /admin/spaces/{space}")
    secret = body.get("secret") if isinstance(body, dict) else None
    if not isinstance(secret, str) or not 1 <= len(secret) <= SECRET_MAX_LENGTH:
        raise INVALID_SPACE_SECRET(f'Send {{"secret": "<1 to {SECRET_MAX_LENGTH} characters>"}}; '
                                   f"pages join {space}::<name> with that secret.")
    created = await request.app[SPACES_KEY].set(space, secret)
    log.info("space %s secret %s", space, "set" if created else "rotated")
    return web.json_response({"space": space, "created": created})


async def delete_space(request: web.Request) -> web.Response:
    """Forget a space's secret: its channels refuse every new join until one is set again."""
    _require_admin(request)
    space = validate_space(request.match_info["space"])
    deleted = await request.app[SPACES_KEY].delete(space)
    if deleted:
        log.info("space %s secret deleted", space)
    return web.json_response({"space": space, "deleted": deleted})


def setup(app: web.Application, data_dir: Path,
          limits: SpaceLimits = SpaceLimits(), *, shared: bool = False) -> SpaceSecrets:
    """Create the app's space secrets; the database opens and loads in cleanup_ctx.

    ``shared``: in PostgreSQL (``--database-url``; :func:`.stores.postgres.setup` first).
    """
    backend: SqliteSpaceSecrets | PostgresSpaceSecrets
    if shared:
        from .stores.postgres import POSTGRES_KEY
        backend = PostgresSpaceSecrets(app[POSTGRES_KEY])
    else:
        backend = SqliteSpaceSecrets(data_dir / DATABASE_NAME)
    spaces = SpaceSecrets(backend, limits)
    app[SPACES_KEY] = spaces

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        await backend.open()
        if isinstance(backend, PostgresSpaceSecrets):
            await backend.watch(spaces.reload)  # before loading: no change falls in between
        await spaces.load()
        yield
        await backend.close()

    app.cleanup_ctx.append(lifetime)
    app.router.add_put("/admin/spaces/{space}", put_space, name="admin-space-put")
    app.router.add_delete("/admin/spaces/{space}", delete_space, name="admin-space-delete")
    return spaces
