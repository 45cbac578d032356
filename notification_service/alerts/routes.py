"""HTTP routes of the alert box: designs, media, the queue, overlay status, test alerts.

Who may do what: knowing a code is what lets a page listen on it, so it also
lets a page read that code's designs, queue and overlay status (the overlay
has nothing else). Everything that changes what appears on stream (designs,
uploads, queue control, test alerts) takes the admin token, which the
console holds: a leaked overlay URL lets someone watch, never restyle or
steer your alerts. Control notices go out through ``Hub.publish`` on the
code (``ALERT_QUEUE``, ``ALERT_DESIGNS``), like any event.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from .. import jsoncodec
from ..errors import (ALERT_ACTION_INVALID, ALERT_DESIGNS_TOO_LARGE, ALERT_NOT_FOUND,
                      BAD_EVENT_NAME, INVALID_FIELD, MEDIA_TOO_LARGE, NOT_FOUND)
from ..events import validate_code, validate_event_name
from ..hub import HUB_KEY, mask
from ..producers.body import parse_json, read_body
from ..basepath import relative_location
from ..config import PACKAGE_WEB_ROOT
from ..static import StaticFolder, serve_file
from .box import BOX_KEY, AlertBox
from .console import CONSOLE_KEY
from .designs import MAX_CONFIG_BYTES, SAMPLE_DATA, modes_of, validate_config
from .media import NAME, media_name
from .queue import CodeQueue, Held
from .queue_store import NO_QUEUE

log = logging.getLogger(__name__)

ACTIONS = ("pause", "resume", "skip", "clear", "replay")
MAX_CONTROL_BYTES = 4096
EMPTY_QUEUE = {"paused": False, "playing": [], "waiting": [], "recent": []}
IMMUTABLE = "public, max-age=31536000, immutable"


def _code(request: web.Request) -> str:
    return validate_code(request.match_info["code"])


def _box(request: web.Request) -> AlertBox:
    return request.app[BOX_KEY]


def _admin(request: web.Request) -> None:
    request.app[CONSOLE_KEY].require(request)


async def _notice(request: web.Request, code: str, name: str, data: dict[str, Any]) -> None:
    """Tell every overlay of ``code``, on every node, the way events travel."""
    await request.app[HUB_KEY].publish(code, name, data)


# -- designs --------------------------------------------------------------------

async def get_designs(request: web.Request) -> web.Response:
    return jsoncodec.response(await _box(request).designs.answer(_code(request)))


async def put_designs(request: web.Request) -> web.Response:
    _admin(request)
    code = _code(request)
    raw = await read_body(request, MAX_CONFIG_BYTES, _designs_too_large)
    config = validate_config(parse_json(raw, f"body of PUT /codes/{mask(code)}/alerts"))
    box = _box(request)
    answer = await box.designs.put(code, config)
    modes = modes_of(config)

    def set_modes(queue: CodeQueue) -> None:
        queue.modes = modes
    await box.queues.update(code, set_modes)
    await _notice(request, code, "ALERT_DESIGNS", {"revision": answer["revision"]})
    log.info("alert designs of %s stored (revision %d)", mask(code), answer["revision"])
    return jsoncodec.response(answer)


def _designs_too_large(size: int, limit: int, at_least: bool) -> Exception:
    amount = f"more than {limit}" if at_least else str(size)
    return ALERT_DESIGNS_TOO_LARGE(f"The designs are {amount} bytes; at most {limit} are "
                                   f"accepted. Move large CSS into fewer rules, or images "
                                   f"into uploads.")


# -- media ----------------------------------------------------------------------

async def upload_media(request: web.Request) -> web.Response:
    _admin(request)
    box = _box(request)
    limit = box.settings.alert_media_max_bytes

    def too_large(size: int, _limit: int, at_least: bool) -> Exception:
        amount = f"more than {limit}" if at_least else str(size)
        return MEDIA_TOO_LARGE(f"The file is {amount} bytes; this server takes files of at most "
                               f"{limit} (--alert-media-max-bytes). Shorten or compress it.")

    content = await read_body(request, limit, too_large)
    name = media_name(content)
    await box.media.save(name, content)
    log.info("alert media %s uploaded (%d bytes)", name, len(content))
    return jsoncodec.response({"url": f"media/{name}", "bytes": len(content),
                               "type": name.rpartition(".")[2]})


async def get_media(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = await _box(request).media.path(name) if NAME.fullmatch(name) else None
    if path is None:
        raise NOT_FOUND(f"No uploaded file is called {name!r}; upload it in the console.")
    response = serve_file(path)
    response.headers["Cache-Control"] = IMMUTABLE  # the name is the content's hash
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- the queue ------------------------------------------------------------------

async def get_queue(request: web.Request) -> web.Response:
    snapshot = await _box(request).queues.view(_code(request), CodeQueue.snapshot)
    return jsoncodec.response(EMPTY_QUEUE if snapshot is NO_QUEUE else snapshot)


async def control_queue(request: web.Request) -> web.Response:
    _admin(request)
    code = _code(request)
    body = parse_json(await read_body(request, MAX_CONTROL_BYTES),
                      f"body of POST /codes/{mask(code)}/queue")
    action = body.get("action") if isinstance(body, dict) else None
    if action not in ACTIONS:
        raise ALERT_ACTION_INVALID(
            f'Send {{"action": "pause" | "resume" | "skip" | "clear" | "replay"}}; skip and '
            f'replay also take "id" (the event id). Got {action!r}.')
    unknown = sorted(set(body) - {"action", "id"})
    if unknown:
        raise ALERT_ACTION_INVALID(f'Only "action" and "id" are read; remove {", ".join(unknown)}.')
    alert_id = body.get("id")
    if "id" in body and not isinstance(alert_id, str):
        raise ALERT_ACTION_INVALID('"id" is the event id as a string, as publish answered it.')
    if action == "replay" and alert_id is None:
        raise ALERT_ACTION_INVALID('replay needs "id": the event id of the alert to show again.')
    box = _box(request)
    found = _from_history(request, code, alert_id) if action == "replay" else None
    modes = await box.designs.modes(code)

    def act(queue: CodeQueue) -> dict[str, Any]:
        return {**apply(queue), "paused": queue.paused}

    def apply(queue: CodeQueue) -> dict[str, Any]:
        if action in ("pause", "resume"):
            queue.paused = action == "pause"
            return {}
        if action == "clear":
            return {"cleared": queue.clear()}
        if action == "skip":
            skipped = queue.skip(alert_id)
            if alert_id is not None and not skipped:
                return {"missing": True}
            return {"skipped": skipped}
        try:
            return {"id": alert_id, "queued_position": queue.replay(alert_id, found)}
        except LookupError:
            return {"missing": True}

    result = await box.queues.update(code, act, new=lambda: CodeQueue(modes=modes))
    if result.get("missing"):
        raise ALERT_NOT_FOUND(f"No alert {alert_id!r} is playing, waiting or among the recent "
                              f"ones of this code; GET /codes/{{code}}/queue lists them.")
    notice = {"action": action, "paused": result["paused"]}
    if action == "skip":
        notice["ids"] = result["skipped"]
    if action == "replay":
        notice["ids"] = [alert_id]
    await _notice(request, code, "ALERT_QUEUE", notice)
    return jsoncodec.response({"ok": True, "action": action, **result})


def _from_history(request: web.Request, code: str, alert_id: str | None) -> Held | None:
    for event in request.app[HUB_KEY].history.recent(code):
        if event.id == alert_id:
            return Held(event.id, event.name, jsoncodec.dumps(event.data), event.time)
    return None


# -- overlays and test alerts ---------------------------------------------------------

async def get_status(request: web.Request) -> web.Response:
    box = _box(request)
    found = await box.queues.view(_code(request),
                                  lambda queue: (queue.paused, queue.overlays()))
    paused, overlays = (False, []) if found is NO_QUEUE else found
    live = await box.live_nodes()
    for overlay in overlays:
        overlay["connected"] = bool(overlay["connected"]) and (live is None
                                                               or overlay["node"] in live)
    return jsoncodec.response({"paused": paused, "overlays": overlays})


async def test_alert(request: web.Request) -> web.Response:
    _admin(request)
    code = _code(request)
    body = parse_json(await read_body(request, MAX_CONTROL_BYTES),
                      f"body of POST /codes/{mask(code)}/test")
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        raise INVALID_FIELD('Send {"event": "FOLLOW"} (and "data": {...} to choose the fields).')
    name = validate_event_name(body["event"], BAD_EVENT_NAME)
    data = body.get("data", SAMPLE_DATA.get(name, {"user": "TestUser"}))
    if not isinstance(data, dict):
        raise INVALID_FIELD('"data" is an object of fields, such as {"user": "bob"}.')
    report = await request.app[HUB_KEY].publish(code, name, {**data, "test": "1"})
    return jsoncodec.response(report.to_dict())


async def list_codes(request: web.Request) -> web.Response:
    _admin(request)
    box = _box(request)
    designed = set(await box.designs.store.codes())
    queued = set(await box.queues.codes())
    codes = []
    for code in sorted(designed | queued):
        found = await box.queues.view(code, CodeQueue.overlays)
        overlays = [] if found is NO_QUEUE else found
        codes.append({"code": code, "designed": code in designed, "overlays": len(overlays),
                      "connected": sum(1 for overlay in overlays if overlay["connected"])})
    # The console writes trigger snippets: they need &token= when publishing takes one.
    return jsoncodec.response({"codes": codes,
                               "publish_token": box.settings.publish_token is not None})


# -- the console page -------------------------------------------------------------------

async def console_page(request: web.Request) -> web.StreamResponse:
    """sources/console.html, yours first (--web-root), at console/ (one folder deep, like
    sources/, so the page's ../static/ URLs hold)."""
    pages = StaticFolder([root / "sources" for root in _box(request).settings.web_roots],
                         "/sources", shipped=PACKAGE_WEB_ROOT)
    return pages.serve(request, "console.html")


async def console_folder(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(relative_location("console/", request))  # right under any base path


def add_routes(app: web.Application) -> None:
    app.router.add_get("/codes/{code}/alerts", get_designs, name="alert-designs")
    app.router.add_put("/codes/{code}/alerts", put_designs, name="alert-designs-put")
    app.router.add_get("/codes/{code}/queue", get_queue, name="alert-queue")
    app.router.add_post("/codes/{code}/queue", control_queue, name="alert-queue-control")
    app.router.add_get("/codes/{code}/status", get_status, name="alert-status")
    app.router.add_post("/codes/{code}/test", test_alert, name="alert-test")
    app.router.add_post("/media", upload_media, name="alert-media-upload")
    app.router.add_get("/media/{name}", get_media, name="alert-media")
    app.router.add_get("/alerts/codes", list_codes, name="alert-codes")
    app.router.add_get("/console", console_folder, name="console-folder")
    app.router.add_get("/console/", console_page, name="console")
