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
