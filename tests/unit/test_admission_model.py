"""Hypothesis drives join / check in / admission pass / buy / cancel / pay / leave / time passing
(lapses) on a queue drop (3 units, 2 a ticket, margin 1) against a plain-Python model of SPEC 11's
admission: every ticket's state, position, check-in and window, the admissions log, the order
(no ticket admitted while an earlier one waits checked in) and the stock invariant."""

from __future__ import annotations

import hashlib
import hmac

from engine_machine import EngineMachine, admit_checked, buy_admitted
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from dropsvc.ledger.queue import CHECK_IN_LEAD_MS

START, STOCK, LIMIT, MARGIN, ADMIT_MS = 1_000_000, 3, 2, 1, 5_000
BUYERS = st.sampled_from([f"p{n}" for n in range(7)])
OPEN = ("waiting", "admitted", "absent")


class AdmissionModel(EngineMachine):
    def __init__(self) -> None:
        super().__init__("admission.db")
        self.drop_id = self.engine.create_drop(slug="line", name="Line", price=1, total_stock=STOCK,
                                               per_user_limit=LIMIT, admission="queue", starts_at=START,
                                               admission_margin=MARGIN, admit_seconds=ADMIT_MS // 1000)
        self.seed = self.engine.read("SELECT seed FROM drop_seeds")[0]["seed"]
        self.now = START - 2_000  # check-in is open (its opening is test_admission's), the close 2 s on
        # buyer -> ticket_id, state, position, checked_in_at, admitted_until
        self.tickets: dict[str, dict] = {}
        self.orders: list[dict] = []  # ref, quantity, status
        self.admissions: list[tuple[int, int]] = []
        self.closed = self.first_wave = False

    def next_position(self) -> int:
        return max((t["position"] or 0 for t in self.tickets.values()), default=0) + 1

    def held(self) -> int:
        return sum(order["quantity"] for order in self.orders if order["status"] == "reserved")

    def sold(self) -> int:
        return sum(order["quantity"] for order in self.orders if order["status"] in ("reserved", "paid"))

    @initialize(buyers=st.lists(st.tuples(BUYERS, st.booleans()), min_size=2, max_size=7, unique_by=lambda b: b[0]))
    def a_line_forms(self, buyers: list[tuple[str, bool]]) -> None:
        """Buyers join before the start, and some of them check in."""
        for buyer, present in buyers:
            self.join(buyer)
            if present:
                self.check_in(buyer)

    @rule(ms=st.integers(0, 3_000))
    def time_passes(self, ms: int) -> None:
        self.now += ms

    @rule(buyer=BUYERS)
    def join(self, buyer: str) -> None:
        outcome, _ = self.engine.join_line(self.drop_id, buyer, now=self.now)
        assert outcome == ("same" if buyer in self.tickets else "ok")
        if buyer not in self.tickets:
            self.tickets[buyer] = {"ticket_id": len(self.tickets) + 1, "state": "waiting", "checked_in_at": None,
                                   "position": self.next_position() if self.closed else None, "admitted_until": None}

    @rule(buyer=BUYERS)
    def check_in(self, buyer: str) -> None:
        ticket = self.tickets.get(buyer)
        shown = self.engine.check_in(self.drop_id, ticket["ticket_id"] if ticket else 99, buyer, now=self.now)
        assert (shown is None) == (ticket is None)
        if ticket and self.now >= START - CHECK_IN_LEAD_MS and ticket["state"] in OPEN \
                and ticket["checked_in_at"] is None:
            ticket["checked_in_at"] = self.now
            if ticket["state"] == "absent":
                ticket["state"], ticket["position"] = "waiting", self.next_position()

    @rule(buyer=BUYERS)
    def leave(self, buyer: str) -> None:
        ticket = self.tickets.get(buyer)
        if ticket:
            outcome = self.engine.leave_line(self.drop_id, ticket["ticket_id"], buyer)
            assert (outcome == "ok") == (ticket["state"] in OPEN)
            if ticket["state"] in OPEN:
                ticket["state"] = "left"

    @rule(data=st.data())
    def buy(self, data: st.DataObject) -> None:
        """An admitted ticket in its window buys: the engine marks it used and takes the stock."""
        able = [b for b, t in self.tickets.items() if t["state"] == "admitted" and self.now < t["admitted_until"]]
        remaining = STOCK - self.sold()
        if not able or remaining == 0:
            return
        buyer = data.draw(st.sampled_from(able))
        quantity = data.draw(st.integers(1, min(LIMIT, remaining)))
        ticket = self.tickets[buyer]
        order = buy_admitted(self.engine, self.drop_id, buyer, ticket["ticket_id"], quantity)
        ticket["state"] = "used"
        # buy_admitted moved the window onto the real clock for the purchase; used, it no longer matters
        ticket["admitted_until"] = self.engine.ticket_of(self.drop_id, ticket["ticket_id"])["admitted_until"]
        self.orders.append({"ref": order["public_ref"], "id": order["id"], "quantity": quantity,
                            "status": "reserved"})

    @rule(data=st.data(), paid=st.booleans())
    def settle_a_hold(self, data: st.DataObject, paid: bool) -> None:
        """A hold is paid, or given back (cancelled: as an expiry does)."""
        reserved = [order for order in self.orders if order["status"] == "reserved"]
        if not reserved:
            return
        order = data.draw(st.sampled_from(reserved))
        if paid:
            self.engine.write(lambda tx: tx.execute("UPDATE orders SET status = 'paid' WHERE id = ?", (order["id"],)))
            order["status"] = "paid"
        else:
            assert self.engine.cancel(order["ref"]).ok
            order["status"] = "cancelled"

    @rule()
    def admission_pass(self) -> None:
        admit_checked(self.engine, self.drop_id, self.now)  # an idle pass takes no write, and rightly so
        if self.now < START:
            return
        if not self.closed:
            def key(t: dict) -> str:
                return hmac.new(self.seed, str(t["ticket_id"]).encode(), hashlib.sha256).hexdigest()
            for position, ticket in enumerate(sorted(self.tickets.values(), key=key), 1):
                ticket["position"] = position
            self.closed = True
        for ticket in self.tickets.values():
            if ticket["state"] == "admitted" and ticket["admitted_until"] <= self.now:
                ticket["state"] = "lapsed"
        remaining = STOCK - self.sold()
        if remaining == 0:
            self.nothing_left()
        else:
            self.admit_in_order(remaining + (0 if self.first_wave else MARGIN))
        self.first_wave = True

    def nothing_left(self) -> None:
        for ticket in self.tickets.values():
            if ticket["state"] == "admitted":
                ticket["state"], ticket["admitted_until"] = "waiting", None
        if self.held() == 0:
            for ticket in self.tickets.values():
                if ticket["state"] in ("waiting", "absent"):
                    ticket["state"] = "sold_out"

    def admit_in_order(self, target: int) -> None:
        unused = LIMIT * sum(t["state"] == "admitted" for t in self.tickets.values())
        for ticket in sorted(self.tickets.values(), key=lambda t: t["position"]):
            if unused >= target:
                break
            if ticket["state"] != "waiting":
                continue
            if ticket["checked_in_at"] is None:
                ticket["state"] = "absent"
            else:
                ticket["state"], ticket["admitted_until"] = "admitted", self.now + ADMIT_MS
                self.admissions.append((ticket["ticket_id"], self.now))
                unused += LIMIT

    @invariant()
    def the_line_is_the_models(self) -> None:
        rows = self.engine.read("SELECT buyer, ticket_id, state, position, checked_in_at, admitted_until FROM tickets")
        assert {row.pop("buyer"): row for row in rows} == self.tickets
        log = [(row["ticket_id"], row["admitted_at"]) for row in self.engine.admissions_of(self.drop_id)]
        assert log == self.admissions

    @invariant()
    def admission_follows_the_order(self) -> None:
        admitted = [t["position"] for t in self.tickets.values() if t["state"] == "admitted"]
        present = [t["position"] for t in self.tickets.values()
                   if t["state"] == "waiting" and t["checked_in_at"] is not None and t["position"] is not None]
        assert not admitted or not present or max(admitted) < min(present)


TestAdmissionModel = AdmissionModel.TestCase
TestAdmissionModel.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
