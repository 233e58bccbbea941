"""Joins of a line through the engine's group commit (SPEC 11): many threads in one batch, one
ticket per buyer even within a batch, a join racing the close, joins beside purchases, storage
failures as typed errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from dropsvc import _engine
from dropsvc.ledger.queue import close_line

START, END = 1_000_000, 2_000_000
BEFORE = START - 1_000


@pytest.fixture
def line(make_drop):
    """A queue drop (starts at START, ends at END), its line open."""
    return make_drop(admission="queue", starts_at=START, ends_at=END)


def batches(engine) -> dict[str, int]:
    return engine.counters()["batches"]


def batched(engine, before: dict[str, int]) -> tuple[int, str]:
    """(batches run since ``before``, the largest size bucket among them)."""
    after = batches(engine)
    grown = [size for size in after if after[size] > before[size]]
    return sum(after.values()) - sum(before.values()), grown[-1] if grown else "none"


def in_one_batch(engine, calls: list[Callable[[], Any]], inside: Callable[[Any], Any] = lambda tx: None) -> list[Any]:
    """Run ``calls`` on threads of their own while a write transaction (running ``inside``) holds the
    critical section, so they queue up and go into the batch after it; their results, in order."""
    results: list[Any] = [None] * len(calls)
    held, release = threading.Event(), threading.Event()

    def hold(tx):
        inside(tx)
        held.set()
        release.wait(10)

    holder = threading.Thread(target=engine.write, args=(hold,))
    holder.start()
    assert held.wait(10)

    def run(index: int) -> None:
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # every caller queued behind the write
    release.set()
    holder.join(10)
    for thread in threads:
        thread.join(10)
    return results


def test_joins_from_many_threads_share_a_batch_and_get_distinct_ticket_ids(engine, line):
    before = batches(engine)
    buyers = [f"b{n}" for n in range(40)]
    results = in_one_batch(engine, [lambda b=b: engine.join_line(line, b, now=BEFORE) for b in buyers])
    assert all(outcome == "ok" for outcome, _ in results)
    assert sorted(ticket["ticket_id"] for _, ticket in results) == list(range(1, 41))
    count, largest = batched(engine, before)
    assert count <= 3 and largest == "32-63", (count, largest)  # 40 joins, one commit (a straggler may come after)
    assert engine.counters()["joins"]["ok"] == 40
    rows = engine.read("SELECT ticket_id, buyer, kind, position FROM tickets WHERE drop_id = ?", (line,))
    assert {row["buyer"]: row["ticket_id"] for row in rows} == {t["buyer"]: t["ticket_id"] for _, t in results}
    assert {(row["kind"], row["position"]) for row in rows} == {("prequeue", None)}


def test_one_buyer_joining_many_times_in_one_batch_gets_one_ticket(engine, line):
    calls = [lambda n=n: engine.join_line(line, "ann" if n % 2 else f"other{n}", now=BEFORE) for n in range(20)]
    results = in_one_batch(engine, calls)
    anns = [result for n, result in enumerate(results) if n % 2]
    assert sorted(outcome for outcome, _ in anns) == ["ok"] + ["same"] * 9
    assert all(ticket == anns[0][1] for _, ticket in anns)  # the same row, whichever answer came first
    assert engine.read("SELECT COUNT(*) AS n FROM tickets WHERE drop_id = ? AND buyer = 'ann'", (line,))[0]["n"] == 1
    assert engine.read("SELECT COUNT(*) AS n FROM tickets WHERE drop_id = ?", (line,))[0]["n"] == 11


def test_joins_queued_behind_the_close_are_fifo_after_the_prequeue(engine, line):
    for buyer in ("ann", "bob", "cat"):
        engine.join_line(line, buyer, now=BEFORE)
    results = in_one_batch(engine, [lambda n=n: engine.join_line(line, f"late{n}", now=START + 5) for n in range(5)],
                           inside=lambda tx: close_line(tx, line, START))
    assert {(ticket["kind"], ticket["state"]) for _, ticket in results} == {("fifo", "waiting")}
    assert sorted(ticket["position"] for _, ticket in results) == [4, 5, 6, 7, 8]
    by_id = sorted(ticket for _, ticket in results for ticket in [(ticket["ticket_id"], ticket["position"])])
    assert [position for _, position in by_id] == [4, 5, 6, 7, 8]  # in join order


def test_a_join_racing_the_close_gets_the_kind_of_its_commit(engine, line):
    """Joins on many threads while the close is recorded: each ticket is prequeue (ordered by the
    close, 1..P) or fifo (after it, P+1.. in join order), never both, never a gap."""
    stop = threading.Event()

    def joiner(worker: int) -> None:
        n = 0
        while not stop.is_set():
            engine.join_line(line, f"w{worker}-{n}", now=START + n)
            n += 1

    threads = [threading.Thread(target=joiner, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    assert engine.record_close(line, now=START) is True
    time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(10)
    tickets = engine.read("SELECT ticket_id, kind, position, draw_key FROM tickets WHERE drop_id = ?"
                          " ORDER BY ticket_id", (line,))
    size = engine.line_figures(line)["prequeue_size"]
    prequeue = [t for t in tickets if t["kind"] == "prequeue"]
    fifo = [t for t in tickets if t["kind"] == "fifo"]
    assert len(prequeue) == size > 0 and fifo, (size, len(fifo))
    assert max(t["ticket_id"] for t in prequeue) < min(t["ticket_id"] for t in fifo)  # the close splits the joins
    assert sorted(t["position"] for t in prequeue) == list(range(1, size + 1))
    assert all(t["draw_key"] is not None for t in prequeue) and all(t["draw_key"] is None for t in fifo)
    assert [t["position"] for t in fifo] == list(range(size + 1, size + 1 + len(fifo)))


def test_joins_and_purchases_share_a_batch(engine, line, make_drop):
    shop = make_drop(total_stock=100, starts_at=0)
    calls = [lambda n=n: (engine.join_line(line, f"j{n}", now=BEFORE) if n % 2 else engine.purchase(shop, f"p{n}"))
             for n in range(20)]
    before = batches(engine)
    results = in_one_batch(engine, calls)
    assert [result[0] for result in results[1::2]] == ["ok"] * 10
    assert [result.outcome for result in results[0::2]] == ["ok"] * 10
    count, largest = batched(engine, before)
    assert count <= 3 and largest == "16-31", (count, largest)
    assert engine.get_drop(shop)["sold"] == 10
    assert sorted(ticket["ticket_id"] for _, ticket in results[1::2]) == list(range(1, 11))


def test_refusals_write_nothing_and_are_counted(engine, line, make_drop):
    before = engine.counters()["joins"]
    assert engine.join_line(make_drop(), "ann") == ("no_queue", None)
    assert engine.join_line(10**6, "ann") == ("not_found", None)
    assert engine.join_line(line, "ann", now=END) == ("queue_closed", None)
    draw = make_drop(admission="draw", starts_at=START, entries_close_at=END)
    assert engine.join_line(draw, "ann", now=BEFORE) == ("entries_not_open", None)
    after = engine.counters()["joins"]
    assert {name: after[name] - before[name] for name in after} == {
        "ok": 0, "same": 0, "not_found": 1, "no_queue": 1, "queue_closed": 1, "entries_not_open": 1}
    assert engine.read("SELECT COUNT(*) AS n FROM tickets")[0]["n"] == 0
    with pytest.raises(TypeError):
        engine.join_ticket(line, "ann", now=1.5)


def test_a_draw_takes_entries_from_its_start_until_its_entries_close(engine, make_drop):
    draw = make_drop(admission="draw", starts_at=START, entries_close_at=START + 5_000)
    assert engine.join_line(draw, "ann", now=START - 1) == ("entries_not_open", None)
    outcome, ticket = engine.join_line(draw, "ann", now=START)
    assert outcome == "ok" and (ticket["kind"], ticket["position"]) == ("entry", None)
    assert ticket["checked_in_at"] == START  # entering is being there
    assert engine.ticket_of(draw, ticket["ticket_id"]) == ticket  # as the engine wrote it
    assert engine.join_line(draw, "ann", now=START + 4_999)[0] == "same"
    assert engine.join_line(draw, "bob", now=START + 5_000) == ("queue_closed", None)
    assert engine.join_line(draw, "ann", now=START + 5_000)[0] == "same"  # the entrant still finds the entry

    early = make_drop(admission="draw", starts_at=START, entries_close_at=START + 5_000)
    assert engine.join_line(early, "ann", now=START)[0] == "ok"
    assert engine.record_close(early, now=START + 1_000)  # a close recorded early: no fifo joins in a draw
    assert engine.join_line(early, "bob", now=START + 2_000) == ("queue_closed", None)
    assert [row["kind"] for row in engine.read("SELECT kind FROM tickets WHERE drop_id = ?", (early,))] == ["entry"]


def test_a_storage_failure_during_a_join_is_a_typed_error_and_the_line_goes_on(engine, line):
    pages = engine.read("PRAGMA page_count")[0]["page_count"]
    engine.write(lambda tx: tx.execute(f"PRAGMA max_page_count = {pages}"))  # no room to grow
    errors_before = engine.counters()["storage_errors"]
    joined = 0
    with pytest.raises(_engine.FullError):
        for n in range(5_000):  # tickets fill the last free pages, then the storage refuses
            assert engine.join_line(line, f"buyer-{n:04d}-" + "x" * 100, now=BEFORE)[0] == "ok"
            joined += 1
    assert engine.counters()["storage_errors"] == errors_before + 1
    assert engine.read("SELECT COUNT(*) AS n FROM tickets WHERE drop_id = ?", (line,))[0]["n"] == joined
    engine.write(lambda tx: tx.execute("PRAGMA max_page_count = 1073741823"))  # room again
    outcome, ticket = engine.join_line(line, "after", now=BEFORE)
    assert outcome == "ok" and ticket["ticket_id"] == joined + 1
