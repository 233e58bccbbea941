"""Hypothesis drives random join / leave / close sequences on a queue drop's line against a
plain-Python model: ticket numbers, one ticket per buyer, kinds, the pre-queue ordered by draw key,
fifo after it, and the seed hidden until the close."""

from __future__ import annotations

import hashlib
import hmac

from engine_machine import EngineMachine
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

BUYERS = st.sampled_from(["ann", "bob", "cat", "dan", "eve", "fay", "gus"])


class LineModel(EngineMachine):
    def __init__(self) -> None:
        super().__init__("line.db")
        self.drop_id = self.engine.create_drop(slug="line", name="Line", price=1, total_stock=3, admission="queue")
        self.seed = self.engine.read("SELECT seed FROM drop_seeds")[0]["seed"]
        # buyer -> {ticket_id, kind, state, position, draw_key}, in join order
        self.tickets: dict[str, dict] = {}
        self.closed = False

    def owner(self, ticket_id: int) -> str | None:
        return next((buyer for buyer, t in self.tickets.items() if t["ticket_id"] == ticket_id), None)

    @rule(buyer=BUYERS)
    def join(self, buyer: str) -> None:
        outcome, ticket = self.engine.join_line(self.drop_id, buyer)
        if buyer in self.tickets:
            assert outcome == "same" and ticket["ticket_id"] == self.tickets[buyer]["ticket_id"]
            return
        assert outcome == "ok"
        position = None
        if self.closed:
            position = max((t["position"] for t in self.tickets.values()), default=0) + 1
        self.tickets[buyer] = {"ticket_id": len(self.tickets) + 1, "kind": "fifo" if self.closed else "prequeue",
                               "state": "waiting", "position": position, "draw_key": None}

    @rule(ticket_id=st.integers(1, 8), buyer=BUYERS)
    def leave(self, ticket_id: int, buyer: str) -> None:
        outcome = self.engine.leave_line(self.drop_id, ticket_id, buyer)
        if self.owner(ticket_id) != buyer:
            assert outcome == "not_found"
        elif self.tickets[buyer]["state"] == "left":
            assert outcome == "already_left"
        else:
            assert outcome == "ok"
            self.tickets[buyer]["state"] = "left"

    @precondition(lambda self: not self.closed)
    @rule()
    def close(self) -> None:
        assert self.engine.record_close(self.drop_id) is True
        self.closed = True

        def key(t: dict) -> str:
            return hmac.new(self.seed, str(t["ticket_id"]).encode(), hashlib.sha256).hexdigest()
        for position, ticket in enumerate(sorted(self.tickets.values(), key=key), 1):
            ticket["position"], ticket["draw_key"] = position, key(ticket)
        assert self.engine.record_close(self.drop_id) is False

    @invariant()
    def the_line_is_the_models(self) -> None:
        rows = self.engine.read("SELECT buyer, ticket_id, kind, state, position, draw_key FROM tickets")
        assert {row.pop("buyer"): row for row in rows} == self.tickets
        seed = self.engine.fairness(self.drop_id)["seed"]
        assert seed == (self.seed.hex() if self.closed else None)


TestLineModel = LineModel.TestCase
TestLineModel.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
