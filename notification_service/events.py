"""The Event every way in produces, and the rules for channel and event names.

A channel is the one concept behind a seed-0 listening ``code``, a ws-emit
``room`` and a broadcast ``channel``. Names are checked here, once, so every
producer and transport agrees on what is valid. Nothing here does I/O.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from .errors import INVALID_CHANNEL, INVALID_CODE, INVALID_EVENT_NAME, ErrorKind

CODE_MAX_LENGTH = 128
EVENT_NAME_MAX_LENGTH = 128
# URL-unreserved characters: a code never needs escaping in a URL, a shell or OBS.
CODE_PATTERN = re.compile(r"[A-Za-z0-9_.~-]{1,%d}" % CODE_MAX_LENGTH)
CHANNEL_MAX_LENGTH = 256
SPACE_MAX_LENGTH = 64
# Channels: the code characters plus ``: @ / + = |`` so that ``space::name``
# private channels and ``jwt:{iss}:{sub}`` identity channels (issuers are often
# URLs, subjects often e-mail addresses or ``provider|id``) are channels too.
# No whitespace, quotes, ``<>``, ``%``, ``?``, ``#`` or ``&``: a channel is
# safe in a log line, an HTML attribute and a query string. Every valid code is
# a valid channel.
CHANNEL_CHARACTERS = r"A-Za-z0-9_.~:@/+=|-"
CHANNEL_PATTERN = re.compile(r"[%s]{1,%d}" % (CHANNEL_CHARACTERS, CHANNEL_MAX_LENGTH))
# The space of a ``space::name`` channel is also a URL path segment
# (``PUT /admin/spaces/{space}``), so it keeps to the code characters.
SPACE_PATTERN = re.compile(r"[A-Za-z0-9_.~-]{1,%d}" % SPACE_MAX_LENGTH)
SPACE_SEPARATOR = "::"
# Printable, no whitespace controls; socket.io and SSE both carry it verbatim.
EVENT_NAME_PATTERN = re.compile(r"[^\x00-\x1f\x7f]{1,%d}" % EVENT_NAME_MAX_LENGTH)
# Names the socket.io client keeps for itself: an event called this would never
# reach a page's handler, so it is refused at the door instead of lost silently.
RESERVED_EVENT_NAMES = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)


# What a producer may ask of Web Push for one event: False (no push), True
# (push with defaults) or the Web Push transport's options (TTL, urgency, topic).
PushRequest = Any


class Event(NamedTuple):
    """One published event. ``id`` is assigned by the Hub; ``time`` is Unix seconds.

    ``push`` is the producer's request that Web Push subscribers of the channel
    get the event too (live listeners always do). ``receipt`` asks listeners to
    confirm they got it (a producer is waiting for receipts).

    A named tuple, not a frozen dataclass: as immutable, and made in a tenth of
    the time (a frozen dataclass sets each field through ``object.__setattr__``),
    once per publish and once per replayed event.
    """

    id: str
    channel: str
    name: str
    data: Any
    time: float
    push: PushRequest = False
    receipt: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "channel": self.channel, "name": self.name,
                "data": self.data, "time": self.time}


def validate_code(code: str, error: ErrorKind = INVALID_CODE) -> str:
    """Return ``code`` if it is a valid listening code, else raise ``error``."""
    if not CODE_PATTERN.fullmatch(code):
        raise error(
            f"A code is 1 to {CODE_MAX_LENGTH} characters from A-Z a-z 0-9 _ . ~ - "
            f"(got {len(code)} characters{_first_bad_character(code, CODE_PATTERN)})."
        )
    return code


def validate_channel(channel: str, error: ErrorKind = INVALID_CHANNEL) -> str:
    """Return ``channel`` if listeners can join it and producers target it, else raise ``error``.

    A channel is 1 to 256 characters from ``A-Z a-z 0-9 _ . ~ - : @ / + = |``.
    If it contains ``::`` it is private: the part before the first ``::`` is
    the space (1 to 64 of ``A-Z a-z 0-9 _ . ~ -``) and the name after it must
    not be empty.
    """
    if not isinstance(channel, str) or not CHANNEL_PATTERN.fullmatch(channel):
        if not isinstance(channel, str):
            raise error(f"A channel is a string, not {type(channel).__name__}.")
        raise error(
            f"A channel is 1 to {CHANNEL_MAX_LENGTH} characters from "
            f"A-Z a-z 0-9 _ . ~ - : @ / + = | (got {len(channel)} characters"
            f"{_first_bad_character(channel, CHANNEL_PATTERN)}).")
    space, separator, name = channel.partition(SPACE_SEPARATOR)
    # JWT identity channels (access.JWT_PREFIX) carry issuer URLs: never a space.
    if separator and not channel.startswith("jwt:") and (not SPACE_PATTERN.fullmatch(space) or not name):
        raise error(
            f"'{channel}' looks private (space::name): the space must be 1 to "
            f"{SPACE_MAX_LENGTH} characters from A-Z a-z 0-9 _ . ~ - and the name must not be empty.")
    return channel


def validate_space(space: str, error: ErrorKind = INVALID_CHANNEL) -> str:
    """Return ``space`` if it can name a private space, else raise ``error``."""
    if not SPACE_PATTERN.fullmatch(space):
        raise error(f"A space is 1 to {SPACE_MAX_LENGTH} characters from A-Z a-z 0-9 _ . ~ - "
                    f"(got {len(space)} characters{_first_bad_character(space, SPACE_PATTERN)}).")
    return space


def validate_event_name(name: str, error: ErrorKind = INVALID_EVENT_NAME) -> str:
    """Return ``name`` if it can be delivered as an event name, else raise ``error``."""
    if not EVENT_NAME_PATTERN.fullmatch(name):
        raise error(
            f"An event name is 1 to {EVENT_NAME_MAX_LENGTH} characters without control "
            f"characters (got {len(name)} characters)."
        )
    if name in RESERVED_EVENT_NAMES:
        raise error(f"'{name}' is reserved by socket.io clients; choose another event name.")
    return name


def trigger_event_name(raw: str) -> str:
    """The seed-0 rule: upper-case, spaces become ``_`` (``new follower`` -> ``NEW_FOLLOWER``)."""
    return validate_event_name(raw.upper().replace(" ", "_"))


def _first_bad_character(value: str, pattern: re.Pattern[str]) -> str:
    single = re.compile(pattern.pattern.split("{", 1)[0])
    for position, character in enumerate(value):
        if not single.fullmatch(character):
            return f"; {character!r} at position {position} is not allowed"
    return ""
