"""The purchase POST of a herd, answered before Falcon's request machinery.

During a drop nearly every request is ``POST /api/drops/{id}/purchases`` with
a small well-formed JSON body, and once the stock is gone nearly every answer
is the same 409. Falcon's Request/Response objects, router and middleware
cost about as much as the engine's sold-out answer itself, so this WSGI
wrapper answers exactly those requests directly from the environ and hands
every other request to the Falcon app untouched.

It never decides anything the resource would decide otherwise: it uses the
resource's own checks (:func:`purchase_fields`, :func:`idempotency_key`), the
engine call the resource makes and the resource's :func:`answer`, and it
records the request in the same metrics and access log as the middleware.
Anything unusual (another method or path, a query string, a body that is not
a small JSON object with valid fields, an invalid Idempotency-Key, a storage
error) goes to Falcon with the body put back, so every refusal is rendered
once, by Falcon, exactly as before. ``tests/integration/test_fast_purchases.py``
checks both paths answer byte for byte alike.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from time import perf_counter_ns
from typing import Any

import orjson
from falcon.util.misc import code_to_http_status

from dropsvc._engine import StorageError
from dropsvc.http.errors import ApiError
from dropsvc.http.observer import RequestObserver
from dropsvc.http.resources.common import is_json, parse_id
from dropsvc.http.resources.purchases import BODY_LIMIT, REFUSALS, ROUTE, Purchases

PREFIX, _, SUFFIX = ROUTE.partition("{drop_id}")
JSON_HEADER = ("content-type", "application/json")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FastPurchases:
    """WSGI app: well-formed purchase POSTs answered here, everything else by ``app`` (Falcon)."""

    def __init__(self, app: WSGIApp, purchases: Purchases, observer: RequestObserver) -> None:
        self.app = app
        self.decide = purchases.decide
        self.observed = observer.observed
        statuses = {200, 201, *(status for status, _ in REFUSALS.values())}  # what ``answer`` gives
        self._status_lines = {code: code_to_http_status(code) for code in statuses}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if (environ["REQUEST_METHOD"] != "POST" or not path.startswith(PREFIX) or not path.endswith(SUFFIX)
                or environ.get("QUERY_STRING")):
            return self.app(environ, start_response)
        started = perf_counter_ns()
        drop_id = parse_id(path[len(PREFIX):-len(SUFFIX)])
        length_text: str = environ.get("CONTENT_LENGTH") or ""
        length = int(length_text) if length_text.isdigit() else 0
        if drop_id is None or not is_json(environ.get("CONTENT_TYPE")) or not 0 < length <= BODY_LIMIT:
            return self.app(environ, start_response)
        data = environ["wsgi.input"].read(length)
        try:
            if len(data) != length:
                raise ValueError("short body")
            body = orjson.loads(data)
            if type(body) is not dict:
                raise ValueError("not an object")
            status, payload, location = self.decide(drop_id, body, environ.get("HTTP_COOKIE"),
                                                    environ.get("HTTP_IDEMPOTENCY_KEY"))
        except (ValueError, ApiError, StorageError):
            # Falcon renders the refusal (or the 503) exactly as it would have; nothing was bought
            environ["wsgi.input"] = io.BytesIO(data)
            return self.app(environ, start_response)
        headers = [JSON_HEADER, ("content-length", str(len(payload)))]
        if location is not None:
            headers.append(("location", location))
        start_response(self._status_lines[status], headers)
        now = perf_counter_ns()
        self.observed(ROUTE, "POST", status, now - started, now, payload)
        return [payload]
