"""The OpenAPI 3 description of the HTTP API, served at ``/openapi.json``.

Hand-maintained, one JSON fragment per feature in this folder (``core.json``,
``publish.json``, ...), each ``{"paths": {...}, "components": {"schemas": {...}}}``,
merged when the app starts. A test fuzzes the running server against the
merged document (schemathesis), so a route that changes without its fragment
fails the build. Two fragments may not define the same path or component
differently: that raises at start instead of silently overriding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from .. import __version__, jsoncodec

FRAGMENTS = Path(__file__).resolve().parent
OPENAPI_VERSION = "3.1.0"


def load_spec(folder: Path = FRAGMENTS) -> dict[str, Any]:
    """Merge every ``*.json`` fragment in ``folder`` (sorted by name) into one document."""
    spec: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Browser Notification Service",
            "version": __version__,
            "description": "Real-time events to web pages (socket.io, SSE) and Web Push. "
                           "Every error is JSON {\"error\", \"code\", \"http\"}.",
        },
        "paths": {},
        "components": {},
    }
    for fragment_path in sorted(folder.glob("*.json")):
        fragment = jsoncodec.loads(fragment_path.read_bytes())
        _merge(spec["paths"], fragment.get("paths", {}), fragment_path.name, "paths")
        for section, entries in fragment.get("components", {}).items():
            _merge(spec["components"].setdefault(section, {}), entries, fragment_path.name,
                   f"components/{section}")
    return spec


def _merge(into: dict[str, Any], entries: dict[str, Any], source: str, where: str) -> None:
    for key, value in entries.items():
        if key in into and into[key] != value:
            raise ValueError(f"OpenAPI fragment {source} redefines {where}/{key} differently.")
        into[key] = value


def add_routes(app: web.Application, base_path: str = "") -> None:
    """``GET /openapi.json``; under ``--base-path`` the document names it as its server."""
    spec = load_spec()
    if base_path:
        spec["servers"] = [{"url": base_path}]
    body = jsoncodec.dumps_bytes(spec)

    async def openapi_json(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get("/openapi.json", openapi_json, name="openapi")
