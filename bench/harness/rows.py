"""One measured row: what it was, its line in the table, the run's results.json."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.harness.meters import NOISY_PCT
from bench.harness.servers import GRANIAN_THREADS
from bench.harness.wrk import Load


@dataclass
class Row:
    kind: str  # ceiling-get, ceiling-409, purchases, sold-out, naive, redis, paced, paced-half, paced-ceiling
    label: str
    server: str
    workers: int
    mode: str  # NORMAL, FULL or "-"
    expected: int  # the status every answer should have
    load: Load
    rss_mb: float | None
    processes: int
    db: str | None = None
    others_pct: float = 0.0  # CPU share of other jobs on the machine during the load (see OthersMeter)

    @property
    def rps(self) -> float:
        return self.load.rps

    @property
    def unexpected(self) -> int:
        return self.load.answered - self.load.statuses.get(self.expected, 0)

    @property
    def clean(self) -> bool:
        return self.unexpected == 0 and not any(self.load.errors.values()) and self.load.answered > 0


HEADER = (f"{'row':<24} {'server':<9} {'w':>1} {'mode':<6} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>8} "
          f"{'p99/p50':>7} {'answers':<26} {'RssAnon MB':>10} {'others':>6}")


def describe_answers(row: Row) -> str:
    load = row.load
    text = f"{load.statuses.get(row.expected, 0):,}x{row.expected}"
    if row.unexpected:
        others = ",".join(f"{n:,}x{code}" for code, n in sorted(load.statuses.items()) if code != row.expected)
        text += f" !{others}"
    errors = {k: v for k, v in load.errors.items() if v}
    if errors:
        text += " !err " + ",".join(f"{k}={v}" for k, v in errors.items())
    return text


def print_row(row: Row) -> None:
    load = row.load
    rss = f"{row.rss_mb:.1f} ({row.processes}p)" if row.rss_mb is not None else "-"
    print(f"{row.label:<24} {row.server:<9} {row.workers:>1} {row.mode:<6} {load.rps:>9,.0f} {load.p50_ms:>7.2f} "
          f"{load.p99_ms:>8.2f} {load.p99_ms / load.p50_ms:>7.1f} {describe_answers(row):<26} {rss:>10} "
          f"{row.others_pct:>5.0f}%" + ("!" if row.others_pct > NOISY_PCT else "")
          + (f"  (late slots: {load.late})" if load.late else ""), flush=True)


def find(rows: list[Row], kind: str, server: str | None = None, workers: int | None = None,
         mode: str | None = None) -> list[Row]:
    return [r for r in rows if r.kind == kind and (server is None or r.server == server)
            and (workers is None or r.workers == workers) and (mode is None or r.mode == mode)]


def config_name(row: Row) -> str:
    threads = f" x{GRANIAN_THREADS} threads" if row.server == "granian" else ""
    return f"{row.server} --workers {row.workers}{threads}"



def write_results(logs: Path, stamp: str, args: argparse.Namespace, rows: list[Row]) -> None:
    (logs / "results.json").write_text(json.dumps(
        {"when": stamp, "args": vars(args), "rows": [asdict(r) for r in rows]}, indent=1, default=str))
