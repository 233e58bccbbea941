"""The merchant's hand on a line (SPEC 11): pause stops admission and resume goes on in order,
extend lengthens open windows only, a voided ticket is out of the line (its unit admits the next one,
it cannot buy, the export shows it and verify-fairness passes), the figures; refusals change nothing."""

from __future__ import annotations

import orjson
import pytest
from queue_lines import ADMIT_MS, START, admit, admitted_positions, buy, line_maker, states, ticket_at

from dropsvc.fairness import verify


@pytest.fixture
def line(engine, make_drop):
    return line_maker(engine, make_drop)


def test_pause_admits_nobody_and_resume_goes_on_from_the_earliest_waiting(engine, line):
    drop_id = line(4, total_stock=2)
    admit(engine, drop_id, START)
    assert states(engine, drop_id) == ["admitted", "admitted", "waiting", "waiting"]
    assert engine.pause_line(drop_id, now=START + 1) == "ok"
    assert engine.pause_line(drop_id, now=START + 2) == "ok"  # paused twice: the first time counts
    assert engine.line_report(drop_id, now=START + 3)["paused_at"] == START + 1
    assert engine.queue_state(drop_id, now=START + 3)["paused"] is True
    counts = admit(engine, drop_id, START + ADMIT_MS)  # both windows run out while paused
    assert counts["lapsed"] == 2 and counts["admitted"] == 0
    assert states(engine, drop_id) == ["lapsed", "lapsed", "waiting", "waiting"]
    assert engine.pause_line(drop_id, paused=False) == "ok"
    assert engine.queue_state(drop_id, now=START + ADMIT_MS)["paused"] is False
    assert admit(engine, drop_id, START + ADMIT_MS + 1)["admitted"] == 2
    assert states(engine, drop_id) == ["lapsed", "lapsed", "admitted", "admitted"]
    assert admitted_positions(engine, drop_id) == [1, 2, 3, 4]


def test_a_pause_before_the_start_still_records_the_close(engine, make_drop):
    drop_id = make_drop(admission="queue", starts_at=START, admission_margin=0)
    engine.join_line(drop_id, "ann", now=START - 10)
    assert engine.pause_line(drop_id, now=START - 5) == "ok"
    assert admit(engine, drop_id, START)["closed"] == 1  # the order is fixed at its time all the same
    assert engine.fairness(drop_id)["seed"] is not None
    assert states(engine, drop_id) == ["waiting"]


def test_refusals_change_nothing(engine, line, make_drop):
    plain = make_drop()
    drop_id = line(2, total_stock=1, ends_at=START + 10 * ADMIT_MS)
    assert engine.pause_line(plain) == "no_queue" and engine.pause_line(10**6) == "drop_not_found"
    assert engine.extend_windows(plain, 5) == ("no_queue", 0)
    assert engine.void_ticket(10**6, 1) == ("drop_not_found", None)
    assert engine.void_ticket(drop_id, 99) == ("ticket_not_found", None)
    assert engine.extend_windows(drop_id, 5, ticket_id=99) == ("ticket_not_found", 0)
    with pytest.raises(ValueError):
        engine.extend_windows(drop_id, 0)
    admit(engine, drop_id, START + 10 * ADMIT_MS)  # the end
    before = engine.read("SELECT * FROM tickets WHERE drop_id = ?", (drop_id,))
    assert engine.pause_line(drop_id) == "ended"
    assert engine.extend_windows(drop_id, 5) == ("ended", 0)
    assert engine.void_ticket(drop_id, 1) == ("ended", None)
    assert engine.read("SELECT * FROM tickets WHERE drop_id = ?", (drop_id,)) == before
    assert engine.line_report(plain) is None and engine.line_report(10**6) is None


def test_extend_lengthens_open_windows_only(engine, line):
    drop_id = line(3, total_stock=2)
    admit(engine, drop_id, START)
    now = START + ADMIT_MS // 2
    assert engine.extend_windows(drop_id, 30, now=now) == ("ok", 2)
    assert [ticket_at(engine, drop_id, p)["admitted_until"] for p in (1, 2)] == [START + ADMIT_MS + 30_000] * 2
    assert engine.extend_windows(drop_id, 30, ticket_id=ticket_at(engine, drop_id, 3)["ticket_id"],
                                 now=now) == ("waiting", 0)
    first = ticket_at(engine, drop_id, 1)["ticket_id"]
    assert engine.extend_windows(drop_id, 10, ticket_id=first, now=now) == ("ok", 1)
    assert admit(engine, drop_id, START + ADMIT_MS)["lapsed"] == 0  # the old end: still admitted
    assert admit(engine, drop_id, START + ADMIT_MS + 30_000)["lapsed"] == 1  # the second ticket's new end
    assert states(engine, drop_id) == ["admitted", "lapsed", "admitted"]  # the unit back admitted the third
    third_until = ticket_at(engine, drop_id, 3)["admitted_until"]
    # the first ticket's window ran out at +40 s (no pass has lapsed it yet): not reopened; the third's is open
    assert engine.extend_windows(drop_id, 30, now=START + ADMIT_MS + 40_000) == ("ok", 1)
    assert ticket_at(engine, drop_id, 1)["admitted_until"] == START + ADMIT_MS + 40_000
    assert ticket_at(engine, drop_id, 3)["admitted_until"] == third_until + 30_000


def test_a_voided_ticket_is_out_of_the_line_and_its_unit_admits_the_next(engine, line):
    drop_id = line(4, total_stock=2)
    admit(engine, drop_id, START)
    first, third = (ticket_at(engine, drop_id, p) for p in (1, 3))
    outcome, row = engine.void_ticket(drop_id, first["ticket_id"])
    assert outcome == "ok" and row["state"] == "voided" and row["buyer"] == first["buyer"]
    assert engine.void_ticket(drop_id, first["ticket_id"])[0] == "voided"  # twice: final
    voided = engine.purchase(drop_id, first["buyer"], 1, ticket_id=first["ticket_id"])
    assert not voided.ok and voided.outcome == "not_admitted" and voided.ticket_state == "voided"
    assert admit(engine, drop_id, START + 1)["admitted"] == 1
    assert states(engine, drop_id) == ["voided", "admitted", "admitted", "waiting"]
    buy(engine, drop_id, 3)
    assert engine.void_ticket(drop_id, third["ticket_id"])[0] == "used"  # an order exists: cancel that instead
    lines = [orjson.loads(line) for line in engine.fairness_file(drop_id).splitlines()]
    outcomes = {ticket["ticket_id"]: ticket["outcome"] for ticket in lines[1:]}
    assert outcomes[str(first["ticket_id"])] == "voided" and outcomes[str(third["ticket_id"])] == "bought"
    assert verify(lines[0], lines[1:]) == []


def test_voiding_a_waiting_ticket_lets_later_ones_pass_it_fairly(engine, line):
    drop_id = line(3, total_stock=1)
    second = ticket_at(engine, drop_id, 2)
    admit(engine, drop_id, START)
    assert engine.void_ticket(drop_id, second["ticket_id"])[0] == "ok"
    admit(engine, drop_id, START + ADMIT_MS)  # the first lapses: the third is next
    assert states(engine, drop_id) == ["lapsed", "voided", "admitted"]
    lines = [orjson.loads(line) for line in engine.fairness_file(drop_id).splitlines()]
    assert verify(lines[0], lines[1:]) == []
    unvoided = [{**ticket, "outcome": "waiting"} if ticket["outcome"] == "voided" else ticket for ticket in lines[1:]]
    assert verify(lines[0], unvoided)  # without the void, passing it over would be a mismatch


def test_the_line_report(engine, line):
    drop_id = line(5, present={1, 2, 3, 4}, total_stock=2)
    report = engine.line_report(drop_id, now=START - 1)
    assert report["state"] == "admitting" and report["paused"] is False and report["joined"] == 5
    assert report["checked_in"] == 4 and report["admissions"] == 0 and report["first_admission_at"] is None
    admit(engine, drop_id, START)
    buy(engine, drop_id, 1)
    report = engine.line_report(drop_id, now=START + 1)
    assert report["by_state"]["used"] == 1 and report["by_state"]["admitted"] == 1
    assert report["by_state"]["waiting"] == 3 and report["admitted_through"] == 2
    assert report["admissions"] == 2 and report["admissions_last_minute"] == 2
    assert report["first_admission_at"] == START and report["remaining"] == 1 and report["held"] == 1
    assert engine.line_report(drop_id, now=START + 120_000)["admissions_last_minute"] == 0
