"""The cost targets of a queue drop's reads (SPEC 11, issue 13), against the same server's ceilings, in one run.

Usage: python -m bench.queue_rates [--duration S] [--warmup S] [--server bjoern] [--workers 1] [--buyers N]
                                   [--pairs N] [--wrk-threads N] [--keep]

wrk on loopback, 64 connections, bench/lua/buyers.lua. One database (made by the engine): an open
drop, a sold-out drop (its only unit sold) and a queue drop of 100 units whose line has ``--buyers``
tickets (default 2,000), every one checked in, the close recorded and the first wave admitted
(windows of an hour: nothing moves during the run). Rows, one server configuration:
  ceiling GET        bench/baselines/ceiling_app.py: GET /hello, the trivial-GET ceiling
  healthz            `dropsvc serve`: GET /healthz (the service's own trivial GET, through Falcon)
  queue document     GET /api/drops/{line}/queue, and again with If-None-Match (304)
  ticket view        GET /api/drops/{line}/tickets/{id}, each request another buyer's cookie and ticket
  sold out (409)     the purchase POST on the sold-out drop
  not admitted (409) the purchase POST on the line's drop without a ticket or cookie (a bot's answer)
Then ``--pairs`` - 1 more rounds of each target's two rows (ceiling and document, view and sold out),
back to back, so each target has ``--pairs`` pairs measured minutes apart at most. Prints the targets
(queue document >= 0.75 x the trivial-GET ceiling, a ticket's view >= 0.9 x the sold-out answers, same
run) on the median pair, every pair's ratio beside it (on these shared 2 cores one 5 s row moves by
10 % from one minute to the next), and ends with SPEC 3's invariant on the database (exit 1 if broken).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import statistics
import sys
import time
import urllib.request
from pathlib import Path

from bench.harness import results_folder, scratch_folder
from bench.harness.databases import Database, check_database
from bench.harness.loads import Runner
from bench.harness.meters import NOISY_PCT, loadavg
from bench.harness.rows import HEADER, Row, find, write_results
from bench.harness.servers import ceiling_server, dropsvc_server, running
from bench.harness.wrk import CONNECTIONS
from bench.http_rates import pass_miss
from dropsvc import Engine
from dropsvc.buyers import COOKIE_NAME, USER_ID_PREFIX, Buyers
from dropsvc.drops import now_ms

LINE_STOCK = 100
TARGETS = (("queue-doc", "ceiling-get", 0.75, "queue document >= 0.75 x the trivial-GET ceiling"),
           ("ticket-view", "sold-out", 0.9, "a ticket's view >= 0.9 x the sold-out answers"))


def seed_line(db: Database, buyers: int, folder: Path) -> tuple[int, Path]:
    """The queue drop on ``db``: ``buyers`` joined and checked in, closed, first wave admitted. Returns
    its id and the file of ticket views for buyers.lua's list mode (path, then the buyer's cookie)."""
    with Engine(db.path) as engine:
        starts_at = now_ms() + 500
        line = engine.create_drop(slug="line", name="Line", price=1, total_stock=LINE_STOCK, per_user_limit=1,
                                  admission="queue", starts_at=starts_at, admit_seconds=3600)
        signer = Buyers(engine.secret("buyer_cookie_key"))
        views = []
        for _ in range(buyers):
            buyer_id, cookie = signer.new_cookie()
            outcome, ticket = engine.join_line(line, USER_ID_PREFIX + buyer_id)
            assert outcome == "ok" and ticket is not None
            assert engine.check_in(line, ticket["ticket_id"], USER_ID_PREFIX + buyer_id) is not None
            views.append(f"/api/drops/{line}/tickets/{ticket['ticket_id']}\tCookie: {COOKIE_NAME}={cookie}")
        time.sleep(max(0.0, (starts_at - now_ms()) / 1000) + 0.01)
        counts = engine.admit_drop(line)
        assert counts["closed"] == 1 and counts["admitted"] > 0, counts
    listed = folder / "ticket-views.txt"
    listed.write_text("\n".join(views) + "\n")
    return line, listed


def etag_of(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
        return reply.headers["ETag"]


def measure_all(bench: Runner, srv: str, workers: int, buyers: int, pairs: int) -> Database:
    """Every row of the run on one server configuration; the database it used."""
    db = bench.new_db("dropsvc", f"dropsvc {srv} w{workers} NORMAL queue", sold_out=True)
    line, views = seed_line(db, buyers, bench.folder)
    document = f"/api/drops/{line}/queue"
    with contextlib.ExitStack() as stack:
        ceiling = stack.enter_context(running(ceiling_server(srv, workers, bench.logs)))
        service = stack.enter_context(running(dropsvc_server(srv, workers, "NORMAL", db, bench.logs)))
        same = {"srv": srv, "workers": workers}
        bench.measure(ceiling, "ceiling-get", "ceiling GET /hello", 200, wrk_mode="get", path="/hello",
                      also=[service.pgid], **same)
        on_service = {"mode": "NORMAL", "also": [ceiling.pgid], **same}
        bench.measure(service, "healthz", "GET /healthz", 200, wrk_mode="get", path="/healthz", **on_service)
        bench.measure(service, "queue-doc", "queue document", 200, wrk_mode="get", path=document, **on_service)
        unchanged = bench.folder / "if-none-match.txt"
        unchanged.write_text(f"{document}\tIf-None-Match: {etag_of(service.port, document)}\n")
        bench.measure(service, "queue-doc-304", "queue document 304", 304, wrk_mode="list", listed=str(unchanged),
                      **on_service)
        bench.measure(service, "ticket-view", f"ticket view ({buyers:,} buyers)", 200, wrk_mode="list",
                      listed=str(views), **on_service)
        bench.measure(service, "sold-out", "sold out (409)", 409, path=f"/api/drops/{db.sold_out_drop}/purchases",
                      db=db, **on_service)
        bench.measure(service, "not-admitted", "not admitted (409)", 409, path=f"/api/drops/{line}/purchases",
                      **on_service)
        for round_ in range(2, pairs + 1):
            bench.measure(ceiling, "ceiling-get", f"ceiling GET /hello #{round_}", 200, wrk_mode="get",
                          path="/hello", also=[service.pgid], **same)
            bench.measure(service, "queue-doc", f"queue document #{round_}", 200, wrk_mode="get", path=document,
                          **on_service)
            bench.measure(service, "ticket-view", f"ticket view #{round_}", 200, wrk_mode="list", listed=str(views),
                          **on_service)
            bench.measure(service, "sold-out", f"sold out (409) #{round_}", 409,
                          path=f"/api/drops/{db.sold_out_drop}/purchases", db=db, **on_service)
    return db


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured load (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each, 0 for none")
    parser.add_argument("--server", default="bjoern")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--buyers", type=int, default=2000, help="tickets in the line, each viewed in turn")
    parser.add_argument("--pairs", type=int, default=5, help="measured pairs per target, the median judged (default 5)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: `make bench-deps` installs it")
        return 2
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    stamp, logs = results_folder("queue")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    with scratch_folder("queue", args.keep) as folder:
        bench = Runner(args, folder, logs)
        print(f"queue reads against the ceilings: {args.server} --workers {args.workers}, wrk -t{args.wrk_threads} "
              f"-c{CONNECTIONS}, {args.warmup} s warm-up + {args.duration} s per row; load average {loadavg()}")
        print(HEADER)
        print("-" * len(HEADER))
        db = measure_all(bench, args.server, args.workers, args.buyers, max(1, args.pairs))
        print("-" * len(HEADER))
        rows = bench.rows
        print(f"load average at the end {loadavg()}")
        print("\nratios (same run):")
        for kind in ("healthz", "queue-doc", "queue-doc-304", "ticket-view", "sold-out", "not-admitted"):
            for row in find(rows, kind):
                print(f"  {row.label:<28} / ceiling GET {row.rps / find(rows, 'ceiling-get')[0].rps:5.2f}")
        print("\ntargets (issue 13, 'Done when'), from this run's figures:")
        for kind, against, ratio, text in TARGETS:
            pairs: list[tuple[Row, Row]] = list(zip(find(rows, kind), find(rows, against), strict=True))
            ratios = [row.rps / base.rps for row, base in pairs]
            x = statistics.median(ratios)
            every = ", ".join(f"{row.rps:,.0f} / {base.rps:,.0f} = {each:.2f}"
                              for (row, base), each in zip(pairs, ratios, strict=True))
            print("  " + pass_miss(x >= ratio and all(a.clean and b.clean for a, b in pairs),
                                   f"{text}: median {x:.2f} of {len(pairs)} pairs ({every})",
                                   *[r for pair in pairs for r in pair]))
        if any(r.others_pct > NOISY_PCT for r in rows):
            print("  ! some rows ran while other jobs took the CPU: rerun on a quiet machine")
        good, detail = check_database(db)
        print(f"\ninvariant (SPEC 3) and sold == the 201s counted: {'ok' if good else 'BROKEN'} {db.label}: {detail}")
        write_results(logs, stamp, args, rows)
        return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
