"""Overlays talking to their alert queue: the socket.io namespace ``/alerts``, and the Hub observer.

An overlay page keeps two sockets on one engine.io connection: the default
namespace, where the socket.io transport delivers its code's events, and
``/alerts``, where it tells the queue who it is (``auth``: code, overlay
identity, ``events`` filter, ``hidden`` policy, presence) and reports each
alert (``ALERT`` with ``op`` ``next`` / ``started`` / ``finished`` /
``presence``, answered in the acknowledgement). The queue's answer says what
to play next; an event the overlay was not delivered (after a restart, a
replay) comes with that answer, held by the queue. Control notices that every
overlay of a code must hear (skip, pause, new designs) are published through
the Hub as ``ALERT_QUEUE`` / ``ALERT_DESIGNS`` events by routes.py, so they
reach overlays on every node the one way events do.

:class:`QueueObserver` puts each published alert in the lines of the code's
overlays and adds ``queued_position`` to the publish answer. Nothing here
loops over every connection, and nothing logs per event.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Callable

import socketio

from ..errors import INVALID_FIELD, ApiError
from ..events import CODE_PATTERN, Event, validate_code, validate_event_name
from ..hub import DeliveryReport, Hub, mask
from .design_store import DesignLibrary
from .queue import HIDDEN_POLICIES, CodeQueue, Connection, Line
from .queue_store import NO_QUEUE, QueueStore

log = logging.getLogger(__name__)

NAMESPACE = "/alerts"
# Events the alert box and the transports send for themselves: never alerts.
INTERNAL_EVENTS = frozenset({"WELCOME", "ERROR", "RESUME_GAP", "ALERT_QUEUE", "ALERT_DESIGNS"})
OVERLAY_ID = re.compile(r"[A-Za-z0-9_.~-]{1,64}")
MAX_FILTER = 50
MAX_HAVE = 100
PRESENCE_TEXT = 64


def is_alert(event: Event) -> bool:
    return event.name not in INTERNAL_EVENTS and CODE_PATTERN.fullmatch(event.channel) is not None


class QueueObserver:
    """Every alert published on a code that has overlays joins their lines.

    A code's alerts join one after another, in the order this node's
    publishes reached here (bus order): in Redis each write is its own
    transaction, and two racing writes could otherwise land swapped, letting
    an overlay asking in between be released the later alert first.
    """

    def __init__(self, queues: Callable[[], QueueStore], clock: Callable[[], float] = time.time
                 ) -> None:
        self.queues = queues
        self.clock = clock
        self._turns: dict[str, _Turn] = {}  # codes being written, one writer at a time

    def wants(self, event: Event) -> bool:
        """Alerts on a code with a queue; most publishes: no overlay ever opened one."""
        return self.queues().may_have_queue(event.channel) and is_alert(event)

    async def observe(self, event: Event, report: DeliveryReport) -> None:
        turn = self._turns.get(event.channel)
        if turn is None:
            turn = self._turns[event.channel] = _Turn()
        turn.users += 1
        try:
            async with turn.lock:
                position = await self.queues().update(
                    event.channel, lambda queue: queue.enqueue(event.id, event.name, event.data,
                                                               event.time, self.clock()))
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._turns[event.channel]  # the dict holds busy codes only
        if position is not NO_QUEUE:
            report.extra["queued_position"] = position


class _Turn:
    """One code's writers in line (``users``: holding or waiting for ``lock``)."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class OverlayChannel:
    """The ``/alerts`` namespace on the socket.io server.

    :param queues: the queue store (set when the app starts, hence a callable).
    :param designs: the design library, for the modes of a code's first queue.
    :param node: this node's name, shown in presence.
    """

    def __init__(self, sio: socketio.AsyncServer, hub: Hub, queues: Callable[[], QueueStore],
                 designs: Callable[[], DesignLibrary], node: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.sio = sio
        self.hub = hub
        self.queues = queues
        self.designs = designs
        self.node = node
        self.clock = clock
        self._connections: dict[str, tuple[str, Connection]] = {}  # sid -> (code, connection)
        sio.on("connect", self._on_connect, namespace=NAMESPACE)
        sio.on("disconnect", self._on_disconnect, namespace=NAMESPACE)
        sio.on("ALERT", self._on_alert, namespace=NAMESPACE)

    async def _on_connect(self, sid: str, _environ: dict[str, Any], auth: Any) -> None:
        try:
            code, connection = self._connection(sid, auth)
            modes = await self.designs().modes(code)
            now = self.clock()
            line = await self.queues().update(code, lambda queue: _public(queue.connect(
                connection, now)), new=lambda: CodeQueue(modes=modes))
        except ApiError as error:
            await self._refuse(sid, error.message, error.code)
            return
        except Exception:  # a store failing: the page retries; it must not wait forever
            log.exception("overlay %s could not join the queue of %s", sid, mask(code_of(auth)))
            await self._refuse(sid, "The alert queue failed; the overlay tries again.", None)
            return
        if line is None:
            await self._refuse(sid, "This code already has 16 overlays connected; close one.",
                               None)
            return
        if not self.sio.manager.is_connected(sid, NAMESPACE):  # left while we waited
            await self.queues().update(code, lambda queue: queue.disconnect(
                connection.overlay, sid, self.clock()))
            return
        self._connections[sid] = (code, connection)
        # Reports are taken from now on: the page starts asking when this arrives.
        await self.sio.emit("ALERT_READY", {"overlay": connection.overlay}, to=sid,
                            namespace=NAMESPACE)
        log.debug("overlay %s connected on %s", connection.overlay, mask(code))

    async def _on_disconnect(self, sid: str, *_reason: Any) -> None:
        found = self._connections.pop(sid, None)
        if found is None:
            return
        code, connection = found
        try:
            await self.queues().update(code, lambda queue: queue.disconnect(
                connection.overlay, sid, self.clock()))
        except ApiError as error:
            log.warning("overlay %s left %s unrecorded: %s", connection.overlay, mask(code),
                        error.message)

    async def _on_alert(self, sid: str, request: Any = None, *_extra: Any) -> dict[str, Any]:
        found = self._connections.get(sid)
        if found is None:
            return {"ok": False, "error": "Connect to /alerts with auth {code, overlay} first."}
        if not isinstance(request, dict):
            return {"ok": False, "error": 'ALERT takes {"op": "next" | "started" | "finished" '
                                          '| "presence", ...}.'}
        code, connection = found
        op = request.get("op")
        if isinstance(request.get("presence"), dict):
            connection = Connection(**{**vars(connection),
                                       "presence": _presence(request["presence"])})
            self._connections[sid] = (code, connection)
        alert_id = request.get("id") if isinstance(request.get("id"), str) else None
        have = [item for item in request.get("have", [])[:MAX_HAVE] if isinstance(item, dict)] \
            if isinstance(request.get("have"), list) else []
        history = self._held_by_history(code, have)
        duration = request.get("duration")
        duration = float(duration) if isinstance(duration, (int, float)) \
            and not isinstance(duration, bool) else 5.0
        reason = request.get("reason") if isinstance(request.get("reason"), str) else "played"
        now = self.clock()
        settle = self.queues().settle

        def change(queue: CodeQueue) -> dict[str, Any]:
            line = queue.lines.get(connection.overlay)
            if line is not None and line.sid != sid and line.connected:
                return {"ok": False, "replaced": True,
                        "error": "Another page took over this overlay's identity."}
            if line is None or line.sid != sid:
                line = queue.connect(connection, now)  # the queue forgot us (or expired): again
                if line is None:
                    return {"ok": False, "error": "This code has no room for another overlay."}
            line.presence, line.seen = dict(connection.presence), now
            if op == "started" and alert_id is not None:
                return {"ok": queue.started_playing(line, alert_id, duration, now),
                        "paused": queue.paused}
            if op == "presence":
                queue.hide_all_waiting(line)
                return {"ok": True, "paused": queue.paused}
            if op == "finished" and alert_id is not None:
                queue.finished(line, alert_id, reason)
            elif op not in ("next", "finished"):
                return {"ok": False, "error": f"Unknown op {op!r}: use next, started, finished "
                                              f"or presence."}
            return {"ok": True, **queue.next(line, have, now, history, settle)}

        try:
            answer = await self.queues().update(code, change)
            if answer is NO_QUEUE:  # the queue was forgotten (bounds, expiry): start it again
                modes = await self.designs().modes(code)
                answer = await self.queues().update(code, change,
                                                    new=lambda: CodeQueue(modes=modes))
            return answer
        except ApiError as error:
            return {"ok": False, "error": error.message, "code": error.code}

    def _held_by_history(self, code: str, have: list[dict[str, Any]]) -> dict[str, Any]:
        """Data of the events the overlay has, as history keeps them (for the queue to hold)."""
        if not have:
            return {}
        wanted = {item.get("id") for item in have}
        return {event.id: event.data for event in self.hub.history.recent(code)
                if event.id in wanted}

    def _connection(self, sid: str, auth: Any) -> tuple[str, Connection]:
        options = auth if isinstance(auth, dict) else {}
        code = options.get("code")
        if not isinstance(code, str):
            raise _bad('Connect with auth {"code": "<your code>", "overlay": "<identity>"}.')
        validate_code(code)
        overlay = options.get("overlay")
        if not isinstance(overlay, str) or OVERLAY_ID.fullmatch(overlay) is None:
            raise _bad("auth.overlay is 1 to 64 characters from A-Z a-z 0-9 _ . ~ -.")
        events = options.get("events")
        if events is not None:
            if not isinstance(events, list) or len(events) > MAX_FILTER \
                    or not all(isinstance(name, str) for name in events):
                raise _bad(f"auth.events is a list of at most {MAX_FILTER} event names.")
            events = sorted({validate_event_name(name).upper() for name in events}) or None
        hidden = options.get("hidden", "hold")
        if hidden not in HIDDEN_POLICIES:
            raise _bad(f"auth.hidden is one of {', '.join(HIDDEN_POLICIES)}.")
        presence = _presence(options.get("presence"))
        return code, Connection(overlay, sid, self.node, events, hidden,
                                bool(options.get("named")), presence)

    async def _refuse(self, sid: str, message: str, code: int | None) -> None:
        await self.sio.emit("ERROR", {"message": message, "code": code}, to=sid,
                            namespace=NAMESPACE)
        await self.sio.disconnect(sid, namespace=NAMESPACE)


def code_of(auth: Any) -> str:
    code = auth.get("code") if isinstance(auth, dict) else None
    return code if isinstance(code, str) else "?"


def _presence(raw: Any) -> dict[str, Any]:
    """What an overlay may say about itself: booleans and short version strings only."""
    presence: dict[str, Any] = {}
    if not isinstance(raw, dict):
        return presence
    for key in ("visible", "active", "streaming", "obs_page"):
        if isinstance(raw.get(key), bool):
            presence[key] = raw[key]
    for key in ("obs", "client"):
        if isinstance(raw.get(key), str):
            presence[key] = raw[key][:PRESENCE_TEXT]
    return presence


def _public(line: Line | None) -> str | None:
    return None if line is None else line.overlay


def _bad(message: str) -> ApiError:
    return INVALID_FIELD(message)
