"""The merchant's hand on a line (SPEC 11): its figures, pause and resume, longer windows, a voided ticket.

- Pause: the admission passes go on closing the line at its time, lapsing windows and ending
  the drop, but admit nobody (``queue_progress.paused_at``); resume admits again from the
  earliest waiting ticket, in order, as if the pause had not been.
- Extend: every admitted ticket's window (or one ticket's) is longer by some seconds; a window
  already run out is not reopened.
- Void: a ticket that is still in the line (waiting, admitted or absent) is taken out of it,
  ``voided``, final; it shows as such in the public fairness export, so a voided ticket is seen by
  all and ``verify-fairness`` does not count it as skipped. Its unit, if it was admitted, admits the
  next ticket. A used ticket (its order exists) is not voided: cancel the order instead.

Outcomes are strings, as for a buyer leaving: ``ok``, ``drop_not_found``, ``ticket_not_found``,
``no_queue`` (an open drop), ``ended`` (the line is over), or a ticket's final state.
"""

from __future__ import annotations

from typing import Any

from dropsvc.drops import now_ms
from dropsvc.ledger.queue import KIND_BEFORE_CLOSE, LEAVABLE_STATES, TICKET_COLUMNS

MAX_EXTEND_SECONDS = 24 * 3600
LINE_STATUS_SQL = (
    "SELECT d.admission, p.ended_at, p.paused_at FROM drops d LEFT JOIN queue_progress p ON p.drop_id = d.id"
    " WHERE d.id = ?"
)
ADMISSIONS_SQL = ("SELECT COUNT(*) AS admissions, COALESCE(SUM(admitted_at >= ?2), 0) AS last_minute,"
                  " MIN(admitted_at) AS first_at FROM ticket_admissions WHERE drop_id = ?1")
CHECKED_IN_SQL = "SELECT COUNT(*) AS n FROM tickets WHERE drop_id = ? AND checked_in_at IS NOT NULL"


def _line(tx: Any, drop_id: int) -> str:
    """``ok`` for a line the merchant may change, else the outcome that refuses it."""
    rows = tx.execute(LINE_STATUS_SQL, (drop_id,))
    if not rows:
        return "drop_not_found"
    if rows[0]["admission"] not in KIND_BEFORE_CLOSE:
        return "no_queue"
    return "ended" if rows[0]["ended_at"] is not None else "ok"


class LineControlsMixin:
    """The merchant's operations on a line, as operations of ``Engine``."""

    def line_report(self, drop_id: int, now: int | None = None) -> dict[str, Any] | None:
        """The line's figures for the merchant: tickets joined, checked in and by state, the queue's
        state and units, whether admission is paused, admissions so far and in the last minute.
        None for an unknown or open drop (``line_refusal`` says which). Several reads: figures, not
        one snapshot."""
        at = now_ms() if now is None else now
        figures = self.line_figures(drop_id)
        state = self.queue_state(drop_id, at)
        if figures is None or state is None:
            return None
        admissions = self.read(ADMISSIONS_SQL, (drop_id, at - 60_000))[0]
        return {
            "drop_id": drop_id, "state": state["state"], "paused": state["paused"], "paused_at": state["paused_at"],
            "closed_at": figures["closed_at"], "prequeue_size": figures["prequeue_size"],
            "joined": figures["tickets"], "checked_in": self.read(CHECKED_IN_SQL, (drop_id,))[0]["n"],
            "by_state": figures["by_state"], "admitted_through": state["admitted_through"],
            "remaining": state["remaining"], "held": state["held"],
            "admissions": admissions["admissions"], "admissions_last_minute": admissions["last_minute"],
            "first_admission_at": admissions["first_at"],
        }

    def line_refusal(self, drop_id: int) -> str:
        """Why the drop has no line to report or show: ``drop_not_found``, else ``no_queue``."""
        return "no_queue" if self.read(LINE_STATUS_SQL, (drop_id,)) else "drop_not_found"

    def pause_line(self, drop_id: int, paused: bool = True, now: int | None = None) -> str:
        """Pause (or resume) admission; pausing a paused line keeps the first pause's time."""
        def switch(tx: Any) -> str:
            outcome = _line(tx, drop_id)
            if outcome != "ok":
                return outcome
            tx.execute("INSERT OR IGNORE INTO queue_progress (drop_id) VALUES (?)", (drop_id,))
            at = now_ms() if now is None else now
            tx.execute("UPDATE queue_progress SET paused_at = CASE WHEN ?1 THEN COALESCE(paused_at, ?2) END"
                       " WHERE drop_id = ?3", (paused, at, drop_id))
            return "ok"

        return self.write(switch)

    def extend_windows(self, drop_id: int, seconds: int, ticket_id: int | None = None,
                       now: int | None = None) -> tuple[str, int]:
        """Every admitted ticket's window (or ``ticket_id``'s) ``seconds`` longer; (outcome, tickets).

        Only windows still open at ``now``: one that ran out lapses at the next pass anyway. One
        ticket not admitted: its state as the outcome (``ticket_not_found`` if there is none).
        """
        if not 0 < seconds <= MAX_EXTEND_SECONDS:
            raise ValueError(f"seconds must be 1..{MAX_EXTEND_SECONDS}")

        def extend(tx: Any) -> tuple[str, int]:
            outcome = _line(tx, drop_id)
            if outcome != "ok":
                return outcome, 0
            at = now_ms() if now is None else now
            sql = ("UPDATE tickets SET admitted_until = admitted_until + ? WHERE drop_id = ? AND state = 'admitted'"
                   " AND admitted_until > ?")
            params: tuple[Any, ...] = (seconds * 1000, drop_id, at)
            if ticket_id is not None:
                rows = tx.execute("SELECT state FROM tickets WHERE drop_id = ? AND ticket_id = ?", (drop_id, ticket_id))
                if not rows:
                    return "ticket_not_found", 0
                if rows[0]["state"] != "admitted":
                    return rows[0]["state"], 0
                sql, params = sql + " AND ticket_id = ?", (*params, ticket_id)
            tx.execute(sql, params)
            return "ok", tx.changes

        return self.write(extend)

    def void_ticket(self, drop_id: int, ticket_id: int) -> tuple[str, dict[str, Any] | None]:
        """Take a ticket out of the line (``voided``, final): (outcome, the ticket's row after)."""
        def void(tx: Any) -> tuple[str, dict[str, Any] | None]:
            outcome = _line(tx, drop_id)
            if outcome != "ok":
                return outcome, None
            rows = tx.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE drop_id = ? AND ticket_id = ?",
                              (drop_id, ticket_id))
            if not rows:
                return "ticket_not_found", None
            if rows[0]["state"] not in LEAVABLE_STATES:
                return rows[0]["state"], rows[0]
            tx.execute("UPDATE tickets SET state = 'voided' WHERE drop_id = ? AND ticket_id = ?", (drop_id, ticket_id))
            return "ok", {**rows[0], "state": "voided"}

        return self.write(void)
