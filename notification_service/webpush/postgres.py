"""Web Push subscriptions in PostgreSQL (``--database-url``): every node sends to the same ones.

The tables are the SQLite store's (schema version 2 there, 1 here), with a
``webpush_`` prefix since the database is shared with other stores, and the
same totals row kept by a trigger. It keeps the :class:`~.store.SubscriptionStore`
contract: every write is one transaction that first locks the totals row, so
the check against the limits and the write are one step across all nodes, and
writers never deadlock (they all take that lock first).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ..stores.postgres import answered_when_down
from .store import (Outcomes, StoreLimits, Subscription, SubscriptionRecord,
                    stored_bytes)

STORE_NAME = "webpush"
WHAT = "Web Push subscriptions"
MIGRATIONS: list[tuple[str, ...]] = [(
    """CREATE TABLE webpush_subscriptions (
        id BIGSERIAL PRIMARY KEY,
        endpoint TEXT NOT NULL UNIQUE,
        p256dh TEXT NOT NULL,
        auth TEXT NOT NULL,
        subscriber_id TEXT,
        group_name TEXT,
        created DOUBLE PRECISION NOT NULL,
        updated DOUBLE PRECISION NOT NULL,
        last_success DOUBLE PRECISION,
        last_failure DOUBLE PRECISION,
        failure_streak INTEGER NOT NULL DEFAULT 0,
        failing_since DOUBLE PRECISION,
        size INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX webpush_subscriptions_by_id ON webpush_subscriptions (subscriber_id)",
    """CREATE TABLE webpush_subscription_channels (
        channel TEXT NOT NULL,
        subscription BIGINT NOT NULL REFERENCES webpush_subscriptions (id) ON DELETE CASCADE,
        PRIMARY KEY (channel, subscription)
    )""",
    "CREATE INDEX webpush_subscription_channels_by_subscription "
    "ON webpush_subscription_channels (subscription)",
    """CREATE TABLE webpush_totals (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        count BIGINT NOT NULL,
        bytes BIGINT NOT NULL
    )""",
    "INSERT INTO webpush_totals (id, count, bytes) VALUES (0, 0, 0)",
    """CREATE FUNCTION webpush_count_totals() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            UPDATE webpush_totals SET count = count + 1, bytes = bytes + NEW.size WHERE id = 0;
        ELSIF TG_OP = 'DELETE' THEN
            UPDATE webpush_totals SET count = count - 1, bytes = bytes - OLD.size WHERE id = 0;
        ELSE
            UPDATE webpush_totals SET bytes = bytes - OLD.size + NEW.size WHERE id = 0;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER webpush_totals AFTER INSERT OR DELETE OR UPDATE OF size
        ON webpush_subscriptions FOR EACH ROW EXECUTE FUNCTION webpush_count_totals()""",
)]

COLUMNS = ("s.endpoint, s.p256dh, s.auth, s.subscriber_id, s.group_name, s.created, "
           "s.last_success, s.last_failure, s.failure_streak")
LOCK_TOTALS = "SELECT count, bytes FROM webpush_totals WHERE id = 0 FOR UPDATE"
SELECT_TOTALS = "SELECT count, bytes FROM webpush_totals WHERE id = 0"
SELECT_SIZE = "SELECT id, size FROM webpush_subscriptions WHERE endpoint = $1"
UPSERT = """
INSERT INTO webpush_subscriptions (endpoint, p256dh, auth, subscriber_id, group_name, created,
                                   updated, size)
VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
ON CONFLICT (endpoint) DO UPDATE SET
    p256dh = excluded.p256dh, auth = excluded.auth, subscriber_id = excluded.subscriber_id,
    group_name = excluded.group_name, updated = excluded.updated, size = excluded.size,
    failure_streak = 0, failing_since = NULL
RETURNING id"""
DELETE_CHANNELS_OF = "DELETE FROM webpush_subscription_channels WHERE subscription = $1"
INSERT_CHANNELS = """
INSERT INTO webpush_subscription_channels (channel, subscription)
SELECT channel, $2 FROM unnest($1::text[]) AS channel ON CONFLICT DO NOTHING"""
DELETE_BY_ENDPOINT = "DELETE FROM webpush_subscriptions WHERE endpoint = $1"
DELETE_BY_ENDPOINTS = "DELETE FROM webpush_subscriptions WHERE endpoint = ANY($1::text[])"
DELETE_BY_ID = "DELETE FROM webpush_subscriptions WHERE subscriber_id = $1"
SELECT_BY_CHANNEL = (f"SELECT {COLUMNS} FROM webpush_subscription_channels c "
                     f"JOIN webpush_subscriptions s ON s.id = c.subscription WHERE c.channel = $1")
SELECT_ALL = f"SELECT {COLUMNS} FROM webpush_subscriptions s"
SELECT_ONE = f"SELECT {COLUMNS}, s.id FROM webpush_subscriptions s WHERE s.endpoint = $1"
SELECT_CHANNELS_OF = ("SELECT channel FROM webpush_subscription_channels WHERE subscription = $1 "
                      "ORDER BY channel")
MARK_SUCCESS = ("UPDATE webpush_subscriptions SET last_success = $1, failure_streak = 0, "
                "failing_since = NULL WHERE endpoint = ANY($2::text[])")
MARK_FAILURE = ("UPDATE webpush_subscriptions SET last_failure = $1, "
                "failure_streak = failure_streak + 1, failing_since = COALESCE(failing_since, $1) "
                "WHERE endpoint = ANY($2::text[])")
PRUNE = ("DELETE FROM webpush_subscriptions WHERE endpoint = ANY($1::text[]) "
         "AND failure_streak >= $2 AND failing_since <= $3")


class PostgresSubscriptionStore:
    """:class:`~.store.SubscriptionStore` on the node's PostgreSQL pool.

    :param database: the node's :class:`~..stores.postgres.Database` (open before :meth:`open`).
    :param limits: the bounds and the pruning rule, as for SQLite.
    :param clock: Unix time source, replaceable in tests.
    """

    def __init__(self, database: Any, limits: StoreLimits = StoreLimits(),
                 clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.limits = limits
        self.clock = clock

    @property
    def pool(self) -> Any:
        return self.database.pool

    async def open(self) -> None:
        from ..stores.postgres import migrate
        await migrate(self.pool, STORE_NAME, MIGRATIONS)

    async def close(self) -> None:
        """Nothing of its own to close: the pool belongs to the app."""

    @answered_when_down(WHAT)
    async def upsert(self, subscription: Subscription, replaces: str | None = None) -> bool:
        s = subscription
        size = stored_bytes(s)
        async with self.pool.acquire() as connection, connection.transaction():
            count, total = await connection.fetchrow(LOCK_TOTALS)
            current = await connection.fetchrow(SELECT_SIZE, s.endpoint)
            replaced = None
            if replaces is not None and replaces != s.endpoint:
                replaced = await connection.fetchrow(SELECT_SIZE, replaces)
            self._check_limits(count, total, size, current, replaced)
            if replaced is not None:
                await connection.execute(DELETE_BY_ENDPOINT, replaces)
            row_id = await connection.fetchval(UPSERT, s.endpoint, s.p256dh, s.auth, s.id,
                                               s.group, self.clock(), size)
            await connection.execute(DELETE_CHANNELS_OF, row_id)
            await connection.execute(INSERT_CHANNELS, list(s.attached_channels), row_id)
        return current is None

    def _check_limits(self, count: int, total: int, size: int, current: Any,
                      replaced: Any) -> None:
        self.limits.check(count, total, size=size,
                          freed=(current["size"] if current else 0)
                          + (replaced["size"] if replaced else 0),
                          added_rows=(0 if current else 1) - (1 if replaced else 0))

    @answered_when_down(WHAT)
    async def remove_endpoint(self, endpoint: str) -> int:
        return await self._delete(DELETE_BY_ENDPOINT, endpoint)

    @answered_when_down(WHAT)
    async def remove_id(self, subscriber_id: str) -> int:
        return await self._delete(DELETE_BY_ID, subscriber_id)

    async def _delete(self, statement: str, key: str) -> int:
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(LOCK_TOTALS)
            return _rows(await connection.execute(statement, key))

    @answered_when_down(WHAT)
    async def for_channel(self, channel: str) -> list[Subscription]:
        return _subscriptions(await self.pool.fetch(SELECT_BY_CHANNEL, channel))

    @answered_when_down(WHAT)
    async def all(self) -> list[Subscription]:
        return _subscriptions(await self.pool.fetch(SELECT_ALL))

    @answered_when_down(WHAT)
    async def get(self, endpoint: str) -> SubscriptionRecord | None:
        async with self.pool.acquire() as connection:
            row = await connection.fetchrow(SELECT_ONE, endpoint)
            if row is None:
                return None
            channels = [r[0] for r in await connection.fetch(SELECT_CHANNELS_OF, row[9])]
        extra = tuple(c for c in channels if c not in (row[3], row[4]))
        return SubscriptionRecord(Subscription(row[0], row[1], row[2], row[3], row[4], extra),
                                  row[5], row[6], row[7], row[8])

    async def count(self) -> int:
        return (await self.stored())[0]

    @answered_when_down(WHAT)
    async def stored(self) -> tuple[int, int]:
        count, total = await self.pool.fetchrow(SELECT_TOTALS)
        return int(count), int(total)

    @answered_when_down(WHAT)
    async def record(self, outcomes: Outcomes) -> int:
        if not (outcomes.succeeded or outcomes.failed or outcomes.gone):
            return 0
        now = self.clock()
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(LOCK_TOTALS)
            if outcomes.succeeded:
                await connection.execute(MARK_SUCCESS, now, outcomes.succeeded)
            if outcomes.failed:
                await connection.execute(MARK_FAILURE, now, outcomes.failed)
            if outcomes.gone:
                await connection.execute(DELETE_BY_ENDPOINTS, outcomes.gone)
            if not outcomes.failed:
                return 0
            return _rows(await connection.execute(PRUNE, outcomes.failed,
                                                  self.limits.prune_failures,
                                                  now - self.limits.prune_seconds))


def _rows(status: str) -> int:
    """How many rows a command touched, from asyncpg's status text (``DELETE 3``)."""
    return int(status.rpartition(" ")[2])


def _subscriptions(rows: list[Any]) -> list[Subscription]:
    return [Subscription(row[0], row[1], row[2], row[3], row[4]) for row in rows]
