"""Logging set-up: console plus a size-rotated file.

The delivery path logs one INFO line per published event (never per
recipient) with channels masked; payloads appear only at DEBUG. aiohttp's
access log would print every trigger URL, codes included, so it is only
enabled at DEBUG.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOGFILE_BYTES = 5 * 1024 * 1024
LOGFILE_BACKUPS = 5


def configure_logging(level: str, logfile: Path | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if logfile is not None:
        logfile.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(
            logfile, maxBytes=LOGFILE_BYTES, backupCount=LOGFILE_BACKUPS, encoding="utf-8"))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)
    access_level = logging.DEBUG if level == "DEBUG" else logging.WARNING
    logging.getLogger("aiohttp.access").setLevel(access_level)
