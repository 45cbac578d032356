"""The WebSocket fast path keeps socket.io's order: replay, queued packets, then live events.

Frames are written straight to a connection only when nothing waits ahead of
them; these tests make things wait (a replay larger than the kernel buffers, an
upgrade from polling) and check what the client reads, in order.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import socketio

from notification_service.app import SOCKETIO_KEY
from notification_service.transports.engineio_ws import DirectSocket

from .support import WAIT
from .test_socketio_bounds import SMALL_BUFFER, direct_sockets, until
from .wsclient import RawSocketIO, client_frame


async def test_a_page_upgraded_from_polling_gets_every_event_in_order(server):
    transport = server.app[SOCKETIO_KEY]
    received: list[int] = []
    client = socketio.AsyncClient(reconnection=False)
    client.on("TICK", lambda data, meta: received.append(data["n"]))
    await client.connect(server.url, transports=["polling", "websocket"], wait_timeout=WAIT)
    answer = await client.call("REGISTER", {"code": "upgrade"}, timeout=WAIT)
    assert answer["ok"] is True
    await server.hub.publish("upgrade", "TICK", {"n": 0})  # maybe still over polling
    await until(lambda: client.transport() == "websocket")
    [socket] = transport.sio.eio.sockets.values()
    await until(lambda: isinstance(socket, DirectSocket) and socket.outbox is not None)
    for number in range(1, 50):
        await server.hub.publish("upgrade", "TICK", {"n": number})
    await until(lambda: len(received) == 50)
    assert received == list(range(50))
    answer = await client.call("subscribe", "more", timeout=WAIT)  # acks still work
    assert answer == {"ok": True, "channel": "more"}
    await client.disconnect()


@pytest.mark.server(history_size=1000, history_bytes=64 * 2**20)
async def test_live_events_wait_behind_a_replay_that_waits(server):
    """A 10 MB replay to a client reading slowly, live events published meanwhile: in order."""
    first = await server.hub.publish("order", "E", {"n": -1})
    for number in range(400):
        await server.hub.publish("order", "E", {"n": number, "pad": "z" * 25_000})
    client = await RawSocketIO.connect(server.port, receive_buffer=SMALL_BUFFER)
    client.emit("REGISTER", {"code": "order", "lastEventId": first.event.id}, ack=1)
    [socket] = direct_sockets(server)
    await until(lambda: bool(socket.outbox))  # the replay waits: the kernel buffers are full
    for number in range(400, 420):
        await server.hub.publish("order", "E", {"n": number})
    seen: list[int] = []
    ack = None
    while len(seen) < 420:
        message = await client.receive()
        assert message is not None
        if message.startswith('42["E"'):
            name, data, meta = json.loads(message[2:])
            seen.append(data["n"])
            assert meta["replayed"] is (data["n"] < 400)
        elif message.startswith("431"):
            ack = json.loads(message[3:])[0]
            assert len(seen) == 400  # the answer comes after what it replayed
    assert seen == list(range(420))
    assert ack == {"ok": True, "code": "order", "replayed": 400}
    client.close()



async def test_pings_keep_a_quiet_page_and_drop_a_silent_client(server):
    """Pings are timer handles now: a page answering them stays, a client that never does goes."""
    eio = server.app[SOCKETIO_KEY].sio.eio
    eio.ping_interval, eio.ping_timeout = 1, 1
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(server.url, transports=["websocket"], wait_timeout=WAIT)
    silent = await RawSocketIO.connect(server.port)
    stream = await silent.read_all()  # until the server gives up on it
    assert stream.count(b"\x81\x012") >= 1  # it was pinged, never answered
    assert len(eio.sockets) == 1
    await asyncio.sleep(3)  # three more ping intervals: the page answers each one
    assert client.connected and len(eio.sockets) == 1
    await client.disconnect()


async def test_the_socket_reads_its_frames_in_order_and_answers_pings_and_close_frames(server):
    """Frames reach the socket as they are parsed (no read loop); what aiohttp's loop did holds."""
    eio = server.app[SOCKETIO_KEY].sio.eio
    client = await RawSocketIO.connect(server.port, namespace_connect=False)
    # one write: CONNECT (its handler awaits), an event right behind it, a ping
    client.writer.write(client_frame(b"40") + client_frame(b'421["subscribe","news"]')
                        + client_frame(b"are you there", opcode=0x9))
    seen = []
    while not seen or not seen[-1].startswith("431"):
        message = await client.receive()
        assert message is not None, seen
        seen.append(message)
    assert "are you there" in seen  # the pong, with the ping's payload
    texts = [message for message in seen if message != "are you there"]
    assert [text[:10] for text in texts] == ['40{"sid":"', '42["WELCOM', '431[{"ok":']
    assert json.loads(texts[-1][3:]) == [{"ok": True, "channel": "news"}]
    client.writer.write(client_frame(b"\x03\xe8", opcode=0x8))  # close, 1000
    assert await client.receive() is None  # answered with a close frame
    await until(lambda: not eio.sockets)
    client.close()


async def test_a_client_sending_faster_than_its_packets_are_handled_is_paused_then_resumed(server):
    """2 MB of packets in one write: reading pauses past 128 KiB waiting; every one is handled."""
    client = await RawSocketIO.connect(server.port)
    [socket] = direct_sockets(server)
    event = json.dumps(["RECEIVED", {"id": "x", "pad": "z" * 4000}])
    packet = client_frame(("42" + event).encode())
    client.writer.write(packet * 500 + client_frame(b'427["subscribe","news"]'))
    answer = await client.until("437")  # handled after the 500 before it
    assert json.loads(answer[3:]) == [{"ok": True, "channel": "news"}]
    assert socket._protocol._reading_paused is False and socket._inbox is None
    client.close()


async def test_the_frames_of_one_loop_iteration_go_out_in_one_write(server):
    """Twenty publishes in one event-loop iteration reach a listener in one write, in order.

    A ``send`` to an idle listener wakes it (10-25 µs of CPU on a VM); the spy
    counts the writes that reach the real transport and lets each through.
    """
    client = await RawSocketIO.connect(server.port)
    client.emit("REGISTER", {"code": "batch"}, ack=1)
    [socket] = direct_sockets(server)
    while not (await client.receive()).startswith("431"):
        pass  # WELCOME, then the REGISTER answer
    writes: list[bytes] = []
    real_write = socket.transport.write

    def spy(data: bytes) -> None:
        writes.append(data)
        real_write(data)
    socket.transport.write = spy  # type: ignore[method-assign]
    await asyncio.gather(*(server.hub.publish("batch", "E", {"n": n}) for n in range(20)))
    seen: list[int] = []
    while len(seen) < 20:
        message = await client.receive()
        assert message is not None
        if message.startswith('42["E"'):
            seen.append(json.loads(message[2:])[1]["n"])
    assert seen == list(range(20))
    assert len(writes) == 1 and writes[0].count(b'42["E"') == 20
    client.close()
