"""A queue drop's line for the admission tests, with explicit times (START is the close)."""

from __future__ import annotations

from engine_machine import admit_checked, buy_admitted

from dropsvc.ledger import queue

START = 1_000_000  # the close; check-in opens 10 minutes before it
ADMIT_MS = 60_000
PRESENT = START - queue.CHECK_IN_LEAD_MS


def line_maker(engine, make_drop):
    """A queue drop (starts at START, open-ended, 60 s windows, margin 0) with ``tickets`` joined
    before the start and its close recorded; ``present`` (positions, default all) checked in."""
    def make(tickets: int, present: set[int] | None = None, **fields) -> int:
        drop_id = make_drop(**{"admission": "queue", "starts_at": START, "admit_seconds": ADMIT_MS // 1000,
                               "admission_margin": 0, **fields})
        for n in range(1, tickets + 1):
            assert engine.join_line(drop_id, f"b{n}", now=START - 1)[0] == "ok"
        assert engine.record_close(drop_id, now=START)
        for position in range(1, tickets + 1) if present is None else present:
            check_in(engine, drop_id, position, now=PRESENT)
        return drop_id
    return make


def ticket_at(engine, drop_id: int, position: int) -> dict:
    return engine.read("SELECT * FROM tickets WHERE drop_id = ? AND position = ?", (drop_id, position))[0]


def check_in(engine, drop_id: int, position: int, now: int) -> dict:
    ticket = ticket_at(engine, drop_id, position)
    return engine.check_in(drop_id, ticket["ticket_id"], ticket["buyer"], now=now)


def states(engine, drop_id: int) -> list[str]:
    """The tickets' states in position order."""
    return [row["state"] for row in engine.read("SELECT state FROM tickets WHERE drop_id = ? ORDER BY position",
                                                (drop_id,))]


def buy(engine, drop_id: int, position: int, quantity: int = 1) -> dict:
    """The purchase of an admitted ticket: the engine marks it used and takes the stock (a hold)."""
    ticket = ticket_at(engine, drop_id, position)
    assert ticket["state"] == "admitted"
    return buy_admitted(engine, drop_id, ticket["buyer"], ticket["ticket_id"], quantity)


def admit(engine, drop_id: int, now: int) -> dict[str, int]:
    counts = admit_checked(engine, drop_id, now)
    assert engine.check() == []
    return counts


def admitted_positions(engine, drop_id: int) -> list[int]:
    """The positions of the admissions log, in order (a ticket admitted twice appears twice)."""
    return [engine.read("SELECT position FROM tickets WHERE drop_id = ? AND ticket_id = ?",
                        (drop_id, row["ticket_id"]))[0]["position"] for row in engine.admissions_of(drop_id)]
