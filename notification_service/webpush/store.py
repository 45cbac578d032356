"""Where Web Push subscriptions live between restarts: SQLite in the data directory.

A subscription is keyed by its endpoint (a browser re-subscribing with the same
endpoint updates it) and attached to channels: its ``id`` (a session or user),
its ``group`` and any ``channels`` it asked for. The sender reports outcomes in
one call per batch, never one write per recipient. :class:`SubscriptionStore`
is the interface the rest of the package uses, so a PostgreSQL store can
replace :class:`SqliteSubscriptionStore` without touching the sender. Blocking
sqlite3 calls run on one private thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, TypeVar

SCHEMA_VERSION = 1

# Each entry upgrades the schema from version (index) to version (index + 1).
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE subscriptions (
            endpoint TEXT PRIMARY KEY,
            p256dh TEXT NOT NULL,
            auth TEXT NOT NULL,
            subscriber_id TEXT,
            group_name TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            last_success REAL,
            last_failure REAL,
            failure_streak INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX subscriptions_by_id ON subscriptions (subscriber_id)",
        """CREATE TABLE subscription_channels (
            channel TEXT NOT NULL,
            endpoint TEXT NOT NULL REFERENCES subscriptions (endpoint) ON DELETE CASCADE,
            PRIMARY KEY (channel, endpoint)
        ) WITHOUT ROWID""",
        "CREATE INDEX subscription_channels_by_endpoint ON subscription_channels (endpoint)",
    ),
]

SELECT_COLUMNS = ("s.endpoint, s.p256dh, s.auth, s.subscriber_id, s.group_name, s.created, "
                  "s.last_success, s.last_failure, s.failure_streak")
UPSERT_SUBSCRIPTION = """
INSERT INTO subscriptions (endpoint, p256dh, auth, subscriber_id, group_name, created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (endpoint) DO UPDATE SET
    p256dh = excluded.p256dh, auth = excluded.auth, subscriber_id = excluded.subscriber_id,
    group_name = excluded.group_name, updated = excluded.updated, failure_streak = 0
"""
SELECT_EXISTS = "SELECT 1 FROM subscriptions WHERE endpoint = ?"
DELETE_CHANNELS_OF = "DELETE FROM subscription_channels WHERE endpoint = ?"
INSERT_CHANNEL = "INSERT OR IGNORE INTO subscription_channels (channel, endpoint) VALUES (?, ?)"
DELETE_BY_ENDPOINT = "DELETE FROM subscriptions WHERE endpoint = ?"
DELETE_BY_ID = "DELETE FROM subscriptions WHERE subscriber_id = ?"
SELECT_BY_CHANNEL = (f"SELECT {SELECT_COLUMNS} FROM subscription_channels c "
                     f"JOIN subscriptions s ON s.endpoint = c.endpoint WHERE c.channel = ?")
SELECT_ALL = f"SELECT {SELECT_COLUMNS} FROM subscriptions s"
SELECT_ONE = f"SELECT {SELECT_COLUMNS} FROM subscriptions s WHERE s.endpoint = ?"
SELECT_CHANNELS_OF = "SELECT channel FROM subscription_channels WHERE endpoint = ? ORDER BY channel"
COUNT_ALL = "SELECT COUNT(*) FROM subscriptions"
MARK_SUCCESS = ("UPDATE subscriptions SET last_success = ?, failure_streak = 0 "
                "WHERE endpoint = ?")
MARK_FAILURE = ("UPDATE subscriptions SET last_failure = ?, failure_streak = failure_streak + 1 "
                "WHERE endpoint = ?")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One browser's push subscription and what it listens to.

    ``p256dh`` and ``auth`` are the browser's keys as URL-safe base64, exactly
    as ``PushSubscription.toJSON()`` gives them.
    """

    endpoint: str
    p256dh: str
    auth: str
    id: str | None = None
    group: str | None = None
    channels: tuple[str, ...] = ()

    @property
    def attached_channels(self) -> tuple[str, ...]:
        """Every channel whose pushes reach this subscription: id, group, channels."""
        found = [c for c in (self.id, self.group) if c]
        found.extend(c for c in self.channels if c not in found)
        return tuple(found)


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """A stored subscription with its delivery history (Unix seconds)."""

    subscription: Subscription
    created: float
    last_success: float | None
    last_failure: float | None
    failure_streak: int


@dataclass(slots=True)
class Outcomes:
    """What one batch did to the store: written in a single call."""

    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)


class SubscriptionStore(Protocol):
    """What the sender, transport, routes and Python API need from a store."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def upsert(self, subscription: Subscription) -> bool:
        """Store or replace by endpoint; True if it is new."""
    async def remove_endpoint(self, endpoint: str) -> int: ...
    async def remove_id(self, subscriber_id: str) -> int: ...
    async def for_channel(self, channel: str) -> list[Subscription]: ...
    async def all(self) -> list[Subscription]: ...
    async def get(self, endpoint: str) -> SubscriptionRecord | None: ...
    async def count(self) -> int: ...
    async def record(self, outcomes: Outcomes) -> None: ...


T = TypeVar("T")


class SqliteSubscriptionStore:
    """:class:`SubscriptionStore` on one SQLite file, used from one private thread.

    :param path: the database file (created with its folder on :meth:`open`).
    :param clock: Unix time source, replaceable in tests.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    # -- lifetime --------------------------------------------------------
    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webpush-store")
        await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 5000")
        self._db = db
        self._migrate(db)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"The Web Push database has schema version {version}, newer than "
                               f"this server understands ({SCHEMA_VERSION}); upgrade the server.")
        for target in range(version, SCHEMA_VERSION):
            db.execute("BEGIN")
            for statement in MIGRATIONS[target]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {target + 1}")
            db.execute("COMMIT")

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._run(self._close)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("The subscription store is not open.")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "store not open"
        return self._db

    # -- interface -------------------------------------------------------
    async def upsert(self, subscription: Subscription) -> bool:
        return await self._run(self._upsert, subscription)

    def _upsert(self, s: Subscription) -> bool:
        now = self.clock()
        with self._transaction():
            is_new = self.db.execute(SELECT_EXISTS, (s.endpoint,)).fetchone() is None
            self.db.execute(UPSERT_SUBSCRIPTION, (s.endpoint, s.p256dh, s.auth, s.id, s.group,
                                                  now, now))
            self.db.execute(DELETE_CHANNELS_OF, (s.endpoint,))
            self.db.executemany(INSERT_CHANNEL, [(c, s.endpoint) for c in s.attached_channels])
        return is_new

    async def remove_endpoint(self, endpoint: str) -> int:
        return await self._run(self._delete, DELETE_BY_ENDPOINT, endpoint)

    async def remove_id(self, subscriber_id: str) -> int:
        return await self._run(self._delete, DELETE_BY_ID, subscriber_id)

    def _delete(self, statement: str, key: str) -> int:
        with self._transaction():
            return self.db.execute(statement, (key,)).rowcount

    async def for_channel(self, channel: str) -> list[Subscription]:
        return await self._run(self._select, SELECT_BY_CHANNEL, (channel,))

    async def all(self) -> list[Subscription]:
        return await self._run(self._select, SELECT_ALL, ())

    def _select(self, statement: str, parameters: Sequence[Any]) -> list[Subscription]:
        # Channels are not needed to send, so they are not loaded for fan-outs.
        return [Subscription(row[0], row[1], row[2], row[3], row[4])
                for row in self.db.execute(statement, parameters)]

    async def get(self, endpoint: str) -> SubscriptionRecord | None:
        return await self._run(self._get, endpoint)

    def _get(self, endpoint: str) -> SubscriptionRecord | None:
        row = self.db.execute(SELECT_ONE, (endpoint,)).fetchone()
        if row is None:
            return None
        channels = tuple(r[0] for r in self.db.execute(SELECT_CHANNELS_OF, (endpoint,)))
        extra = tuple(c for c in channels if c not in (row[3], row[4]))
        return SubscriptionRecord(Subscription(row[0], row[1], row[2], row[3], row[4], extra),
                                  row[5], row[6], row[7], row[8])

    async def count(self) -> int:
        return await self._run(lambda: self.db.execute(COUNT_ALL).fetchone()[0])

    async def record(self, outcomes: Outcomes) -> None:
        if outcomes.succeeded or outcomes.failed or outcomes.gone:
            await self._run(self._record, outcomes)

    def _record(self, outcomes: Outcomes) -> None:
        now = self.clock()
        with self._transaction():
            self.db.executemany(MARK_SUCCESS, [(now, e) for e in outcomes.succeeded])
            self.db.executemany(MARK_FAILURE, [(now, e) for e in outcomes.failed])
            self.db.executemany(DELETE_BY_ENDPOINT, [(e,) for e in outcomes.gone])

    def _transaction(self) -> "_Transaction":
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: object, *_rest: object) -> None:
        self.db.execute("ROLLBACK" if kind else "COMMIT")
