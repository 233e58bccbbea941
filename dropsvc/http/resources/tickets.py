"""A queue drop's tickets (SPEC 11): join the line, view a ticket (the check-in), leave.

Every route needs the buyer cookie (``dropsvc.buyers``): a ticket is the
cookie buyer's (the engine's user_id ``buyer-<id>``), and only that buyer
sees it; anyone else, an unknown or a malformed ticket id alike, gets 404
``ticket_not_found``. The ticket object never carries the buyer id.

A ticket's view is on the herd's path: one engine call reads the ticket and writes its JSON
(``Engine.ticket_view``: ``ahead`` and the drop's figures from the process's copy of the line, at
most 0.4 s old; a write only for the check-in itself, once per ticket), after the ticket's id and
token from this process's cache. Every ticket answer (a join, a view, a leave) is that object.

``eta_s`` is a rough estimate in seconds (the engine's ``ticket_view.pxi`` says how it is made):
the seconds left in an admitted ticket's window; for a waiting ticket, 0 when the units ahead fit
in what remains, else how many admission windows the line needs to turn over to it; else null.
"""

from __future__ import annotations

from typing import Any, Protocol

import falcon
import orjson

from dropsvc.buyers import USER_ID_PREFIX, Buyers
from dropsvc.http.errors import ApiError, invalid_field, not_found
from dropsvc.http.resources.common import parse_id, read_json_object
from dropsvc.http.resources.drops import drop_not_found, drop_number
from dropsvc.ledger import Engine
from dropsvc.tickets import TicketTokens

BODY_LIMIT = 4096
JOIN_FIELDS = ("altcha",)  # the ALTCHA widget's payload: checked when the drop's challenge is pow
PRIVATE = "private, no-store"
BUYER_REQUIRED = "the line needs the buyer cookie the drop's page gives"
ITEM_ROUTE = "/api/drops/{drop_id}/tickets/{ticket_id}"
TOKEN_CACHE = 65536  # tokens kept signed per process; the whole cache is dropped when full
CLOSED_WORDS = {"queue": "the line is closed: the drop has ended",
                "draw": "the draw's entries are closed: the draw is made at entries_close_at"}


def ticket_not_found(ticket_id: object) -> ApiError:
    return not_found("ticket_not_found", f"you have no ticket {str(ticket_id)[:32]!r} in this drop's line")


def no_queue(drop_id: object) -> ApiError:
    return not_found("no_queue", f"drop {drop_id} has no line: it sells to everyone (admission open)")


class TicketViews:
    """What the ticket routes share: the buyer of a request and the ticket object."""

    def __init__(self, engine: Engine, buyers: Buyers, tokens: TicketTokens) -> None:
        self.engine = engine
        self.buyers = buyers
        self.tokens = tokens
        self._heads: dict[tuple[int, int, str], bytes] = {}  # ticket objects' openings, made once a process

    def head(self, drop_id: int, ticket_id: int, buyer_id: str) -> bytes:
        """The ticket object's opening: its id as shown and its token (``TicketTokens.sign``), from this
        process's cache once signed."""
        key = (drop_id, ticket_id, buyer_id)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= TOKEN_CACHE:
                self._heads.clear()
            token = self.tokens.sign(drop_id, ticket_id, buyer_id)
            head = self._heads[key] = b'{"ticket_id":%s,"token":%s,' % (orjson.dumps(str(ticket_id)),
                                                                         orjson.dumps(token))
        return head

    def buyer(self, req: falcon.Request) -> str:
        """The cookie buyer's id, or 409 buyer_required."""
        buyer_id = self.buyers.buyer_of(req)
        if buyer_id is None:
            raise ApiError(409, "buyer_required", BUYER_REQUIRED)
        return buyer_id

    def body(self, drop_id: int, ticket_id: int, buyer_id: str, check_in: bool = True) -> bytes | None:
        """The ticket object (SPEC 11) as JSON, without the buyer; a view checks its holder in (not a
        join's or a leave's answer: ``check_in`` False). None when the buyer has no such ticket."""
        head = self._heads.get((drop_id, ticket_id, buyer_id)) or self.head(drop_id, ticket_id, buyer_id)
        return self.engine.ticket_view(drop_id, ticket_id, USER_ID_PREFIX + buyer_id, head, check_in)

    def view_body(self, drop_id: str, ticket_id: str, buyer_id: str) -> bytes | None:
        """The body of the buyer's view of a ticket (path segments as given), which checks its holder
        in; None when the buyer has no such ticket. The fast path (``dropsvc.http.fast_path``) calls this too."""
        number, ticket_number = parse_id(drop_id), parse_id(ticket_id)
        if number is None or ticket_number is None:
            return None
        return self.body(number, ticket_number, buyer_id)

    def answer(self, resp: falcon.Response, drop_id: int, ticket_id: int, buyer_id: str, status: int = 200) -> None:
        """A join's or a leave's answer: the ticket as it is now (no check-in)."""
        body = self.body(drop_id, ticket_id, buyer_id, check_in=False)
        if body is None:
            raise ticket_not_found(ticket_id)
        resp.status, resp.data = status, body


def join_body(req: falcon.Request) -> str | None:
    """The join's body: a JSON object with at most ``altcha`` (a string), or 4xx; the altcha payload."""
    body = read_json_object(req, BODY_LIMIT)
    for name, value in body.items():
        if name not in JOIN_FIELDS:
            raise invalid_field(f"unknown field {name[:64]!r}: the body takes altcha only")
        if type(value) is not str:
            raise invalid_field("altcha must be a string")
    return body.get("altcha")


class Prover(Protocol):
    def prove(self, drop_id: int, buyer_id: str, payload: Any) -> None: ...


class Tickets:
    """POST /api/drops/{drop_id}/tickets: join the line (201 a new ticket, 200 the buyer's own); a line
    with a proof of work checks the solution first (``challenges.Proofs``)."""

    def __init__(self, views: TicketViews, proofs: Prover) -> None:
        self.views = views
        self.proofs = proofs

    def on_post(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        number = drop_number(drop_id)
        payload = join_body(req)
        buyer_id = self.views.buyer(req)
        self.proofs.prove(number, buyer_id, payload)
        outcome, ticket = self.views.engine.join_line(number, USER_ID_PREFIX + buyer_id)
        if outcome == "not_found":
            raise drop_not_found(drop_id)
        if outcome == "no_queue":
            raise no_queue(number)
        if outcome == "queue_closed":
            drop = self.views.engine.get_drop(number) or {}
            raise ApiError(409, "queue_closed", CLOSED_WORDS.get(drop.get("admission"), CLOSED_WORDS["queue"]))
        if outcome == "entries_not_open":
            raise ApiError(409, "entries_not_open", "the draw's entries open at its starts_at: come back then")
        if ticket is None:
            raise RuntimeError(f"join_line answered {outcome!r} without a ticket")
        self.views.answer(resp, number, ticket["ticket_id"], buyer_id, 201 if outcome == "ok" else 200)
        if outcome == "ok":
            resp.location = f"/api/drops/{number}/tickets/{ticket['ticket_id']}"


class TicketItem:
    """GET (the buyer's view, which checks in) and DELETE (leave) one ticket."""

    def __init__(self, views: TicketViews) -> None:
        self.views = views

    def on_get(self, req: falcon.Request, resp: falcon.Response, drop_id: str, ticket_id: str) -> None:
        resp.cache_control = [PRIVATE]
        body = self.views.view_body(drop_id, ticket_id, self.views.buyer(req))
        if body is None:
            raise ticket_not_found(ticket_id)
        resp.data = body

    def on_delete(self, req: falcon.Request, resp: falcon.Response, drop_id: str, ticket_id: str) -> None:
        resp.cache_control = [PRIVATE]
        buyer_id = self.views.buyer(req)
        number, ticket_number = parse_id(drop_id), parse_id(ticket_id)
        if number is None or ticket_number is None:
            raise ticket_not_found(ticket_id)
        outcome = self.views.engine.leave_line(number, ticket_number, USER_ID_PREFIX + buyer_id)
        if outcome == "not_found":
            raise ticket_not_found(ticket_id)
        if outcome == "already_left":
            raise ApiError(409, "already_left", "this ticket has already left the line")
        if outcome != "ok":
            raise ApiError(409, "ticket_final", f"this ticket is {outcome}: it can no longer leave the line")
        self.views.answer(resp, number, ticket_number, buyer_id)
