"""create_app(settings): wires the hub, transports, producers and static hosting.

The only module that knows every part; nothing imports it but the CLI and tests.
"""

from __future__ import annotations

from aiohttp import web

from . import cors, frontdoor, guards, http_limits, operations, registry, spaces
from .access import ACCESS_KEY, ChannelAccess
from .alerts import box as alert_box
from .basepath import mount, relative_location
from .config import PACKAGE_WEB_ROOT, SETTINGS_KEY, Settings
from .folders import prepare
from .history import MemoryHistory
from .idempotency import IdempotencyCache
from .hub import HUB_KEY, Hub
from .identity import JWT_VERIFIER_KEY, JwtVerifier
from .metrics import METRICS_KEY, Metrics
from .metrics import add_routes as add_metrics_routes
from .openapi import add_routes as add_openapi_routes
from .operations import HEALTH_KEY, HealthChecks, data_dir_check
from .producers import broadcast, emit, trigger
from .ratelimit import RATE_LIMITS_KEY, RateLimits
from .registry import REGISTRY_KEY, ConnectionRegistry
from .static import StaticFolder
from .transports import polling
from .transports.socketio import SocketIOTransport
from .transports.sse import SSETransport
from .webpush import routes as webpush_routes
from .webpush import service as webpush_service

SOCKETIO_KEY = web.AppKey("socketio", SocketIOTransport)
SSE_KEY = web.AppKey("sse", SSETransport)


def create_app(settings: Settings) -> web.Application:
    prepare(settings.data_dir, "data folder", "--data-dir")
    limits = RateLimits.from_settings(settings)
    request_guards = guards.RequestGuards(settings.host, settings.allowed_hosts,
                                          settings.cors_origins, limits, settings.trust_proxy)
    app = web.Application(
        middlewares=[frontdoor.middleware(cors.CorsPolicy(settings.cors_origins),
                                          request_guards, settings.body_timeout,
                                          settings.base_path + cors.SOCKETIO_PREFIX)],
        handler_args=http_limits.handler_args(settings.header_timeout))
    app[SETTINGS_KEY] = settings
    app[RATE_LIMITS_KEY] = limits
    if settings.redis_url is not None:
        from .cluster import nodes, redis
        redis.setup(app, settings.redis_url, settings.redis_prefix)
        nodes.setup(app, settings.node_name)
    if settings.database_url is not None:
        from .stores import postgres
        postgres.setup(app, settings.database_url)
    metrics = app[METRICS_KEY] = Metrics()
    if settings.redis_url is None:
        history = MemoryHistory(per_channel=settings.history_size,
                                max_age=settings.history_age, max_bytes=settings.history_bytes)
    else:
        from .cluster import wiring
        history = wiring.mirror_for(settings)
    app.cleanup_ctx.append(history.sweeping)  # untouched channels expire by age too
    hub = Hub(history, IdempotencyCache(max_bytes=settings.idempotency_bytes), metrics=metrics)
    app[HUB_KEY] = hub
    metrics.watch_history(history.event_count, lambda: history.total_bytes)
    space_secrets = spaces.setup(
        app, settings.data_dir, spaces.SpaceLimits(settings.max_spaces, settings.spaces_max_bytes),
        shared=settings.database_url is not None)
    if settings.redis_url is not None:
        from .cluster import wsemit
        access = ChannelAccess(wsemit.use_secrets(app, space_secrets))  # ws-emit's keys too
    else:
        access = ChannelAccess(space_secrets)
    app[ACCESS_KEY] = access
    health = app[HEALTH_KEY] = HealthChecks()
    health.add("data_dir", data_dir_check(settings.data_dir))
    if settings.redis_url is not None:
        wiring.install(app, settings, hub, health)
    verifier = app[JWT_VERIFIER_KEY] = JwtVerifier.from_files(
        secret=settings.jwt_secret, public_key_file=settings.jwt_public_key,
        leeway=settings.jwt_leeway)
    bounds = {"max_per_application": settings.max_connections_per_application,
              "max_total": settings.max_identified_connections}
    if settings.redis_url is not None:
        from .cluster import connections as shared_connections
        connections: ConnectionRegistry = shared_connections.setup(app, **bounds)
    else:
        connections = app[REGISTRY_KEY] = ConnectionRegistry(**bounds)

    socketio_transport = SocketIOTransport(
        hub, cors_allowed_origins=cors.socketio_origins(settings.cors_origins),
        output_budget=settings.output_budget)
    socketio_transport.enable_channels(
        access, max_per_connection=settings.max_channels_per_connection)
    socketio_transport.use_identities(verifier, connections)
    socketio_transport.attach(app)
    app[SOCKETIO_KEY] = socketio_transport
    alert_box.install(app, settings, hub, socketio_transport)
    metrics.watch_connections("socketio", lambda: len(socketio_transport.sio.eio.sockets))

    webpush = webpush_service.install(app, settings, hub)
    health.add("webpush_store", webpush.store.count)  # one query: the SQLite file answers
    webpush_routes.add_routes(app)

    sse_transport = SSETransport(
        hub, access=app[ACCESS_KEY], verifier=verifier, registry=connections,
        ping_interval=settings.sse_ping_interval, queue_size=settings.sse_queue_size,
        queue_bytes=settings.sse_queue_bytes, output_budget=settings.output_budget,
        retry_ms=settings.sse_retry_ms)
    sse_transport.add_routes(app)
    app[SSE_KEY] = sse_transport
    metrics.watch_connections("sse", sse_transport.connection_count)

    if settings.redis_url is not None:  # ways in through Redis: started last, stopped first
        from .cluster import inbox
        inbox.setup(app)
        wsemit.bridge(app)
    trigger.add_routes(app)
    emit.add_routes(app)
    broadcast.add_routes(app)
    polling.add_routes(app)
    operations.add_routes(app)
    add_openapi_routes(app, settings.base_path)
    registry.add_routes(app)
    add_metrics_routes(app, metrics, public=settings.metrics_public,
                       admin_token=settings.admin_token)
    _add_static_routes(app, settings)
    mount(app, settings.base_path)
    return app


def _add_static_routes(app: web.Application, settings: Settings) -> None:
    roots = settings.web_roots
    StaticFolder([root / "sources" for root in roots], "/sources",
                 shipped=PACKAGE_WEB_ROOT).add_routes(app, "sources")
    static = StaticFolder([root / "static" for root in roots], "/static",
                          shipped=PACKAGE_WEB_ROOT)
    static.add_routes(app, "static")

    async def favicon(request: web.Request) -> web.StreamResponse:
        return static.serve(request, "favicon.ico")

    async def index(request: web.Request) -> web.StreamResponse:
        # Relative: right under --base-path and behind a proxy that strips a prefix.
        raise web.HTTPFound(relative_location("console/", request))

    app.router.add_get("/favicon.ico", favicon, name="favicon")
    app.router.add_get("/", index, name="index")
