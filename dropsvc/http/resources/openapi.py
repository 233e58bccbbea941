"""GET /openapi.json: the document ``dropsvc.http.openapi`` builds from the app's own router."""

from __future__ import annotations

import falcon
import orjson

from dropsvc.http.openapi import build_document


class OpenApiDocument:
    """GET /openapi.json: built from the router at the first request (every route added by then)."""

    def __init__(self, app: falcon.App) -> None:
        self.app = app
        self._data: bytes | None = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._data is None:
            self._data = orjson.dumps(build_document(self.app))
        resp.cache_control = ["no-cache"]
        resp.data = self._data
