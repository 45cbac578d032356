"""create_app(settings): wires the hub, transports, producers and static hosting.

The only module that knows every part; nothing imports it but the CLI and tests.
"""

from __future__ import annotations

from aiohttp import web

from . import cors, operations, spaces
from .access import ACCESS_KEY, ChannelAccess
from .config import SETTINGS_KEY, Settings
from .errors import error_middleware
from .history import MemoryHistory
from .hub import HUB_KEY, Hub
from .openapi import add_routes as add_openapi_routes
from .producers import broadcast, emit, trigger
from .static import StaticFolder
from .transports import polling
from .transports.socketio import SocketIOTransport
from .webpush import routes as webpush_routes
from .webpush import service as webpush_service

SOCKETIO_KEY = web.AppKey("socketio", SocketIOTransport)


def create_app(settings: Settings) -> web.Application:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = web.Application(middlewares=[error_middleware, trigger.page_trigger_middleware])
    app[SETTINGS_KEY] = settings
    hub = Hub(MemoryHistory(per_channel=settings.history_size, max_age=settings.history_age,
                            max_bytes=settings.history_bytes))
    app[HUB_KEY] = hub
    cors.setup(app, settings.cors_origins)
    access = ChannelAccess(spaces.setup(app, settings.data_dir))
    app[ACCESS_KEY] = access

    socketio_transport = SocketIOTransport(
        hub, cors_allowed_origins=cors.socketio_origins(settings.cors_origins))
    socketio_transport.enable_channels(
        access, max_per_connection=settings.max_channels_per_connection)
    socketio_transport.attach(app)
    app[SOCKETIO_KEY] = socketio_transport

    webpush_service.install(app, settings, hub)
    webpush_routes.add_routes(app)

    trigger.add_routes(app)
    emit.add_routes(app)
    broadcast.add_routes(app)
    polling.add_routes(app)
    operations.add_routes(app)
    add_openapi_routes(app)
    _add_static_routes(app, settings)
    return app


def _add_static_routes(app: web.Application, settings: Settings) -> None:
    StaticFolder(settings.web_root / "sources", "/sources").add_routes(app, "sources")
    static = StaticFolder(settings.web_root / "static", "/static")
    static.add_routes(app, "static")

    async def favicon(request: web.Request) -> web.StreamResponse:
        return static.serve(request, "favicon.ico")

    async def index(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/sources/")

    app.router.add_get("/favicon.ico", favicon, name="favicon")
    app.router.add_get("/", index, name="index")
