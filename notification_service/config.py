"""Settings: the one table of what the server can be told, and how it is told.

Each setting is declared once, as a field of :class:`Settings`: its type, its
default, its flag, its help text and its checks. The argparse parser, the
environment reader and the README's flag table all come from that declaration
(``tests/test_tables.py`` checks the README). Every flag has an environment
variable, ``NOTIFY_`` + the long flag in upper case with dashes as
underscores (``--data-dir`` -> ``NOTIFY_DATA_DIR``); a flag on the command
line wins over the variable, the variable over the default. A repeatable flag
reads a comma-separated variable.

Nothing here opens files or sockets: :func:`create_app` does that.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import ntpath
import os
import posixpath
import socket
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from aiohttp import web

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_WEB_ROOT = Path(__file__).resolve().parent / "web"
"""The pages and scripts we ship (``sources/``, ``static/``): package data, so an installed server has them."""
APP_FOLDER = "notification-server"


def is_source_checkout(root: Path = PROJECT_ROOT) -> bool:
    """True when the package runs from its git checkout (or an editable install of it).

    An installed package sits in ``site-packages`` beside other packages, where
    ``notification_server.py`` and ``pyproject.toml`` are never copied.
    """
    return (root / "notification_server.py").is_file() and (root / "pyproject.toml").is_file()


def default_home(platform: str = sys.platform, environ: Mapping[str, str] = os.environ,
                 checkout: bool | None = None) -> Path:
    """The one folder the default log file and data folder live in; always absolute.

    A source checkout keeps them in the checkout (``log/`` and ``data/``, as
    before, but no longer relative to the working directory); an installed
    package uses the platform's per-user data folder, never ``site-packages``.
    Both defaults hang off this one folder, so starting the server from another
    working directory finds the same VAPID key and databases.
    """
    if checkout if checkout is not None else is_source_checkout():
        return PROJECT_ROOT
    home = Path.home()
    if platform == "win32":
        base = _absolute_or(environ.get("LOCALAPPDATA"), home / "AppData" / "Local", ntpath)
    elif platform == "darwin":
        base = home / "Library" / "Application Support"
    else:  # Linux and the BSDs: the XDG base directory specification
        base = _absolute_or(environ.get("XDG_DATA_HOME"), home / ".local" / "share", posixpath)
    return base / APP_FOLDER


def _absolute_or(value: str | None, fallback: Path, flavour: Any) -> Path:
    """``value`` as a path if it is absolute (XDG says to ignore relative ones), else ``fallback``."""
    if value and flavour.isabs(value):
        return Path(value)
    return fallback


DEFAULT_HOME = default_home()
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
ENV_PREFIX = "NOTIFY_"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
MiB = 1024 * 1024


@dataclass(frozen=True)
class Option:
    """How one setting is spelled on the command line and in the environment.

    :param flag: the long flag (``--data-dir``); the variable's name comes from it.
    :param help: one sentence for ``-h`` and the README: what it does, when to change it.
    :param short: a one-letter flag (``-p``), for the settings people type daily.
    :param shown_default: the default as the README and ``-h`` show it, when the
        value itself reads badly (``64 MiB``, ``off``).
    :param choices: the only values accepted (compared after ``normalise``).
    :param normalise: applied to the text before parsing (``str.upper`` for log levels).
    :param minimum: the smallest number accepted; :param maximum: the largest.
    :param check: called with the parsed value; raises ValueError with a sentence
        that says what to fix.
    :param metavar: the value's name in ``-h``.
    """

    flag: str
    help: str
    short: str | None = None
    shown_default: str | None = None
    choices: tuple[str, ...] | None = None
    normalise: Callable[[str], str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[Any], Any] | None = None
    metavar: str | None = None

    @property
    def env(self) -> str:
        return env_name(self.flag)


def setting(default: Any, flag: str, help: str, **option: Any) -> Any:
    """Declare one setting: a dataclass field that carries its :class:`Option`."""
    metadata = {"option": Option(flag, help, **option)}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _check_vapid_subject(subject: str | None) -> str | None:
    if subject is None:
        return None
    from .webpush.keys import validate_subject
    return validate_subject(subject)


def _check_redis_url(url: str | None) -> str | None:
    if url is None:
        return None
    from .cluster.redis import check_url
    return check_url(url)


def _check_database_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"{url!r} is not a PostgreSQL URL: use "
                         f"postgresql://user:password@host:5432/database")
    return url


def _check_webpush_allow(entries: list[str]) -> list[str]:
    from .webpush.endpoints import HostEntry
    for entry in entries:
        HostEntry.parse(entry)
    return entries


def _check_rate(text: str) -> str:
    from .ratelimit import check_rate
    return check_rate(text)
def _absolute(path: Path | None) -> Path | None:
    """A relative path is taken from the working directory once, at start, and shown absolute."""
    return path.absolute() if path is not None else None


def _check_folder_exists(path: Path | None) -> Path | None:
    if path is not None and not path.is_dir():
        raise ValueError(f"{path}: no such folder (give the folder that holds your "
                         f"sources/ and static/)")
    return path.absolute() if path is not None else None


def _check_base_path(path: str) -> str:
    from .basepath import normalise_base_path
    return normalise_base_path(path)


def _check_file_exists(what: str) -> Callable[[Path | None], Path | None]:
    def check(path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{path}: no such file ({what})")
        return path
    return check


@dataclass
class Settings:
    """Everything the server needs to start. Defaults suit one streamer's PC."""

    # -- the server ------------------------------------------------------
    host: str = setting(
        "127.0.0.1", "--host", "Address to listen on; 0.0.0.0 accepts other machines.",
        short="-H")
    port: int = setting(
        8080, "--port", "Port to listen on; 0 takes any free port.", short="-p",
        minimum=0, maximum=65535)
    loglevel: str = setting(
        "INFO", "--loglevel", "Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.",
        short="-l", choices=LOG_LEVELS, normalise=str.upper)
    log_format: str = setting(
        "text", "--log-format",
        "Log lines as text, or json: one JSON object per line (time, level, logger, "
        "message, event_id and masked channel where there is one).",
        choices=LOG_FORMATS, normalise=str.lower)
    logfile: Path | None = setting(
        DEFAULT_HOME / "log" / "notification_server.log", "--logfile",
        "Log file, rotated at 5 MB with 5 kept; an empty value logs to the console only.",
        short="-f", shown_default="<home>/log/notification_server.log (see Where files go)",
        check=_absolute)
    web_root: Path | None = setting(
        None, "--web-root",
        "Folder of your own pages: its sources/ and static/ are served before the shipped "
        "ones, so a file of yours replaces the shipped file of the same name.",
        shown_default="none (the shipped pages only)", check=_check_folder_exists)
    data_dir: Path = setting(
        DEFAULT_HOME / "data", "--data-dir",
        "Folder for keys and databases, created on start.",
        shown_default="<home>/data (see Where files go)", check=_absolute)
    tls_cert: Path | None = setting(
        None, "--tls-cert",
        "PEM certificate (chain) file: serve HTTPS and WSS directly; needs --tls-key.",
        shown_default="off (plain HTTP)", metavar="PEM",
        check=_check_file_exists("give the certificate file, e.g. Let's Encrypt's "
                                 "fullchain.pem"))
    tls_key: Path | None = setting(
        None, "--tls-key", "PEM private key file of --tls-cert.", shown_default="off",
        metavar="PEM",
        check=_check_file_exists("give the private key file, e.g. Let's Encrypt's "
                                 "privkey.pem"))
    base_path: str = setting(
        "", "--base-path",
        "URL path the server answers under behind a reverse proxy (/notify): every route, "
        "the socket.io path and the shipped pages follow it.", shown_default="none (/)",
        metavar="PATH", check=_check_base_path)
    trust_proxy: int = setting(
        0, "--trust-proxy",
        "Reverse proxies in front of this server: the client address is read from the "
        "X-Forwarded-For (or Forwarded) entry that many hops from the right; 0 uses the "
        "TCP peer and ignores those headers.", minimum=0, maximum=10, metavar="HOPS")
    shutdown_timeout: float = setting(
        1.0, "--shutdown-timeout",
        "Seconds open requests get to finish when the server stops.", minimum=0)
    # -- who may connect, how fast --------------------------------------------
    allowed_hosts: list[str] = setting(
        [], "--allowed-host",
        "Host name this server answers for besides its --host, IP addresses, localhost and "
        "*.localhost (.example.com for subdomains, '*' for any); repeatable. Other Host "
        "headers get 421: a page on another site cannot reach it by DNS rebinding.",
        shown_default="none", metavar="HOST")
    header_timeout: float = setting(
        10.0, "--header-timeout",
        "Seconds a client has to send its request headers (and an idle kept-alive "
        "connection stays open).", minimum=0.1)
    body_timeout: float = setting(
        10.0, "--body-timeout",
        "Seconds a client has to send a request body once its headers arrived (408 after).",
        minimum=0.1)
    max_connections_per_address: int = setting(
        256, "--max-connections-per-address",
        "Open connections one client address may have; more are closed at once.",
        minimum=1)
    publish_rate: str = setting(
        "600/min", "--publish-rate",
        "Publishes one client address may make (10/s, 600/min, 1000/hour or off); this "
        "machine's own address is exempt.", check=_check_rate, metavar="RATE")
    lookup_rate: str = setting(
        "120/min", "--lookup-rate",
        "Channel look-ups one client address may make (polling, SSE streams, socket.io "
        "registrations), this machine included: bounds guessing codes.", check=_check_rate,
        metavar="RATE")
    subscribe_rate: str = setting(
        "10/min", "--subscribe-rate", "Web Push subscriptions one client address may make.",
        check=_check_rate, metavar="RATE")
    token_failure_rate: str = setting(
        "10/min", "--token-failure-rate",
        "Wrong tokens or secrets one client address may send; past it every token check "
        "from that address is refused for a while.", check=_check_rate, metavar="RATE")
    # -- scale-out: several nodes on one Redis, durable stores on PostgreSQL --
    redis_url: str | None = setting(
        None, "--redis-url",
        "Redis shared by every node (redis://, rediss:// or unix://); unset runs one "
        "process with nothing shared.", shown_default="off (one process)",
        check=_check_redis_url)
    redis_prefix: str = setting(
        "notify", "--redis-prefix", "Prefix of every Redis key this server uses.")
    database_url: str | None = setting(
        None, "--database-url",
        "PostgreSQL (postgresql://...) for the durable stores: space secrets, Web Push "
        "subscriptions, alert designs; unset uses SQLite files in the data folder.",
        shown_default="off (SQLite)", check=_check_database_url)
    node_name: str = setting(
        f"{socket.gethostname()}-{os.getpid()}", "--node-name",
        "This node's name among the nodes sharing Redis.", shown_default="host name and pid")
    ws_emit_channel: str = setting(
        "flask-socketio", "--ws-emit-channel",
        "Redis pub/sub channel whose flask-socketio emits one elected node publishes "
        "(with --redis-url; flask-socketio's default channel name).")
    ws_emit_pickle: bool = setting(
        False, "--ws-emit-pickle",
        "Also accept pickled messages on --ws-emit-channel (old flask-socketio emitters), "
        "read as plain data only: every class or function in them is refused.")
    # -- history, for clients that resume ---------------------------------
    history_size: int = setting(
        100, "--history-size", "Events kept per channel for clients that resume.", minimum=0)
    history_age: float = setting(
        600.0, "--history-age", "Seconds an event is kept for clients that resume, on every "
        "channel (also one nobody publishes to again).", minimum=0)
    history_bytes: int = setting(
        64 * MiB, "--history-bytes", "Memory the kept history may use across all channels, in "
        "bytes: event data as JSON plus its bookkeeping.", shown_default="64 MiB", minimum=0)
    idempotency_bytes: int = setting(
        8 * MiB, "--idempotency-bytes", "Memory the answers remembered for idempotency keys may "
        "use, in bytes (the oldest is forgotten first; event data is never kept).",
        shown_default="8 MiB", minimum=0)
    # -- who may publish and administer -------------------------------------
    publish_token: str | None = setting(
        None, "--publish-token",
        "Token every publisher must send (Authorization: Bearer, or &token= on trigger "
        "URLs); set it whenever other machines can reach the server.", shown_default="off")
    admin_token: str | None = setting(
        None, "--admin-token",
        "Token for admin routes (Authorization: Bearer). Unset, the console and the alert "
        "box's routes use a token generated in <data dir>/admin_token; the other admin routes "
        "stay off.", shown_default="off")
    metrics_public: bool = setting(
        False, "--metrics-public",
        "Serve GET /metrics (Prometheus) without the admin token, for a scraper on a "
        "private network.")
    secret: str | None = setting(
        None, "--secret",
        "Secret that enables POST /emit (ws-emit's --secret), sent as \"secret\" in the "
        "JSON body or as Authorization: Bearer.", shown_default="off")
    # -- publishing and listening limits ------------------------------------
    max_payload_bytes: int = setting(
        64 * 1024, "--max-payload-bytes",
        "Largest event data /emit and /broadcast accept, in bytes (413 above).", minimum=0)
    max_channels_per_connection: int = setting(
        100, "--max-channels-per-connection",
        "Channels one socket.io connection may listen on; more are refused in the "
        "acknowledgement.", minimum=1)
    max_spaces: int = setting(
        10_000, "--max-spaces", "Private spaces whose secrets the server keeps (507 past it).",
        minimum=0)
    spaces_max_bytes: int = setting(
        8 * MiB, "--spaces-max-bytes", "Bytes of space names and secrets kept, in total.",
        shown_default="8 MiB", minimum=0)
    max_connections_per_application: int = setting(
        10_000, "--max-connections-per-application",
        "Identified (JWT) connections one application may have at once (429 past it).",
        minimum=0)
    max_identified_connections: int = setting(
        100_000, "--max-identified-connections",
        "Identified (JWT) connections of all applications together (507 past it).",
        minimum=0)
    output_budget: int = setting(
        MiB, "--output-budget",
        "Bytes one connection (socket.io, polling or SSE) may have waiting, replays included; "
        "past it the connection is closed as too slow and its client resumes.",
        shown_default="1 MiB", minimum=1024)
    cors_origins: list[str] = setting(
        [], "--cors-origin",
        "Origin (scheme://host:port) whose pages may use socket.io and the HTTP API; "
        "repeatable, '*' for any.", shown_default="same origin only", metavar="ORIGIN")
    # -- the alert box: designs, media, the console ----------------------------
    alert_designs: Path | None = setting(
        None, "--alert-designs",
        "JSON file of alert designs read at start: one configuration (as GET "
        "/codes/{code}/alerts answers) for every code without its own, or {\"codes\": "
        "{\"<code>\": ...}}; codes named in it replace their stored designs.",
        shown_default="off", metavar="JSON",
        check=_check_file_exists("give the JSON file of alert designs to load"))
    alert_media_max_bytes: int = setting(
        16 * MiB, "--alert-media-max-bytes",
        "Largest file the console may upload for alerts (images, GIFs, videos, sounds), in "
        "bytes.", shown_default="16 MiB", minimum=1)
    alert_media_total_bytes: int = setting(
        512 * MiB, "--alert-media-total-bytes",
        "Uploaded alert media kept at most, in bytes, across all codes (507 past it).",
        shown_default="512 MiB", minimum=0)
    # -- Web Push ----------------------------------------------------------
    vapid_subject: str | None = setting(
        None, "--vapid-subject",
        "Contact push services may use: mailto:you@example.com or https://your.site "
        "(checked strictly: Apple rejects malformed ones).",
        shown_default="mailto:webpush@example.com, with a warning", check=_check_vapid_subject)
    vapid_key: Path | None = setting(
        None, "--vapid-key", "VAPID private key file (PEM); it must exist.",
        shown_default="<data dir>/vapid_private.pem, generated on first start", metavar="PEM")
    webpush_allow: list[str] = setting(
        [], "--webpush-allow",
        "Also accept subscription endpoints on HOST (.example.com for subdomains; "
        "HOST:PORT or HOST:* for ports other than 443; IP addresses only when named "
        "exactly); repeatable. Google, Mozilla, Apple and Microsoft are always allowed.",
        shown_default="none", metavar="HOST", check=_check_webpush_allow)
    webpush_allow_http: bool = setting(
        False, "--webpush-allow-http",
        "Accept plain http:// endpoints on allowed hosts (local testing only).")
    webpush_concurrency: int = setting(
        64, "--webpush-concurrency", "Pushes in flight at once.", minimum=1)
    webpush_timeout: float = setting(
        10.0, "--webpush-timeout", "Seconds one push request may take.", minimum=0.1)
    webpush_retries: int = setting(
        3, "--webpush-retries", "Retries of a push answered 429 or 503.", minimum=0)
    webpush_retry_base_delay: float = setting(
        1.0, "--webpush-retry-base-delay",
        "Seconds before the first retry of a push; each next retry waits twice as long.",
        minimum=0)
    webpush_max_retry_delay: float = setting(
        60.0, "--webpush-max-retry-delay",
        "Longest wait before a retry; a longer Retry-After fails the push.", minimum=0)
    webpush_crypto_processes: int = setting(
        1, "--webpush-crypto-processes",
        "Worker processes that encrypt fan-outs of 256 subscriptions or more, started on "
        "first use; 0 encrypts in the server process.", minimum=0)
    webpush_max_subscriptions: int = setting(
        100_000, "--webpush-max-subscriptions",
        "Subscriptions this server stores at most (subscribing needs no token, so this "
        "bounds the database).", minimum=0)
    webpush_max_bytes: int = setting(
        128 * MiB, "--webpush-max-bytes",
        "Bytes the stored subscriptions may take (endpoints, keys, ids, groups, channels "
        "and their indexes).", shown_default="128 MiB", minimum=0)
    webpush_prune_failures: int = setting(
        10, "--webpush-prune-failures",
        "Consecutive failed pushes after which a subscription is removed, once they span "
        "--webpush-prune-days.", minimum=1)
    webpush_prune_days: float = setting(
        7.0, "--webpush-prune-days",
        "Days a subscription must keep failing before it is removed.", minimum=0)
    # -- JWT listeners and SSE -----------------------------------------------
    jwt_secret: str | None = setting(
        None, "--jwt-secret",
        "HS256 secret that verifies listeners' JWTs (SSE, socket.io auth.token, "
        "/connections); the seed's JWT_SECRET. Use 32+ random bytes.", shown_default="off")
    jwt_public_key: Path | None = setting(
        None, "--jwt-public-key",
        "PEM public key file that verifies JWTs: an RSA key accepts RS256, an EC P-256 "
        "key ES256.", shown_default="off", metavar="PEM",
        check=_check_file_exists("give the PEM public key that verifies your issuer's "
                                 "RS256/ES256 tokens"))
    jwt_leeway: float = setting(
        10.0, "--jwt-leeway", "Seconds of clock skew tolerated on a JWT's exp and iat.",
        minimum=0)
    sse_ping_interval: float = setting(
        30.0, "--sse-ping-interval", "Seconds between ping events on SSE streams.",
        minimum=0.1)
    sse_queue_size: int = setting(
        256, "--sse-queue-size",
        "Events an SSE stream may have queued before its client is cut off as too slow.",
        minimum=1)
    sse_queue_bytes: int = setting(
        MiB, "--sse-queue-bytes",
        "Bytes an SSE stream may have waiting before its client is cut off as too slow; the "
        "smaller of this and --output-budget applies (kept for existing command lines).",
        shown_default="1 MiB", minimum=1)
    sse_retry_ms: int = setting(
        3000, "--sse-retry",
        "Milliseconds browsers wait before reconnecting a dropped SSE stream (the retry: "
        "hint).", minimum=0)

    @property
    def web_roots(self) -> list[Path]:
        """The folders pages are served from, the user's own (--web-root) before the shipped."""
        return [PACKAGE_WEB_ROOT] if self.web_root is None else [self.web_root, PACKAGE_WEB_ROOT]


# -- the table, read three ways: argparse, the environment, the README --------

@dataclass(frozen=True)
class Declared:
    """One row of the settings table: the field, its type and its option."""

    name: str
    kind: Any
    default: Any
    option: Option

    @property
    def optional(self) -> bool:
        return type(None) in typing.get_args(self.kind)

    @property
    def base(self) -> Any:
        """The type without ``| None``: str, int, float, bool, Path or list[str]."""
        arguments = [a for a in typing.get_args(self.kind) if a is not type(None)]
        if typing.get_origin(self.kind) is list:
            return list
        return arguments[0] if self.optional else self.kind

    @property
    def repeatable(self) -> bool:
        return self.base is list

    @property
    def switch(self) -> bool:
        return self.base is bool

    def parse(self, text: str) -> Any:
        """The value ``text`` stands for; ValueError with a sentence if it is none."""
        option = self.option
        if self.switch:
            word = text.strip().lower()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
            raise ValueError(f"{text!r} is not a yes/no value (use 1 or 0)")
        if self.repeatable:
            return [item.strip() for item in text.split(",") if item.strip()]
        if option.normalise is not None:
            text = option.normalise(text)
        if self.optional and text == "":
            return None
        if option.choices is not None and text not in option.choices:
            raise ValueError(f"{text!r} is not one of {', '.join(option.choices)}")
        if self.base in (int, float):
            try:
                number = self.base(text)
            except ValueError:
                kind = "a whole number" if self.base is int else "a number"
                raise ValueError(f"{text!r} is not {kind}") from None
            if option.minimum is not None and number < option.minimum:
                raise ValueError(f"{number} is below the smallest allowed value, "
                                 f"{option.minimum:g}")
            if option.maximum is not None and number > option.maximum:
                raise ValueError(f"{number} is above the largest allowed value, "
                                 f"{option.maximum:g}")
            return number
        if self.base is Path:
            return Path(text)
        return text

    def finish(self, value: Any) -> Any:
        """Run the option's own check on a parsed (or default) value."""
        if self.option.check is not None:
            return self.option.check(value)
        return value

    @property
    def shown_default(self) -> str:
        option = self.option
        if option.shown_default is not None:
            return option.shown_default
        if self.switch:
            return "off"
        if isinstance(self.default, float) and self.default.is_integer():
            return str(int(self.default))
        return str(self.default)


def declared_settings(names: Iterable[str] | None = None) -> list[Declared]:
    """The settings table in declaration order (only ``names``, if given)."""
    hints = typing.get_type_hints(Settings)
    wanted = set(names) if names is not None else None
    rows = []
    for item in dataclasses.fields(Settings):
        if wanted is not None and item.name not in wanted:
            continue
        default = (item.default_factory() if item.default_factory is not dataclasses.MISSING
                   else item.default)
        rows.append(Declared(item.name, hints[item.name], default, item.metadata["option"]))
    return rows


def add_options(parser: argparse.ArgumentParser, rows: Iterable[Declared]) -> None:
    """Add each row's flag to ``parser``; its default comes from its variable, if set.

    A value from the environment is parsed and checked like one from the command
    line, and a bad one names the variable.
    """
    for row in rows:
        option = row.option
        flags = [option.short, option.flag] if option.short else [option.flag]
        default = row.default
        raw = os.environ.get(option.env)
        if raw is not None:
            try:
                default = row.parse(raw)
            except ValueError as error:
                parser.error(f"{option.env}={raw!r}: {error}")
        help_text = f"{option.help} Default: {row.shown_default}. [env: {option.env}]".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": row.name, "default": default, "help": help_text}
        if row.switch:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _argparse_type(row)
            kwargs["metavar"] = option.metavar or row.name.upper()
            if row.repeatable:
                kwargs["action"] = _ExtendFromDefault
        parser.add_argument(*flags, **kwargs)


def _argparse_type(row: Declared) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        if row.repeatable:  # one value per flag on the command line; commas only in variables
            return text.strip()
        try:
            return row.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    convert.__name__ = row.option.flag  # argparse names it in "invalid ... value"
    return convert


class _ExtendFromDefault(argparse.Action):
    """A repeatable flag: values given on the command line replace the variable's list."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        seen = f"_{self.dest}_given"
        current = getattr(namespace, self.dest) if getattr(namespace, seen, False) else []
        setattr(namespace, seen, True)
        setattr(namespace, self.dest, [*current, values])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notification_server.py",
        description="Browser Notification Service: real-time events to web pages "
                    "(socket.io, SSE) and Web Push to browsers.")
    add_options(parser, declared_settings())
    return parser


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    """Settings from the command line and the environment; exits 2 with a sentence if wrong."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for row in declared_settings():
        try:
            values[row.name] = row.finish(getattr(arguments, row.name))
        except ValueError as error:
            parser.error(f"{row.option.flag}: {error}")
    return Settings(**values)


def markdown_table() -> str:
    """The README's flag table, made from the declarations."""
    lines = ["| flag | environment variable | default | meaning |",
             "| --- | --- | --- | --- |"]
    for row in declared_settings():
        option = row.option
        flags = f"`{option.short}`, `{option.flag}`" if option.short else f"`{option.flag}`"
        env = f"`{option.env}`" + (" (comma-separated)" if row.repeatable else "")
        lines.append(f"| {flags} | {env} | {row.shown_default} | {option.help} |")
    return "\n".join(lines)


def startup_warnings(settings: Settings) -> list[str]:
    """What an operator should hear about before the first request arrives."""
    warnings = []
    if settings.publish_token is None and not is_loopback_host(settings.host):
        warnings.append(
            f"Listening on {settings.host} without a publish token: anyone who can reach "
            f"this address can publish to every channel. Set --publish-token "
            f"(or {env_name('--publish-token')}).")
    if settings.redis_url is not None and settings.database_url is None:
        warnings.append(
            "--redis-url without --database-url: this node keeps its own space secrets and "
            "Web Push subscriptions in SQLite, so a secret set or a browser subscribed "
            "through another node is unknown here. Give every node the same --database-url.")
    return warnings


def is_loopback_host(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name or "" (all interfaces): assume reachable


SETTINGS_KEY = web.AppKey("settings", Settings)
