"""socket.io transport: pages and OBS sources listening on channels (rooms).

A page registers a listening code (a channel) by ``?code=`` on the connection
URL, by the handshake ``auth: {code}``, or by the original handshake: the
server emits ``WELCOME`` and the page emits ``REGISTER {"code": ...}``.
Fan-out encodes each event once, as the WebSocket frame every WebSocket
member of the room gets (:mod:`.engineio_ws` writes it to each connection),
and as one engine.io packet for polling members; nothing here loops over all
connections or logs per recipient. What a client sends is checked before
python-socketio sees it: binary attachments, invalid packets and wrong
argument counts close that connection with one WARNING line.
"""

from __future__ import annotations

import logging
from typing import Any

from . import socketio_import  # noqa: F401  (first: python-socketio without client libraries)

import socketio  # noqa: E402
from aiohttp import WSCloseCode, web
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp
from socketio import packet as socketio_packet

from .. import jsoncodec
from . import longpolling
from ..access import ChannelAccess, Identity
from ..config import MiB
from ..errors import (INVALID_CHANNEL, INVALID_CODE, TOKEN_MALFORMED, TOO_MANY_CHANNELS,
                      TOO_SLOW, ApiError)
from ..events import Event, validate_channel, validate_code
from ..history import GAP_EVENT, gap_notice
from ..hub import Hub, mask
from ..identity import JwtVerifier
from ..logs import Throttle
from ..ratelimit import check_socket_lookup
from ..proxies import client_address
from ..registry import ConnectionInfo, ConnectionRegistry
from .budget import TOO_SLOW_REASON, Replay
from .engineio_ws import (DirectSocket, DirectWebSocketResponse, WriteBatch, message_frame,
                          text_frame, warn_malformed)

log = logging.getLogger(__name__)

NAMESPACE = "/"
# python-socketio puts every connection in a room named after its sid, and sids
# look like codes: channel rooms get a prefix so a channel can never be a sid room.
ROOM_PREFIX = "#"


def room_of(channel: str) -> str:
    return ROOM_PREFIX + channel
WELCOME_MESSAGE = "Connected to Browser Notification Service. Emit REGISTER {\"code\": ...} to listen."


class UncompressedWebSocket(engineio_aiohttp.WebSocket):
    """engine.io's aiohttp WebSocket with permessage-deflate turned off, tracked, served directly.

    aiohttp compresses by default and python-engineio offers no switch. Every
    browser negotiates deflate, which keeps a zlib state per connection (about
    100 KB each) and costs ~19% more CPU per broadcast, for alerts of a few
    hundred bytes that gain nothing from it (see shared/FACTS.md).
    The engine.io socket becomes
    a :class:`~.engineio_ws.DirectSocket` and serves the WebSocket itself, once
    the handler chain has returned (:class:`~.engineio_ws.DirectWebSocketResponse`).
    """

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        socket = self.handler.__self__  # python-engineio hands over its socket's handler
        if not isinstance(socket, DirectSocket):  # upgrading from polling
            socket.__class__ = DirectSocket
        sock = DirectWebSocketResponse(socket, client_address(request),
                                       max_msg_size=self.server.max_http_buffer_size)
        await sock.prepare(request)
        forget_request_headers(environ)
        # served once this handler chain has returned (see DirectWebSocketResponse)
        return sock


ENVIRON_KEPT = ("aiohttp.request", "QUERY_STRING", "REQUEST_METHOD", "PATH_INFO", "SCRIPT_NAME")


def forget_request_headers(environ: dict[str, Any]) -> None:
    """Drop python-engineio's copy of every request header (about 800 bytes a connection).

    It was read for the origin check and the upgrade; a WebSocket never reads
    it again, yet python-socketio keeps ``environ`` for the connection's life.
    What the handlers read later (the request itself, for the query and who
    the client is) stays.
    """
    small = {key: environ[key] for key in ENVIRON_KEPT if key in environ}
    environ.clear()  # frees the dict's table, which deleting keys one by one would keep
    environ.update(small)


class ListeningServer(socketio.AsyncServer):
    """python-socketio's server, checking what clients send before it handles it.

    A client never needs to send binary data, so binary attachments are refused
    outright (python-socketio would keep every frame a ``BINARY_EVENT`` header
    announces, up to 9,999,999,999 of them); an undecodable packet, a packet
    type a client may not send, or an event without a name closes that
    connection with one WARNING line instead of a traceback. Sockets that
    connect over WebSocket are :class:`~.engineio_ws.DirectSocket` from the start.
    """

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        if "transport=websocket" in environ.get("QUERY_STRING", ""):
            socket = self.eio.sockets.get(eio_sid)
            if socket is not None:
                socket.__class__ = DirectSocket
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        pkt, problem = decode_client_packet(self.packet_class, data)
        if problem is not None:
            await self.close_malformed(eio_sid, problem)
            return
        namespace = pkt.namespace
        if pkt.packet_type == socketio_packet.CONNECT:
            await self._handle_connect(eio_sid, namespace, pkt.data)
        elif pkt.packet_type == socketio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, namespace, self.reason.CLIENT_DISCONNECT)
        elif pkt.packet_type == socketio_packet.EVENT:
            await self._handle_event(eio_sid, namespace, pkt.id, pkt.data)
        else:
            await self._handle_ack(eio_sid, namespace, pkt.id, pkt.data)

    async def close_malformed(self, eio_sid: str, problem: str) -> None:
        """Close one connection over what its client sent: one WARNING line, nothing written back."""
        socket = self.eio.sockets.get(eio_sid)
        if socket is None:
            return
        if isinstance(socket, DirectSocket) and socket.outbox is not None:
            socket.refuse(problem)
        else:
            environ = self.environ.get(eio_sid) or {}
            request = environ.get("aiohttp.request")
            warn_malformed(self.eio.warnings, client_address(request) if request is not None
                           else "?", problem)
        await socket.close(wait=False, abort=True, reason=self.eio.reason.TRANSPORT_ERROR)


_CLIENT_PACKET_TYPES = frozenset("0123")  # CONNECT, DISCONNECT, EVENT, ACK


def decode_client_packet(packet_class: type, data: Any) -> tuple[Any, str | None]:
    """(the socket.io packet, None), or (None, what is wrong with it) for input to refuse."""
    if not isinstance(data, str):
        return None, "a binary attachment (this server takes no binary data)"
    kind = data[:1]
    if kind in ("5", "6"):
        return None, "a binary socket.io packet (BINARY_EVENT and BINARY_ACK are refused)"
    if kind not in _CLIENT_PACKET_TYPES:
        return None, f"a socket.io packet of type {kind!r}, which a client may not send"
    try:
        pkt = packet_class(encoded_packet=data)
    except Exception:  # noqa: BLE001 - any decoding failure means the same: refuse it
        return None, f"an invalid socket.io packet ({len(data)} characters)"
    if pkt.packet_type == socketio_packet.EVENT and not (
            isinstance(pkt.data, list) and pkt.data and isinstance(pkt.data[0], str)):
        return None, "a socket.io EVENT without an event name"
    if pkt.packet_type == socketio_packet.ACK and not isinstance(pkt.data, list):
        return None, "a socket.io ACK without an argument list"
    return pkt, None


def event_message(arguments: list[Any]) -> bytes:
    """The engine.io MESSAGE (``4``) carrying the socket.io EVENT packet (``2``) of the main
    namespace with ``arguments``, as python-socketio writes it, in bytes.

    Built here rather than by python-socketio's Packet: event data is JSON from a
    producer, never bytes, so its recursive search for binary parts (about 6% of a
    publish) is not needed.
    """
    return b"42" + jsoncodec.dumps_bytes(arguments)


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
                 max_message_bytes: int = 1_000_000, output_budget: int = MiB) -> None:
        self.hub = hub
        self.sio = ListeningServer(
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
        self.sio.eio._async = {**self.sio.eio._async, "websocket": UncompressedWebSocket}
        # what every DirectSocket of this server reads (see engineio_ws)
        self.sio.eio.output_budget = output_budget
        self.sio.eio.warnings = Throttle()  # closed connections: a few WARNING lines a second
        self.sio.eio.too_slow_notice = message_frame(self._encode(
            ["ERROR", {"message": TOO_SLOW_REASON, "code": TOO_SLOW.code}]))
        self.sio.eio.write_batch = WriteBatch()
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

    def listener_counts(self) -> dict[str, int]:
        """Listeners per channel (cluster mode writes them to Redis, batched; not per event)."""
        return {room[1:]: len(members) for room, members
                in self.sio.manager.rooms.get(NAMESPACE, {}).items()
                if isinstance(room, str) and room.startswith(ROOM_PREFIX)}

    def deliver(self, event: Event) -> int:
        """Send the event, encoded once, to every room member.

        python-socketio's ``emit`` creates an asyncio task per recipient and
        waits on them all (about 95 µs of CPU per delivery, see FACTS.md). The
        event is the same for everyone, so it is encoded once here as one
        WebSocket frame, and each WebSocket member writes those same bytes to
        its connection, or queues them behind what already waits for it (see
        :class:`~.engineio_ws.DirectSocket`); a polling member gets one shared
        engine.io packet on its queue. No task, no await: one slow socket never
        delays the others. Only the room's members are visited, never every
        connection. Connections that asked for events without metadata get a
        second encoding, made only if needed.
        """
        channel = event.channel
        room = self._room(channel)
        if room is None:  # python-socketio drops a room when its last member leaves
            return 0
        message = self._event_message(event, replayed=False)
        frame = text_frame(message)
        packet: engineio_packet.Packet | None = None  # made only if a polling member needs it
        plain_message: bytes | None = None
        sockets = self.sio.eio.sockets
        plain = self._plain
        delivered = 0
        for sid, eio_sid in room.items():
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue
            delivered += 1
            if plain and sid in plain:
                plain_message = plain_message or self._event_message(event, replayed=False,
                                                                     meta=False)
                if getattr(socket, "outbox", None) is not None:
                    socket.write(text_frame(plain_message), channel)
                else:
                    socket.queue.put_nowait(
                        engineio_packet.Packet(engineio_packet.MESSAGE, plain_message[1:].decode()))
            elif getattr(socket, "outbox", None) is not None:
                socket.write(frame, channel)
            else:
                packet = packet or engineio_packet.Packet(engineio_packet.MESSAGE,
                                                          message[1:].decode())
                socket.queue.put_nowait(packet)
        return delivered

    @staticmethod
    def _encode(arguments: list[Any]) -> str:
        """The socket.io EVENT packet for the main namespace, as text (see :func:`event_message`)."""
        return event_message(arguments)[1:].decode()

    def _event_text(self, event: Event, *, replayed: bool, meta: bool = True) -> str:
        """The socket.io packet carrying ``event``: ``[name, data, meta]``."""
        return self._event_message(event, replayed=replayed, meta=meta)[1:].decode()

    @staticmethod
    def _event_message(event: Event, *, replayed: bool, meta: bool = True) -> bytes:
        """The engine.io MESSAGE of :meth:`_event_text` as bytes (``42[...]``): a live
        event's WebSocket frame is made from it with no round trip through ``str``."""
        arguments = [event.name, event.data]
        if meta:
            metadata = {"id": event.id, "channel": event.channel, "time": event.time,
                        "replayed": replayed}
            if event.receipt:
                metadata["receipt"] = True  # the publisher waits: answer with RECEIVED {id}
            arguments.append(metadata)
        return event_message(arguments)

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
            gap = (self._encode([GAP_EVENT, gap_notice(channel, last_event_id,
                                                       len(missed.events))]),
                   ) if missed.gap else ()
            meta = sid not in self._plain
            if getattr(socket, "outbox", None) is not None:
                # held as history's own events, encoded as the client takes them;
                # a replay of this channel still waiting is replaced, not added to
                socket.replay(Replay(channel, missed.events, lambda event: text_frame(
                    self._event_message(event, replayed=True, meta=meta))),
                    tuple(message_frame(text) for text in gap))
            else:
                for text in gap:
                    socket.queue.put_nowait(engineio_packet.Packet(engineio_packet.MESSAGE, text))
                for event in missed.events:
                    socket.queue.put_nowait(engineio_packet.Packet(
                        engineio_packet.MESSAGE, self._event_text(event, replayed=True,
                                                                  meta=meta)))
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

    async def _on_register(self, sid: str, *arguments: Any) -> dict[str, Any] | None:
        if len(arguments) != 1:
            await self._malformed(sid, f"REGISTER with {len(arguments)} arguments (it takes one)")
            return None
        data = arguments[0]
        if isinstance(data, dict):
            return await self._register(sid, data.get("code"), data.get("lastEventId"))
        return await self._register(sid, data, None)

    async def _on_received(self, sid: str, *arguments: Any) -> None:
        """A page confirms an event it was asked to confirm (``meta.receipt``)."""
        if len(arguments) != 1:
            await self._malformed(sid, f"RECEIVED with {len(arguments)} arguments (it takes one)")
            return
        data = arguments[0]
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            self.hub.receipts.acknowledge(data["id"], sid)

    async def _malformed(self, sid: str, problem: str) -> None:
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        if eio_sid is not None:
            await self.sio.close_malformed(eio_sid, problem)

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

    async def close_all(self, message: str, code: int) -> None:
        """Tell every page why (``ERROR``), then disconnect it so it resumes (cluster mode)."""
        await self.sio.emit("ERROR", {"message": message, "code": code})
        for socket in list(self.sio.eio.sockets.values()):
            await socket.close(wait=False, reason=self.sio.eio.reason.SERVER_DISCONNECT)

    async def _on_shutdown(self, _app: web.Application) -> None:
        """Close every connection at once so pages reconnect to the next process.

        engine.io's close waits for each socket's send queue to drain, which
        never happens for a socket whose client vanished a moment earlier, and
        then waits for the client to hang up: both waits are cut short so
        shutdown stays within its promised two seconds.
        """
        # Not eio.disconnect(): it waits, unbounded, for each socket's writer to
        # flush the CLOSE packet, and a page that closed a moment earlier has no
        # writer left. A WebSocket gets engine.io CLOSE and a close frame saying
        # why, written at once; a polling socket gets CLOSE queued for its next poll.
        eio = self.sio.eio
        for socket in list(eio.sockets.values()):
            if isinstance(socket, DirectSocket):
                socket.end(WSCloseCode.GOING_AWAY, "server shutting down")
            await socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
        eio.sockets = {}
        await self.sio.shutdown()


def _channel_request(data: Any, field: str) -> tuple[Any, Any]:
    """``"name"`` or ``{field: "name", "secret": ...}`` -> (channel, secret)."""
    if isinstance(data, dict):
        return data.get(field, data.get("channel")), data.get("secret")
    return data, None
