"""HTTP purchases/s of `dropsvc serve` against its server's ceilings, a naive app and Redis+Lua, in one run.

Usage: python bench/http.py [--quick] [--duration S] [--warmup S] [--paced-duration S]
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

import os
import sys

# run as a script, this file's folder comes first on sys.path, where "http" would be this file
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from dropsvc import Engine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

LUA = ROOT / "bench" / "lua" / "buyers.lua"
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
CONNECTIONS = 64
GRANIAN_THREADS = 16
STOCK = 10**9  # never sells out: every purchase is a full one
PRICE = 100_000
PACED_RATE = 10_000
RSS_TARGET_MB = 45.0
NOISY_PCT = 10.0  # other jobs using more of the CPU than this during a row: its figures are suspect
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


# -- wrk ---------------------------------------------------------------------------------------


@dataclass
class Load:
    """One wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    sent: int  # requests handed to wrk by request(); sent - answered were in flight at the end
    errors: dict[str, int]
    late: int | None = None  # paced runs: slots a thread fell >10 ms behind on
    seconds: float = 0.0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def in_flight(self) -> int:
        return max(0, self.sent - self.answered)


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def to_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNIT_MS[unit]


def parse_wrk(out: str, seconds: float) -> Load:
    percentiles = {int(p): to_ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M)}
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    statuses = {int(code): int(count) for code, count in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    sent = sum(int(n) for n in re.findall(r"^sent (\d+)$", out, re.M))
    errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if found:
        errors = dict(zip(errors, map(int, found.groups()), strict=True))
    late = re.search(r"^paced target \d+ late (\d+)$", out, re.M)
    if rps is None or 50 not in percentiles or 99 not in percentiles:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return Load(float(rps.group(1)), percentiles[50], percentiles[99], statuses, sent, errors,
                int(late.group(1)) if late else None, seconds)


def run_wrk(port: int, seconds: float, threads: int, *, mode: str = "post", path: str = "/api/drops/1/purchases",
            prefix: str = "u", rate: int | None = None) -> Load:
    env = dict(os.environ, BUYERS_MODE=mode, BUYERS_PATH=path, BUYERS_PREFIX=prefix, BUYERS_THREADS=str(threads))
    if rate:
        env["BUYERS_RATE"] = str(rate)
    argv = ["wrk", "-t", str(threads), "-c", str(CONNECTIONS), "-d", f"{max(1, round(seconds))}s", "--latency",
            "--timeout", "5s", "-s", str(LUA), f"http://127.0.0.1:{port}"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[:2000]}")
    return parse_wrk(done.stdout, seconds)


# -- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the command name) for every live process."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                yield int(name), stat.read().rpartition(")")[2].split()
        except OSError:
            continue  # it ended meanwhile


def group_members(pgid: int) -> list[int]:
    """Processes in process group ``pgid`` (the server and whatever it forked or spawned)."""
    return [pid for pid, fields in process_stats() if int(fields[2]) == pgid and fields[0] != "Z"]


def rss_anon_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


HZ = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU time spent by the whole machine (every core, /proc/stat), in seconds."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / HZ


PF_KTHREAD = 0x00200000


def ours_cpu_seconds(pgids: list[int]) -> float:
    """CPU time used so far by the live processes of these process groups, and by kernel threads.

    Kernel threads (writeback, the journal, block I/O) work mostly for the load that writes the
    database, so their time is not counted as another job's.
    """
    total = sum(int(fields[11]) + int(fields[12])  # utime, stime
                for _, fields in process_stats() if int(fields[2]) in pgids or int(fields[6]) & PF_KTHREAD)
    return total / HZ


class OthersMeter:
    """The share of the machine's CPU that neither the servers, wrk nor this script used during a load.

    A noisy neighbour (another job on the same cores) shows up here: figures of a row where it is
    high are low and noisy. Kernel time on loopback is mostly charged to the processes involved;
    kernel threads count as ours (see ours_cpu_seconds).
    """

    def __init__(self, pgids: list[int]) -> None:
        self.pgids = pgids

    def _sample(self) -> tuple[float, float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once waited for
        me = resource.getrusage(resource.RUSAGE_SELF)
        ours = ours_cpu_seconds(self.pgids) + children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime
        return time.monotonic(), busy_seconds(), ours

    def __enter__(self) -> OthersMeter:
        self.start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        wall = end[0] - self.start[0]
        others = (end[1] - self.start[1]) - (end[2] - self.start[2])
        self.percent = max(0.0, 100.0 * others / (wall * (os.cpu_count() or 1))) if wall > 0 else 0.0


class RssSampler:
    """Peak RssAnon of every process of a server's group while a load runs (SQLite's mmap is not anon)."""

    def __init__(self, pgid: int, interval: float = 0.1) -> None:
        self.pgid = pgid
        self.interval = interval
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        members: list[int] = []
        next_scan = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_scan:
                members = group_members(self.pgid)
                next_scan = time.monotonic() + 1.0
            for pid in members:
                kb = rss_anon_kb(pid)
                if kb is not None and kb > self.peak.get(pid, 0):
                    self.peak[pid] = kb
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float | None:
        return max(self.peak.values()) / 1024 if self.peak else None


class Server:
    """A subprocess in its own process group; stopped with SIGTERM, then SIGKILL for whatever is left.

    Ready when ``GET health`` answers 200 (or, with ``health=None``, when the port accepts a connection).
    """

    def __init__(self, label: str, argv: list[str], port: int, logs: Path, health: str | None = "/healthz",
                 cwd: Path = ROOT) -> None:
        self.label = label
        self.argv = argv
        self.port = port
        self.health = health
        self.cwd = cwd
        self.log_path = logs / (re.sub(r"[^\w.-]+", "_", label) + ".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPSVC_", "PAYOS_"))}
        env["PYTHONPATH"] = str(ROOT)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode} at start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} not ready within {START_TIMEOUT:g} s:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def ready(self) -> bool:
        try:
            if self.health is None:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.health}", timeout=1) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def pgid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM to the server (a pre-fork master passes it on); then its group: SIGTERM, SIGKILL."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"  ! {self.label} still running {STOP_TIMEOUT:g} s after SIGTERM", flush=True)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not group_members(proc.pid):
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            deadline = time.monotonic() + 5.0
            while group_members(proc.pid) and time.monotonic() < deadline:
                proc.poll()
                time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server.start()
    finally:
        server.stop()


# -- rows -------------------------------------------------------------------------------------


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


@dataclass
class Database:
    """A file the run made and what wrk counted against it."""

    kind: str  # dropsvc, naive
    label: str
    path: str
    ok: int = 0  # 201s counted
    in_flight: int = 0  # requests wrk left unanswered when it stopped (may or may not have committed)
    sold_out_drop: int | None = None
    sold_out_201s: int = 0


@dataclass
class Bench:
    args: argparse.Namespace
    folder: Path  # databases
    logs: Path
    full_servers: list[str] = field(default_factory=list)  # servers measured in FULL too
    rows: list[Row] = field(default_factory=list)
    databases: list[Database] = field(default_factory=list)
    redis_checks: list[tuple[str, bool, str]] = field(default_factory=list)
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
                also: list[int] | None = None) -> Row:
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
                                     prefix=self.prefix(), rate=rate))
            for attempt in range(2):
                self.wait_quiet(pgids)
                with OthersMeter(pgids) as others:
                    load = run_wrk(server.port, seconds, args.wrk_threads, mode=wrk_mode, path=path,
                                   prefix=self.prefix(), rate=rate)
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

    def ceiling_server(self, srv: str, workers: int) -> Server:
        port = free_port()
        argv = [PYTHON, "-m", "bench.baselines.ceiling_app", "--server", srv, "--workers", str(workers),
                "--threads", str(GRANIAN_THREADS), "--port", str(port)]
        return Server(f"ceiling {srv} w{workers}", argv, port, self.logs, health="/hello")

    def dropsvc_server(self, srv: str, workers: int, mode: str, db: Database) -> Server:
        port = free_port()
        argv = [PYTHON, "-m", "dropsvc", "serve", "--server", srv, "--workers", str(workers), "--threads",
                str(GRANIAN_THREADS), "--synchronous", mode, "--db", db.path, "--port", str(port)]
        return Server(db.label, argv, port, self.logs)

    def configuration(self, srv: str, workers: int, modes: list[str]) -> None:
        """One server configuration: its ceilings, then dropsvc in each mode.

        The ceiling app and `dropsvc serve` NORMAL run side by side (the idle one costs nothing), so
        the fixed-409 ceiling and the sold-out answers are measured one right after the other.
        """
        with contextlib.ExitStack() as stack:
            ceiling = stack.enter_context(running(self.ceiling_server(srv, workers)))
            service = db = None
            if "NORMAL" in modes:
                db = self.new_db("dropsvc", f"dropsvc {srv} w{workers} NORMAL", sold_out=True)
                service = stack.enter_context(running(self.dropsvc_server(srv, workers, "NORMAL", db)))
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
                with running(self.dropsvc_server(srv, workers, mode, db)) as service:
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
                ceiling = stack.enter_context(running(self.ceiling_server(srv, workers)))
                self.measure(ceiling, "paced-ceiling", f"ceiling POST fixed 409 paced {rate:,}/s", 409, srv=srv,
                             workers=workers, rate=rate, seconds=self.args.paced_duration)
            service = stack.enter_context(running(self.dropsvc_server(srv, workers, "NORMAL", db)))
            self.measure(service, "paced" if rate == PACED_RATE else "paced-half", f"purchases paced {rate:,}/s",
                         201, srv=srv, workers=workers, mode="NORMAL", rate=rate, seconds=self.args.paced_duration,
                         db=db)

    def new_db(self, kind: str, label: str, sold_out: bool = False) -> Database:
        path = str(self.folder / (re.sub(r"[^\w.-]+", "_", label) + ".db"))
        with Engine(path) as engine:
            drop = engine.create_drop(slug="bench", name="Bench drop", price=PRICE, total_stock=STOCK,
                                      per_user_limit=1)
            assert drop == 1
            db = Database(kind, label, path)
            if sold_out:
                db.sold_out_drop = engine.create_drop(slug="sold-out", name="Sold out", price=PRICE, total_stock=1,
                                                      per_user_limit=1)
                assert engine.purchase(db.sold_out_drop, "first-buyer", 1, None).outcome == "ok"
        self.databases.append(db)
        return db

    def naive(self, workers: int, mode: str) -> None:
        label = f"naive bjoern w{workers} {mode}"
        db = self.new_db("naive", label)
        port = free_port()
        argv = [PYTHON, str(ROOT / "bench" / "baselines" / "naive_app.py"), "--db", db.path, "--port", str(port),
                "--synchronous", mode, "--workers", str(workers)]
        with running(Server(label, argv, port, self.logs)) as server:
            self.measure(server, "naive", "naive Falcon+sqlite3", 201, srv="bjoern", workers=workers, mode=mode,
                         db=db)

    def redis(self, workers_list: list[int]) -> None:
        import redis

        redis_port = free_port()
        folder = self.folder / "redis"
        folder.mkdir(exist_ok=True)
        # built-in defaults (no config file): RDB snapshots on the default save points, no AOF
        argv = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(folder),
                "--daemonize", "no"]
        with running(Server("redis-server", argv, redis_port, self.logs, health=None, cwd=folder)) as store:
            client = redis.Redis(port=redis_port)
            client.ping()
            for workers in workers_list:
                label = f"redis+lua bjoern w{workers}"
                tally = Database("redis", label, "")
                port = free_port()
                argv = [PYTHON, str(ROOT / "bench" / "baselines" / "redis_app.py"), "--redis-port", str(redis_port),
                        "--port", str(port), "--workers", str(workers), "--seed", f"1:{STOCK}:1"]
                with running(Server(label, argv, port, self.logs)) as server:
                    self.measure(server, "redis", "redis+lua (EVALSHA)", 201, srv="bjoern", workers=workers,
                                 db=tally, also=[store.pgid])
                self.redis_checks.append(check_redis(client, tally))


def check_redis(client: Any, tally: Database) -> tuple[str, bool, str]:
    """Stock taken == orders recorded == holdings == the 201s wrk counted (within what was in flight)."""
    sold = STOCK - int(client.get("drop:1:stock"))
    orders = client.hlen("drop:1:orders")
    held = sum(int(v) for v in client.hvals("drop:1:holdings"))
    good = sold == orders == held and tally.ok <= sold <= tally.ok + tally.in_flight
    detail = f"sold={sold:,}, orders={orders:,}, holdings={held:,}, 201s counted={tally.ok:,}"
    if tally.in_flight:
        detail += f" (+ up to {tally.in_flight} in flight when wrk stopped)"
    return tally.label, good, detail


# -- output -----------------------------------------------------------------------------------

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


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# -- checks and targets -------------------------------------------------------------------------


def check_database(db: Database) -> tuple[bool, str]:
    """SPEC 3's invariant with dropsvc.Engine, and sold == the 201s wrk counted (within what was in flight)."""
    with Engine(db.path) as engine:
        problems = engine.check()
        sold = engine.get_drop(1)["sold"]
        sold_out = engine.get_drop(db.sold_out_drop)["sold"] if db.sold_out_drop else None
    note = ""
    if db.kind == "naive":  # the seed's transaction keeps no holdings: exactly one missing per order
        holdings = [p for p in problems if p.startswith("drop 1 user ")]
        if len(holdings) == sold:
            problems = [p for p in problems if not p.startswith("drop 1 user ")]
            note = f"; bare transaction: {len(holdings):,} orders without a holding, as expected"
    counted = db.ok <= sold <= db.ok + db.in_flight
    good = not problems and counted and (sold_out is None or (sold_out == 1 and db.sold_out_201s == 0))
    detail = f"sold={sold:,}, 201s counted={db.ok:,}"
    if db.in_flight:
        detail += f" (+ up to {db.in_flight} in flight when wrk stopped)"
    if sold_out is not None:
        detail += f"; sold-out drop: sold={sold_out}, 201s={db.sold_out_201s}"
    detail += note
    if problems:
        detail += f"; {len(problems)} problems: {problems[:3]}"
    return good, detail


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

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = RESULTS / f"http-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="dropsvc-http-"))
    try:
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
        for row in find(rows, "purchases"):
            ceiling = find(rows, "ceiling-get", row.server, row.workers)
            if ceiling:
                print(f"  purchases / GET ceiling   {config_name(row):<34} {row.mode:<6} "
                      f"{row.rps / ceiling[0].rps:5.2f}")
        for row in find(rows, "sold-out"):
            ceiling = find(rows, "ceiling-409", row.server, row.workers)
            if ceiling:
                print(f"  sold-out / 409 ceiling    {config_name(row):<34} {row.mode:<6} "
                      f"{row.rps / ceiling[0].rps:5.2f}")
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

        (logs / "results.json").write_text(json.dumps(
            {"when": stamp, "args": vars(args), "rows": [asdict(r) for r in rows]}, indent=1, default=str))
        print(f"\nserver logs and results.json: {logs.relative_to(ROOT)}")
        if broken:
            print(f"{broken} database(s) BROKEN")
            return 1
        return 0
    finally:
        if args.keep:
            print(f"databases kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
