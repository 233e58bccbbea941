"""The engine's Python API: the compiled core plus the cold paths (SPEC 4).

``Engine`` is the class scripts and the service use. The hot path
(``purchase``, ``get_drop``, ``list_drops``, ``get_order_by_id``) lives in
the compiled ``Core``; admin changes, cancel and the invariant check are
written here on top of the core's generic ``write(fn)`` and ``read(sql)``.
"""

from __future__ import annotations

from typing import Any

from dropsvc._engine import Core, Result
from dropsvc.drops import (
    DropConflict,
    merge_drop_changes,
    now_ms,
    validate_drop_changes,
    validate_new_drop,
)

LIVE_STATUSES = ("reserved", "paid")

# One statement, so one snapshot: safe to run while the service sells.
INVARIANT_SQL = """
WITH live AS (
    SELECT drop_id, user_id, SUM(quantity) AS quantity FROM orders
    WHERE status IN ('reserved', 'paid') GROUP BY drop_id, user_id
), per_drop AS (
    SELECT drop_id, SUM(quantity) AS quantity FROM live GROUP BY drop_id
)
SELECT 'drop' AS kind, d.id AS drop_id, NULL AS user_id, d.sold AS recorded,
       COALESCE(p.quantity, 0) AS live, d.total_stock AS total_stock
  FROM drops d LEFT JOIN per_drop p ON p.drop_id = d.id
 WHERE d.sold != COALESCE(p.quantity, 0) OR d.sold > d.total_stock OR d.sold < 0
UNION ALL
SELECT 'holding', h.drop_id, h.user_id, h.quantity, COALESCE(l.quantity, 0), NULL
  FROM holdings h LEFT JOIN live l ON l.drop_id = h.drop_id AND l.user_id = h.user_id
 WHERE h.quantity != COALESCE(l.quantity, 0)
UNION ALL
SELECT 'holding', l.drop_id, l.user_id, 0, l.quantity, NULL
  FROM live l
 WHERE NOT EXISTS (SELECT 1 FROM holdings h WHERE h.drop_id = l.drop_id AND h.user_id = l.user_id)
"""

DROP_INSERT_SQL = (
    "INSERT INTO drops (slug, name, description, image_url, price, currency, total_stock, sold,"
    " per_user_limit, hold_seconds, starts_at, ends_at, created_at) VALUES (:slug, :name,"
    " :description, :image_url, :price, :currency, :total_stock, :sold, :per_user_limit,"
    " :hold_seconds, :starts_at, :ends_at, :created_at)"
)


def release_order(tx: Any, order: dict[str, Any], new_status: str) -> None:
    """Move a live order out of the live set: its stock and holding go back."""
    tx.execute("UPDATE orders SET status = ? WHERE id = ?", (new_status, order["id"]))
    tx.execute("UPDATE drops SET sold = sold - ? WHERE id = ?", (order["quantity"], order["drop_id"]))
    tx.execute("UPDATE holdings SET quantity = quantity - ? WHERE drop_id = ? AND user_id = ?",
               (order["quantity"], order["drop_id"], order["user_id"]))
    tx.execute("DELETE FROM holdings WHERE drop_id = ? AND user_id = ? AND quantity = 0",
               (order["drop_id"], order["user_id"]))


class Engine(Core):
    """One SQLite file: ``Engine(path, *, readers=4, synchronous="NORMAL")``.

    Safe to share between threads; usable as a context manager. Outcomes are
    results, storage failures are ``StorageError`` subclasses.
    """

    # -- drops -----------------------------------------------------------

    def create_drop(self, **fields: Any) -> int:
        """Create a drop (SPEC 3 defaults filled in); returns its id."""
        row = validate_new_drop(fields)

        def insert(tx: Any) -> int:
            if tx.execute("SELECT 1 FROM drops WHERE slug = ?", (row["slug"],)):
                raise DropConflict("slug_taken", f"slug {row['slug']!r} is taken", "slug")
            tx.execute(DROP_INSERT_SQL, row)
            return tx.last_id

        return self.write(insert)

    def update_drop(self, drop_id: int, **changes: Any) -> dict[str, Any] | None:
        """Change a drop's fields; stock never below sold. Returns the row, None if unknown."""
        checked = validate_drop_changes(changes)

        def update(tx: Any) -> dict[str, Any] | None:
            rows = tx.execute("SELECT * FROM drops WHERE id = ?", (drop_id,))
            if not rows:
                return None
            merged = merge_drop_changes(rows[0], checked)
            if "slug" in checked and tx.execute("SELECT 1 FROM drops WHERE slug = ? AND id != ?",
                                                (checked["slug"], drop_id)):
                raise DropConflict("slug_taken", f"slug {checked['slug']!r} is taken", "slug")
            assignments = ", ".join(f"{field} = :{field}" for field in checked)
            tx.execute(f"UPDATE drops SET {assignments} WHERE id = :id", {**checked, "id": drop_id})
            return merged

        return self.write(update)

    # -- orders ----------------------------------------------------------

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
            rows = tx.execute("SELECT id, drop_id, user_id, quantity, status FROM orders WHERE id = ?",
                              (order_id,))
            if not rows:
                return "not_found"
            order = rows[0]
            if order["status"] == "reserved":
                release_order(tx, order, "cancelled")
                return "ok"
            if order["status"] == "cancelled":
                return "ok"
            return order["status"]

        outcome = self.write(cancel_order)
        return Result(outcome, None if outcome == "not_found" else self.get_order_by_id(order_id))

    # -- holds that run out ----------------------------------------------

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
                found = tx.execute("SELECT id, drop_id, user_id, quantity FROM orders"
                                   " WHERE id = ? AND status = 'reserved' AND expires_at <= ?",
                                   (row["id"], now))
                if found:
                    release_order(tx, found[0], "expired")
                    expired += 1
            return expired

        expired = self.write(expire) if due else 0
        oldest = self.read("SELECT COALESCE((SELECT id FROM orders WHERE id >= ? AND status = 'reserved'"
                           " ORDER BY id LIMIT 1), (SELECT COALESCE(MAX(id), 0) + 1 FROM orders)) AS id",
                           (start,))
        self._expiry_from = oldest[0]["id"]
        return expired

    # -- the invariant ---------------------------------------------------

    def check(self) -> list[str]:
        """Violations of SPEC 3's invariant, one line each; empty when sound."""
        problems = []
        for row in self.read(INVARIANT_SQL):
            if row["kind"] == "drop":
                problems.append(
                    f"drop {row['drop_id']}: sold={row['recorded']} but reserved+paid={row['live']}"
                    f" (total_stock={row['total_stock']})")
            else:
                problems.append(
                    f"drop {row['drop_id']} user {row['user_id']!r}: holding={row['recorded']}"
                    f" but reserved+paid={row['live']}")
        return problems

    def now_ms(self) -> int:
        return now_ms()
