"""Test helpers for the publishing routes: JSON posts and pages subscribed to a channel."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import aiohttp

from .support import Page


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


async def subscribed_page(pages: Callable[..., Awaitable[Page]], channel: str,
                          secret: str | None = None) -> Page:
    """A page (opened by the ``pages`` fixture, so closed after the test) listening on ``channel``."""
    page = await pages()
    payload: Any = channel if secret is None else {"channel": channel, "secret": secret}
    answer = await page.emit("subscribe", payload)
    assert answer == {"ok": True, "channel": channel}, answer
    return page
