"""The admin reads (SPEC 6), all on a reader: a drop's orders, one order and its payment
events, the payment events.

Pages are keyset-paginated by id: ``after`` is the last id of the previous
page, and a page answers ``(rows, next_after)`` (``None`` on the last page).
There is deliberately no index on orders(drop_id) nor on payment_events(action):
the purchase path pays for every index on ``orders``, and events are few.
"""

from __future__ import annotations

from typing import Any

ADMIN_ORDER_FIELDS = ("id", "drop_id", "user_id", "quantity", "amount", "status", "idempotency_key",
                      "payment_link_id", "checkout_url", "created_at", "expires_at", "paid_at")
ORDER_COLUMNS = ", ".join(ADMIN_ORDER_FIELDS)
EVENT_COLUMNS = "e.id, e.order_code, e.reference, e.order_id, e.action, e.payload, e.received_at"

Page = tuple[list[dict[str, Any]], int | None]


def _page(rows: list[dict[str, Any]], limit: int) -> Page:
    """The page's rows (``limit + 1`` were read) and the cursor of the next page, if any."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1]["id"]
    return rows, None


class AdminMixin:
    """The admin reads of ``Engine``."""

    def drop_orders_page(self, drop_id: int, *, after: int, limit: int, status: str | None = None) -> Page:
        """A drop's orders with id > after (of one status, if given), by id.

        Walks the orders by rowid from ``after`` and keeps the drop's: a scan
        on this cold path, bounded by where the page's rows are.
        """
        sql = f"SELECT {ORDER_COLUMNS} FROM orders WHERE drop_id = ? AND id > ?"
        params: list[Any] = [drop_id, after]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        return _page(self.read(sql + " ORDER BY id LIMIT ?", (*params, limit + 1)), limit)

    def admin_order_row(self, order_id: int) -> dict[str, Any] | None:
        """The order's row with the fields the merchant sees (ADMIN_ORDER_FIELDS), or None."""
        rows = self.read(f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?", (order_id,))
        return rows[0] if rows else None

    def order_payment_events(self, order_code: int) -> list[dict[str, Any]]:
        """Every payment event of one PayOS orderCode, oldest first (the (order_code, reference) index)."""
        return self.read(f"SELECT {EVENT_COLUMNS} FROM payment_events e WHERE e.order_code = ? ORDER BY e.id",
                         (order_code,))

    def payment_events_page(self, *, after: int, limit: int, action: str | None = None) -> Page:
        """Payment events with id > after (of one action, if given), each with its order's amount."""
        sql = (f"SELECT {EVENT_COLUMNS}, o.amount AS order_amount FROM payment_events e"
               " LEFT JOIN orders o ON o.id = e.order_id WHERE e.id > ?")
        params: list[Any] = [after]
        if action is not None:
            sql += " AND e.action = ?"
            params.append(action)
        return _page(self.read(sql + " ORDER BY e.id LIMIT ?", (*params, limit + 1)), limit)
