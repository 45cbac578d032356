"""The server's VAPID identity: one P-256 key pair in PEM files, and its subject.

Browsers bind every subscription to the public key (the applicationServerKey),
so a new key silently breaks every stored subscription. That is why this
module never invents a key behind the caller's back: py-vapid's ``from_file``
generates one when the path is missing, so it is never used here. A key is
generated only into the data directory on first start (or by ``vapid
--generate``/``--rotate``), and a configured path that does not exist is an error.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02

from ..errors import StartupError
from .crypto import b64url_encode

log = logging.getLogger(__name__)

PRIVATE_KEY_FILE = "vapid_private.pem"
PUBLIC_KEY_FILE = "vapid_public.pem"

# mailto: one address, no display name, no spaces, a dotted domain (Apple
# rejects "mailto: x@y", "mailto:<x@y>" and localhost).
_MAILTO = re.compile(r"mailto:[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
                     r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_HOSTNAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


class VapidKeyError(StartupError):
    """A key file is missing, unreadable or not a P-256 private key: says what to do."""


def validate_subject(subject: str) -> str:
    """Return ``subject`` if it is a ``mailto:`` address or an ``https:`` URL, else raise ValueError.

    Push services (Apple most strictly) reject a JWT whose ``sub`` is malformed,
    and then every push fails with 403, so a bad subject is refused at start-up.
    """
    if _MAILTO.fullmatch(subject):
        return subject
    if subject.startswith("https://") and not any(c.isspace() for c in subject):
        parts = urlsplit(subject)
        if (parts.scheme == "https" and parts.hostname and not parts.username
                and _HOSTNAME.fullmatch(parts.hostname) and "@" not in parts.netloc):
            return subject
    raise ValueError(
        f"VAPID subject {subject!r} is not valid: use 'mailto:you@example.com' or "
        f"'https://your.site' (no spaces, no display name, a public domain).")


def default_key_path(data_dir: Path) -> Path:
    return data_dir / PRIVATE_KEY_FILE


def load_key(path: Path) -> Vapid02:
    """Load an existing PEM private key; raise :class:`VapidKeyError` if it is not there."""
    if not path.is_file():
        raise VapidKeyError(
            f"VAPID key file {path} does not exist. Point --vapid-key at your existing key, "
            f"or leave --vapid-key unset to keep a key in the data directory.")
    try:
        return Vapid02.from_pem(path.read_bytes())
    except Exception as error:  # py-vapid raises several types for a bad file
        raise VapidKeyError(
            f"VAPID key file {path.resolve()} is not a PEM P-256 private key ({error}): "
            f"restore the right file, or move it away to generate a new key (every browser "
            f"must then subscribe again).") from None


def write_key(path: Path, vapid: Vapid02) -> None:
    """Write the private key readable by the owner only, and the public key beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    if temporary.exists():
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(vapid.private_pem())
    os.replace(temporary, path)  # atomic: a crash never leaves half a key
    public = path.with_name(PUBLIC_KEY_FILE if path.name == PRIVATE_KEY_FILE
                            else path.stem + ".pub.pem")
    public.write_bytes(vapid.public_pem())


def generate_key(path: Path) -> Vapid02:
    """Create a new key at ``path``; refuses to overwrite (use :func:`rotate_key`)."""
    if path.exists():
        raise VapidKeyError(f"{path} already exists; use --rotate to replace it.")
    vapid = Vapid02()
    vapid.generate_keys()
    write_key(path, vapid)
    log.warning("generated a new VAPID key in %s", path)
    return vapid


def rotate_key(path: Path) -> tuple[Vapid02, Path | None]:
    """Replace the key, keeping the old one as ``<name>.<unix time>.bak``; return (key, backup)."""
    backup = None
    if path.exists():
        backup = path.with_name(f"{path.name}.{int(time.time())}.bak")
        os.replace(path, backup)
    vapid = Vapid02()
    vapid.generate_keys()
    write_key(path, vapid)
    return vapid, backup


def load_or_create(data_dir: Path, configured: Path | None) -> Vapid02:
    """The server's key: the configured file (must exist), or the data directory's (made once)."""
    if configured is not None:
        return load_key(configured)
    path = default_key_path(data_dir)
    if path.exists():
        return load_key(path)
    return generate_key(path)


def application_server_key(vapid: Vapid02) -> str:
    """The URL-safe base64 uncompressed public key a page passes to ``pushManager.subscribe``."""
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    return b64url_encode(raw)
