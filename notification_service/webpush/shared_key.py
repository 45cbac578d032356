"""One VAPID key for every node: a node whose key differs from the recorded one refuses to start.

Browsers bind a subscription to the public key it was made with, so a node
pushing with another key fails every push (403 from the push service) while
looking healthy. The first node records its public key; every later node
compares its own with it before it serves anything. With ``--database-url``
(the subscriptions are shared) the record is in PostgreSQL and a node with
another key refuses to start. With ``--redis-url`` alone each node keeps and
sends its own subscriptions, so another key only breaks a browser that fetched
the key from one node and subscribed through another: the record is in Redis
and a node with another key starts with a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import StartupError

MIGRATIONS: list[tuple[str, ...]] = [("""CREATE TABLE webpush_vapid (
    id         INTEGER PRIMARY KEY CHECK (id = 0),
    public_key TEXT NOT NULL
)""",)]
RECORD = "INSERT INTO webpush_vapid (id, public_key) VALUES (0, $1) ON CONFLICT (id) DO NOTHING"
SELECT = "SELECT public_key FROM webpush_vapid WHERE id = 0"


class VapidKeyMismatch(StartupError):
    """This node's VAPID key is not the one the other nodes use."""


def mismatch(public_key: str, recorded: str, key_file: Path, where: str) -> VapidKeyMismatch:
    return VapidKeyMismatch(
        f"This node's VAPID key ({key_file}, public key {public_key[:12]}...) differs from "
        f"the one the other nodes use ({recorded[:12]}..., recorded in {where}): copy their "
        f"key file here or point --vapid-key at it; pages subscribed with their key "
        f"cannot receive pushes signed with this one.")


async def check_in_postgres(pool: Any, public_key: str, key_file: Path) -> None:
    from ..stores.postgres import migrate
    await migrate(pool, "webpush_vapid", MIGRATIONS)
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(RECORD, public_key)
        recorded = await connection.fetchval(SELECT)
    if recorded != public_key:
        raise mismatch(public_key, recorded, key_file, "PostgreSQL")


async def check_in_redis(client: Any, key: str, public_key: str, key_file: Path) -> str | None:
    """The warning to log if this node's key is not the recorded one (None: it is)."""
    await client.set(key, public_key, nx=True)
    recorded = (await client.get(key)).decode()
    if recorded != public_key:
        return str(mismatch(public_key, recorded, key_file, f"Redis key {key}"))
    return None
