"""The loads of a run: a warm-up and a measured wrk load per row, on a quiet machine if it can be."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness.databases import Database, new_database
from bench.harness.meters import NOISY_PCT, OthersMeter, RssSampler
from bench.harness.rows import Row, print_row
from bench.harness.servers import Server
from bench.harness.wrk import Load, run_wrk


@dataclass
class Runner:
    """What a run measured so far: its rows and the databases it made; ``args``: duration, warmup, wrk_threads."""

    args: argparse.Namespace
    folder: Path  # databases
    logs: Path
    rows: list[Row] = field(default_factory=list)
    databases: list[Database] = field(default_factory=list)
    counter: int = 0
    retries_left: int = 6  # noisy loads run again, at most this many in a run
    retried: int = 0
    quiet_budget: float = 30.0  # seconds the run may spend waiting for a quiet machine

    def wait_quiet(self, pgids: list[int], longest: float = 5.0) -> None:
        """Wait until other jobs use at most NOISY_PCT of the CPU over half a second (bounded per call and run)."""
        deadline = time.monotonic() + min(longest, self.quiet_budget)
        started = time.monotonic()
        while time.monotonic() < deadline:
            with OthersMeter(pgids) as meter:
                time.sleep(0.5)
            if meter.percent <= NOISY_PCT:
                break
        self.quiet_budget = max(0.0, self.quiet_budget - (time.monotonic() - started))

    def prefix(self) -> str:
        self.counter += 1
        return f"r{self.counter}"

    def measure(self, server: Server, kind: str, label: str, expected: int, *, srv: str, workers: int,
                mode: str = "-", wrk_mode: str = "post", path: str = "/api/drops/1/purchases",
                rate: int | None = None, seconds: float | None = None, db: Database | None = None,
                also: list[int] | None = None, listed: str | None = None) -> Row:
        """A short warm-up load, then the measured one (RssAnon sampled during both).

        Waits (briefly) for the machine to be quiet first; a load during which other jobs took more
        than NOISY_PCT of the CPU is run once more (while the run's retry budget lasts), and the
        quieter of the two is kept.
        """
        args = self.args
        seconds = seconds or args.duration
        pgids = [server.pgid, *(also or [])]
        loads: list[Load] = []
        best: tuple[Load, float] | None = None
        with RssSampler(server.pgid) as rss:
            if args.warmup > 0:
                loads.append(run_wrk(server.port, args.warmup, args.wrk_threads, mode=wrk_mode, path=path,
                                     prefix=self.prefix(), rate=rate, listed=listed))
            for attempt in range(2):
                self.wait_quiet(pgids)
                with OthersMeter(pgids) as others:
                    load = run_wrk(server.port, seconds, args.wrk_threads, mode=wrk_mode, path=path,
                                   prefix=self.prefix(), rate=rate, listed=listed)
                loads.append(load)
                if best is None or others.percent < best[1]:
                    best = (load, others.percent)
                if others.percent <= NOISY_PCT or attempt == 1 or self.retries_left <= 0:
                    break
                self.retries_left -= 1
                self.retried += 1
        assert best is not None
        load, noise = best
        if db is not None:
            for each in loads:
                if path.startswith(f"/api/drops/{db.sold_out_drop}/"):
                    db.sold_out_201s += each.statuses.get(201, 0)
                else:
                    db.ok += each.statuses.get(201, 0)
                db.in_flight += each.in_flight
        row = Row(kind, label, srv, workers, mode, expected, load, rss.peak_mb, len(rss.peak),
                  db.path if db else None, noise)
        self.rows.append(row)
        print_row(row)
        return row

    # -- the configurations --

    def new_db(self, kind: str, label: str, sold_out: bool = False) -> Database:
        db = new_database(self.folder, kind, label, sold_out)
        self.databases.append(db)
        return db
