"""Static files through one route with content-hashed URLs: ``/static/<digest>/<name>``.

The digest is the first 16 hex digits of the file's sha256, so a URL names one content forever:
``Cache-Control: immutable`` for a year, the digest as a strong ETag (304 to If-None-Match). A
URL with an old digest (a page cached before a deploy, or a relative ``url()`` inside a CSS file)
is redirected to the current one. CSS, JS and SVG are gzipped once at start and sent compressed
to clients that accept it.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from werkzeug.wrappers import Request, Response

STATIC_ROOT = Path(__file__).resolve().parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
COMPRESSIBLE = (".css", ".js", ".svg", ".json", ".webmanifest", ".html", ".txt")
mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("text/javascript", ".js")


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    gzipped: bytes | None
    digest: str
    content_type: str

    @property
    def url(self) -> str:
        return f"/static/{self.digest}/{self.name}"


def make_asset(name: str, body: bytes, content_type: str | None = None) -> Asset:
    """An asset from bytes (also for generated files such as a municipality's theme)."""
    kind = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind.endswith(("javascript", "json", "svg+xml")):
        kind += "; charset=utf-8" if "charset" not in kind else ""
    packed = gzip.compress(body, 9, mtime=0) if name.endswith(COMPRESSIBLE) else None
    if packed is not None and len(packed) >= len(body):
        packed = None
    return Asset(name, body, packed, hashlib.sha256(body).hexdigest()[:16], kind)


class StaticFiles:
    """Every file under ``root`` (read once; a deploy restarts the process)."""

    def __init__(self, root: Path = STATIC_ROOT):
        self.assets = {
            str(path.relative_to(root)): make_asset(str(path.relative_to(root)), path.read_bytes())
            for path in sorted(root.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        }

    def url(self, name: str) -> str:
        return self.assets[name].url

    def serve(self, request: Request, digest: str, name: str) -> Response | None:
        """The response for ``/static/<digest>/<name>``; None for a name we do not have."""
        asset = self.assets.get(name)
        if asset is None:
            return None
        if digest != asset.digest:
            return Response(
                status=307, headers={"Location": asset.url, "Cache-Control": "no-cache"}
            )
        return send_asset(request, asset)


def send_asset(request: Request, asset: Asset, cache_control: str = IMMUTABLE) -> Response:
    etag = f'"{asset.digest}"'
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if etag in (request.headers.get("If-None-Match") or ""):
        return Response(status=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in (request.headers.get("Accept-Encoding") or ""):
        body, headers["Content-Encoding"] = asset.gzipped, "gzip"
    return Response(body, headers=headers, content_type=asset.content_type)
