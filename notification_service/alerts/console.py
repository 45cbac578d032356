"""The operator console's token and link.

The console (``/console/``) and the alert box's writing routes take the
admin token: ``--admin-token`` if set, else a token generated on first start
and kept in ``<data dir>/admin_token``, created with mode 0600 (on Windows the
mode only means "not read-only": the file is as private as the data folder's
own permissions, which for a folder in your user profile means your account
and administrators). The link printed at start carries the token after ``#``,
so it never reaches a server log, a proxy or a Referer header. This module
never logs the token.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from ..config import Settings
from ..errors import StartupError
from ..tokens import require_token

TOKEN_FILE = "admin_token"
TOKEN_BYTES = 24
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class ConsoleAccess:
    """The admin token the console uses, and where it came from."""

    token: str
    file: Path | None  # None: given with --admin-token

    def require(self, request: web.Request) -> None:
        """401 without the token, 403 with a wrong one."""
        require_token(request, self.token, "admin")


def console_access(settings: Settings) -> ConsoleAccess:
    if settings.admin_token is not None:
        return ConsoleAccess(settings.admin_token, None)
    path = settings.data_dir / TOKEN_FILE
    return ConsoleAccess(load_or_create(path), path)


def load_or_create(path: Path) -> str:
    """The token in ``path``, or a new one written there readable by this user only."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    except OSError as error:
        raise StartupError(f"{path}: cannot read the admin token ({error}); fix its "
                           f"permissions, delete it to get a new one, or pass "
                           f"--admin-token.") from None
    if len(token) >= MIN_TOKEN_LENGTH:
        return token
    token = secrets.token_urlsafe(TOKEN_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    os.replace(partial, path)
    return token


def console_link(start_url: str, access: ConsoleAccess) -> str:
    """What the CLI prints: the console under the server's address (and base path), with the
    token when it was generated. ``start_url`` is what the server listens on, ending in /."""
    parts = urlsplit(start_url)
    host, _, port = parts.netloc.rpartition(":")  # the netloc may be an unbracketed "::"
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):  # every interface: this machine is one of them
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    url = parts._replace(netloc=f"{host}:{port}").geturl() + "console/"
    if access.file is not None:
        return f"{url}#token={access.token}"
    return url


def banner(start_url: str, access: ConsoleAccess) -> str:
    link = console_link(start_url, access)
    if access.file is None:
        return f"Console: {link} (sign in with your --admin-token)"
    return f"Console: {link}  (the token is kept in {access.file})"


CONSOLE_KEY = web.AppKey("console_access", ConsoleAccess)
