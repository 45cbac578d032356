"""socket.io over WebSocket under abuse: slow consumers, replay amplification, bad input.

Real clients only: python-socketio clients where behaviour is what matters,
and a hand-made WebSocket client (tests/wsclient.py) for input the library
never sends and for a client that stops reading. Memory is read from a real
server process where the bound is about memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
import socketio

from notification_service.app import SOCKETIO_KEY
from notification_service.errors import TOO_SLOW
from notification_service.transports.budget import TOO_SLOW_REASON, Replay
from notification_service.transports.engineio_ws import DirectSocket

from .support import WAIT, connect_page
from .wsclient import RawSocketIO

BUDGET = 64 * 1024
SMALL_BUFFER = 4096  # kernel receive buffer of a client that stops reading


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def direct_sockets(server) -> list[DirectSocket]:
    sockets = server.app[SOCKETIO_KEY].sio.eio.sockets.values()
    return [socket for socket in sockets if isinstance(socket, DirectSocket)]


async def until(condition, timeout: float = WAIT) -> None:
    """Wait, yielding to the server, until ``condition()`` holds."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.levelno >= logging.WARNING and "socket.io connection" in record.getMessage()]


def no_tracebacks(caplog) -> bool:
    return not [record for record in caplog.records if record.exc_info]


# -- slow consumers ------------------------------------------------------------------
@pytest.mark.server(output_budget=BUDGET)
async def test_a_listener_that_stops_reading_is_closed_past_the_budget_and_told_why(
        server, caplog):
    caplog.set_level(logging.WARNING)
    transport = server.app[SOCKETIO_KEY]
    slow = await RawSocketIO.connect(server.port, "&code=slow", receive_buffer=SMALL_BUFFER)
    await slow.until('42["WELCOME"')
    await until(lambda: transport.listener_count("slow") == 1)
    reading = await connect_page(server.url, query="code=slow")
    await until(lambda: transport.listener_count("slow") == 2)
    for number in range(1500):
        await server.hub.publish("slow", "BIG", {"n": number, "pad": "x" * 8000})
        await asyncio.sleep(0.002)  # the reading page (in this process) reads meanwhile
        if transport.listener_count("slow") == 1:
            break
    await until(lambda: transport.listener_count("slow") == 1)  # the reader stays
    for socket in direct_sockets(server):
        assert socket.outbox is None or socket.outbox.held <= BUDGET
    stream = await slow.read_all()
    assert TOO_SLOW_REASON.encode() in stream and str(TOO_SLOW.code).encode() in stream
    # the reader got every event, in order
    await reading.wait_for("BIG", count=number + 1, timeout=30)
    assert [data["n"] for data in reading.named("BIG")] == list(range(number + 1))
    await reading.close()
    slow.close()
    assert warnings(caplog) == [
        f"closed socket.io connection from 127.0.0.1: more than {BUDGET} bytes waiting "
        f"(too slow)"]
    assert no_tracebacks(caplog)


@pytest.mark.server(output_budget=2 * BUDGET, history_size=1000, history_bytes=64 * 2**20)
async def test_resumes_on_a_socket_that_never_reads_replace_the_waiting_replay(server):
    """200 REGISTER-with-lastEventId packets queue one replay, within the budget."""
    transport = server.app[SOCKETIO_KEY]
    first = await server.hub.publish("amp", "E", {"pad": "y"})
    for number in range(999):  # 10 MB of history after `first`: more than the kernel buffers
        await server.hub.publish("amp", "E", {"n": number, "pad": "y" * 10_000})
    client = await RawSocketIO.connect(server.port, receive_buffer=SMALL_BUFFER)
    for ack in range(200):
        client.emit("REGISTER", {"code": "amp", "lastEventId": first.event.id}, ack=ack)
    await client.writer.drain()
    [socket] = direct_sockets(server)

    def replays() -> list[Replay]:
        return [item for item in socket.outbox.waiting() if isinstance(item, Replay)]

    await until(lambda: transport.listener_count("amp") == 1 and len(replays()) == 1
                and socket.outbox.held < 20_000)  # 200 acks of ~60 bytes at most
    await asyncio.sleep(0.2)  # every REGISTER handled by now
    assert len(replays()) == 1 and socket.outbox.held + socket.transport \
        .get_write_buffer_size() <= 2 * BUDGET
    assert not socket.closed
    client.close()


async def test_a_slow_listener_resumes_with_its_last_id_and_misses_nothing(serve):
    """The python-socketio client reconnects and resumes as notificationservice.js does."""
    server = await serve(output_budget=BUDGET)
    transport = server.app[SOCKETIO_KEY]
    seen: list[int] = []
    last_id: dict[str, str] = {}
    client = socketio.AsyncClient(reconnection=True, reconnection_delay=0.1)

    @client.on("TICK")
    async def tick(data, meta):
        seen.append(data["n"])
        last_id["id"] = meta["id"]

    await client.connect(server.url, auth=lambda: {"code": "resume", **(
        {"lastEventId": last_id["id"]} if last_id else {})}, transports=["websocket"],
        wait_timeout=WAIT)
    await until(lambda: transport.listener_count("resume") == 1)
    await server.hub.publish("resume", "TICK", {"n": 0})
    await until(lambda: seen == [0])
    [socket] = direct_sockets(server)
    socket.too_slow()  # what a budget overrun does, without waiting for one
    for number in range(1, 6):
        await server.hub.publish("resume", "TICK", {"n": number})
    await until(lambda: len(seen) >= 6, timeout=10)
    await server.hub.publish("resume", "TICK", {"n": 6})
    await until(lambda: len(seen) >= 7)
    assert seen == list(range(7))
    await client.disconnect()


# -- input bounds -----------------------------------------------------------------------
async def test_binary_attachments_are_refused_and_never_held(spawn):
    """120 frames of 990 KB announced by BINARY_EVENT headers: RSS grows by a few MB at most."""
    node = await spawn("--lookup-rate", "off", "--max-connections-per-address", "1000")
    frame = b"\x00" * 990_000
    before = None
    for attempt in range(130):
        if attempt == 10:  # the first few warm up the server's buffers and allocator
            before = rss_kib(node.pid)
        client = await RawSocketIO.connect(node.port)
        client.send('451-["upload",{"_placeholder":true,"num":0}]')
        try:
            client.send_binary(frame)  # the server may already have closed: a reset
            await client.writer.drain()
        except ConnectionError:
            pass
        assert await client.closed_by_server()
        client.close()
    await asyncio.sleep(0.5)
    grown = rss_kib(node.pid) - before
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB"
    log = node.logfile.read_text()
    assert "BINARY_EVENT and BINARY_ACK are refused" in log and "Traceback" not in log


@pytest.mark.parametrize("sent, problem", [
    ("42[", "an invalid socket.io packet (2 characters)"),
    ('42{"REGISTER":1}', "a socket.io EVENT without an event name"),
    ("42[]", "a socket.io EVENT without an event name"),
    ("49", "a socket.io packet of type '9', which a client may not send"),
    ('44{"message":"x"}', "a socket.io packet of type '4', which a client may not send"),
    ('42["REGISTER"]', "REGISTER with 0 arguments (it takes one)"),
    ('42["REGISTER",{"code":"abc"},2]', "REGISTER with 2 arguments (it takes one)"),
    ('42["RECEIVED",{"id":"1-1"},{"id":"1-2"}]', "RECEIVED with 2 arguments (it takes one)"),
    ("hello", "a malformed engine.io packet (5 characters)"),
    ("", "a malformed engine.io packet (0 characters)"),
])
async def test_bad_input_closes_that_connection_with_one_warning(server, caplog, sent, problem):
    caplog.set_level(logging.WARNING)
    bystander = await connect_page(server.url, query="code=calm")
    client = await RawSocketIO.connect(server.port)
    await client.until('42["WELCOME"')
    client.send(sent)
    stream = await client.read_all()
    assert b"HTTP/1.1" not in stream and b"Traceback" not in stream
    client.close()
    assert warnings(caplog) == [f"closed socket.io connection from 127.0.0.1: {problem}"]
    assert no_tracebacks(caplog)
    await server.hub.publish("calm", "STILL", {})
    assert await bystander.wait_for("STILL") == [{}]
    await bystander.close()


async def test_a_binary_websocket_frame_closes_the_connection(server, caplog):
    caplog.set_level(logging.WARNING)
    client = await RawSocketIO.connect(server.port)
    client.send_binary(b"\x04abc")
    assert await client.closed_by_server()
    client.close()
    assert warnings(caplog) == ["closed socket.io connection from 127.0.0.1: a binary WebSocket "
                                "frame (this server takes no binary data)"]
    assert no_tracebacks(caplog)


@pytest.mark.browser
async def test_the_page_helper_reports_too_slow_and_resumes(server, browser):
    """notificationservice.js in Chromium: closed as too slow, it says so, comes back, misses nothing."""
    page = await browser.new_page()
    await page.goto(f"{server.url}/sources/example.html?code=slowpage")
    await page.wait_for_function("() => NotificationService.status === 'registered'",
                                 timeout=WAIT * 1000)
    await page.evaluate("""() => {
        window.statuses = []; window.ticks = [];
        NotificationService.onStatus((status, detail) => statuses.push([status, detail]));
        NotificationService.on('TICK', (data) => ticks.push(data.n));
    }""")
    await server.hub.publish("slowpage", "TICK", {"n": 0})
    await page.wait_for_function("() => ticks.length === 1", timeout=WAIT * 1000)
    [socket] = direct_sockets(server)
    socket.too_slow()
    for number in range(1, 4):
        await server.hub.publish("slowpage", "TICK", {"n": number})
    await page.wait_for_function(
        "() => ticks.length === 4 && statuses.some(([s, d]) => s === 'disconnected' "
        "&& d === 'too slow, resuming') && statuses[statuses.length - 1][0] === 'registered'",
        timeout=WAIT * 2000)
    assert await page.evaluate("() => ticks") == [0, 1, 2, 3]
    await page.close()


async def test_bad_input_over_polling_closes_that_session_with_one_warning(server, http, caplog):
    """The same checks hold before a page upgrades (polling stays python-engineio's)."""
    caplog.set_level(logging.WARNING)
    base = f"{server.url}/socket.io/?EIO=4&transport=polling"
    async with http.get(base) as response:
        opened = await response.text()
    sid = json.loads(opened[1:])["sid"]
    session = f"{base}&sid={sid}"
    async with http.post(session, data="40") as response:
        assert response.status == 200
    async with http.get(session) as response:
        assert (await response.text()).startswith("40")
    async with http.post(session, data='451-["upload",{"_placeholder":true,"num":0}]') as response:
        assert response.status == 200
    sockets = server.app[SOCKETIO_KEY].sio.eio.sockets
    await until(lambda: all(socket.closed for socket in sockets.values()))
    async with http.get(session) as response:  # the session is gone
        assert response.status == 400 or (await response.text()).startswith("1")
    assert warnings(caplog) == [
        "closed socket.io connection from 127.0.0.1: a binary socket.io packet (BINARY_EVENT "
        "and BINARY_ACK are refused)"]
    assert no_tracebacks(caplog)
