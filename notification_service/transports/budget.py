"""The one slow-consumer rule: a connection's queued output is bounded in bytes.

Every transport that writes to a client (socket.io over WebSocket, polling,
SSE) keeps what the client has not taken yet in an :class:`Outbox`: encoded
frames in order, and replays. A replay is the list of history events a
resuming client missed, held as references to the events history already
keeps and encoded only when the connection has room for it, so resuming
costs no copy of the history. What is encoded and waiting, plus what the
transport's own buffer holds, is the connection's queued output; past the
budget (``--output-budget``) the transport closes the connection as too slow
and the client resumes from the last id it got.

A client that resumes a channel while an earlier replay of that channel is
still waiting replaces it: the earlier replay and every frame of that channel
queued behind it are dropped, since the new replay carries them again. Two
hundred resumes on a socket that never reads hold one replay, not two hundred.

Nothing here does I/O: a transport asks :meth:`Outbox.take` for the next
bytes when its client can take them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")

TOO_SLOW_REASON = "too slow, resuming"
"""What a client closed by this rule is told (notificationservice.js shows it)."""


@dataclass(slots=True)
class Replay(Generic[T]):
    """What a resuming client missed on one channel, not encoded yet.

    :param channel: the channel the events are from (a later resume of it replaces this).
    :param items: history's own event objects, in order.
    :param encode: turns one item into the bytes the transport writes.
    """

    channel: str
    items: list[T]
    encode: Callable[[T], bytes]
    position: int = 0

    def __len__(self) -> int:
        return len(self.items) - self.position


class Outbox:
    """What one connection still has to send, in order, and whether it is over budget.

    :param budget: the most bytes the connection may have waiting (``--output-budget``).
    """

    __slots__ = ("budget", "held", "_items")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held = 0  # bytes of encoded frames waiting here (replays count once encoded)
        # made on first use: most connections never have anything waiting (a deque is 600 bytes)
        self._items: deque[tuple[str | None, bytes | Replay]] | None = None

    def __bool__(self) -> bool:
        return bool(self._items)

    def _queue(self) -> deque[tuple[str | None, bytes | Replay]]:
        if self._items is None:
            self._items = deque()
        return self._items

    def waiting(self) -> list[bytes | Replay]:
        """What waits, in order (encoded frames and replays)."""
        return [item for _channel, item in self._items or ()]

    def over_budget(self, in_transport: int = 0) -> bool:
        """True when what waits here plus ``in_transport`` (the transport's buffer) passes the budget."""
        return self.held + in_transport > self.budget

    def push(self, frame: bytes, channel: str | None = None) -> None:
        """Queue one encoded frame (``channel`` names it for :meth:`replay` to drop)."""
        self._queue().append((channel, frame))
        self.held += len(frame)

    def replay(self, replay: Replay, before: Iterable[bytes] = ()) -> None:
        """Queue a replay of ``replay.channel``, replacing one still waiting and its frames.

        ``before`` are frames that go just ahead of it (a RESUME_GAP notice).
        """
        channel = replay.channel
        items = self._queue()
        if any(item_channel == channel for item_channel, _ in items):
            kept: deque[tuple[str | None, bytes | Replay]] = deque()
            for item in items:
                if item[0] == channel:
                    if isinstance(item[1], bytes):
                        self.held -= len(item[1])
                else:
                    kept.append(item)
            self._items = kept
        for frame in before:
            self.push(frame, channel)
        if replay:
            self._queue().append((channel, replay))

    def take(self, most: int) -> list[bytes]:
        """The next frames, about ``most`` bytes of them (at least one frame if any waits)."""
        taken: list[bytes] = []
        size = 0
        items = self._items
        if items is None:
            return taken
        while items and size < most:
            channel, item = items[0]
            if isinstance(item, bytes):
                items.popleft()
                self.held -= len(item)
                frame = item
            else:
                frame = item.encode(item.items[item.position])
                item.position += 1
                if not item:
                    items.popleft()
            taken.append(frame)
            size += len(frame)
        return taken

    def clear(self) -> None:
        self._items = None
        self.held = 0
