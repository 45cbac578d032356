"""Test helpers for the publishing routes: a server with overridden settings, JSON posts."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

import aiohttp

from .support import RunningServer, connect_page, start_server, test_settings


@contextlib.asynccontextmanager
async def running(tmp_path: Any, **overrides: Any) -> AsyncIterator[RunningServer]:
    server = await start_server(test_settings(tmp_path, **overrides))
    try:
        yield server
    finally:
        await server.stop()


async def post(http: aiohttp.ClientSession, url: str, *, json: Any = None,
               data: bytes | str | None = None, headers: dict[str, str] | None = None
               ) -> tuple[int, Any]:
    """POST and return (status, parsed JSON answer)."""
    kwargs: dict[str, Any] = {"headers": headers or {}}
    if data is not None:
        kwargs["data"] = data
        kwargs["headers"].setdefault("Content-Type", "application/json")
    else:
        kwargs["json"] = json
    async with http.post(url, **kwargs) as response:
        return response.status, await response.json()


async def subscribed_page(url: str, channel: str, secret: str | None = None):  # type: ignore[no-untyped-def]
    page = await connect_page(url)
    payload: Any = channel if secret is None else {"channel": channel, "secret": secret}
    answer = await page.emit("subscribe", payload)
    assert answer == {"ok": True, "channel": channel}, answer
    return page
