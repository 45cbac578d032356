"""A client leaves one node and resumes on another while events keep coming: exactly what it
missed, then live, nothing twice (socket.io and SSE, three channels, 200 publishes a second)."""

from __future__ import annotations

import asyncio
from typing import Any

from .cluster import SSEListener, page_ids, publish, sequence, start_nodes
from .sse_client import open_stream
from .support import WAIT, connect_page

CHANNELS = ("alpha", "beta", "gamma")


class SteadyPublisher:
    """Publishes round the channels on one node at about 200 a second, noting each answer."""

    def __init__(self, http: Any, node: Any) -> None:
        self.http = http
        self.node = node
        self.ids: dict[str, list[str]] = {channel: [] for channel in CHANNELS}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        async def run() -> None:
            number = 0
            while not self._stop.is_set():
                channel = CHANNELS[number % len(CHANNELS)]
                status, answer = await publish(self.http, self.node, channel, "TICK",
                                               {"n": number})
                assert status == 200, answer
                self.ids[channel].append(answer["id"])
                number += 1
                await asyncio.sleep(0.005)
        self._task = asyncio.create_task(run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def everything(self) -> list[str]:
        return sorted((event_id for ids in self.ids.values() for event_id in ids), key=sequence)


async def until(condition, timeout: float = 2 * WAIT) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_sse_client_resumes_on_another_node(spawn, redis_server, http):
    a, b, c = await start_nodes(spawn, redis_server.url)
    publisher = SteadyPublisher(http, b)
    query = "&".join(f"code={channel}" for channel in CHANNELS)
    first = SSEListener(await open_stream(http, a.url, query=query))
    first.start()
    publisher.start()
    try:
        await until(lambda: len(first.ids) >= 30)
        await first.close()
        seen = list(first.ids)
        await asyncio.sleep(0.5)  # it misses about 100 events
        second = SSEListener(await open_stream(http, c.url, query=query, last_event_id=seen[-1]))
        second.start()
        await asyncio.sleep(0.5)  # and goes on live
        await publisher.stop()
        everything = publisher.everything()
        await until(lambda: len(seen) + len(second.ids) >= len(everything))
        assert "RESUME_GAP" not in second.names
        assert seen + second.ids == everything
    finally:
        await publisher.stop()
        await first.close()


async def test_socketio_client_resumes_on_another_node(spawn, redis_server, http):
    a, b, c = await start_nodes(spawn, redis_server.url)
    publisher = SteadyPublisher(http, b)
    first = await connect_page(a.url, query=f"code={CHANNELS[0]}")
    for channel in CHANNELS[1:]:
        assert (await first.emit("subscribe", channel))["ok"]
    publisher.start()
    try:
        await until(lambda: len(page_ids(first)) >= 30)
        await first.close()
        seen = {channel: [meta["id"] for meta in first.metas
                          if isinstance(meta, dict) and meta.get("channel") == channel]
                for channel in CHANNELS}
        await asyncio.sleep(0.5)
        second = await connect_page(c.url, query=f"code={CHANNELS[0]}&lastEventId="
                                                 f"{seen[CHANNELS[0]][-1]}")
        try:
            for channel in CHANNELS[1:]:
                answer = await second.emit("subscribe", {"channel": channel,
                                                         "lastEventId": seen[channel][-1]})
                assert answer["ok"] and answer["replayed"] > 0
            await asyncio.sleep(0.5)
            await publisher.stop()
            expected = sum(map(len, publisher.ids.values()))
            await until(lambda: sum(map(len, seen.values())) + len(page_ids(second)) >= expected)
            assert not second.named("RESUME_GAP")
            for channel in CHANNELS:
                after = [meta["id"] for meta in second.metas
                         if isinstance(meta, dict) and meta.get("channel") == channel]
                assert seen[channel] + after == publisher.ids[channel]
        finally:
            await second.close()
    finally:
        await publisher.stop()
