"""One run of bench/herd: a fresh database, the PayOS sandbox and `dropsvc serve`, the drop, the crowd.

The drop is made through the engine while the service runs (the admin API refuses the admission
fields until the page knows queue drops), so the bots can join the instant it exists. A monitor
reads the database every 0.1 s and calls the finish: sold out with nothing held (and, for a
queue, the line's state ``sold_out``), or the timeout. The server's CPU time is read from
/proc/<pid>/stat of its process group right before the drop is made and right after the finish.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import PYTHON, ROOT
from bench.harness.client import Pool
from bench.harness.databases import PRICE, Database
from bench.harness.meters import OthersMeter, group_cpu_seconds
from bench.harness.scrape import Buckets, latency_buckets
from bench.harness.servers import dropsvc_server, free_port, payos_env, payos_sandbox_server, running
from bench.herd.people import Crowd, Person, Tally, live, population
from dropsvc import Engine

MONITOR_S = 0.1
STRAGGLERS_S = 40.0  # after the finish, how long people may take to notice (a poll of 10 s at most) and leave


@dataclass
class Settings:
    shoppers: int
    bots: int
    stock: int
    hold_seconds: int
    seed: int
    lead: float  # seconds from the drop's creation to its start
    pay_share: float
    timeout: float  # seconds after the start
    server: str
    workers: int
    pool: int
    bot_pool: int
    bot_pause: float
    per_user_limit: int = 1


@dataclass
class Outcome:
    """What one mode's run left: the people, what they sent, the figures the run read."""

    mode: str
    settings: Settings
    db_path: str
    drop_id: int
    people: list[Person]
    tally: Tally
    finish_s: float | None  # from the start to sold out with nothing held
    cpu_s: float  # the server's process group
    others_pct: float
    fairness: tuple[int, str] | None = None  # verify-fairness: exit code, output
    notes: list[str] = field(default_factory=list)
    scrapes: tuple[Buckets, Buckets] = ({}, {})  # the service's latency histogram before and after


def finished(engine: Engine, drop_id: int, mode: str) -> bool:
    """Sold out with no reserved order; for a queue, the finish recorded too (its waiting tickets
    are ``sold_out`` from then on)."""
    drop = engine.get_drop(drop_id)
    if drop["sold"] < drop["total_stock"]:
        return False
    if engine.read("SELECT 1 FROM orders WHERE drop_id = ? AND status = 'reserved' LIMIT 1", (drop_id,)):
        return False
    return mode != "queue" or engine.queue_state(drop_id)["finished_at"] is not None


async def monitor(engine: Engine, crowd: Crowd, timeout: float) -> float | None:
    """Seconds from the start to the finish; None at the timeout. Sets ``crowd.finished`` either way."""
    try:
        while time.time() < crowd.starts_at + timeout:
            await asyncio.sleep(MONITOR_S)
            if time.time() < crowd.starts_at:
                continue
            if finished(engine, crowd.drop_id, crowd.mode):
                return time.time() - crowd.starts_at
        return None
    finally:
        crowd.finished = True


Ran = tuple[Crowd, list[Person], float | None, float, list[str], tuple[Buckets, Buckets]]


async def crowd_run(mode: str, cfg: Settings, engine: Engine, port: int, sandbox_port: int, pgid: int) -> Ran:
    """Make the drop, let the crowd loose, wait for the finish and the people to leave."""
    service = Pool("127.0.0.1", port, cfg.pool)
    bot_service = Pool("127.0.0.1", port, cfg.bot_pool)
    sandbox = Pool("127.0.0.1", sandbox_port, 4)
    notes: list[str] = []
    base_url = f"http://127.0.0.1:{port}"
    scraped = latency_buckets(base_url)
    cpu_before = group_cpu_seconds(pgid)
    created = time.time()
    starts_at = created + cfg.lead
    drop_id = engine.create_drop(slug=f"herd-{mode}", name=f"Herd ({mode})", price=PRICE, total_stock=cfg.stock,
                                 per_user_limit=cfg.per_user_limit, hold_seconds=cfg.hold_seconds,
                                 starts_at=int(starts_at * 1000), admission=mode)
    crowd = Crowd(mode, drop_id, starts_at, cfg.pay_share, service, bot_service, sandbox, cfg.bot_pause)
    people = population(cfg.seed, cfg.shoppers, cfg.bots, created, starts_at)
    visits = [asyncio.create_task(live(crowd, person)) for person in people]
    finish = await monitor(engine, crowd, cfg.timeout)
    done, pending = await asyncio.wait(visits, timeout=STRAGGLERS_S)
    for task in pending:
        task.cancel()
    for person in people:
        if person.state == "arriving" or (pending and person.state not in FINALS):
            person.state = "unfinished"
    if pending:
        notes.append(f"{len(pending)} people still busy {STRAGGLERS_S:g} s after the finish: cancelled")
    cpu = group_cpu_seconds(pgid) - cpu_before
    scrapes = (scraped, latency_buckets(base_url))
    waited = service.waited + bot_service.waited
    notes.append(f"client pool waits: {waited:.1f} s summed over all requests")
    for pool in (service, bot_service, sandbox):
        await pool.close()
    return crowd, people, finish, cpu, notes, scrapes


FINALS = ("bought", "expired", "sold_out", "lapsed", "ended", "used", "left")  # a person's final states


def verify_fairness(port: int, drop_id: int) -> tuple[int, str]:
    """`dropsvc verify-fairness URL` against the live service: exit code and output."""
    url = f"http://127.0.0.1:{port}/api/drops/{drop_id}/fairness"
    done = subprocess.run([PYTHON, "-m", "dropsvc", "verify-fairness", url], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    return done.returncode, (done.stdout + done.stderr).strip()


def run_mode(mode: str, cfg: Settings, folder: Path, logs: Path) -> Outcome:
    """One mode on a fresh database, servers started and stopped around it."""
    path = str(folder / f"herd-{mode}.db")
    Engine(path).close()  # the schema, before the service opens the file
    port = free_port()
    sandbox = payos_sandbox_server(f"http://127.0.0.1:{port}/webhooks/payos", logs)
    with running(sandbox), Engine(path, readers=1) as engine:
        server = dropsvc_server(cfg.server, cfg.workers, "NORMAL", Database("dropsvc", f"herd {mode}", path), logs,
                                port=port, env=payos_env(sandbox))
        with running(server), OthersMeter([server.pgid, sandbox.pgid]) as others:
            crowd, people, finish, cpu, notes, scrapes = asyncio.run(
                crowd_run(mode, cfg, engine, port, sandbox.port, server.pgid))
            fairness = verify_fairness(port, crowd.drop_id) if mode == "queue" else None
    return Outcome(mode, cfg, path, crowd.drop_id, people, crowd.tally, finish, cpu, others.percent, fairness, notes,
                   scrapes)
