"""Serving under a sub-path (``--base-path /notify``) behind a reverse proxy.

Every route is declared at the root by its own module; :func:`mount` moves
all of them under the base once the app is wired, so no module needs to know
the base, and a route added later follows it too. The shipped pages and
scripts use URLs relative to themselves, so they work under any base (and
behind a proxy that strips the prefix) without being told it; redirects the
server makes are relative for the same reason.

This module must never rewrite request paths: a request outside the base is
simply not found.
"""

from __future__ import annotations

import re

from aiohttp import web

SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+")


def normalise_base_path(text: str) -> str:
    """``/notify/`` -> ``/notify``, ``/`` and ``""`` -> ``""``; ValueError with a sentence if unusable."""
    path = text.strip()
    if path in ("", "/"):
        return ""
    if not path.startswith("/"):
        raise ValueError(f"{text!r} must start with / (for example /notify)")
    segments = path.strip("/").split("/")
    for segment in segments:
        if segment in (".", "..") or not SEGMENT.fullmatch(segment):
            raise ValueError(f"{text!r} is not a plain URL path: use letters, digits and "
                             f"- . _ ~ between slashes (for example /notify)")
    return "/" + "/".join(segments)


def mount(app: web.Application, base: str) -> None:
    """Move every route of ``app`` under ``base`` and answer ``base`` itself with a redirect.

    The same re-indexing aiohttp does for a sub-application's routes
    (``PrefixedSubAppResource``), on the app itself: one app keeps its
    middlewares (errors, triggers, CORS), its keys and its lifetime.
    """
    if not base:
        return
    router = app.router
    for resource in router.resources():
        router.unindex_resource(resource)
        resource.add_prefix(base)
        router.index_resource(resource)
    last_segment = base.rpartition("/")[2]

    async def to_base_folder(request: web.Request) -> web.StreamResponse:
        # Relative, so it is right whatever prefix the proxy in front adds.
        raise web.HTTPMovedPermanently(relative_location(f"{last_segment}/", request))

    router.add_get(base, to_base_folder, name="base")


def relative_location(target: str, request: web.Request) -> str:
    """A ``Location`` relative to the request's folder, keeping its query string.

    ``./`` in front keeps a segment holding ``:`` from reading as a URL scheme.
    """
    query = request.rel_url.raw_query_string
    return f"./{target}" + (f"?{query}" if query else "")
