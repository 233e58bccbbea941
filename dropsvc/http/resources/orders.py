"""GET /api/orders/{public_ref} and POST /api/orders/{public_ref}/cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon

from dropsvc.http.errors import ApiError, not_found
from dropsvc.http.resources.common import send_json
from dropsvc.ledger import Engine

# what a shopper may see of an order: never the internal id nor the PayOS orderCode
PUBLIC_ORDER_FIELDS = ("public_ref", "drop_id", "user_id", "quantity", "amount", "status",
                       "created_at", "expires_at", "paid_at", "checkout_url")
CURRENCY = "VND"

CANCEL_REFUSALS = {
    "paid": "the order is paid; it can no longer be cancelled",
    "expired": "the reservation expired; there is nothing left to cancel",
    "refund_required": "the order was paid after it expired and awaits a refund",
}


def public_order(order: dict[str, Any]) -> dict[str, Any]:
    """The order as the API shows it."""
    shown = {name: order[name] for name in PUBLIC_ORDER_FIELDS}
    shown["currency"] = CURRENCY
    return shown


def order_not_found(public_ref: str) -> ApiError:
    return not_found("order_not_found", "no such order")


class OrderItem:
    """GET /api/orders/{public_ref}: unknown and forged refs alike are 404."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def on_get(self, req: falcon.Request, resp: falcon.Response, public_ref: str) -> None:
        order = self.engine.get_order(public_ref)
        if order is None:
            raise order_not_found(public_ref)
        resp.cache_control = ["no-store"]
        send_json(resp, public_order(order))


class OrderCancel:
    """POST /api/orders/{public_ref}/cancel: a reserved order gives its stock back (SPEC 5)."""

    def __init__(self, engine: Engine,
                 on_cancelled: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.engine = engine
        self.on_cancelled = on_cancelled  # e.g. cancel the PayOS link, outside the transaction

    def on_post(self, req: falcon.Request, resp: falcon.Response, public_ref: str) -> None:
        result = self.engine.cancel(public_ref)
        if result.outcome == "ok":
            if self.on_cancelled is not None:
                self.on_cancelled(result.order)
            send_json(resp, public_order(result.order))
            return
        if result.outcome == "not_found":
            raise order_not_found(public_ref)
        message = CANCEL_REFUSALS.get(result.outcome, f"the order is {result.outcome}")
        raise ApiError(409, result.outcome, message)
