"""Joins/s of a queue drop's line through ``Engine.join_line``, from 1 to many threads of one process.

Usage: python -m bench.join_rates [--joins N] [--threads 1,16,64] [--rounds R] [--synchronous NORMAL]

A fresh database per configuration and round (made by ``Engine``), one queue drop whose line is
open, distinct buyers ``b0, b1, ...`` interleaved across the threads (thread ``t`` of ``T`` joins
for ``b{t}``, ``b{t+T}``, ...), made before the clock starts. joins/s is the best round (noise only
slows a run down); the average batch comes from ``Engine.counters()``. Ends by checking that every
file has one ticket per buyer numbered 1..N without a gap, and the stock invariant (exit 1 if not).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.harness.meters import loadavg
from dropsvc import Engine


def one_round(folder: Path, name: str, threads: int, joins: int, synchronous: str) -> tuple[float, float, str]:
    """(joins/s, average batch, problem or "") of one fresh file."""
    path = folder / f"{name}.db"
    with Engine(path, synchronous=synchronous) as engine:
        drop_id = engine.create_drop(slug="line", name="Line", price=1, total_stock=100, admission="queue",
                                     starts_at=4_000_000_000_000)
        before = engine.counters()
        buyers = [[f"b{n}" for n in range(t, joins, threads)] for t in range(threads)]
        start = threading.Barrier(threads + 1)

        def work(mine: list[str]) -> None:
            start.wait()
            for buyer in mine:
                outcome, _ = engine.join_line(drop_id, buyer)
                assert outcome == "ok", outcome

        workers = [threading.Thread(target=work, args=(mine,)) for mine in buyers]
        for worker in workers:
            worker.start()
        start.wait()
        began = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began
        after = engine.counters()
        batches = sum(after["batches"].values()) - sum(before["batches"].values())
        rows = engine.read("SELECT COUNT(*) AS n, COUNT(DISTINCT buyer) AS buyers, MAX(ticket_id) AS top"
                           " FROM tickets WHERE drop_id = ?", (drop_id,))[0]
        problem = ""
        if not rows["n"] == rows["buyers"] == rows["top"] == joins:
            problem = f"tickets {rows}"
        if engine.check():
            problem += f" invariant {engine.check()[:3]}"
    return joins / elapsed, (joins / batches if batches else 1.0), problem


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--joins", type=int, default=8000)
    parser.add_argument("--threads", default="1,16,64")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synchronous", default="NORMAL")
    args = parser.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="dropsvc-joins-"))
    broken = 0
    print(f"joins/s, {args.joins:,} joins per round, {args.rounds} rounds, {args.synchronous}; "
          f"load average {loadavg()}")
    try:
        results: dict[int, list[tuple[float, float]]] = {t: [] for t in counts}
        for round_no in range(args.rounds):
            for threads in counts:
                rate, batch, problem = one_round(folder, f"t{threads}-r{round_no}", threads, args.joins,
                                                 args.synchronous)
                results[threads].append((rate, batch))
                if problem:
                    broken += 1
                    print(f"  BROKEN {threads} threads round {round_no + 1}: {problem}")
        for threads, runs in results.items():
            best = max(rate for rate, _ in runs)
            batch = sorted(batch for _, batch in runs)[len(runs) // 2]
            print(f"  {threads:>3} threads: {best:>9,.0f} joins/s (rounds: "
                  + ", ".join(f"{rate:,.0f}" for rate, _ in runs) + f"), average batch {batch:.1f}")
        print(f"load average at the end {loadavg()}; every file: one ticket per buyer, 1..N, invariant "
              + ("held" if not broken else f"BROKEN in {broken}"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
