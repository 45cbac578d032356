"""HTTPS and WSS served directly (``--tls-cert``, ``--tls-key``).

Browsers allow Web Push, and an internet-facing trigger URL keeps its token
secret, only over TLS. The server can terminate it itself; behind a reverse
proxy (nginx, Caddy) or a tunnel, the proxy does and this stays off. The
context is made once at start: a certificate that does not load stops the
start with a sentence naming the file, never at the first client.

This module must never generate or download a certificate.
"""

from __future__ import annotations

import ssl

from .config import Settings
from .errors import StartupError


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for the listening socket, or None for plain HTTP."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = ("--tls-cert", "--tls-key") if key is None else ("--tls-key",
                                                                          "--tls-cert")
        raise StartupError(f"{given} was given without {missing}: HTTPS needs both the "
                           f"certificate and its private key.")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as error:
        raise StartupError(
            f"{cert} and {key} are not a PEM certificate and its private key "
            f"({error.reason or error}): give the certificate chain (fullchain.pem) to "
            f"--tls-cert and the key (privkey.pem) to --tls-key.") from None
    except OSError as error:
        raise StartupError(f"Cannot read {error.filename or cert}: {error.strerror}.") from None
    return context


def scheme(settings: Settings) -> str:
    """``https`` when the server terminates TLS itself, else ``http``."""
    return "https" if settings.tls_cert is not None else "http"
