"""Servers for a benchmark: each in its own process group, ready when healthy, stopped for good."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from bench.harness import PYTHON, ROOT
from bench.harness.databases import Database
from bench.harness.meters import group_members
from dropsvc.payments.sandbox import SANDBOX_API_KEY, SANDBOX_CHECKSUM_KEY, SANDBOX_CLIENT_ID

GRANIAN_THREADS = 16
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]



class Server:
    """A subprocess in its own process group; stopped with SIGTERM, then SIGKILL for whatever is left.

    Ready when ``GET health`` answers 200 (or, with ``health=None``, when the port accepts a connection).
    """

    def __init__(self, label: str, argv: list[str], port: int, logs: Path, health: str | None = "/healthz",
                 cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
        self.label = label
        self.env = env or {}  # on top of ours, whose DROPSVC_* and PAYOS_* settings are left out
        self.argv = argv
        self.port = port
        self.health = health
        self.cwd = cwd
        self.log_path = logs / (re.sub(r"[^\w.-]+", "_", label) + ".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPSVC_", "PAYOS_"))}
        env["PYTHONPATH"] = str(ROOT)
        env.update(self.env)
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



# -- the servers the benchmarks start -----------------------------------------------------------


def ceiling_server(srv: str, workers: int, logs: Path) -> Server:
    """bench/baselines/ceiling_app.py: no work behind the answers."""
    port = free_port()
    argv = [PYTHON, "-m", "bench.baselines.ceiling_app", "--server", srv, "--workers", str(workers),
            "--threads", str(GRANIAN_THREADS), "--port", str(port)]
    return Server(f"ceiling {srv} w{workers}", argv, port, logs, health="/hello")


def dropsvc_server(srv: str, workers: int, mode: str, db: Database, logs: Path, port: int | None = None,
                   env: dict[str, str] | None = None) -> Server:
    """`dropsvc serve` on ``db``, named after it (``env``: DROPSVC_* and PAYOS_* settings)."""
    port = port or free_port()
    argv = [PYTHON, "-m", "dropsvc", "serve", "--server", srv, "--workers", str(workers), "--threads",
            str(GRANIAN_THREADS), "--synchronous", mode, "--db", db.path, "--port", str(port)]
    return Server(db.label, argv, port, logs, env=env)


def payos_sandbox_server(webhook_url: str, logs: Path) -> Server:
    """`dropsvc payos-sandbox` (the offline PayOS, its default credentials) sending paid callbacks to
    ``webhook_url``; ``payos_env`` gives the service the settings that point at it."""
    port = free_port()
    argv = [PYTHON, "-m", "dropsvc", "payos-sandbox", "--port", str(port), "--webhook-url", webhook_url,
            "--log-level", "WARNING"]
    return Server("payos-sandbox", argv, port, logs, health="/sandbox/health")


def payos_env(sandbox: Server) -> dict[str, str]:
    """The PAYOS_* settings of a service that pays through ``sandbox``."""
    return {"PAYOS_BASE_URL": f"http://127.0.0.1:{sandbox.port}", "PAYOS_CLIENT_ID": SANDBOX_CLIENT_ID,
            "PAYOS_API_KEY": SANDBOX_API_KEY, "PAYOS_CHECKSUM_KEY": SANDBOX_CHECKSUM_KEY}


def naive_server(label: str, workers: int, mode: str, db_path: str, logs: Path) -> Server:
    """bench/baselines/naive_app.py: Falcon defaults + stdlib sqlite3."""
    port = free_port()
    argv = [PYTHON, str(ROOT / "bench" / "baselines" / "naive_app.py"), "--db", db_path, "--port", str(port),
            "--synchronous", mode, "--workers", str(workers)]
    return Server(label, argv, port, logs)


def redis_server(folder: Path, logs: Path) -> Server:
    """redis-server with its built-in defaults (no config file): RDB snapshots on the default save points, no AOF."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--daemonize", "no"]
    return Server("redis-server", argv, port, logs, health=None, cwd=folder)


def redis_app_server(label: str, workers: int, redis_port: int, stock: int, logs: Path) -> Server:
    """bench/baselines/redis_app.py on drop 1 (re)seeded with ``stock`` units, per_user_limit 1."""
    port = free_port()
    argv = [PYTHON, str(ROOT / "bench" / "baselines" / "redis_app.py"), "--redis-port", str(redis_port),
            "--port", str(port), "--workers", str(workers), "--seed", f"1:{stock}:1"]
    return Server(label, argv, port, logs)
