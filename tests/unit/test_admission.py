"""Check-in and stock-aware admission of a queue drop's line (SPEC 11), pass by pass, with explicit
times: the close, the first wave and its margin in units, units coming back to the earliest waiting
ticket, everyone back to waiting at remaining 0, absence and a late check-in, lapses, the finish at
once, the end, a restart keeping windows, and the admissions log. An admitted ticket buys through the
engine's purchase (engine_machine.buy_admitted: its window moved onto the real clock first)."""

from __future__ import annotations

from pathlib import Path

import pytest
from queue_lines import (
    ADMIT_MS,
    PRESENT,
    START,
    admit,
    admitted_positions,
    buy,
    check_in,
    line_maker,
    states,
    ticket_at,
)

from dropsvc import Engine
from dropsvc.ledger import admission


@pytest.fixture
def line(engine, make_drop):
    return line_maker(engine, make_drop)


# -- check-in -----------------------------------------------------------------------------

def test_check_in_opens_ten_minutes_before_the_close_and_writes_once(engine, make_drop):
    drop_id = make_drop(admission="queue", starts_at=START)
    ticket = engine.join_line(drop_id, "ann", now=0)[1]
    locks = engine.counters()["lock_acquisitions"]
    assert engine.check_in(drop_id, 1, "ann", now=PRESENT - 1) == ticket  # too early: nothing recorded
    assert engine.counters()["lock_acquisitions"] == locks
    assert engine.check_in(drop_id, 1, "ann", now=PRESENT)["checked_in_at"] == PRESENT
    locks = engine.counters()["lock_acquisitions"]
    assert engine.check_in(drop_id, 1, "ann", now=START + 5)["checked_in_at"] == PRESENT  # the first one counts
    assert engine.counters()["lock_acquisitions"] == locks  # a view after it takes no write lock
    assert engine.check_in(drop_id, 1, "bob", now=START) is None
    assert engine.check_in(drop_id, 2, "ann", now=START) is None
    assert engine.check_in(drop_id + 1, 1, "ann", now=START) is None


def test_final_tickets_do_not_check_in(engine, line):
    drop_id = line(2, present=set())
    first = ticket_at(engine, drop_id, 1)
    assert engine.leave_line(drop_id, first["ticket_id"], first["buyer"]) == "ok"
    assert check_in(engine, drop_id, 1, now=START)["checked_in_at"] is None
    assert check_in(engine, drop_id, 2, now=START)["checked_in_at"] == START


# -- the close and the first wave ------------------------------------------------------------

def test_the_pass_records_the_close_at_starts_at_once(engine, make_drop):
    drop_id = make_drop(admission="queue", starts_at=START)
    for buyer in ("ann", "bob"):
        engine.join_line(drop_id, buyer, now=0)
        engine.check_in(drop_id, engine.buyer_ticket(drop_id, buyer)["ticket_id"], buyer, now=PRESENT)
    assert engine.admit_due(now=START - 1) == {} and engine.fairness(drop_id)["seed"] is None
    assert engine.queue_state(drop_id, now=START - 1)["state"] == "entries_open"
    counts = engine.admit_due(now=START)[drop_id]
    assert (counts["closed"], counts["admitted"]) == (1, 2)
    assert engine.read("SELECT closed_at, prequeue_size FROM queue_closes") == [{"closed_at": START,
                                                                                 "prequeue_size": 2}]
    assert engine.admit_due(now=START + 1) == {}  # idempotent
    assert engine.fairness(drop_id)["seed"] is not None


def test_the_first_wave_admits_remaining_plus_margin_in_units(engine, line, make_drop):
    drop_id = line(12, total_stock=10, per_user_limit=2, admission_margin=3)
    elsewhere = make_drop(starts_at=0)
    counts = admit(engine, drop_id, START)
    assert (counts["admitted"], counts["absent"]) == (7, 0)  # 10 + 3 units: 7 tickets of 2
    assert states(engine, drop_id) == ["admitted"] * 7 + ["waiting"] * 5
    assert {ticket_at(engine, drop_id, p)["admitted_until"] for p in range(1, 8)} == {START + ADMIT_MS}
    wal = Path(engine.path + "-wal")
    size = wal.stat().st_size
    assert admit(engine, drop_id, START + 1) == dict.fromkeys(admission.COUNTS, 0)
    assert wal.stat().st_size == size  # a pass with nothing to do writes nothing
    figures = engine.queue_state(drop_id, now=START + 1)
    assert (figures["state"], figures["admitted_through"], figures["waiting"]) == ("admitting", 7, 5)
    assert (figures["remaining"], figures["held"]) == (10, 0)
    # after the first wave the margin is not refilled: purchases that leave units unused admit only
    # once the admitted-and-unused units fall below what remains
    assert engine.purchase(elsewhere, "someone").ok  # another drop's hold is not this drop's
    buy(engine, drop_id, 1, 2)  # remaining 8, unused 12
    buy(engine, drop_id, 2, 1)  # remaining 7, unused 10
    assert admit(engine, drop_id, START + 2)["admitted"] == 0
    for position in (3, 4):
        buy(engine, drop_id, position, 1)  # remaining 5, unused 6
    assert admit(engine, drop_id, START + 3)["admitted"] == 0
    buy(engine, drop_id, 5, 1)  # remaining 4, unused 4
    buy(engine, drop_id, 6, 1)  # remaining 3, unused 2: one more ticket
    assert admit(engine, drop_id, START + 4)["admitted"] == 1
    assert states(engine, drop_id) == ["used"] * 6 + ["admitted"] * 2 + ["waiting"] * 4
    assert engine.queue_state(drop_id, now=START + 4)["held"] == 7


# -- units coming back -------------------------------------------------------------------------

def test_units_that_come_back_admit_the_next_ticket(engine, line):
    drop_id = line(6, total_stock=4, hold_seconds=60)
    admit(engine, drop_id, START)
    orders = [buy(engine, drop_id, position) for position in (1, 2, 3, 4)]
    admit(engine, drop_id, START + 1)
    assert engine.queue_state(drop_id, now=START + 1)["state"] == "all_held"
    assert states(engine, drop_id) == ["used"] * 4 + ["waiting"] * 2
    engine.cancel(orders[1]["public_ref"])  # a hold cancelled
    assert admit(engine, drop_id, START + 2)["admitted"] == 1
    assert engine.expire_due(now=orders[2]["expires_at"]) >= 1  # holds expired
    assert admit(engine, drop_id, START + 3)["admitted"] == 1
    assert states(engine, drop_id) == ["used"] * 4 + ["admitted"] * 2
    assert admitted_positions(engine, drop_id) == [1, 2, 3, 4, 5, 6]


def test_at_remaining_zero_everyone_waits_and_a_unit_back_goes_to_the_earliest(engine, line):
    drop_id = line(5, total_stock=2, admission_margin=2)
    admit(engine, drop_id, START)
    assert states(engine, drop_id) == ["admitted"] * 4 + ["waiting"]
    buy(engine, drop_id, 4)  # the fastest clicks first
    order = buy(engine, drop_id, 3)
    assert admit(engine, drop_id, START + 1)["returned"] == 2
    assert states(engine, drop_id) == ["waiting", "waiting", "used", "used", "waiting"]
    assert ticket_at(engine, drop_id, 1)["admitted_until"] is None
    assert engine.queue_state(drop_id, now=START + 1)["state"] == "all_held"
    engine.cancel(order["public_ref"])
    assert admit(engine, drop_id, START + 2)["admitted"] == 1
    assert states(engine, drop_id) == ["admitted", "waiting", "used", "used", "waiting"]
    assert ticket_at(engine, drop_id, 1)["admitted_until"] == START + 2 + ADMIT_MS
    assert admitted_positions(engine, drop_id) == [1, 2, 3, 4, 1]  # every admission, logged


def test_held_units_are_counted_from_the_low_water_mark(engine, line):
    drop_id = line(3, total_stock=3)
    admit(engine, drop_id, START)
    orders = [buy(engine, drop_id, position) for position in (1, 2, 3)]
    engine.cancel(orders[0]["public_ref"])
    assert engine.reserved_low_water(fresh=True) == orders[1]["id"]  # no reserved order below it
    assert engine.queue_state(drop_id, now=START)["held"] == 2
    for order in orders[1:]:
        engine.cancel(order["public_ref"])
    assert engine.reserved_low_water(fresh=True) == orders[2]["id"] + 1
    assert engine.queue_state(drop_id, now=START)["held"] == 0


# -- absence, lapses ----------------------------------------------------------------------------

def test_an_absent_ticket_is_skipped_and_a_late_check_in_goes_to_the_end(engine, line):
    drop_id = line(5, present={1, 3, 4, 5}, total_stock=3)
    counts = admit(engine, drop_id, START)
    assert (counts["admitted"], counts["absent"]) == (3, 1)
    assert states(engine, drop_id) == ["admitted", "absent", "admitted", "admitted", "waiting"]
    assert ticket_at(engine, drop_id, 2)["checked_in_at"] is None
    late = check_in(engine, drop_id, 2, now=START + 5)
    assert (late["state"], late["position"], late["first_position"], late["checked_in_at"]) == \
        ("waiting", 6, 2, START + 5)
    assert engine.join_line(drop_id, "late-joiner", now=START + 6)[1]["position"] == 7
    check_in(engine, drop_id, 7, now=START + 6)
    assert check_in(engine, drop_id, 6, now=START + 7) == late  # checked in: nothing more to record
    for position in (1, 3):
        ticket = ticket_at(engine, drop_id, position)
        engine.leave_line(drop_id, ticket["ticket_id"], ticket["buyer"])
        admit(engine, drop_id, START + 10 + position)
    assert states(engine, drop_id) == ["left", "left", "admitted", "admitted", "admitted", "waiting"]
    assert admitted_positions(engine, drop_id) == [1, 3, 4, 5, 6]  # the returned ticket in its new place


def test_an_unused_admission_lapses_and_its_unit_admits_the_next(engine, line):
    drop_id = line(3, total_stock=2)
    admit(engine, drop_id, START)
    assert admit(engine, drop_id, START + ADMIT_MS - 1)["lapsed"] == 0
    counts = admit(engine, drop_id, START + ADMIT_MS)
    assert (counts["lapsed"], counts["admitted"]) == (2, 1)
    assert states(engine, drop_id) == ["lapsed", "lapsed", "admitted"]
    first = ticket_at(engine, drop_id, 1)
    assert engine.leave_line(drop_id, first["ticket_id"], first["buyer"]) == "lapsed"  # final
    assert check_in(engine, drop_id, 1, now=START + ADMIT_MS)["state"] == "lapsed"


# -- the finish and the end ----------------------------------------------------------------------

def test_the_queue_finishes_at_once_when_nothing_is_left_or_held(engine, line):
    drop_id = line(5, present={1, 3, 4, 5}, total_stock=2)
    admit(engine, drop_id, START)
    for position in (1, 3):
        buy(engine, drop_id, position)
    assert admit(engine, drop_id, START + 1)["sold_out"] == 0
    assert states(engine, drop_id) == ["used", "absent", "used", "waiting", "waiting"]
    engine.write(lambda tx: tx.execute("UPDATE orders SET status = 'paid' WHERE drop_id = ?", (drop_id,)))
    assert engine.queue_state(drop_id, now=START + 2)["state"] == "sold_out"
    assert admit(engine, drop_id, START + 2)["sold_out"] == 3  # the absent ticket too
    assert states(engine, drop_id) == ["used", "sold_out", "used", "sold_out", "sold_out"]
    assert engine.read("SELECT finished_at FROM queue_progress") == [{"finished_at": START + 2}]
    engine.join_line(drop_id, "after", now=START + 3)
    assert admit(engine, drop_id, START + 3)["sold_out"] == 1
    engine.update_drop(drop_id, total_stock=3)  # stock raised after the finish: the line admits again
    admit(engine, drop_id, START + 4)  # nobody waits, and the line is no longer finished all the same
    assert engine.read("SELECT finished_at FROM queue_progress") == [{"finished_at": None}]
    engine.join_line(drop_id, "raised", now=START + 4)
    check_in(engine, drop_id, 7, now=START + 4)
    assert admit(engine, drop_id, START + 4)["admitted"] == 1
    assert engine.read("SELECT finished_at FROM queue_progress") == [{"finished_at": None}]


def test_ends_at_ends_every_open_ticket_once(engine, line):
    ends = START + 100_000
    drop_id = line(5, present={1, 3, 4, 5}, total_stock=2, ends_at=ends)
    admit(engine, drop_id, START)
    engine.write(lambda tx: tx.execute("UPDATE tickets SET state = 'used' WHERE drop_id = ? AND position = 1",
                                       (drop_id,)))
    fifth = ticket_at(engine, drop_id, 5)
    engine.leave_line(drop_id, fifth["ticket_id"], fifth["buyer"])
    assert states(engine, drop_id) == ["used", "absent", "admitted", "waiting", "left"]
    assert admit(engine, drop_id, ends)["ended"] == 3
    assert states(engine, drop_id) == ["used", "ended", "ended", "ended", "left"]
    assert engine.queue_state(drop_id, now=ends)["state"] == "ended"
    assert engine.admit_due(now=ends + 1) == {}  # an ended drop is not passed over again
    assert engine.read("SELECT ended_at FROM queue_progress") == [{"ended_at": ends}]


def test_a_drop_never_closed_by_its_end_is_closed_then_ended(engine, make_drop):
    drop_id = make_drop(admission="queue", starts_at=START, ends_at=START + 10)
    engine.join_line(drop_id, "ann", now=0)
    counts = engine.admit_due(now=START + 10)[drop_id]
    assert (counts["closed"], counts["ended"]) == (1, 1)
    assert engine.fairness(drop_id)["seed"] is not None and states(engine, drop_id) == ["ended"]


def test_open_drops_and_unknown_ones_are_not_queues(engine, make_drop):
    plain = make_drop(starts_at=0)
    assert engine.admit_due(now=START) == {} and engine.queue_state(plain) is None
    assert engine.admit_drop(plain, now=START) == dict.fromkeys(admission.COUNTS, 0)
    assert engine.queue_state(10**6) is None and engine.admissions_of(plain) == []


# -- restart -----------------------------------------------------------------------------------

def test_another_engine_continues_where_it_was_and_keeps_the_windows(db_path, engine, line):
    drop_id = line(4, total_stock=2, admission_margin=1)
    admit(engine, drop_id, START)
    before = engine.read("SELECT * FROM tickets ORDER BY position")
    with Engine(db_path) as again:  # a restarted process, or the one that took the background lock over
        assert again.admit_drop(drop_id, now=START + 30_000) == dict.fromkeys(admission.COUNTS, 0)
        assert again.read("SELECT * FROM tickets ORDER BY position") == before
        first = ticket_at(again, drop_id, 1)
        again.leave_line(drop_id, first["ticket_id"], first["buyer"])
        # units left 2, admitted 2: the first wave (and its margin) is not run again
        assert again.admit_drop(drop_id, now=START + 30_001)["admitted"] == 0
        assert again.admit_drop(drop_id, now=START + ADMIT_MS)["lapsed"] == 2  # windows as they were
        assert states(again, drop_id) == ["left", "lapsed", "lapsed", "admitted"]
        assert again.check() == []
