"""SSE streams resume exactly: Last-Event-ID (EventSource's reconnect) and ?lastEventId=."""

from __future__ import annotations

import asyncio

import pytest

from .sse_client import open_stream


async def fire(http, server, channel: str, n: int) -> str:
    async with http.post(f"{server.url}/broadcast/{channel}/tick", json={"n": n}) as response:
        return (await response.json())["id"]


async def test_reconnect_with_last_event_id_gets_what_was_missed_then_live(server, http):
    stream = await open_stream(http, server.url, query="channel=s1")
    first = await fire(http, server, "s1", 0)
    assert (await stream.wait_for("tick")).id == first
    stream.close()
    missed = [await fire(http, server, "s1", n) for n in (1, 2, 3)]

    back = await open_stream(http, server.url, query="channel=s1", last_event_id=first)
    try:
        replayed = [await back.wait_for("tick") for _ in missed]
        assert [event.id for event in replayed] == missed
        assert [event.data["n"] for event in replayed] == [1, 2, 3]
        live = await fire(http, server, "s1", 4)
        assert (await back.wait_for("tick")).id == live
        assert not [event for event in back.events if event.name == "RESUME_GAP"]
    finally:
        back.close()


async def test_query_last_event_id_for_a_first_connection(server, http):
    ids = [await fire(http, server, "s2", n) for n in range(3)]
    stream = await open_stream(http, server.url, query=f"channel=s2&lastEventId={ids[0]}")
    try:
        assert [(await stream.wait_for("tick")).data["n"] for _ in range(2)] == [1, 2]
    finally:
        stream.close()


async def test_one_id_resumes_several_channels_in_publish_order(server, http):
    start = await fire(http, server, "a1", 0)
    order = [("a1", 1), ("b1", 2), ("a1", 3), ("b1", 4)]
    for channel, n in order:
        await fire(http, server, channel, n)
    stream = await open_stream(http, server.url, query="channel=a1&channel=b1",
                               last_event_id=start)
    try:
        assert [(await stream.wait_for("tick")).data["n"] for _ in order] == [1, 2, 3, 4]
    finally:
        stream.close()


async def test_publishes_racing_the_replay_arrive_once_and_in_order(server, http):
    start = await fire(http, server, "s3", 0)
    for n in range(1, 50):
        await fire(http, server, "s3", n)

    async def keep_firing() -> None:
        for n in range(50, 200):
            await fire(http, server, "s3", n)

    firing = asyncio.create_task(keep_firing())
    await asyncio.sleep(0)  # the publisher is running while the stream resumes
    stream = await open_stream(http, server.url, query="channel=s3", last_event_id=start)
    try:
        await firing
        received = [(await stream.wait_for("tick")).data["n"] for _ in range(199)]
        assert received == list(range(1, 200))
    finally:
        stream.close()


@pytest.mark.server(history_size=2)
async def test_too_old_id_gets_the_gap_notice_first(server, http):
    ids = [await fire(http, server, "s4", n) for n in range(6)]
    stream = await open_stream(http, server.url, query="channel=s4", last_event_id=ids[0])
    try:
        notice = await stream.next_event()
        assert notice.name == "RESUME_GAP" and notice.id is None
        assert notice.data["channel"] == "s4" and notice.data["available"] == 2
        assert [(await stream.wait_for("tick")).data["n"] for _ in range(2)] == [4, 5]
    finally:
        stream.close()
