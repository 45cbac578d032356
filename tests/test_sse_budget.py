"""SSE slow consumers: one output budget per stream, replays counted and never all held at once.

A stream's budget is ``--output-budget`` (or ``--sse-queue-bytes`` if smaller): what
waits for its client (queued events, the replay batch being written, the transport's
buffer). A client past it is cut off and resumes with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import aiohttp
import pytest

from notification_service.app import SSE_KEY
from notification_service.transports.sse import SEND_BUFFER, WRITE_HIGH

from .test_memory_bounds import rss

MiB = 1024 * 1024


async def non_reading_stream(port: int, query: str, last_event_id: str | None = None
                             ) -> socket.socket:
    """A stream whose client reads the response head and then never reads again."""
    loop = asyncio.get_running_loop()
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    await loop.sock_connect(client, ("127.0.0.1", port))
    resume = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id else ""
    await loop.sock_sendall(client, f"GET /sse?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    f"{resume}\r\n".encode())
    head = await asyncio.wait_for(loop.sock_recv(client, 1024), 5)
    assert head.startswith(b"HTTP/1.1 200"), head
    return client


async def publish(http: aiohttp.ClientSession, url: str, channel: str, size: int) -> dict:
    async with http.post(f"{url}/broadcast/{channel}/big", json={"blob": "x" * size}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_100_non_reading_resumes_hold_a_bounded_amount(spawn, http):
    """Before: each resume queued its whole replay (~0.8 MB here): 100 of them held +78 MB."""
    node = await spawn("--lookup-rate", "off", "--publish-rate", "100000/min")
    first = await publish(http, node.url, "amp", 8000)
    for _ in range(99):
        await publish(http, node.url, "amp", 8000)  # history: 100 events, ~0.8 MB
    streams = [await non_reading_stream(node.port, "channel=amp") for _ in range(3)]
    for stream in streams:
        stream.close()
    before = rss(node.pid)
    streams = [await non_reading_stream(node.port, "channel=amp", first["id"])
               for _ in range(100)]
    try:
        answer = await publish(http, node.url, "amp", 10)  # every stream is open and listening
        assert answer["transports"]["sse"] == 100
        grown = rss(node.pid) - before
        print(f"\n100 non-reading resumes of a 0.8 MB replay: RSS +{grown / MiB:.1f} MiB")
        # Holding every replay is 100 x 0.8 MB = 80 MB; a batch each (plus the
        # connection itself) is a fraction of it. Measured: +16 MiB.
        assert grown < 100 * 800_000 / 3
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.server(output_budget=256 * 1024, sse_queue_size=100_000)
async def test_a_stream_past_its_budget_in_bytes_is_cut_off_and_told_why(server, caplog):
    sse = server.app[SSE_KEY]
    assert sse.budget == 256 * 1024  # the smaller of --output-budget and --sse-queue-bytes
    slow = await non_reading_stream(server.port, "channel=budget")
    caplog.set_level(logging.WARNING, "notification_service.transports.sse")
    try:
        published = 0
        while sse.listener_count("budget") == 1:
            assert published < 200, "the slow stream was never cut off"
            await server.hub.publish("budget", "big", {"blob": "x" * 8000})
            published += 1
        waited = published * 8000
        print(f"\ncut off after {published} events of 8 kB")
        assert waited < 256 * 1024 + WRITE_HIGH + 2 * SEND_BUFFER + 64 * 1024  # by its bytes
        [line] = [r.getMessage() for r in caplog.records if "cut off as too slow" in r.getMessage()]
        assert "resumes with Last-Event-ID" in line
        assert server.hub.metrics.slow_counts["sse"] == 1
    finally:
        slow.close()


async def test_a_replay_in_many_batches_then_live_events_arrive_once_and_in_order(server, http):
    """The replay is read from history a batch at a time while live events queue behind it,
    over two channels merged in publish order."""
    from .sse_client import open_stream

    first = await server.hub.publish("left", "old", {"n": 0})
    ids = []
    for n in range(1, 60):  # ~0.5 MB: dozens of replay batches
        report = await server.hub.publish("left" if n % 2 else "right", "old",
                                          {"n": n, "blob": "x" * 8000})
        ids.append(report.event.id)
    stream = await open_stream(http, server.url, query="channel=left&channel=right",
                               last_event_id=first.event.id)
    received = [(await stream.next_event()).id for _ in range(3)]  # the replay has begun
    for n in range(60, 70):  # published while the replay is still being written
        report = await server.hub.publish("right" if n % 2 else "left", "new", {"n": n})
        ids.append(report.event.id)
    while len(received) < len(ids):
        received.append((await stream.next_event()).id)
    assert received == ids
    stream.close()
