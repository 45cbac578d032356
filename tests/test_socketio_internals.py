"""The python-socketio and python-engineio internals the socket.io transport relies on.

notification_service/transports/socketio.py and engineio_ws.py reach past both
libraries' public API: they read room members from the manager, queue one
encoded packet on each polling member's engine.io socket, swap in their own
aiohttp WebSocket class, turn a socket that speaks WebSocket into a
DirectSocket that writes frames to aiohttp's transport itself, dispatch the
socket.io packets they checked to python-socketio's handlers, and close
sockets without waiting at shutdown. requirements.txt pins both libraries to
one minor version; before a pin moves, this module must pass against the new
version. Each test checks one internal with the shape the transport uses
(attribute there, callable with those arguments, answering that type), without
a server except the last, which looks at what a live connection leaves behind.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from importlib.metadata import version

import socketio
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp._websocket.models import WebSocketError
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.web_protocol import RequestHandler
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp
from engineio.async_socket import AsyncSocket
from socketio import packet as socketio_packet

from notification_service import jsoncodec
from notification_service.app import SOCKETIO_KEY
from notification_service.config import PROJECT_ROOT

from .support import WAIT
from notification_service.transports.engineio_ws import (NO_REQUESTS, DirectSocket,
                                                         DirectWebSocketResponse, FrameSink,
                                                         message_frame)
from notification_service.transports.socketio import NAMESPACE, room_of


def make_sio() -> socketio.AsyncServer:
    """An AsyncServer made as SocketIOTransport makes it."""
    return socketio.AsyncServer(async_mode="aiohttp", json=jsoncodec, logger=False,
                                engineio_logger=False, always_connect=True,
                                max_http_buffer_size=12345)


def test_installed_versions_are_the_pinned_minor_versions():
    pins = (PROJECT_ROOT / "requirements.txt").read_text()
    for name in ("python-socketio", "python-engineio"):
        low, high = re.search(rf"^{name}>=([\d.]+),<([\d.]+)$", pins, re.MULTILINE).groups()
        installed = tuple(int(part) for part in version(name).split(".")[:2])
        assert tuple(map(int, low.split("."))) <= installed < tuple(map(int, high.split("."))), (
            f"{name} {version(name)} is installed but requirements.txt pins >={low},<{high}")


async def test_manager_rooms_map_each_member_sid_to_its_engineio_sid():
    manager = make_sio().manager
    sid = await manager.connect("eio-1", NAMESPACE)
    assert manager.is_connected(sid, NAMESPACE) is True
    assert manager.eio_sid_from_sid(sid, NAMESPACE) == "eio-1"
    assert manager.eio_sid_from_sid("someone-else", NAMESPACE) is None
    # Every connection has a room named after its sid: why channel rooms have a prefix.
    assert dict(manager.rooms[NAMESPACE][sid].items()) == {sid: "eio-1"}

    assert manager.basic_enter_room(sid, NAMESPACE, room_of("news")) is None  # not a coroutine
    manager.basic_enter_room(sid, NAMESPACE, room_of("news"))  # twice: still one member
    room = manager.rooms.get(NAMESPACE, {}).get(room_of("news"))
    assert len(room) == 1 and list(room.items()) == [(sid, "eio-1")]
    assert manager.rooms.get("/elsewhere", {}).get(room_of("news")) is None

    assert manager.basic_leave_room(sid, NAMESPACE, room_of("news")) is None
    assert room_of("news") not in manager.rooms[NAMESPACE]  # an empty room is dropped
    manager.basic_leave_room(sid, NAMESPACE, room_of("news"))  # not a member: no error
    await manager.disconnect(sid, NAMESPACE)
    assert manager.is_connected(sid, NAMESPACE) is False


async def test_engineio_sockets_take_packets_without_waiting_and_close_without_waiting():
    eio = make_sio().eio
    assert eio.sockets == {} and isinstance(eio.sockets, dict)
    socket = AsyncSocket(eio, "eio-1")
    eio.sockets["eio-1"] = socket
    assert socket.closed is False
    message = engineio_packet.Packet(engineio_packet.MESSAGE, '2["x"]')
    assert socket.queue.put_nowait(message) is None  # synchronous: deliver never awaits
    assert socket.queue.get_nowait() is message
    socket.queue.task_done()

    assert isinstance(eio.reason.SERVER_DISCONNECT, str)
    assert {"wait", "reason"} <= set(inspect.signature(AsyncSocket.close).parameters)
    await asyncio.wait_for(socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT), 1)
    assert socket.closed is True
    assert socket.queue.get_nowait().packet_type == engineio_packet.CLOSE  # queued, not sent
    eio.sockets = {}  # what shutdown does once every socket is closed


async def test_engineio_builds_the_websocket_class_named_in_async_websocket():
    eio = make_sio().eio
    assert isinstance(eio._async, dict) and eio._async["websocket"] is engineio_aiohttp.WebSocket
    made: list[tuple] = []

    class Recording:
        def __init__(self, handler, server):
            made.append((handler, server))

        async def __call__(self, environ):
            made.append((environ,))
            return "the response"

    eio._async = {**eio._async, "websocket": Recording}  # as SocketIOTransport does
    socket = AsyncSocket(eio, "eio-1")
    environ = {"aiohttp.request": None}
    assert await socket._upgrade_websocket(environ) == "the response"
    assert made == [(socket._websocket_handler, eio), (environ,)]
    assert made[0][0].__self__ is socket  # how our class finds the socket to serve


def test_aiohttp_websocket_wrapper_is_built_with_handler_and_server():
    websocket = engineio_aiohttp.WebSocket
    assert inspect.iscoroutinefunction(websocket.__call__)
    assert list(inspect.signature(websocket.__call__).parameters) == ["self", "environ"]
    eio = make_sio().eio
    assert eio.max_http_buffer_size == 12345

    def handler(_ws):
        pass

    wrapper = websocket(handler, eio)
    assert wrapper.handler is handler and wrapper.server is eio


def test_socket_state_and_handlers_the_direct_socket_drives():
    """DirectSocket replaces the socket's writer, reader and pings, and calls these itself."""
    sio = make_sio()
    eio = sio.eio
    socket = AsyncSocket(eio, "eio-1")
    for flag in ("connected", "upgrading", "upgraded", "closing", "closed"):
        assert getattr(socket, flag) is False, flag
    assert isinstance(socket.last_ping, float) and isinstance(socket.queue, asyncio.Queue)
    assert isinstance(eio.async_handlers, bool) and isinstance(eio.ping_interval, (int, float))
    assert "run_async" in inspect.getsource(eio._trigger_event)  # a keyword it reads from **kwargs
    for reason in ("TRANSPORT_CLOSE", "TRANSPORT_ERROR", "SERVER_DISCONNECT"):
        assert isinstance(getattr(eio.reason, reason), str)
    assert list(inspect.signature(AsyncSocket.close).parameters) == [
        "self", "wait", "abort", "reason"]
    # python-socketio's dispatch, which ListeningServer calls once it has checked a packet
    for name, parameters in (("_handle_eio_connect", ["eio_sid", "environ"]),
                             ("_handle_eio_message", ["eio_sid", "data"]),
                             ("_handle_connect", ["eio_sid", "namespace", "data"]),
                             ("_handle_disconnect", ["eio_sid", "namespace", "reason"]),
                             ("_handle_event", ["eio_sid", "namespace", "id", "data"]),
                             ("_handle_ack", ["eio_sid", "namespace", "id", "data"])):
        method = getattr(sio, name)
        assert inspect.iscoroutinefunction(method), name
        assert list(inspect.signature(method).parameters)[:len(parameters)] == parameters, name
    assert isinstance(sio.environ, dict)


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One final frame as a client sends it (masked), payload under 126 bytes."""
    key = b"\x01\x02\x03\x04"
    return bytes((0x80 | opcode, 0x80 | len(payload))) + key + bytes(
        byte ^ key[index % 4] for index, byte in enumerate(payload))


def test_aiohttp_websocket_parser_hands_messages_to_a_queue_subclass_at_once():
    """FrameSink: a Python subclass of aiohttp's (compiled) queue, without its state."""
    seen: list[object] = []

    class Socket:  # what FrameSink calls on a DirectSocket
        def received(self, message):
            seen.append((message.type, message.data))

        def broken(self, error):
            seen.append(error)

        def finished(self):
            seen.append("end")

    sink = FrameSink(Socket())  # type: ignore[arg-type]
    assert isinstance(sink, WebSocketDataQueue)
    parser = WebSocketReader(sink, 100, compress=False, decode_text=True)
    assert parser.feed_data(masked_frame(0x1, b"40") + masked_frame(0x9, b"hi")) == (False, b"")
    assert seen == [(WSMsgType.TEXT, "40"), (WSMsgType.PING, b"hi")]  # as the bytes arrive
    assert parser.feed_data(masked_frame(0x1, b"x" * 120))[0] is True  # over max_msg_size
    assert isinstance(seen[2], WebSocketError) and seen[2].code == WSCloseCode.MESSAGE_TOO_BIG
    parser.feed_eof()
    assert seen[3] == "end"


def test_aiohttp_websocket_response_start_hooks_the_direct_response_overrides():
    """DirectWebSocketResponse replaces _post_start and write_eof, and sets what they set."""
    source = inspect.getsource(web.WebSocketResponse.prepare)
    assert "self._pre_start(request)" in source
    assert "self._post_start(request, protocol, writer)" in source
    assert list(inspect.signature(web.WebSocketResponse._post_start).parameters) == [
        "self", "request", "protocol", "writer"]
    post_start = inspect.getsource(web.WebSocketResponse._post_start)
    for step in ("self._ws_protocol = protocol", "self._reset_heartbeat()",
                 "WebSocketReader(", "set_parser(", "keep_alive(False)"):
        assert step in post_start, step
    assert "transport," in inspect.getsource(web.WebSocketResponse._pre_start)  # writer.transport
    ws = web.WebSocketResponse(max_msg_size=123)
    assert ws._max_msg_size == 123 and ws._eof_sent is False
    assert isinstance(ws._decode_text, bool) and callable(ws._set_closed)
    # aiohttp calls write_eof once the handler returned, with the request still in progress
    finish = inspect.getsource(RequestHandler.finish_response)
    assert "await prepare_meth(request)" in finish and "await resp.write_eof()" in finish
    handle = inspect.getsource(RequestHandler._handle_request)
    assert handle.index("self._request_in_progress = True") < handle.index(
        "finish_response") < handle.index("self._request_in_progress = False")
    # the protocol state the socket lends out or uses for flow control
    for name in ("_messages", "_parser", "_reading_paused"):  # slots, set per connection
        assert hasattr(RequestHandler, name), name
    for name in ("set_parser", "keep_alive", "pause_reading", "resume_reading"):
        assert callable(getattr(RequestHandler, name)), name


def test_socketio_packets_encode_once_into_engineio_messages():
    sio = make_sio()
    assert sio.packet_class is socketio_packet.Packet and sio.packet_class.json is jsoncodec
    arguments = ["ALERT", {"user": "bob"}, {"id": "e-1", "replayed": False}]
    encoded = sio.packet_class(socketio_packet.EVENT, namespace=NAMESPACE, data=arguments).encode()
    assert isinstance(encoded, str) and encoded.startswith('2["ALERT",')
    assert json.loads(encoded[1:]) == arguments
    message = engineio_packet.Packet(engineio_packet.MESSAGE, encoded)
    assert message.encode() == "4" + encoded


def test_public_calls_take_the_arguments_the_transport_passes():
    sio = make_sio()
    assert "to" in inspect.signature(sio.emit).parameters
    for coroutine in (sio.emit, sio.disconnect, sio.shutdown):
        assert inspect.iscoroutinefunction(coroutine), coroutine.__name__
    assert sio.get_environ("nobody") is None


async def test_a_live_connection_leaves_the_objects_the_transport_reads(server, pages):
    """Through the real upgrade: our WebSocket class, the room, the socket, its transport."""
    transport = server.app[SOCKETIO_KEY]
    page = await pages()
    assert (await page.emit("REGISTER", {"code": "shape"}))["ok"] is True
    sid = page.client.get_sid(NAMESPACE)
    room = transport.sio.manager.rooms[NAMESPACE][room_of("shape")]
    eio_sid = room[sid]
    assert transport.sio.manager.eio_sid_from_sid(sid, NAMESPACE) == eio_sid
    socket = transport.sio.eio.sockets[eio_sid]
    assert isinstance(socket, DirectSocket) and socket.closed is False
    assert socket.outbox is not None and not socket.outbox
    # aiohttp's writer: the transport the frames go to and the protocol's flow control
    assert isinstance(socket.transport, asyncio.Transport)
    assert socket._protocol._paused is False
    assert inspect.iscoroutinefunction(socket._protocol._drain_helper)
    socket.write(message_frame(transport.sio.packet_class(
        socketio_packet.EVENT, namespace=NAMESPACE, data=["direct", {"n": 1}]).encode()))
    assert await page.wait_for("direct") == [{"n": 1}]

    # What the open WebSocket keeps of its request: aiohttp's task, waiting in the
    # response's write_eof on the socket's one future; no handler chain, no read loop.
    protocol = socket._protocol
    assert protocol._messages is NO_REQUESTS and protocol._parser is None
    [task] = [task for task in asyncio.all_tasks()
              if task.get_coro().cr_code.co_name == "_handle_request"
              and task.get_coro().cr_frame.f_locals["request"].protocol is protocol]
    chain, coroutine = [], task.get_coro()
    while inspect.iscoroutine(coroutine):
        chain.append(coroutine.cr_code.co_qualname)
        coroutine = coroutine.cr_await
    assert chain == ["RequestHandler._handle_request", "RequestHandler.finish_response",
                     "DirectWebSocketResponse.write_eof"]
    assert task._fut_waiter is socket.ended
    assert isinstance(task.get_coro().cr_frame.f_locals["request"], web.BaseRequest)

    await page.close()  # the request ends, the socket is gone, aiohttp's queue is back
    await asyncio.wait((task,), timeout=WAIT)
    assert task.done()
    assert eio_sid not in transport.sio.eio.sockets and type(protocol._messages).__name__ == "deque"


def test_the_server_imports_python_socketio_without_its_client_libraries():
    """requests and websocket-client (about 5 MB of RSS) stay unloaded in the server."""
    import subprocess
    import sys
    script = ("import sys, notification_service.app; "
              "print(sorted(name for name in ('requests', 'websocket') if name in sys.modules))")
    found = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True,
                           text=True, timeout=60, check=True).stdout.strip()
    assert found == "[]"
