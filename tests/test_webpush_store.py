"""The SQLite subscription store: versioned schema, upsert by endpoint, channels, outcomes."""

from __future__ import annotations

import sqlite3

from notification_service.webpush.store import (SCHEMA_VERSION, Outcomes, SqliteSubscriptionStore,
                                                Subscription)


def sub(n: int, **kwargs) -> Subscription:
    return Subscription(f"https://fcm.googleapis.com/fcm/send/{n}", f"key{n}", f"auth{n}", **kwargs)


async def test_upsert_channels_remove_and_outcomes(tmp_path):
    clock = iter(range(100, 200)).__next__
    store = SqliteSubscriptionStore(tmp_path / "push.sqlite3", clock=lambda: float(clock()))
    await store.open()
    try:
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
    finally:
        await store.close()


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
