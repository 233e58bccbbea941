"""Many threads against one engine: never an oversell, never a lost order."""

from __future__ import annotations

import threading
from collections import Counter

from dropsvc import Engine


def run_threads(count: int, target) -> None:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            start.wait()
            target(index)
        except BaseException as error:  # reported below, not swallowed
            errors.append(error)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_herd_of_16_threads_sells_exactly_the_stock(engine, make_drop):
    drop_id = make_drop(total_stock=100, per_user_limit=1)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    buyers_per_thread = 200

    def buy(thread: int) -> None:
        mine = Counter(engine.purchase(drop_id, f"buyer-{thread}-{n}").outcome
                       for n in range(buyers_per_thread))
        with lock:
            outcomes.update(mine)

    run_threads(16, buy)
    assert outcomes == {"ok": 100, "sold_out": 16 * buyers_per_thread - 100}
    assert engine.get_drop(drop_id)["sold"] == 100
    assert engine.read("SELECT COUNT(*) AS n FROM orders")[0]["n"] == 100
    assert engine.check() == []


def test_same_buyer_from_many_threads_respects_the_limit(engine, make_drop):
    drop_id = make_drop(total_stock=50, per_user_limit=3)
    results: list[str] = []

    def buy(thread: int) -> None:
        for _ in range(10):
            results.append(engine.purchase(drop_id, "greedy").outcome)

    run_threads(8, buy)
    assert results.count("ok") == 3
    assert engine.get_drop(drop_id)["sold"] == 3


def test_retries_with_one_key_from_many_threads_buy_once(engine, make_drop):
    drop_id = make_drop(total_stock=5, per_user_limit=5)
    refs: set[str] = set()

    def retry(thread: int) -> None:
        for _ in range(20):
            result = engine.purchase(drop_id, "alice", 1, idempotency_key="one-click")
            assert result.outcome in ("ok", "duplicate")
            refs.add(result.order["public_ref"])

    run_threads(16, retry)
    assert len(refs) == 1
    assert engine.get_drop(drop_id)["sold"] == 1


def test_readers_and_writers_together(engine, make_drop):
    drop_id = make_drop(total_stock=300, per_user_limit=1)
    seen: list[int] = []

    def work(thread: int) -> None:
        for n in range(100):
            if thread % 2:
                engine.purchase(drop_id, f"u{thread}-{n}")
            else:
                drop = engine.get_drop(drop_id)
                assert 0 <= drop["sold"] <= drop["total_stock"]
                seen.append(drop["sold"])

    run_threads(12, work)
    assert engine.get_drop(drop_id)["sold"] == 300
    assert max(seen) <= 300


def test_two_engines_on_one_file_share_the_stock(db_path):
    with Engine(db_path) as first, Engine(db_path) as second:
        drop_id = first.create_drop(slug="shared", name="Shared", price=1, total_stock=40)
        outcomes: list[str] = []

        def buy(thread: int) -> None:
            engine = first if thread % 2 else second
            for n in range(30):
                outcomes.append(engine.purchase(drop_id, f"b{thread}-{n}").outcome)

        run_threads(4, buy)
        assert outcomes.count("ok") == 40
        assert first.check() == [] and second.get_drop(drop_id)["sold"] == 40
