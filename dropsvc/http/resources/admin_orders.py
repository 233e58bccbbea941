"""Admin reads (SPEC 6): a drop's orders, one order's history, the payment events.

- ``GET /api/admin/drops/{drop_id}/orders?limit=&after=&status=``
- ``GET /api/admin/orders/{public_ref}``
- ``GET /api/admin/payment-events?action=&limit=&after=``

Same bearer guard as the other admin routes. Pages are keyset-paginated by
id: ``after`` is the last id of the previous page (``next_after`` in the
answer, null on the last page), so a page costs the same wherever it is and
new orders never shift it.

There is deliberately **no index on orders(drop_id)**: the purchase path
pays for every index on ``orders``. A drop's listing therefore walks the
orders by rowid from ``after`` and keeps its drop's (``WHERE drop_id = ? AND
id > ? ORDER BY id LIMIT ?``): a scan on this cold path, bounded by where the
page's rows are, run on a reader so it never holds up a purchase. Payment
events have no index on ``action`` either (they are few: one per callback).
"""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from dropsvc.http.errors import invalid_field
from dropsvc.http.resources.admin import AdminResource, admin_only
from dropsvc.http.resources.common import MAX_ID, parse_id, send_json
from dropsvc.http.resources.drops import drop_not_found
from dropsvc.http.resources.orders import CURRENCY, order_not_found
from dropsvc.ledger import EVENT_ACTIONS, ORDER_STATUSES, Engine
from dropsvc.ledger.admin import ADMIN_ORDER_FIELDS

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def int_param(req: falcon.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in [low, high], or 422 naming it."""
    raw = req.get_param(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(high)) or not low <= int(raw) <= high:
        raise invalid_field(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def choice_param(req: falcon.Request, name: str, options: tuple[str, ...]) -> str | None:
    raw = req.get_param(name)
    if raw is None or raw == "":
        return None
    if raw not in options:
        raise invalid_field(f"{name} must be one of {', '.join(options)}")
    return raw


def admin_order(engine: Engine, row: dict[str, Any]) -> dict[str, Any]:
    """An order as the merchant sees it: ids included (public_ref, PayOS order_code)."""
    order = {name: row[name] for name in ADMIN_ORDER_FIELDS}
    order["public_ref"] = engine.public_ref(row["id"])
    order["order_code"] = engine.order_code_offset + row["id"]
    order["currency"] = CURRENCY
    return order


def payment_data(payload: str) -> dict[str, Any]:
    """What an event's callback said (its ``data``), without the rest (signature, bank details)."""
    try:
        data = orjson.loads(payload).get("data") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {"amount": data.get("amount"), "code": data.get("code"), "payment_link_id": data.get("paymentLinkId")}


def present_event(engine: Engine, row: dict[str, Any]) -> dict[str, Any]:
    data = payment_data(row["payload"])
    event = {"id": row["id"], "order_code": row["order_code"], "reference": row["reference"],
             "action": row["action"], "received_at": row["received_at"], "paid_amount": data.get("amount"),
             "code": data.get("code"), "payment_link_id": data.get("payment_link_id"),
             "order_public_ref": None if row["order_id"] is None else engine.public_ref(row["order_id"]),
             "order_amount": row.get("order_amount")}
    return event


def order_history(order: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What happened to an order, oldest first, as far as the database knows.

    Created (reserved) at ``created_at``; each PayOS callback with its action;
    ``paid`` (or ``refund_required``: paid after its stock was gone) at
    ``paid_at``; ``expired`` at the hold's deadline (the background worker
    expires it within about a second after); ``cancelled`` with ``at: null``,
    since no cancel time is stored.
    """
    history: list[dict[str, Any]] = [{"at": order["created_at"], "event": "created", "status": "reserved"}]
    for event in events:
        history.append({"at": event["received_at"], "event": "payment_event", "action": event["action"],
                        "reference": event["reference"], "paid_amount": event["paid_amount"]})
    status = order["status"]
    if status in ("paid", "refund_required") and order["paid_at"] is not None:
        history.append({"at": order["paid_at"], "event": status, "status": status})
    elif status == "expired":
        history.append({"at": order["expires_at"], "event": "expired", "status": status})
    elif status == "cancelled":
        history.append({"at": None, "event": "cancelled", "status": status})
    known = sorted((item for item in history if item["at"] is not None), key=lambda item: item["at"])
    return known + [item for item in history if item["at"] is None]


@falcon.before(admin_only)
class AdminDropOrders(AdminResource):
    """GET /api/admin/drops/{drop_id}/orders: ``{"orders": [...], "next_after": id | null}``."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        number = parse_id(drop_id)
        if number is None or self.engine.get_drop(number) is None:
            raise drop_not_found(drop_id)
        limit = int_param(req, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        after = int_param(req, "after", 0, 0, MAX_ID)
        status = choice_param(req, "status", ORDER_STATUSES)
        rows, next_after = self.engine.drop_orders_page(number, after=after, limit=limit, status=status)
        resp.cache_control = ["no-store"]
        send_json(resp, {"drop_id": number, "orders": [admin_order(self.engine, row) for row in rows],
                         "next_after": next_after})


@falcon.before(admin_only)
class AdminOrderItem(AdminResource):
    """GET /api/admin/orders/{public_ref}: the order, its payment events and its history."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, public_ref: str) -> None:
        order_id = self.engine.order_id_from_ref(public_ref)
        row = None if order_id is None else self.engine.admin_order_row(order_id)
        if row is None:
            raise order_not_found(public_ref)
        order = admin_order(self.engine, row)
        events = [present_event(self.engine, event) for event in self.engine.order_payment_events(order["order_code"])]
        for event in events:
            event["order_amount"] = order["amount"]
        resp.cache_control = ["no-store"]
        send_json(resp, {"order": order, "payment_events": events, "history": order_history(order, events)})


@falcon.before(admin_only)
class AdminPaymentEvents(AdminResource):
    """GET /api/admin/payment-events?action=amount_mismatch: ``{"events": [...], "next_after": id | null}``."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = int_param(req, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        after = int_param(req, "after", 0, 0, MAX_ID)
        action = choice_param(req, "action", EVENT_ACTIONS)
        rows, next_after = self.engine.payment_events_page(after=after, limit=limit, action=action)
        resp.cache_control = ["no-store"]
        send_json(resp, {"events": [present_event(self.engine, row) for row in rows], "next_after": next_after})
