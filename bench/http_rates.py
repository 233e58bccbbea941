"""HTTP purchases/s of `dropsvc serve` against its server's ceilings, a naive app and Redis+Lua, in one run.

Usage: python -m bench.http_rates [--quick] [--duration S] [--warmup S] [--paced-duration S]
                                  [--servers bjoern,meinheld,granian] [--full-servers ...] [--workers 1,2]
                                  [--modes NORMAL,FULL] [--wrk-threads N] [--keep]

wrk on loopback, 64 connections, bench/lua/buyers.lua (every purchase a
distinct buyer: user_id from a per-thread counter). For every server
configuration (server x workers; granian with --threads 16):
  ceiling GET        bench/baselines/ceiling_app.py: GET /hello, a trivial JSON object
  ceiling POST 409   the same app: the purchase POST, body read and parsed (orjson), a fixed 409
  purchases          `dropsvc serve`, a drop whose stock never runs out: 201s (NORMAL and FULL)
  sold out           the same server, a drop whose only unit is sold: 409s
then the baselines (one process, and two):
  naive              bench/baselines/naive_app.py: Falcon defaults + stdlib sqlite3, bare UPDATE+INSERT
  redis+lua          bench/baselines/redis_app.py: Falcon + redis-py, one EVALSHA per purchase
and a paced load (10,000 purchases/s through wrk's delay()) on the fastest NORMAL configuration,
after the same server's fixed-409 ceiling at the same pace (the latency floor of wrk and the
server on this machine), and at half its flat-out rate too when 10,000/s is close to flat out.
Each row: requests/s, p50/p99 latency, answers by status, peak RssAnon per server process, and
the CPU share other jobs took meanwhile (a noisy load is run once more, the quieter kept).
Ends by checking SPEC 3's invariant on every database the run made and that
sold == the 201s wrk counted (exit 1 if broken), then prints the targets of
the issue as PASS/MISS from this run's own figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from bench.harness import ROOT, results_folder, scratch_folder
from bench.harness.databases import STOCK, Database, check_database, check_redis
from bench.harness.loads import Runner
from bench.harness.meters import NOISY_PCT, OthersMeter, loadavg
from bench.harness.rows import HEADER, Row, config_name, find, write_results
from bench.harness.servers import (
    ceiling_server,
    dropsvc_server,
    naive_server,
    redis_app_server,
    redis_server,
    running,
)
from bench.harness.wrk import CONNECTIONS

PACED_RATE = 10_000
RSS_TARGET_MB = 45.0


@dataclass
class Bench(Runner):
    """The configurations of the run, each measured into ``rows``."""

    full_servers: list[str] = field(default_factory=list)  # servers measured in FULL too
    redis_checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def configuration(self, srv: str, workers: int, modes: list[str]) -> None:
        """One server configuration: its ceilings, then dropsvc in each mode.

        The ceiling app and `dropsvc serve` NORMAL run side by side (the idle one costs nothing), so
        the fixed-409 ceiling and the sold-out answers are measured one right after the other.
        """
        with contextlib.ExitStack() as stack:
            ceiling = stack.enter_context(running(ceiling_server(srv, workers, self.logs)))
            service = db = None
            if "NORMAL" in modes:
                db = self.new_db("dropsvc", f"dropsvc {srv} w{workers} NORMAL", sold_out=True)
                service = stack.enter_context(running(dropsvc_server(srv, workers, "NORMAL", db, self.logs)))
            idle = [service.pgid] if service else []
            self.measure(ceiling, "ceiling-get", "ceiling GET /hello", 200, srv=srv, workers=workers,
                         wrk_mode="get", path="/hello", also=idle)
            self.measure(ceiling, "ceiling-409", "ceiling POST fixed 409", 409, srv=srv, workers=workers, also=idle)
            if service and db:
                self.measure(service, "sold-out", "sold out (409)", 409, srv=srv, workers=workers, mode="NORMAL",
                             path=f"/api/drops/{db.sold_out_drop}/purchases", db=db, also=[ceiling.pgid])
                self.measure(service, "purchases", "purchases", 201, srv=srv, workers=workers, mode="NORMAL",
                             db=db, also=[ceiling.pgid])
        for mode in modes:
            if mode != "NORMAL" and (mode != "FULL" or srv in self.full_servers):
                db = self.new_db("dropsvc", f"dropsvc {srv} w{workers} {mode}")
                with running(dropsvc_server(srv, workers, mode, db, self.logs)) as service:
                    self.measure(service, "purchases", "purchases", 201, srv=srv, workers=workers, mode=mode, db=db)

    def paced(self, srv: str, workers: int, rate: int) -> None:
        """Purchases at a fixed rate (wrk's delay()) on a fresh database, NORMAL.

        At 10,000/s the same server's fixed-409 ceiling is paced too, right before: the latency
        floor of this load generator and server on this machine, for the purchases' tail to be
        read against.
        """
        db = self.new_db("dropsvc", f"dropsvc {srv} w{workers} NORMAL paced {rate}")
        with contextlib.ExitStack() as stack:
            if rate == PACED_RATE:
                ceiling = stack.enter_context(running(ceiling_server(srv, workers, self.logs)))
                self.measure(ceiling, "paced-ceiling", f"ceiling POST fixed 409 paced {rate:,}/s", 409, srv=srv,
                             workers=workers, rate=rate, seconds=self.args.paced_duration)
            service = stack.enter_context(running(dropsvc_server(srv, workers, "NORMAL", db, self.logs)))
            self.measure(service, "paced" if rate == PACED_RATE else "paced-half", f"purchases paced {rate:,}/s",
                         201, srv=srv, workers=workers, mode="NORMAL", rate=rate, seconds=self.args.paced_duration,
                         db=db)

    def naive(self, workers: int, mode: str) -> None:
        label = f"naive bjoern w{workers} {mode}"
        db = self.new_db("naive", label)
        with running(naive_server(label, workers, mode, db.path, self.logs)) as server:
            self.measure(server, "naive", "naive Falcon+sqlite3", 201, srv="bjoern", workers=workers, mode=mode,
                         db=db)

    def redis(self, workers_list: list[int]) -> None:
        import redis

        folder = self.folder / "redis"
        folder.mkdir(exist_ok=True)
        with running(redis_server(folder, self.logs)) as store:
            client = redis.Redis(port=store.port)
            client.ping()
            for workers in workers_list:
                label = f"redis+lua bjoern w{workers}"
                tally = Database("redis", label, "")
                with running(redis_app_server(label, workers, store.port, STOCK, self.logs)) as server:
                    self.measure(server, "redis", "redis+lua (EVALSHA)", 201, srv="bjoern", workers=workers,
                                 db=tally, also=[store.pgid])
                self.redis_checks.append(check_redis(client, tally))


# -- targets ------------------------------------------------------------------------------------


def pass_miss(ok: bool | None, text: str, *rows: Row | None) -> str:
    """One target's line; flagged when a row it rests on ran while other jobs took the CPU."""
    noisy = [r.others_pct for r in rows if r is not None and r.others_pct > NOISY_PCT]
    flag = f" [noisy: other jobs took up to {max(noisy):.0f}% of the CPU meanwhile]" if noisy else ""
    return f"{'PASS' if ok else 'MISS'}  {text}{flag}"


def targets(rows: list[Row], normal_best: Row | None, full_best: Row | None) -> list[str]:
    lines = []
    naive_normal = max(find(rows, "naive", mode="NORMAL"), key=lambda r: r.rps, default=None)
    naive_full = max(find(rows, "naive", mode="FULL"), key=lambda r: r.rps, default=None)
    redis_best = max(find(rows, "redis"), key=lambda r: r.rps, default=None)
    if normal_best and naive_normal:
        x = normal_best.rps / naive_normal.rps
        lines.append(pass_miss(x >= 1.5, f"purchases/s NORMAL >= 1.5 x naive: {normal_best.rps:,.0f} "
                               f"({config_name(normal_best)}) = {x:.2f} x {naive_normal.rps:,.0f} "
                               f"(naive, {naive_normal.workers} process{'es' if naive_normal.workers > 1 else ''})",
                               normal_best, naive_normal))
    if normal_best and redis_best:
        x = normal_best.rps / redis_best.rps
        lines.append(pass_miss(x >= 5, f"purchases/s NORMAL >= 5 x Redis+Lua: {normal_best.rps:,.0f} = {x:.2f} x "
                               f"{redis_best.rps:,.0f} (redis+lua, {redis_best.workers} process"
                               f"{'es' if redis_best.workers > 1 else ''})", normal_best, redis_best))
    if full_best and naive_full:
        x = full_best.rps / naive_full.rps
        lines.append(pass_miss(x >= 4, f"purchases/s FULL >= 4 x naive FULL: {full_best.rps:,.0f} "
                               f"({config_name(full_best)}) = {x:.2f} x {naive_full.rps:,.0f}", full_best, naive_full))
    if full_best:
        same = find(rows, "purchases", full_best.server, full_best.workers, "NORMAL")
        if same:
            x = full_best.rps / same[0].rps
            lines.append(pass_miss(x >= 0.5, f"purchases/s FULL >= 0.5 x the same configuration NORMAL: "
                                   f"{full_best.rps:,.0f} = {x:.2f} x {same[0].rps:,.0f} ({config_name(full_best)})",
                                   full_best, same[0]))
    if normal_best:
        sold_out = find(rows, "sold-out", normal_best.server, normal_best.workers, "NORMAL")
        ceiling = find(rows, "ceiling-409", normal_best.server, normal_best.workers)
        if sold_out and ceiling:
            x = sold_out[0].rps / ceiling[0].rps
            lines.append(pass_miss(x >= 0.8, f"sold-out 409s/s >= 0.8 x fixed-409 ceiling: {sold_out[0].rps:,.0f} = "
                                   f"{x:.2f} x {ceiling[0].rps:,.0f} ({config_name(normal_best)})",
                                   sold_out[0], ceiling[0]))
    paced = find(rows, "paced")
    if paced:
        p = paced[0]
        reached = p.rps >= 0.95 * PACED_RATE
        floor = find(rows, "paced-ceiling", p.server, p.workers)
        lines.append(pass_miss(p.load.p99_ms <= 1.0 and reached,
                               f"paced {PACED_RATE:,} purchases/s: p99 <= 1 ms: p99 {p.load.p99_ms:.2f} ms, p50 "
                               f"{p.load.p50_ms:.2f} ms at {p.rps:,.0f}/s reached ({config_name(p)} {p.mode})"
                               + ("" if reached else " - the target rate was not reached")
                               + (f"; the fixed-409 ceiling at the same pace: p99 {floor[0].load.p99_ms:.2f} ms, "
                                  f"p50 {floor[0].load.p50_ms:.2f} ms" if floor else ""), p))
    if normal_best:
        ratio = normal_best.load.p99_ms / normal_best.load.p50_ms
        lines.append(pass_miss(ratio <= 3, f"64 connections flat out: p99 <= 3 x p50: {normal_best.load.p99_ms:.2f} ms "
                               f"= {ratio:.1f} x {normal_best.load.p50_ms:.2f} ms ({config_name(normal_best)} NORMAL)",
                               normal_best))
    service = [r for r in rows if r.kind in ("purchases", "sold-out", "paced", "paced-half") and r.rss_mb is not None]
    if service:
        worst = max(service, key=lambda r: r.rss_mb or 0.0)
        lines.append(pass_miss((worst.rss_mb or 0) <= RSS_TARGET_MB,
                               f"peak RssAnon per worker <= {RSS_TARGET_MB:g} MB: {worst.rss_mb:.1f} MB at most "
                               f"({worst.label}, {config_name(worst)} {worst.mode}; {len(service)} rows)"))
    for srv in ("meinheld", "granian"):
        served = [r for r in rows if r.server == srv and r.kind in ("purchases", "sold-out")]
        if served:
            clean = all(r.clean for r in served)
            lines.append(pass_miss(clean, f"{srv} serves the benchmark's purchases: {len(served)} rows, "
                                   + ("every answer as expected, no socket error" if clean else
                                      "unexpected answers or socket errors (see the table)")
                                   + " (the suite's HTTP tests on it: tests/, not this run)"))
    readme = (ROOT / "README.md").read_text(errors="replace") if (ROOT / "README.md").exists() else ""
    section = re.search(r"^(#+) [^\n]*perform[^\n]*\n(.*?)(?=^#{1,2} |\Z)", readme, re.M | re.S | re.I)
    has_table = section is not None and re.search(r"^\|.*\|\s*$", section.group(2), re.M) is not None
    lines.append(pass_miss(has_table, "README.md has a performance section with a table (file check; the full "
                           "tables: bench/README.md)"))
    return lines


# -- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s loads, workers 1 only")
    # wrk takes whole seconds
    parser.add_argument("--duration", type=int, help="seconds per measured load (default 5; --quick 2)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up load before each, 0 for none (default 1)")
    parser.add_argument("--paced-duration", type=int, help="seconds of the paced load (default 10; --quick 3)")
    parser.add_argument("--servers", default="bjoern,meinheld,granian")
    parser.add_argument("--workers", help="worker counts (default 1,2; --quick 1)")
    parser.add_argument("--modes", default="NORMAL,FULL")
    parser.add_argument("--full-servers", default="bjoern,meinheld,granian",
                        help="servers measured in FULL too (default all)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    args.duration = args.duration or (2 if args.quick else 5)
    args.warmup = args.warmup if args.warmup is not None else 1
    args.paced_duration = args.paced_duration or (3 if args.quick else 10)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    full_servers = [s.strip() for s in args.full_servers.split(",") if s.strip()]
    workers_list = [int(w) for w in (args.workers or ("1" if args.quick else "1,2")).split(",")]
    modes = [m.strip().upper() for m in args.modes.split(",") if m.strip()]
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: `make bench-http` installs it (apt-get install wrk redis-server)")
            return 2

    stamp, logs = results_folder("http")
    with scratch_folder("http", args.keep) as folder:
        bench = Bench(args, folder, logs, full_servers=full_servers)
        started = time.monotonic()
        wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
        print(f"HTTP benchmark {datetime.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores shared by wrk and the "
              f"servers; {wrk_version.split(' Copyright')[0]}, -t{args.wrk_threads} -c{CONNECTIONS}, "
              f"{args.warmup:g} s warm-up + {args.duration:g} s per row; load average {loadavg()}")
        with OthersMeter([]) as idle:
            time.sleep(1.0)
        if idle.percent > NOISY_PCT:
            print(f"  ! other jobs were using {idle.percent:.0f}% of the CPU at the start: "
                  "figures may be low and noisy")
        print("every purchase is a distinct buyer; answers: count x status (! = unexpected); RssAnon: peak per "
              "server process (processes sampled); others: CPU share used by other jobs on the machine during the "
              f"load (! over {NOISY_PCT:g}%: that row's figures are suspect)")
        print(HEADER)
        print("-" * len(HEADER))

        # SIGTERM (make interrupted, say) unwinds through the finally blocks that stop the servers
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
        try:
            for srv in servers:
                for workers in workers_list:
                    bench.configuration(srv, workers, modes)
            for mode in modes:
                bench.naive(1, mode)
            if "NORMAL" in modes and max(workers_list) > 1:
                bench.naive(2, "NORMAL")
            bench.redis(workers_list)
            purchases = find(bench.rows, "purchases")
            normal_best = max(find(purchases, "purchases", mode="NORMAL"), key=lambda r: r.rps, default=None)
            full_best = max(find(purchases, "purchases", mode="FULL"), key=lambda r: r.rps, default=None)
            if normal_best:
                bench.paced(normal_best.server, normal_best.workers, PACED_RATE)
                if normal_best.rps < PACED_RATE / 0.8:  # 10k/s is (nearly) flat out here: the tail at half load too
                    bench.paced(normal_best.server, normal_best.workers, int(normal_best.rps / 2 / 100) * 100)
        finally:
            elapsed = time.monotonic() - started
        print("-" * len(HEADER))
        print(f"load average at the end {loadavg()}; {elapsed:.0f} s")
        if bench.retried:
            print(f"  {bench.retried} noisy loads were run again (the quieter kept)")
        noisy = [r for r in bench.rows if r.others_pct > NOISY_PCT]
        if noisy:
            print(f"  ! {len(noisy)} of {len(bench.rows)} rows ran while other jobs took over {NOISY_PCT:g}% of the "
                  f"CPU (worst {max(r.others_pct for r in noisy):.0f}%): their figures are low; "
                  "rerun on a quiet machine")

        rows = bench.rows
        print()
        print("ratios (same run):")
        for kind, against, title in (("purchases", "ceiling-get", "purchases / GET ceiling"),
                                     ("sold-out", "ceiling-409", "sold-out / 409 ceiling")):
            for row in find(rows, kind):
                ceiling = find(rows, against, row.server, row.workers)
                if ceiling:
                    print(f"  {title:<25} {config_name(row):<34} {row.mode:<6} {row.rps / ceiling[0].rps:5.2f}")
        naive_normal = find(rows, "naive", workers=1, mode="NORMAL")
        naive_full = find(rows, "naive", workers=1, mode="FULL")
        redis_rows = find(rows, "redis", workers=1)
        for row in find(rows, "purchases"):
            naive = naive_normal if row.mode == "NORMAL" else naive_full
            parts = []
            if naive:
                parts.append(f"/ naive {row.mode} {row.rps / naive[0].rps:5.2f}")
            if redis_rows:
                parts.append(f"/ redis {row.rps / redis_rows[0].rps:5.2f}")
            if row.mode == "FULL":
                same = find(rows, "purchases", row.server, row.workers, "NORMAL")
                if same:
                    parts.append(f"FULL / NORMAL {row.rps / same[0].rps:5.2f}")
            print(f"  purchases {config_name(row):<34} {row.mode:<6} " + "   ".join(parts))

        print()
        for mode in ("NORMAL", "FULL"):
            ranked = sorted(find(rows, "purchases", mode=mode), key=lambda r: -r.rps)
            if ranked:
                print(f"fastest on purchases, {mode}: {config_name(ranked[0])} ({ranked[0].rps:,.0f}/s); then "
                      + ", ".join(f"{config_name(r)} {r.rps:,.0f}" for r in ranked[1:]))
        if normal_best and full_best:
            print(f"default per durability mode: NORMAL -> --server {normal_best.server} "
                  f"--workers {normal_best.workers}; FULL -> --server {full_best.server} --workers {full_best.workers}")

        print()
        print("invariant (SPEC 3) on every database the run made, and sold == the 201s wrk counted:")
        broken = 0
        for db in bench.databases:
            good, detail = check_database(db)
            broken += not good
            print(f"  {'ok    ' if good else 'BROKEN'} {db.label}: {detail}")
        for label, good, detail in bench.redis_checks:
            broken += not good
            print(f"  {'ok    ' if good else 'BROKEN'} {label}: {detail}")

        print()
        print("targets (issue 5, 'Done when'), from this run's figures:")
        for line in targets(rows, normal_best, full_best):
            print("  " + line)

        write_results(logs, stamp, args, rows)
        print(f"\nserver logs and results.json: {logs.relative_to(ROOT)}")
        if broken:
            print(f"{broken} database(s) BROKEN")
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main())
