"""Alert box test helpers: an overlay client, and the HTTP calls bots and the console make.

:class:`Overlay` is a real python-socketio client that behaves like
sources/alert.html towards its alert queue: it listens on the code (the
default namespace, where the transport delivers events) and talks to the
queue on ``/alerts`` exactly as overlay.js does (``next``, ``started``,
``finished`` and ``presence`` reports, answered in the acknowledgement).
Tests drive it step by step to assert what the queue decides.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

import socketio

from notification_service.alerts.console import CONSOLE_KEY

from .support import WAIT

NAMESPACE = "/alerts"


@dataclass
class Overlay:
    client: socketio.AsyncClient
    code: str
    overlay: str
    delivered: dict[str, tuple[str, Any, float]] = field(default_factory=dict)  # id -> event
    notices: list[tuple[str, Any]] = field(default_factory=list)
    presence: dict[str, Any] = field(default_factory=lambda: {"visible": True, "active": True})
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[Any] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    on_arrival: list[Callable[[str, Any], None]] = field(default_factory=list)

    async def _on_event(self, name: str, data: Any = None, meta: Any = None) -> None:
        if name in ("ALERT_QUEUE", "ALERT_DESIGNS"):
            self.notices.append((name, data))
        elif isinstance(meta, dict) and meta.get("channel") == self.code:
            self.delivered[meta["id"]] = (name, data, meta["time"])
        self._arrived.set()
        for arrived in self.on_arrival:
            arrived(name, data)

    def have(self, *ids: str) -> list[dict[str, Any]]:
        """What overlay.js sends as ``have``: delivered alerts it has not played."""
        chosen = ids or tuple(self.delivered)
        return [{"id": i, "name": self.delivered[i][0], "time": self.delivered[i][2]}
                for i in chosen if i in self.delivered]

    async def wait_delivered(self, alert_id: str) -> None:
        async def until() -> None:
            while alert_id not in self.delivered:
                self._arrived.clear()
                await self._arrived.wait()
        await asyncio.wait_for(until(), WAIT)

    async def wait_notice(self, count: int) -> list[tuple[str, Any]]:
        async def until() -> list[tuple[str, Any]]:
            while len(self.notices) < count:
                self._arrived.clear()
                await self._arrived.wait()
            return self.notices
        return await asyncio.wait_for(until(), WAIT)

    async def report(self, op: str, **fields: Any) -> dict[str, Any]:
        request = {"op": op, "presence": self.presence, **fields}
        return await self.client.call("ALERT", request, namespace=NAMESPACE, timeout=WAIT)

    async def next(self, have: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return await self.report("next", have=self.have() if have is None else have)

    async def started(self, alert_id: str, duration: float = 5.0) -> dict[str, Any]:
        return await self.report("started", id=alert_id, duration=duration)

    async def finished(self, alert_id: str, reason: str = "played",
                       have: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return await self.report("finished", id=alert_id, reason=reason,
                                 have=self.have() if have is None else have)

    async def show(self, presence: dict[str, Any]) -> dict[str, Any]:
        self.presence = {**self.presence, **presence}
        return await self.report("presence")

    async def close(self) -> None:
        await self.client.disconnect()


async def open_overlay(url: str, code: str, overlay: str, *, events: list[str] | None = None,
                       hidden: str = "hold", named: bool = False,
                       presence: dict[str, Any] | None = None,
                       last_event_id: str | None = None) -> Overlay:
    """Connect like overlay.js: the code on ``/``, the identity on ``/alerts``; wait until ready."""
    client = socketio.AsyncClient(reconnection=False)
    page = Overlay(client, code, overlay)
    if presence is not None:
        page.presence = presence
    client.on("*", page._on_event)
    client.on("ALERT_READY", lambda _data=None: page.ready.set(), namespace=NAMESPACE)
    client.on("ERROR", lambda data=None: page.errors.append(data), namespace=NAMESPACE)
    auth: dict[str, Any] = {"code": code, "overlay": overlay, "events": events,
                            "hidden": hidden, "named": named, "presence": page.presence}
    if last_event_id is not None:
        auth["lastEventId"] = last_event_id
    await client.connect(url, auth=auth, namespaces=["/", NAMESPACE], transports=["websocket"],
                         wait_timeout=WAIT)
    await asyncio.wait_for(page.ready.wait(), WAIT)
    return page


class Player:
    """An :class:`Overlay` that plays by itself, as overlay.js does.

    It asks for the next alert whenever something arrives while it is idle,
    reports ``started``, "shows" the alert for ``duration`` seconds (ended
    early by a skip notice), reports ``finished`` and plays what that answer
    releases. What it played is kept in order, with when each began and ended
    (``spans``, each added once the queue answered its ``finished``), so a
    test can tell "one at a time, each once".
    """

    def __init__(self, page: Overlay, duration: float, events: list[str] | None = None
                 ) -> None:
        self.page = page
        self.duration = duration
        self.events = events
        self.played: list[str] = []
        self.spans: list[tuple[str, float, float]] = []
        self.playing: str | None = None
        self.paused = False
        self.done: set[str] = set()
        self._poke = asyncio.Event()
        self._skip = asyncio.Event()
        self._changed = asyncio.Event()
        page.on_arrival.append(self._arrived)
        self._task = asyncio.create_task(self._run())
        self._task.add_done_callback(lambda _task: self._changed.set())
        self._poke.set()

    def _arrived(self, name: str, data: Any) -> None:
        if name == "ALERT_QUEUE" and isinstance(data, dict):
            self.paused = bool(data.get("paused"))
            if data.get("action") == "skip" and self.playing is not None \
                    and (not data.get("ids") or self.playing in data["ids"]):
                self._skip.set()
        self._poke.set()
        self._changed.set()

    def _have(self) -> list[dict[str, Any]]:
        return [item for item in self.page.have()
                if item["id"] not in self.done and item["id"] not in self.played
                and (self.events is None or item["name"] in self.events)]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._poke.wait()
            self._poke.clear()
            answer = await self.page.next(have=self._have())
            while True:
                self.done.update(answer.get("done", ()))
                self.paused = bool(answer.get("paused", self.paused))
                play = answer.get("play")
                if not play:
                    if answer.get("retry"):  # as overlay.js: ask again when the queue says
                        loop.call_later(answer["retry"], self._poke.set)
                    break
                alert_id = play["id"]
                self.playing, began = alert_id, loop.time()
                self.played.append(alert_id)
                self._skip.clear()
                self._changed.set()
                await self.page.started(alert_id, self.duration)
                try:
                    await asyncio.wait_for(self._skip.wait(), self.duration)
                    reason = "skipped"
                except asyncio.TimeoutError:
                    reason = "played"
                ended = loop.time()
                self.playing = None
                answer = await self.page.finished(alert_id, reason=reason, have=self._have())
                self.spans.append((alert_id, began, ended))  # once the queue knows
                self._changed.set()

    async def until(self, check: Callable[["Player"], bool], timeout: float = 4 * WAIT) -> float:
        """Wait until ``check(self)`` holds; answer how many seconds it took."""
        loop = asyncio.get_running_loop()
        began = loop.time()

        async def wait() -> None:
            while not check(self):
                if self._task.done():
                    self._task.result()  # its failure, not a timeout
                    raise AssertionError("the player stopped")
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(wait(), timeout)
        return loop.time() - began

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.page.close()


# -- what bots and the console send ------------------------------------------------

def admin(server: Any) -> dict[str, str]:
    """The console's header: the admin token of a server started by ``serve``."""
    return {"Authorization": f"Bearer {server.app[CONSOLE_KEY].token}"}


async def fire(http: Any, server: Any, code: str, event: str, **data: str) -> dict[str, Any]:
    """A bot's GET trigger; the seed-0 answer (with ``queued_position``)."""
    async with http.get(f"{server.url}/notify", params={"code": code, "event": event, **data}
                        ) as response:
        assert response.status == 200
        return await response.json()


async def control(http: Any, server: Any, code: str, **body: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{server.url}/codes/{code}/queue", json=body,
                         headers=admin(server)) as response:
        return response.status, await response.json()


async def put_designs(http: Any, server: Any, code: str, config: Any) -> dict[str, Any]:
    async with http.put(f"{server.url}/codes/{code}/alerts", json=config,
                        headers=admin(server)) as response:
        answer = await response.json()
        assert response.status == 200, answer
        return answer


async def upload(http: Any, server: Any, content: bytes, headers: dict[str, str] | None = None
                 ) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{server.url}/media", data=content,
                         headers=admin(server) if headers is None else headers) as response:
        return response.status, await response.json()


async def get_json(http: Any, url: str) -> dict[str, Any]:
    async with http.get(url) as response:
        assert response.status == 200
        return await response.json()
