"""Cancel a request handler when its client hangs up, only for the handlers that ask.

aiohttp can cancel every handler whose connection is lost
(``handler_cancellation=True``), but most handlers here must not stop halfway:
a publish that already delivered must still queue its Web Push messages, feed
the alert queue and remember its idempotency key; an upload must finish its
file. Shielding each of them would cost a Task per request (about 6 µs, an
eighth of a trigger). So cancellation stays off, and a handler that only
*waits for its client* (a long-poll waiting for events) asks for it here,
around the wait and nothing else: a long-poll whose TCP connection dropped
must stop waiting, or it takes the next events and writes them into a dead
socket while the client's retry on a new connection waits behind it.

:func:`install` hooks the runner's ``Server`` (as the connection cap does);
:func:`cancelled_on_hangup` marks the wait. It must never be used around work
that has effects: the task is cancelled wherever it is.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from typing import Any, Iterator

from aiohttp import web

# Connection (aiohttp's RequestHandler, which takes no weak reference) -> the task
# waiting for its client; an entry lives only as long as its block.
_WAITING: dict[Any, asyncio.Task[Any]] = {}


def install(server: web.Server | None) -> None:
    """Make ``server`` cancel the marked waits of connections it loses (idempotent)."""
    if server is None or getattr(server, "_hangup_installed", False):
        return
    lost = server.connection_lost

    def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
        lost(handler, exc)
        waiting = _WAITING.pop(handler, None)
        if waiting is not None:
            waiting.cancel()

    server.connection_lost = connection_lost  # type: ignore[method-assign]
    server._hangup_installed = True  # type: ignore[attr-defined]


@contextmanager
def cancelled_on_hangup(request: web.BaseRequest) -> Iterator[None]:
    """Inside this block the current task is cancelled if ``request``'s client hangs up.

    A client already gone when the block starts cancels it at once.
    """
    task = asyncio.current_task()
    if task is None:
        yield
        return
    protocol = request.protocol
    if request.transport is None or request.transport.is_closing():
        task.cancel()  # raised at the block's first await
    _WAITING[protocol] = task
    try:
        yield
    finally:
        if _WAITING.get(protocol) is task:
            del _WAITING[protocol]
