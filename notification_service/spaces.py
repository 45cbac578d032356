"""Secrets of private spaces (``space::name`` channels), kept across restarts.

Backends set and rotate a space's secret at runtime (``PUT /admin/spaces/{space}``);
pages join ``space::name`` with it. :class:`SpaceSecrets` is what
:class:`~notification_service.access.ChannelAccess` asks: every secret is held
in memory so a join never waits for a database, and every change is written
through to a :class:`SpaceSecretBackend` first. Embedded default:
:class:`SqliteSpaceSecrets` (a file in the data directory, versioned schema);
a PostgreSQL backend only has to implement the same three methods.
This module never compares secrets (access.py does, in constant time) and never
logs them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Protocol

from aiohttp import web

from .config import SETTINGS_KEY, env_name
from .errors import ADMIN_DISABLED, INVALID_SPACE_SECRET
from .events import validate_space
from .producers.body import parse_json, read_body
from .tokens import require_token

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MIGRATIONS: dict[int, str] = {
    1: """
        CREATE TABLE space_secrets (
            space      TEXT PRIMARY KEY,
            secret     TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
    """,
}
SELECT_ALL = "SELECT space, secret FROM space_secrets"
UPSERT = """
    INSERT INTO space_secrets (space, secret, updated_at) VALUES (?, ?, ?)
    ON CONFLICT (space) DO UPDATE SET secret = excluded.secret, updated_at = excluded.updated_at
"""
DELETE = "DELETE FROM space_secrets WHERE space = ?"


class SpaceSecretBackend(Protocol):
    """Durable storage of space secrets; all I/O is async so any database fits."""

    async def load_all(self) -> dict[str, str]: ...

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
        self._db = await asyncio.to_thread(self._open)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if created and os.name == "posix":
            os.chmod(self.path, 0o600)  # the secrets are in clear: only we may read them
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise RuntimeError(f"{self.path} has schema version {version}, newer than this "
                               f"server's {SCHEMA_VERSION}: upgrade the server.")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            db.execute("BEGIN")
            try:
                db.execute(MIGRATIONS[target])
                db.execute(f"PRAGMA user_version = {target}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            log.info("space secrets database %s migrated to version %d", self.path, target)
        return db

    async def load_all(self) -> dict[str, str]:
        return dict(await self._run(lambda db: db.execute(SELECT_ALL).fetchall()))

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


class SpaceSecrets:
    """The secrets of every space, in memory, written through to ``backend``.

    Implements :class:`~notification_service.access.SpaceSecrets`. A rotation
    applies to the next join; listeners who joined earlier stay joined.
    """

    def __init__(self, backend: SpaceSecretBackend) -> None:
        self.backend = backend
        self._secrets: dict[str, str] = {}

    async def load(self) -> None:
        self._secrets = await self.backend.load_all()

    def get(self, space: str) -> str | None:
        return self._secrets.get(space)

    async def set(self, space: str, secret: str) -> bool:
        """Set or rotate; True if the space had no secret before."""
        await self.backend.put(space, secret)
        created = space not in self._secrets
        self._secrets[space] = secret
        return created

    async def delete(self, space: str) -> bool:
        """Forget the space's secret (its channels can no longer be joined); True if it had one."""
        await self.backend.delete(space)
        return self._secrets.pop(space, None) is not None


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
    raw = await read_body(request, SECRET_MAX_LENGTH + 1024)
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


def setup(app: web.Application, data_dir: Path) -> SpaceSecrets:
    """Create the app's space secrets; the database opens and loads in cleanup_ctx."""
    backend = SqliteSpaceSecrets(data_dir / DATABASE_NAME)
    spaces = SpaceSecrets(backend)
    app[SPACES_KEY] = spaces

    async def lifetime(_app: web.Application):  # type: ignore[no-untyped-def]
        await backend.open()
        await spaces.load()
        yield
        await backend.close()

    app.cleanup_ctx.append(lifetime)
    app.router.add_put("/admin/spaces/{space}", put_space, name="admin-space-put")
    app.router.add_delete("/admin/spaces/{space}", delete_space, name="admin-space-delete")
    return spaces
