"""The JSON bodies of the API as JSON Schemas (OpenAPI 3.1 ``components``), for ``/openapi.json``.

Written next to the code that makes the bodies (drops.present_drop,
orders.public_order, the admin readers, the readiness checks); the
schemathesis test checks real responses against them.
"""

from __future__ import annotations

from typing import Any

from dropsvc._engine import ADMISSIONS, CHALLENGES, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_QUANTITY, MAX_USER_ID_LENGTH
from dropsvc.challenges import ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_COST, MAX_COST
from dropsvc.drops import (
    AVAILABLE_ADMISSIONS,
    MAX_ADMIT_SECONDS,
    MAX_HOLD_SECONDS,
    MAX_PER_USER_LIMIT,
    MAX_PRICE,
    MAX_STOCK,
    MAX_TIME_MS,
)
from dropsvc.http.resources.admin_orders import MAX_LIMIT
from dropsvc.http.resources.common import MAX_ID
from dropsvc.http.resources.purchases import TICKET_REFUSALS
from dropsvc.ledger import EVENT_ACTIONS, ORDER_STATUSES, TICKET_KINDS, TICKET_STATES
from dropsvc.ledger.line_controls import MAX_EXTEND_SECONDS

INTEGER = {"type": "integer"}
TIME_MS = {"type": "integer", "description": "milliseconds since the Unix epoch"}
NULLABLE_TIME_MS = {"type": ["integer", "null"], "description": "milliseconds since the Unix epoch"}
NULLABLE_STRING = {"type": ["string", "null"]}
DROP_STATUSES = ["upcoming", "live", "sold_out", "ended"]
QUEUE_STATES = ["upcoming", "entries_open", "admitting", "all_held", "sold_out", "ended"]
HEX = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
NULLABLE_HEX = {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"}
NULLABLE_INTEGER = {"type": ["integer", "null"]}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Any], required: list[str] | None = None, *, closed: bool = False,
        **extra: Any) -> dict[str, Any]:
    """An object schema; every property required unless ``required`` says otherwise."""
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": list(properties) if required is None else required}
    if closed:
        schema["additionalProperties"] = False
    schema.update(extra)
    return schema


DROP_FIELDS: dict[str, Any] = {
    "slug": {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"},
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": {"type": "string", "maxLength": 5000},
    "image_url": {"type": "string", "maxLength": 2000},
    "price": {"type": "integer", "minimum": 0, "maximum": MAX_PRICE, "description": "VND"},
    "currency": {"const": "VND"},
    "total_stock": {"type": "integer", "minimum": 1, "maximum": MAX_STOCK},
    "per_user_limit": {"type": "integer", "minimum": 1, "maximum": MAX_PER_USER_LIMIT},
    "hold_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_HOLD_SECONDS},
    "starts_at": {"type": "integer", "minimum": 0, "maximum": MAX_TIME_MS},
    "ends_at": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_TIME_MS},
    # fair admission (SPEC 11); admission, starts_at, entries_close_at and admission_margin are 409
    # tickets_exist once the line has a ticket
    "admission": {"enum": list(AVAILABLE_ADMISSIONS), "default": "open",
                  "description": "queue: buyers join a line and buy when admitted; draw: buyers enter until"
                                 " entries_close_at, winners drawn then buy when admitted"},
    "admit_seconds": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ADMIT_SECONDS,
                      "description": "how long an admitted ticket may buy (queue 120, draw 3600 by default)"},
    "admission_margin": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_STOCK,
                         "description": "extra tickets in the first wave (queue only; default max(1, stock // 5);"
                                        " always 0 for a draw)"},
    "entries_close_at": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_TIME_MS,
                         "description": "draw only, required: entries close and the draw happens (Unix ms);"
                                        " starts_at < entries_close_at <= ends_at - admit_seconds"},
    # proof of work to join the line (challenge is 409 tickets_exist once the line has a ticket)
    "challenge": {"enum": list(CHALLENGES), "default": "none",
                  "description": "pow: a join needs a solved ALTCHA challenge (GET /api/drops/{id}/challenge)"},
    "pow_algorithm": {"enum": [*ALGORITHMS, None], "description": f"pow only; default {DEFAULT_ALGORITHM}"},
    "pow_cost": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_COST,
                 "description": f"iterations of one try (pow only; default {DEFAULT_COST})"},
}

ERROR_BODY = obj({"code": {"type": "string"}, "message": {"type": "string"}})

SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": ERROR_BODY}, description="The one error envelope"),
    "PurchaseRefusal": obj({"error": obj({
        "code": {"type": "string"}, "message": {"type": "string"},
        "ticket_state": {"enum": list(TICKET_REFUSALS),
                         "description": "with not_admitted only: why the Admission-Ticket cannot buy (SPEC 11)"},
    }, ["code", "message"])}, description="The error envelope; a queue drop's not_admitted adds ticket_state"),
    "Health": obj({"status": {"const": "ok"}}),
    "Drop": obj({
        "id": INTEGER, "slug": {"type": "string"}, "name": {"type": "string"},
        "description": {"type": "string"}, "image_url": {"type": "string"}, "price": INTEGER,
        "currency": {"type": "string"}, "total_stock": INTEGER, "sold": INTEGER, "per_user_limit": INTEGER,
        "hold_seconds": INTEGER, "starts_at": TIME_MS, "ends_at": NULLABLE_TIME_MS, "created_at": TIME_MS,
        "remaining": INTEGER, "status": {"enum": DROP_STATUSES},
        "admission": {"enum": list(ADMISSIONS)}, "admit_seconds": NULLABLE_INTEGER,
        "admission_margin": NULLABLE_INTEGER, "entries_close_at": NULLABLE_TIME_MS,
        "commitment": {**NULLABLE_HEX, "description": "a line's SHA-256(seed), public from the start; null when open"},
        "challenge": {"enum": list(CHALLENGES)}, "pow_algorithm": NULLABLE_STRING, "pow_cost": NULLABLE_INTEGER,
    }),
    "DropList": obj({"drops": {"type": "array", "items": ref("Drop")}}),
    "NewDrop": obj(DROP_FIELDS, ["slug", "name", "price", "total_stock"], closed=True),
    "DropChanges": obj({name: value for name, value in DROP_FIELDS.items() if name != "currency"}, [],
                       closed=True, minProperties=1),
    "PurchaseRequest": obj({
        "user_id": {"type": "string", "minLength": 1, "maxLength": MAX_USER_ID_LENGTH,
                    "description": "required unless the request carries a valid buyer cookie, which wins"},
        "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY, "default": 1},
    }, ["user_id"], closed=True),
    "JoinRequest": obj({
        "altcha": {"type": "string", "description": "the ALTCHA widget's payload: required to join a line whose"
                                                    " challenge is pow (GET .../challenge gives the challenge)"},
    }, [], closed=True),
    "Ticket": obj({
        "ticket_id": {"type": "string", "pattern": "^[1-9][0-9]*$"},
        "token": {"type": "string", "description": "send it back as the Admission-Ticket header"},
        "kind": {"enum": list(TICKET_KINDS)}, "joined_at": TIME_MS, "state": {"enum": list(TICKET_STATES)},
        "position": {**NULLABLE_INTEGER, "description": "null before the close"},
        "ahead": {**NULLABLE_INTEGER, "description": "waiting tickets ahead; null before the close"},
        "admitted_until": NULLABLE_TIME_MS,
        "eta_s": {**NULLABLE_INTEGER, "description": "a rough estimate in seconds (see the ticket resource)"},
    }, description="A ticket of a queue drop's line (SPEC 11); never the buyer"),
    "QueueDocument": obj({
        "state": {"enum": QUEUE_STATES}, "admitted_through": INTEGER, "waiting": INTEGER,
        "remaining": INTEGER, "held": INTEGER,
        "paused": {"type": "boolean", "description": "the merchant paused admission"}, "commitment": HEX,
        "seed": {**NULLABLE_HEX, "description": "null until the close is recorded"}, "poll_after_ms": INTEGER,
    }, description="The public queue document, the same for everyone"),
    "LineReport": obj({
        "drop_id": INTEGER, "state": {"enum": QUEUE_STATES}, "paused": {"type": "boolean"},
        "paused_at": NULLABLE_TIME_MS, "closed_at": NULLABLE_TIME_MS, "prequeue_size": NULLABLE_INTEGER,
        "joined": INTEGER, "checked_in": INTEGER,
        "by_state": obj({state: INTEGER for state in TICKET_STATES}),
        "admitted_through": INTEGER, "remaining": INTEGER, "held": INTEGER,
        "admissions": {**INTEGER, "description": "admissions so far (a ticket admitted twice counts twice)"},
        "admissions_last_minute": INTEGER, "first_admission_at": NULLABLE_TIME_MS,
    }, description="A line's figures, for the merchant"),
    "LineExtend": obj({
        "seconds": {"type": "integer", "minimum": 1, "maximum": MAX_EXTEND_SECONDS},
        "ticket_id": {"type": ["string", "integer"], "description": "one ticket only (else every admitted one)"},
    }, ["seconds"], closed=True),
    "LineExtended": obj({"extended": INTEGER, "line": ref("LineReport")}),
    "AdminTicket": obj({
        "drop_id": INTEGER, "ticket_id": {"type": "string"}, "buyer": {"type": "string"}, "joined_at": TIME_MS,
        "kind": {"enum": list(TICKET_KINDS)}, "state": {"enum": list(TICKET_STATES)},
        "position": NULLABLE_INTEGER, "draw_key": NULLABLE_STRING, "checked_in_at": NULLABLE_TIME_MS,
        "admitted_at": NULLABLE_TIME_MS, "admitted_until": NULLABLE_TIME_MS, "first_position": NULLABLE_INTEGER,
    }, description="A ticket as the merchant sees it (with its buyer)"),
    "Challenge": obj({
        "parameters": {"type": "object", "description": "ALTCHA PoW v2 parameters: algorithm, cost, nonce, salt,"
                                                        " keyPrefix, keySignature, expiresAt, data (drop and buyer)"},
        "signature": {"type": "string"},
    }, description="An ALTCHA PoW v2 challenge, bound to the buyer and the drop, expiring"),
    "Fairness": obj({"commitment": HEX, "seed": {**NULLABLE_HEX, "description": "null until the close"}}),
    "Order": obj({
        "public_ref": {"type": "string"}, "drop_id": INTEGER, "user_id": {"type": "string"},
        "quantity": INTEGER, "amount": INTEGER, "status": {"enum": list(ORDER_STATUSES)},
        "created_at": TIME_MS, "expires_at": TIME_MS, "paid_at": NULLABLE_TIME_MS,
        "checkout_url": NULLABLE_STRING, "currency": {"type": "string"},
    }),
    "AdminOrder": obj({
        "id": INTEGER, "public_ref": {"type": "string"}, "order_code": INTEGER, "drop_id": INTEGER,
        "user_id": {"type": "string"}, "quantity": INTEGER, "amount": INTEGER, "currency": {"type": "string"},
        "status": {"enum": list(ORDER_STATUSES)}, "idempotency_key": NULLABLE_STRING,
        "payment_link_id": NULLABLE_STRING, "checkout_url": NULLABLE_STRING, "created_at": TIME_MS,
        "expires_at": TIME_MS, "paid_at": NULLABLE_TIME_MS,
    }),
    "AdminOrderPage": obj({
        "drop_id": INTEGER, "orders": {"type": "array", "items": ref("AdminOrder")},
        "next_after": {"type": ["integer", "null"], "description": "pass as `after` for the next page"},
    }),
    "PaymentEvent": obj({
        "id": INTEGER, "order_code": INTEGER, "reference": {"type": "string"},
        "action": {"enum": list(EVENT_ACTIONS)}, "received_at": TIME_MS,
        "paid_amount": {"type": ["integer", "null"]}, "code": NULLABLE_STRING,
        "payment_link_id": NULLABLE_STRING, "order_public_ref": NULLABLE_STRING,
        "order_amount": {"type": ["integer", "null"]},
    }),
    "PaymentEventPage": obj({
        "events": {"type": "array", "items": ref("PaymentEvent")},
        "next_after": {"type": ["integer", "null"], "description": "pass as `after` for the next page"},
    }),
    "OrderHistoryEntry": obj({
        "at": NULLABLE_TIME_MS, "event": {"enum": ["created", "payment_event", "paid", "refund_required",
                                                   "expired", "cancelled"]},
        "status": {"type": "string"}, "action": {"type": "string"}, "reference": {"type": "string"},
        "paid_amount": {"type": ["integer", "null"]},
    }, ["at", "event"]),
    "AdminOrderDetail": obj({
        "order": ref("AdminOrder"), "payment_events": {"type": "array", "items": ref("PaymentEvent")},
        "history": {"type": "array", "items": ref("OrderHistoryEntry")},
    }),
    "Readiness": obj({
        "status": {"enum": ["ready", "not_ready"]},
        "checks": obj({name: obj({"ok": {"type": "boolean"}})
                       for name in ("storage", "database", "migrations", "payos")}),
        "failed": {"type": "array", "items": {"type": "string"}},
        "error": ERROR_BODY,
    }, ["status", "checks"]),
    "WebhookAck": obj({"success": {"const": True}, "action": {"type": "string"}, "replayed": {"type": "boolean"}}),
    "Webhook": obj({
        "code": {"type": "string"}, "desc": {"type": "string"}, "success": {"type": "boolean"},
        "data": {"type": "object", "description": "PayOS payment data: orderCode, amount, reference, ..."},
        "signature": {"type": "string"},
    }, ["data", "signature"]),
}

PARAMETERS: dict[str, Any] = {
    "drop_id": {"name": "drop_id", "in": "path", "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}},
    "public_ref": {"name": "public_ref", "in": "path", "required": True,
                   "schema": {"type": "string", "pattern": "^[a-z2-7]{26}$"},
                   "description": "the order's shopper-facing id (unknown and forged refs alike are 404)"},
    "ticket_id": {"name": "ticket_id", "in": "path", "required": True,
                  "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}},
    "name": {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
    "limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                                         "default": 100}},
    "after": {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
              "description": "the `next_after` of the previous page"},
    "order_status": {"name": "status", "in": "query", "schema": {"enum": list(ORDER_STATUSES)}},
    "action": {"name": "action", "in": "query", "schema": {"enum": list(EVENT_ACTIONS)}},
    "idempotency_key": {"name": "Idempotency-Key", "in": "header", "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
                                   "pattern": "^[ -~]+$"}},
    "admission_ticket": {"name": "Admission-Ticket", "in": "header", "required": False, "schema": {"type": "string"},
                         "description": "a queue drop's ticket: its `token`, for the buyer cookie it was given to;"
                                        " open drops ignore it"},
    "if_none_match": {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
    "v": {"name": "v", "in": "query", "schema": {"type": "string"},
          "description": "the asset's version: with the current one it is cached for a year"},
}
