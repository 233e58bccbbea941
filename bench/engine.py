"""Engine purchases/s against stdlib sqlite3 doing the same transaction.

Usage: python bench/engine.py [--purchases N] [--threads 1,16] [--modes NORMAL,FULL]

Prints one row per configuration with purchases/s, p50/p99 per call and the
ratio to the stdlib baseline measured in the same run, then checks SPEC 3's
invariant on every database it made (exit 1 if one is broken).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.baselines.stdlib_purchase import StdlibShop  # noqa: E402
from dropsvc import Engine  # noqa: E402

STOCK = 10**9  # never sells out: every call is a full purchase


def new_database(folder: str, name: str, synchronous: str) -> tuple[str, int]:
    path = os.path.join(folder, f"{name}.db")
    with Engine(path, synchronous=synchronous) as engine:
        drop_id = engine.create_drop(slug="bench", name="Bench", price=1000, total_stock=STOCK,
                                     per_user_limit=100)
    return path, drop_id


def drive(buy: Callable[[str], str], purchases: int, threads: int) -> tuple[float, list[int]]:
    """Run purchases spread over threads; returns (seconds, per-call latencies in ns)."""
    per_thread = purchases // threads
    latencies: list[list[int]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        mine = latencies[index]
        clock = time.perf_counter_ns
        barrier.wait()
        for n in range(per_thread):
            started = clock()
            outcome = buy(f"t{index}-u{n}")
            mine.append(clock() - started)
            if outcome != "ok":
                raise AssertionError(f"purchase failed: {outcome}")

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started, [x for chunk in latencies for x in chunk]


def percentile(values: list[int], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] / 1000 if len(values) > 1 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=40_000)
    parser.add_argument("--threads", default="1,16")
    parser.add_argument("--modes", default="NORMAL,FULL")
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]
    folder = tempfile.mkdtemp(prefix="dropsvc-bench-")
    made: list[str] = []
    rows = []
    for mode in args.modes.split(","):
        purchases = args.purchases if mode == "NORMAL" else max(args.purchases // 8, 2000)
        path, drop_id = new_database(folder, f"stdlib-{mode}", mode)
        made.append(path)
        shop = StdlibShop(path, mode)
        seconds, lat = drive(lambda user: shop.purchase(drop_id, user), purchases, 1)
        shop.close()
        baseline = purchases / seconds
        rows.append((mode, "stdlib sqlite3", 1, baseline, lat, 1.0))
        for threads in thread_counts:
            path, drop_id = new_database(folder, f"engine-{mode}-{threads}", mode)
            made.append(path)
            with Engine(path, synchronous=mode) as engine:
                seconds, lat = drive(lambda user: engine.purchase(drop_id, user).outcome,
                                     purchases, threads)
            rate = (purchases // threads * threads) / seconds
            rows.append((mode, "engine", threads, rate, lat, rate / baseline))

    print(f"{'mode':<7} {'what':<16} {'threads':>7} {'purchases/s':>12} {'p50 us':>8} {'p99 us':>8}"
          f" {'x stdlib':>9}")
    for mode, what, threads, rate, lat, ratio in rows:
        print(f"{mode:<7} {what:<16} {threads:>7} {rate:>12,.0f} {percentile(lat, 50):>8.1f}"
              f" {percentile(lat, 99):>8.1f} {ratio:>9.2f}")

    broken = 0
    for path in made:
        with Engine(path) as engine:
            problems = engine.check()
        broken += bool(problems)
        print(f"invariant {'BROKEN' if problems else 'holds'}: {os.path.basename(path)}"
              + (f" {problems[:3]}" if problems else ""))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
