"""Background work (SPEC 8): reservation expiry, queue admission (SPEC 11) and WAL checkpoints.

It runs in exactly one process per database: the one holding an ``flock``
on ``<db>-bg.lock``. The others keep trying, so when that process dies the
lock (released by the kernel) is taken over within one interval. Work goes
through the engine's critical section, in small batches, so requests are
never held up for long. Admission keeps all its state in the database, so
the process that takes the lock over continues where the last one was.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any

from dropsvc.ledger import Engine
from dropsvc.logs import EventLogger, get_logger
from dropsvc.threads import start_daemon

EXPIRY_BATCH = 500
TICK_SECONDS = 0.1  # how often the WAL size is looked at
CHECKPOINT_BYTES = 4 * 1024 * 1024  # a PASSIVE checkpoint as soon as the WAL is this large


class BackgroundWorker:
    """A daemon thread that expires holds, admits queue drops' tickets and checkpoints the WAL
    while it owns the bg lock."""

    def __init__(self, engine: Engine, *, expiry_interval: float = 1.0, checkpoint_interval: float = 5.0,
                 admission_interval: float = 0.5, checkpoints: bool = True,
                 log: EventLogger | None = None) -> None:
        self.engine = engine
        self.expiry_interval = expiry_interval
        self.checkpoint_interval = checkpoint_interval
        self.admission_interval = admission_interval  # SPEC 11: at least once a second
        self.checkpoints = checkpoints  # False when Litestream owns checkpoints
        self.log = log or get_logger()
        self.lock_path = engine.path + "-bg.lock"
        self.wal_path = engine.path + "-wal"
        self.expired_total = 0
        self.admitted_total = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._last_expiry = 0.0
        self._last_admission = 0.0
        self._last_checkpoint = 0.0

    @property
    def is_leader(self) -> bool:
        """True while this process holds the background lock."""
        return self._lock_fd is not None

    def start(self) -> BackgroundWorker:
        self._thread = start_daemon(self._run, "dropsvc-background")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._release()

    def _try_lock(self) -> bool:
        if self._lock_fd is not None:
            return True
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        self.log.info("background_lock_taken", pid=os.getpid(), lock=self.lock_path)
        return True

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def _run(self) -> None:
        while not self._stop.wait(min(self.expiry_interval, self.admission_interval, TICK_SECONDS)):
            try:
                if self._try_lock():
                    self._tick(time.monotonic())
            except Exception as error:  # a storage hiccup must not end background work
                self.log.error("background_failed", error=type(error).__name__, detail=str(error))

    def _tick(self, now: float) -> None:
        if now - self._last_expiry >= self.expiry_interval:
            self._last_expiry = now
            self.expire()
        if now - self._last_admission >= self.admission_interval:  # after expiry: units back flow on at once
            self._last_admission = now
            self.admit()
        if self.checkpoints and (now - self._last_checkpoint >= self.checkpoint_interval
                                 or self._wal_size() > CHECKPOINT_BYTES):
            self._last_checkpoint = now
            self.checkpoint()

    def run_once(self) -> dict[str, Any]:
        """Expire what is due, admit, and (unless Litestream owns them) checkpoint, now."""
        result: dict[str, Any] = {"expired": self.expire(), "admission": self.admit()}
        if self.checkpoints:
            result["checkpoint"] = self.checkpoint()
        return result

    def expire(self) -> int:
        """Expire every due hold, in batches of EXPIRY_BATCH; how many."""
        expired = 0
        while not self._stop.is_set():
            done = self.engine.expire_due(limit=EXPIRY_BATCH)
            expired += done
            if done < EXPIRY_BATCH:
                break
        if expired:
            self.expired_total += expired
            self.log.info("reservations_expired", count=expired)
        return expired

    def admit(self) -> dict[int, dict[str, int]]:
        """One admission pass over every queue drop due (each one write); one log line per drop
        where something changed, with its counts. A drop whose pass fails is logged and the
        others still get theirs."""
        changed = {}
        for drop_id in self.engine.queue_drops_due():
            try:
                counts = self.engine.admit_drop(drop_id)
            except Exception as error:  # one drop must not hold up the others' admission
                self.log.error("queue_admission_failed", drop_id=drop_id, error=type(error).__name__,
                               detail=str(error))
                continue
            if any(counts.values()):
                changed[drop_id] = counts
                self.admitted_total += counts["admitted"]
                self.log.info("queue_admission", drop_id=drop_id, **counts)
        return changed

    def _wal_size(self) -> int:
        try:
            return os.path.getsize(self.wal_path)
        except FileNotFoundError:
            return 0

    def checkpoint(self) -> tuple[bool, int, int]:
        """Copy the WAL back into the database without stalling purchases for long.

        A PASSIVE pass on a reader handle copies the bulk beside the writer.
        Under a steady stream of purchases it never catches up (new frames
        land while it copies), so a second, short FULL pass under the write
        lock copies the few frames written meanwhile. Then the next write
        starts the WAL over from its beginning and SQLite cuts the file back
        to the engine's ``wal_limit_bytes`` (journal_size_limit): the WAL
        stays bounded, with the lock held only for the catch-up.
        """
        busy, frames, copied = self.engine.checkpoint("PASSIVE")
        if not busy:
            busy, frames, copied = self.engine.checkpoint("FULL")
        if busy or copied < frames:
            self.log.debug("wal_checkpoint", busy=busy, wal_bytes=self._wal_size(), frames=frames, copied=copied)
        return busy, frames, copied
