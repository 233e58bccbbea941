"""`make bench-herd`: 5,000 shoppers and 200 bots against one drop of 100 units, `open` then `queue`.

Usage: python -m bench.herd [--shoppers 5000] [--bots 200] [--stock 100] [--hold-seconds 10]
                            [--seed 1] [--lead 15] [--modes open,queue] [--keep] ...

Per mode, on a fresh database with the PayOS sandbox and `dropsvc serve` on loopback: the
bots arrive the instant the drop is made and fire purchases at its start with no delay,
retrying at once; the shoppers arrive at random moments before the start (population seed
``--seed``) with 50-500 ms of network and reaction time before each step. `open`: everyone
fires at the start, then watches the drop as the page does. `queue`: everyone joins and
checks in; shoppers poll the queue document, view their ticket when it says their turn may
have come, and buy when admitted; bots fire purchases with their ticket at the start and
retry at once. 70 % of reservations are paid through the sandbox, the rest expire.

Printed per mode: answers, final states, the checks (invariant, oversell, the finish, every
person in a final state; queue: bots' share <= 10 % and `dropsvc verify-fairness`); then the
table for the README. Exit 1 if a check fails.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench.harness import results_folder
from bench.harness.meters import loadavg
from bench.herd.report import figures, print_run, table, write_people
from bench.herd.run import Settings, run_mode
from dropsvc.config import DEFAULT_SERVER

MODES = ("open", "queue")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=5000)
    parser.add_argument("--bots", type=int, default=200)
    parser.add_argument("--stock", type=int, default=100)
    parser.add_argument("--hold-seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1, help="the population's random seed")
    parser.add_argument("--lead", type=float, default=15.0, help="seconds from the drop's creation to its start")
    parser.add_argument("--pay-share", type=float, default=0.7, help="share of reservations paid")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds after the start before giving up")
    parser.add_argument("--modes", default=",".join(MODES), help="open,queue")
    parser.add_argument("--server", default=DEFAULT_SERVER["NORMAL"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pool", type=int, default=256, help="the shoppers' keep-alive connections")
    parser.add_argument("--bot-pool", type=int, default=0, help="the bots' keep-alive connections (0: one a bot)")
    parser.add_argument("--bot-pause-ms", type=float, default=0.0, help="a bot's pause before a retry")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args(argv)
    if any(mode not in MODES for mode in args.modes.split(",")):
        parser.error(f"--modes takes {','.join(MODES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    cfg = Settings(args.shoppers, args.bots, args.stock, args.hold_seconds, args.seed, args.lead, args.pay_share,
                   args.timeout, args.server, args.workers, args.pool, max(1, args.bot_pool or args.bots),
                   args.bot_pause_ms / 1000)
    _, logs = results_folder("herd")
    folder = Path(tempfile.mkdtemp(prefix="dropsvc-herd-"))
    print(f"herd: {cfg.shoppers:,} shoppers + {cfg.bots:,} bots, {cfg.stock} units, per_user_limit "
          f"{cfg.per_user_limit}, hold {cfg.hold_seconds} s, seed {cfg.seed}, start {cfg.lead:g} s after the drop "
          f"is made; `dropsvc serve --server {cfg.server} --workers {cfg.workers}`; load {loadavg()}")
    runs = []
    try:
        for mode in args.modes.split(","):
            runs.append(figures(run_mode(mode, cfg, folder, logs)))
            print_run(runs[-1])
            print(f"  every person's final state: {write_people(runs[-1].outcome, logs)}")
    finally:
        if args.keep:
            print(f"\ndatabases kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{table(runs)}\n\nserver logs: {logs}; load at the end {loadavg()}")
    broken = [text for fig in runs for good, text in fig.checks if not good]
    for text in broken:
        print(f"BROKEN ({text})")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
