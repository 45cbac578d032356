"""Settings from command-line flags and environment variables.

Every flag has an environment variable (``NOTIFY_`` + the long flag name in
upper case, dashes as underscores: ``--data-dir`` -> ``NOTIFY_DATA_DIR``); a
flag on the command line wins over the variable, the variable over the default.
Nothing here opens files or sockets: :func:`create_app` does that.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from aiohttp import web

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENV_PREFIX = "NOTIFY_"


@dataclass
class Settings:
    """Everything the server needs to start. Defaults suit one streamer's PC."""

    host: str = "127.0.0.1"
    port: int = 8080
    loglevel: str = "INFO"
    logfile: Path | None = PROJECT_ROOT / "log" / "notification_server.log"
    web_root: Path = PROJECT_ROOT
    data_dir: Path = Path("data")
    history_size: int = 100
    history_age: float = 600.0
    history_bytes: int = 64 * 1024 * 1024
    publish_token: str | None = None
    admin_token: str | None = None
    shutdown_timeout: float = 1.0
    # Publishing (POST /emit, POST /broadcast, channels; see docs/publish.md).
    secret: str | None = None
    max_payload_bytes: int = 64 * 1024
    max_channels_per_connection: int = 100
    cors_origins: list[str] = field(default_factory=list)
    # Web Push (notification_service/webpush)
    vapid_subject: str | None = None
    vapid_key: Path | None = None
    webpush_allow: list[str] = field(default_factory=list)
    webpush_allow_http: bool = False
    webpush_concurrency: int = 64
    webpush_timeout: float = 10.0
    webpush_retries: int = 3
    webpush_retry_base_delay: float = 1.0
    webpush_max_retry_delay: float = 60.0
    webpush_crypto_processes: int = 1
    webpush_max_subscriptions: int = 100_000
    jwt_secret: str | None = None
    jwt_public_key: Path | None = None
    jwt_leeway: float = 10.0
    sse_ping_interval: float = 30.0
    sse_queue_size: int = 256
    sse_queue_bytes: int = 1 << 20
    sse_retry_ms: int = 3000


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def add_option(parser: argparse.ArgumentParser | Any, *flags: str, **kwargs: Any) -> None:
    """Add a flag whose default comes from its environment variable.

    The variable's name is appended to the help text so ``-h`` documents it.
    ``action="append"`` options read a comma-separated variable.
    """
    long_flag = next(f for f in flags if f.startswith("--"))
    variable = env_name(long_flag)
    raw = os.environ.get(variable)
    if raw is not None:
        if kwargs.get("action") == "append":
            kwargs["default"] = [item.strip() for item in raw.split(",") if item.strip()]
        elif kwargs.get("action") == "store_true":
            kwargs["default"] = raw.strip().lower() in ("1", "true", "yes", "on")
        else:
            kwargs["default"] = raw
    help_text = kwargs.get("help", "")
    kwargs["help"] = f"{help_text} [env: {variable}]".strip()
    parser.add_argument(*flags, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notification_server.py",
        description="Browser Notification Service: real-time events to web pages "
                    "(socket.io, SSE) and Web Push to browsers.",
    )
    defaults = Settings()
    add_option(parser, "-H", "--host", default=defaults.host,
               help="Address to listen on. Use 0.0.0.0 to accept other machines.")
    add_option(parser, "-p", "--port", type=int, default=defaults.port,
               help="Listener port number. Default is 8080.")
    add_option(parser, "-l", "--loglevel", type=str.upper, choices=LOG_LEVELS,
               default=defaults.loglevel, help="Log level. INFO is the default.")
    add_option(parser, "-f", "--logfile", default=str(defaults.logfile),
               help="Log file, rotated by size; an empty value logs to the console only.")
    add_option(parser, "--web-root", default=str(defaults.web_root),
               help="Folder holding sources/ and static/. Default: the project folder.")
    add_option(parser, "--data-dir", default=str(defaults.data_dir),
               help="Folder for keys and databases, created on start. Default: ./data")
    add_option(parser, "--history-size", type=int, default=defaults.history_size,
               help="Events kept per channel for clients that reconnect. Default: 100.")
    add_option(parser, "--history-age", type=float, default=defaults.history_age,
               help="Seconds an event is kept for clients that reconnect. Default: 600.")
    add_option(parser, "--history-bytes", type=int, default=defaults.history_bytes,
               help="Event data kept across all channels, in bytes. Default: 64 MiB.")
    add_option(parser, "--publish-token", default=None,
               help="Token every publisher must send (Authorization: Bearer, or &token= "
                    "on trigger URLs). Off by default; set it when binding to a public address.")
    add_option(parser, "--admin-token", default=None,
               help="Token for admin routes (Authorization: Bearer).")
    add_option(parser, "--secret", default=None,
               help="Secret that enables POST /emit (ws-emit's --secret): sent as \"secret\" "
                    "in the JSON body or as Authorization: Bearer. Off by default.")
    add_option(parser, "--max-payload-bytes", type=int, default=defaults.max_payload_bytes,
               help="Largest event data /emit and /broadcast accept, in bytes (413 above). "
                    "Default: 65536.")
    add_option(parser, "--max-channels-per-connection", type=int,
               default=defaults.max_channels_per_connection,
               help="Channels one socket.io connection may listen on; more are refused in "
                    "the acknowledgement. Default: 100.")
    add_option(parser, "--cors-origin", action="append", dest="cors_origins", default=None,
               help="Origin (scheme://host:port) whose pages may use socket.io and the HTTP "
                    "API; repeat for more, '*' for any. Default: same origin only.")
    add_webpush_options(parser, defaults)
    add_option(parser, "--jwt-secret", default=None,
               help="HS256 secret that verifies listeners' JWTs (SSE, socket.io auth.token, "
                    "/connections); the seed's JWT_SECRET. Use 32+ random bytes.")
    add_option(parser, "--jwt-public-key", default=None,
               help="PEM public key file that verifies JWTs: an RSA key accepts RS256, "
                    "an EC P-256 key ES256.")
    add_option(parser, "--jwt-leeway", type=float, default=defaults.jwt_leeway,
               help="Seconds of clock skew tolerated on a JWT's exp and iat. Default: 10.")
    add_option(parser, "--sse-ping-interval", type=float, default=defaults.sse_ping_interval,
               help="Seconds between ping events on SSE streams. Default: 30.")
    add_option(parser, "--sse-queue-size", type=int, default=defaults.sse_queue_size,
               help="Events an SSE stream may have waiting before its client is cut off "
                    "as too slow. Default: 256.")
    add_option(parser, "--sse-queue-bytes", type=int, default=defaults.sse_queue_bytes,
               help="Bytes an SSE stream may have waiting before its client is cut off "
                    "as too slow. Default: 1048576 (1 MiB).")
    add_option(parser, "--sse-retry", type=int, default=defaults.sse_retry_ms,
               help="Milliseconds browsers wait before reconnecting a dropped SSE stream "
                    "(the retry: hint). Default: 3000.")
    return parser


def add_webpush_options(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    add_option(parser, "--vapid-subject", default=None,
               help="Contact push services may use: mailto:you@example.com or https://your.site "
                    "(checked strictly: Apple rejects malformed ones).")
    add_vapid_key_option(parser)
    add_option(parser, "--webpush-allow", action="append", default=[], metavar="HOST",
               help="Also accept subscription endpoints on HOST (.example.com for subdomains); "
                    "repeatable. Google, Mozilla, Apple and Microsoft are always allowed.")
    add_option(parser, "--webpush-allow-http", action="store_true", default=False,
               help="Accept plain http:// endpoints on allowed hosts (local testing only).")
    add_option(parser, "--webpush-concurrency", type=int, default=defaults.webpush_concurrency,
               help="Pushes in flight at once. Default: 64.")
    add_option(parser, "--webpush-timeout", type=float, default=defaults.webpush_timeout,
               help="Seconds one push request may take. Default: 10.")
    add_option(parser, "--webpush-retries", type=int, default=defaults.webpush_retries,
               help="Retries of a push answered 429/503. Default: 3.")
    add_option(parser, "--webpush-max-retry-delay", type=float,
               default=defaults.webpush_max_retry_delay,
               help="Longest wait before a retry; a longer Retry-After fails the push. Default: 60.")
    add_option(parser, "--webpush-crypto-processes", type=int,
               default=defaults.webpush_crypto_processes,
               help="Worker processes that encrypt fan-outs of 256 subscriptions or more, "
                    "started on first use; 0 encrypts in the server process. Default: 1.")
    add_option(parser, "--webpush-max-subscriptions", type=int,
               default=defaults.webpush_max_subscriptions,
               help="Subscriptions this server stores at most (subscribing needs no token, so "
                    "this bounds the database). Default: 100000.")


def add_vapid_key_option(parser: argparse.ArgumentParser) -> None:
    add_option(parser, "--vapid-key", default=None, metavar="PEM",
               help="VAPID private key file (PEM). It must exist. Default: "
                    "<data dir>/vapid_private.pem, generated on first start.")


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.loglevel not in LOG_LEVELS:  # argparse checks choices on the command line only
        parser.error(f"log level {args.loglevel!r} is not one of {', '.join(LOG_LEVELS)}")
    if args.jwt_public_key and not Path(args.jwt_public_key).is_file():
        parser.error(f"--jwt-public-key {args.jwt_public_key}: no such file (give the PEM "
                     f"public key that verifies your issuer's RS256/ES256 tokens)")
    return Settings(
        host=args.host,
        port=int(args.port),
        loglevel=args.loglevel,
        logfile=Path(args.logfile) if args.logfile else None,
        web_root=Path(args.web_root),
        data_dir=Path(args.data_dir),
        history_size=int(args.history_size),
        history_age=float(args.history_age),
        history_bytes=int(args.history_bytes),
        publish_token=args.publish_token or None,
        admin_token=args.admin_token or None,
        secret=args.secret or None,
        max_payload_bytes=int(args.max_payload_bytes),
        max_channels_per_connection=int(args.max_channels_per_connection),
        cors_origins=list(args.cors_origins or []),
        vapid_subject=_vapid_subject(parser, args.vapid_subject),
        vapid_key=Path(args.vapid_key) if args.vapid_key else None,
        webpush_allow=list(args.webpush_allow),
        webpush_allow_http=bool(args.webpush_allow_http),
        webpush_concurrency=int(args.webpush_concurrency),
        webpush_timeout=float(args.webpush_timeout),
        webpush_retries=int(args.webpush_retries),
        webpush_max_retry_delay=float(args.webpush_max_retry_delay),
        webpush_crypto_processes=int(args.webpush_crypto_processes),
        webpush_max_subscriptions=int(args.webpush_max_subscriptions),
        jwt_secret=args.jwt_secret or None,
        jwt_public_key=Path(args.jwt_public_key) if args.jwt_public_key else None,
        jwt_leeway=float(args.jwt_leeway),
        sse_ping_interval=float(args.sse_ping_interval),
        sse_queue_size=int(args.sse_queue_size),
        sse_queue_bytes=int(args.sse_queue_bytes),
        sse_retry_ms=int(args.sse_retry),
    )


def startup_warnings(settings: Settings) -> list[str]:
    """What an operator should hear about before the first request arrives."""
    warnings = []
    if settings.publish_token is None and not is_loopback_host(settings.host):
        warnings.append(
            f"Listening on {settings.host} without a publish token: anyone who can reach "
            f"this address can publish to every channel. Set --publish-token "
            f"(or {env_name('--publish-token')}).")
    return warnings


def is_loopback_host(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name or "" (all interfaces): assume reachable


def _vapid_subject(parser: argparse.ArgumentParser, subject: str | None) -> str | None:
    if not subject:
        return None
    from .webpush.keys import validate_subject
    try:
        return validate_subject(subject)
    except ValueError as error:
        parser.error(str(error))


SETTINGS_KEY = web.AppKey("settings", Settings)
