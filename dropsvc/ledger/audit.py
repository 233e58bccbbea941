"""A line's fairness export (SPEC 11, Audit): what ``dropsvc verify-fairness`` checks.

One snapshot on a reader: the ``/fairness`` object and one line per ticket, never a buyer id.
Each ticket carries ``first_position`` too (where it was placed first, when a late check-in
moved it to the end of the line), so the order can be recomputed from the seed alone.
"""

from __future__ import annotations

from typing import Any

import orjson

# a ticket's state as the export's outcome: the same names, except that a used admission bought
OUTCOMES = {"used": "bought"}
# every ticket with its admissions, in one statement (one snapshot); admitted_at as a JSON list
EXPORT_SQL = """
SELECT t.ticket_id, t.joined_at, t.kind, t.draw_key, t.position, t.first_position, t.checked_in_at, t.state,
       (SELECT json_group_array(a.admitted_at) FROM (SELECT admitted_at FROM ticket_admissions
         WHERE drop_id = t.drop_id AND ticket_id = t.ticket_id ORDER BY admitted_at) AS a) AS admitted_at
  FROM tickets t WHERE t.drop_id = ? ORDER BY t.ticket_id
"""


class AuditMixin:
    """The audit operations of ``Engine``."""

    def fairness_tickets(self, drop_id: int) -> list[dict[str, Any]] | None:
        """The export's ticket lines, or None while the seed is not revealed (and for an open drop)."""
        fairness = self.fairness(drop_id)
        return None if fairness is None or fairness["seed"] is None else self._ticket_lines(drop_id)

    def fairness_file(self, drop_id: int) -> bytes | None:
        """The whole fairness file (JSON lines: the ``/fairness`` object, then the tickets), or None."""
        fairness = self.fairness(drop_id)
        if fairness is None or fairness["seed"] is None:
            return None
        return b"".join(orjson.dumps(line) + b"\n" for line in [fairness, *self._ticket_lines(drop_id)])

    def _ticket_lines(self, drop_id: int) -> list[dict[str, Any]]:
        return [{"ticket_id": str(row["ticket_id"]), "joined_at": row["joined_at"], "kind": row["kind"],
                 "draw_key": row["draw_key"] if row["kind"] != "fifo" else None, "position": row["position"],
                 "first_position": row["first_position"], "checked_in_at": row["checked_in_at"],
                 "admitted_at": orjson.loads(row["admitted_at"]), "outcome": OUTCOMES.get(row["state"], row["state"])}
                for row in self.read(EXPORT_SQL, (drop_id,))]
