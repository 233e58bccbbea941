"""Helpers for tests over real HTTP: start ``python -m dropsvc serve``, talk to it with http.client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token-" + uuid.uuid4().hex
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any DROPSVC_/PAYOS_ setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPSVC_", "PAYOS_"))}
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m dropsvc ARGS`` to completion, text output captured."""
    return subprocess.run([sys.executable, "-m", "dropsvc", *args], cwd=REPO, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        return self.json["error"]["code"]


def exchange(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> Reply:
    """One request on an open (keep-alive) connection."""
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


@dataclass
class Server:
    """A running ``dropsvc serve``."""

    host: str
    port: int
    db_path: Path
    log_path: Path
    process: subprocess.Popen
    admin_token: str | None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connect(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal (SIGTERM) and wait; returns the exit status."""
        if self.alive():
            self.process.send_signal(signum)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"server did not stop on SIGTERM:\n{self.log()}") from None
        return self.process.returncode


def launch(directory: Path, *, admin_token: str | None = ADMIN_TOKEN, demo: bool = False,
           db_path: Path | None = None, extra_args: tuple[str, ...] = (),
           env: dict[str, str] | None = None, command: tuple[str, ...] = (sys.executable, "-m", "dropsvc"),
           cwd: Path = REPO) -> Server:
    """Start a server and wait until /healthz answers; ``env`` adds settings (PAYOS_*...).

    ``command`` runs the CLI (another install's ``dropsvc`` script, say), from ``cwd``.
    """
    port = free_port()
    db_path = db_path or directory / "drops.db"
    log_path = directory / f"server-{port}.log"
    env = clean_env(DROPSVC_LOG_LEVEL="INFO", **(env or {}))
    if admin_token is not None:
        env["DROPSVC_ADMIN_TOKEN"] = admin_token
    args = [*command, "serve", "--host", "127.0.0.1", "--port", str(port),
            "--db", str(db_path), *(["--demo"] if demo else []), *extra_args]
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server("127.0.0.1", port, db_path, log_path, process, admin_token)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not server.alive():
            raise AssertionError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            conn = server.connect(timeout=1)
            if exchange(conn, "GET", "/healthz").status == 200:
                conn.close()
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise AssertionError(f"server did not answer /healthz within {START_TIMEOUT}s:\n{server.log()}")


def assert_no_unhandled_errors(server: Server) -> None:
    log = server.log()
    assert '"unhandled_error"' not in log, f"the server hit a 500:\n{log}"


@dataclass
class Api:
    """JSON over one keep-alive connection to a server."""

    server: Server
    conn: http.client.HTTPConnection = field(init=False)
    slugs: Iterator[int] = field(init=False)

    def __post_init__(self) -> None:
        self.conn = self.server.connect()
        self.slugs = iter(range(1, 10**9))

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        try:
            return exchange(self.conn, method, path, body, headers)
        except (http.client.HTTPException, ConnectionError):
            # the server closed the connection (as after an error): retry once on a new one
            self.conn.close()
            self.conn = self.server.connect()
            return exchange(self.conn, method, path, body, headers)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, payload: Any = None, headers: dict[str, str] | None = None,
             method: str = "POST") -> Reply:
        body = None if payload is None else json.dumps(payload).encode()
        return self.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})

    def admin(self, method: str, path: str, payload: Any) -> Reply:
        token = {"Authorization": f"Bearer {self.server.admin_token}"}
        return self.post(path, payload, token, method=method)

    def create_drop(self, **fields: Any) -> dict[str, Any]:
        """A live drop through the admin API; keyword arguments override the defaults."""
        fields.setdefault("slug", f"test-drop-{uuid.uuid4().hex[:8]}-{next(self.slugs)}")
        fields.setdefault("name", "Test sneaker")
        fields.setdefault("price", 2_500_000)
        fields.setdefault("total_stock", 10)
        reply = self.admin("POST", "/api/admin/drops", fields)
        assert reply.status == 201, reply.body
        return reply.json

    def buy(self, drop_id: int, user_id: str, quantity: int = 1, key: str | None = None) -> Reply:
        headers = {} if key is None else {"Idempotency-Key": key}
        return self.post(f"/api/drops/{drop_id}/purchases", {"user_id": user_id, "quantity": quantity},
                         headers)

    def close(self) -> None:
        self.conn.close()


def db_snapshot(db_path: Path) -> dict[str, list[tuple]]:
    """Every row that matters, read with the stdlib (independent of the engine under test)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                for table in ("drops", "orders", "holdings", "payment_events")}
