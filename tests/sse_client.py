"""Test helpers for SSE: mint JWTs and read a real ``text/event-stream`` like a browser does."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt

from notification_service import jsoncodec

from .support import WAIT

SECRET = "test-secret-that-is-at-least-32-bytes-long"


def make_token(sub: str = "user-1", iss: str = "app-1", *, key: Any = SECRET,
               algorithm: str = "HS256", lifetime: float = 600, **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"sub": sub, "iss": iss, "iat": now, "exp": now + lifetime}
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, key, algorithm=algorithm)


@dataclass
class SSEEvent:
    name: str
    data: Any
    id: str | None


@dataclass
class Stream:
    """An open ``GET /sse``: collects events as the spec's parser would."""

    response: aiohttp.ClientResponse
    events: list[SSEEvent] = field(default_factory=list)
    retry: int | None = None

    @property
    def connection_id(self) -> str:
        return self.response.headers["X-Connection-Id"]

    async def next_event(self, timeout: float = WAIT) -> SSEEvent:
        return await asyncio.wait_for(self._read_event(), timeout)

    async def wait_for(self, name: str, timeout: float = WAIT) -> SSEEvent:
        """The next event called ``name`` (others are kept in ``events``)."""
        async def until() -> SSEEvent:
            while True:
                event = await self._read_event()
                if event.name == name:
                    return event
        return await asyncio.wait_for(until(), timeout)

    async def _read_event(self) -> SSEEvent:
        name, data_lines, event_id = "message", [], None
        while True:
            raw = await self.response.content.readline()
            if not raw:
                raise ConnectionError("the stream ended")
            line = raw.decode().rstrip("\n")
            if line == "":
                if data_lines:
                    event = SSEEvent(name, jsoncodec.loads("\n".join(data_lines)), event_id)
                    self.events.append(event)
                    return event
                name, event_id = "message", None
                continue
            field_name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field_name == "data":
                data_lines.append(value)
            elif field_name == "event":
                name = value
            elif field_name == "id":
                event_id = value
            elif field_name == "retry":
                self.retry = int(value)

    async def ended(self, timeout: float = WAIT) -> bool:
        """True once the server ended the stream (reads and drops anything left)."""
        async def until_eof() -> bool:
            try:
                while await self.response.content.readany():
                    pass
            except aiohttp.ClientPayloadError:
                pass
            return True
        return await asyncio.wait_for(until_eof(), timeout)

    def close(self) -> None:
        self.response.close()


async def open_stream(http: aiohttp.ClientSession, url: str, *, token: str | None = None,
                      query: str = "", last_event_id: str | None = None) -> Stream:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id  # what EventSource sends when it reconnects
    response = await http.get(f"{url}/sse" + (f"?{query}" if query else ""), headers=headers,
                              timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
    assert response.status == 200, await response.text()
    return Stream(response)
