"""Long-polling never drops: every packet of a POST handled, no response a client refuses,
a dropped poll leaves its events to the next one, bursts and resumes arrive complete.

The raw tests speak engine.io v4 / socket.io v5 over HTTP themselves, as a page
behind a proxy without Upgrade headers does; the others use python-socketio's
client and Chromium's socket.io client with ``transports: ['polling']``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest

from notification_service.app import SOCKETIO_KEY
from notification_service.transports.longpolling import (MAX_POST_PACKETS,
                                                          MAX_RESPONSE_PACKETS)

from .support import WAIT, connect_page

SEPARATOR = "\x1e"


class PollingSession:
    """One engine.io session over HTTP long-polling, spoken by hand."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.base = f"{url}/socket.io/?EIO=4&transport=polling"
        self.sid = ""
        self.messages: list[str] = []  # socket.io packets received, in order

    @property
    def url(self) -> str:
        return f"{self.base}&sid={self.sid}"

    async def open(self, auth: dict[str, Any] | None = None) -> None:
        async with self.http.get(self.base) as response:
            handshake = await response.text()
        assert handshake.startswith("0"), handshake
        self.sid = json.loads(handshake[1:])["sid"]
        await self.post("40" + (json.dumps(auth) if auth else ""))
        await self.until(lambda: any(m.startswith("0") for m in self.messages))

    async def post(self, *packets: str) -> tuple[int, str]:
        async with self.http.post(self.url, data=SEPARATOR.join(packets).encode()) as response:
            return response.status, await response.text()

    async def poll(self) -> list[str]:
        """One GET: the packets of its response (pings answered, like a client)."""
        async with self.http.get(self.url) as response:
            assert response.status == 200, await response.text()
            packets = (await response.text()).split(SEPARATOR)
        for packet in packets:
            if packet == "2":
                await self.post("3")
            elif packet.startswith("4"):
                self.messages.append(packet[1:])
        return packets

    async def until(self, done, timeout: float = WAIT) -> None:
        async def polling() -> None:
            while not done():
                await self.poll()
        await asyncio.wait_for(polling(), timeout)

    def events(self, name: str) -> list[Any]:
        found = []
        for message in self.messages:
            if message.startswith("2"):
                arguments = json.loads(message[1:])
                if arguments[0] == name:
                    found.append(arguments[1])
        return found

    def acks(self) -> dict[int, Any]:
        answers = {}
        for message in self.messages:
            if message.startswith("3"):
                number, _, body = message[1:].partition("[")
                answers[int(number)] = json.loads("[" + body)[0]
        return answers


def engine_socket(server, sid: str):
    return server.app[SOCKETIO_KEY].sio.eio.sockets[sid]


async def until(condition, timeout: float = WAIT) -> None:
    """Wait for server-side state that no event announces (bounded)."""
    async def check() -> None:
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(check(), timeout)


async def publish(server, channel: str, count: int, start: int = 0) -> list[str]:
    ids = []
    for n in range(start, start + count):
        report = await server.hub.publish(channel, "TICK", {"n": n})
        ids.append(report.event.id)
    return ids


async def test_every_packet_of_a_post_is_handled_and_acknowledged(server, http):
    session = PollingSession(http, server.url)
    await session.open()
    subscribes = [f'42{n}["subscribe","post{n}"]' for n in range(20)]
    assert await session.post(*subscribes) == (200, "OK")
    await session.until(lambda: len(session.acks()) == 20)
    assert session.acks() == {n: {"ok": True, "channel": f"post{n}"} for n in range(20)}
    await publish(server, "post19", 1)
    await session.until(lambda: session.events("TICK"))


async def test_a_post_past_the_packet_bound_is_refused_loudly(server, http, caplog):
    session = PollingSession(http, server.url)
    await session.open()
    with caplog.at_level(logging.WARNING):
        status, _body = await session.post(*['42["RECEIVED",{}]'] * (MAX_POST_PACKETS + 1))
    assert status == 400
    assert sid_gone(server, session.sid)
    [line] = [r.getMessage() for r in caplog.records if "polling session" in r.getMessage()]
    assert f"{MAX_POST_PACKETS + 1} packets in one POST" in line


def sid_gone(server, sid: str) -> bool:
    return sid not in server.app[SOCKETIO_KEY].sio.eio.sockets


async def test_no_response_holds_more_packets_than_a_python_client_takes(server, http):
    session = PollingSession(http, server.url)
    await session.open({"code": "cap"})
    await session.until(lambda: session.events("WELCOME"))
    await publish(server, "cap", 40)
    sizes = []
    while len(session.events("TICK")) < 40:
        sizes.append(len(await session.poll()))
    assert max(sizes) == MAX_RESPONSE_PACKETS
    assert [data["n"] for data in session.events("TICK")] == list(range(40))


async def test_a_burst_of_2000_reaches_a_python_polling_listener_complete_in_order(server):
    page = await connect_page(server.url, query="code=burst", transports=["polling"])
    try:
        await page.wait_for("WELCOME")
        await publish(server, "burst", 2000)
        ticks = await page.wait_for("TICK", count=2000, timeout=60)
        assert [data["n"] for data in ticks] == list(range(2000))
        assert page.client.connected
    finally:
        await page.close()


async def test_a_21_event_resume_over_polling_works(server):
    [since] = await publish(server, "resume21", 1)
    missed = await publish(server, "resume21", 21, start=1)
    page = await connect_page(server.url, auth={"code": "resume21", "lastEventId": since},
                              transports=["polling"])
    try:
        ticks = await page.wait_for("TICK", count=21)
        assert [meta["id"] for _data, meta in page.with_meta("TICK")] == missed
        assert [data["n"] for data in ticks] == list(range(1, 22))
        assert page.client.connected
    finally:
        await page.close()


async def raw_poll(server, url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A long-poll GET on a connection of its own, left waiting."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    target = url.split(str(server.port), 1)[1]
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def session_with_a_waiting_poll(server, http, code: str):
    """A polling session on ``code`` and a long-poll of it left waiting on a connection of its own."""
    session = PollingSession(http, server.url)
    await session.open({"code": code})
    await session.until(lambda: session.events("WELCOME"))
    socket = engine_socket(server, session.sid)
    reader, writer = await raw_poll(server, session.url)
    await until(lambda: socket.waiting_poll is not None)
    return session, socket, reader, writer


async def test_a_dropped_long_poll_leaves_its_events_to_the_next_poll(server, http):
    session, socket, _reader, writer = await session_with_a_waiting_poll(server, http, "dropped")
    writer.close()  # the TCP connection drops while the poll waits
    await until(lambda: socket.waiting_poll is None)
    await publish(server, "dropped", 5)
    await session.until(lambda: len(session.events("TICK")) == 5)
    assert [data["n"] for data in session.events("TICK")] == list(range(5))


async def test_a_newer_poll_of_the_session_takes_over_from_a_silent_one(server, http):
    """The old connection never says it dropped (a NAT forgot it): the retry wins."""
    session, socket, reader, writer = await session_with_a_waiting_poll(server, http, "silent")
    stale = socket.waiting_poll
    retry = asyncio.ensure_future(session.poll())
    await until(lambda: socket.waiting_poll not in (None, stale))
    await publish(server, "silent", 5)
    await retry
    await session.until(lambda: len(session.events("TICK")) == 5)
    assert [data["n"] for data in session.events("TICK")] == list(range(5))
    assert await asyncio.wait_for(reader.read(), WAIT) == b""  # closed, nothing taken
    writer.close()


BURST_PAGE = """async ({code, count}) => {
  window.__ticks = [];
  window.__done = new Promise((resolve) => {
    const socket = io(location.origin, {transports: ['polling'], auth: {code}});
    socket.on('TICK', (data) => {
      window.__ticks.push(Number(data.n));
      if (window.__ticks.length === count) resolve();
    });
    socket.on('WELCOME', () => { window.__welcomed = true; });
  });
}"""


async def test_a_burst_of_2000_reaches_a_chromium_polling_page_complete_in_order(server, browser):
    page = await browser.new_page()
    try:
        await page.goto(f"{server.url}/sources/example.html")
        await page.evaluate(BURST_PAGE, {"code": "chromium", "count": 2000})
        await page.wait_for_function("() => window.__welcomed === true", timeout=WAIT * 1000)
        await publish(server, "chromium", 2000)
        await page.wait_for_function("() => window.__ticks.length >= 2000", timeout=60_000)
        assert await page.evaluate("() => window.__ticks") == list(range(2000))
    finally:
        await page.close()


@pytest.mark.server(output_budget=64 * 1024)
async def test_a_session_that_stops_polling_is_closed_as_too_slow_and_told_why(server, http):
    session = PollingSession(http, server.url)
    await session.open({"code": "stalled"})
    await session.until(lambda: session.events("WELCOME"))
    socket = engine_socket(server, session.sid)
    for n in range(40):  # 40 x 4 kB while the client does not poll: past 64 KiB
        await server.hub.publish("stalled", "TICK", {"n": n, "blob": "x" * 4000})
    assert socket.queue.held <= 64 * 1024 + 8000  # dropped, not kept
    await session.poll()
    [error] = session.events("ERROR")
    assert error["message"] == "too slow, resuming"
    await until(lambda: sid_gone(server, session.sid))
    async with http.get(session.url) as response:
        assert response.status == 400  # the session is over: the client reconnects and resumes


@pytest.mark.server(output_budget=64 * 1024)
async def test_a_polling_resume_larger_than_the_budget_arrives_whole(server):
    """A replay counts as the client takes it: a client that polls is never cut off by one."""
    [since] = await publish(server, "bigresume", 1)
    missed = []
    for n in range(100):  # ~400 kB of history, six times the budget
        report = await server.hub.publish("bigresume", "TICK", {"n": n, "blob": "x" * 4000})
        missed.append(report.event.id)
    page = await connect_page(server.url, auth={"code": "bigresume", "lastEventId": since},
                              transports=["polling"])
    try:
        await page.wait_for("TICK", count=100, timeout=30)
        assert [meta["id"] for _data, meta in page.with_meta("TICK")] == missed
        assert page.client.connected and page.named("ERROR") == []
    finally:
        await page.close()


async def test_a_resume_while_its_replay_still_waits_replaces_it(server, http):
    [since] = await publish(server, "again", 1)
    missed = await publish(server, "again", 30, start=1)
    session = PollingSession(http, server.url)
    await session.open()
    socket = engine_socket(server, session.sid)
    resume = '{"channel": "again", "lastEventId": "%s"}' % since
    await session.post(*[f'42{n}["subscribe",{resume}]' for n in range(50)])
    await until(lambda: len(session.acks()) == 50 or socket.queue.qsize() >= 1)
    await session.until(lambda: len(session.acks()) == 50)
    await session.until(lambda: len(session.events("TICK")) >= 30)
    assert [data["n"] for data in session.events("TICK")] == list(range(1, 31))
    live = await publish(server, "again", 1, start=31)
    await session.until(lambda: len(session.events("TICK")) == 31)
    assert len(missed + live) == 31
