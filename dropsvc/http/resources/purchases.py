"""POST /api/drops/{drop_id}/purchases: the hot path (SPEC 5).

Kept lean on purpose: the body is read once, parsed by orjson, checked by hand
in one pass; refusals the engine decides (sold out and the like) are answered
with pre-rendered bytes instead of exceptions, so a herd hitting a sold-out
drop costs as little as possible.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import falcon
import orjson

from dropsvc._engine import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_QUANTITY, MAX_USER_ID_LENGTH, Result
from dropsvc.buyers import Buyers
from dropsvc.http.errors import error_body, invalid_field
from dropsvc.http.resources.common import parse_id, read_json_object
from dropsvc.http.resources.drops import drop_not_found
from dropsvc.http.resources.orders import public_order
from dropsvc.ledger import Engine

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
    if type(user_id) is not str or not 0 < len(user_id) <= MAX_USER_ID_LENGTH:
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
    return REFUSALS[outcome]


class Purchases:
    """Decide one purchase: 201 new order, 200 same order again, 409/422/404 refusals."""

    def __init__(self, engine: Engine, buyers: Buyers | None = None) -> None:
        self.purchase = engine.purchase
        self.user_id_in = None if buyers is None else buyers.user_id_in

    def decide(self, drop_id: int, body: dict[str, Any], cookie: str | None, key: str | None) -> Answer:
        """The answer to a parsed request; ApiError (422) for invalid fields.

        ``cookie`` and ``key`` are the raw Cookie and Idempotency-Key headers. The fast path
        (``dropsvc.http.fast_path``) calls this too.
        """
        buyer = None if self.user_id_in is None else self.user_id_in(cookie)  # the signed cookie wins
        user_id, quantity = purchase_fields(body, buyer)
        return answer(self.purchase(drop_id, user_id, quantity, idempotency_key(key)))

    def on_post(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        resp.context.outcome = REJECTED  # until the engine decides (a refusal raised below keeps it)
        number = parse_id(drop_id)
        if number is None:
            resp.context.outcome = "not_found"
            raise drop_not_found(drop_id)
        body = read_json_object(req, BODY_LIMIT)
        decided = self.decide(number, body, req.get_header("Cookie"), req.get_header("Idempotency-Key"))
        resp.status, resp.data = decided.status, decided.body
        if decided.location is not None:
            resp.location = decided.location
        resp.context.outcome, resp.context.error = decided.outcome, decided.error
