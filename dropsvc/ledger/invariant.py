"""SPEC 3's invariant: for each drop, sold == the quantity of its reserved + paid orders and
sold <= total_stock; each buyer's holding == the quantity of their reserved + paid orders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Read = Callable[..., list[dict[str, Any]]]  # read(sql, params=()): rows as dicts, like Engine.read

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

COUNTS_SQL = "SELECT (SELECT COUNT(*) FROM drops) AS drops, (SELECT COUNT(*) FROM orders) AS orders"


def invariant_problems(read: Read) -> list[str]:
    """The invariant's violations, one line each (empty when sound), through ``read(sql)``."""
    problems = []
    for row in read(INVARIANT_SQL):
        if row["kind"] == "drop":
            problems.append(
                f"drop {row['drop_id']}: sold={row['recorded']} but reserved+paid={row['live']}"
                f" (total_stock={row['total_stock']})")
        else:
            problems.append(
                f"drop {row['drop_id']} user {row['user_id']!r}: holding={row['recorded']}"
                f" but reserved+paid={row['live']}")
    return problems


def describe_counts(read: Read) -> str:
    """``3 drops, 120 orders``: what a database holds."""
    counts = read(COUNTS_SQL)[0]
    drops, orders = counts["drops"], counts["orders"]
    return f"{drops} drop{'s' * (drops != 1)}, {orders} order{'s' * (orders != 1)}"


class InvariantMixin:
    """``Engine.check()``: the invariant on a reader snapshot of the live database."""

    def check(self) -> list[str]:
        """Violations of SPEC 3's invariant, one line each; empty when sound."""
        return invariant_problems(self.read)
