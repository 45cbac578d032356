"""How the server's long-running parts live with the app, and how their loops end.

Each loop (bus reader, receipts listener, lease keeper, connection writer, ...)
runs as one asyncio task until the app stops. Ending it means cancelling it
and then waiting until it has finished its ``finally`` blocks, so a closed
Redis or PostgreSQL connection is never used by a loop still unwinding; the
cancellation itself is not an error worth raising. A part that only starts
and stops with the app says so with :func:`lives_with`.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable

from aiohttp import web


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel ``task`` (if any) and return once it has ended, whatever it ended with."""
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def lives_with(app: web.Application, start: Callable[[], Awaitable[None]],
               stop: Callable[[], Awaitable[None]]) -> None:
    """``await start()`` as ``app`` starts and ``await stop()`` as it stops (a cleanup context)."""

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        await start()
        yield
        await stop()

    app.cleanup_ctx.append(lifetime)
