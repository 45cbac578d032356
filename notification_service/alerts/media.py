"""Uploaded alert media: images, GIFs, WebM/MP4 videos and sounds the console sends.

A file is named by the SHA-256 of its bytes and its type (``<hex>.gif``), so a
name never changes meaning: overlays may cache it forever and the same GIF
uploaded twice is stored once. The type is decided by the file's first bytes,
never by what the client claims, and SVG and HTML are never accepted, so an
upload cannot become a page that runs script. Files are bounded one by one
(``--alert-media-max-bytes``) and in total (``--alert-media-total-bytes``).
Embedded: files in ``<data dir>/media`` with an index in SQLite. With
``--database-url``: the bytes in PostgreSQL, so every node serves every
upload, each node keeping a copy in its own media folder. Served through
:func:`..static.serve_file` (content type from the extension, Range requests).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path
from typing import Any, Protocol

from ..errors import MEDIA_STORAGE_FULL, MEDIA_TYPE_UNSUPPORTED
from ..static import content_type_for
from .sqlite import AlertDatabase

NAME = re.compile(r"[0-9a-f]{64}\.[a-z0-9]{2,5}")
FOLDER_NAME = "media"

SQLITE_INSERT = ("INSERT OR IGNORE INTO media (name, type, bytes, created) "
                 "VALUES (?, ?, ?, ?)")
SQLITE_TOTAL = "SELECT COALESCE(SUM(bytes), 0) FROM media"
SQLITE_EXISTS = "SELECT 1 FROM media WHERE name = ?"

POSTGRES_MIGRATIONS: list[list[str]] = [[
    """CREATE TABLE alert_media (
        name    TEXT PRIMARY KEY,
        type    TEXT NOT NULL,
        bytes   INTEGER NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        content BYTEA NOT NULL
    )""",
]]
POSTGRES_INSERT = ("INSERT INTO alert_media (name, type, bytes, created, content) "
                   "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING")
POSTGRES_TOTAL = "SELECT COALESCE(SUM(bytes), 0) FROM alert_media"
POSTGRES_CONTENT = "SELECT content FROM alert_media WHERE name = $1"
POSTGRES_EXISTS = "SELECT 1 FROM alert_media WHERE name = $1"


def sniff(head: bytes) -> str | None:
    """The extension the first bytes prove, or None (only types overlays can play)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith(b"OggS"):
        return "ogg"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        return "m4a" if brand.startswith(b"M4A") else "mp4"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF
                                   and head[1] & 0xE6 == 0xE2):  # MPEG audio layer III
        return "mp3"
    return None


def media_name(content: bytes) -> str:
    """``<sha256>.<ext>``; 415 unless the bytes are a type overlays can play."""
    extension = sniff(content[:16])
    if extension is None:
        raise MEDIA_TYPE_UNSUPPORTED(
            "This file is not a PNG, JPEG, GIF, WebP or AVIF image, a WebM or MP4 video, or an "
            "MP3, Ogg, WAV or M4A sound (judged by its first bytes, not its name); convert it "
            "and upload again.")
    return f"{hashlib.sha256(content).hexdigest()}.{extension}"


class MediaStore(Protocol):
    """Uploaded files by name; ``path`` gives a local file to serve, or None."""

    async def save(self, name: str, content: bytes) -> None: ...

    async def path(self, name: str) -> Path | None: ...


class _LocalFolder:
    """The media folder in the data dir: files written atomically, never outside it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def file(self, name: str) -> Path:
        if NAME.fullmatch(name) is None:
            raise ValueError(f"not a media name: {name!r}")
        return self.folder / name

    def write(self, name: str, content: bytes) -> None:
        target = self.file(name)
        if target.is_file():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{name}.{os.getpid()}.partial")
        partial.write_bytes(content)
        os.replace(partial, target)

    def existing(self, name: str) -> Path | None:
        target = self.file(name)
        return target if target.is_file() else None


class SqliteMediaStore:
    """Files in ``<data dir>/media``, their sizes in the SQLite index (for the total bound)."""

    def __init__(self, database: AlertDatabase, folder: Path, total_limit: int) -> None:
        self.database = database
        self.local = _LocalFolder(folder)
        self.total_limit = total_limit

    async def save(self, name: str, content: bytes) -> None:
        def write(db: Any) -> None:
            if db.execute(SQLITE_EXISTS, (name,)).fetchone() is not None:
                return
            total = db.execute(SQLITE_TOTAL).fetchone()[0]
            _check_total(total, len(content), self.total_limit)
            self.local.write(name, content)
            db.execute(SQLITE_INSERT, (name, content_type_for(Path(name)), len(content),
                                       time.time()))
        await self.database.run(write)

    async def path(self, name: str) -> Path | None:
        return self.local.existing(name)


class PostgresMediaStore:
    """The bytes in PostgreSQL; each node copies a file into its media folder on first use."""

    def __init__(self, pool: Any, folder: Path, total_limit: int) -> None:
        self.pool = pool
        self.local = _LocalFolder(folder)
        self.total_limit = total_limit

    async def save(self, name: str, content: bytes) -> None:
        async with self.pool.acquire() as connection:
            async with connection.transaction():
                # One writer at a time, so two uploads cannot both pass the total bound.
                await connection.execute("LOCK TABLE alert_media IN SHARE ROW EXCLUSIVE MODE")
                if await connection.fetchval(POSTGRES_EXISTS, name):
                    return
                _check_total(await connection.fetchval(POSTGRES_TOTAL), len(content),
                             self.total_limit)
                await connection.execute(POSTGRES_INSERT, name, content_type_for(Path(name)),
                                         len(content), time.time(), content)

    async def path(self, name: str) -> Path | None:
        found = self.local.existing(name)
        if found is not None:
            return found
        content = await self.pool.fetchval(POSTGRES_CONTENT, name)
        if content is None:
            return None
        self.local.write(name, bytes(content))
        return self.local.existing(name)


def _check_total(total: int, adding: int, limit: int) -> None:
    if total + adding > limit:
        raise MEDIA_STORAGE_FULL(
            f"Uploaded media already take {total} bytes and this file has {adding}; the server "
            f"keeps at most {limit} (--alert-media-total-bytes). Raise the limit, or reuse a "
            f"file you uploaded before.")
