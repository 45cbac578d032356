"""The command line: parse flags, set up logging, run the app until a stop signal.

Start-up either works or stops with exit code 2 and one sentence naming the
file or address and what to do (:class:`~.errors.StartupError`, caught in
:func:`run` and only there): never a traceback. "listening on" is logged once
the port is really bound, with the absolute paths of what the server uses.
Stop signals are Ctrl+C and SIGTERM everywhere, and Ctrl+Break or closing the
console window on Windows (:mod:`.stopping`); nothing on the start path is
POSIX-only.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
from typing import Sequence

from aiohttp import web

from . import gctuning, hangup, tls
from .alerts.console import CONSOLE_KEY, banner
from .app import create_app
from .config import Settings, settings_from_args, startup_warnings
from .errors import StartupError
from .http_limits import install_connection_cap
from .logs import configure_logging
from .stopping import on_stop_signal

log = logging.getLogger("notification_service")
PROGRAM = "notification_server.py"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it installs (not on Windows): about 11% less CPU per broadcast."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def start_url(settings: Settings, port: int) -> str:
    return f"{tls.scheme(settings)}://{settings.host}:{port}{settings.base_path}/"


def locations(settings: Settings) -> str:
    """Where this server keeps its files, as absolute paths: printed on start."""
    pages = "the shipped pages" + (f" after your own in {settings.web_root.resolve()}"
                                   if settings.web_root is not None else "")
    logfile = settings.logfile.resolve() if settings.logfile is not None else "none (console only)"
    return f"data folder {settings.data_dir.resolve()}, log file {logfile}, serving {pages}"


def bind_failure(host: str, port: int, error: OSError) -> StartupError:
    """Why ``host:port`` could not be bound, as the sentence the operator needs."""
    address = f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return StartupError(f"{address} is already in use by another program (another copy "
                            f"of this server?): stop it, or choose another port with -p.")
    if isinstance(error, socket.gaierror):
        return StartupError(f"Cannot listen on '{host}': no such address or host name. Use "
                            f"127.0.0.1 (this machine only) or 0.0.0.0 (every network) "
                            f"with -H.")
    if error.errno == errno.EADDRNOTAVAIL:
        return StartupError(f"Cannot listen on {host}: this machine has no such address. Use "
                            f"127.0.0.1 or 0.0.0.0 with -H.")
    if error.errno in (errno.EACCES, errno.EPERM):
        return StartupError(f"Not allowed to listen on {address} (ports below 1024 need "
                            f"administrator rights): choose a port above 1024 with -p.")
    return StartupError(f"Cannot listen on {address}: {error.strerror or error}.")


async def until_stopped() -> None:
    """Return when a stop signal arrives (our handlers: aiohttp's need add_signal_handler,
    which Windows lacks)."""
    stopped = asyncio.Event()

    def stop(signal_name: str) -> None:
        log.info("stopping (%s): closing every connection", signal_name)
        stopped.set()

    restore_signals = on_stop_signal(asyncio.get_running_loop(), stop)
    try:
        await stopped.wait()
    finally:
        restore_signals()


async def serve(settings: Settings, app: web.Application) -> None:
    """Open the app's resources, bind, say where everything is, serve until stopped."""
    ssl_context = tls.server_context(settings)
    runner = web.AppRunner(app, shutdown_timeout=settings.shutdown_timeout,
                           access_log=logging.getLogger("aiohttp.access"))
    try:
        await runner.setup()
        install_connection_cap(runner, settings)
        hangup.install(runner.server)
        site = web.TCPSite(runner, settings.host, settings.port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as error:
            raise bind_failure(settings.host, settings.port, error) from None
        gctuning.settle_after_startup()
        for warning in startup_warnings(settings):
            log.warning("%s", warning)
        port = runner.addresses[0][1] if runner.addresses else settings.port
        log.info("listening on %s; %s", start_url(settings, port), locations(settings))
        print(banner(start_url(settings, port), app[CONSOLE_KEY]), flush=True)  # never the log
        await until_stopped()
    finally:
        await runner.cleanup()


def run(settings: Settings) -> int:
    """Run the server; 0 after a clean stop, 2 (and one sentence on stderr) if it cannot start."""
    log_writer = None
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        log_writer = configure_logging(settings.loglevel, settings.logfile, settings.log_format)
        loop.run_until_complete(serve(settings, create_app(settings)))
    except StartupError as error:  # the one place: every start-up failure is a sentence
        if log_writer is not None:
            log_writer.stop()  # the lines before it first
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl+C before the stop handlers were set
        pass
    finally:
        loop.close()
        if log_writer is not None:
            log_writer.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["vapid"]:
        from .webpush.keycommand import vapid_command
        return vapid_command(arguments[1:])
    return run(settings_from_args(arguments))


if __name__ == "__main__":
    sys.exit(main())
