"""A base for Hypothesis state machines over a fresh engine on a real file; buying with an admitted ticket."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from hypothesis.stateful import RuleBasedStateMachine

from dropsvc import Engine


class EngineMachine(RuleBasedStateMachine):
    """``self.engine`` on a new file in a temporary folder; at the end, SPEC 3's invariant holds and
    the engine and folder are gone."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.engine = Engine(Path(self.folder.name) / name, readers=2)

    def teardown(self) -> None:
        try:
            assert self.engine.check() == []
        finally:
            self.engine.close()
            self.folder.cleanup()


def buy_admitted(engine: Engine, drop_id: int, buyer: str, ticket_id: int, quantity: int = 1) -> dict:
    """The real purchase of an admitted ticket, in tests whose line runs on a simulated clock.

    The purchase checks the window by the real clock inside its transaction, so the ticket's
    ``admitted_until`` (set by a pass at the test's time) is moved past now first; the engine then
    checks the ticket, marks it used and takes the stock.
    """
    later = time.time_ns() // 1_000_000 + 60_000
    engine.write(lambda tx: tx.execute("UPDATE tickets SET admitted_until = ? WHERE drop_id = ? AND ticket_id = ?"
                                       " AND state = 'admitted'", (later, drop_id, ticket_id)))
    result = engine.purchase(drop_id, buyer, quantity, ticket_id=ticket_id)
    assert result.ok, (result.outcome, result.ticket_state)
    return result.order


def line_record(engine: Engine, drop_id: int) -> list[list[dict]]:
    """Everything an admission pass may change of a drop's line, as it is now."""
    return [engine.read(f"SELECT * FROM {table} WHERE drop_id = ? ORDER BY 1, 2", (drop_id,))
            for table in ("tickets", "queue_progress", "queue_closes", "ticket_admissions")]


def admit_checked(engine: Engine, drop_id: int, now: int) -> dict[str, int]:
    """``engine.admit_drop`` at ``now``; when its read found nothing to do (no write lock taken), a
    pass under the write lock at the same time must agree: it changes nothing."""
    from dropsvc.ledger.admission import COUNTS, admission_pass

    taken = engine.counters()["lock_acquisitions"]
    counts = engine.admit_drop(drop_id, now=now)
    if engine.counters()["lock_acquisitions"] == taken:
        assert counts == dict.fromkeys(COUNTS, 0)
        before = line_record(engine, drop_id)
        forced = engine.write(lambda tx: admission_pass(tx, drop_id, now, engine.reserved_low_water(fresh=True)))
        assert forced == dict.fromkeys(COUNTS, 0) and line_record(engine, drop_id) == before, forced
    return counts
