"""The command line: parse flags, set up logging, run the app until a stop signal.

Stop signals are Ctrl+C and SIGTERM everywhere, and Ctrl+Break or closing the
console window on Windows (:mod:`.stopping`); nothing on the start path is
POSIX-only.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Sequence

from aiohttp import web

from . import tls
from .alerts.console import CONSOLE_KEY, banner
from .app import create_app
from .config import Settings, settings_from_args, startup_warnings
from .logs import configure_logging
from .stopping import on_stop_signal

log = logging.getLogger("notification_service")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it installs (not on Windows): about 11% less CPU per broadcast."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def start_url(settings: Settings) -> str:
    return f"{tls.scheme(settings)}://{settings.host}:{settings.port}{settings.base_path}/"


def locations(settings: Settings) -> str:
    """Where this server keeps its files: printed on start, so nobody has to guess."""
    pages = "the shipped pages" + (f" after your own in {settings.web_root}"
                                   if settings.web_root is not None else "")
    logfile = settings.logfile if settings.logfile is not None else "none (console only)"
    return f"data folder {settings.data_dir}, log file {logfile}, serving {pages}"


def run(settings: Settings) -> None:
    log_writer = configure_logging(settings.loglevel, settings.logfile)
    ssl_context = tls.server_context(settings)
    app = create_app(settings)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    for warning in startup_warnings(settings):
        log.warning("%s", warning)
    log.info("listening on %s; %s", start_url(settings), locations(settings))
    print(banner(start_url(settings), app[CONSOLE_KEY]), flush=True)  # stdout, never the log
    # Our handlers, not aiohttp's: its own use loop.add_signal_handler, which Windows lacks.
    restore_signals = on_stop_signal(loop, _graceful_exit)
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            loop=loop,
            ssl_context=ssl_context,
            shutdown_timeout=settings.shutdown_timeout,
            access_log=logging.getLogger("aiohttp.access"),
            print=None,
            handle_signals=False,
        )
    finally:
        restore_signals()
        log_writer.stop()


def _graceful_exit(signal_name: str) -> None:
    """Run on the loop after a stop signal: aiohttp's run_app shuts down on GracefulExit."""
    log.info("stopping (%s): closing every connection", signal_name)
    raise web.GracefulExit()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["vapid"]:
        from .webpush.keycommand import vapid_command
        return vapid_command(arguments[1:])
    run(settings_from_args(arguments))
    return 0


if __name__ == "__main__":
    sys.exit(main())
