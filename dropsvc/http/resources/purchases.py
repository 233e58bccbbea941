"""POST /api/drops/{drop_id}/purchases: the hot path (SPEC 5, and SPEC 11 for a line's drop).

Kept lean on purpose: the body is read once, parsed by orjson, checked by hand
in one pass; refusals the engine decides (sold out and the like) are answered
with pre-rendered bytes instead of exceptions, so a herd hitting a sold-out
drop costs as little as possible.

A queue or draw drop sells only to admitted tickets. The engine checks the
ticket inside the purchase transaction; this resource only turns the
``Admission-Ticket`` header into a ticket id: the token must verify for the
drop and the cookie's buyer (``dropsvc.tickets``), else it is passed as no
ticket (the engine: ``invalid``); once refused, a real token of the drop whose
ticket is another buyer's is answered ``other_buyer`` (one read, on that
refusal's path only). Without a valid buyer cookie a
line's drop answers 409 ``buyer_required``: the resource learns that from the
engine's not_admitted (no extra read per purchase), or, when the body has no
usable user_id either, from one read on that refusal's path. ``open`` drops
ignore the header and pay for none of this.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import falcon
import orjson

from dropsvc._engine import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_QUANTITY, MAX_USER_ID_LENGTH, Result
from dropsvc.buyers import USER_ID_PREFIX, Buyers
from dropsvc.http.errors import ApiError, error_body, invalid_field
from dropsvc.http.resources.common import parse_id, read_json_object
from dropsvc.http.resources.drops import drop_not_found
from dropsvc.http.resources.orders import public_order
from dropsvc.ledger import Engine
from dropsvc.tickets import TicketTokens

ROUTE = "/api/drops/{drop_id}/purchases"
BODY_LIMIT = 4096

REJECTED = "rejected"  # the outcome of a purchase request refused before the engine decided anything


class Answer(NamedTuple):
    """A decided purchase as HTTP: status, body, Location; the engine's outcome and the error code.

    The outcome is the engine's own name (``Result.outcome``, from its C enum), carried
    as it is to the access log; metrics count the same outcomes in the engine.
    """

    status: int
    body: bytes
    location: str | None
    outcome: str
    error: str | None


# the engine's refusals, answered with the same pre-rendered Answer every time; ok and duplicate answer the order
REFUSALS: dict[str, Answer] = {
    outcome: Answer(status, error_body(code, message), None, outcome, code)
    for outcome, status, code, message in (
        ("sold_out", 409, "sold_out", "the drop is sold out"),
        ("per_user_limit", 409, "per_user_limit",
         "this purchase would take you over the drop's per-user limit"),
        ("not_started", 409, "not_started", "the drop has not started yet"),
        ("ended", 409, "ended", "the drop has ended"),
        ("idempotency_conflict", 422, "idempotency_conflict",
         "this Idempotency-Key was used with a different user_id or quantity"),
        ("not_found", 404, "drop_not_found", "no such drop"),
    )
}

NOT_ADMITTED = "not_admitted"
NO_TICKET = 0  # what an Admission-Ticket that does not verify is passed as: no ticket has that id
# why a line's drop did not sell (SPEC 11's error.ticket_state): missing, invalid and other_buyer, then
# the ticket's own state (every one but admitted: an admission past its admitted_until is lapsed)
TICKET_REFUSALS = {
    "missing": "this drop sells to its line: send your ticket's token as the Admission-Ticket header",
    "invalid": "the Admission-Ticket is not a ticket of this drop",
    "other_buyer": "this ticket was given to another buyer",
    "waiting": "your turn has not come yet",
    "used": "this ticket has already bought",
    "lapsed": "your turn has passed: the ticket was admitted and not used in time",
    "absent": "your turn came before you checked in: check in to go back in line",
    "left": "this ticket left the line",
    "sold_out": "the line has finished: the drop is sold out",
    "ended": "the drop has ended",
    "voided": "this ticket was voided by the merchant",
}
NOT_ADMITTED_ANSWERS: dict[str, Answer] = {
    state: Answer(409, error_body(NOT_ADMITTED, message, ticket_state=state), None, NOT_ADMITTED, NOT_ADMITTED)
    for state, message in TICKET_REFUSALS.items()
}
# a line's drop without a valid buyer cookie: as the engine's not_admitted, or before the engine was asked
BUYER_REQUIRED = Answer(409, error_body("buyer_required", "this drop sells to its line, which needs the buyer"
                                        " cookie the drop's page gives"), None, NOT_ADMITTED, "buyer_required")
BUYER_REQUIRED_REJECTED = BUYER_REQUIRED._replace(outcome=REJECTED)
# every answer rendered once, ahead of time (the fast path takes its status lines from them)
PRERENDERED = (*REFUSALS.values(), *NOT_ADMITTED_ANSWERS.values(), BUYER_REQUIRED)


def not_admitted(ticket_state: str) -> Answer:
    """409 not_admitted naming the ticket's state."""
    answer = NOT_ADMITTED_ANSWERS.get(ticket_state)
    if answer is None:  # a state this release has no words for yet
        answer = Answer(409, error_body(NOT_ADMITTED, "this ticket is not admitted", ticket_state=ticket_state),
                        None, NOT_ADMITTED, NOT_ADMITTED)
    return answer


def usable_user_id(user_id: Any) -> bool:
    """A body user_id the engine takes: a string of 1 to MAX_USER_ID_LENGTH characters."""
    return type(user_id) is str and 0 < len(user_id) <= MAX_USER_ID_LENGTH


def purchase_fields(body: dict[str, Any], buyer: str | None = None) -> tuple[str, int]:
    """(user_id, quantity) from the body, or 422 naming the field at fault.

    ``buyer`` is the user_id of a valid buyer cookie: it wins over the body's
    user_id, which is then optional and ignored whatever it says.
    """
    user_id: Any = None
    quantity: Any = 1
    for name, value in body.items():
        if name == "user_id":
            user_id = value
        elif name == "quantity":
            quantity = value
        else:
            raise invalid_field(f"unknown field {name[:64]!r}: the body takes user_id and quantity")
    if buyer is not None:
        user_id = buyer
    elif user_id is None:
        raise invalid_field("user_id is required")
    if not usable_user_id(user_id):
        raise invalid_field(f"user_id must be a string of 1 to {MAX_USER_ID_LENGTH} characters")
    if type(quantity) is not int or not 0 < quantity <= MAX_QUANTITY:
        raise invalid_field(f"quantity must be an integer from 1 to {MAX_QUANTITY}")
    return user_id, quantity


def idempotency_key(key: str | None) -> str | None:
    """The Idempotency-Key header's value: 1 to 128 printable ASCII characters, or 422."""
    if key is None:
        return None
    if not (0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH and key.isascii() and key.isprintable()):
        raise invalid_field(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters")
    return key


def answer(result: Result) -> Answer:
    """The engine's answer as HTTP: 201 new order, 200 the same again, refusals."""
    outcome = result.outcome
    if outcome == "ok":
        order = result.order
        return Answer(201, orjson.dumps(public_order(order)), "/api/orders/" + order["public_ref"], outcome, None)
    if outcome == "duplicate":
        return Answer(200, orjson.dumps(public_order(result.order)), None, outcome, None)
    if outcome == NOT_ADMITTED:
        return not_admitted(result.ticket_state)
    return REFUSALS[outcome]


class Purchases:
    """Decide one purchase: 201 new order, 200 same order again, 409/422/404 refusals."""

    def __init__(self, engine: Engine, buyers: Buyers | None = None, tokens: TicketTokens | None = None) -> None:
        self.purchase = engine.purchase
        self.fairness = engine.fairness
        self.ticket_of = engine.ticket_of
        self.buyer_in = None if buyers is None else buyers.buyer_in
        self.tokens = tokens or TicketTokens(engine.secret("ticket_token_key"))

    def decide(self, drop_id: int, body: dict[str, Any], cookie: str | None, key: str | None,
               ticket: str | None = None) -> Answer:
        """The answer to a parsed request; ApiError (422) for invalid fields.

        ``cookie``, ``key`` and ``ticket`` are the raw Cookie, Idempotency-Key and
        Admission-Ticket headers. The fast path (``dropsvc.http.fast_path``) calls this too.
        """
        buyer_id = None if self.buyer_in is None else self.buyer_in(cookie)
        if buyer_id is None:
            return self._decide_anonymous(drop_id, body, key)
        user_id, quantity = purchase_fields(body, USER_ID_PREFIX + buyer_id)  # the signed cookie wins
        ticket_id = None if ticket is None else self.tokens.verify(ticket, drop_id, buyer_id)
        if ticket is not None and ticket_id is None:
            ticket_id = NO_TICKET
        result = self.purchase(drop_id, user_id, quantity, idempotency_key(key), ticket_id)
        if result.outcome == NOT_ADMITTED and ticket_id == NO_TICKET:
            if self._given_to_another(ticket, drop_id, user_id):
                return NOT_ADMITTED_ANSWERS["other_buyer"]
        return answer(result)

    def _given_to_another(self, token: str, drop_id: int, user_id: str) -> bool:
        """Whether a token that failed is a real one of this drop's tickets, given to another buyer.

        Read only once the engine refused it; a forged token of the buyer's own ticket stays invalid.
        """
        ticket_id = self.tokens.ticket_of_drop(token, drop_id)
        ticket = None if ticket_id is None else self.ticket_of(drop_id, ticket_id)
        return ticket is not None and ticket["buyer"] != user_id

    def _decide_anonymous(self, drop_id: int, body: dict[str, Any], key: str | None) -> Answer:
        """A purchase without a valid buyer cookie: the body's user_id buys an open drop only."""
        try:
            user_id, quantity = purchase_fields(body)
        except ApiError:
            if not usable_user_id(body.get("user_id")) and self.fairness(drop_id) is not None:
                return BUYER_REQUIRED_REJECTED  # a line's drop: the cookie is missing, not the user_id
            raise
        result = self.purchase(drop_id, user_id, quantity, idempotency_key(key))
        # a line's drop answers not_admitted (missing) to a purchase without a ticket, which it cannot have
        return BUYER_REQUIRED if result.outcome == NOT_ADMITTED else answer(result)

    def on_post(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        resp.context.outcome = REJECTED  # until the engine decides (a refusal raised below keeps it)
        number = parse_id(drop_id)
        if number is None:
            resp.context.outcome = "not_found"
            raise drop_not_found(drop_id)
        body = read_json_object(req, BODY_LIMIT)
        decided = self.decide(number, body, req.get_header("Cookie"), req.get_header("Idempotency-Key"),
                              req.get_header("Admission-Ticket"))
        resp.status, resp.data = decided.status, decided.body
        if decided.location is not None:
            resp.location = decided.location
        resp.context.outcome, resp.context.error = decided.outcome, decided.error
