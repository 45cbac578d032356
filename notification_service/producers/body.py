"""Reading and checking JSON request bodies for the publishing routes.

Shared by ``/emit``, ``/broadcast``, the Web Push routes and the admin routes
so that every JSON way in has the same limits and the same errors: a body too
large is 413 before it is parsed, a body that is not JSON is 422 with the line
and column where parsing stopped, an integer JavaScript cannot hold is 422
(42246). A body that arrives too slowly fails the read (408, see
http_limits.py). It must never hold more than the limit in memory.
"""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web

from .. import jsoncodec
from ..errors import INVALID_JSON, NUMBER_OUT_OF_RANGE, PAYLOAD_TOO_LARGE

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


TooLarge = Callable[[int, int, bool], Exception]  # (size, limit, at_least) -> the 413 to raise


async def read_body(request: web.Request, limit: int, too_large: TooLarge | None = None
                    ) -> bytes:
    """The raw body, refusing with 413 as soon as it exceeds ``limit`` bytes.

    ``too_large`` makes that 413 (default: event data over ``--max-payload-bytes``).
    """
    refuse = too_large or _too_large
    declared = request.content_length
    if declared is not None and declared > limit:
        raise refuse(declared, limit, False)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise refuse(size, limit, True)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes, what: str) -> Any:
    """Any JSON value; 422 saying where parsing failed for anything else (also empty)."""
    if not raw.strip():
        raise INVALID_JSON(f"The {what} is empty: send a JSON value (for example "
                           f"{{\"text\": \"hi\"}}, \"text\", 42, true or null).")
    try:
        return jsoncodec.loads(raw)
    except jsoncodec.NumberOutOfRange as error:
        raise NUMBER_OUT_OF_RANGE(f"{error.msg} (in the {what}).") from None
    except jsoncodec.JSONDecodeError as error:
        near = raw[max(0, error.pos - 10):error.pos + 10].decode("utf-8", "replace")
        raise INVALID_JSON(
            f"The {what} is not valid JSON: {error.msg} at line {error.lineno} column "
            f"{error.colno} (byte {error.pos}, near {near!r}). JSON spells booleans true/false "
            f"and nothing as null.") from None


def check_raw_size(size: int, limit: int) -> None:
    """413 unless ``size`` bytes of event data are within ``limit`` (``--max-payload-bytes``)."""
    if size > limit:
        raise _too_large(size, limit)


def check_data_size(data: Any, limit: int) -> None:
    """413 unless ``data`` encodes to at most ``limit`` bytes of JSON."""
    size = len(jsoncodec.dumps_bytes(data))
    if size > limit:
        raise _too_large(size, limit)


def query_flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in TRUE_WORDS


def _too_large(size: int, limit: int, at_least: bool = False) -> Exception:
    amount = f"more than {limit}" if at_least else str(size)
    return PAYLOAD_TOO_LARGE(
        f"The event data is {amount} bytes; this server accepts at most {limit} "
        f"(--max-payload-bytes). Send a link or an id instead of large content.")


def body_too_large(size: int, limit: int, at_least: bool = False) -> Exception:
    """The 413 of a route whose limit is fixed, not a setting (a subscription, a secret)."""
    amount = f"more than {limit}" if at_least else str(size)
    return PAYLOAD_TOO_LARGE(f"The body is {amount} bytes; this route accepts at most {limit}.")
