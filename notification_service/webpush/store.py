"""Where Web Push subscriptions live between restarts: SQLite in the data directory.

A subscription is keyed by its endpoint (a browser re-subscribing with the same
endpoint updates it) and attached to channels: its ``id`` (a session or user),
its ``group`` and any ``channels`` it asked for. The sender reports outcomes in
one call per batch, never one write per recipient. :class:`SubscriptionStore`
is the interface the rest of the package uses, so the PostgreSQL store
(:mod:`.postgres`, ``--database-url``) replaces :class:`SqliteSubscriptionStore`
without touching the sender; its
docstring is the contract (bounded in rows and bytes, checked atomically with
the write; failing subscriptions pruned). Blocking sqlite3 calls run on one
private thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, TypeVar

from ..errors import StartupError
from ..stores.sqlite import migrate


# What storing a subscription costs, counted the same way by every store (see
# stored_bytes): each byte of text once per copy the schema keeps (a table and
# an index) and half as much again for B-tree pages that inserts in the worst
# order leave half empty, plus a fixed amount per row for record headers,
# cells and numbers. Measured on SQLite 3.40: the files (database and WAL) stay
# within 1.5 times the bound for the longest rows inserted in descending order
# (1.2 once the WAL is checkpointed), and use about 0.6 times it for typical
# ones (a 128 MiB bound holds about 100,000 browser subscriptions).
INDEXED_TEXT = 3
"""Per byte of a text kept in a table and an index (endpoint, id, channel)."""
TEXT = 2
"""Per byte of a text kept once (keys, group)."""
SUBSCRIPTION_ROW_BYTES = 256
CHANNEL_ROW_BYTES = 64
_SIZE_SQL = (
    f"{INDEXED_TEXT} * length(CAST(endpoint AS BLOB)) + {TEXT} * (length(p256dh) + length(auth))"
    f" + {INDEXED_TEXT} * COALESCE(length(CAST(subscriber_id AS BLOB)), 0)"
    f" + {TEXT} * COALESCE(length(CAST(group_name AS BLOB)), 0)"
    f" + {SUBSCRIPTION_ROW_BYTES} + (SELECT COALESCE(SUM({INDEXED_TEXT} * "
    f"length(CAST(channel AS BLOB)) + {CHANNEL_ROW_BYTES}), 0) FROM subscription_channels c "
    f"WHERE c.subscription = subscriptions.id)"
)
_SUBSCRIPTIONS_V2 = """CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    subscriber_id TEXT,
    group_name TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    last_success REAL,
    last_failure REAL,
    failure_streak INTEGER NOT NULL DEFAULT 0,
    failing_since REAL,
    size INTEGER NOT NULL DEFAULT 0
)"""
_CHANNELS_V2 = """CREATE TABLE subscription_channels (
    channel TEXT NOT NULL,
    subscription INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    PRIMARY KEY (channel, subscription)
) WITHOUT ROWID"""

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
    # 2: channels point at an integer id instead of repeating the endpoint (a
    # 2 KB endpoint on 32 channels was stored 100 times), each row knows its
    # size, and one row of totals makes the caps a single read.
    (
        "DROP INDEX subscriptions_by_id",
        "DROP INDEX subscription_channels_by_endpoint",
        "ALTER TABLE subscription_channels RENAME TO subscription_channels_v1",
        "ALTER TABLE subscriptions RENAME TO subscriptions_v1",
        _SUBSCRIPTIONS_V2,
        "CREATE INDEX subscriptions_by_id ON subscriptions (subscriber_id)",
        _CHANNELS_V2,
        "CREATE INDEX subscription_channels_by_subscription ON subscription_channels "
        "(subscription)",
        """INSERT INTO subscriptions (endpoint, p256dh, auth, subscriber_id, group_name, created,
               updated, last_success, last_failure, failure_streak, failing_since)
           SELECT endpoint, p256dh, auth, subscriber_id, group_name, created, updated,
               last_success, last_failure, failure_streak,
               CASE WHEN failure_streak > 0 THEN last_failure END
           FROM subscriptions_v1""",
        """INSERT INTO subscription_channels (channel, subscription)
           SELECT c.channel, s.id FROM subscription_channels_v1 c
           JOIN subscriptions s ON s.endpoint = c.endpoint""",
        f"UPDATE subscriptions SET size = {_SIZE_SQL}",
        "DROP TABLE subscription_channels_v1",
        "DROP TABLE subscriptions_v1",
        """CREATE TABLE totals (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            count INTEGER NOT NULL,
            bytes INTEGER NOT NULL
        )""",
        "INSERT INTO totals (id, count, bytes) SELECT 0, COUNT(*), COALESCE(SUM(size), 0) "
        "FROM subscriptions",
        """CREATE TRIGGER totals_insert AFTER INSERT ON subscriptions BEGIN
            UPDATE totals SET count = count + 1, bytes = bytes + NEW.size WHERE id = 0;
        END""",
        """CREATE TRIGGER totals_delete AFTER DELETE ON subscriptions BEGIN
            UPDATE totals SET count = count - 1, bytes = bytes - OLD.size WHERE id = 0;
        END""",
        """CREATE TRIGGER totals_update AFTER UPDATE OF size ON subscriptions BEGIN
            UPDATE totals SET bytes = bytes - OLD.size + NEW.size WHERE id = 0;
        END""",
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)

SELECT_COLUMNS = ("s.endpoint, s.p256dh, s.auth, s.subscriber_id, s.group_name, s.created, "
                  "s.last_success, s.last_failure, s.failure_streak")
UPSERT_SUBSCRIPTION = """
INSERT INTO subscriptions (endpoint, p256dh, auth, subscriber_id, group_name, created, updated,
                           size)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (endpoint) DO UPDATE SET
    p256dh = excluded.p256dh, auth = excluded.auth, subscriber_id = excluded.subscriber_id,
    group_name = excluded.group_name, updated = excluded.updated, size = excluded.size,
    failure_streak = 0, failing_since = NULL
RETURNING id
"""
SELECT_SIZE = "SELECT id, size FROM subscriptions WHERE endpoint = ?"
SELECT_TOTALS = "SELECT count, bytes FROM totals WHERE id = 0"
DELETE_CHANNELS_OF = "DELETE FROM subscription_channels WHERE subscription = ?"
INSERT_CHANNEL = ("INSERT OR IGNORE INTO subscription_channels (channel, subscription) "
                  "VALUES (?, ?)")
DELETE_BY_ENDPOINT = "DELETE FROM subscriptions WHERE endpoint = ?"
DELETE_BY_ID = "DELETE FROM subscriptions WHERE subscriber_id = ?"
SELECT_BY_CHANNEL = (f"SELECT {SELECT_COLUMNS} FROM subscription_channels c "
                     f"JOIN subscriptions s ON s.id = c.subscription WHERE c.channel = ?")
SELECT_ALL = f"SELECT {SELECT_COLUMNS} FROM subscriptions s"
SELECT_ONE = f"SELECT {SELECT_COLUMNS}, s.id FROM subscriptions s WHERE s.endpoint = ?"
SELECT_CHANNELS_OF = ("SELECT channel FROM subscription_channels WHERE subscription = ? "
                      "ORDER BY channel")
MARK_SUCCESS = ("UPDATE subscriptions SET last_success = ?, failure_streak = 0, "
                "failing_since = NULL WHERE endpoint = ?")
MARK_FAILURE = ("UPDATE subscriptions SET last_failure = ?, failure_streak = failure_streak + 1, "
                "failing_since = COALESCE(failing_since, ?) WHERE endpoint = ?")
PRUNE = ("DELETE FROM subscriptions WHERE endpoint = ? AND failure_streak >= ? "
         "AND failing_since <= ?")


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


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """What a store may hold, and when it forgets a subscription that keeps failing.

    :param max_subscriptions: rows (``--webpush-max-subscriptions``).
    :param max_bytes: the sum of :func:`stored_bytes` over every row (``--webpush-max-bytes``).
    :param prune_failures: consecutive failed pushes (``--webpush-prune-failures``) ...
    :param prune_seconds: ... that must span at least this long (``--webpush-prune-days``)
        before the subscription is removed.
    """

    max_subscriptions: int = 100_000
    max_bytes: int = 128 * 1024 * 1024
    prune_failures: int = 10
    prune_seconds: float = 7 * 86_400.0

    def check(self, count: int, total: int, *, size: int, freed: int, added_rows: int) -> None:
        """Refuse a write that would take the store past a bound (and grow it).

        ``count``/``total`` are the rows and bytes stored now; the write adds a row
        of ``size`` bytes, frees ``freed`` bytes and changes the row count by
        ``added_rows``. Called inside the write's transaction by every store, so
        the bound holds under concurrent writers.
        """
        new_count = count + added_rows
        new_total = total - freed + size
        if new_count > self.max_subscriptions and new_count > count:
            raise SubscriptionsFull(
                f"This server stores at most {self.max_subscriptions} push subscriptions "
                f"(--webpush-max-subscriptions); it cannot take another.")
        if new_total > self.max_bytes and new_total > total:
            raise SubscriptionsFull(
                f"The stored push subscriptions may take at most {self.max_bytes} bytes "
                f"(--webpush-max-bytes) and this one ({size} bytes) does not fit; fewer or "
                f"shorter channels need less.")


class SubscriptionsFull(Exception):
    """Storing one more subscription would pass a bound of :class:`StoreLimits`; nothing was stored.

    The message says which bound (rows or bytes) and its flag."""


def stored_bytes(subscription: Subscription) -> int:
    """What storing ``subscription`` costs against ``max_bytes``; the same in every store.

    See :data:`INDEXED_TEXT`: the SQLite files stay within 1.5 times the bound
    whatever the rows (tests/test_webpush_limits.py measures it); another store
    counts the same figure, so ``--webpush-max-bytes`` means the same everywhere.
    """
    def size(text: str | None) -> int:
        return len(text.encode("utf-8")) if text else 0
    return (INDEXED_TEXT * (size(subscription.endpoint) + size(subscription.id))
            + TEXT * (size(subscription.p256dh) + size(subscription.auth) + size(subscription.group))
            + SUBSCRIPTION_ROW_BYTES
            + sum(INDEXED_TEXT * size(channel) + CHANNEL_ROW_BYTES
                  for channel in subscription.attached_channels))


class SubscriptionStore(Protocol):
    """What the sender, transport, routes and Python API need from a store.

    The contract every implementation keeps (SQLite here, PostgreSQL in
    :mod:`.postgres`), checked by the same tests:

    - **Bounded.** A store is built with :class:`StoreLimits`. :meth:`upsert`
      raises :class:`SubscriptionsFull` instead of storing a subscription that
      would make the rows exceed ``max_subscriptions`` or the sum of
      :func:`stored_bytes` exceed ``max_bytes``. Replacing a stored endpoint
      counts its new size instead of its old one; a change that does not grow
      the store is always accepted. The check and the write are one atomic
      step: concurrent upserts (several requests, several nodes) never store
      more than the bounds, not by a single row.
    - **Keyed by endpoint.** Upserting an endpoint again replaces its keys, id,
      group and channels, and resets its failure streak.
    - **Outcomes in one call per batch** (:meth:`record`): a success resets the
      streak; a failure adds one and remembers when the streak began; "gone"
      removes. A subscription whose streak reaches ``prune_failures`` and began
      ``prune_seconds`` ago or more is removed by the same call, which returns
      how many it removed that way.
    """

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def upsert(self, subscription: Subscription, replaces: str | None = None) -> bool:
        """Store or replace by endpoint; True if it is new. ``replaces`` names an endpoint
        removed in the same atomic step (``pushsubscriptionchange``), its row freeing room.
        Raises :class:`SubscriptionsFull` past the limits."""
    async def remove_endpoint(self, endpoint: str) -> int: ...
    async def remove_id(self, subscriber_id: str) -> int: ...
    async def for_channel(self, channel: str) -> list[Subscription]: ...
    async def all(self) -> list[Subscription]: ...
    async def get(self, endpoint: str) -> SubscriptionRecord | None: ...
    async def count(self) -> int: ...
    async def stored(self) -> tuple[int, int]:
        """(rows, bytes) as counted against the limits."""
    async def record(self, outcomes: Outcomes) -> int:
        """Write a batch's outcomes; return how many failing subscriptions were pruned."""


T = TypeVar("T")


class SqliteSubscriptionStore:
    """:class:`SubscriptionStore` on one SQLite file, used from one private thread.

    :param path: the database file (created with its folder on :meth:`open`).
    :param limits: the bounds and the pruning rule.
    :param clock: Unix time source, replaceable in tests.

    Every write is one ``BEGIN IMMEDIATE`` transaction on the store's only
    thread, so the check against the limits and the insert cannot interleave
    with another writer, in this process or another.
    """

    def __init__(self, path: Path, limits: StoreLimits = StoreLimits(),
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.limits = limits
        self.clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    # -- lifetime --------------------------------------------------------
    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webpush-store")
        try:
            await self._run(self._open)
        except sqlite3.Error as error:
            await self.close()
            raise StartupError(
                f"The Web Push database {self.path.resolve()} cannot be opened ({error}): if "
                f"it is damaged, move it away (the server starts with no subscriptions) or "
                f"restore it from a backup.") from None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 5000")
            # The WAL is checkpointed every 1 MiB of pages (not 4 MiB) and cut back to
            # 1 MiB after, so the files on disk stay close to what the rows take.
            db.execute("PRAGMA wal_autocheckpoint = 256")
            db.execute("PRAGMA journal_size_limit = 1048576")
            migrate(db, MIGRATIONS)
        except BaseException:
            db.close()
            raise
        self._db = db

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
        if self._db is None:
            raise RuntimeError("The subscription store is not open.")
        return self._db

    # -- interface -------------------------------------------------------
    async def upsert(self, subscription: Subscription, replaces: str | None = None) -> bool:
        try:
            return await self._run(self._upsert, subscription, replaces)
        except sqlite3.OperationalError as error:
            if "full" not in str(error):
                raise
            raise SubscriptionsFull(f"The disk holding {self.path.name} is full: nothing more "
                                    f"can be stored until the server's operator frees space.") from None

    def _upsert(self, s: Subscription, replaces: str | None) -> bool:
        now = self.clock()
        size = stored_bytes(s)
        with self._transaction():
            current = self.db.execute(SELECT_SIZE, (s.endpoint,)).fetchone()
            replaced = None
            if replaces is not None and replaces != s.endpoint:
                replaced = self.db.execute(SELECT_SIZE, (replaces,)).fetchone()
            self._check_limits(size, current, replaced)
            if replaced is not None:
                self.db.execute(DELETE_BY_ENDPOINT, (replaces,))
            (row_id,) = self.db.execute(UPSERT_SUBSCRIPTION, (
                s.endpoint, s.p256dh, s.auth, s.id, s.group, now, now, size)).fetchone()
            self.db.execute(DELETE_CHANNELS_OF, (row_id,))
            self.db.executemany(INSERT_CHANNEL, [(c, row_id) for c in s.attached_channels])
        return current is None

    def _check_limits(self, size: int, current: Any, replaced: Any) -> None:
        """Inside the write transaction: refuse what would pass a bound (and grow the store)."""
        count, total = self.db.execute(SELECT_TOTALS).fetchone()
        self.limits.check(count, total, size=size,
                          freed=(current[1] if current else 0) + (replaced[1] if replaced else 0),
                          added_rows=(0 if current else 1) - (1 if replaced else 0))

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
        channels = tuple(r[0] for r in self.db.execute(SELECT_CHANNELS_OF, (row[9],)))
        extra = tuple(c for c in channels if c not in (row[3], row[4]))
        return SubscriptionRecord(Subscription(row[0], row[1], row[2], row[3], row[4], extra),
                                  row[5], row[6], row[7], row[8])

    async def count(self) -> int:
        return (await self.stored())[0]

    async def stored(self) -> tuple[int, int]:
        return await self._run(lambda: tuple(self.db.execute(SELECT_TOTALS).fetchone()))

    async def record(self, outcomes: Outcomes) -> int:
        if outcomes.succeeded or outcomes.failed or outcomes.gone:
            return await self._run(self._record, outcomes)
        return 0

    def _record(self, outcomes: Outcomes) -> int:
        now = self.clock()
        began_before = now - self.limits.prune_seconds
        with self._transaction():
            self.db.executemany(MARK_SUCCESS, [(now, e) for e in outcomes.succeeded])
            self.db.executemany(MARK_FAILURE, [(now, now, e) for e in outcomes.failed])
            self.db.executemany(DELETE_BY_ENDPOINT, [(e,) for e in outcomes.gone])
            pruned = self.db.executemany(PRUNE, [
                (e, self.limits.prune_failures, began_before) for e in outcomes.failed])
            return max(0, pruned.rowcount)

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
