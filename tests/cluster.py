"""Helpers for tests of several nodes on one Redis: start them, listen on them, publish to them.

Nodes are real processes (the ``spawn`` fixture) sharing a ``redis_server`` of
the test's own. Listeners are real socket.io clients and SSE streams; what they
received is compared by event id.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

import aiohttp
import redis.asyncio as aioredis

from .processes import ServerProcess
from .sse_client import Stream, open_stream
from .support import WAIT, Page, connect_page

PREFIX = "notify"


async def start_nodes(spawn: Callable[..., Awaitable[ServerProcess]], redis_url: str,
                      count: int = 3, *flags: str) -> list[ServerProcess]:
    """``count`` nodes named node0, node1, ... on ``redis_url``, started one after the other.

    They share node0's VAPID key, as an operator copies it to every node: a
    node with a key of its own refuses to start.
    """
    first = await spawn("--redis-url", redis_url, "--node-name", "node0", *flags)
    return [first, *[await spawn("--redis-url", redis_url, "--node-name", f"node{index}",
                                 *vapid_of(first), *flags) for index in range(1, count)]]


def vapid_of(node: ServerProcess) -> tuple[str, str]:
    """The flags that give another node ``node``'s VAPID key (every node must share it)."""
    return ("--vapid-key", str(node.folder / "data" / "vapid_private.pem"))


async def listener_total(client: aioredis.Redis, channel: str) -> int:
    """What the nodes wrote to ``notify:lc:{channel}`` (every node's fields)."""
    counts = await client.hgetall(f"{PREFIX}:lc:{channel}")
    return sum(int(value) for value in counts.values())


async def until_listeners(client: aioredis.Redis, channel: str, expected: int) -> None:
    """Wait until the nodes' listener counts for ``channel`` add up to ``expected``."""
    for _ in range(int(WAIT / 0.02)):
        if await listener_total(client, channel) == expected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"listener counts of {channel} are {await listener_total(client, channel)}, "
                         f"not {expected}")


@dataclass
class SSEListener:
    """An SSE stream whose events are collected by a task, in arrival order."""

    stream: Stream
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        async def collect() -> None:
            while True:
                try:
                    event = await self.stream.next_event(timeout=3600)
                except (ConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError):
                    return
                self.names.append(event.name)
                if event.id is not None:
                    self.ids.append(event.id)
        self.task = asyncio.create_task(collect())

    async def close(self) -> None:
        self.stream.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def page_ids(page: Page) -> list[str]:
    """Ids of the events a socket.io page received, in arrival order."""
    return [meta["id"] for meta in page.metas if isinstance(meta, dict) and "id" in meta]


@dataclass
class Listeners:
    """socket.io pages and SSE streams spread over nodes, all closed by :meth:`close`."""

    pages: list[Page] = field(default_factory=list)
    streams: list[SSEListener] = field(default_factory=list)

    async def open(self, http: aiohttp.ClientSession, nodes: Sequence[ServerProcess],
                   channel: str, count: int, *, last_event_id: str | None = None) -> None:
        """``count`` listeners on ``channel``, alternating socket.io and SSE, round the nodes."""
        spread = itertools.cycle(nodes)
        for index in range(count):
            node = next(spread)
            if index % 2 == 0:
                query = f"code={channel}" + (f"&lastEventId={last_event_id}" if last_event_id else "")
                self.pages.append(await connect_page(node.url, query=query))
            else:
                listener = SSEListener(await open_stream(http, node.url, query=f"code={channel}",
                                                         last_event_id=last_event_id))
                listener.start()
                self.streams.append(listener)

    def received(self) -> list[list[str]]:
        """Each listener's ids, in arrival order."""
        return [page_ids(page) for page in self.pages] + [listener.ids for listener in self.streams]

    async def until_each_has(self, count: int, timeout: float = 4 * WAIT) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(len(ids) < count for ids in self.received()):
            if loop.time() > deadline:
                raise AssertionError(f"listeners got {sorted(map(len, self.received()))} events, "
                                     f"expected {count} each")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        for page in self.pages:
            await page.close()
        for listener in self.streams:
            await listener.close()


async def publish(http: aiohttp.ClientSession, node: ServerProcess, channel: str, event: str,
                  data: Any, *, params: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.post(f"{node.url}/broadcast/{channel}/{event}", json=data,
                         params=params or {}) as response:
        return response.status, await response.json()


async def publish_many(http: aiohttp.ClientSession, nodes: Sequence[ServerProcess], channel: str,
                       count: int, *, concurrency: int = 10) -> list[Any]:
    """``count`` publishes spread round the nodes, ``concurrency`` at a time; their answers."""
    answers: list[Any] = [None] * count
    numbers = iter(range(count))

    async def worker() -> None:
        for number in numbers:
            status, answer = await publish(http, nodes[number % len(nodes)], channel, "TICK",
                                           {"n": number})
            assert status == 200, answer
            answers[number] = answer

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answers


def sequence(event_id: str) -> int:
    return int(event_id.rpartition("-")[2])
