"""Hosting of ``sources/`` and ``static/``: the pages, scripts and media overlays use.

Each prefix is served from the user's folder (``--web-root``) first, then
from the pages shipped in the package, so a user's ``alert.html`` replaces
ours and everything else still comes from the package.

It must never serve anything outside its folder: every path segment is checked
(``..``, hidden files, backslashes, drive letters, NUL) and the resolved path
must still lie inside the folder, so symlinks pointing out are refused too.
Content types come from an explicit table, never from the platform (Windows
registries map ``.js`` to ``text/plain``), and unknown types are
``application/octet-stream``, never ``text/html``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Sequence

from aiohttp import web

from .basepath import relative_location
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


def content_type_for(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), DEFAULT_CONTENT_TYPE)


class StaticFolder:
    """Serves one URL prefix from one or more folders, the first holding a file winning.

    :param roots: the folders, in order of precedence (the user's own pages
        before the shipped ones); a folder that does not exist serves nothing.
    :param prefix: the URL prefix, for example ``/sources``.
    """

    def __init__(self, roots: Sequence[Path], prefix: str) -> None:
        self.roots = [root.resolve() for root in roots]
        self.prefix = prefix.rstrip("/")

    def add_routes(self, app: web.Application, name: str) -> None:
        app.router.add_get(self.prefix + "/{tail:.*}", self.handle, name=name)
        app.router.add_get(self.prefix, self.redirect_to_folder, name=name + "-root")

    async def redirect_to_folder(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(relative_location(self.prefix.rpartition("/")[2] + "/",
                                                         request))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return self.serve(request, request.match_info["tail"])

    def serve(self, request: web.Request, tail: str) -> web.StreamResponse:
        """Answer ``request`` with the file ``tail`` names in the first folder that has it.

        A folder is answered by its ``index.html``, from the first root whose
        folder has one; relative links in it need the trailing slash, so a
        folder asked for without one is redirected first.
        """
        found_folder = False
        for root in self.roots:
            path = resolve_inside(root, tail)
            if path is None:
                continue
            if path.is_dir():
                found_folder = True
                if tail and not tail.endswith("/"):
                    last_segment = request.rel_url.raw_path.rpartition("/")[2]
                    raise web.HTTPMovedPermanently(relative_location(last_segment + "/",
                                                                     request))
                path = path / "index.html"
                if not path.is_file():
                    continue
            return serve_file(path)
        if found_folder:
            raise NOT_FOUND(f"{request.path} is a folder without an index.html.")
        raise NOT_FOUND(f"Nothing at {request.path}.")


def resolve_inside(root: Path, tail: str) -> Path | None:
    """The file or folder ``tail`` names inside ``root``, or None if it must not be served."""
    if tail.startswith("/") or any(bad in tail for bad in FORBIDDEN_IN_SEGMENT):
        return None
    parts = [part for part in PurePosixPath(tail).parts if part]
    if any(part.startswith(".") for part in parts):  # '..', '.', and hidden files
        return None
    candidate = root.joinpath(*parts)
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if resolved != root and not resolved.is_relative_to(root):
        return None
    return resolved


def serve_file(path: Path) -> web.FileResponse:
    """A file with its content type; aiohttp adds ETag, Last-Modified and Range support."""
    return web.FileResponse(path, headers={"Content-Type": content_type_for(path)})
