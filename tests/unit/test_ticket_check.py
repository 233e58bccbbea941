"""The ticket check inside the purchase transaction (SPEC 11), on real SQLite files.

A queue drop sells only to an admitted ticket of the buyer's, in SPEC 11's
order: the idempotent replay, the window, sold out, the ticket, the per-user
limit, the stock. A refusal changes nothing; a purchase marks its ticket used
in the same transaction. Admission itself is the background worker's (another
step): these tests admit a ticket with SQL.
"""

from __future__ import annotations

import threading
import time

import pytest

from dropsvc import Engine

LIMIT = 2


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def line_drop(make_drop):
    """A live queue drop (started a minute ago), per_user_limit 2; keyword arguments override."""
    def make(**fields):
        return make_drop(**{"admission": "queue", "starts_at": now_ms() - 60_000, "per_user_limit": LIMIT,
                            **fields})
    return make


def join(engine: Engine, drop_id: int, buyer: str) -> int:
    outcome, ticket = engine.join_line(drop_id, buyer)
    assert outcome == "ok"
    return ticket["ticket_id"]


def set_ticket(engine: Engine, drop_id: int, ticket_id: int, state: str, until: int | None = None) -> None:
    """Put the ticket in ``state`` (admitted: until ``until``, a minute from now by default)."""
    if state == "admitted" and until is None:
        until = now_ms() + 60_000
    engine.write(lambda tx: tx.execute(
        "UPDATE tickets SET state = ?, admitted_at = ?, admitted_until = ? WHERE drop_id = ? AND ticket_id = ?",
        (state, now_ms() if state == "admitted" else None, until, drop_id, ticket_id)))


def admitted(engine: Engine, drop_id: int, buyer: str) -> int:
    ticket_id = join(engine, drop_id, buyer)
    set_ticket(engine, drop_id, ticket_id, "admitted")
    return ticket_id


def state_of(engine: Engine, drop_id: int, ticket_id: int) -> str:
    return engine.ticket_of(drop_id, ticket_id)["state"]


def snapshot(engine: Engine, drop_id: int) -> tuple:
    """Everything a purchase may change: the drop's sold, its orders, holdings and tickets."""
    return (engine.read("SELECT sold FROM drops WHERE id = ?", (drop_id,)),
            engine.read("SELECT * FROM orders WHERE drop_id = ? ORDER BY id", (drop_id,)),
            engine.read("SELECT * FROM holdings WHERE drop_id = ? ORDER BY user_id", (drop_id,)),
            engine.read("SELECT * FROM tickets WHERE drop_id = ? ORDER BY ticket_id", (drop_id,)))


# -- each refusal names the ticket's state and changes nothing ---------------------------

@pytest.mark.parametrize("state", ["waiting", "used", "lapsed", "absent", "left", "sold_out", "ended", "voided"])
def test_a_ticket_that_is_not_admitted_is_refused_with_its_state(engine, line_drop, state):
    drop_id = line_drop()
    ticket_id = join(engine, drop_id, "ann")
    if state != "waiting":
        set_ticket(engine, drop_id, ticket_id, state)
    before = snapshot(engine, drop_id)
    result = engine.purchase(drop_id, "ann", ticket_id=ticket_id)
    assert (result.outcome, result.ticket_state, result.order) == ("not_admitted", state, None)
    assert snapshot(engine, drop_id) == before


@pytest.mark.parametrize("case, expected", [
    ("none", "missing"), ("unknown", "invalid"), ("zero", "invalid"), ("negative", "invalid"),
    ("huge", "invalid"), ("other_buyer", "other_buyer"), ("past", "lapsed"), ("now", "lapsed"),
    ("no_until", "lapsed"),
])
def test_no_admitted_ticket_of_this_buyer_is_refused(engine, line_drop, case, expected):
    drop_id = line_drop()
    mine, theirs = admitted(engine, drop_id, "ann"), admitted(engine, drop_id, "bob")
    if case in ("past", "now", "no_until"):
        until = {"past": now_ms() - 1, "now": now_ms(), "no_until": None}[case]
        engine.write(lambda tx: tx.execute("UPDATE tickets SET admitted_until = ? WHERE drop_id = ?",
                                           (until, drop_id)))
    ticket_id = {"none": None, "unknown": 99, "zero": 0, "negative": -1, "huge": 2**70,
                 "other_buyer": theirs}.get(case, mine)
    before = snapshot(engine, drop_id)
    result = engine.purchase(drop_id, "ann", ticket_id=ticket_id)
    assert (result.outcome, result.ticket_state) == ("not_admitted", expected)
    assert snapshot(engine, drop_id) == before
    assert engine.counters()["purchases"]["not_admitted"] == 1


def test_a_ticket_of_another_drop_is_invalid_here(engine, line_drop):
    drop_id, other_drop = line_drop(), line_drop()
    join(engine, drop_id, "bob")
    ticket_id = admitted(engine, other_drop, "ann")
    assert engine.purchase(drop_id, "ann", ticket_id=ticket_id).ticket_state == "other_buyer"  # bob's ticket 1
    assert engine.purchase(drop_id, "ann", ticket_id=2).ticket_state == "invalid"
    assert state_of(engine, other_drop, ticket_id) == "admitted"


# -- the admitted ticket buys once -------------------------------------------------------

def test_an_admitted_ticket_buys_and_is_used_in_the_same_transaction(engine, line_drop):
    drop_id = line_drop(total_stock=5)
    ticket_id = admitted(engine, drop_id, "ann")
    transactions = engine.counters()["transactions"]
    result = engine.purchase(drop_id, "ann", 2, ticket_id=ticket_id)
    assert result.outcome == "ok" and result.ticket_state is None and result.order["quantity"] == 2
    assert engine.counters()["transactions"] == transactions + 1
    assert state_of(engine, drop_id, ticket_id) == "used"
    assert engine.get_drop(drop_id)["sold"] == 2
    again = engine.purchase(drop_id, "ann", ticket_id=ticket_id)
    assert (again.outcome, again.ticket_state) == ("not_admitted", "used")


def test_a_retry_with_the_same_key_after_the_ticket_was_used_returns_the_order(engine, line_drop):
    drop_id = line_drop()
    ticket_id = admitted(engine, drop_id, "ann")
    first = engine.purchase(drop_id, "ann", idempotency_key="k-1", ticket_id=ticket_id)
    assert first.outcome == "ok" and state_of(engine, drop_id, ticket_id) == "used"
    for ticket in (ticket_id, None, 99):  # the ticket is not checked again
        again = engine.purchase(drop_id, "ann", idempotency_key="k-1", ticket_id=ticket)
        assert again.outcome == "duplicate" and again.order["id"] == first.order["id"]
    assert engine.purchase(drop_id, "ann", idempotency_key="k-2", ticket_id=ticket_id).ticket_state == "used"


def test_a_refused_purchase_leaves_the_ticket_admitted(engine, line_drop):
    drop_id = line_drop(total_stock=3)
    ann = admitted(engine, drop_id, "ann")
    assert engine.purchase(drop_id, "ann", LIMIT + 1, ticket_id=ann).outcome == "per_user_limit"
    assert engine.purchase(drop_id, "bob", 2, ticket_id=admitted(engine, drop_id, "bob")).outcome == "ok"
    before = snapshot(engine, drop_id)
    assert engine.purchase(drop_id, "ann", 2, ticket_id=ann).outcome == "sold_out"  # 1 left: the stock, step 6
    assert snapshot(engine, drop_id) == before and state_of(engine, drop_id, ann) == "admitted"
    assert engine.purchase(drop_id, "ann", 1, ticket_id=ann).outcome == "ok"


def test_two_purchases_on_one_ticket_buy_once(engine, line_drop):
    drop_id = line_drop()
    ticket_id = admitted(engine, drop_id, "ann")
    results = [engine.purchase(drop_id, "ann", ticket_id=ticket_id) for _ in range(2)]
    assert [(r.outcome, r.ticket_state) for r in results] == [("ok", None), ("not_admitted", "used")]
    assert engine.get_drop(drop_id)["sold"] == 1


def purchases_behind_the_lock(engine: Engine, drop_id: int, buyer: str, ticket_id: int) -> tuple[list, bool]:
    """Two purchases on one ticket that queue up while the write lock is held: (results, one batch?)."""
    batches_before = engine.counters()["batches"]["2-3"]
    results, started = [], [threading.Event(), threading.Event()]

    def buy(ready: threading.Event) -> None:
        ready.set()
        results.append(engine.purchase(drop_id, buyer, ticket_id=ticket_id))

    def hold_the_lock(tx) -> list[threading.Thread]:
        threads = [threading.Thread(target=buy, args=(ready,)) for ready in started]
        for thread in threads:
            thread.start()
        for ready in started:
            ready.wait(5)
        time.sleep(0.05)  # both are past the GIL, queued behind the lock
        return threads

    for thread in engine.write(hold_the_lock):
        thread.join()
    return results, engine.counters()["batches"]["2-3"] == batches_before + 1


def test_two_simultaneous_purchases_in_one_batch_buy_once(engine, line_drop):
    """The leader takes both in one batch: the second sees the first's UPDATE of the ticket."""
    drop_id = line_drop(total_stock=100)
    batched = False
    for attempt in range(5):  # until the two shared a batch (they nearly always do at once)
        ticket_id = admitted(engine, drop_id, f"buyer-{attempt}")
        results, batched = purchases_behind_the_lock(engine, drop_id, f"buyer-{attempt}", ticket_id)
        assert sorted((r.outcome, r.ticket_state or "") for r in results) == [("not_admitted", "used"), ("ok", "")]
        assert state_of(engine, drop_id, ticket_id) == "used"
        assert engine.get_drop(drop_id)["sold"] == attempt + 1
        if batched:
            break
    assert batched
    assert len(engine.read("SELECT id FROM orders WHERE drop_id = ?", (drop_id,))) == attempt + 1


def test_a_herd_of_threads_on_one_ticket_buys_once(engine, line_drop):
    drop_id = line_drop(total_stock=100)
    ticket_id = admitted(engine, drop_id, "ann")
    others = [admitted(engine, drop_id, f"buyer-{i}") for i in range(7)]
    results: list = []
    start = threading.Barrier(16)

    def buy(user: str, ticket: int) -> None:
        start.wait()
        results.append((user, engine.purchase(drop_id, user, ticket_id=ticket).outcome))

    threads = [threading.Thread(target=buy, args=("ann", ticket_id)) for _ in range(9)]
    threads += [threading.Thread(target=buy, args=(f"buyer-{i}", t)) for i, t in enumerate(others)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcome for user, outcome in results if user == "ann") == ["not_admitted"] * 8 + ["ok"]
    assert [outcome for user, outcome in results if user != "ann"] == ["ok"] * 7
    assert engine.get_drop(drop_id)["sold"] == 8


# -- SPEC 11's order ---------------------------------------------------------------------

def test_the_window_and_sold_out_come_before_the_ticket(engine, line_drop, make_drop):
    later = line_drop(starts_at=now_ms() + 60_000)
    over = line_drop(starts_at=now_ms() - 120_000, ends_at=now_ms() - 60_000)
    assert engine.purchase(later, "ann").outcome == "not_started"
    assert engine.purchase(over, "ann", ticket_id=5).outcome == "ended"
    drop_id = line_drop(total_stock=1)
    assert engine.purchase(drop_id, "ann", ticket_id=admitted(engine, drop_id, "ann")).outcome == "ok"
    without_lock = engine.counters()["sold_out_without_lock"]
    for ticket in (None, 2, 1):  # sold out answers before the ticket is looked at
        result = engine.purchase(drop_id, "bob", ticket_id=ticket)
        assert (result.outcome, result.ticket_state) == ("sold_out", None)
    assert engine.counters()["sold_out_without_lock"] == without_lock + 2  # the lock-free hint holds for a line


def test_the_ticket_comes_before_the_per_user_limit(engine, line_drop):
    drop_id = line_drop()
    result = engine.purchase(drop_id, "ann", LIMIT + 1)
    assert (result.outcome, result.ticket_state) == ("not_admitted", "missing")


def test_an_open_drop_ignores_the_ticket(engine, make_drop):
    drop_id = make_drop(starts_at=now_ms() - 1000, per_user_limit=5)
    for ticket in (None, 0, 1, 99, 2**70):
        result = engine.purchase(drop_id, "ann", ticket_id=ticket)
        assert (result.outcome, result.ticket_state) == ("ok", None)
    assert engine.counters()["purchases"]["not_admitted"] == 0


@pytest.mark.parametrize("ticket_id", ["1", 1.0, True, b"1"])
def test_a_ticket_id_is_an_int(engine, line_drop, ticket_id):
    with pytest.raises(TypeError):
        engine.purchase(line_drop(), "ann", ticket_id=ticket_id)


# -- the token's key ---------------------------------------------------------------------

def test_the_ticket_token_key_is_made_once_and_kept(db_path):
    with Engine(db_path) as engine:
        key = engine.secret("ticket_token_key")
        assert len(key) == 32 and key != engine.secret("buyer_cookie_key")
        # a file made before the key existed: the key is made when it is opened
        engine.write(lambda tx: tx.execute("DELETE FROM settings WHERE key = 'ticket_token_key'"))
    with Engine(db_path) as engine:
        made = engine.secret("ticket_token_key")
        assert len(made) == 32 and made != key
    with Engine(db_path) as engine:
        assert engine.secret("ticket_token_key") == made


# -- a purchase without a usable ticket, refused from a reader ------------------------------

def test_a_ticketless_purchase_is_refused_without_the_write_lock_once_seen(engine, line_drop):
    """The first refusal goes through the writer; after it, a purchase with no ticket (missing) or an
    id no ticket can have (invalid) is answered from a reader, the same answer, nothing written."""
    drop_id = line_drop()
    ticket_id = admitted(engine, drop_id, "ann")
    before = snapshot(engine, drop_id)
    first = engine.purchase(drop_id, "bob")
    counters = engine.counters()
    for ticket, state in ((None, "missing"), (0, "invalid"), (-3, "invalid"), (2**70, "invalid"), (None, "missing")):
        result = engine.purchase(drop_id, "bob", ticket_id=ticket)
        assert (result.outcome, result.order, result.ticket_state) == ("not_admitted", None, state)
    assert (first.outcome, first.ticket_state) == ("not_admitted", "missing")
    after = engine.counters()
    assert after["not_admitted_without_lock"] == counters["not_admitted_without_lock"] + 5
    assert after["transactions"] == counters["transactions"]  # no write at all
    assert after["purchases"] == counters["purchases"]
    assert snapshot(engine, drop_id) == before
    assert engine.purchase(drop_id, "ann", ticket_id=ticket_id).outcome == "ok"  # a real ticket: the writer


def test_the_lock_free_refusal_keeps_spec_11s_order(engine, line_drop):
    """A repeated Idempotency-Key, the window and sold out still come before the missing ticket."""
    drop_id = line_drop(total_stock=1, ends_at=now_ms() + 1_500)
    ticket_id = admitted(engine, drop_id, "ann")
    order = engine.purchase(drop_id, "ann", idempotency_key="k1", ticket_id=ticket_id)
    assert order.outcome == "ok"
    engine.write(lambda tx: tx.execute("UPDATE drops SET total_stock = 2 WHERE id = ?", (drop_id,)))
    assert engine.purchase(drop_id, "bob").ticket_state == "missing"  # the hint
    without_lock = engine.counters()["not_admitted_without_lock"]
    replay = engine.purchase(drop_id, "ann", idempotency_key="k1", ticket_id=ticket_id)
    assert (replay.outcome, replay.order["id"]) == ("duplicate", order.order["id"])
    assert engine.purchase(drop_id, "ann", idempotency_key="k1").outcome == "duplicate"  # the ticket not checked again
    assert engine.purchase(drop_id, "cat").ticket_state == "missing"
    assert engine.counters()["not_admitted_without_lock"] == without_lock + 1  # with a key: the writer
    engine.write(lambda tx: tx.execute("UPDATE drops SET total_stock = 1 WHERE id = ?", (drop_id,)))
    assert engine.purchase(drop_id, "cat").outcome == "sold_out"
    engine.write(lambda tx: tx.execute("UPDATE drops SET total_stock = 2 WHERE id = ?", (drop_id,)))
    assert engine.purchase(drop_id, "cat").ticket_state == "missing"
    time.sleep(max(0.0, (engine.get_drop(drop_id)["ends_at"] - now_ms()) / 1000) + 0.01)
    assert engine.purchase(drop_id, "cat").outcome == "ended"


def test_a_drop_switched_back_to_open_sells_to_a_ticketless_purchase_again(engine, line_drop):
    """The hint is only a hint: the read says whether the drop still needs a ticket."""
    drop_id = line_drop()
    assert engine.purchase(drop_id, "bob").ticket_state == "missing"
    assert engine.purchase(drop_id, "bob").ticket_state == "missing"
    engine.update_drop(drop_id, admission="open")  # no ticket yet: the line's fields may change
    assert engine.purchase(drop_id, "bob").outcome == "ok"
    assert engine.purchase(drop_id, "cat", ticket_id=None).outcome == "ok"


def test_a_draw_before_its_draw_is_not_started_not_refused_for_the_ticket(engine, make_drop):
    drop_id = make_drop(admission="draw", starts_at=now_ms() - 60_000, entries_close_at=now_ms() + 60_000)
    for _ in range(3):
        assert engine.purchase(drop_id, "bob").outcome == "not_started"
    assert engine.counters()["not_admitted_without_lock"] == 0
