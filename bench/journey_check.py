"""`make bench-locust`: shoppers under load with locust (bench/locustfile.py), then the checks.

Usage: python -m bench.journey_check [--users 200] [--spawn-rate 50] [--run-time 30]
                                     [--server S] [--workers N] [--stock 1000] [--limit 2] [--keep]

1. a fresh database with one drop (``locust-drop``: 1,000 units, per_user_limit 2);
2. ``dropsvc serve`` on a free loopback port (default server, 2 workers);
3. locust headless, bounded in users and time; its stats table is printed and
   its CSV written under bench/results/locust-<time>/;
4. the service stopped (SIGTERM, then SIGKILL), then on the database:
   SPEC 3's invariant (``Engine.check() == []``); every shopper holds at most
   per_user_limit units (reserved + paid); no idempotency key on two orders;
   every key's answers (first try, retries, double clicks) named one and the
   same order, and that order is the one the database holds for the key;
   no 5xx answered.
Exit 1 if any check fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.harness import PYTHON, ROOT, results_folder
from bench.harness.servers import Server, free_port, running
from dropsvc import Engine

SLUG = "locust-drop"


def check(db: str, drop_id: int, limit: int, log_path: Path, stats_csv: Path) -> list[tuple[bool, str]]:
    results: list[tuple[bool, str]] = []
    with Engine(db) as engine:
        problems = engine.check()
        drop = engine.get_drop(drop_id)
        results.append((not problems, f"invariant (SPEC 3): sold={drop['sold']} of {drop['total_stock']}"
                        + (f"; {problems[:5]}" if problems else ", sold == reserved + paid")))
        over = engine.read("SELECT user_id, SUM(quantity) AS held FROM orders WHERE drop_id = ? AND status IN"
                           " ('reserved', 'paid') GROUP BY user_id HAVING SUM(quantity) > ?", (drop_id, limit))
        shoppers = engine.read("SELECT COUNT(DISTINCT user_id) AS n FROM orders WHERE drop_id = ?", (drop_id,))[0]["n"]
        results.append((not over, f"per_user_limit {limit}: {shoppers} shoppers with orders, "
                        f"{len(over)} holding more" + (f": {over[:5]}" if over else "")))
        twice = engine.read("SELECT idempotency_key, COUNT(*) AS n FROM orders WHERE drop_id = ? AND"
                            " idempotency_key IS NOT NULL GROUP BY idempotency_key HAVING COUNT(*) > 1", (drop_id,))
        orders = engine.read("SELECT id, idempotency_key, user_id, status FROM orders WHERE drop_id = ?", (drop_id,))
        by_key = {row["idempotency_key"]: row for row in orders if row["idempotency_key"] is not None}
        statuses: dict[str, int] = defaultdict(int)
        for row in orders:
            statuses[row["status"]] += 1
        results.append((not twice, f"no key on two orders: {len(by_key)} keyed orders "
                        f"({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))})"
                        + (f"; TWICE: {twice[:5]}" if twice else "")))
        answers: dict[str, set[str]] = defaultdict(set)
        retried: set[str] = set()
        lines = 0
        server_errors = 0
        timeouts = 0
        outcomes: dict[str, int] = defaultdict(int)
        last_status: dict[str, int] = {}
        for line in log_path.read_text().splitlines() if log_path.exists() else []:
            entry = json.loads(line)
            lines += 1
            if entry["attempt"] > 0:
                retried.add(entry["key"])
            if entry["ref"]:
                answers[entry["key"]].add(entry["ref"])
            if entry["status"] >= 500:
                server_errors += 1
            if entry["status"] == 0:
                timeouts += 1
            outcomes[f"{entry['status']}" + (f" {entry['code']}" if entry.get("code") else "")] += 1
            last_status[entry["key"]] = entry["status"]
        split = {key: refs for key, refs in answers.items() if len(refs) > 1}
        wrong = []
        for key, refs in answers.items():
            row = by_key.get(key)
            if row is None or engine.public_ref(row["id"]) not in refs:
                wrong.append(key)
        results.append((lines > 0 and not split and not wrong,
                        f"same key, same order: {lines} purchase answers logged, {len(answers)} keys answered with"
                        f" an order, {len(retried)} sent again (retries after timeouts/5xx and double clicks);"
                        f" {len(split)} keys answered with two orders, {len(wrong)} answers not matching the"
                        f" database" + (f"; e.g. {sorted(split)[:3] or wrong[:3]}" if split or wrong else "")))
        results.append((True, "purchase answers: " + ", ".join(f"{n} x {k}" for k, n in sorted(outcomes.items()))
                        + " (0 = no answer: the client gave up)"))
        # a retry that overtook its own first try (still queued in another worker) is refused, then the
        # first try buys: the shopper holds an order it was told it did not get. A race, not a double sale.
        unseen = [k for k, status in last_status.items() if status not in (200, 201) and k in by_key]
        results.append((True, f"keys whose last answer was not the order yet the database holds one: {len(unseen)}"
                        " (a retry that overtook its own first try)"))
    failures_5xx = 0
    failures_csv = stats_csv.with_name(stats_csv.name.replace("_stats.csv", "_failures.csv"))
    if failures_csv.exists():
        with open(failures_csv) as f:
            for row in csv.DictReader(f):
                if "status 5" in row["Error"]:
                    failures_5xx += int(row["Occurrences"])
    results.append((server_errors == 0 and failures_5xx == 0,
                    f"no 5xx: {server_errors} purchase answers 5xx, {failures_5xx} 5xx in locust's failures;"
                    f" {timeouts} purchase tries without an answer (timeouts)"))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--spawn-rate", type=float, default=50)
    parser.add_argument("--run-time", type=int, default=30, help="seconds")
    parser.add_argument("--server", help="dropsvc serve --server (default: the service's default)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--synchronous", default="NORMAL")
    parser.add_argument("--stock", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=2, help="per_user_limit")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    _, out = results_folder("locust")
    folder = Path(tempfile.mkdtemp(prefix="dropsvc-locust-"))
    db = str(folder / "journey.db")
    with Engine(db) as engine:
        drop_id = engine.create_drop(slug=SLUG, name="Locust drop", price=250_000, total_stock=args.stock,
                                     per_user_limit=args.limit)
    port = free_port()
    argv = [PYTHON, "-m", "dropsvc", "serve", "--db", db, "--port", str(port), "--workers", str(args.workers),
            "--synchronous", args.synchronous]
    if args.server:
        argv += ["--server", args.server]
    log_path = out / "purchases.jsonl"
    print(f"locust: {args.users} shoppers at a time (spawn {args.spawn_rate:g}/s) for {args.run_time} s against "
          f"`dropsvc serve --workers {args.workers}{' --server ' + args.server if args.server else ''}` on a drop of "
          f"{args.stock} units, per_user_limit {args.limit}")
    env = dict(os.environ, LOCUST_DROP_SLUG=SLUG, LOCUST_REF_LOG=str(log_path))
    locust = [str(Path(PYTHON).with_name("locust")), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
              "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.run_time}s",
              "--host", f"http://127.0.0.1:{port}", "--csv", str(out / "journey"), "--only-summary",
              "--stop-timeout", "5", "--exit-code-on-error", "0", "--loglevel", "WARNING"]
    with running(Server("dropsvc serve (locust)", argv, port, out)):
        done = subprocess.run(locust, cwd=ROOT, env=env, timeout=args.run_time + 120)
    if done.returncode != 0:
        print(f"locust exited with {done.returncode}")
    print()
    print("checks on the database and the shoppers' answers:")
    results = check(db, drop_id, args.limit, log_path, out / "journey_stats.csv")
    for good, text in results:
        print(f"  {'ok    ' if good else 'BROKEN'} {text}")
    print(f"\nlocust CSV and the purchase log: {out.relative_to(ROOT)}")
    if args.keep:
        print(f"database kept: {db}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if all(good for good, _ in results) and done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
