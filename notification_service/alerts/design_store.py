"""Where each code's alert designs are kept: SQLite in the data folder, or PostgreSQL.

:class:`DesignLibrary` is what the routes and the queue ask: it answers a
code's configuration from the store, else from the ``--alert-designs`` file's
default, else the starter designs, and writes through to the store. The
stores keep the JSON text exactly as validated (key order is the console's
order) with a revision that grows by one per write. Nothing here validates:
``designs.validate_config`` has done that before anything is stored.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .. import jsoncodec
from ..errors import ApiError, StartupError
from ..events import validate_code
from .designs import BASE_DESIGN, SAMPLE_DATA, STARTER_CONFIG, modes_of, validate_config
from .sqlite import AlertDatabase

SQLITE_SELECT = "SELECT config, revision, updated FROM designs WHERE code = ?"
SQLITE_UPSERT = """
INSERT INTO designs (code, config, revision, updated) VALUES (?, ?, 1, ?)
ON CONFLICT (code) DO UPDATE SET config = excluded.config, revision = designs.revision + 1,
    updated = excluded.updated
RETURNING revision, updated"""
SQLITE_CODES = "SELECT code FROM designs ORDER BY code"

POSTGRES_MIGRATIONS: list[list[str]] = [[
    """CREATE TABLE alert_designs (
        code     TEXT PRIMARY KEY,
        config   TEXT NOT NULL,
        revision INTEGER NOT NULL,
        updated  DOUBLE PRECISION NOT NULL
    )""",
]]
POSTGRES_SELECT = "SELECT config, revision, updated FROM alert_designs WHERE code = $1"
POSTGRES_UPSERT = """
INSERT INTO alert_designs (code, config, revision, updated) VALUES ($1, $2, 1, $3)
ON CONFLICT (code) DO UPDATE SET config = excluded.config,
    revision = alert_designs.revision + 1, updated = excluded.updated
RETURNING revision, updated"""
POSTGRES_CODES = "SELECT code FROM alert_designs ORDER BY code"


@dataclass(frozen=True)
class StoredDesigns:
    config: dict[str, Any]
    revision: int
    updated: float


class DesignStore(Protocol):
    """Durable designs per code; a write returns the new revision."""

    async def get(self, code: str) -> StoredDesigns | None: ...

    async def put(self, code: str, config: dict[str, Any]) -> StoredDesigns: ...

    async def codes(self) -> list[str]: ...


class SqliteDesignStore:
    def __init__(self, database: AlertDatabase) -> None:
        self.database = database

    async def get(self, code: str) -> StoredDesigns | None:
        row = await self.database.run(lambda db: db.execute(SQLITE_SELECT, (code,)).fetchone())
        return None if row is None else StoredDesigns(jsoncodec.loads(row[0]), row[1], row[2])

    async def put(self, code: str, config: dict[str, Any]) -> StoredDesigns:
        text = jsoncodec.dumps(config)
        revision, updated = await self.database.run(
            lambda db: db.execute(SQLITE_UPSERT, (code, text, time.time())).fetchone())
        return StoredDesigns(config, revision, updated)

    async def codes(self) -> list[str]:
        rows = await self.database.run(lambda db: db.execute(SQLITE_CODES).fetchall())
        return [row[0] for row in rows]


class PostgresDesignStore:
    """Designs in PostgreSQL (``--database-url``): every node reads the same ones."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def get(self, code: str) -> StoredDesigns | None:
        row = await self.pool.fetchrow(POSTGRES_SELECT, code)
        return None if row is None else StoredDesigns(jsoncodec.loads(row[0]), row[1], row[2])

    async def put(self, code: str, config: dict[str, Any]) -> StoredDesigns:
        row = await self.pool.fetchrow(POSTGRES_UPSERT, code, jsoncodec.dumps(config),
                                       time.time())
        return StoredDesigns(config, row[0], row[1])

    async def codes(self) -> list[str]:
        return [row[0] for row in await self.pool.fetch(POSTGRES_CODES)]


class DesignLibrary:
    """A code's configuration as the overlay and the console see it.

    :param store: where designs written through the API live.
    :param fallback: the ``--alert-designs`` file's configuration for every code
        without its own (None: the starter designs).
    """

    def __init__(self, store: DesignStore, fallback: dict[str, Any] | None = None) -> None:
        self.store = store
        self.fallback = fallback

    async def answer(self, code: str) -> dict[str, Any]:
        """What ``GET /codes/{code}/alerts`` answers (a PUT of it is accepted unchanged)."""
        stored = await self.store.get(code)
        if stored is not None:
            return _answer(stored.config, stored.revision, stored.updated, "stored")
        source = "file" if self.fallback is not None else "starter"
        config = copy.deepcopy(self.fallback if self.fallback is not None else STARTER_CONFIG)
        return _answer(config, 0, None, source)

    async def put(self, code: str, config: dict[str, Any]) -> dict[str, Any]:
        stored = await self.store.put(code, config)
        return _answer(stored.config, stored.revision, stored.updated, "stored")

    async def modes(self, code: str) -> dict[str, str]:
        return modes_of(await self.answer(code))

    async def load_file(self, path: Path) -> list[str]:
        """Read ``--alert-designs``: keep its default, store its codes; return the codes stored.

        A file that is not valid JSON or not valid designs stops the start with
        a sentence naming the file and the key.
        """
        try:
            content = jsoncodec.loads(path.read_bytes())
        except (OSError, ValueError) as error:
            raise StartupError(f"{path}: cannot read the alert designs ({error}); fix the file "
                               f"or drop --alert-designs.") from None
        try:
            if isinstance(content, dict) and "codes" in content:
                codes = content["codes"]
                if not isinstance(codes, dict):
                    raise StartupError(f"{path}: \"codes\" maps codes to configurations.")
                extra = set(content) - {"codes"}
                if extra:
                    raise StartupError(f"{path}: a file with \"codes\" has nothing else at "
                                       f"the top (found {', '.join(sorted(extra))}); put the "
                                       f"designs for every other code under \"codes\": "
                                       f"{{\"*\": ...}}.")
                configs = {code: validate_config(config, f"codes.{code}")
                           for code, config in codes.items()}
            else:
                configs = {"*": validate_config(content)}
            for code in configs:
                if code != "*":
                    validate_code(code)
        except ApiError as error:
            raise StartupError(f"{path}: {error.message}") from None
        self.fallback = configs.pop("*", None)
        for code, config in configs.items():
            await self.store.put(code, config)
        return sorted(configs)


def _answer(config: dict[str, Any], revision: int, updated: float | None, source: str
            ) -> dict[str, Any]:
    """The configuration plus what the overlay and console read alongside (ignored on PUT)."""
    return {**config, "revision": revision, "updated": updated, "source": source,
            "base": BASE_DESIGN, "samples": SAMPLE_DATA}
