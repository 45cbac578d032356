"""The subscription stores: versioned schema, upsert by endpoint, channels, outcomes.

The contract tests run against SQLite and PostgreSQL (a fresh schema) alike.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from notification_service.stores.postgres import Database
from notification_service.webpush.postgres import PostgresSubscriptionStore
from notification_service.webpush.store import (SCHEMA_VERSION, Outcomes, SqliteSubscriptionStore,
                                                StoreLimits, Subscription, SubscriptionsFull,
                                                stored_bytes)

from .services import drop_schema, fresh_schema


@pytest.fixture(params=["sqlite", "postgres"])
async def make_store(request, tmp_path):
    """``await make_store(limits, clock)``: an open store of the parameter's kind, closed after."""
    opened = []
    database = schema = None
    if request.param == "postgres":
        schema, url = await fresh_schema()
        database = Database(url)
        await database.open()

    async def make(limits=StoreLimits(), clock=None):
        extra = {"clock": clock} if clock is not None else {}
        if database is None:
            store = SqliteSubscriptionStore(tmp_path / f"push{len(opened)}.sqlite3", limits,
                                            **extra)
        else:
            store = PostgresSubscriptionStore(database, limits, **extra)
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()
    if database is not None:
        await database.close()
        await drop_schema(schema)


def sub(n: int, **kwargs) -> Subscription:
    return Subscription(f"https://fcm.googleapis.com/fcm/send/{n}", f"key{n}", f"auth{n}", **kwargs)


async def test_upsert_channels_remove_and_outcomes(make_store):
    clock = iter(range(100, 200)).__next__
    store = await make_store(clock=lambda: float(clock()))
    assert await store.upsert(sub(1, id="alice", group="staff", channels=("news",)))
    assert await store.upsert(sub(2, id="bob", group="staff"))
    assert await store.upsert(sub(3))
    assert not await store.upsert(sub(1, id="alice", channels=("sport",)))  # same endpoint
    assert await store.count() == 3
    assert [s.endpoint for s in await store.for_channel("alice")] == [sub(1).endpoint]
    assert {s.id for s in await store.for_channel("staff")} == {"bob"}  # alice left the group
    assert await store.for_channel("news") == []
    assert len(await store.for_channel("sport")) == 1
    assert len(await store.all()) == 3

    await store.record(Outcomes(succeeded=[sub(1).endpoint], failed=[sub(2).endpoint],
                                gone=[sub(3).endpoint]))
    await store.record(Outcomes(failed=[sub(2).endpoint]))
    alice = await store.get(sub(1).endpoint)
    assert alice.last_success is not None and alice.failure_streak == 0
    assert alice.subscription.channels == ("sport",)
    bob = await store.get(sub(2).endpoint)
    assert bob.failure_streak == 2 and bob.last_failure > bob.created
    assert await store.get(sub(3).endpoint) is None
    assert await store.for_channel("sport") != []

    assert await store.remove_id("alice") == 1
    assert await store.for_channel("sport") == []  # channels go with the subscription
    assert await store.remove_endpoint(sub(2).endpoint) == 1
    assert await store.remove_endpoint(sub(2).endpoint) == 0


async def test_schema_is_versioned_and_survives_reopen(tmp_path):
    path = tmp_path / "push.sqlite3"
    store = SqliteSubscriptionStore(path)
    await store.open()
    await store.upsert(sub(1, id="alice"))
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    again = SqliteSubscriptionStore(path)
    await again.open()
    try:
        assert [s.id for s in await again.for_channel("alice")] == ["alice"]
    finally:
        await again.close()


async def test_a_version_1_database_is_migrated_with_its_sizes_and_totals(tmp_path):
    from notification_service.webpush.store import MIGRATIONS, stored_bytes

    path = tmp_path / "push.sqlite3"
    with sqlite3.connect(path) as db:
        for statement in MIGRATIONS[0]:
            db.execute(statement)
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO subscriptions (endpoint, p256dh, auth, subscriber_id, group_name, "
                   "created, updated, failure_streak, last_failure) VALUES "
                   "(?, 'key1', 'auth1', 'alice', 'staff', 1, 1, 2, 5)", (sub(1).endpoint,))
        db.executemany("INSERT INTO subscription_channels (channel, endpoint) VALUES (?, ?)",
                       [(c, sub(1).endpoint) for c in ("alice", "staff", "news")])
    store = SqliteSubscriptionStore(path)
    await store.open()
    try:
        expected = stored_bytes(sub(1, id="alice", group="staff", channels=("news",)))
        assert await store.stored() == (1, expected)
        record = await store.get(sub(1).endpoint)
        assert record.subscription.channels == ("news",) and record.failure_streak == 2
        assert [s.id for s in await store.for_channel("news")] == ["alice"]
        await store.remove_endpoint(sub(1).endpoint)
        assert await store.stored() == (0, 0)
    finally:
        await store.close()


async def test_a_subscription_failing_n_times_over_d_days_is_pruned(make_store):
    now = [1000.0]
    day = 86_400.0
    store = await make_store(StoreLimits(prune_failures=3, prune_seconds=2 * day),
                             clock=lambda: now[0])
    await store.upsert(sub(1))
    await store.upsert(sub(2))
    failed = Outcomes(failed=[sub(1).endpoint, sub(2).endpoint])
    assert [await store.record(failed) for _ in range(5)] == [0] * 5  # many, but within a day
    now[0] += day
    await store.record(Outcomes(succeeded=[sub(2).endpoint]))  # one success resets it
    now[0] += 1.5 * day  # sub(1) has failed for 2.5 days, 6 times: gone
    assert await store.record(failed) == 1
    assert await store.get(sub(1).endpoint) is None
    assert (await store.get(sub(2).endpoint)).failure_streak == 1


async def test_limits_hold_and_replacing_frees_its_room(make_store):
    store = await make_store(StoreLimits(max_subscriptions=2,
                                         max_bytes=2 * stored_bytes(sub(1)) + 10))
    assert await store.upsert(sub(1)) and await store.upsert(sub(2))
    try:
        await store.upsert(sub(3))
        raise AssertionError("a third subscription was stored")
    except SubscriptionsFull as full:
        assert "--webpush-max-subscriptions" in str(full)
    assert await store.upsert(sub(3), replaces=sub(1).endpoint)  # pushsubscriptionchange
    assert await store.get(sub(1).endpoint) is None and await store.count() == 2
    try:
        await store.upsert(sub(2, channels=("a-longer-channel-name",)))
        raise AssertionError("a subscription past the byte bound was stored")
    except SubscriptionsFull as full:
        assert "--webpush-max-bytes" in str(full)
    assert await store.stored() == (2, 2 * stored_bytes(sub(1)))


async def test_concurrent_writers_never_pass_the_bounds(make_store):
    """Two stores on one database are two nodes: 40 upserts at once, room for 7."""
    limits = StoreLimits(max_subscriptions=7)
    first, second = await make_store(limits), await make_store(limits)
    if isinstance(first, SqliteSubscriptionStore):  # two nodes share only PostgreSQL
        second = first

    async def attempt(n: int) -> bool:
        try:
            return await (first if n % 2 else second).upsert(sub(n, channels=("news",)))
        except SubscriptionsFull:
            return False
    stored = await asyncio.gather(*(attempt(n) for n in range(40)))
    assert sum(stored) == 7
    assert (await first.stored())[0] == 7 and len(await second.for_channel("news")) == 7
