"""A queue drop's line in the ledger (SPEC 11): the seed and its commitment, joins, leaving,
the recorded close and its order by draw key, fifo after it, the seed revealed only then."""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson
import pytest

from dropsvc import ConstraintError, Engine, _engine, drops, ledger
from dropsvc.drops import DropConflict, InvalidDropField, present_drop
from dropsvc.ledger import queue

START, END = 1_000_000, 2_000_000
BEFORE, AFTER = START - 1_000, START + 1_000


@pytest.fixture
def queue_drop(make_drop):
    """A queue drop (starts at START, ends at END); keyword arguments override."""
    def make(**fields):
        return make_drop(**{"admission": "queue", "starts_at": START, "ends_at": END, **fields})
    return make


def seed_of(engine, drop_id):
    rows = engine.read("SELECT seed FROM drop_seeds WHERE drop_id = ?", (drop_id,))
    return rows[0]["seed"] if rows else None


def commitment_of(engine, drop_id):
    return engine.read("SELECT commitment FROM drops WHERE id = ?", (drop_id,))[0]["commitment"]


def expected_key(seed: bytes, ticket_id: int) -> str:
    """SPEC 11's draw key, computed here without the ledger's code."""
    return hmac.new(seed, str(ticket_id).encode("utf-8"), hashlib.sha256).hexdigest()


def join_all(engine, drop_id, buyers, now=BEFORE):
    tickets = []
    for buyer in buyers:
        outcome, ticket = engine.join_line(drop_id, buyer, now=now)
        assert outcome == "ok"
        tickets.append(ticket)
    return tickets


def tickets_of(engine, drop_id):
    return engine.read("SELECT * FROM tickets WHERE drop_id = ? ORDER BY ticket_id", (drop_id,))


# -- the seed and its commitment ------------------------------------------------------

def test_a_queue_drop_commits_to_a_seed_that_is_in_no_drop_row(engine, queue_drop, make_drop):
    drop_id, other, plain = queue_drop(), queue_drop(), make_drop()
    seed = seed_of(engine, drop_id)
    assert isinstance(seed, bytes) and len(seed) == 32 and seed != seed_of(engine, other)
    assert commitment_of(engine, drop_id) == hashlib.sha256(seed).hexdigest()
    assert engine.fairness(drop_id) == {"commitment": hashlib.sha256(seed).hexdigest(), "seed": None}
    for row in engine.read("SELECT * FROM drops"):
        for value in row.values():
            assert value != seed and seed.hex() not in str(value)
    shown = [engine.get_drop(drop_id), present_drop(engine.get_drop(drop_id)), *engine.list_drops(),
             *(present_drop(row) for row in engine.list_drops())]
    for drop in shown:
        assert seed.hex() not in orjson.dumps(drop).decode()
        assert "seed" not in drop
    committed = ("queue", commitment_of(engine, drop_id))
    assert [(drop["admission"], drop["commitment"]) for drop in shown[:2]] == [committed] * 2
    assert (engine.get_drop(plain)["admission"], engine.get_drop(plain)["commitment"]) == ("open", None)
    assert seed_of(engine, plain) is None and commitment_of(engine, plain) is None
    assert engine.fairness(plain) is None and engine.fairness(10**6) is None


def test_the_seed_is_revealed_once_the_close_is_recorded_and_the_commitment_stays(engine, queue_drop):
    drop_id = queue_drop()
    committed = commitment_of(engine, drop_id)
    join_all(engine, drop_id, ["ann", "bob"])
    assert engine.revealed_seed(drop_id) is None and engine.fairness(drop_id)["seed"] is None
    assert engine.record_close(drop_id, now=START) is True
    revealed = engine.revealed_seed(drop_id)
    assert revealed == seed_of(engine, drop_id).hex() and revealed == revealed.lower()
    assert hashlib.sha256(bytes.fromhex(revealed)).hexdigest() == committed == commitment_of(engine, drop_id)
    assert engine.fairness(drop_id) == {"commitment": committed, "seed": revealed}


# -- joining and leaving ----------------------------------------------------------------

def test_joins_number_the_line_and_a_buyer_keeps_one_ticket(engine, queue_drop):
    drop_id, other = queue_drop(), queue_drop()
    first = join_all(engine, drop_id, ["ann", "bob", "cat"], now=BEFORE)
    assert [ticket["ticket_id"] for ticket in first] == [1, 2, 3]
    assert {(t["kind"], t["state"], t["position"], t["draw_key"], t["joined_at"]) for t in first} == \
        {("prequeue", "waiting", None, None, BEFORE)}
    assert engine.join_line(drop_id, "bob", now=BEFORE + 5) == ("same", first[1])
    assert engine.join_line(other, "bob", now=BEFORE)[1]["ticket_id"] == 1  # each drop counts its own
    assert engine.ticket_of(drop_id, 2) == first[1] == engine.buyer_ticket(drop_id, "bob")
    assert engine.ticket_of(drop_id, 4) is None and engine.buyer_ticket(drop_id, "dan") is None
    assert len(tickets_of(engine, drop_id)) == 3


def test_join_outcomes(engine, queue_drop, make_drop):
    drop_id = queue_drop()
    assert engine.join_line(make_drop(), "ann") == ("no_queue", None)
    assert engine.join_line(10**6, "ann") == ("not_found", None)
    assert engine.join_line(drop_id, "ann", now=END - 1)[0] == "ok"
    assert engine.join_line(drop_id, "bob", now=END) == ("queue_closed", None)
    assert engine.join_line(drop_id, "ann", now=END + 1)[0] == "same"  # a ticket holder still sees theirs
    for bad in ("", "x" * 129, None):
        with pytest.raises(ValueError, match="buyer"):
            engine.join_line(drop_id, bad)
    assert len(tickets_of(engine, drop_id)) == 1
    assert engine.join_line(queue_drop(ends_at=None), "ann", now=10**13)[0] == "ok"  # open-ended


@pytest.mark.parametrize("state", _engine.TICKET_STATES)
def test_leaving_from_each_state(engine, queue_drop, state):
    drop_id = queue_drop()
    join_all(engine, drop_id, ["ann"])
    engine.write(lambda tx: tx.execute("UPDATE tickets SET state = ? WHERE drop_id = ?", (state, drop_id)))
    expected = {"waiting": "ok", "admitted": "ok", "absent": "ok", "left": "already_left"}.get(state, state)
    assert engine.leave_line(drop_id, 1, "ann") == expected
    assert engine.ticket_of(drop_id, 1)["state"] == ("left" if expected == "ok" else state)


def test_only_the_tickets_buyer_leaves_and_once(engine, queue_drop):
    drop_id = queue_drop()
    join_all(engine, drop_id, ["ann", "bob"])
    assert engine.leave_line(drop_id, 1, "bob") == "not_found"
    assert engine.leave_line(drop_id, 9, "ann") == "not_found"
    assert engine.leave_line(drop_id + 1, 1, "ann") == "not_found"
    assert engine.ticket_of(drop_id, 1)["state"] == "waiting"
    assert engine.leave_line(drop_id, 1, "ann") == "ok"
    assert engine.leave_line(drop_id, 1, "ann") == "already_left"
    assert [t["state"] for t in tickets_of(engine, drop_id)] == ["left", "waiting"]
    assert engine.join_line(drop_id, "ann", now=BEFORE)[1]["state"] == "left"  # one ticket per buyer


# -- the close --------------------------------------------------------------------------

def test_the_close_orders_the_prequeue_by_draw_key_once(engine, queue_drop):
    drop_id = queue_drop()
    join_all(engine, drop_id, [f"buyer-{n}" for n in range(12)])
    engine.leave_line(drop_id, 5, "buyer-4")  # a ticket that left keeps its place in the record
    seed = seed_of(engine, drop_id)
    assert engine.record_close(drop_id, now=START + 7) is True
    tickets = tickets_of(engine, drop_id)
    by_key = sorted(range(1, 13), key=lambda ticket_id: expected_key(seed, ticket_id))
    assert [t["ticket_id"] for t in sorted(tickets, key=lambda t: t["position"])] == by_key
    for ticket in tickets:
        assert ticket["draw_key"] == expected_key(seed, ticket["ticket_id"]) and ticket["kind"] == "prequeue"
    assert by_key != list(range(1, 13))  # the draw changed the join order (a 1 in 12! chance of failing)
    assert engine.read("SELECT * FROM queue_closes") == [
        {"drop_id": drop_id, "closed_at": START + 7, "prequeue_size": 12}]
    assert engine.record_close(drop_id, now=START + 99) is False
    assert tickets_of(engine, drop_id) == tickets
    assert engine.read("SELECT closed_at FROM queue_closes") == [{"closed_at": START + 7}]


def test_joins_after_the_close_are_fifo_at_p_plus_one(engine, queue_drop):
    drop_id, empty = queue_drop(), queue_drop()
    join_all(engine, drop_id, ["ann", "bob", "cat"])
    assert engine.record_close(drop_id, now=START) and engine.record_close(empty, now=START)
    late = join_all(engine, drop_id, ["dan", "eve", "fay"], now=AFTER)
    assert [(t["ticket_id"], t["kind"], t["position"], t["draw_key"]) for t in late] == [
        (4, "fifo", 4, None), (5, "fifo", 5, None), (6, "fifo", 6, None)]
    assert engine.join_line(drop_id, "bob", now=AFTER)[1]["kind"] == "prequeue"
    assert [t["position"] for t in join_all(engine, empty, ["gus", "hal"], now=AFTER)] == [1, 2]


def test_the_close_of_what_has_no_line_changes_nothing(engine, make_drop):
    plain = make_drop()
    assert engine.record_close(plain) is False and engine.record_close(10**6) is False
    assert engine.read("SELECT * FROM queue_closes") == []


def test_line_figures(engine, queue_drop, make_drop):
    drop_id = queue_drop()
    assert engine.line_figures(make_drop()) is None and engine.line_figures(10**6) is None
    empty = engine.line_figures(drop_id)
    assert (empty["tickets"], empty["waiting"], empty["admitted_through"], empty["closed_at"]) == (0, 0, 0, None)
    join_all(engine, drop_id, ["ann", "bob", "cat"])
    engine.leave_line(drop_id, 2, "bob")
    engine.record_close(drop_id, now=START)
    join_all(engine, drop_id, ["dan"], now=AFTER)
    figures = engine.line_figures(drop_id)
    assert figures["by_state"] == {**dict.fromkeys(_engine.TICKET_STATES, 0), "waiting": 3, "left": 1}
    assert (figures["tickets"], figures["waiting"], figures["admitted_through"]) == (4, 3, 0)
    assert (figures["last_position"], figures["closed_at"], figures["prequeue_size"]) == (4, START, 3)


# -- the drop's admission fields --------------------------------------------------------

def test_admission_defaults_and_fields(engine, queue_drop, make_drop):
    fields = "admission, admit_seconds, admission_margin, entries_close_at"

    def stored(drop_id):
        return tuple(engine.read(f"SELECT {fields} FROM drops WHERE id = ?", (drop_id,))[0].values())

    assert stored(make_drop()) == ("open", None, None, None)
    assert stored(queue_drop(total_stock=3)) == ("queue", 120, 1, None)
    assert stored(queue_drop(total_stock=50)) == ("queue", 120, 10, None)
    assert stored(queue_drop(admit_seconds=30, admission_margin=0)) == ("queue", 30, 0, None)
    assert stored(make_drop(admission="open", admit_seconds=None)) == ("open", None, None, None)


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"admission": "draw"}, "entries_close_at", "required for a draw"),
    ({"admission": "draw", "starts_at": START, "entries_close_at": START}, "entries_close_at", "after starts_at"),
    ({"admission": "draw", "starts_at": START, "entries_close_at": START + 1, "admission_margin": 2},
     "admission_margin", "always 0"),
    ({"admission": "fifo"}, "admission", "'queue' or 'draw'"),
    ({"admission": None}, "admission", "'queue' or 'draw'"),
    ({"admit_seconds": 60}, "admit_seconds", "queue drops only"),
    ({"admission_margin": 2}, "admission_margin", "queue drops only"),
    ({"admission": "queue", "admit_seconds": 0}, "admit_seconds", "from 1"),
    ({"admission": "queue", "admit_seconds": 7 * 24 * 3600 + 1}, "admit_seconds", "604800"),
    ({"admission": "queue", "admit_seconds": 1.5}, "admit_seconds", "integer"),
    ({"admission": "queue", "admission_margin": -1}, "admission_margin", "from 0"),
    ({"admission": "queue", "admission_margin": 10**9 + 1}, "admission_margin", "1000000000"),
    ({"admission": "queue", "entries_close_at": START + 1}, "entries_close_at", "draw"),
])
def test_bad_admission_fields_are_refused(engine, make_drop, fields, field, words):
    with pytest.raises(InvalidDropField, match=words) as refused:
        make_drop(**fields)
    assert refused.value.field == field and refused.value.status == 422
    assert engine.list_drops() == [] and engine.read("SELECT * FROM drop_seeds") == []


def test_switching_admission_settles_its_fields_and_keeps_one_seed(engine, make_drop):
    drop_id = make_drop(total_stock=25)
    shown = engine.update_drop(drop_id, admission="queue")
    assert shown == engine.get_drop(drop_id)  # the drop as shown, with its new commitment
    row = engine.read("SELECT admit_seconds, admission_margin, commitment FROM drops")[0]
    assert (row["admit_seconds"], row["admission_margin"]) == (120, 5)
    assert row["commitment"] == hashlib.sha256(seed_of(engine, drop_id)).hexdigest()
    with pytest.raises(InvalidDropField, match="queue drops only"):
        engine.update_drop(drop_id, admission="open", admit_seconds=60)
    engine.update_drop(drop_id, admission="open")
    assert engine.read("SELECT admit_seconds, admission_margin, commitment FROM drops")[0] == \
        {"admit_seconds": None, "admission_margin": None, "commitment": None}
    assert engine.fairness(drop_id) is None
    engine.update_drop(drop_id, admission="queue", admission_margin=0)
    assert commitment_of(engine, drop_id) == row["commitment"]  # the seed it published is kept
    with pytest.raises(InvalidDropField, match="queue drops only"):
        engine.update_drop(make_drop(), admission_margin=3)


@pytest.mark.parametrize("change", [{"admission": "open"}, {"starts_at": START + 1}, {"admission_margin": 7}])
def test_the_line_fields_are_frozen_once_a_ticket_exists(engine, queue_drop, change):
    drop_id = queue_drop()
    before = engine.read("SELECT * FROM drops")
    join_all(engine, drop_id, ["ann"])
    with pytest.raises(DropConflict) as frozen:
        engine.update_drop(drop_id, **change)
    assert (frozen.value.code, frozen.value.status, frozen.value.field) == ("tickets_exist", 409, next(iter(change)))
    assert engine.read("SELECT * FROM drops") == before


def test_other_changes_and_unchanged_line_fields_pass_with_tickets(engine, queue_drop):
    drop_id = queue_drop(admission_margin=2)
    assert engine.update_drop(drop_id, starts_at=START + 5)["starts_at"] == START + 5  # no ticket yet
    join_all(engine, drop_id, ["ann"])
    shown = engine.update_drop(drop_id, name="Renamed", total_stock=20, ends_at=END + 1, admit_seconds=45,
                               starts_at=START + 5, admission="queue", admission_margin=2)
    assert (shown["name"], shown["total_stock"], shown["ends_at"]) == ("Renamed", 20, END + 1)
    assert engine.read("SELECT admit_seconds FROM drops")[0]["admit_seconds"] == 45


def test_a_recorded_close_freezes_the_line_fields_even_without_tickets(engine, queue_drop):
    drop_id = queue_drop()
    engine.record_close(drop_id, now=START)
    with pytest.raises(DropConflict) as frozen:
        engine.update_drop(drop_id, starts_at=END - 1)
    assert frozen.value.code == "line_closed"
    assert engine.update_drop(drop_id, name="Still renamable")["name"] == "Still renamable"


def test_an_open_drop_sells_as_before(engine, make_drop):
    drop_id = make_drop(total_stock=1)
    assert engine.purchase(drop_id, "ann").ok and engine.purchase(drop_id, "bob").outcome == "sold_out"
    assert engine.read("SELECT * FROM tickets") == [] and engine.read("SELECT * FROM drop_seeds") == []


# -- the lists and the schema's checks ----------------------------------------------------

def test_ticket_kinds_and_states_are_checked_by_the_schema(engine, queue_drop):
    drop_id = queue_drop()
    join_all(engine, drop_id, ["ann"])

    def set_column(column, value):
        engine.write(lambda tx: tx.execute(f"UPDATE tickets SET {column} = ? WHERE drop_id = ?", (value, drop_id)))

    for column, values in (("state", _engine.TICKET_STATES), ("kind", _engine.TICKET_KINDS)):
        for value in values:
            set_column(column, value)
        for value in ("", "Waiting", "bought", None):
            with pytest.raises(ConstraintError):
                set_column(column, value)
    with pytest.raises(ConstraintError, match="UNIQUE"):  # one ticket per buyer, whatever the path
        engine.write(lambda tx: tx.execute(
            "INSERT INTO tickets (drop_id, ticket_id, buyer, joined_at, kind, state) VALUES (?, 2, 'ann', 0,"
            " 'fifo', 'waiting')", (drop_id,)))
    with pytest.raises(ConstraintError, match="CHECK"):
        engine.write(lambda tx: tx.execute("UPDATE drop_seeds SET seed = ?", (b"short",)))


def test_the_lists_are_the_engines():
    assert ledger.TICKET_STATES is _engine.TICKET_STATES and ledger.TICKET_KINDS is _engine.TICKET_KINDS
    assert ledger.ADMISSIONS is _engine.ADMISSIONS
    assert set(drops.AVAILABLE_ADMISSIONS) == set(_engine.ADMISSIONS)
    assert set(queue.LEAVABLE_STATES) < set(_engine.TICKET_STATES)
    assert set(queue.KIND_BEFORE_CLOSE.values()) < set(_engine.TICKET_KINDS)


def test_ahead_comes_from_a_copy_of_the_line_this_process_renews(engine, queue_drop, db_path):
    """A ticket's view counts the waiting tickets ahead in the process's copy of the line: another
    process's change shows once the copy is LINE_SECONDS old, this process's own at once."""
    drop_id = queue_drop()
    join_all(engine, drop_id, ["ann", "bob", "cat"])
    assert engine.record_close(drop_id, now=START)
    assert engine.line_copy(drop_id).view.ahead(4) == 3 and engine.line_copy(drop_id).view.ahead(None) is None
    with Engine(db_path) as other:  # as another serving process
        assert other.leave_line(drop_id, 1, "ann") == "ok"
    assert engine.line_copy(drop_id).view.ahead(4) == 3  # the copy, for now
    time.sleep(queue.LINE_SECONDS)
    assert engine.line_copy(drop_id).view.ahead(4) == 2
    assert engine.leave_line(drop_id, 2, "bob") == "ok"
    assert engine.line_copy(drop_id).view.ahead(4) == 1  # its own change: read again at once
    assert engine.line_copy(10**6) is None


@pytest.mark.parametrize("state", _engine.TICKET_STATES)
def test_a_tickets_object_is_written_for_its_buyer_alone(engine, queue_drop, state):
    """``Core.ticket_body`` (the view's read and JSON, in C): the row's fields as the generic read gives
    them, every kind and state as the schema's own string, after the caller's head; None for another
    buyer, an unknown ticket or drop."""
    drop_id = queue_drop()
    join_all(engine, drop_id, ["ann", "bob"])
    assert engine.record_close(drop_id, now=START)
    engine.join_line(drop_id, "cat", now=AFTER)
    engine.write(lambda tx: tx.execute("UPDATE tickets SET state = ?, checked_in_at = 5, admitted_until = 7"
                                       " WHERE drop_id = ? AND ticket_id = 1", (state, drop_id)))
    line = engine.line_copy(drop_id).view
    fields = ("joined_at", "kind", "state", "position", "admitted_until")
    for ticket_id, buyer in ((1, "ann"), (2, "bob"), (3, "cat")):
        expected = engine.read(f"SELECT {', '.join(fields)} FROM tickets WHERE drop_id = ? AND ticket_id = ?",
                               (drop_id, ticket_id))[0]
        body = engine.ticket_body(line, drop_id, ticket_id, buyer, b'{"mine":-12,', False, AFTER)
        shown = orjson.loads(body)
        assert body.startswith(b'{"mine":-12,"kind":') and shown.pop("mine") == -12
        assert {name: shown[name] for name in fields} == expected
        assert list(shown) == ["kind", "joined_at", "state", "position", "ahead", "admitted_until", "eta_s"]
    shown = orjson.loads(engine.ticket_body(line, drop_id, 1, "ann", b"{", False, AFTER))
    assert (shown["state"], shown["admitted_until"]) == (state, 7)
    for args in ((drop_id, 1, "bob"), (drop_id, 1, "ann "), (drop_id, 1, "an"), (drop_id, 1, "ánn"),
                 (drop_id, 1, "ann" * 100), (drop_id, 9, "ann"), (10**6, 1, "ann")):
        assert engine.ticket_body(line, *args, b"{") is None
