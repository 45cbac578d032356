"""Versioned schemas of the SQLite files in the data folder (Web Push, spaces, alerts).

Each store lists its migrations, one tuple of statements per version; the
version a file has reached is its ``PRAGMA user_version``. :func:`migrate`
applies the missing ones, each in its own transaction, so a crash mid-way
leaves the file at the last complete version. It never downgrades: a file
from a newer server is refused with a sentence.
"""

from __future__ import annotations

import sqlite3
from typing import Sequence


class NewerSchema(sqlite3.DatabaseError):
    """The file was written by a newer server than this one."""


def migrate(db: sqlite3.Connection, migrations: Sequence[Sequence[str]]) -> list[int]:
    """Bring ``db`` to version ``len(migrations)``; return the versions it reached here.

    ``migrations[n]`` upgrades from version ``n`` to ``n + 1``. ``db`` must be in
    autocommit mode (``isolation_level=None``). Raises :class:`NewerSchema`.
    """
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise NewerSchema(f"schema version {version} is newer than this server's "
                          f"{len(migrations)}: upgrade the server")
    reached = []
    for target in range(version, len(migrations)):
        db.execute("BEGIN")
        try:
            for statement in migrations[target]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {target + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        reached.append(target + 1)
    return reached
