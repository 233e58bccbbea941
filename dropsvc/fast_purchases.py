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
from dropsvc.http_errors import ApiError
from dropsvc.observe import RequestObserver
from dropsvc.resources.common import is_json, parse_id
from dropsvc.resources.purchases import BODY_LIMIT, Purchases, answer, idempotency_key, purchase_fields

PREFIX = "/api/drops/"
SUFFIX = "/purchases"
ROUTE = PREFIX + "{drop_id}" + SUFFIX
JSON_HEADER = ("content-type", "application/json")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FastPurchases:
    """WSGI app: well-formed purchase POSTs answered here, everything else by ``app`` (Falcon)."""

    def __init__(self, app: WSGIApp, purchases: Purchases, observer: RequestObserver) -> None:
        self.app = app
        self.purchase = purchases.purchase
        self.user_id_in = purchases.buyer_of
        self.record = observer.record
        self.access_log = observer.access_log
        self._status_lines = {code: code_to_http_status(code) for code in (200, 201, 404, 409, 422)}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if (environ["REQUEST_METHOD"] != "POST" or not path.startswith(PREFIX) or not path.endswith(SUFFIX)
                or environ.get("QUERY_STRING")):
            return self.app(environ, start_response)
        started = perf_counter_ns()
        drop_id = parse_id(path[len(PREFIX):-len(SUFFIX)])
        length_text: str = environ.get("CONTENT_LENGTH") or ""
        if (drop_id is None or not is_json(environ.get("CONTENT_TYPE")) or not length_text.isdigit()
                or not 0 < int(length_text) <= BODY_LIMIT):
            return self.app(environ, start_response)
        data = environ["wsgi.input"].read(int(length_text))
        try:
            if len(data) != int(length_text):
                raise ValueError("short body")
            body = orjson.loads(data)
            if type(body) is not dict:
                raise ValueError("not an object")
            buyer = None if self.user_id_in is None else self.user_id_in(environ.get("HTTP_COOKIE"))
            user_id, quantity = purchase_fields(body, buyer)
            key = idempotency_key(environ.get("HTTP_IDEMPOTENCY_KEY"))
            status, payload, location = answer(self.purchase(drop_id, user_id, quantity, key))
        except (ValueError, ApiError, StorageError):
            # Falcon renders the refusal (or the 503) exactly as it would have; nothing was bought
            environ["wsgi.input"] = io.BytesIO(data)
            return self.app(environ, start_response)
        headers = [JSON_HEADER, ("content-length", str(len(payload)))]
        if location is not None:
            headers.append(("location", location))
        start_response(self._status_lines[status], headers)
        now = perf_counter_ns()
        self.record(ROUTE, "POST", status, now - started)
        if self.access_log is not None:
            self.access_log.write("POST", ROUTE, status, now - started, now, payload)
        return [payload]
