"""``GET /metrics`` (SPEC 10): Prometheus text format through ``prometheus_client``.

Several worker processes share one scrape through prometheus_client's
multiprocess mode: ``serve`` (the master, or the single process) makes a
fresh directory and exports it as ``PROMETHEUS_MULTIPROC_DIR`` before any
worker starts (:func:`multiprocess_dir`); every worker writes its values into
its own files there, and whichever worker answers a scrape adds them all up.
Without that variable (an app built in-process, in tests) everything stays in
the process's own registry.

What each process writes:

- requests, per route template (never the raw path), method and status: a
  counter and a latency histogram. The request path only bumps integers in
  memory (:class:`RequestStats`, a fraction of a microsecond); a daemon thread
  adds what changed to the prometheus values once a second, and the scraping
  process does so before it answers, so a scrape sees the other workers'
  requests of up to :data:`FLUSH_SECONDS` ago;
- the engine's counters (``Engine.counters()``: purchases by outcome, batch
  sizes, lock waits, commit time...), as deltas at the same moments;
- ``dropsvc_worker_processes``: 1 per live process (a ``livesum`` gauge; the
  files of processes that died are marked dead at the next scrape).

What the scraping process reads at scrape time: stock remaining and sold per
drop whose sale is open (live or sold out), the WAL's size, the configured
number of workers.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from dropsvc.drops import drop_status, now_ms
from dropsvc.ledger import Engine
from dropsvc.logs import EventLogger, get_logger
from dropsvc.obs.queue_metrics import QueueCollector
from dropsvc.threads import start_daemon

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FLUSH_SECONDS = 1.0
# request latency buckets (seconds): a sold-out answer takes ~50 us, a purchase a few hundred
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5)
BOUNDS_NS = tuple(int(bound * 1e9) for bound in LATENCY_BUCKETS)  # a duration <= bound lands in it
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
UNMATCHED = "unmatched"  # the route label of requests no route matched
OPEN_STATUSES = ("live", "sold_out")  # drops whose stock is shown
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")
DIR_PREFIX = "dropsvc-metrics-"  # + the serving master's pid + "-" + random
_DIR_PID = re.compile(r"^dropsvc-metrics-(\d+)-")

log = get_logger()


# -- the directory of the per-process files --------------------------------------------------


def multiprocess_path() -> str | None:
    """The multiprocess directory this process writes to, or None (single-process registry)."""
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


@contextlib.contextmanager
def multiprocess_dir(log: EventLogger | None = None) -> Iterator[str]:
    """For ``serve``: a fresh directory for the workers' metric files, exported before they start.

    A directory the operator already set in ``PROMETHEUS_MULTIPROC_DIR`` is
    used as it is, emptied of old ``*.db`` files (prometheus_client wants it
    clean at each start) and kept; one made here is removed at the end, and
    those of services killed before they could remove theirs go at the next start.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        for stale in glob.glob(os.path.join(given, "*.db")):
            os.remove(stale)
        path, made = given, False
    else:
        remove_orphan_dirs()
        path, made = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-"), True
        os.environ[MULTIPROC_ENV] = path
    if log is not None:
        log.debug("metrics_dir", path=path)
    try:
        yield path
    finally:
        if made:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(path, ignore_errors=True)


def remove_orphan_dirs() -> list[str]:
    """Remove the directories of services that died without cleaning up (SIGKILL): their pid is gone."""
    removed = []
    for entry in glob.glob(os.path.join(tempfile.gettempdir(), DIR_PREFIX + "*")):
        found = _DIR_PID.search(os.path.basename(entry))
        if not found:
            continue
        try:
            os.kill(int(found.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        except PermissionError:
            pass  # alive, someone else's
    return removed


def _use_multiprocess_values() -> None:
    """Make new prometheus values mmap-backed even if prometheus_client was imported before the export."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()


def mark_dead_processes(path: str) -> list[int]:
    """``mark_process_dead`` for every process whose live-gauge files remain but which is gone."""
    dead = []
    for name in os.listdir(path):
        found = _LIVE_FILE.match(name)
        if not found:
            continue
        pid = int(found.group(1))
        if pid == os.getpid() or pid in dead:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, path)
            dead.append(pid)
        except PermissionError:
            pass  # alive, someone else's
    return dead


# -- requests: integers in memory on the request path -----------------------------------------


class RequestStats:
    """Request counts and latency buckets per (route, method, status), in plain integers.

    ``record`` is the request path's whole cost: one dict lookup, a bisect and
    three integer additions (~0.3 us). Under granian, which runs requests on
    several threads, they happen under an uncontended lock (``threaded``);
    bjoern and meinheld run one request at a time per process and need none.
    ``status`` is the HTTP status code as a number (the observer turns what
    the responder set into one, through a small cache).
    """

    def __init__(self, threaded: bool = True) -> None:
        self.cells: dict[tuple[str | None, str, int], list[int]] = {}
        self.lock = threading.Lock()
        self._width = len(BOUNDS_NS) + 3  # count, sum_ns, one per bucket and +Inf
        self.record = self._record_locked if threaded else self._record

    def _record(self, route: str | None, method: str, status: int, elapsed_ns: int) -> None:
        if method not in KNOWN_METHODS:
            method = "other"  # clients can send any token: keep the keys bounded
        key = (route, method, status)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = [0] * self._width
        cell[0] += 1
        cell[1] += elapsed_ns
        cell[bisect_left(BOUNDS_NS, elapsed_ns) + 2] += 1

    def _record_locked(self, route: str | None, method: str, status: int, elapsed_ns: int) -> None:
        with self.lock:
            self._record(route, method, status, elapsed_ns)

    def snapshot(self) -> dict[tuple[str | None, str, int], list[int]]:
        """A copy of every cell (``list(dict.items())`` is one step under the GIL: safe beside ``_record``)."""
        with self.lock:
            items = list(self.cells.items())
        return {key: list(cell) for key, cell in items}


def request_labels(route: str | None, method: str, status: int) -> tuple[str, str, str]:
    """The labels of a recorded key: bounded sets only (no raw paths, no invented methods)."""
    return (route or UNMATCHED, method if method in KNOWN_METHODS else "other", str(status))


# -- one serving process's exporter ------------------------------------------------------------


class Metrics:
    """The prometheus side of one serving process; see the module's docstring."""

    def __init__(self, engine: Engine, workers: int = 1, threaded: bool = True) -> None:
        self.engine = engine
        self.workers = workers
        self.requests = RequestStats(threaded)
        self.path = multiprocess_path()
        if self.path is not None:
            _use_multiprocess_values()
        metrics: list[Any] = []

        def made(metric: Any) -> Any:
            metrics.append(metric)
            return metric

        labels = ("route", "method", "status")
        self.request_count = made(Counter("dropsvc_http_requests", "HTTP requests answered", labels,
                                          registry=None))
        self.request_seconds = made(Histogram("dropsvc_http_request_duration_seconds",
                                              "Time from the request's arrival in the app to its response",
                                              labels, buckets=LATENCY_BUCKETS, registry=None))
        self.purchases = made(Counter("dropsvc_purchases", "Purchases decided by the engine, by outcome",
                                      ("outcome",), registry=None))
        self.batches = made(Counter("dropsvc_engine_batches",
                                    "Group-commit batches by number of purchases decided", ("size",),
                                    registry=None))
        self.engine_totals = {
            name: made(Counter(f"dropsvc_engine_{metric}", text, registry=None))
            for name, metric, text in (
                ("transactions", "transactions", "Write transactions committed"),
                ("rollbacks", "rollbacks", "Write transactions rolled back"),
                ("lock_acquisitions", "lock_acquisitions", "Acquisitions of the cross-process write lock"),
                ("lock_wait_us", "lock_wait_seconds", "Time spent waiting for the write lock"),
                ("lock_recoveries", "lock_recoveries", "Write locks taken over from a dead process"),
                ("commit_us", "commit_seconds", "Time spent committing"),
                ("storage_errors", "storage_errors", "Storage errors raised by the engine"),
                ("sold_out_without_lock", "sold_out_without_lock",
                 "Sold-out answers given from a reader without taking the write lock"),
                ("not_admitted_without_lock", "not_admitted_without_lock",
                 "not_admitted answers to a line's purchase without a usable ticket, given from a reader"),
                ("wal_writes", "wal_writes", "Writes the engine's VFS layer made to the WAL (this process)"),
                ("wal_commits_one_write", "wal_commits_one_write",
                 "Commits whose WAL frames went out as one write (this process)"),
            )
        }
        self.processes = made(Gauge("dropsvc_worker_processes", "Serving processes alive",
                                    registry=None, multiprocess_mode="livesum"))
        self.processes.set(1)
        counters = engine.counters()  # every outcome and batch size shows up, at 0 until it happens
        for outcome in counters["purchases"]:
            self.purchases.labels(outcome)
        for size in counters["batches"]:
            self.batches.labels(size)
        self._flushed_requests: dict[tuple[str | None, str, int], list[int]] = {}
        self._flushed_engine: dict[str, int] = {}
        self._flush_lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        if self.path is not None:
            MultiProcessCollector(self.registry, self.path)
        else:
            for metric in metrics:
                self.registry.register(metric)
        self.registry.register(StateCollector(engine, workers))
        self.registry.register(QueueCollector(engine))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- flushing what changed into the prometheus values ---------------------------------

    def flush(self) -> None:
        """Add the requests and engine counts since the last flush to the prometheus values."""
        with self._flush_lock:
            self._flush_requests()
            self._flush_engine()

    def _flush_requests(self) -> None:
        for key, cell in self.requests.snapshot().items():
            before = self._flushed_requests.get(key)
            if before == cell:
                continue
            if before is None:
                before = [0] * len(cell)
            labels = request_labels(*key)
            self.request_count.labels(*labels).inc(cell[0] - before[0])
            child = self.request_seconds.labels(*labels)
            # Histogram.observe() for many observations at once: its sum and per-bucket values
            # (non-cumulative in prometheus_client, summed up at exposition), pinned version
            child._sum.inc((cell[1] - before[1]) / 1e9)
            for index, bucket in enumerate(child._buckets):
                added = cell[index + 2] - before[index + 2]
                if added:
                    bucket.inc(added)
            self._flushed_requests[key] = cell

    def _flush_engine(self) -> None:
        if self.engine.closed:
            return
        counters = self.engine.counters()
        flat: dict[str, int] = {}
        for outcome, count in counters["purchases"].items():
            flat["purchases:" + outcome] = count
        for size, count in counters["batches"].items():
            flat["batches:" + size] = count
        for name in self.engine_totals:
            flat[name] = counters[name]
        for name, value in flat.items():
            added = value - self._flushed_engine.get(name, 0)
            if added <= 0:
                continue
            kind, _, label = name.partition(":")
            if kind == "purchases":
                self.purchases.labels(label).inc(added)
            elif kind == "batches":
                self.batches.labels(label).inc(added)
            else:
                self.engine_totals[name].inc(added / 1e6 if name.endswith("_us") else added)
            self._flushed_engine[name] = value

    def start(self) -> Metrics:
        """The daemon thread that flushes every FLUSH_SECONDS (signals stay with the server)."""
        self._thread = start_daemon(self._run, "dropsvc-metrics")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # never let a metrics hiccup kill the thread
                log.exception("metrics_flush_failed")

    # -- the scrape ------------------------------------------------------------------------

    def render(self) -> bytes:
        """The exposition: this process flushed first, then every process's files and the state."""
        self.flush()
        if self.path is not None:
            mark_dead_processes(self.path)
        return generate_latest(self.registry)


class StateCollector(Collector):
    """What is read when scraped: open drops' stock, the WAL's size, the configured workers."""

    def __init__(self, engine: Engine, workers: int) -> None:
        self.engine = engine
        self.workers = workers

    def collect(self) -> Iterable[Any]:
        remaining = GaugeMetricFamily("dropsvc_drop_remaining", "Units left of a drop whose sale is open",
                                      labels=("drop_id", "slug"))
        sold = GaugeMetricFamily("dropsvc_drop_sold", "Units reserved or paid of a drop whose sale is open",
                                 labels=("drop_id", "slug"))
        now = now_ms()
        for row in self.engine.list_drops():
            if drop_status(row, now) in OPEN_STATUSES:
                labels = (str(row["id"]), row["slug"])
                remaining.add_metric(labels, row["total_stock"] - row["sold"])
                sold.add_metric(labels, row["sold"])
        yield remaining
        yield sold
        try:
            wal = os.stat(self.engine.path + "-wal").st_size
        except FileNotFoundError:
            wal = 0
        yield GaugeMetricFamily("dropsvc_wal_bytes", "Size of the database's write-ahead log", value=wal)
        yield GaugeMetricFamily("dropsvc_workers", "Worker processes configured", value=self.workers)
