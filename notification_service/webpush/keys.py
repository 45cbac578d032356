"""The server's VAPID identity: one P-256 key pair in PEM files, and its subject.

Browsers bind every subscription to the public key (the applicationServerKey),
so a new key silently breaks every stored subscription. That is why this
module never invents a key behind the caller's back: py-vapid's ``from_file``
generates one when the path is missing, so it is never used here. A key is
generated only into the data directory on first start (or by ``vapid
--generate``/``--rotate``), and a configured path that does not exist is an error.

The server process starts without OpenSSL (cryptography and py-vapid cost
about 9 MB of RSS): :func:`server_key` reads the PEM's structure, its curve
and the public key stored in it, and checks that this point is on P-256, in
pure Python. That the private half matches is checked when the first push is
signed (:meth:`ServerKey.load`). Making a key, or reading one that carries no
public key, runs in a short-lived child process that exits before the server
serves anything.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence
from urllib.parse import urlsplit

from ..errors import StartupError
from .crypto import PUBLIC_KEY_BYTES, b64url_encode

if TYPE_CHECKING:
    from py_vapid import Vapid02

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


def _missing(path: Path) -> VapidKeyError:
    return VapidKeyError(
        f"VAPID key file {path} does not exist. Point --vapid-key at your existing key, "
        f"or leave --vapid-key unset to keep a key in the data directory.")


def _not_a_key(path: Path, reason: object) -> VapidKeyError:
    return VapidKeyError(
        f"VAPID key file {path.resolve()} is not a PEM P-256 private key ({reason}): "
        f"restore the right file, or move it away to generate a new key (every browser "
        f"must then subscribe again).")


def load_key(path: Path) -> Vapid02:
    """Load an existing PEM private key; raise :class:`VapidKeyError` if it is not there."""
    from py_vapid import Vapid02  # and OpenSSL: on the first push, or in a key command
    if not path.is_file():
        raise _missing(path)
    try:
        return Vapid02.from_pem(path.read_bytes())
    except Exception as error:  # py-vapid raises several types for a bad file
        raise _not_a_key(path, error) from None


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
    vapid = _new_key(path)
    log.warning("generated a new VAPID key in %s", path)
    return vapid


def _new_key(path: Path) -> Vapid02:
    from py_vapid import Vapid02
    if path.exists():
        raise VapidKeyError(f"{path} already exists; use --rotate to replace it.")
    vapid = Vapid02()
    vapid.generate_keys()
    write_key(path, vapid)
    return vapid


def rotate_key(path: Path) -> tuple[Vapid02, Path | None]:
    """Replace the key, keeping the old one as ``<name>.<unix time>.bak``; return (key, backup)."""
    from py_vapid import Vapid02
    backup = None
    if path.exists():
        backup = path.with_name(f"{path.name}.{int(time.time())}.bak")
        os.replace(path, backup)
    vapid = Vapid02()
    vapid.generate_keys()
    write_key(path, vapid)
    return vapid, backup


def load_or_create(data_dir: Path, configured: Path | None) -> Vapid02:
    """The key itself (loads OpenSSL): the configured file (must exist), or the data
    directory's (made once). The server starts with :func:`server_key` instead."""
    if configured is not None:
        return load_key(configured)
    path = default_key_path(data_dir)
    if path.exists():
        return load_key(path)
    return generate_key(path)


def application_server_key(vapid: Vapid02) -> str:
    """The URL-safe base64 uncompressed public key a page passes to ``pushManager.subscribe``."""
    from cryptography.hazmat.primitives import serialization
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    return b64url_encode(raw)


# -- the server's key at start, without OpenSSL ------------------------------------
@dataclass(frozen=True)
class ServerKey:
    """The key file a server uses and its applicationServerKey, as start-up read them."""

    path: Path
    public_key: str

    def load(self) -> Vapid02:
        """The signing key (imports py-vapid and OpenSSL); refuses one whose public half
        is not the one start-up read, so pages never get pushes signed by another key."""
        vapid = load_key(self.path)
        found = application_server_key(vapid)
        if found != self.public_key:
            raise VapidKeyError(
                f"VAPID key file {self.path.resolve()} holds public key {found[:12]}..., "
                f"not the {self.public_key[:12]}... the server started with (the file was "
                f"replaced, or its private and public halves do not match): restore the "
                f"file and restart the server.")
        return vapid


def server_key(data_dir: Path, configured: Path | None) -> ServerKey:
    """The configured key file (must exist), or the data directory's (made once), checked.

    Raises :class:`VapidKeyError` for a missing configured file or one that is
    not a P-256 private key, so the server refuses to start with one sentence.
    """
    path = configured if configured is not None else default_key_path(data_dir)
    if configured is not None and not configured.is_file():
        raise _missing(configured)
    if not path.exists():
        public_key = _with_openssl(path, "generate")
        log.warning("generated a new VAPID key in %s", path)
        return ServerKey(path, public_key)
    try:
        point = public_point_in_pem(path.read_bytes())
    except (OSError, ValueError) as error:
        raise _not_a_key(path, error) from None
    if point is None:  # a valid form that stores no public key: OpenSSL derives it
        return ServerKey(path, _with_openssl(path, "check"))
    return ServerKey(path, b64url_encode(point))


_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); "
          "from notification_service.webpush.keys import child_main; child_main(sys.argv[2:])")
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]
_APPLICATION_SERVER_KEY = re.compile(r"[A-Za-z0-9_-]{87}")  # 65 bytes, unpadded base64url


def _with_openssl(path: Path, action: str) -> str:
    """Make (``generate``) or read (``check``) the key with OpenSSL; the applicationServerKey.

    In a child process that exits at once (about 0.3 s), so the server's own
    process never loads OpenSSL; here directly if this process already has it
    (the tests, an app embedding the server): a child would then save nothing.
    """
    if "cryptography.hazmat.bindings._rust" in sys.modules:
        return application_server_key(_new_key(path) if action == "generate" else load_key(path))
    doing = "make" if action == "generate" else "read"
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(_PACKAGE_PARENT), action,
                               str(path)], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as error:
        raise VapidKeyError(f"Could not {doing} the VAPID key {path}: running {sys.executable} "
                            f"failed ({error}).") from None
    lines = done.stdout.split()
    if done.returncode == 0 and len(lines) == 1 and _APPLICATION_SERVER_KEY.fullmatch(lines[0]):
        return lines[0]
    why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    if done.returncode == 2:  # the child's VapidKeyError: already the sentence to show
        raise VapidKeyError(why)
    hint = (": install the cryptography and py-vapid packages" if "ModuleNotFoundError" in why
            else "")
    raise VapidKeyError(f"Could not {doing} the VAPID key {path} ({why}){hint}.")


def child_main(argv: Sequence[str]) -> None:
    """``<generate|check> <path>``: print the applicationServerKey, or the error and exit 2."""
    action, path = argv[0], Path(argv[1])
    try:
        vapid = _new_key(path) if action == "generate" else load_key(path)
    except VapidKeyError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    print(application_server_key(vapid))


# P-256 (SEC 2 section 2.4.2): y^2 = x^3 - 3x + b over the prime field p; n is the group order.
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # OID 1.2.840.10045.2.1
_PRIME256V1 = bytes.fromhex("06082a8648ce3d030107")  # OID 1.2.840.10045.3.1.7
_LABELS = ("PRIVATE KEY", "EC PRIVATE KEY")  # PKCS #8 (what we write), SEC 1 (openssl ec)


def public_point_in_pem(data: bytes) -> bytes | None:
    """The uncompressed public point a P-256 private key PEM carries (None: it carries none).

    Reads PKCS #8 and SEC 1 (RFC 5915) PEM files; raises ValueError saying what
    is wrong with anything else: another curve or key type, a private scalar
    out of range, a point off the curve. Pure Python: no OpenSSL is loaded.
    """
    try:
        lines = data.decode("ascii").strip().splitlines()
    except UnicodeDecodeError:
        raise ValueError("not text") from None
    first = lines[0].strip() if lines else ""
    label = next((name for name in _LABELS if first == f"-----BEGIN {name}-----"), None)
    if label is None:
        raise ValueError("no -----BEGIN PRIVATE KEY----- line first")
    if lines[-1].strip() != f"-----END {label}-----":
        raise ValueError(f"no -----END {label}----- line last")
    try:
        der = base64.b64decode("".join(line.strip() for line in lines[1:-1]), validate=True)
    except binascii.Error as error:
        raise ValueError(f"bad base64: {error}") from None
    if label == "PRIVATE KEY":  # PrivateKeyInfo: version, algorithm, OCTET STRING(ECPrivateKey)
        version, algorithm, key, *_attributes = _children(_one(der, 0x30, "PrivateKeyInfo"),
                                                          "PrivateKeyInfo")
        if _value(version, 0x02) not in (b"\x00", b"\x01"):
            raise ValueError("unknown PKCS #8 version")
        kind, *curve = _children(_value(algorithm, 0x30), "algorithm")
        if kind != _EC_PUBLIC_KEY:
            raise ValueError("not an elliptic-curve key")
        if curve != [_PRIME256V1]:
            raise ValueError("not on the P-256 curve")
        return _ec_private_key(_value(key, 0x04), curve_known=True)
    return _ec_private_key(der, curve_known=False)


def _ec_private_key(der: bytes, *, curve_known: bool) -> bytes | None:
    """ECPrivateKey (RFC 5915): version 1, the scalar, [0] curve, [1] public key."""
    version, scalar, *optional = _children(_one(der, 0x30, "ECPrivateKey"), "ECPrivateKey")
    if _value(version, 0x02) != b"\x01" or len(optional) > 2:
        raise ValueError("not an ECPrivateKey")
    point = None
    for field in optional:
        if field[0] == 0xA0:
            if _value(field, 0xA0) != _PRIME256V1:
                raise ValueError("not on the P-256 curve")
            curve_known = True
        elif field[0] == 0xA1:
            bits = _value(_value(field, 0xA1), 0x03)
            point = bits[1:] if bits[:1] == b"\x00" else None
        else:
            raise ValueError("not an ECPrivateKey")
    secret = _value(scalar, 0x04)
    if len(secret) > 32 or not 0 < int.from_bytes(secret, "big") < _N:
        raise ValueError("private scalar out of range for P-256")
    if not curve_known or point is None or len(point) != PUBLIC_KEY_BYTES or point[0] != 4:
        return None  # valid, but the public point must be derived: OpenSSL does that
    x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
    if not (x < _P and y < _P and (y * y - (x * x * x - 3 * x + _B)) % _P == 0):
        raise ValueError("its public key is not a point on P-256")
    return point


def _tlv(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at ``at``."""
    if at + 2 > len(der):
        raise ValueError("truncated DER")
    tag, length, at = der[at], der[at + 1], at + 2
    if length & 0x80:
        size = length & 0x7F
        if not 1 <= size <= 2 or at + size > len(der):
            raise ValueError("bad DER length")
        length, at = int.from_bytes(der[at:at + size], "big"), at + size
    if at + length > len(der):
        raise ValueError("truncated DER")
    return tag, at, at + length


def _one(der: bytes, tag: int, what: str) -> bytes:
    """The value of the single element ``der`` holds, which must have ``tag``."""
    found, start, end = _tlv(der, 0)
    if found != tag or end != len(der):
        raise ValueError(f"not a {what}")
    return der[start:end]


def _children(der: bytes, what: str) -> list[bytes]:
    """The elements (tag, length and value each) of a SEQUENCE's value: at least two."""
    items, at = [], 0
    while at < len(der):
        _tag, start, end = _tlv(der, at)
        items.append(der[at:end])
        at = end
    if len(items) < 2:
        raise ValueError(f"not a {what}")
    return items


def _value(element: bytes, tag: int) -> bytes:
    return _one(element, tag, "DER element")
