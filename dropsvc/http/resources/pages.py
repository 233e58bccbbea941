"""The shopper page (``GET /``), the order page (``GET /orders/{public_ref}``) and ``/static/...``.

Everything is read from ``static/`` once, when the app is built: the assets
are small, so they are kept in memory, gzipped once, and served with a
version (a hash of their bytes) in their URL. The page names its assets
``/static/app.js`` and so on; the service rewrites those references to
``/static/app.js?v=<hash>``, and an asset asked for with its current
version is cached for a year (``immutable``); asked for without one (or
with a stale one), it is ``no-cache`` with an ETag. A query version keeps
working behind nginx, which serves ``/static/`` straight from the
directory (deploy/nginx.conf.template). The pages themselves are
``no-cache`` and carry the server's clock, so countdowns agree with the
server whatever the shopper's clock says.

Alpine.js is not in the repository: ``make static-assets`` copies it from
``node_modules`` (npm, pinned in package-lock.json) to ``static/vendor/``.
A wheel carries the whole of ``static/`` as ``dropsvc/static/`` (setup.py),
so an installed service finds its page without ``DROPSVC_STATIC_DIR``.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import falcon

from dropsvc.buyers import Buyers
from dropsvc.drops import now_ms
from dropsvc.http.errors import not_found
from dropsvc.ledger import Engine
from dropsvc.logs import get_logger

STATIC_DIR = Path(__file__).resolve().parents[3] / "static"
ASSET_NAMES = ("app.js", "queue.js", "app.css", "vendor/alpine.min.js")
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".ico": "image/x-icon"}
ICON = "favicon.ico"  # served at /favicon.ico, where browsers look for it, as well as under /static/
HTML_TYPE = "text/html; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
SERVER_TIME_MARK = "0000000000000"  # <meta name="server-time" content="...">: now, in ms, per request
# Alpine evaluates its expressions with Function(): 'unsafe-eval' is the price of its standard build
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self';"
                               " img-src 'self' https: data:; connect-src 'self'; base-uri 'none';"
                               " form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

log = get_logger()


@dataclass(frozen=True)
class Asset:
    """One static file as served: its bytes, gzipped bytes, type and version."""

    body: bytes
    gzipped: bytes
    content_type: str
    version: str

    @classmethod
    def from_bytes(cls, body: bytes, content_type: str) -> Asset:
        return cls(body, gzip.compress(body, 9, mtime=0), content_type,
                   hashlib.sha256(body).hexdigest()[:16])

    def etag(self, gzipped: bool) -> str:
        return f'"{self.version}{"-gz" if gzipped else ""}"'


def accepts_gzip(req: falcon.Request) -> bool:
    """Whether Accept-Encoding allows gzip (``gzip;q=0`` refuses it)."""
    header = req.get_header("Accept-Encoding")
    if not header:
        return False
    for item in header.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def default_static_dir() -> Path:
    """The page's files without DROPSVC_STATIC_DIR: the package's own ``static/`` (an installed wheel), else
    ``static/`` at the checkout's top level (STATIC_DIR)."""
    packaged = Path(str(importlib.resources.files("dropsvc") / "static"))  # a package on disk: a real directory
    return packaged if (packaged / "index.html").is_file() else STATIC_DIR


class Site:
    """The shopper page's files, loaded once from ``static_dir``."""

    def __init__(self, static_dir: Path | None = None) -> None:
        self.static_dir = static_dir or default_static_dir()
        self.assets: dict[str, Asset] = {}
        for name in (*ASSET_NAMES, ICON):
            path = self.static_dir / name
            if path.is_file():
                self.assets[name] = Asset.from_bytes(path.read_bytes(), CONTENT_TYPES[path.suffix])
            else:
                log.warning("static_asset_missing", path=str(path), hint="run `make static-assets`")
        index = self.static_dir / "index.html"
        self.template = index.read_text("utf-8") if index.is_file() else None
        if self.template is None:
            log.warning("static_asset_missing", path=str(index))
        else:
            for name, asset in self.assets.items():
                self.template = self.template.replace(f'"/static/{name}"', f'"/static/{name}?v={asset.version}"')

    def url(self, name: str) -> str:
        """The versioned URL of an asset (tests, links)."""
        return f"/static/{name}?v={self.assets[name].version}"

    def page(self, req: falcon.Request, resp: falcon.Response, status: int = 200) -> None:
        """The page (its Alpine code shows the drops or the order, by path), never cached unchecked."""
        if self.template is None:
            raise not_found("page_missing", "the shopper page is not installed")
        resp.status = status
        resp.content_type = HTML_TYPE
        resp.cache_control = [REVALIDATE]
        resp.set_headers(PAGE_HEADERS)
        resp.data = self.template.replace(SERVER_TIME_MARK, str(now_ms()), 1).encode("utf-8")

    def send_asset(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """An asset: immutable for a year at its current version, else revalidated by ETag."""
        asset = self.assets.get(name)
        if asset is None:
            raise not_found("not_found", "no such file")
        zipped = accepts_gzip(req)
        etag = asset.etag(zipped)
        resp.vary = ["Accept-Encoding"]
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("ETag", etag)
        resp.cache_control = [IMMUTABLE if req.get_param("v") == asset.version else REVALIDATE]
        if req.if_none_match and any(tag == "*" or tag == etag[1:-1] for tag in req.if_none_match):
            resp.status = 304
            return
        resp.content_type = asset.content_type
        if zipped:
            resp.set_header("Content-Encoding", "gzip")
            resp.data = asset.gzipped
        else:
            resp.data = asset.body


class ShopperPage:
    """GET / : the live drops; issues the buyer cookie when it is missing or invalid."""

    def __init__(self, site: Site, buyers: Buyers) -> None:
        self.site = site
        self.buyers = buyers

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.buyers.ensure_cookie(req, resp)
        self.site.page(req, resp)

    on_head = on_get


class OrderPage:
    """GET /orders/{public_ref}: where PayOS sends the shopper back; 404 (the page) for an unknown ref."""

    def __init__(self, site: Site, buyers: Buyers, engine: Engine) -> None:
        self.site = site
        self.buyers = buyers
        self.engine = engine

    def on_get(self, req: falcon.Request, resp: falcon.Response, public_ref: str) -> None:
        self.buyers.ensure_cookie(req, resp)
        found = self.engine.get_order(public_ref) is not None
        self.site.page(req, resp, status=200 if found else 404)

    on_head = on_get


class StaticFiles:
    """GET /static/{name}, /static/vendor/{name} and /favicon.ico: only the known assets, none read per request."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self.site.send_asset(req, resp, name)

    def on_get_vendor(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self.site.send_asset(req, resp, "vendor/" + name)

    def on_get_icon(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.site.send_asset(req, resp, ICON)

    on_head = on_get
    on_head_vendor = on_get_vendor
    on_head_icon = on_get_icon


def add_page_routes(app: falcon.App, engine: Engine, buyers: Buyers, site: Site | None = None) -> Site:
    """Routes for the page, the order page and the assets; returns the loaded site."""
    site = site or Site()
    files = StaticFiles(site)
    app.add_route("/", ShopperPage(site, buyers))
    app.add_route("/orders/{public_ref}", OrderPage(site, buyers, engine))
    app.add_route("/static/{name}", files)
    app.add_route("/static/vendor/{name}", files, suffix="vendor")
    app.add_route("/favicon.ico", files, suffix="icon")
    return site
