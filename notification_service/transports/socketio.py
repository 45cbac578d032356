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
from . import longpolling
from ..access import ChannelAccess, Identity
from ..errors import (INVALID_CHANNEL, INVALID_CODE, TOKEN_MALFORMED, TOO_MANY_CHANNELS,
                      ApiError)
from ..events import Event, validate_channel, validate_code
from ..history import GAP_EVENT, gap_notice
from ..hub import Hub, mask
from ..identity import JwtVerifier
from ..ratelimit import check_socket_lookup
from ..proxies import client_address
from ..registry import ConnectionInfo, ConnectionRegistry

log = logging.getLogger(__name__)

NAMESPACE = "/"
SHUTDOWN_CLOSE_SECONDS = 0.5
# python-socketio puts every connection in a room named after its sid, and sids
# look like codes: channel rooms get a prefix so a channel can never be a sid room.
ROOM_PREFIX = "#"


def room_of(channel: str) -> str:
    return ROOM_PREFIX + channel
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
    :param cors_allowed_origins: passed to python-socketio; None means same origin
        only (``[]`` would turn python-engineio's origin check off entirely).
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
            cors_allowed_origins=cors_allowed_origins,
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
        longpolling.install(self.sio.eio)
        self._codes: dict[str, str] = {}
        self._plain: set[str] = set()  # connections that asked for events without metadata
        self._channels: dict[str, set[str]] = {}  # sid -> channels joined by subscribe/join
        self.verifier: JwtVerifier = JwtVerifier()
        self.registry: ConnectionRegistry = ConnectionRegistry()
        self._identified: dict[str, ConnectionInfo] = {}
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("REGISTER", self._on_register)
        self.sio.on("RECEIVED", self._on_received)
        hub.add_transport(self)
        hub.receipts.confirmations_from(lambda channel: self._room(channel) or ())

    def attach(self, app: web.Application) -> None:
        self.sio.attach(app)
        app.on_shutdown.append(self._on_shutdown)

    # -- Transport -------------------------------------------------------
    def _room(self, channel: str) -> Any:
        """The room's members as python-socketio keeps them (sid -> engine.io sid), or None."""
        return self.sio.manager.rooms.get(NAMESPACE, {}).get(room_of(channel))

    def listener_count(self, channel: str) -> int:
        room = self._room(channel)
        return len(room) if room else 0

    def deliver(self, event: Event) -> int:
        """Queue the event, encoded once, on the engine.io socket of every room member.

        python-socketio's ``emit`` creates an asyncio task per recipient and
        waits on them all (about 95 µs of CPU per delivery, see FACTS.md). The
        event is the same for everyone, so it is encoded once here and put on
        each member's outgoing queue directly; each socket's own writer task
        sends it, so one slow socket never delays the others. Only the room's
        members are visited, never every connection. Connections that asked
        for events without metadata get a second encoding, made only if needed.
        """
        room = self._room(event.channel)
        if not room:
            return 0
        with_meta = self._message(event, replayed=False)
        plain: engineio_packet.Packet | None = None
        sockets = self.sio.eio.sockets
        delivered = 0
        for sid, eio_sid in room.items():
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue
            if self._plain and sid in self._plain:
                plain = plain or self._message(event, replayed=False, meta=False)
                socket.queue.put_nowait(plain)
            else:
                socket.queue.put_nowait(with_meta)
            delivered += 1
        return delivered

    def _message(self, event: Event, *, replayed: bool, meta: bool = True
                 ) -> engineio_packet.Packet:
        """The engine.io message carrying ``event``: ``[name, data, meta]``."""
        arguments = [event.name, event.data]
        if meta:
            metadata = {"id": event.id, "channel": event.channel, "time": event.time,
                        "replayed": replayed}
            if event.receipt:
                metadata["receipt"] = True  # the publisher waits: answer with RECEIVED {id}
            arguments.append(metadata)
        encoded = self.sio.packet_class(
            socketio_packet.EVENT, namespace=NAMESPACE, data=arguments).encode()
        return engineio_packet.Packet(engineio_packet.MESSAGE, encoded)

    def _listen(self, sid: str, channel: str, last_event_id: str | None) -> int:
        """Join ``channel``, first queueing what the client missed since ``last_event_id``.

        Synchronous from reading history to joining the room: no event can be
        published in between (see Transport.deliver), so the client gets what
        it missed, then live events, with no duplicate and no gap. Returns the
        number of events replayed.
        """
        socket = self.sio.eio.sockets.get(self.sio.manager.eio_sid_from_sid(sid, NAMESPACE))
        replayed = 0
        if socket is not None and last_event_id is not None:
            missed = self.hub.history.since(channel, last_event_id)
            self.hub.metrics.resumed(missed.gap)
            if missed.gap:
                notice = gap_notice(channel, last_event_id, len(missed.events))
                socket.queue.put_nowait(engineio_packet.Packet(
                    engineio_packet.MESSAGE, self.sio.packet_class(
                        socketio_packet.EVENT, namespace=NAMESPACE,
                        data=[GAP_EVENT, notice]).encode()))
            plain = sid in self._plain
            for event in missed.events:
                socket.queue.put_nowait(self._message(event, replayed=True, meta=not plain))
            replayed = len(missed.events)
        self.sio.manager.basic_enter_room(sid, NAMESPACE, room_of(channel))
        return replayed

    # -- handlers --------------------------------------------------------
    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        options = auth if isinstance(auth, dict) else {}
        query = environ["aiohttp.request"].query
        # Before the first await: a disconnect arriving meanwhile then finds it to clean up.
        if options.get("meta") is False or query.get("meta") == "0":
            self._plain.add(sid)
        token = options.get("token")
        if token is not None and not await self._identify(sid, environ, token):
            return
        await self.sio.emit("WELCOME", {"message": WELCOME_MESSAGE}, to=sid)
        code = options.get("code", query.get("code"))
        if code is not None:
            await self._register(sid, code, options.get("lastEventId", query.get("lastEventId")))

    async def _on_disconnect(self, sid: str, *_reason: Any) -> None:
        self._codes.pop(sid, None)
        self._plain.discard(sid)
        self._channels.pop(sid, None)
        info = self._identified.pop(sid, None)
        if info is not None:
            self.registry.remove(info)

    # -- JWT identity (auth: {token}) -------------------------------------
    def use_identities(self, verifier: JwtVerifier, registry: ConnectionRegistry) -> None:
        """Verify ``auth: {token}`` with ``verifier``; list identified sockets in ``registry``."""
        self.verifier = verifier
        self.registry = registry

    async def _identify(self, sid: str, environ: dict[str, Any], token: Any) -> bool:
        """Join the token's user and application channels, or emit ERROR and disconnect."""
        try:
            if not isinstance(token, str):
                raise TOKEN_MALFORMED("auth.token must be the JWT as a string.")
            identity = self.verifier.verify(token)
            self.registry.admit(identity)
        except ApiError as error:
            await self._send_error(sid, error)
            await self.sio.disconnect(sid)
            return False
        info = ConnectionInfo(sid, identity, self.name,
                              client_address(environ["aiohttp.request"]))
        self._identified[sid] = info
        self.registry.add(info)
        if self._gone(sid):  # it left while we verified
            await self._on_disconnect(sid)
            return False
        self._listen(sid, identity.user_channel, None)
        self._listen(sid, identity.application_channel, None)
        return True

    async def _on_register(self, sid: str, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            return await self._register(sid, data.get("code"), data.get("lastEventId"))
        return await self._register(sid, data, None)

    async def _on_received(self, sid: str, data: Any) -> None:
        """A page confirms an event it was asked to confirm (``meta.receipt``)."""
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            self.hub.receipts.acknowledge(data["id"], sid)

    async def _send_error(self, sid: str, error: ApiError) -> None:
        """Tell one page why something it asked for was refused (the ERROR event)."""
        await self.sio.emit("ERROR", {"message": error.message, "code": error.code}, to=sid)

    def _gone(self, sid: str) -> bool:
        """Handlers run as tasks: the connection may have left before one runs.

        Joining then would leave an empty room and per-connection state that no
        disconnect will ever clean up.
        """
        return not self.sio.manager.is_connected(sid, NAMESPACE)

    async def _register(self, sid: str, code: Any, last_event_id: Any) -> dict[str, Any]:
        """Listen on ``code``, replacing any earlier code of this connection."""
        if self._gone(sid):
            return {"ok": False, "error": "The connection is closed."}
        try:
            check_socket_lookup(self.sio.get_environ(sid))
            if not isinstance(code, str):
                raise INVALID_CODE('REGISTER needs {"code": "<your code>"} with a string code.')
            validate_code(code)
            if last_event_id is not None and not isinstance(last_event_id, str):
                raise INVALID_CODE("lastEventId must be the id string of the last event seen.")
        except ApiError as error:
            await self._send_error(sid, error)
            return {"ok": False, "error": error.message}
        previous = self._codes.get(sid)
        if previous is not None and previous != code:
            self.sio.manager.basic_leave_room(sid, NAMESPACE, room_of(previous))
        replayed = self._listen(sid, code, last_event_id)
        self._codes[sid] = code
        log.debug("connection %s registered code %s", sid, mask(code))
        return {"ok": True, "code": code, "replayed": replayed}

    # -- channels: subscribe/unsubscribe (broadcasting server), join/leave (ws-emit)
    def enable_channels(self, access: ChannelAccess, *, max_per_connection: int = 100) -> None:
        """Let pages listen on channels by name, each answer in the acknowledgement.

        :param access: decides who may listen (private spaces, JWT channels).
        :param max_per_connection: channels one connection may listen on,
            the registered code included; more are refused, not ignored.
        """
        self.access = access
        self.max_channels_per_connection = max_per_connection
        self.sio.on("subscribe", self._on_subscribe)
        self.sio.on("unsubscribe", self._on_unsubscribe)
        self.sio.on("join", self._on_join)
        self.sio.on("leave", self._on_leave)

    def identity_of(self, sid: str) -> Identity | None:
        """The JWT identity this connection proved at connect (``auth: {token}``), if any."""
        info = self._identified.get(sid)
        return info.identity if info is not None else None

    async def _on_subscribe(self, sid: str, data: Any = None, *_extra: Any) -> dict[str, Any]:
        """``subscribe`` with ``"channel"`` or ``{"channel", "secret"}``."""
        return await self._join_request(sid, "subscribe", data, "channel")

    async def _on_join(self, sid: str, data: Any = None, *_extra: Any) -> dict[str, Any]:
        """ws-emit's ``join`` with ``{"room", "secret"}`` (refusals are answered, not ignored)."""
        return await self._join_request(sid, "join", data, "room")

    async def _on_unsubscribe(self, sid: str, data: Any = None, *_extra: Any) -> dict[str, Any]:
        return await self._stop_listening(sid, "unsubscribe", data, "channel")

    async def _on_leave(self, sid: str, data: Any = None, *_extra: Any) -> dict[str, Any]:
        return await self._stop_listening(sid, "leave", data, "room")

    async def _join_request(self, sid: str, verb: str, data: Any, field: str) -> dict[str, Any]:
        if self._gone(sid):
            return {"ok": False, "error": "The connection is closed."}
        channel, secret = _channel_request(data, field)
        last_event_id = data.get("lastEventId") if isinstance(data, dict) else None
        try:
            check_socket_lookup(self.sio.get_environ(sid))
            channel = self._checked_channel(verb, channel, field)
            if secret is not None and not isinstance(secret, str):
                raise INVALID_CHANNEL(f'"secret" is a string (got {type(secret).__name__}).')
            if last_event_id is not None and not isinstance(last_event_id, str):
                raise INVALID_CHANNEL('"lastEventId" is the id string of the last event seen.')
            joined = self._channels.setdefault(sid, set())
            if channel not in joined and channel != self._codes.get(sid):
                listening = len(joined | ({self._codes[sid]} if sid in self._codes else set()))
                if listening >= self.max_channels_per_connection:
                    raise TOO_MANY_CHANNELS(
                        f"This connection already listens on {listening} channels, the most "
                        f"this server allows (--max-channels-per-connection); unsubscribe "
                        f"from one first.")
            self.access.check_listen(channel, secret=secret, identity=self.identity_of(sid))
        except ApiError as error:
            return await self._refuse(sid, verb, channel, error)
        replayed = self._listen(sid, channel, last_event_id)
        joined.add(channel)
        log.debug("connection %s %s %s", sid, verb, mask(channel))
        answer: dict[str, Any] = {"ok": True, "channel": channel}
        if last_event_id is not None:
            answer["replayed"] = replayed
        return answer

    async def _stop_listening(self, sid: str, verb: str, data: Any, field: str) -> dict[str, Any]:
        channel, _secret = _channel_request(data, field)
        try:
            channel = self._checked_channel(verb, channel, field)
        except ApiError as error:
            return await self._refuse(sid, verb, channel, error)
        self.sio.manager.basic_leave_room(sid, NAMESPACE, room_of(channel))
        self._channels.get(sid, set()).discard(channel)
        if self._codes.get(sid) == channel:
            del self._codes[sid]
        return {"ok": True, "channel": channel}

    @staticmethod
    def _checked_channel(verb: str, channel: Any, field: str) -> str:
        if not isinstance(channel, str):
            example = '"news"' if field == "channel" else '{"room": "news", "secret": "..."}'
            raise INVALID_CHANNEL(f"{verb} needs a channel name: emit {verb} with {example}.")
        return validate_channel(channel)

    async def _refuse(self, sid: str, verb: str, channel: Any, error: ApiError) -> dict[str, Any]:
        """Answer a refusal in the ack and as an ERROR event (pages without acks see it too)."""
        shown = mask(channel) if isinstance(channel, str) else repr(type(channel).__name__)
        reason = error.message.replace(channel, shown) if isinstance(channel, str) else error.message
        log.info("refused %s of %s by %s: %s", verb, shown, self._peer(sid), reason)
        answer = {"ok": False, "error": error.message, "code": error.code}
        if isinstance(channel, str):
            answer["channel"] = channel
        await self._send_error(sid, error)
        return answer

    def _peer(self, sid: str) -> str:
        environ = self.sio.get_environ(sid) or {}
        request = environ.get("aiohttp.request")
        return client_address(request) if request is not None else "?"

    async def _on_shutdown(self, _app: web.Application) -> None:
        """Close every connection at once so pages reconnect to the next process.

        engine.io's close waits for each socket's send queue to drain, which
        never happens for a socket whose client vanished a moment earlier, and
        then waits for the client to hang up: both waits are cut short so
        shutdown stays within its promised two seconds.
        """
        # Not eio.disconnect(): it waits, unbounded, for each socket's writer to
        # flush the CLOSE packet, and a page that closed a moment earlier has no
        # writer left. Queue CLOSE without waiting, then close the WebSockets.
        eio = self.sio.eio
        for socket in list(eio.sockets.values()):
            await socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
        eio.sockets = {}
        websockets = list(self._websocket_class.open_sockets)
        if websockets:
            await asyncio.wait(
                [asyncio.ensure_future(ws.close(code=WSCloseCode.GOING_AWAY,
                                                message=b"server shutting down"))
                 for ws in websockets],
                timeout=SHUTDOWN_CLOSE_SECONDS)
        await self.sio.shutdown()


def _channel_request(data: Any, field: str) -> tuple[Any, Any]:
    """``"name"`` or ``{field: "name", "secret": ...}`` -> (channel, secret)."""
    if isinstance(data, dict):
        return data.get(field, data.get("channel")), data.get("secret")
    return data, None
