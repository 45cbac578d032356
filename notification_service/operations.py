"""Liveness routes for monitors, load balancers and the seed-0 heartbeat.

Deliberately nothing that lists codes or channels: a listening code is a
secret (the original ``/clients`` route leaked every one of them).
"""

from __future__ import annotations

from aiohttp import web


async def heartbeat(_request: web.Request) -> web.Response:
    return web.json_response({"heartbeat": "OK"})


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/heartbeat", heartbeat, name="heartbeat")
    app.router.add_get("/health", health, name="health")
