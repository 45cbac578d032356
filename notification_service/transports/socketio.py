"""socket.io transport: pages and OBS sources listening on channels (rooms).

A page registers a listening code (a channel) by ``?code=`` on the connection
URL, by the handshake ``auth: {code}``, or by the original handshake: the
server emits ``WELCOME`` and the page emits ``REGISTER {"code": ...}``.
Fan-out is one ``emit`` to the room: the packet is encoded once, and nothing
here loops over all connections or logs per recipient.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

import socketio
from aiohttp import WSCloseCode, web
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp
from socketio import packet as socketio_packet

from .. import jsoncodec
from ..errors import INVALID_CODE, ApiError
from ..events import Event, validate_code
from ..hub import Hub, mask

log = logging.getLogger(__name__)

NAMESPACE = "/"
SHUTDOWN_CLOSE_SECONDS = 0.5
WELCOME_MESSAGE = "Connected to Browser Notification Service. Emit REGISTER {\"code\": ...} to listen."


class UncompressedWebSocket(engineio_aiohttp.WebSocket):
    """engine.io's aiohttp WebSocket with permessage-deflate turned off, and tracked.

    aiohttp compresses by default and python-engineio offers no switch. Every
    browser negotiates deflate, which keeps a zlib state per connection (about
    100 KB each) and costs ~19% more CPU per broadcast, for alerts of a few
    hundred bytes that gain nothing from it (see shared/FACTS.md).
    Open sockets are kept in ``open_sockets`` so shutdown can close them at once
    instead of waiting for each client to hang up.
    """

    open_sockets: weakref.WeakSet[web.WebSocketResponse]

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(request)
        self.open_sockets.add(self._sock)
        self.environ = environ
        await self.handler(self)
        return self._sock


class SocketIOTransport:
    """Delivers Events to socket.io rooms named after channels.

    :param hub: the Hub this transport registers with.
    :param cors_allowed_origins: passed to python-socketio; ``[]`` means same origin only.
    :param ping_interval: seconds between engine.io pings (whole seconds: the
        protocol truncates fractions).
    """

    name = "socketio"

    def __init__(self, hub: Hub, *, cors_allowed_origins: list[str] | str | None = None,
                 ping_interval: int = 25, ping_timeout: int = 20,
                 max_message_bytes: int = 1_000_000) -> None:
        self.hub = hub
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            cors_allowed_origins=[] if cors_allowed_origins is None else cors_allowed_origins,
            json=jsoncodec,
            logger=False,
            engineio_logger=False,
            # Accept first, then run our handler: WELCOME (emitted in the handler)
            # must reach the client after the connect acknowledgement.
            always_connect=True,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_http_buffer_size=max_message_bytes,
        )
        self._websocket_class = type("TrackedWebSocket", (UncompressedWebSocket,),
                                     {"open_sockets": weakref.WeakSet()})
        self.sio.eio._async = {**self.sio.eio._async, "websocket": self._websocket_class}
        self._codes: dict[str, str] = {}
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("REGISTER", self._on_register)
        hub.add_transport(self)

    def attach(self, app: web.Application) -> None:
        self.sio.attach(app)
        app.on_shutdown.append(self._on_shutdown)

    # -- Transport -------------------------------------------------------
    def listener_count(self, channel: str) -> int:
        room = self.sio.manager.rooms.get(NAMESPACE, {}).get(channel)
        return len(room) if room else 0

    async def deliver(self, event: Event) -> int:
        """Queue the event, encoded once, on the engine.io socket of every room member.

        python-socketio's ``emit`` creates an asyncio task per recipient and
        waits on them all (about 95 µs of CPU per delivery, see FACTS.md). The
        event is the same for everyone, so it is encoded once here and put on
        each member's outgoing queue directly; each socket's own writer task
        sends it, so one slow socket never delays the others. Only the room's
        members are visited, never every connection.
        """
        room = self.sio.manager.rooms.get(NAMESPACE, {}).get(event.channel)
        if not room:
            return 0
        encoded = self.sio.packet_class(
            socketio_packet.EVENT, namespace=NAMESPACE, data=[event.name, event.data]).encode()
        message = engineio_packet.Packet(engineio_packet.MESSAGE, encoded)
        sockets = self.sio.eio.sockets
        delivered = 0
        for eio_sid in room.values():
            socket = sockets.get(eio_sid)
            if socket is not None and not socket.closed:
                socket.queue.put_nowait(message)
                delivered += 1
        return delivered

    # -- handlers --------------------------------------------------------
    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        await self.sio.emit("WELCOME", {"message": WELCOME_MESSAGE}, to=sid)
        code = auth.get("code") if isinstance(auth, dict) else None
        if code is None:
            code = environ["aiohttp.request"].query.get("code")
        if code is not None:
            await self._register(sid, code)

    async def _on_disconnect(self, sid: str, *_reason: Any) -> None:
        self._codes.pop(sid, None)

    async def _on_register(self, sid: str, data: Any) -> dict[str, Any]:
        code = data.get("code") if isinstance(data, dict) else data
        return await self._register(sid, code)

    async def _register(self, sid: str, code: Any) -> dict[str, Any]:
        """Listen on ``code``, replacing any earlier code of this connection."""
        try:
            if not isinstance(code, str):
                raise INVALID_CODE('REGISTER needs {"code": "<your code>"} with a string code.')
            validate_code(code)
        except ApiError as error:
            await self.sio.emit("ERROR", {"message": error.message, "code": error.code}, to=sid)
            return {"ok": False, "error": error.message}
        previous = self._codes.get(sid)
        if previous is not None and previous != code:
            await self.sio.leave_room(sid, previous)
        await self.sio.enter_room(sid, code)
        self._codes[sid] = code
        log.debug("connection %s registered code %s", sid, mask(code))
        return {"ok": True, "code": code}

    async def _on_shutdown(self, _app: web.Application) -> None:
        """Close every connection at once so pages reconnect to the next process.

        engine.io's close waits for each socket's send queue to drain, which
        never happens for a socket whose client vanished a moment earlier, and
        then waits for the client to hang up: both waits are cut short so
        shutdown stays within its promised two seconds.
        """
        if self.sio.eio.sockets:
            try:
                await asyncio.wait_for(self.sio.eio.disconnect(), SHUTDOWN_CLOSE_SECONDS)
            except asyncio.TimeoutError:
                log.warning("some socket.io connections did not close in %.1f s; "
                            "dropping them", SHUTDOWN_CLOSE_SECONDS)
        websockets = list(self._websocket_class.open_sockets)
        if websockets:
            await asyncio.wait(
                [asyncio.ensure_future(ws.close(code=WSCloseCode.GOING_AWAY,
                                                message=b"server shutting down"))
                 for ws in websockets],
                timeout=SHUTDOWN_CLOSE_SECONDS)
        await self.sio.shutdown()
