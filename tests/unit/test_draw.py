"""A draw (SPEC 11, ``admission: draw``) on a real engine with explicit times: entries from starts_at to
entries_close_at, the draw at the close, exactly the stock's worth of winners in draw-key order, the
waitlist taking the units that come back in order, purchases only from the draw on, the drop upcoming
until then, and a fairness file of a draw run that checks out (and fails once tampered with)."""

from __future__ import annotations

import time

import pytest
from engine_machine import buy_admitted
from queue_lines import admit, admitted_positions, states, ticket_at

from dropsvc.drops import present_drop
from dropsvc.fairness import draw_key, verify

START = 1_000_000  # entries open
CLOSE = START + 60_000  # entries close, the draw
WINDOW_MS = 3600 * 1000  # a draw's default admit_seconds


@pytest.fixture
def draw(engine, make_drop):
    """A draw with ``entries`` entered during its entries (the close not recorded yet); its id."""
    def make(entries: int, **fields) -> int:
        drop_id = make_drop(**{"admission": "draw", "starts_at": START, "entries_close_at": CLOSE, **fields})
        for n in range(1, entries + 1):
            assert engine.join_line(drop_id, f"b{n}", now=START + n)[0] == "ok"
        return drop_id
    return make


def key_order(engine, drop_id: int) -> list[int]:
    """The entries' ticket ids in ascending draw key, computed from the revealed seed alone."""
    seed = bytes.fromhex(engine.revealed_seed(drop_id))
    ids = [row["ticket_id"] for row in engine.read("SELECT ticket_id FROM tickets WHERE drop_id = ?", (drop_id,))]
    return sorted(ids, key=lambda ticket_id: draw_key(seed, ticket_id))


def test_no_draw_before_the_close_then_the_draw_once(engine, draw):
    drop_id = draw(6)
    assert engine.queue_drops_due(now=CLOSE - 1) == []  # entries running: nothing for the worker
    assert engine.admit_due(now=CLOSE - 1) == {} and engine.revealed_seed(drop_id) is None
    changed = engine.admit_due(now=CLOSE)
    assert changed[drop_id]["closed"] == 1 and changed[drop_id]["admitted"] == 6  # 10 units, 6 entries: all win
    assert engine.revealed_seed(drop_id) is not None
    tickets = engine.read("SELECT kind, position, draw_key, admitted_until FROM tickets WHERE drop_id = ?",
                          (drop_id,))
    assert {t["kind"] for t in tickets} == {"entry"} and sorted(t["position"] for t in tickets) == list(range(1, 7))
    assert {t["admitted_until"] for t in tickets} == {CLOSE + WINDOW_MS}
    assert engine.admit_due(now=CLOSE + 1) == {}  # drawn once


@pytest.mark.parametrize(("stock", "limit", "winners"), [(4, 1, 4), (5, 2, 3), (6, 2, 3)])
def test_the_winners_are_the_first_stocks_worth_in_draw_key_order(engine, draw, stock, limit, winners):
    drop_id = draw(9, total_stock=stock, per_user_limit=limit)
    assert admit(engine, drop_id, now=CLOSE)["admitted"] == winners  # margin 0: exactly the stock's worth
    order = key_order(engine, drop_id)
    won = {row["ticket_id"] for row in engine.read(
        "SELECT ticket_id FROM tickets WHERE drop_id = ? AND state = 'admitted'", (drop_id,))}
    assert won == set(order[:winners])
    assert [ticket_at(engine, drop_id, position)["ticket_id"] for position in range(1, 10)] == order
    assert states(engine, drop_id) == ["admitted"] * winners + ["waiting"] * (9 - winners)
    assert admit(engine, drop_id, now=CLOSE + 1_000)["admitted"] == 0  # nothing came back: the waitlist waits


def test_the_waitlist_takes_the_units_that_come_back_in_order(engine, draw):
    drop_id = draw(8, total_stock=3)
    admit(engine, drop_id, now=CLOSE)
    assert admitted_positions(engine, drop_id) == [1, 2, 3]
    ticket = ticket_at(engine, drop_id, 1)
    buy_admitted(engine, drop_id, ticket["buyer"], ticket["ticket_id"])
    ticket = ticket_at(engine, drop_id, 2)
    order = buy_admitted(engine, drop_id, ticket["buyer"], ticket["ticket_id"])
    assert admit(engine, drop_id, now=CLOSE + 1_000)["admitted"] == 0  # 1 left, 3 holds it
    engine.cancel(order["public_ref"])  # an unpaid hold comes back: the first on the waitlist
    assert admit(engine, drop_id, now=CLOSE + 2_000)["admitted"] == 1
    assert admitted_positions(engine, drop_id) == [1, 2, 3, 4]
    counts = admit(engine, drop_id, now=CLOSE + WINDOW_MS)  # 3's window runs out (4's later): the next one
    assert (counts["lapsed"], counts["admitted"]) == (1, 1), counts
    assert admitted_positions(engine, drop_id) == [1, 2, 3, 4, 5]
    assert states(engine, drop_id) == ["used", "used", "lapsed", "admitted", "admitted", "waiting", "waiting",
                                       "waiting"]


def test_a_purchase_before_the_draw_has_not_started(engine, make_drop):
    """Purchases open at the draw: before entries_close_at a purchase is not_started (with or without a
    ticket), like the drop's status, upcoming; an entry still waiting would be not_admitted after it."""
    now = time.time_ns() // 1_000_000
    drop_id = make_drop(admission="draw", starts_at=now - 1_000, entries_close_at=now + 60_000)
    outcome, ticket = engine.join_line(drop_id, "ann")
    assert outcome == "ok"
    for ticket_id in (ticket["ticket_id"], None):
        assert engine.purchase(drop_id, "ann", 1, ticket_id=ticket_id).outcome == "not_started"
    assert present_drop(engine.get_drop(drop_id))["status"] == "upcoming"
    assert engine.get_drop(drop_id)["sold"] == 0
    assert engine.ticket_of(drop_id, ticket["ticket_id"])["state"] == "waiting"

    drawn = make_drop(admission="draw", starts_at=now - 2_000, entries_close_at=now - 1_000)
    assert present_drop(engine.get_drop(drawn))["status"] == "live"
    assert engine.purchase(drawn, "bob", 1, ticket_id=1).outcome == "not_admitted"


def test_the_drop_is_upcoming_until_the_draw_and_the_line_says_where_it_is(engine, draw):
    drop_id = draw(2, total_stock=1)
    row = engine.get_drop(drop_id)
    assert [present_drop(row, now)["status"] for now in (START - 1, START, CLOSE - 1, CLOSE)] == [
        "upcoming", "upcoming", "upcoming", "live"]
    assert [engine.queue_state(drop_id, now)["state"] for now in (START - 1, START, CLOSE - 1)] == [
        "upcoming", "entries_open", "entries_open"]
    assert engine.queue_state(drop_id, START)["waiting"] == 2  # the page's "N in the draw"
    admit(engine, drop_id, now=CLOSE)
    assert engine.queue_state(drop_id, CLOSE)["state"] == "admitting"
    assert engine.queue_state(drop_id, CLOSE)["admitted_through"] == 1


def run_draw(engine, draw) -> int:
    """A draw run: 7 entries, 3 units; a winner buys, one lapses, one leaves; the waitlist moves up."""
    drop_id = draw(7, total_stock=3)
    admit(engine, drop_id, now=CLOSE)
    first = ticket_at(engine, drop_id, 1)
    buy_admitted(engine, drop_id, first["buyer"], first["ticket_id"])
    third = ticket_at(engine, drop_id, 3)
    assert engine.leave_line(drop_id, third["ticket_id"], third["buyer"]) == "ok"
    admit(engine, drop_id, now=CLOSE + 1_000)  # 3's unit: 4 admitted
    admit(engine, drop_id, now=CLOSE + WINDOW_MS)  # 2's and 4's windows ran out: 5 and 6 admitted
    return drop_id


def test_a_draw_run_exports_a_fairness_file_that_checks_out_and_fails_tampered(engine, draw):
    drop_id = run_draw(engine, draw)
    fairness, lines = engine.fairness(drop_id), engine.fairness_tickets(drop_id)
    assert {line["kind"] for line in lines} == {"entry"}
    assert all(line["checked_in_at"] == line["joined_at"] for line in lines)  # entering is being there
    assert {line["outcome"] for line in lines} == {"bought", "lapsed", "left", "admitted", "waiting"}
    assert verify(fairness, lines) == []

    swapped = [dict(line) for line in lines]
    placed = {line["position"]: line for line in swapped}
    placed[1]["position"], placed[7]["position"] = 7, 1  # a waitlisted entry moved to the front
    assert any("draw key puts it at" in problem for problem in verify(fairness, swapped))
    jumped = [dict(line) for line in lines]
    last = max(jumped, key=lambda line: line["position"])
    last["admitted_at"] = [CLOSE]  # the last entry admitted in the first wave, ahead of the waitlist
    assert any(f"ticket {last['ticket_id']}" in problem and "was admitted" in problem
               for problem in verify(fairness, jumped))
    mixed = [dict(line) for line in lines]
    mixed[0].update(kind="fifo", draw_key=None)  # a draw takes entries only
    assert any("a draw's tickets are all entries" in problem for problem in verify(fairness, mixed))
