"""The line of a queue drop (SPEC 11): its seed and commitment, tickets, the recorded close.

A queue drop's 32-byte seed is made with it in ``drop_seeds`` (never in a drop's row); its
commitment, SHA-256 of the seed, is on the drop's row from the start; the seed is served only
once the close is recorded. A join (decided in C in the group commit: ``Core.join_ticket``) before
the close is ``prequeue`` (the write lock orders it before the close row, so its kind is known when
it commits); the close gives the pre-queue positions 1..P by draw key; a later join is ``fifo`` at
the highest position given so far + 1.
Check-in and admission are ``admission``'s; the purchase's ticket check is the engine's.
"""

from __future__ import annotations

import secrets
from time import monotonic
from typing import Any, NamedTuple

import orjson

from dropsvc._engine import TICKET_STATES, LineView
from dropsvc.drops import DropConflict, now_ms
from dropsvc.fairness import commitment_of, draw_key

SEED_BYTES = 32
TICKET_COLUMNS = ("drop_id, ticket_id, buyer, joined_at, kind, state, position, draw_key, checked_in_at,"
                  " admitted_at, admitted_until, first_position")
TICKET_NAMES = tuple(column.strip() for column in TICKET_COLUMNS.split(","))
KIND_BEFORE_CLOSE = {"queue": "prequeue", "draw": "entry"}
LEAVABLE_STATES = ("waiting", "admitted", "absent")  # the others are final
CHECK_IN_LEAD_MS = 10 * 60 * 1000  # a holder checks in from 10 minutes before the close on

# the highest position given so far (the partial index on positions answers it)
NEXT_POSITION_SQL = ("SELECT COALESCE(MAX(position), 0) + 1 AS position FROM tickets"
                     " WHERE drop_id = ? AND position IS NOT NULL")
# the pre-queue's draw keys and positions, one statement: ?2 is a JSON array of [ticket_id, key, position]
# (materialized first, so each row finds its ticket by primary key)
ORDER_PREQUEUE_SQL = """
WITH ordered (ticket_id, draw_key, position) AS MATERIALIZED (
    SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
      FROM json_each(?2)
)
UPDATE tickets SET draw_key = ordered.draw_key, position = ordered.position
  FROM ordered WHERE tickets.drop_id = ?1 AND tickets.ticket_id = ordered.ticket_id
"""
# the seed only through the recorded close: one statement, one snapshot
FAIRNESS_SQL = (
    "SELECT d.admission, d.commitment, s.seed FROM drops d"
    " LEFT JOIN queue_closes c ON c.drop_id = d.id LEFT JOIN drop_seeds s ON s.drop_id = c.drop_id"
    " WHERE d.id = ?"
)
# what a ticket's view needs of its line besides the ticket: the check-in's window (fixed once the line
# has a ticket) and the outlook; and the line's waiting positions, in order (the index on tickets by state)
LINE_SQL = ("SELECT admission, starts_at, entries_close_at, total_stock - sold AS remaining, per_user_limit,"
            " admit_seconds FROM drops WHERE id = ?")
WAITING_SQL = ("SELECT position FROM tickets WHERE drop_id = ? AND state = 'waiting' AND position IS NOT NULL"
               " ORDER BY position")
LINE_SECONDS = 0.4  # how old a process's copy of a line may be (the queue document's render cache's too)
LINE_COPIES = 256  # drops' lines kept per process; all dropped when full


class LineCopy(NamedTuple):
    """A process's copy of a line: its figures as the ticket view takes them (``Core.ticket_body``),
    until when it holds."""

    expires: float
    view: LineView


def check_in_from(line: dict[str, Any]) -> int | None:
    """From when (Unix ms) viewing a ticket of the line (its drop's LINE_SQL row) checks its holder in:
    10 minutes before the close (a queue's at starts_at, a draw's at entries_close_at); None for a
    drop without a line. Only a ticket in LEAVABLE_STATES not checked in yet (an absent ticket never
    checked in: skipped tickets are those that had not)."""
    if line["admission"] not in KIND_BEFORE_CLOSE:
        return None
    closes_at = line["entries_close_at"] if line["admission"] == "draw" else line["starts_at"]
    return closes_at - CHECK_IN_LEAD_MS


def line_view(line: dict[str, Any], waiting: list[int]) -> LineView:
    """The engine's figures of a line: its LINE_SQL row, its waiting positions in order."""
    return LineView(waiting, line["remaining"], line["per_user_limit"], line["admit_seconds"], check_in_from(line),
                    LEAVABLE_STATES)


FIGURES_SQL = (
    "SELECT d.admission, c.closed_at, c.prequeue_size, t.state, COUNT(t.ticket_id) AS tickets,"
    " MAX(t.position) AS last_position,"
    " MAX(CASE WHEN t.admitted_at IS NOT NULL THEN t.position END) AS admitted_through"
    " FROM drops d LEFT JOIN queue_closes c ON c.drop_id = d.id LEFT JOIN tickets t ON t.drop_id = d.id"
    " WHERE d.id = ? GROUP BY t.state"
)


def commit_to_seed(tx: Any, drop_id: int, admission: str) -> None:
    """Inside the caller's write: a line's drop gets its seed (made once, kept) and the commitment.

    An open drop shows no commitment; a seed it had stays, so a drop switched
    back to queue before anyone joined keeps the commitment it published.
    """
    if admission == "open":
        tx.execute("UPDATE drops SET commitment = NULL WHERE id = ?", (drop_id,))
        return
    tx.execute("INSERT OR IGNORE INTO drop_seeds (drop_id, seed) VALUES (?, ?)",
               (drop_id, secrets.token_bytes(SEED_BYTES)))
    seed = tx.execute("SELECT seed FROM drop_seeds WHERE drop_id = ?", (drop_id,))[0]["seed"]
    tx.execute("UPDATE drops SET commitment = ? WHERE id = ?", (commitment_of(seed), drop_id))


def refuse_line_changes(tx: Any, drop_id: int, fields: list[str]) -> None:
    """DropConflict when a change moves what the line was opened under (``fields``) once it started.

    ``tickets_exist`` once the line has a ticket (SPEC 11); ``line_closed``
    once its close is recorded without one (the seed is public then, so a
    line opened again would be ordered by a known seed).
    """
    if not fields:
        return
    names = ", ".join(fields)
    if tx.execute("SELECT 1 FROM tickets WHERE drop_id = ? LIMIT 1", (drop_id,)):
        raise DropConflict("tickets_exist", f"the line has tickets: {names} can no longer change", fields[0])
    if tx.execute("SELECT 1 FROM queue_closes WHERE drop_id = ?", (drop_id,)):
        raise DropConflict("line_closed", f"the line's close is recorded and its seed revealed: {names}"
                           " can no longer change", fields[0])


def _order_prequeue(tx: Any, drop_id: int, seed: bytes) -> int:
    """Give every ticket so far its draw key and its position (1..P, ascending keys); returns P."""
    tickets = [row["ticket_id"] for row in tx.execute("SELECT ticket_id FROM tickets WHERE drop_id = ?",
                                                      (drop_id,))]
    keyed = sorted((draw_key(seed, ticket_id), ticket_id) for ticket_id in tickets)
    if keyed:
        order = [[ticket_id, key, position] for position, (key, ticket_id) in enumerate(keyed, 1)]
        tx.execute(ORDER_PREQUEUE_SQL, (drop_id, orjson.dumps(order).decode()))
        if tx.changes != len(keyed):
            raise RuntimeError(f"drop {drop_id}: ordered {tx.changes} of {len(keyed)} pre-queue tickets")
    return len(keyed)


def close_line(tx: Any, drop_id: int, at: int) -> bool:
    """Inside the caller's write: record the close of the drop's pre-queue at ``at``, once.

    Every ticket so far gets its draw key and position; False when there is
    nothing to do (closed before, an unknown or an open drop).
    """
    rows = tx.execute("SELECT d.admission, s.seed, c.drop_id AS closed FROM drops d"
                      " LEFT JOIN drop_seeds s ON s.drop_id = d.id LEFT JOIN queue_closes c ON c.drop_id = d.id"
                      " WHERE d.id = ?", (drop_id,))
    if not rows or rows[0]["admission"] not in KIND_BEFORE_CLOSE or rows[0]["closed"] is not None:
        return False
    if rows[0]["seed"] is None:
        raise RuntimeError(f"drop {drop_id} has a line but no seed")
    size = _order_prequeue(tx, drop_id, rows[0]["seed"])
    tx.execute("INSERT INTO queue_closes (drop_id, closed_at, prequeue_size) VALUES (?, ?, ?)", (drop_id, at, size))
    return True


class QueueMixin:
    """The line operations of ``Engine`` (SPEC 11)."""

    def join_line(self, drop_id: int, buyer: str, now: int | None = None) -> tuple[str, dict[str, Any] | None]:
        """Join the drop's line, once per buyer: ``(outcome, ticket)``.

        ``ok`` a new ticket; ``same`` this buyer's ticket as it is (also after
        the line closed); ``not_found``; ``no_queue`` (an open drop);
        ``queue_closed`` at or after ``ends_at`` (a draw: ``entries_close_at``, or its close recorded);
        ``entries_not_open`` (a draw before ``starts_at``). Decided by the engine in the
        group commit (``Core.join_ticket``, batched with other joins and
        purchases); the time is read inside the write transaction unless ``now`` is given.
        """
        outcome, ticket_id, kind, joined_at, position = self.join_ticket(drop_id, buyer, now)
        if outcome == "ok":
            self.forget_line(drop_id)
        if outcome == "same":
            return outcome, self.ticket_of(drop_id, ticket_id)
        if outcome != "ok":
            return outcome, None
        ticket = dict.fromkeys(TICKET_NAMES)  # a new ticket: waiting, nothing else recorded yet
        ticket.update(drop_id=drop_id, ticket_id=ticket_id, buyer=buyer, joined_at=joined_at, kind=kind,
                      state="waiting", position=position,
                      checked_in_at=joined_at if kind == "entry" else None)  # as the engine's INSERT wrote it
        return outcome, ticket

    def ticket_of(self, drop_id: int, ticket_id: int) -> dict[str, Any] | None:
        """The ticket's row, or None."""
        rows = self.read(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE drop_id = ? AND ticket_id = ?",
                         (drop_id, ticket_id))
        return rows[0] if rows else None

    def buyer_ticket(self, drop_id: int, buyer: str) -> dict[str, Any] | None:
        """This buyer's ticket for the drop, or None."""
        rows = self.read(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE drop_id = ? AND buyer = ?", (drop_id, buyer))
        return rows[0] if rows else None

    def forget_line(self, drop_id: int) -> None:
        """Drop this process's copy of the line: this process just changed it."""
        self.__dict__.get("_line_copies", {}).pop(drop_id, None)

    def line_copy(self, drop_id: int) -> LineCopy | None:
        """This process's copy of the drop's line, read again once LINE_SECONDS old (two reads) or changed
        by this process (``forget_line``); None for an unknown drop. A ticket's view reads its ticket
        alone: counting the waiting tickets ahead per view would walk the line."""
        copies: dict[int, LineCopy] | None = self.__dict__.get("_line_copies")
        if copies is None:
            copies = self.__dict__["_line_copies"] = {}
        now = monotonic()
        line = copies.get(drop_id)
        if line is None or line.expires <= now:
            drop = self.read_row(LINE_SQL, (drop_id,))
            if drop is None:
                return None
            if len(copies) >= LINE_COPIES:
                copies.clear()
            waiting = [row["position"] for row in self.read(WAITING_SQL, (drop_id,))]
            line = copies[drop_id] = LineCopy(now + LINE_SECONDS, line_view(drop, waiting))
        return line

    def leave_line(self, drop_id: int, ticket_id: int, buyer: str) -> str:
        """The buyer's ticket leaves the line (state ``left``).

        Outcomes: ``ok``; ``not_found`` (no such ticket, or another buyer's);
        ``already_left``; or the final state that cannot leave (``used``, ``lapsed``, ...).
        """
        def leave(tx: Any) -> str:
            rows = tx.execute("SELECT buyer, state FROM tickets WHERE drop_id = ? AND ticket_id = ?",
                              (drop_id, ticket_id))
            if not rows or rows[0]["buyer"] != buyer:
                return "not_found"
            state = rows[0]["state"]
            if state == "left":
                return "already_left"
            if state not in LEAVABLE_STATES:
                return state
            tx.execute("UPDATE tickets SET state = 'left' WHERE drop_id = ? AND ticket_id = ?", (drop_id, ticket_id))
            return "ok"

        try:
            return self.write(leave)
        finally:
            self.forget_line(drop_id)

    def record_close(self, drop_id: int, now: int | None = None) -> bool:
        """Record the close of the drop's pre-queue, once; False when there is nothing to do.

        In one write transaction: every ticket so far gets its draw key and its
        position (1..P in ascending key order), and the close row is written
        (from then on the seed is served and joins are fifo). A second call,
        an unknown or an open drop change nothing.
        """
        def close(tx: Any) -> bool:
            return close_line(tx, drop_id, now_ms() if now is None else now)

        try:
            return self.write(close)
        finally:
            self.forget_line(drop_id)

    def fairness(self, drop_id: int) -> dict[str, Any] | None:
        """SPEC 11's ``/fairness`` object, ``{"commitment", "seed"}`` (seed None until the close), or None.

        None for an unknown drop and for an open one.
        """
        rows = self.read(FAIRNESS_SQL, (drop_id,))
        if not rows or rows[0]["admission"] not in KIND_BEFORE_CLOSE:
            return None
        seed = rows[0]["seed"]
        return {"commitment": rows[0]["commitment"], "seed": None if seed is None else seed.hex()}

    def revealed_seed(self, drop_id: int) -> str | None:
        """The drop's seed in lower-case hex once its close is recorded, else None."""
        fairness = self.fairness(drop_id)
        return None if fairness is None else fairness["seed"]

    def line_figures(self, drop_id: int) -> dict[str, Any] | None:
        """The line's figures, one snapshot: tickets by state, ``waiting``, ``admitted_through``
        (the highest position admitted so far; 0 before any), ``last_position``, the close. None for
        an unknown or open drop. It counts the drop's tickets: not for a per-request path.
        """
        rows = self.read(FIGURES_SQL, (drop_id,))
        if not rows or rows[0]["admission"] not in KIND_BEFORE_CLOSE:
            return None
        by_state = dict.fromkeys(TICKET_STATES, 0)
        for row in rows:
            if row["state"] is not None:
                by_state[row["state"]] = row["tickets"]
        return {
            "tickets": sum(by_state.values()),
            "by_state": by_state,
            "waiting": by_state["waiting"],
            "admitted_through": max((row["admitted_through"] or 0 for row in rows), default=0),
            "last_position": max((row["last_position"] or 0 for row in rows), default=0),
            "closed_at": rows[0]["closed_at"],
            "prequeue_size": rows[0]["prequeue_size"],
        }
