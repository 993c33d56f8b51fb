"""Static assets under content-hashed names, gzip-compressed, cached for a year.

The pages name their scripts and style sheet through :meth:`Assets.url` (the ``asset`` template
global): ``/assets/collection.3f9a0c1b2d4e.js``. The name changes whenever the file's content
changes, so a browser may keep a copy for good (``Cache-Control: immutable``) and never asks
again; a new release brings new names. Each file is gzip-compressed once, on its first request
(plotly.min.js: 4.8 MB down to 1.5 MB), and kept in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response

IMMUTABLE = "public, max-age=31536000, immutable"
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}
_HASHED = re.compile(r"^[A-Za-z0-9_.-]+\.[0-9a-f]{12}\.(?:js|css)$")


# One copy per process, however many apps it builds (the tests build many): the file's
# path and content digest name its bytes.
_CACHE: dict[tuple[Path, str, bool], bytes] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Asset:
    path: Path
    digest: str
    media_type: str

    def body(self, *, compressed: bool) -> bytes:
        key = (self.path, self.digest, compressed)
        with _CACHE_LOCK:  # compress once, even when the first requests arrive together
            if key not in _CACHE:
                plain = self.path.read_bytes()
                _CACHE[key] = gzip.compress(plain, 9, mtime=0) if compressed else plain
            return _CACHE[key]


class Assets:
    """The files pages may load, by logical name (``plotly.min.js``, ``collection.js``)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._by_name: dict[str, _Asset] = {}
        self._by_url: dict[str, _Asset] = {}
        for name, path in files.items():
            suffix = Path(name).suffix
            if suffix not in _MEDIA_TYPES:
                raise ValueError(f"asset {name!r}: only .js and .css files are served as assets")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            asset = _Asset(path, digest, _MEDIA_TYPES[suffix])
            self._by_name[name] = asset
            self._by_url[f"{name[: -len(suffix)]}.{digest}{suffix}"] = asset

    def warm(self) -> None:
        """Compress every asset now (in the background at start-up), not on a first visit."""
        for asset in self._by_name.values():
            asset.body(compressed=True)

    def has(self, name: str) -> bool:
        return name in self._by_name

    def url(self, name: str) -> str:
        """The hashed URL of ``name``; a KeyError for a file that is not an asset."""
        asset = self._by_name[name]
        suffix = Path(name).suffix
        return f"/assets/{name[: -len(suffix)]}.{asset.digest}{suffix}"

    def response(self, filename: str, accept_encoding: str) -> Response:
        asset = self._by_url.get(filename) if _HASHED.match(filename) else None
        if asset is None:  # an old name after an upgrade, or a made-up one
            raise HTTPException(status_code=404, detail="No such asset")
        compressed = _accepts_gzip(accept_encoding)
        headers = {
            "Cache-Control": IMMUTABLE,
            "ETag": f'"{asset.digest}{"-gz" if compressed else ""}"',
            "Vary": "Accept-Encoding",
        }
        if compressed:
            headers["Content-Encoding"] = "gzip"
        body = asset.body(compressed=compressed)
        return Response(body, media_type=asset.media_type, headers=headers)


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=").strip()
            try:
                return not q or float(q) > 0
            except ValueError:
                return True
    return False


router = APIRouter(include_in_schema=False)


@router.get("/assets/{filename}")
def asset(filename: str, request: Request) -> Response:
    assets: Assets = request.app.state.assets
    return assets.response(filename, request.headers.get("accept-encoding", ""))
