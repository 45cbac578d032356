"""Receipts: a publisher that waits learns how many listeners confirmed the event."""

from __future__ import annotations

import asyncio
import time


async def test_wait_reports_acknowledged_listeners(server, pages, http):
    for _ in range(2):
        await pages(query="code=rc", confirm_receipts=True)
    silent = await pages(query="code=rc")
    started = time.monotonic()
    async with http.get(f"{server.url}/notify?code=rc&event=x&wait=300") as response:
        answer = await response.json()
    assert answer["count"] == 3 and answer["acknowledged"] == 2
    assert time.monotonic() - started < 2  # bounded by wait, never longer
    await silent.wait_for("X")
    [(_data, meta)] = silent.with_meta("X")
    assert meta["receipt"] is True


async def test_wait_returns_as_soon_as_everyone_confirmed(server, pages, http):
    await pages(query="code=rc2", confirm_receipts=True)
    started = time.monotonic()
    async with http.get(f"{server.url}/notify?code=rc2&event=x&wait=5000") as response:
        assert (await response.json())["acknowledged"] == 1
    assert time.monotonic() - started < 2


async def test_without_wait_no_receipt_is_requested(server, pages, http):
    page = await pages(query="code=rc3")
    async with http.get(f"{server.url}/notify?code=rc3&event=x") as response:
        assert "acknowledged" not in await response.json()
    await page.wait_for("X")
    [(_data, meta)] = page.with_meta("X")
    assert "receipt" not in meta


async def test_bad_wait_is_400_on_json_routes_and_plain_data_on_get_triggers(server, http):
    for bad in ("-1", "abc", "5001"):
        async with http.post(f"{server.url}/broadcast/rc4/x?wait={bad}", json=1) as response:
            assert response.status == 400
            assert "wait" in (await response.json())["error"]
        async with http.get(f"{server.url}/notify?code=rc4&event=x&wait={bad}") as response:
            answer = await response.json()
            assert response.status == 200 and "acknowledged" not in answer


async def test_receipts_count_once_per_listener_and_survive_a_push_lookup(server, pages, http):
    """A page repeating its receipt is one listener, and receipts that arrive while
    Web Push looks up subscriptions (push=1) still count.

    Two listeners, one confirming three times while the publisher waits, one never:
    counting receipts instead of listeners would end the wait at once with 3.
    """
    repeating = await pages(query="code=rc5")
    await pages(query="code=rc5")  # never confirms, so the publisher waits the whole wait

    async def publish() -> dict:
        async with http.get(f"{server.url}/notify?code=rc5&event=x&push=1&wait=1500") as response:
            return await response.json()

    publishing = asyncio.create_task(publish())
    await repeating.wait_for("X")
    [(_data, meta)] = repeating.with_meta("X")
    assert meta["receipt"] is True
    for _ in range(3):
        await repeating.client.emit("RECEIVED", {"id": meta["id"]})
    answer = await publishing
    assert (answer["count"], answer["acknowledged"]) == (2, 1)
    assert server.hub.receipts._tracked == {}


async def test_only_a_connection_the_event_was_delivered_to_can_confirm_it_once(
        server, pages, http):
    """Hardening row 9: receipts cannot be forged.

    Ids are predictable, so a connection on another channel (or on none, or one
    that joined after the delivery) sends RECEIVED for the id: it counts 0. The
    listener confirming three times counts 1.
    """
    listener = await pages(query="code=rf")
    outsider = await pages(query="code=elsewhere")
    stranger = await pages()  # on no channel at all

    async def publish(wait_ms: int) -> dict:
        async with http.get(f"{server.url}/notify?code=rf&event=x&wait={wait_ms}") as response:
            return await response.json()

    forged = asyncio.create_task(publish(1000))
    [_data] = await listener.wait_for("X")
    [(_data, meta)] = listener.with_meta("X")
    late = await pages(query="code=rf")  # on the channel now, but joined after the delivery
    for forger in (outsider, stranger, late):
        for _ in range(3):
            await forger.emit("RECEIVED", {"id": meta["id"]})  # handled before it returns
    answer = await forged
    assert (answer["count"], answer["acknowledged"]) == (1, 0)

    repeated = asyncio.create_task(publish(1000))
    await listener.wait_for("X", count=2)
    second = listener.with_meta("X")[1][1]
    for _ in range(3):
        await listener.emit("RECEIVED", {"id": second["id"]})
    await outsider.emit("RECEIVED", {"id": second["id"]})
    answer = await repeated
    assert (answer["count"], answer["acknowledged"]) == (2, 1)  # the late page never confirmed
    assert server.hub.receipts._tracked == {}
