"""The herd's two hot requests, answered before Falcon's request machinery.

During a drop nearly every request is ``POST /api/drops/{id}/purchases`` with
a small well-formed JSON body, and once the stock is gone nearly every answer
is the same 409; a queue drop's waiting herd views its tickets
(``GET /api/drops/{id}/tickets/{ticket_id}``, with the buyer cookie). Falcon's
Request/Response objects, router and middleware cost about as much as the
engine's sold-out answer itself, so this WSGI wrapper answers exactly those
requests directly from the environ and hands every other request to the Falcon
app untouched; the public queue document too, from its resource's render cache.

It never decides anything the resource would decide otherwise: it calls the
resource's own ``decide`` / ``view_body`` (the same checks, engine call and answer), and it
records the request in the same metrics and access log as the middleware,
with the engine's outcome as it came. Anything unusual (another method or
path, a query string, a body that is not a small JSON object with valid
fields, an invalid Idempotency-Key; a view without a valid cookie or of no ticket
of the buyer's, which reads and writes nothing) goes to Falcon with the body put back
before the engine was called, so every refusal of input is rendered once, by
Falcon. A storage failure is answered here (the 503 Falcon would give): the
request ran once and is not run again. ``tests/integration/test_fast_purchases.py``
checks both paths answer byte for byte alike.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from time import perf_counter_ns
from typing import Any, NamedTuple

import orjson
from falcon.util.misc import code_to_http_status

from dropsvc._engine import StorageError
from dropsvc.http.errors import ApiError, error_body, storage_unavailable
from dropsvc.http.observer import RequestObserver
from dropsvc.http.resources.common import is_json, parse_id
from dropsvc.http.resources.drops import CACHE_CONTROL
from dropsvc.http.resources.purchases import BODY_LIMIT, PRERENDERED, REJECTED, ROUTE, Purchases
from dropsvc.http.resources.queue import ROUTE as QUEUE_ROUTE
from dropsvc.http.resources.queue import QueueDocument
from dropsvc.http.resources.tickets import ITEM_ROUTE, PRIVATE, TicketViews

PREFIX, _, SUFFIX = ROUTE.partition("{drop_id}")
TICKETS = "/tickets/"  # a ticket's path: PREFIX, the drop id, TICKETS, the ticket id
QUEUE = QUEUE_ROUTE.rpartition("}")[2]  # the queue document's: PREFIX, the drop id, QUEUE
JSON_HEADER = ("content-type", "application/json")
VIEW_HEADERS = (JSON_HEADER, ("cache-control", PRIVATE))

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class HotRoutes(NamedTuple):
    """The resources whose answers the fast path gives."""

    purchases: Purchases
    views: TicketViews
    document: QueueDocument


class FastPath:
    """WSGI app: well-formed purchase POSTs and ticket views answered here, everything else by ``app`` (Falcon)."""

    def __init__(self, app: WSGIApp, hot: HotRoutes, observer: RequestObserver) -> None:
        self.app = app
        self.decide = hot.purchases.decide
        self.view_body = hot.views.view_body
        self.buyer_in = hot.views.buyers.buyer_in
        self.rendered = hot.document.rendered
        self.observed = observer.observed
        statuses = {200, 201, 304, *(refusal.status for refusal in PRERENDERED)}  # what ``decide`` gives, and GETs
        self._status_lines = {code: code_to_http_status(code) for code in statuses}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX) or environ.get("QUERY_STRING"):
            return self.app(environ, start_response)
        method = environ["REQUEST_METHOD"]
        if method == "GET" and TICKETS in path:
            return self._view(environ, start_response, path)
        if method == "GET" and path.endswith(QUEUE):
            return self._document(environ, start_response, path)
        if method != "POST" or not path.endswith(SUFFIX):
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
            decided = self.decide(drop_id, body, environ.get("HTTP_COOKIE"), environ.get("HTTP_IDEMPOTENCY_KEY"),
                                  environ.get("HTTP_ADMISSION_TICKET"))
        except (ValueError, ApiError):
            # refused before the engine was called: Falcon renders the refusal exactly as it would have
            environ["wsgi.input"] = io.BytesIO(data)
            return self.app(environ, start_response)
        except StorageError as error:
            return self._unavailable(environ, start_response, path, started, error)
        headers = [JSON_HEADER, ("content-length", str(len(decided.body)))]
        if decided.location is not None:
            headers.append(("location", decided.location))
        start_response(self._status_lines[decided.status], headers)
        now = perf_counter_ns()
        self.observed(ROUTE, "POST", decided.status, now - started, now, decided.outcome, decided.error)
        return [decided.body]

    def _view(self, environ: dict[str, Any], start_response: Callable[..., Any], path: str) -> Iterable[bytes]:
        """A ticket's view by its buyer (200), else Falcon."""
        started = perf_counter_ns()
        drop_id, tickets, ticket_id = path[len(PREFIX):].partition(TICKETS)
        buyer_id = self.buyer_in(environ.get("HTTP_COOKIE"))
        if buyer_id is None or "/" in ticket_id:
            return self.app(environ, start_response)
        try:
            body = self.view_body(drop_id, ticket_id, buyer_id)
        except StorageError as error:
            return self._unavailable(environ, start_response, path, started, error, "GET", ITEM_ROUTE,
                                     VIEW_HEADERS[1:])
        if body is None:
            return self.app(environ, start_response)
        start_response(self._status_lines[200], [*VIEW_HEADERS, ("content-length", str(len(body)))])
        now = perf_counter_ns()
        self.observed(ITEM_ROUTE, "GET", 200, now - started, now, None, None)
        return [body]

    def _document(self, environ: dict[str, Any], start_response: Callable[..., Any], path: str) -> Iterable[bytes]:
        """The queue document from its render cache: 200, or 304 when If-None-Match is its ETag
        alone; else (another If-None-Match, no line, a bad id) Falcon."""
        started = perf_counter_ns()
        drop_id = parse_id(path[len(PREFIX):-len(QUEUE)])
        document = None if drop_id is None else self.rendered(drop_id)
        wanted = environ.get("HTTP_IF_NONE_MATCH")
        if document is None or (wanted is not None and wanted != document.etag):
            return self.app(environ, start_response)
        status, body = (304, b"") if wanted is not None else (200, document.body)
        headers = [("etag", document.etag), ("cache-control", CACHE_CONTROL)]
        if status == 200:
            headers += [JSON_HEADER, ("content-length", str(len(body)))]
        start_response(self._status_lines[status], headers)
        now = perf_counter_ns()
        self.observed(QUEUE_ROUTE, "GET", status, now - started, now, None, None)
        return [body]

    def _unavailable(self, environ: dict[str, Any], start_response: Callable[..., Any], path: str, started: int,
                     error: StorageError, method: str = "POST", route: str = ROUTE,
                     extra: tuple[tuple[str, str], ...] = ()) -> Iterable[bytes]:
        """The storage failure's 503, as Falcon's error handler renders it (``extra``: the route's own headers)."""
        refusal = storage_unavailable(method, path, error)
        payload = error_body(refusal.error_code, refusal.message)
        headers = [JSON_HEADER, *extra, ("content-length", str(len(payload))),
                   *((name.lower(), value) for name, value in refusal.headers.items())]
        start_response(code_to_http_status(refusal.status_code), headers)
        now = perf_counter_ns()
        self.observed(route, method, refusal.status_code, now - started, now, REJECTED, refusal.error_code)
        return [payload]
