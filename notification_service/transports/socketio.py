"""socket.io transport: pages and OBS sources listening on channels (rooms).

A page registers a listening code (a channel) by ``?code=`` on the connection
URL, by the handshake ``auth: {code}``, or by the original handshake: the
server emits ``WELCOME`` and the page emits ``REGISTER {"code": ...}``.
Fan-out is one ``emit`` to the room: the packet is encoded once, and nothing
here loops over all connections or logs per recipient.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as engineio_aiohttp

from .. import jsoncodec
from ..access import ChannelAccess, Identity
from ..errors import INVALID_CODE, ApiError, ErrorKind
from ..events import INVALID_CHANNEL, Event, validate_channel, validate_code
from ..hub import Hub, mask

log = logging.getLogger(__name__)

TOO_MANY_CHANNELS = ErrorKind(422, 42245)  # only ever in an acknowledgement
NAMESPACE = "/"
WELCOME_MESSAGE = "Connected to Browser Notification Service. Emit REGISTER {\"code\": ...} to listen."


class UncompressedWebSocket(engineio_aiohttp.WebSocket):
    """engine.io's aiohttp WebSocket with permessage-deflate turned off.

    aiohttp compresses by default and python-engineio offers no switch. Every
    browser negotiates deflate, which keeps a zlib state per connection (about
    100 KB each) and costs ~19% more CPU per broadcast, for alerts of a few
    hundred bytes that gain nothing from it (see shared/FACTS.md).
    """

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(request)
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
        self.sio.eio._async = {**self.sio.eio._async, "websocket": UncompressedWebSocket}
        self._codes: dict[str, str] = {}
        self._channels: dict[str, set[str]] = {}  # sid -> channels joined by subscribe/join
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
        count = self.listener_count(event.channel)
        if count:
            # Always a 1-tuple: python-socketio sends data=None as *no argument*
            # (the page's handler would get undefined instead of null).
            await self.sio.emit(event.name, (event.data,), to=event.channel, namespace=NAMESPACE)
        return count

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
        self._channels.pop(sid, None)

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
        """The JWT identity this connection proved at connect, if any (JWT auth fills this)."""
        return None

    async def _on_subscribe(self, sid: str, data: Any = None, *_extra: Any) -> dict[str, Any]:
        """``subscribe`` with ``"channel"`` or ``{"channel", "secret"}``."""
        return await self._listen(sid, "subscribe", data, "channel")

    async def _on_join(self, sid: str, data: Any = None, *_extra: Any) -> dict[str, Any]:
        """ws-emit's ``join`` with ``{"room", "secret"}`` (refusals are answered, not ignored)."""
        return await self._listen(sid, "join", data, "room")

    async def _on_unsubscribe(self, sid: str, data: Any = None, *_extra: Any) -> dict[str, Any]:
        return await self._stop_listening(sid, "unsubscribe", data, "channel")

    async def _on_leave(self, sid: str, data: Any = None, *_extra: Any) -> dict[str, Any]:
        return await self._stop_listening(sid, "leave", data, "room")

    async def _listen(self, sid: str, verb: str, data: Any, field: str) -> dict[str, Any]:
        channel, secret = _channel_request(data, field)
        try:
            channel = self._checked_channel(verb, channel, field)
            if secret is not None and not isinstance(secret, str):
                raise INVALID_CHANNEL(f'"secret" is a string (got {type(secret).__name__}).')
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
        await self.sio.enter_room(sid, channel)
        joined.add(channel)
        log.debug("connection %s %s %s", sid, verb, mask(channel))
        return {"ok": True, "channel": channel}

    async def _stop_listening(self, sid: str, verb: str, data: Any, field: str) -> dict[str, Any]:
        channel, _secret = _channel_request(data, field)
        try:
            channel = self._checked_channel(verb, channel, field)
        except ApiError as error:
            return await self._refuse(sid, verb, channel, error)
        await self.sio.leave_room(sid, channel)
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
        log.info("refused %s of %s by %s: %s", verb, shown, self._peer(sid), error.message)
        answer = {"ok": False, "error": error.message, "code": error.code}
        if isinstance(channel, str):
            answer["channel"] = channel
        await self.sio.emit("ERROR", {"message": error.message, "code": error.code}, to=sid)
        return answer

    def _peer(self, sid: str) -> str:
        environ = self.sio.get_environ(sid) or {}
        request = environ.get("aiohttp.request")
        return str(request.remote) if request is not None else "?"

    async def _on_shutdown(self, _app: web.Application) -> None:
        """Close every connection at once so pages reconnect to the next process."""
        # Not eio.disconnect(): it waits, unbounded, for each socket's writer to
        # flush the CLOSE packet, and a page that closed a moment earlier has no
        # writer left, so shutdown hung forever. Queue CLOSE without waiting; the
        # writers flush it while the runner closes the connections.
        eio = self.sio.eio
        for socket in list(eio.sockets.values()):
            await socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
        eio.sockets = {}
        await self.sio.shutdown()


def _channel_request(data: Any, field: str) -> tuple[Any, Any]:
    """``"name"`` or ``{field: "name", "secret": ...}`` -> (channel, secret)."""
    if isinstance(data, dict):
        return data.get(field, data.get("channel")), data.get("secret")
    return data, None
