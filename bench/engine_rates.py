"""Engine purchases/s against a C loop and stdlib sqlite3, NORMAL and FULL, in one run.

Usage: python -m bench.engine_rates [--quick] [--purchases N] [--modes NORMAL,FULL] [--rounds R] [--keep]

Configurations, each on a fresh database made by the engine (same schema,
stock that never sells out, per_user_limit 1, distinct buyers u0, u1, ...
interleaved across threads and processes):
  c_loop 1/tx (the reference of every ratio), c_loop 64/tx, stdlib full
  purchase 1/tx, stdlib bare UPDATE+INSERT 1/tx, engine 1/16/64 threads,
  engine 2 processes x 8 threads on one file.
Each runs R rounds (3; 1 with --quick), rounds interleaved across
configurations: purchases/s is the best round, latency percentiles and the
average batch are the median of the rounds. Ends by checking SPEC 3's
invariant on every file made (exit 1 if one is broken) and printing the
targets of the issue "engine throughput" as PASS/MISS.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.baselines.stdlib_purchase import StdlibBare, StdlibShop
from bench.harness.databases import without_missing_holdings
from dropsvc import SQLITE_VERSION, Engine, StorageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STOCK = 10**9  # never sells out: every call is a full purchase
PRICE = 1000
C_SOURCE = os.path.join(ROOT, "bench", "baselines", "c_loop.c")
C_BINARY = os.path.join(ROOT, "bench", "baselines", "c_loop")


@dataclass
class Run:
    """One configuration, one round, one database."""
    path: str
    drop_id: int
    attempted: int
    ok: int
    seconds: float
    errors: int = 0
    lat: tuple[float, ...] = ()  # p50, p99, p99.9 per call, microseconds
    batch: float | None = None  # average purchases per group-commit batch
    counters: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds


# -- databases, C loop ------------------------------------------------------

def new_database(folder: str, name: str, mode: str) -> tuple[str, int]:
    path = os.path.join(folder, f"{name}.db")
    with Engine(path, synchronous=mode) as engine:
        drop_id = engine.create_drop(slug="bench", name="Bench", price=PRICE, total_stock=STOCK,
                                     per_user_limit=1)
    return path, drop_id


def build_c_loop() -> str:
    """Compile bench/baselines/c_loop.c against the system SQLite when missing or stale."""
    if os.path.exists(C_BINARY) and os.path.getmtime(C_BINARY) >= os.path.getmtime(C_SOURCE):
        return C_BINARY
    try:
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "sqlite3"], capture_output=True,
                               text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        flags = ["-lsqlite3"]
    partial = f"{C_BINARY}.{os.getpid()}"
    subprocess.run(["cc", "-O2", "-o", partial, C_SOURCE, *flags], check=True)
    os.replace(partial, C_BINARY)
    return C_BINARY


# -- driving threads ----------------------------------------------------------

def percentiles(latencies: array) -> tuple[float, ...]:
    """p50, p99, p99.9 in microseconds (nearest rank)."""
    ordered, n = sorted(latencies), len(latencies)
    return tuple(ordered[min(n - 1, max(0, math.ceil(q * n) - 1))] / 1000 for q in (0.5, 0.99, 0.999))


def drive(buy: Callable[[str], str | None], workers: int, per_worker: int, *, first: int = 0,
          stride: int | None = None, gate: Callable[[], object] | None = None
          ) -> tuple[float, float, int, int, array]:
    """Run per_worker purchases on each of workers threads.

    Worker w buys for u{first + w}, u{first + w + stride}, ... (stride = all
    workers of the run, across processes). Returns (start, end, ok, storage
    errors, per-call latencies in ns); start and end are perf_counter values,
    comparable across processes (CLOCK_MONOTONIC).
    """
    stride = stride or workers
    users = [[f"u{first + w + k * stride}" for k in range(per_worker)] for w in range(workers)]
    latencies = [array("q", bytes(8 * per_worker)) for _ in range(workers)]
    tally = [[0, 0] for _ in range(workers)]
    barrier = threading.Barrier(workers + 1)

    def worker(index: int) -> None:
        mine, lat, clock = users[index], latencies[index], time.perf_counter_ns
        ok = errors = 0
        barrier.wait()
        for k, user in enumerate(mine):
            started = clock()
            try:
                outcome = buy(user)
            except StorageError:
                outcome = None
                errors += 1
            lat[k] = clock() - started
            ok += outcome == "ok"
        tally[index] = [ok, errors]

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in pool:
        thread.start()
    if gate is not None:
        gate()
    start = time.perf_counter()
    barrier.wait()
    for thread in pool:
        thread.join()
    end = time.perf_counter()
    merged = array("q")
    for chunk in latencies:
        merged.extend(chunk)
    return start, end, sum(t[0] for t in tally), sum(t[1] for t in tally), merged


def average_batch(counters: dict[str, Any]) -> float | None:
    batches = sum(counters["batches"].values())
    return sum(counters["purchases"].values()) / batches if batches else None


# -- configurations -----------------------------------------------------------

def run_c_loop(path: str, drop_id: int, mode: str, n: int, batch: int) -> Run:
    out = subprocess.run([build_c_loop(), path, str(drop_id), str(n), mode, str(batch)],
                         capture_output=True, text=True, check=True).stdout.split()
    return Run(path, drop_id, n, int(out[0]), float(out[1]))


def run_stdlib(path: str, drop_id: int, mode: str, n: int, bare: bool) -> Run:
    shop = StdlibBare(path, mode, price=PRICE) if bare else StdlibShop(path, mode)
    try:
        start, end, ok, errors, lat = drive(lambda user: shop.purchase(drop_id, user), 1, n)
    finally:
        shop.close()
    return Run(path, drop_id, n, ok, end - start, errors, percentiles(lat))


def buyer(engine: Engine, drop_id: int) -> Callable[[str], str]:
    """One purchase of one unit of drop_id for a user; its outcome."""
    purchase = engine.purchase

    def buy(user: str) -> str:
        return purchase(drop_id, user).outcome

    return buy


def run_engine(path: str, drop_id: int, mode: str, n: int, threads: int) -> Run:
    with Engine(path, synchronous=mode) as engine:
        per_worker = n // threads
        start, end, ok, errors, lat = drive(buyer(engine, drop_id), threads, per_worker)
        counters = engine.counters()
    return Run(path, drop_id, per_worker * threads, ok, end - start, errors, percentiles(lat),
               average_batch(counters), counters)


def process_child(path: str, drop_id: int, mode: str, index: int, procs: int, threads: int, per_worker: int,
                  barrier: Any, results: Any) -> None:
    """One of the processes of run_processes: its own Engine on the shared file."""
    try:
        with Engine(path, synchronous=mode) as engine:
            start, end, ok, errors, lat = drive(buyer(engine, drop_id), threads, per_worker, first=index * threads,
                                                stride=procs * threads, gate=barrier.wait)
            results.put((start, end, ok, errors, lat.tobytes(), engine.counters()))
    except BaseException as exc:
        results.put(exc)
        raise


def run_processes(path: str, drop_id: int, mode: str, n: int, procs: int, threads: int) -> Run:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(procs, timeout=120), ctx.Queue()
    per_worker = n // (procs * threads)
    children = [ctx.Process(target=process_child, args=(path, drop_id, mode, i, procs, threads, per_worker,
                                                         barrier, results)) for i in range(procs)]
    for child in children:
        child.start()
    reports: list[Any] = []
    deadline = time.monotonic() + 600
    try:
        while len(reports) < procs:
            try:
                reports.append(results.get(timeout=1))
            except queue.Empty:  # a child that died without a word (e.g. the engine's .so was being rebuilt)
                dead = [c.exitcode for c in children if c.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"a benchmark process died (exit codes {dead}) or hung: rerun") from None
    finally:
        for child in children:
            if len(reports) < procs:
                child.terminate()
            child.join(timeout=60)
    failed = [r for r in reports if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError(f"a benchmark process failed: {failed[0]!r}")
    lat = array("q")
    counters: dict[str, Any] = {"purchases": {}, "batches": {}}
    for *_, raw, theirs in reports:
        lat.frombytes(raw)
        for key, value in theirs.items():
            if isinstance(value, dict):
                for k, v in value.items():
                    counters[key][k] = counters[key].get(k, 0) + v
            else:
                counters[key] = counters.get(key, 0) + value
    seconds = max(r[1] for r in reports) - min(r[0] for r in reports)
    return Run(path, drop_id, per_worker * procs * threads, sum(r[2] for r in reports), seconds,
               sum(r[3] for r in reports) + counters["storage_errors"], percentiles(lat),
               average_batch(counters), counters)


Runner = Callable[[str, int, str, int], Run]
CONFIGS: list[tuple[str, str, Runner]] = [
    ("c1", "c_loop 1 purchase/tx", lambda p, d, m, n: run_c_loop(p, d, m, n, 1)),
    ("c64", "c_loop 64 purchases/tx", lambda p, d, m, n: run_c_loop(p, d, m, n, 64)),
    ("stdlib", "stdlib full purchase 1/tx", lambda p, d, m, n: run_stdlib(p, d, m, n, False)),
    ("bare", "stdlib bare UPDATE+INSERT 1/tx", lambda p, d, m, n: run_stdlib(p, d, m, n, True)),
    ("e1", "engine 1 thread", lambda p, d, m, n: run_engine(p, d, m, n, 1)),
    ("e16", "engine 16 threads", lambda p, d, m, n: run_engine(p, d, m, n, 16)),
    ("e64", "engine 64 threads", lambda p, d, m, n: run_engine(p, d, m, n, 64)),
    ("p2x8", "engine 2 procs x 8 threads", lambda p, d, m, n: run_processes(p, d, m, n, 2, 8)),
]
LABELS = {key: label for key, label, _ in CONFIGS}


# -- reporting ----------------------------------------------------------------

@dataclass
class Summary:
    rate: float  # best round
    lat: tuple[float | None, ...]  # p50, p99, p99.9: medians of the rounds
    batch: float | None
    errors: int
    rounds: list[float]
    best: Run


def summarize(runs: list[Run]) -> Summary:
    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None
    best = max(runs, key=lambda r: r.rate)
    lat = tuple(median([r.lat[i] if r.lat else None for r in runs]) for i in range(3))
    return Summary(best.rate, lat, median([r.batch for r in runs]), sum(r.errors for r in runs),
                   [r.rate for r in runs], best)


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: dict[tuple[str, str], list[Run]], modes: list[str], counts: dict[str, int]) -> None:
    print(f"{'mode':<6} {'configuration':<31} {'purchases/s':>11} {'x c1/tx':>8} {'p50 us':>8} {'p99 us':>8}"
          f" {'p99.9 us':>9} {'batch':>6}  rounds (k/s)")
    for mode in modes:
        reference = summarize(results[(mode, "c1")]).rate
        for key, label, _ in CONFIGS:
            s = summarize(results[(mode, key)])
            rounds = "/".join(f"{r / 1000:.1f}" for r in s.rounds)
            print(f"{mode:<6} {label:<31} {s.rate:>11,.0f} {s.rate / reference:>8.2f} {fmt(s.lat[0]):>8}"
                  f" {fmt(s.lat[1]):>8} {fmt(s.lat[2]):>9} {fmt(s.batch):>6}  {rounds}")
        print(f"{'':<6} ({counts[mode]:,} purchases per configuration and round)")


def print_counters(results: dict[tuple[str, str], list[Run]], modes: list[str]) -> None:
    print("\nengine counters, best round: lock wait per purchase, commit time per transaction, batch sizes")
    for mode in modes:
        for key in ("e1", "e16", "e64", "p2x8"):
            best = summarize(results[(mode, key)]).best
            c = best.counters
            hist = " ".join(f"{k}:{v}" for k, v in c["batches"].items() if v)
            print(f"  {mode:<6} {LABELS[key]:<27} wait {c['lock_wait_us'] / best.ok:5.1f} us  commit"
                  f" {c['commit_us'] / max(c['transactions'], 1):5.1f} us  errors {best.errors}  batches {hist}")


def targets(results: dict[tuple[str, str], list[Run]], invariant_ok: dict[str, bool]) -> list[str]:
    lines = []

    def ratio(mode: str, key: str, ref: str, factor: float) -> None:
        if (mode, key) in results and (mode, ref) in results:
            a, b = summarize(results[(mode, key)]).rate, summarize(results[(mode, ref)]).rate
            lines.append(f"{'PASS' if a >= factor * b else 'MISS'}  {LABELS[key]} {mode} >= {factor:g} x"
                         f" {LABELS[ref]} {mode}: {a:,.0f}/s = {a / b:.2f} x {b:,.0f}/s")

    ratio("NORMAL", "e1", "c1", 0.9)
    if ("NORMAL", "e1") in results:
        p99 = summarize(results[("NORMAL", "e1")]).lat[1]
        lines.append(f"{'PASS' if p99 is not None and p99 < 100 else 'MISS'}  engine 1 thread NORMAL purchase()"
                     f" p99 < 100 us: {fmt(p99)} us (median of the rounds)")
    ratio("NORMAL", "e16", "c1", 2.5)
    ratio("FULL", "e64", "bare", 12)
    for mode in ("NORMAL", "FULL"):
        if (mode, "p2x8") in results:
            runs = results[(mode, "p2x8")]
            errors = sum(r.errors for r in runs)
            held = sum(invariant_ok[r.path] for r in runs)
            lines.append(f"{'PASS' if errors == 0 and held == len(runs) else 'MISS'}  2 processes x 8 threads"
                         f" {mode}: {errors} storage errors, invariant holds on {held} of {len(runs)} files")
    return lines


def check_file(run: Run, bare: bool) -> tuple[bool, str]:
    """SPEC 3's invariant and sold == the ok purchases this run counted."""
    with Engine(run.path) as engine:
        problems = engine.check()
        sold = engine.get_drop(run.drop_id)["sold"]
    note = ""
    if bare:
        problems, missing = without_missing_holdings(problems, run.drop_id, run.ok)
        note = f" (bare baseline keeps no holdings: {missing:,} orders without one, as expected)"
    good = not problems and sold == run.ok
    detail = f"sold={sold:,} ok purchases={run.ok:,}" + (note if good else f" {problems[:3]}")
    if run.ok != run.attempted:
        detail += f" ({run.attempted - run.ok} of {run.attempted:,} calls did not answer ok)"
    return good, detail


# -- main -----------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, fewer purchases")
    parser.add_argument("--purchases", type=int, help="purchases per NORMAL configuration (FULL: a quarter)")
    parser.add_argument("--modes", default="NORMAL,FULL")
    parser.add_argument("--rounds", type=int, help="rounds per configuration (default 3, --quick 1)")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    modes = [m.strip().upper() for m in args.modes.split(",") if m.strip()]
    normal = args.purchases or (10_000 if args.quick else 40_000)
    # multiples of 64 so every thread count divides them
    counts = {m: (normal if m == "NORMAL" else max(normal // 4, 1024)) // 64 * 64 for m in modes}
    rounds = args.rounds or (1 if args.quick else 3)
    build_c_loop()
    folder = tempfile.mkdtemp(prefix="dropsvc-bench-")
    print(f"bench/engine_rates.py {time.strftime('%Y-%m-%d %H:%M')}  {os.cpu_count()} cores  Python"
          f" {platform.python_version()}  SQLite {SQLITE_VERSION}  load {os.getloadavg()[0]:.2f}")
    if os.getloadavg()[0] > 1.0:
        print(f"WARNING: the machine is busy (load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores):"
              " figures will be disturbed; rerun when it is quiet")
    print(f"{rounds} round(s) per configuration, interleaved; purchases/s = best round, latency and batch ="
          f" median of rounds; databases in {folder}\n")

    results: dict[tuple[str, str], list[Run]] = {}
    for mode in modes:
        for r in range(rounds):
            progress = []
            for key, _, runner in CONFIGS:
                path, drop_id = new_database(folder, f"{mode}-{key}-r{r + 1}", mode)
                run = runner(path, drop_id, mode, counts[mode])
                results.setdefault((mode, key), []).append(run)
                progress.append(f"{key} {run.rate / 1000:.1f}k")
            print(f"  {mode} round {r + 1}/{rounds}: " + ", ".join(progress), file=sys.stderr, flush=True)

    print_table(results, modes, counts)
    print_counters(results, modes)

    print("\ninvariant (SPEC 3) and sold == ok purchases, per file:")
    invariant_ok: dict[str, bool] = {}
    for (_, key), runs in results.items():
        for run in runs:
            good, detail = check_file(run, bare=key == "bare")
            invariant_ok[run.path] = good
            print(f"  {'holds ' if good else 'BROKEN'} {os.path.basename(run.path):<20} {detail}")

    print(f"\ntargets (issue \"engine throughput\"), from this run; load {os.getloadavg()[0]:.2f} at the end:")
    for line in targets(results, invariant_ok):
        print("  " + line)
    broken = [p for p, ok in invariant_ok.items() if not ok]
    if broken or args.keep:
        print(f"\ndatabases kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
