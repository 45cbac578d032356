"""Stopping a background loop: the one way every long-running task of the server ends.

Each loop (bus reader, receipts listener, lease keeper, connection writer, ...)
runs as one asyncio task until the app stops. Ending it means cancelling it
and then waiting until it has finished its ``finally`` blocks, so a closed
Redis or PostgreSQL connection is never used by a loop still unwinding; the
cancellation itself is not an error worth raising.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel ``task`` (if any) and return once it has ended, whatever it ended with."""
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
