"""A queue drop's public reads (SPEC 11): the queue document and the fairness audit.

``GET /api/drops/{drop_id}/queue`` is polled by the whole herd: the same for
everyone, ``Cache-Control: public, max-age=1`` with an ETag (nginx micro-caches
it too). Rendering it is several reads (the queue's state, held units, the
fairness object), so each process keeps the rendered document (bytes and ETag)
of each drop for ``CACHE_SECONDS`` on the monotonic clock: a herd of polls costs
one render per interval per process. No write lock is taken.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any, NamedTuple

import falcon
import orjson

from dropsvc.http.errors import ApiError
from dropsvc.http.resources.common import etag_matches
from dropsvc.http.resources.drops import CACHE_CONTROL, drop_not_found, drop_number
from dropsvc.http.resources.tickets import no_queue
from dropsvc.ledger import Engine

ROUTE = "/api/drops/{drop_id}/queue"
CACHE_SECONDS = 0.4
CACHE_DROPS = 256  # at most this many drops' documents kept; the whole cache is dropped when full
POLL_AFTER_MS = 1000  # while the line moves
POLL_AFTER_FINAL_MS = 10000  # sold out or ended: nothing moves any more
FINAL_STATES = ("sold_out", "ended")
NDJSON = "application/x-ndjson"


class Rendered(NamedTuple):
    body: bytes
    etag: str
    expires: float


def missing_line(engine: Engine, drop_id: int) -> ApiError:
    """404 for a drop without a line: no_queue when it exists (open), else drop_not_found (``line_refusal``)."""
    return no_queue(drop_id) if engine.line_refusal(drop_id) == "no_queue" else drop_not_found(drop_id)


def render_document(state: dict[str, Any], fairness: dict[str, Any]) -> bytes:
    """The queue document's bytes."""
    return orjson.dumps({
        "state": state["state"], "admitted_through": state["admitted_through"], "waiting": state["waiting"],
        "remaining": state["remaining"], "held": state["held"], "paused": state["paused"],
        "commitment": fairness["commitment"], "seed": fairness["seed"],
        "poll_after_ms": POLL_AFTER_FINAL_MS if state["state"] in FINAL_STATES else POLL_AFTER_MS,
    })


class QueueDocument:
    """GET /api/drops/{drop_id}/queue: the public queue document, cached per process briefly."""

    def __init__(self, engine: Engine, clock: Any = time.monotonic) -> None:
        self.engine = engine
        self.clock = clock
        self.cache: dict[int, Rendered] = {}
        self.lock = threading.Lock()

    def rendered(self, drop_id: int) -> Rendered | None:
        """The drop's document, from the cache while fresh; None for a drop without a line."""
        now = self.clock()
        cached = self.cache.get(drop_id)
        if cached is not None and cached.expires > now:
            return cached
        state = self.engine.queue_state(drop_id)
        fairness = None if state is None else self.engine.fairness(drop_id)
        if state is None or fairness is None:
            return None
        body = render_document(state, fairness)
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        fresh = Rendered(body, etag, now + CACHE_SECONDS)
        with self.lock:
            if len(self.cache) >= CACHE_DROPS:
                self.cache.clear()
            self.cache[drop_id] = fresh
        return fresh

    def on_get(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        """The document, or a bodiless 304 when If-None-Match names it. The fast path
        (``dropsvc.http.fast_path``) answers the plain cases itself, from ``rendered``."""
        number = drop_number(drop_id)
        document = self.rendered(number)
        if document is None:
            raise missing_line(self.engine, number)
        resp.set_header("ETag", document.etag)
        resp.cache_control = [CACHE_CONTROL]
        if etag_matches(req, document.etag):
            resp.status = 304
            return
        resp.data = document.body


class AuditRead:
    """What the audit reads share: the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine


class Fairness(AuditRead):
    """GET /api/drops/{drop_id}/fairness: ``{commitment, seed}``, the seed null until the close."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        number = drop_number(drop_id)
        fairness = self.engine.fairness(number)
        if fairness is None:
            raise missing_line(self.engine, number)
        resp.data = orjson.dumps(fairness)


class FairnessTickets(AuditRead):
    """GET /api/drops/{drop_id}/fairness/tickets: one ticket a line (NDJSON) once the seed is revealed."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        number = drop_number(drop_id)
        tickets = self.engine.fairness_tickets(number)
        if tickets is None:
            if self.engine.fairness(number) is None:
                raise missing_line(self.engine, number)
            raise ApiError(409, "not_revealed", "the line's close is not recorded yet: its seed is not revealed")
        resp.content_type = NDJSON
        resp.data = b"".join(orjson.dumps(ticket) + b"\n" for ticket in tickets)
