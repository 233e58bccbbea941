"""Background work (SPEC 8): reservation expiry and WAL checkpoints.

It runs in exactly one process per database: the one holding an ``flock``
on ``<db>-bg.lock``. The others keep trying, so when that process dies the
lock (released by the kernel) is taken over within one interval. Work goes
through the engine's critical section, in small batches, so requests are
never held up for long.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from typing import Any

from dropsvc.engine import Engine
from dropsvc.logs import EventLogger, get_logger

EXPIRY_BATCH = 500


class BackgroundWorker:
    """A daemon thread that expires holds and checkpoints the WAL while it owns the bg lock."""

    def __init__(self, engine: Engine, *, expiry_interval: float = 1.0, checkpoint_interval: float = 5.0,
                 wal_limit_bytes: int = 64 * 1024 * 1024, checkpoints: bool = True,
                 log: EventLogger | None = None) -> None:
        self.engine = engine
        self.expiry_interval = expiry_interval
        self.checkpoint_interval = checkpoint_interval
        self.wal_limit_bytes = wal_limit_bytes
        self.checkpoints = checkpoints  # False when Litestream owns checkpoints
        self.log = log or get_logger()
        self.lock_path = engine.path + "-bg.lock"
        self.wal_path = engine.path + "-wal"
        self.expired_total = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._since_checkpoint = 0.0

    @property
    def is_leader(self) -> bool:
        """True while this process holds the background lock."""
        return self._lock_fd is not None

    def start(self) -> BackgroundWorker:
        # the thread inherits a mask without SIGINT/SIGTERM: the server's own stop logic gets them
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self._thread = threading.Thread(target=self._run, name="dropsvc-background", daemon=True)
            self._thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
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
        while not self._stop.wait(self.expiry_interval):
            try:
                if self._try_lock():
                    self.run_once()
            except Exception as error:  # a storage hiccup must not end background work
                self.log.error("background_failed", error=type(error).__name__, detail=str(error))

    def run_once(self) -> dict[str, Any]:
        """One round: expire what is due (in batches), checkpoint when it is time."""
        expired = 0
        while not self._stop.is_set():
            done = self.engine.expire_due(limit=EXPIRY_BATCH)
            expired += done
            if done < EXPIRY_BATCH:
                break
        if expired:
            self.expired_total += expired
            self.log.info("reservations_expired", count=expired)
        result: dict[str, Any] = {"expired": expired}
        self._since_checkpoint += self.expiry_interval
        if self.checkpoints and self._since_checkpoint >= self.checkpoint_interval:
            self._since_checkpoint = 0.0
            result["checkpoint"] = self.checkpoint()
        return result

    def checkpoint(self) -> tuple[bool, int, int]:
        """PASSIVE normally; TRUNCATE (waiting for no reader) once the WAL is over its limit."""
        try:
            wal_size = os.path.getsize(self.wal_path)
        except FileNotFoundError:
            wal_size = 0
        mode = "TRUNCATE" if wal_size > self.wal_limit_bytes else "PASSIVE"
        busy, frames, copied = self.engine.checkpoint(mode)
        if mode == "TRUNCATE" or busy:
            self.log.info("wal_checkpoint", mode=mode, busy=busy, wal_bytes=wal_size, frames=frames,
                          copied=copied)
        return busy, frames, copied
