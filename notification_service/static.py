"""Hosting of ``sources/`` and ``static/``: the pages, scripts and media overlays use.

It must never serve anything outside its folder: every path segment is checked
(``..``, hidden files, backslashes, drive letters, NUL) and the resolved path
must still lie inside the folder, so symlinks pointing out are refused too.
Content types come from an explicit table, never from the platform (Windows
registries map ``.js`` to ``text/plain``), and unknown types are
``application/octet-stream``, never ``text/html``. Every answer says
``X-Content-Type-Options: nosniff`` (guards.py); an SVG is served with
``Content-Security-Policy: sandbox``, so a script inside it never runs in
this server's origin; the HTML pages we ship get a Content-Security-Policy
that allows only scripts from this server and the inline scripts of that very
file (by hash, computed here), so an injected script cannot run. Pages of a
``--web-root`` of your own get no policy: they may load what they like.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path, PurePosixPath

from aiohttp import web

from .errors import NOT_FOUND

CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"
FORBIDDEN_IN_SEGMENT = ("\\", ":", "\x00")
SVG_POLICY = "sandbox"
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: https:; media-src 'self' data: blob: https:; "
    "font-src 'self' data: https:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'"
)
"""Images, sounds and fonts may come from anywhere over https (an alert shows a
follower's avatar); scripts only from here; nothing may be framed as a plugin."""
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\ssrc\s*=)[^>]*>(.*?)</script\s*>", re.S | re.I)


def content_type_for(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), DEFAULT_CONTENT_TYPE)


def page_policy(html: bytes) -> str:
    """The Content-Security-Policy of a page we ship: its own inline scripts, by hash."""
    hashes = "".join(
        " 'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html))
    return PAGE_POLICY.format(hashes=hashes)


class StaticFolder:
    """Serves one folder under a URL prefix.

    :param root: the folder; it may not exist yet (then everything is 404).
    :param prefix: the URL prefix, for example ``/sources``.
    :param shipped: the folder holds the pages we ship, whose HTML gets a
        Content-Security-Policy (see :func:`page_policy`).
    """

    def __init__(self, root: Path, prefix: str, *, shipped: bool = False) -> None:
        self.root = root.resolve()
        self.prefix = prefix.rstrip("/")
        self.shipped = shipped
        self._policies: dict[Path, tuple[int, int, str]] = {}  # path -> mtime, size, policy

    def add_routes(self, app: web.Application, name: str) -> None:
        app.router.add_get(self.prefix + "/{tail:.*}", self.handle, name=name)
        app.router.add_get(self.prefix, self.redirect_to_folder, name=name + "-root")

    async def redirect_to_folder(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(request.rel_url.with_path(self.prefix + "/"))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return self.serve(request, request.match_info["tail"])

    def serve(self, request: web.Request, tail: str) -> web.StreamResponse:
        """Answer ``request`` with the file ``tail`` names inside the folder."""
        path = self.resolve(tail)
        if path is None:
            raise NOT_FOUND(f"Nothing at {request.path}.")
        if path.is_dir():
            if tail and not tail.endswith("/"):
                # Relative links in the folder's index.html need the trailing slash.
                raise web.HTTPMovedPermanently(request.rel_url.with_path(request.path + "/"))
            path = path / "index.html"
            if not path.is_file():
                raise NOT_FOUND(f"{request.path} is a folder without an index.html.")
        response = serve_file(path)
        if path.suffix.lower() == ".svg":
            response.headers["Content-Security-Policy"] = SVG_POLICY
        elif self.shipped and path.suffix.lower() in (".html", ".htm"):
            response.headers["Content-Security-Policy"] = self._page_policy(path)
        return response

    def _page_policy(self, path: Path) -> str:
        """The page's policy, computed again only when the file changed."""
        status = path.stat()
        cached = self._policies.get(path)
        if cached is not None and cached[:2] == (status.st_mtime_ns, status.st_size):
            return cached[2]
        policy = page_policy(path.read_bytes())
        self._policies[path] = (status.st_mtime_ns, status.st_size, policy)
        return policy

    def resolve(self, tail: str) -> Path | None:
        """The file or folder ``tail`` names inside the root, or None if it must not be served."""
        if tail.startswith("/") or any(bad in tail for bad in FORBIDDEN_IN_SEGMENT):
            return None
        parts = [part for part in PurePosixPath(tail).parts if part]
        if any(part.startswith(".") for part in parts):  # '..', '.', and hidden files
            return None
        candidate = self.root.joinpath(*parts)
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            return None
        if resolved != self.root and not resolved.is_relative_to(self.root):
            return None
        return resolved


def serve_file(path: Path) -> web.FileResponse:
    """A file with its content type; aiohttp adds ETag, Last-Modified and Range support."""
    return web.FileResponse(path, headers={"Content-Type": content_type_for(path)})
