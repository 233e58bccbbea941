"""A queue drop's tickets (SPEC 11): join the line, view a ticket (the check-in), leave.

Every route needs the buyer cookie (``dropsvc.buyers``): a ticket is the
cookie buyer's (the engine's user_id ``buyer-<id>``), and only that buyer
sees it; anyone else, an unknown or a malformed ticket id alike, gets 404
``ticket_not_found``. The ticket object never carries the buyer id.

A ticket's view is on the herd's path: one read of the ticket (``Engine.ticket_view``;
a write only for the check-in itself, once per ticket), ``ahead`` and the drop's
figures from the process's copy of the line (at most 0.4 s old), the token from a cache.

``eta_s``, a rough estimate in seconds, for a waiting ticket with a position
while units remain: 0 when the units of the tickets ahead (``ahead`` x
per_user_limit) are fewer than ``remaining``; else the line is assumed to turn
over at most ``remaining`` units per admission window, so
``ceil(units ahead / remaining) x admit_seconds``. An admitted ticket: the
seconds left in its window. Otherwise null (before the close, nothing
remaining, a final state).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Protocol

import falcon
import orjson

from dropsvc.buyers import USER_ID_PREFIX, Buyers
from dropsvc.drops import now_ms
from dropsvc.http.errors import ApiError, invalid_field, not_found
from dropsvc.http.resources.common import parse_id, read_json_object, send_json
from dropsvc.http.resources.drops import drop_not_found, drop_number
from dropsvc.ledger import TICKET_ROW_FIELDS, Engine
from dropsvc.ledger.queue import LineCopy
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


def eta_seconds(state: str, admitted_until: int | None, ahead: int | None, line: dict[str, Any] | None,
                now: int | None = None) -> int | None:
    """The estimate of the module's docstring, from the ticket's state, window and ``ahead`` and its
    drop's figures (``line``: ``LineCopy.drop``, None when unknown); ``now``: the clock's unless given."""
    if state == "admitted" and admitted_until is not None:
        return max(0, -(-(admitted_until - (now_ms() if now is None else now)) // 1000))
    if state != "waiting" or ahead is None or line is None:
        return None
    remaining = line["remaining"]
    if remaining <= 0 or not line["admit_seconds"]:
        return None
    units = ahead * line["per_user_limit"]
    if units < remaining:
        return 0
    return -(-units // remaining) * line["admit_seconds"]


class TicketViews:
    """What the ticket routes share: the buyer of a request and the ticket object."""

    def __init__(self, engine: Engine, buyers: Buyers, tokens: TicketTokens) -> None:
        self.engine = engine
        self.buyers = buyers
        self.tokens = tokens
        self._given: dict[tuple[int, int, str], tuple[str, str]] = {}  # ids and tokens given, signed once a process

    def given(self, drop_id: int, ticket_id: int, buyer_id: str) -> tuple[str, str]:
        """The ticket's id as shown and its token (``TicketTokens.sign``), from this process's cache once signed."""
        key = (drop_id, ticket_id, buyer_id)
        given = self._given.get(key)
        if given is None:
            if len(self._given) >= TOKEN_CACHE:
                self._given.clear()
            given = self._given[key] = (str(ticket_id), self.tokens.sign(drop_id, ticket_id, buyer_id))
        return given

    def buyer(self, req: falcon.Request) -> str:
        """The cookie buyer's id, or 409 buyer_required."""
        buyer_id = self.buyers.buyer_of(req)
        if buyer_id is None:
            raise ApiError(409, "buyer_required", BUYER_REQUIRED)
        return buyer_id

    def present(self, drop_id: int, ticket_id: int, row: tuple[Any, ...], line: LineCopy | None,
                buyer_id: str) -> dict[str, Any]:
        """The ticket object (SPEC 11), without the buyer: the ticket as ``Engine.ticket_row`` gives it
        (TICKET_ROW_FIELDS), ``ahead`` and the estimate from its line's copy (None: unknown)."""
        joined_at, kind, state, position, _, admitted_until = row
        ahead = None if line is None or position is None else bisect_left(line.waiting, position)  # LineCopy.ahead
        shown, token = self._given.get((drop_id, ticket_id, buyer_id)) or self.given(drop_id, ticket_id, buyer_id)
        return {
            "ticket_id": shown, "token": token,
            "kind": kind, "joined_at": joined_at, "state": state, "position": position, "ahead": ahead,
            "admitted_until": admitted_until,
            "eta_s": eta_seconds(state, admitted_until, ahead, None if line is None else line.drop),
        }

    def present_row(self, drop_id: int, ticket: dict[str, Any], buyer_id: str) -> dict[str, Any]:
        """``present`` for a ticket's row as a dict (a join, a leave), its line's copy read here."""
        return self.present(drop_id, ticket["ticket_id"], tuple(ticket[name] for name in TICKET_ROW_FIELDS),
                            self.engine.line_copy(drop_id), buyer_id)

    def view_body(self, drop_id: str, ticket_id: str, buyer_id: str) -> bytes | None:
        """The body of the buyer's view of a ticket (path segments as given), which checks its holder
        in; None when the buyer has no such ticket. The fast path (``dropsvc.http.fast_path``) calls this too."""
        number, ticket_number = parse_id(drop_id), parse_id(ticket_id)
        if number is None or ticket_number is None:
            return None
        view = self.engine.ticket_view(number, ticket_number, USER_ID_PREFIX + buyer_id)
        return None if view is None else orjson.dumps(self.present(number, ticket_number, *view, buyer_id))


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
        send_json(resp, self.views.present_row(number, ticket, buyer_id), 201 if outcome == "ok" else 200)
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
        ticket = self.views.engine.ticket_of(number, ticket_number)
        if ticket is None:
            raise ticket_not_found(ticket_id)
        send_json(resp, self.views.present_row(number, ticket, buyer_id))
