"""The alert queue of one code: which overlay plays which alert, and when.

Events reach overlays through the transports; this only decides when each
overlay plays what it was delivered. Each overlay (browser source) has its
own line: alerts it is meant for wait there in order and it plays one at a
time, asking for the next when it is idle. An alert counts as shown once the
overlay reports it ``started``: a reload after that never shows it again, and
one released but not started is released again, so nothing is shown twice or
skipped. The line releases the next alert on ``finished``, or when the lease
runs out (the overlay vanished), and holds everything while the code is
paused or the overlay is hidden (``hidden=hold``). Pause, skip, clear and
replay act on every line of the code.

Everything here is plain data and synchronous: the stores (queue_store.py)
load a :class:`CodeQueue`, run one operation on it and save it, in memory
with SQLite behind it or in Redis for several nodes. Held event data is kept
as its JSON text, so the bytes it costs are the bytes counted. Nothing here
does I/O, delivers an event or knows a socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .. import jsoncodec

HIDDEN_POLICIES = ("hold", "play", "drop")
RELEASE_TIMEOUT = 10.0   # seconds an overlay has to start a released alert
FINISH_GRACE = 10.0      # seconds past an alert's duration before it counts as finished
MAX_WAIT_SECONDS = 1800  # an alert waiting longer (overlay closed, or hidden) expires
MAX_LINES = 16           # overlays per code; the longest disconnected one goes first
FORGET_LINE_SECONDS = 24 * 3600
MAX_WAITING = 50         # alerts waiting on one overlay; more are refused ("full")
MAX_ACTIVE = 120         # alerts held as waiting or playing across the code's overlays
RECENT = 30              # finished alerts kept for the console's tail and for replay
KNOWN = 200              # ids each line remembers having accounted for
MAX_HELD_DATA = 16 * 1024  # bytes of event data held per alert (larger: played, not held)

# Outcomes per overlay, once an alert is done with on it.
PLAYED, INTERRUPTED, SKIPPED, BUSY, REPLACED, HIDDEN, CLEARED, FULL, EXPIRED = (
    "played", "interrupted", "skipped", "busy", "replaced", "hidden", "cleared", "full",
    "expired")
REPORTED_ENDINGS = {"played": PLAYED, "interrupted": INTERRUPTED, "skipped": SKIPPED}


@dataclass
class Held:
    """An alert the queue holds: the event as published, and what became of it per overlay."""

    id: str
    name: str
    data_json: str | None  # None: too large to hold (overlays play their delivered copy)
    time: float
    outcomes: dict[str, str] = field(default_factory=dict)
    replayed: bool = False  # queued again by the operator: released at once (no settle)

    def public(self, with_data: bool = True) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": self.id, "event": self.name, "time": self.time}
        if with_data:
            answer["data"] = None if self.data_json is None else jsoncodec.loads(self.data_json)
        return answer

    def shown(self) -> dict[str, Any]:
        """For the console: the alert and what became of it on each overlay so far."""
        return {**self.public(), "outcomes": dict(self.outcomes)}


@dataclass
class Line:
    """One overlay: its identity, what it takes, where it is, and its own order of alerts."""

    overlay: str
    events: list[str] | None = None     # None: every event name
    hidden: str = "hold"
    named: bool = False                 # identity from the URL (?overlay=), never adopted
    created: float = 0.0
    seen: float = 0.0
    connected: bool = False
    sid: str | None = None
    node: str | None = None
    presence: dict[str, Any] = field(default_factory=dict)
    playing: str | None = None
    started: float | None = None        # when the playing alert started (None: released only)
    lease: float = 0.0
    waiting: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    horizon: float = 0.0                # events before this are never taken late

    def wants(self, name: str) -> bool:
        """``events=`` names are upper case, as triggers make them; /broadcast names may not be."""
        return self.events is None or name.upper() in self.events

    @property
    def visible(self) -> bool:
        return self.presence.get("visible", True) is not False

    def remember(self, alert_id: str, time: float) -> None:
        self.known.append(alert_id)
        if len(self.known) > KNOWN:
            del self.known[: len(self.known) - KNOWN]
            self.horizon = max(self.horizon, time)

    def position(self, alert_id: str) -> int | None:
        """How many alerts play on this overlay before ``alert_id`` (0: it plays now)."""
        if self.playing == alert_id:
            return 0
        if alert_id not in self.waiting:
            return None
        return self.waiting.index(alert_id) + (1 if self.playing else 0)


@dataclass(frozen=True)
class Connection:
    """What an overlay says about itself when it connects (and with every report)."""

    overlay: str
    sid: str
    node: str | None = None
    events: list[str] | None = None
    hidden: str = "hold"
    named: bool = False
    presence: dict[str, Any] = field(default_factory=dict)


@dataclass
class CodeQueue:
    """Every line of one code, the alerts they hold, and the code's pause and modes."""

    paused: bool = False
    modes: dict[str, str] = field(default_factory=dict)
    lines: dict[str, Line] = field(default_factory=dict)
    alerts: dict[str, Held] = field(default_factory=dict)  # oldest first

    # -- publishing side ---------------------------------------------------
    def enqueue(self, alert_id: str, name: str, data: Any, time: float, now: float,
                only: Line | None = None) -> int | None:
        """Put a published alert in the line of every overlay meant for it.

        Returns how many alerts play before it on the overlay where it waits
        longest (0: it plays at once), or None when no overlay takes it.
        Called again with the same id it changes nothing and answers the same.
        """
        self.expire(now)
        held = self.alerts.get(alert_id)
        if held is None:
            held = self.alerts[alert_id] = Held(alert_id, name, _held_data(data), time)
        for line in ([only] if only is not None else self._lines_by_age()):
            if line.wants(name) and alert_id not in line.known:
                self._take(line, held)
        self._prune()
        return self.position(alert_id)

    def position(self, alert_id: str) -> int | None:
        positions = [p for p in (line.position(alert_id) for line in self.lines.values())
                     if p is not None]
        return max(positions) if positions else None

    def _take(self, line: Line, held: Held) -> None:
        """Apply the event's mode to one overlay's line."""
        line.remember(held.id, held.time)
        mode = self.modes.get(held.name) or self.modes.get(held.name.upper()) \
            or self.modes.get("*", "queue")
        busy = line.playing is not None or bool(line.waiting)
        if line.hidden == "drop" and not line.visible:
            self._finish(line, held.id, HIDDEN)
        elif mode == "skip_if_busy" and busy:
            self._finish(line, held.id, BUSY)
        elif len(line.waiting) >= MAX_WAITING or self._active() >= MAX_ACTIVE:
            self._finish(line, held.id, FULL)
        elif mode == "replace_same" and self._replace(line, held):
            pass
        elif mode == "interrupt":
            if line.playing is not None:  # the overlay stops it when the event reaches it
                self._finish(line, line.playing, INTERRUPTED)
                line.playing, line.started = None, None
            line.waiting.insert(0, held.id)
        else:
            self._wait_in_order(line, held)

    def _wait_in_order(self, line: Line, held: Held) -> None:
        """Join the line after the alerts published before it.

        On several nodes two publishes' queue writes may land in either order
        (each is its own Redis transaction); the line still plays them in the
        order they were published. A burst arrives in order, so this looks at
        the line's end only.
        """
        index = len(line.waiting)
        while index > 0 and self.alerts[line.waiting[index - 1]].time > held.time:
            index -= 1
        line.waiting.insert(index, held.id)

    def _replace(self, line: Line, held: Held) -> bool:
        for index, waiting_id in enumerate(line.waiting):
            if self.alerts[waiting_id].name == held.name:
                line.waiting[index] = held.id
                self._finish(line, waiting_id, REPLACED)
                return True
        return False

    # -- overlay side --------------------------------------------------------
    def connect(self, connection: Connection, now: float) -> Line | None:
        """Attach an overlay (new, returning, or reloaded); None if the code has no room."""
        line = self.lines.get(connection.overlay)
        if line is None and not connection.named:
            line = self._adopt(connection)
        if line is None:
            if len(self.lines) >= MAX_LINES and not self._forget_one():
                return None
            line = self.lines[connection.overlay] = Line(connection.overlay, created=now,
                                                         horizon=now)
        if line.sid != connection.sid:
            self._lost(line)  # the overlay reloaded: what it was showing counts as shown
        line.sid, line.node, line.connected, line.seen = (connection.sid, connection.node,
                                                           True, now)
        line.events, line.hidden, line.named = (connection.events, connection.hidden,
                                                connection.named)
        line.presence = dict(connection.presence)
        return line

    def disconnect(self, overlay: str, sid: str, now: float) -> None:
        line = self.lines.get(overlay)
        if line is not None and line.sid == sid:
            line.connected, line.seen = False, now
            self._lost(line)

    def next(self, line: Line, have: Iterable[dict[str, Any]], now: float,
             history: dict[str, Any] | None = None, settle: float = 0.0) -> dict[str, Any]:
        """The overlay is idle: what it plays next, or why it waits.

        ``have`` lists the alerts the overlay was delivered and has not played;
        any the queue never heard of (it was published on another node a moment
        ago, or the queue's write failed) join the line now. The answer's
        ``play`` carries the event's data only when the overlay lacks it (after a
        server restart, a replay, or history that no longer reaches back).

        ``settle`` (several nodes): an alert younger than this that the overlay
        was not delivered yet is not released; the answer says when to ask
        again (``retry``, seconds). The overlay gets events in publish order, so
        by the time it has that alert it also has every earlier one, and those
        join the line first: alerts published on different nodes at the same
        moment still play in publish order.
        """
        self.expire(now)
        have_ids = set()
        for item in have:
            alert_id, name, time = item.get("id"), item.get("name"), item.get("time")
            if not (isinstance(alert_id, str) and isinstance(name, str)
                    and isinstance(time, (int, float))):
                continue
            have_ids.add(alert_id)
            if alert_id not in line.known and time >= line.horizon and line.wants(name):
                data = (history or {}).get(alert_id)
                self.enqueue(alert_id, name, data, float(time), now, only=line)
        if line.playing is not None:
            if line.started is None:
                return self._release(line, line.playing, have_ids, now)
            self._finish(line, line.playing, PLAYED)  # idle while we thought it played
            line.playing = None
        done = sorted(have_ids - set(line.waiting) - {line.playing})
        answer: dict[str, Any] = {"paused": self.paused, "done": done}
        if self.paused:
            return answer
        if line.hidden == "hold" and not line.visible:
            return {**answer, "held": len(line.waiting)}
        if not line.waiting:
            return answer
        first = line.waiting[0]
        young = settle - (now - self.alerts[first].time)
        if young > 0 and first not in have_ids and not self.alerts[first].replayed:
            return {**answer, "retry": round(young, 3)}
        return {**self._release(line, line.waiting.pop(0), have_ids, now), "done": done}

    def _release(self, line: Line, alert_id: str, have_ids: set[str], now: float
                 ) -> dict[str, Any]:
        held = self.alerts[alert_id]
        line.playing, line.started, line.lease = alert_id, None, now + RELEASE_TIMEOUT
        play = held.public(with_data=alert_id not in have_ids)
        return {"paused": self.paused, "play": play}

    def started_playing(self, line: Line, alert_id: str, duration: float, now: float) -> bool:
        if line.playing != alert_id:
            return False
        line.started = now
        line.lease = now + max(0.0, min(duration, 600.0)) + FINISH_GRACE
        return True

    def finished(self, line: Line, alert_id: str, reason: str) -> None:
        if line.playing == alert_id:
            self._finish(line, alert_id, REPORTED_ENDINGS.get(reason, PLAYED))
            line.playing, line.started = None, None

    def hide_all_waiting(self, line: Line) -> None:
        """``hidden=drop``: alerts waiting when the overlay is hidden are dropped."""
        if line.hidden == "drop" and not line.visible:
            for alert_id in line.waiting:
                self._finish(line, alert_id, HIDDEN)
            line.waiting = []

    # -- the operator ------------------------------------------------------
    def skip(self, alert_id: str | None) -> list[str]:
        """Skip what plays (everywhere, or only ``alert_id``) or remove ``alert_id`` from lines."""
        skipped = []
        for line in self.lines.values():
            if line.playing is not None and alert_id in (None, line.playing):
                skipped.append(line.playing)
                self._finish(line, line.playing, SKIPPED)
                line.playing, line.started = None, None
            if alert_id is not None and alert_id in line.waiting:
                line.waiting.remove(alert_id)
                self._finish(line, alert_id, SKIPPED)
                skipped.append(alert_id)
        return sorted(set(skipped))

    def clear(self) -> int:
        cleared = 0
        for line in self.lines.values():
            for alert_id in line.waiting:
                self._finish(line, alert_id, CLEARED)
            cleared += len(line.waiting)
            line.waiting = []
        return cleared

    def replay(self, alert_id: str, found: Held | None) -> int | None:
        """Queue a held alert again on every overlay meant for it, whatever its mode."""
        held = self.alerts.get(alert_id) or found
        if held is None:
            raise LookupError(alert_id)
        self.alerts.pop(alert_id, None)
        self.alerts[alert_id] = held  # now the newest
        held.replayed = True
        for line in self._lines_by_age():
            if line.wants(held.name) and line.playing != alert_id \
                    and alert_id not in line.waiting and len(line.waiting) < MAX_WAITING:
                line.remember(alert_id, held.time)
                held.outcomes.pop(line.overlay, None)
                line.waiting.append(alert_id)
        return self.position(alert_id)

    # -- time ------------------------------------------------------------------
    def expire(self, now: float) -> None:
        """Leases that ran out, alerts that waited too long, overlays long gone."""
        for line in self.lines.values():
            if line.playing is not None and line.lease < now:
                if line.started is None:
                    line.waiting.insert(0, line.playing)  # released, never started: again
                else:
                    self._finish(line, line.playing, PLAYED)
                line.playing, line.started = None, None
            while line.waiting and now - self.alerts[line.waiting[0]].time > MAX_WAIT_SECONDS:
                self._finish(line, line.waiting.pop(0), EXPIRED)
        for overlay, line in list(self.lines.items()):
            if not line.connected and now - line.seen > FORGET_LINE_SECONDS:
                self._drop_line(overlay)

    # -- answers -----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """``GET /codes/{code}/queue``: what plays, what waits, what happened lately."""
        playing, waiting_on = [], {}
        for line in self.lines.values():
            if line.playing is not None:
                playing.append({**self.alerts[line.playing].shown(), "overlay": line.overlay,
                                "started": line.started})
            for position, alert_id in enumerate(line.waiting):
                waiting_on.setdefault(alert_id, {})[line.overlay] = position
        waiting = [{**self.alerts[alert_id].shown(), "overlays": sorted(lines)}
                   for alert_id, lines in waiting_on.items()]
        waiting.sort(key=lambda item: max(waiting_on[item["id"]].values()))
        in_use = self._in_use()
        recent = [held.shown() for held in self.alerts.values() if held.id not in in_use]
        return {"paused": self.paused, "playing": playing, "waiting": waiting,
                "recent": recent[::-1]}

    def overlays(self) -> list[dict[str, Any]]:
        """``GET /codes/{code}/status``: every overlay, its presence and its line."""
        return [{"overlay": line.overlay, "connected": line.connected,
                 "visible": line.visible, "active": line.presence.get("active"),
                 "streaming": line.presence.get("streaming"),
                 "obs": line.presence.get("obs"), "client": line.presence.get("client"),
                 "events": line.events, "hidden": line.hidden, "node": line.node,
                 "seen": line.seen, "playing": line.playing, "waiting": len(line.waiting)}
                for line in self._lines_by_age()]

    # -- bookkeeping -------------------------------------------------------------
    def _finish(self, line: Line, alert_id: str, outcome: str) -> None:
        held = self.alerts.get(alert_id)
        if held is not None:
            held.outcomes[line.overlay] = outcome

    def _lost(self, line: Line) -> None:
        if line.playing is None:
            return
        if line.started is None:
            line.waiting.insert(0, line.playing)
        else:
            self._finish(line, line.playing, PLAYED)
        line.playing, line.started = None, None

    def _adopt(self, connection: Connection) -> Line | None:
        """A source that lost its identity (OBS restarted it) takes over its old line."""
        for overlay, line in self._by_seen():
            if not line.connected and not line.named and line.events == connection.events \
                    and line.hidden == connection.hidden:
                del self.lines[overlay]
                line.overlay = connection.overlay
                for alert_id in line.waiting:
                    held = self.alerts[alert_id]
                    held.outcomes.pop(overlay, None)
                self.lines[connection.overlay] = line
                return line
        return None

    def _forget_one(self) -> bool:
        for overlay, line in reversed(self._by_seen()):
            if not line.connected:
                self._drop_line(overlay)
                return True
        return False

    def _drop_line(self, overlay: str) -> None:
        line = self.lines.pop(overlay)
        for alert_id in line.waiting + ([line.playing] if line.playing else []):
            self._finish(line, alert_id, EXPIRED)

    def _by_seen(self) -> list[tuple[str, Line]]:
        return sorted(self.lines.items(), key=lambda item: -item[1].seen)

    def _lines_by_age(self) -> list[Line]:
        return sorted(self.lines.values(), key=lambda line: (line.created, line.overlay))

    def _in_use(self) -> set[str]:
        """Ids some overlay still plays or waits to play."""
        ids = set()
        for line in self.lines.values():
            ids.update(line.waiting)
            if line.playing is not None:
                ids.add(line.playing)
        return ids

    def _active(self) -> int:
        return len(self._in_use())

    def _prune(self) -> None:
        in_use = self._in_use()
        finished = [alert_id for alert_id in self.alerts if alert_id not in in_use]
        for alert_id in finished[: max(0, len(finished) - RECENT)]:
            del self.alerts[alert_id]

    # -- stored form -----------------------------------------------------------------
    def to_json(self) -> str:
        return jsoncodec.dumps({
            "paused": self.paused, "modes": self.modes,
            "lines": [vars(line) for line in self.lines.values()],
            "alerts": [vars(held) for held in self.alerts.values()],
        })

    @classmethod
    def from_json(cls, text: str | bytes) -> "CodeQueue":
        stored = jsoncodec.loads(text)
        queue = cls(paused=stored["paused"], modes=stored["modes"])
        for values in stored["lines"]:
            line = Line(**values)
            queue.lines[line.overlay] = line
        for values in stored["alerts"]:
            held = Held(**values)
            queue.alerts[held.id] = held
        return queue

    def after_restart(self, now: float) -> None:
        """Loaded after a restart: no overlay is connected until it says so again."""
        for line in self.lines.values():
            if line.connected:
                line.connected, line.seen = False, now
                self._lost(line)


def _held_data(data: Any) -> str | None:
    text = jsoncodec.dumps(data)
    return text if len(text.encode()) <= MAX_HELD_DATA else None
