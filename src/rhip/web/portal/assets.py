"""The portal's static files: its own (CSS, the small page script, vendored htmx) and plotly.js from the
installed ``plotly`` package, never a CDN. Files are read once, compressed once, and cached by browsers for
a day (their URLs carry the package version, so an upgrade is seen at once)."""

from __future__ import annotations

import gzip
import mimetypes
import threading
from importlib import resources
from pathlib import PurePosixPath

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rhip.web.portal.nav import PREFIX

CACHE = "public, max-age=86400"


class Assets:
    """Static files by name, kept in memory with their gzip form."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[bytes, bytes, str]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> tuple[bytes, bytes, str] | None:
        """(body, gzipped body, media type) of a static file, or None."""
        found = self._files.get(name)
        if found is not None:
            return found
        data = self._read(name)
        if data is None:
            return None
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if media.startswith("text/") or media.endswith("javascript"):
            media += "; charset=utf-8"
        entry = (data, gzip.compress(data, 6), media)
        with self._lock:
            self._files[name] = entry
        return entry

    @staticmethod
    def _read(name: str) -> bytes | None:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            return None
        if name == "plotly.min.js":
            source = resources.files("plotly").joinpath("package_data", "plotly.min.js")
        else:
            source = resources.files("rhip.web.portal").joinpath("static", *path.parts)
        try:
            return source.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None


def asset_routes() -> list[Route]:
    """``/portal/static/{version}/{name}``."""
    assets = Assets()

    async def static(request: Request) -> Response:
        found = assets.get(str(request.path_params["name"]))
        if found is None:
            return Response("not found", status_code=404, media_type="text/plain")
        body, packed, media = found
        headers = {"Cache-Control": CACHE, "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(packed, media_type=media, headers=headers)
        return Response(body, media_type=media, headers=headers)

    return [Route(PREFIX + "/static/{version}/{name:path}", static, methods=["GET", "HEAD"])]
