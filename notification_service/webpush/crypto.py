"""RFC 8291 message encryption (aes128gcm) for one push subscription.

The one encryption path the sender, the benchmark and the RFC 8291 Appendix A
test all use. It is pure CPU (about 0.13 ms a message): callers decide where
it runs (inline between awaits, or in worker processes for large fan-outs),
so nothing here does I/O or touches the event loop. cryptography (OpenSSL,
about 9 MB of RSS) and multiprocessing are imported on the first encryption
and the first worker pool, never on import: a server that sends no push
never loads them.
"""

from __future__ import annotations

import base64
import functools
import hmac
import os
import struct
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from cryptography.hazmat.primitives.asymmetric import ec

RECORD_SIZE = 4096
"""One record: push services must accept a 4,096-byte body (RFC 8030 section 7.2)."""
MAX_PLAINTEXT_BYTES = 3993
"""4,096 minus salt (16), record size (4), key id length (1), key id (65),
padding delimiter (1) and AEAD tag (16): the most a message can carry."""
AUTH_SECRET_BYTES = 16
PUBLIC_KEY_BYTES = 65
# record size, then the key id length: the key id is the sender's public key
_HEADER_MIDDLE = struct.pack("!IB", RECORD_SIZE, PUBLIC_KEY_BYTES)


@functools.cache
def _primitives() -> tuple[Any, ...]:
    """cryptography's P-256 key type, curve, ECDH, AES-GCM and point format, imported once."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    return (ec, ec.SECP256R1(), ec.ECDH(), AESGCM, Encoding.X962,
            PublicFormat.UncompressedPoint)


def b64url_decode(value: str) -> bytes:
    """Decode URL-safe base64 with or without padding (browsers send both forms)."""
    text = value.strip().replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


def encrypt(plaintext: bytes, p256dh: bytes, auth: bytes, *,
            server_key: ec.EllipticCurvePrivateKey | None = None,
            salt: bytes | None = None) -> bytes:
    """The aes128gcm body (RFC 8188 + RFC 8291) for a subscription whose keys are ``p256dh`` and ``auth``.

    ``server_key`` and ``salt`` are fresh for every message unless given; only
    the RFC test vector passes them. One record, no padding. HKDF with a
    32-byte (or shorter) output is a single HMAC per step, so each step is
    written as one ``hmac.digest`` call: about a third cheaper than http_ece,
    which the tests use as an independent implementation to decrypt.
    Raises ValueError for a message over :data:`MAX_PLAINTEXT_BYTES` or a
    ``p256dh`` that is not a P-256 point.
    """
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ValueError(f"{len(plaintext)} bytes of message; at most {MAX_PLAINTEXT_BYTES} fit.")
    ec, curve, ecdh, aesgcm, x962, uncompressed = _primitives()
    if server_key is None:
        server_key = ec.generate_private_key(curve)
    if salt is None:
        salt = os.urandom(16)
    shared = server_key.exchange(ecdh, ec.EllipticCurvePublicKey.from_encoded_point(curve, p256dh))
    as_public = server_key.public_key().public_bytes(x962, uncompressed)
    # RFC 8291 section 3.4: IKM = HKDF(auth, ECDH, "WebPush: info" || 0 || ua_public || as_public, 32)
    ikm = _hmac(_hmac(auth, shared), b"WebPush: info\x00" + p256dh + as_public + b"\x01")
    # RFC 8188 section 2.2/2.3: content key and nonce from HKDF(salt, IKM)
    prk = _hmac(salt, ikm)
    key = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    # the only record is the last one: delimiter 2, no padding; sequence number 0 leaves nonce as is
    ciphertext = aesgcm(key).encrypt(nonce, plaintext + b"\x02", None)
    return salt + _HEADER_MIDDLE + as_public + ciphertext


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


def encrypt_many(plaintext: bytes, keys: list[tuple[bytes, bytes]]) -> list[bytes | None]:
    """Encrypt one message for many subscriptions (None for unusable keys); runs in worker processes."""
    bodies: list[bytes | None] = []
    for p256dh, auth in keys:
        try:
            bodies.append(encrypt(plaintext, p256dh, auth))
        except ValueError:
            bodies.append(None)
    return bodies


class LazyProcessPool(Executor):
    """A process pool that starts nothing until the first large fan-out needs it.

    ``ProcessPoolExecutor`` with the spawn context starts multiprocessing's
    resource tracker (a second Python process, about 15 MB) as soon as it is
    built, because its queues create semaphores. A server that never sends a
    Web Push to many subscribers at once should not pay for that: this
    executor builds the real pool on the first ``submit``.
    """

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._shut_down = False

    @property
    def started(self) -> bool:
        """Whether worker processes (and the resource tracker) exist yet."""
        return self._pool is not None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._shut_down:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            # spawn, not fork: the parent has threads (the store's) and a running loop,
            # and spawn is what Windows and macOS do anyway.
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn"))
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shut_down = True
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
            self._pool = None
