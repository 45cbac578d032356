"""The alert box's SQLite file in the data folder: designs, the media index, queue state.

One file (``alerts.sqlite3``), a versioned schema (``PRAGMA user_version``),
and one private thread that runs every statement, so a slow disk never stalls
the event loop and statements never interleave. The stores in this package
keep their SQL beside their logic and run it through :meth:`AlertDatabase.run`.
Nothing here knows what a design or a queue is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, TypeVar

from ..errors import StartupError
from ..stores.sqlite import NewerSchema, migrate

log = logging.getLogger(__name__)

FILE_NAME = "alerts.sqlite3"
# Each entry upgrades the schema from version (index) to version (index + 1).
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE designs (
            code     TEXT PRIMARY KEY,
            config   TEXT NOT NULL,
            revision INTEGER NOT NULL,
            updated  REAL NOT NULL
        )""",
        """CREATE TABLE media (
            name    TEXT PRIMARY KEY,
            type    TEXT NOT NULL,
            bytes   INTEGER NOT NULL,
            created REAL NOT NULL
        )""",
        """CREATE TABLE queues (
            code    TEXT PRIMARY KEY,
            state   TEXT NOT NULL,
            updated REAL NOT NULL
        )""",
    ),
]

T = TypeVar("T")


class AlertDatabase:
    """The SQLite file, opened with the app.

    :param path: the database file; created on open (mode 0600 where the system has modes).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerts-sqlite")

    async def open(self) -> None:
        self._db = await asyncio.get_running_loop().run_in_executor(self._thread, self._open)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA user_version").fetchone()  # a file that is no database fails here
        except sqlite3.DatabaseError as error:
            raise StartupError(f"{self.path} is not a usable SQLite file ({error}): move it "
                               f"away and start again (alert designs and queues start "
                               f"empty).") from None
        if created and os.name == "posix":
            os.chmod(self.path, 0o600)
        try:
            reached = migrate(db, MIGRATIONS)
        except NewerSchema as newer:
            db.close()
            raise StartupError(f"{self.path}: {newer}.") from None
        for version in reached:
            log.info("alerts database %s migrated to version %d", self.path, version)
        return db

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` on the database's thread."""
        db = self._db
        if db is None:
            raise RuntimeError("the alerts database is not open")
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, db)

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, db.close)
        self._thread.shutdown(wait=False)
