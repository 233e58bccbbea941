"""Applying verified PayOS callbacks to orders (SPEC 5's state table, SPEC 7).

Every verified callback is recorded once in ``payment_events`` (unique on
orderCode + reference, so a replay changes nothing twice) together with
what it did, in the same write transaction as its effect on the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from dropsvc.drops import now_ms
from dropsvc.ledger import Engine

ORDER_FIELDS = "id, drop_id, user_id, quantity, amount, status, payment_link_id"


@dataclass(frozen=True)
class PaymentResult:
    """What one callback did: ``action`` as recorded, ``replayed`` when it was seen before."""

    action: str
    order_id: int | None
    replayed: bool = False


def _retake_stock(tx: Any, order: dict[str, Any]) -> bool:
    """Put a late-paid order back in the live set if stock is left (no window or limit re-check).

    The purchase's own statements (the conditional update, the holdings upsert).
    """
    if not tx.take_stock(order["drop_id"], order["quantity"]):
        return False
    tx.add_holding(order["drop_id"], order["user_id"], order["quantity"])
    return True


def _decide(tx: Any, order: dict[str, Any] | None, data: dict[str, Any], now: int) -> str:
    if data.get("code") != "00":
        return "not_paid"
    if order is None:
        return "unknown_order"
    if order["payment_link_id"] is not None and data["paymentLinkId"] != order["payment_link_id"]:
        return "link_mismatch"
    if data["amount"] != order["amount"]:
        return "amount_mismatch"
    status = order["status"]
    if status in ("paid", "refund_required"):
        return "duplicate"
    if status in ("expired", "cancelled") and not _retake_stock(tx, order):
        tx.execute("UPDATE orders SET status = 'refund_required', paid_at = ? WHERE id = ?",
                   (now, order["id"]))
        return "refund_required"
    # reserved, or a late payment that got its stock back
    tx.execute("UPDATE orders SET status = 'paid', paid_at = ?,"
               " payment_link_id = COALESCE(payment_link_id, ?) WHERE id = ?",
               (now, data["paymentLinkId"], order["id"]))
    return "paid"


def apply_payment(engine: Engine, payload: dict[str, Any]) -> PaymentResult:
    """Record a verified webhook and apply it, in one write transaction.

    ``payload`` is the whole callback; its ``data`` must already be
    signature-checked and shape-checked (orderCode and amount integers,
    reference, paymentLinkId and code strings).
    """
    data = payload["data"]
    order_code, reference = data["orderCode"], data["reference"]
    order_id = order_code - engine.order_code_offset
    raw = orjson.dumps(payload).decode()
    now = now_ms()

    def record(tx: Any) -> PaymentResult:
        seen = tx.execute("SELECT action, order_id FROM payment_events WHERE order_code = ? AND reference = ?",
                          (order_code, reference))
        if seen:
            return PaymentResult(seen[0]["action"], seen[0]["order_id"], replayed=True)
        rows = tx.execute(f"SELECT {ORDER_FIELDS} FROM orders WHERE id = ?", (order_id,)) if order_id > 0 else []
        order = rows[0] if rows else None
        action = _decide(tx, order, data, now)
        known_id = order["id"] if order else None
        tx.execute("INSERT INTO payment_events (order_code, reference, order_id, action, payload, received_at)"
                   " VALUES (?, ?, ?, ?, ?, ?)", (order_code, reference, known_id, action, raw, now))
        return PaymentResult(action, known_id)

    return engine.write(record)
