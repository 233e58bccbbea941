"""Orders in the ledger (SPEC 5): cancel, expiry, giving stock back, storing a payment link."""

from __future__ import annotations

from typing import Any

from dropsvc._engine import Result
from dropsvc.drops import now_ms

# what giving an order's stock back needs to know
MOVE_FIELDS = "id, drop_id, user_id, quantity, status"


class NotLive(RuntimeError):
    """Only a live (reserved or paid) order has stock to give back."""


def release(tx: Any, order: dict[str, Any], new_status: str) -> None:
    """Give a live order's stock back, inside the caller's write: the one path of cancel and expiry.

    The order leaves the live set (``new_status``), the drop's ``sold`` and
    the buyer's holding drop by its quantity, and a holding of zero goes.
    """
    tx.execute("UPDATE orders SET status = ? WHERE id = ? AND status IN ('reserved', 'paid')",
               (new_status, order["id"]))
    if tx.changes != 1:
        raise NotLive(f"order {order['id']} is not reserved or paid: it has no stock to give back")
    tx.execute("UPDATE drops SET sold = sold - ? WHERE id = ?", (order["quantity"], order["drop_id"]))
    tx.execute("UPDATE holdings SET quantity = quantity - ? WHERE drop_id = ? AND user_id = ?",
               (order["quantity"], order["drop_id"], order["user_id"]))
    tx.execute("DELETE FROM holdings WHERE drop_id = ? AND user_id = ? AND quantity = 0",
               (order["drop_id"], order["user_id"]))


class OrdersMixin:
    """The order operations of ``Engine`` (the purchase itself is the compiled core's)."""

    def get_order(self, public_ref: str) -> dict[str, Any] | None:
        """The order behind a public_ref, or None (unknown or forged refs alike)."""
        order_id = self.order_id_from_ref(public_ref)
        return None if order_id is None else self.get_order_by_id(order_id)

    def cancel(self, public_ref: str) -> Result:
        """Cancel a reserved order (SPEC 5): its stock and holding go back.

        Outcomes: ``ok`` (cancelled now, or already cancelled), ``not_found``,
        or the order's blocking status: ``paid``, ``expired``, ``refund_required``.
        """
        order_id = self.order_id_from_ref(public_ref)
        if order_id is None:
            return Result("not_found", None)

        def cancel_order(tx: Any) -> str:
            rows = tx.execute(f"SELECT {MOVE_FIELDS} FROM orders WHERE id = ?", (order_id,))
            if not rows:
                return "not_found"
            order = rows[0]
            if order["status"] == "reserved":
                release(tx, order, "cancelled")
                return "ok"
            if order["status"] == "cancelled":
                return "ok"
            return order["status"]

        outcome = self.write(cancel_order)
        return Result(outcome, None if outcome == "not_found" else self.get_order_by_id(order_id))

    def expire_due(self, now: int | None = None, limit: int = 500) -> int:
        """Expire up to ``limit`` reserved orders past ``expires_at``; returns how many.

        Their stock and holdings go back (SPEC 5). Candidates are found on a
        reader from a low-water mark (the oldest order that may still be
        reserved), so no index on the purchase path pays for expiry; the
        write re-checks each one under the lock.
        """
        now = now_ms() if now is None else now
        start = getattr(self, "_expiry_from", 0)
        due = self.read("SELECT id FROM orders WHERE id >= ? AND status = 'reserved' AND expires_at <= ?"
                        " ORDER BY id LIMIT ?", (start, now, limit))

        def expire(tx: Any) -> int:
            expired = 0
            for row in due:
                found = tx.execute(f"SELECT {MOVE_FIELDS} FROM orders"
                                   " WHERE id = ? AND status = 'reserved' AND expires_at <= ?", (row["id"], now))
                if found:
                    release(tx, found[0], "expired")
                    expired += 1
            return expired

        expired = self.write(expire) if due else 0
        self._advance_reserved_mark()
        return expired

    def reserved_low_water(self, fresh: bool = False) -> int:
        """An id no reserved order is below: scans for a drop's holds start there (no orders(drop_id) index).

        The mark the last expiry left in this process, or (``fresh``, or none yet) moved up now.
        """
        return (not fresh and getattr(self, "_expiry_from", None)) or self._advance_reserved_mark()

    def _advance_reserved_mark(self) -> int:
        """Move the low-water mark to the oldest reserved order (or past the newest order); returns it.

        Sound across processes: an order never becomes reserved again, and new ones get higher ids.
        """
        start = getattr(self, "_expiry_from", 0)
        oldest = self.read("SELECT COALESCE((SELECT id FROM orders WHERE id >= ? AND status = 'reserved'"
                           " ORDER BY id LIMIT 1), (SELECT COALESCE(MAX(id), 0) + 1 FROM orders)) AS id",
                           (start,))
        self._expiry_from = oldest[0]["id"]
        return self._expiry_from

    def store_payment_link(self, order_id: int, payment_link_id: str, checkout_url: str) -> bool:
        """Fill the empty link slot of a still-reserved order; False when it was filled or moved on.

        The link is made at PayOS before (never inside a transaction), so of two
        racing checkouts one link is stored and the other caller reads it.
        """
        def store(tx: Any) -> int:
            tx.execute("UPDATE orders SET payment_link_id = ?, checkout_url = ? WHERE id = ?"
                       " AND status = 'reserved' AND payment_link_id IS NULL",
                       (payment_link_id, checkout_url, order_id))
            return tx.changes

        return bool(self.write(store))
