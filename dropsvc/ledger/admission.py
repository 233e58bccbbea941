"""Check-in and stock-aware admission of a queue drop's line (SPEC 11), run by the background worker.

Counted in units: each ticket may buy ``per_user_limit`` units; ``remaining`` = total_stock - sold;
the admitted-and-unused units are the tickets in state ``admitted`` (a purchase makes its ticket
``used``) times per_user_limit. Each pass over a drop, one write transaction, in this order:

1. the close, at or after ``starts_at`` (a draw's: ``entries_close_at``, the draw), if not recorded yet
   (``queue.close_line``);
2. ``ends_at`` passed: every waiting, admitted or absent ticket is ``ended``, once;
3. lapses: an admitted ticket at or past its ``admitted_until`` is ``lapsed`` (final);
4. ``remaining == 0``: the admitted tickets go back to ``waiting`` at their own positions (so a
   unit that comes back goes to the earliest waiting ticket); with no hold outstanding either the
   queue is finished: every waiting or absent ticket is ``sold_out`` at once;
5. otherwise the next waiting tickets in position order are admitted (those that have checked in;
   the others are skipped, ``absent``) while the admitted-and-unused units are below ``remaining``,
   plus ``admission_margin`` in the first wave only. After it the line is kept at admitted-and-unused
   >= remaining, so each unit that comes back (a hold expired or cancelled, a lapse, stock raised, a
   purchase of fewer units than the ticket allowed) admits the next ticket.

A draw is the same line with margin 0: its first wave admits exactly the stock's worth of entries in
draw-key order (the winners), and the entries after them wait as its waitlist.

A pass reads first, on a reader (``pass_has_work``: a close, lapses or the end due, units to admit,
admitted tickets to send back, the finish), and takes the write lock only when something would
change: an idle line costs the background worker one read per pass, no write transaction.

All of it is in the database (``queue_progress``, the tickets, ``ticket_admissions``): a pass is
idempotent, and a restart or another process taking the background lock over continues where
it was, admitted tickets keeping their ``admitted_until``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from dropsvc._engine import CHECK_IN_DUE, TICKET_VIEW_SQL
from dropsvc.drops import now_ms
from dropsvc.ledger.queue import (
    KIND_BEFORE_CLOSE,
    LEAVABLE_STATES,
    LINE_SQL,
    NEXT_POSITION_SQL,
    check_in_from,
    close_line,
)

WAVE_BATCH = 256  # waiting tickets read at a time while a pass looks for present ones
COUNTS = ("closed", "admitted", "absent", "lapsed", "returned", "sold_out", "ended")

# when a line closes: a queue's at starts_at, a draw's at entries_close_at (the draw)
CLOSES_AT_SQL = "CASE d.admission WHEN 'draw' THEN d.entries_close_at ELSE d.starts_at END"
# lines admission may have work for: closing or closed, not ended yet (drops are few: no index)
ACTIVE_DROPS_SQL = (
    "SELECT d.id FROM drops d LEFT JOIN queue_progress p ON p.drop_id = d.id"
    f" WHERE d.admission IN ('queue', 'draw') AND {CLOSES_AT_SQL} <= ? AND p.ended_at IS NULL ORDER BY d.id"
)
# what a pass reads first, at ?2: the drop, its close and progress, and what tells whether the pass has
# work (the index on tickets by state answers the counts)
PASS_SQL = (
    "SELECT d.admission, d.total_stock, d.sold, d.per_user_limit, d.admit_seconds, d.admission_margin,"
    f" {CLOSES_AT_SQL} AS closes_at, d.ends_at, c.closed_at, p.drop_id IS NOT NULL AS progress, p.first_wave_at,"
    " p.finished_at,"
    " p.ended_at, p.paused_at,"
    " (SELECT COUNT(*) FROM tickets t WHERE t.drop_id = d.id AND t.state = 'admitted') AS admitted,"
    " EXISTS (SELECT 1 FROM tickets t WHERE t.drop_id = d.id AND t.state = 'admitted' AND t.admitted_until <= ?2)"
    " AS lapses_due,"
    " EXISTS (SELECT 1 FROM tickets t WHERE t.drop_id = d.id AND t.state = 'waiting' AND t.position IS NOT NULL)"
    " AS next_waiting,"
    " EXISTS (SELECT 1 FROM tickets t WHERE t.drop_id = d.id AND t.state IN ('waiting', 'absent')) AS unfinished"
    " FROM drops d LEFT JOIN queue_closes c ON c.drop_id = d.id LEFT JOIN queue_progress p ON p.drop_id = d.id"
    " WHERE d.id = ?1"
)
# units in the drop's reserved orders, from a low-water mark no reserved order is below (?1)
HELD_SQL = ("SELECT COALESCE(SUM(quantity), 0) AS held FROM orders"
            " WHERE id >= ?1 AND drop_id = ?2 AND status = 'reserved'")
NEXT_WAITING_SQL = ("SELECT ticket_id, position, checked_in_at FROM tickets"
                    " WHERE drop_id = ? AND state = 'waiting' AND position IS NOT NULL ORDER BY position LIMIT ?")
# ?2 a JSON array of ticket ids
ADMIT_SQL = """
WITH chosen (ticket_id) AS MATERIALIZED (SELECT value FROM json_each(?2))
UPDATE tickets SET state = 'admitted', admitted_at = ?3, admitted_until = ?4
  FROM chosen WHERE tickets.drop_id = ?1 AND tickets.ticket_id = chosen.ticket_id AND tickets.state = 'waiting'
"""
LOG_ADMISSIONS_SQL = ("INSERT INTO ticket_admissions (drop_id, ticket_id, admitted_at, admitted_until)"
                      " SELECT ?1, value, ?3, ?4 FROM json_each(?2)")
SKIP_SQL = """
WITH chosen (ticket_id) AS MATERIALIZED (SELECT value FROM json_each(?2))
UPDATE tickets SET state = 'absent'
  FROM chosen WHERE tickets.drop_id = ?1 AND tickets.ticket_id = chosen.ticket_id AND tickets.state = 'waiting'
"""
STATE_SQL = (
    "SELECT d.admission, d.total_stock, d.sold, d.starts_at, d.ends_at, c.closed_at,"
    " p.admitted_through, p.first_wave_at, p.finished_at, p.ended_at, p.paused_at,"
    " (SELECT COUNT(*) FROM tickets t WHERE t.drop_id = d.id AND t.state = 'waiting') AS waiting"
    " FROM drops d LEFT JOIN queue_closes c ON c.drop_id = d.id LEFT JOIN queue_progress p ON p.drop_id = d.id"
    " WHERE d.id = ?"
)


def _set_state(tx: Any, drop_id: int, states: tuple[str, ...], state: str) -> int:
    """Every ticket of the drop in one of ``states`` goes to ``state``; how many."""
    marks = ", ".join("?" * len(states))
    tx.execute(f"UPDATE tickets SET state = ? WHERE drop_id = ? AND state IN ({marks})", (state, drop_id, *states))
    return tx.changes


def _progress(tx: Any, drop_id: int, assignment: str, *params: Any) -> None:
    """One change to the drop's ``queue_progress`` row (made by its first pass)."""
    tx.execute(f"UPDATE queue_progress SET {assignment} WHERE drop_id = ?", (*params, drop_id))


def _admit_next(tx: Any, drop_id: int, tickets: int, at: int, until: int) -> tuple[int, int]:
    """Admit the next ``tickets`` present waiting tickets in position order, skipping (absent) the
    others on the way; batched. Returns (admitted, absent)."""
    admitted = absent = 0
    while tickets > 0:
        batch = tx.execute(NEXT_WAITING_SQL, (drop_id, WAVE_BATCH))
        if not batch:
            break
        chosen, skipped, through = [], [], 0
        for ticket in batch:
            if tickets == 0:
                break
            if ticket["checked_in_at"] is None:
                skipped.append(ticket["ticket_id"])
            else:
                chosen.append(ticket["ticket_id"])
                through, tickets = ticket["position"], tickets - 1
        if skipped:
            tx.execute(SKIP_SQL, (drop_id, orjson.dumps(skipped).decode()))
            absent += len(skipped)
        if chosen:
            ids = orjson.dumps(chosen).decode()
            tx.execute(ADMIT_SQL, (drop_id, ids, at, until))
            tx.execute(LOG_ADMISSIONS_SQL, (drop_id, ids, at, until))
            _progress(tx, drop_id, "admitted_through = MAX(admitted_through, ?)", through)
            admitted += len(chosen)
    return admitted, absent


def admission_pass(tx: Any, drop_id: int, at: int, reserved_from: int) -> dict[str, int]:
    """One pass of admission over a queue drop at ``at``, inside the caller's write; its counts.

    ``reserved_from``: an order id no reserved order is below (where counting holds starts).
    """
    counts = dict.fromkeys(COUNTS, 0)
    rows = tx.execute(PASS_SQL, (drop_id, at))
    if not rows or not _in_line(rows[0], at):
        return counts
    drop = rows[0]
    if drop["closed_at"] is None:
        counts["closed"] = int(close_line(tx, drop_id, at))
    tx.execute("INSERT OR IGNORE INTO queue_progress (drop_id) VALUES (?)", (drop_id,))  # a no-op once made
    if drop["ends_at"] is not None and at >= drop["ends_at"]:
        counts["ended"] = _set_state(tx, drop_id, LEAVABLE_STATES, "ended")
        _progress(tx, drop_id, "ended_at = ?", at)
        return counts
    tx.execute("UPDATE tickets SET state = 'lapsed' WHERE drop_id = ? AND state = 'admitted' AND admitted_until <= ?",
               (drop_id, at))
    counts["lapsed"] = tx.changes
    if drop["paused_at"] is not None:  # paused: windows run out and the drop ends, nobody new is admitted
        return counts
    remaining = drop["total_stock"] - drop["sold"]
    if remaining <= 0:
        tx.execute("UPDATE tickets SET state = 'waiting', admitted_until = NULL"
                   " WHERE drop_id = ? AND state = 'admitted'", (drop_id,))
        counts["returned"] = tx.changes
        if tx.execute(HELD_SQL, (reserved_from, drop_id))[0]["held"] == 0:
            counts["sold_out"] = _set_state(tx, drop_id, ("waiting", "absent"), "sold_out")
            if drop["finished_at"] is None:
                _progress(tx, drop_id, "finished_at = ?", at)
    else:
        if drop["finished_at"] is not None:  # stock raised after the finish: the line admits again
            _progress(tx, drop_id, "finished_at = NULL")
        margin = drop["admission_margin"] if drop["first_wave_at"] is None else 0
        limit = drop["per_user_limit"]
        unused = tx.execute("SELECT COUNT(*) AS n FROM tickets WHERE drop_id = ? AND state = 'admitted'",
                            (drop_id,))[0]["n"] * limit
        short = remaining + (margin or 0) - unused
        if short > 0:
            tickets = -(-short // limit)  # whole tickets, rounding up
            counts["admitted"], counts["absent"] = _admit_next(tx, drop_id, tickets, at,
                                                               at + drop["admit_seconds"] * 1000)
    if drop["first_wave_at"] is None:
        _progress(tx, drop_id, "first_wave_at = ?", at)
    return counts  # a pass that changed nothing wrote nothing: no WAL frame


def check_in_due(state: str, checked_in_at: int | None, line: dict[str, Any], at: int) -> bool:
    """Whether viewing a ticket (its ``state`` and ``checked_in_at``; its drop's LINE_SQL row) at ``at``
    checks its holder in (``queue.check_in_from``; the ticket view's engine call applies the same rule
    from its ``LineView``)."""
    start = check_in_from(line)
    return checked_in_at is None and start is not None and at >= start and state in LEAVABLE_STATES


def record_check_in(tx: Any, drop_id: int, ticket_id: int, buyer: str, at: int) -> None:
    """Inside the caller's write: check the buyer's ticket's holder in at ``at`` when it is due
    (``check_in_due``): ``checked_in_at``, and an absent ticket back to ``waiting`` at the highest
    position given so far + 1, its first position kept."""
    tickets = tx.execute(TICKET_VIEW_SQL, (drop_id, ticket_id))
    if not tickets or tickets[0]["buyer"] != buyer or not check_in_due(
            tickets[0]["state"], tickets[0]["checked_in_at"], tx.execute(LINE_SQL, (drop_id,))[0], at):
        return
    if tickets[0]["state"] == "absent":
        position = tx.execute(NEXT_POSITION_SQL, (drop_id,))[0]["position"]
        tx.execute("UPDATE tickets SET state = 'waiting', first_position = COALESCE(first_position, position),"
                   " position = ?, checked_in_at = ? WHERE drop_id = ? AND ticket_id = ?",
                   (position, at, drop_id, ticket_id))
    else:
        tx.execute("UPDATE tickets SET checked_in_at = ? WHERE drop_id = ? AND ticket_id = ?", (at, drop_id, ticket_id))


def _in_line(drop: dict[str, Any], at: int) -> bool:
    """A pass has a line to look at: a queue or draw drop, at or past its close at ``at``, not ended."""
    return drop["admission"] in KIND_BEFORE_CLOSE and at >= drop["closes_at"] and drop["ended_at"] is None


def pass_has_work(drop: dict[str, Any], at: int, held: Callable[[], int]) -> bool:
    """Whether a pass at ``at`` would change anything, from the drop's PASS_SQL row (and, only when it
    matters, ``held()``): the steps of the module's docstring, read without the write lock. The pass
    itself decides again under it; this only lets an idle pass take no write transaction."""
    if not _in_line(drop, at):
        return False
    if drop["closed_at"] is None or not drop["progress"] or drop["lapses_due"]:
        return True  # the close, the progress row, lapses
    if drop["ends_at"] is not None and at >= drop["ends_at"]:
        return True  # the end
    if drop["paused_at"] is not None:
        return False
    if drop["first_wave_at"] is None:
        return True
    remaining = drop["total_stock"] - drop["sold"]
    if remaining <= 0:  # admitted tickets go back to waiting; the finish once nothing is held
        return drop["admitted"] > 0 or ((drop["unfinished"] or drop["finished_at"] is None) and held() == 0)
    short = remaining - drop["admitted"] * drop["per_user_limit"]  # the margin is the first wave's only
    return drop["finished_at"] is not None or (short > 0 and bool(drop["next_waiting"]))


def queue_state_of(row: dict[str, Any], held: int, now: int) -> str:
    """SPEC 11's queue state from the drop's row (STATE_SQL) and its held units.

    ``sold_out`` once the finish is recorded, in the pass that turns the waiting tickets
    ``sold_out``: the document and the tickets say it together (before that pass, nothing left
    and nothing held is still ``all_held``, for at most one pass).
    """
    if row["ended_at"] is not None or (row["ends_at"] is not None and now >= row["ends_at"]):
        return "ended"
    if row["closed_at"] is None:  # a queue takes joins from its creation, a draw's entries from starts_at
        return "upcoming" if row["admission"] == "draw" and now < row["starts_at"] else "entries_open"
    if row["total_stock"] - row["sold"] > 0:
        return "admitting"
    return "sold_out" if row["finished_at"] is not None and not held else "all_held"


class AdmissionMixin:
    """Check-in, admission and the queue's state, as operations of ``Engine`` (SPEC 11)."""

    def check_in(self, drop_id: int, ticket_id: int, buyer: str, now: int | None = None) -> dict[str, Any] | None:
        """The holder views the ticket: checked in from 10 minutes before the close on; the ticket row.

        None for an unknown ticket or another buyer's. See ``ticket_view``.
        """
        seen = self.ticket_view(drop_id, ticket_id, buyer, now=now)
        return None if seen is None else self.ticket_of(drop_id, ticket_id)

    def ticket_view(self, drop_id: int, ticket_id: int, buyer: str, head: bytes = b"{", check_in: bool = True,
                    now: int | None = None) -> bytes | None:
        """A ticket's view, which checks its holder in (unless not ``check_in``): the ticket object's
        JSON as ``Core.ticket_body`` makes it, ``head`` its opening (``{`` and the caller's own fields
        before ``kind``), ``ahead`` and the estimate from the process's copy of its line (``line_copy``);
        None for an unknown ticket, another buyer's or an unknown drop.

        One read of the ticket (prepared, in C), and a write only when it changes something (the
        first check-in in the window, or an ``absent`` ticket coming back: ``waiting`` at the highest
        position given so far + 1, its first position kept); every other view, a checked-in ticket's
        included, takes no write lock.
        """
        line = self.line_copy(drop_id)
        if line is None:
            return None
        body = self.ticket_body(line.view, drop_id, ticket_id, buyer, head, check_in, now)
        if body is CHECK_IN_DUE:
            self.write(lambda tx: record_check_in(tx, drop_id, ticket_id, buyer, now_ms() if now is None else now))
            self.forget_line(drop_id)
            line = self.line_copy(drop_id)
            body = None if line is None else self.ticket_body(line.view, drop_id, ticket_id, buyer, head, False, now)
        return body

    def admit_drop(self, drop_id: int, now: int | None = None) -> dict[str, int]:
        """One admission pass over the drop: a read first, and one write transaction only when it has
        work (``pass_has_work``; the time read inside the write unless given). An idle pass takes no
        write lock."""
        reserved_from = self.reserved_low_water()
        at = now_ms() if now is None else now
        rows = self.read(PASS_SQL, (drop_id, at))
        if not rows or not pass_has_work(rows[0], at, lambda: self.read(HELD_SQL, (reserved_from, drop_id))[0]["held"]):
            return dict.fromkeys(COUNTS, 0)
        try:
            return self.write(lambda tx: admission_pass(tx, drop_id, now_ms() if now is None else now, reserved_from))
        finally:
            self.forget_line(drop_id)

    def queue_drops_due(self, now: int | None = None) -> list[int]:
        """The queue drops admission has work for: started and not ended (on a reader)."""
        return [row["id"] for row in self.read(ACTIVE_DROPS_SQL, (now_ms() if now is None else now,))]

    def admit_due(self, now: int | None = None) -> dict[int, dict[str, int]]:
        """An admission pass over every queue drop due, each one write; the counts of those where
        something changed, by drop id."""
        changed = {}
        for drop_id in self.queue_drops_due(now):
            counts = self.admit_drop(drop_id, now)
            if any(counts.values()):
                changed[drop_id] = counts
        return changed

    def queue_state(self, drop_id: int, now: int | None = None) -> dict[str, Any] | None:
        """The public queue figures (SPEC 11): ``state``, ``admitted_through``, ``waiting``,
        ``remaining``, ``held``, ``paused`` and ``paused_at`` (by the merchant); None for an unknown or open drop.
        On readers, no write lock."""
        rows = self.read(STATE_SQL, (drop_id,))
        if not rows or rows[0]["admission"] not in KIND_BEFORE_CLOSE:
            return None
        row = rows[0]
        held = self.read(HELD_SQL, (self.reserved_low_water(fresh=True), drop_id))[0]["held"]
        return {
            "state": queue_state_of(row, held, now_ms() if now is None else now),
            "admitted_through": row["admitted_through"] or 0,
            "waiting": row["waiting"],
            "remaining": row["total_stock"] - row["sold"],
            "held": held,
            "paused": row["paused_at"] is not None,
            "paused_at": row["paused_at"],
            "finished_at": row["finished_at"],
        }

    def admissions_of(self, drop_id: int, ticket_id: int | None = None) -> list[dict[str, Any]]:
        """The admissions log (every admission, for the audit), oldest first; one ticket's if given."""
        sql = "SELECT ticket_id, admitted_at, admitted_until FROM ticket_admissions WHERE drop_id = ?"
        params: tuple[Any, ...] = (drop_id,)
        if ticket_id is not None:
            sql, params = sql + " AND ticket_id = ?", (drop_id, ticket_id)
        return self.read(sql + " ORDER BY id", params)
