"""Wires the alert box into the app: stores, the queue observer, the /alerts namespace, routes.

Embedded (one process): designs, the media index and queues in
``<data dir>/alerts.sqlite3``, media files in ``<data dir>/media``. With
``--database-url`` designs and media live in PostgreSQL; with ``--redis-url``
queues and presence live in Redis, so every node serves every overlay.
The stores open with the app (``cleanup_ctx``); nothing here runs per event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator

from aiohttp import web

from ..config import Settings
from ..hub import Hub
from ..transports.socketio import SocketIOTransport
from .console import CONSOLE_KEY, console_access
from .design_store import (POSTGRES_MIGRATIONS as DESIGN_MIGRATIONS, DesignLibrary,
                           PostgresDesignStore, SqliteDesignStore)
from .media import (FOLDER_NAME, POSTGRES_MIGRATIONS as MEDIA_MIGRATIONS, MediaStore,
                    PostgresMediaStore, SqliteMediaStore)
from .overlays import OverlayChannel, QueueObserver
from .queue_store import MemoryQueueStore, QueueStore, RedisQueueStore
from .sqlite import FILE_NAME, AlertDatabase

if TYPE_CHECKING:
    from ..cluster.nodes import NodeLiveness

log = logging.getLogger(__name__)


@dataclass
class AlertBox:
    """The alert box's parts; the stores are set when the app starts."""

    settings: Settings
    database: AlertDatabase
    designs: DesignLibrary = field(init=False)
    media: MediaStore = field(init=False)
    queues: QueueStore = field(init=False)
    nodes: "NodeLiveness | None" = None  # with --redis-url

    async def live_nodes(self) -> set[str] | None:
        """Names of live nodes (None on one node: every overlay it knows is its own)."""
        if self.nodes is None:
            return None
        return await self.nodes.live_nodes()


BOX_KEY = web.AppKey("alert_box", AlertBox)


def install(app: web.Application, settings: Settings, hub: Hub,
            socketio: SocketIOTransport) -> AlertBox:
    from . import routes  # routes import BOX_KEY from here

    box = app[BOX_KEY] = AlertBox(settings, AlertDatabase(settings.data_dir / FILE_NAME))
    app[CONSOLE_KEY] = console_access(settings)
    hub.add_observer(QueueObserver(lambda: box.queues))
    OverlayChannel(socketio.sio, hub, lambda: box.queues, lambda: box.designs,
                   settings.node_name)
    routes.add_routes(app)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        await box.database.open()
        media_folder = settings.data_dir / FOLDER_NAME
        if settings.database_url is not None:
            from ..stores.postgres import POSTGRES_KEY, migrate
            pool = app[POSTGRES_KEY].pool
            await migrate(pool, "alert_designs", DESIGN_MIGRATIONS)
            await migrate(pool, "alert_media", MEDIA_MIGRATIONS)
            box.designs = DesignLibrary(PostgresDesignStore(pool))
            box.media = PostgresMediaStore(pool, media_folder, settings.alert_media_total_bytes)
        else:
            box.designs = DesignLibrary(SqliteDesignStore(box.database))
            box.media = SqliteMediaStore(box.database, media_folder,
                                         settings.alert_media_total_bytes)
        if settings.alert_designs is not None:
            stored = await box.designs.load_file(settings.alert_designs)
            log.info("alert designs read from %s (%d codes)", settings.alert_designs,
                     len(stored))
        memory: MemoryQueueStore | None = None
        if settings.redis_url is not None:
            from ..cluster.nodes import NODES_KEY
            from ..cluster.redis import KEYS_KEY, REDIS_KEY
            shared = RedisQueueStore(app[REDIS_KEY], app[KEYS_KEY])
            await shared.start()
            box.queues = shared
            box.nodes = app[NODES_KEY]
        else:
            memory = MemoryQueueStore(box.database)
            await memory.load()
            box.queues = memory
        yield
        if memory is not None:
            await memory.close()
        if isinstance(box.queues, RedisQueueStore):
            await box.queues.close()
        await box.database.close()

    app.cleanup_ctx.append(lifetime)
    return box
