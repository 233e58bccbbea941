"""The naive baseline of bench/http_rates.py: what a Python developer writes first.

Falcon with its default media handling (``req.media``, ``resp.media``: the
stdlib json module), the stdlib ``sqlite3`` module, one writer connection
behind a ``threading.Lock``, WAL, ``synchronous=NORMAL`` (FULL by option),
``BEGIN IMMEDIATE``, and the seed's bare transaction, one per purchase:

    UPDATE drops SET sold = sold + 1 WHERE id = ? AND sold + 1 <= total_stock
    INSERT INTO orders (...)

No window, no per-user limit, no holdings, no idempotency (the service does
all of those). Served by ``bjoern.run``, one process; ``--workers 2`` forks
after binding, each process with its own connection (SQLite's busy handler
serialises the writers).

On a file made by ``dropsvc.Engine`` it writes into the engine's tables; on a
new file it creates a minimal schema of its own (drops and orders).

    python bench/baselines/naive_app.py --db naive.db --port 8200 [--synchronous FULL]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import threading
import time

import falcon

SCHEMA = """
CREATE TABLE IF NOT EXISTS drops (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    price INTEGER NOT NULL,
    total_stock INTEGER NOT NULL,
    sold INTEGER NOT NULL DEFAULT 0,
    CHECK (sold >= 0 AND sold <= total_stock)
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    drop_id INTEGER NOT NULL REFERENCES drops(id),
    user_id TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
"""
HOLD_MS = 600_000


class Store:
    def __init__(self, path: str, synchronous: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def purchase(self, drop_id: int, user_id: str, quantity: int) -> int | None:
        """The new order's id, or None when sold out (or no such drop)."""
        now = int(time.time() * 1000)
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                price = self.db.execute("SELECT price FROM drops WHERE id = ?", (drop_id,)).fetchone()
                cursor = self.db.execute(
                    "UPDATE drops SET sold = sold + 1 WHERE id = ? AND sold + 1 <= total_stock", (drop_id,))
                if price is None or cursor.rowcount == 0:
                    self.db.execute("ROLLBACK")
                    return None
                order_id = self.db.execute(
                    "INSERT INTO orders (drop_id, user_id, quantity, amount, status, created_at, expires_at)"
                    " VALUES (?, ?, ?, ?, 'reserved', ?, ?)",
                    (drop_id, user_id, quantity, price[0] * quantity, now, now + HOLD_MS)).lastrowid
                self.db.execute("COMMIT")
                return order_id
            except BaseException:
                self.db.execute("ROLLBACK")
                raise


class Purchases:
    def __init__(self, store: Store) -> None:
        self.store = store

    def on_post(self, req: falcon.Request, resp: falcon.Response, drop_id: int) -> None:
        body = req.media
        user_id = body.get("user_id")
        quantity = body.get("quantity", 1)
        if not isinstance(user_id, str) or quantity != 1:
            raise falcon.HTTPUnprocessableEntity(description="user_id (string) and quantity 1")
        order_id = self.store.purchase(drop_id, user_id, quantity)
        if order_id is None:
            resp.status = falcon.HTTP_409
            resp.media = {"error": {"code": "sold_out", "message": "the drop is sold out"}}
            return
        resp.status = falcon.HTTP_201
        resp.media = {"id": order_id, "drop_id": drop_id, "user_id": user_id, "quantity": quantity,
                      "status": "reserved"}


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"ok": True}


def create_app(path: str, synchronous: str = "NORMAL") -> falcon.App:
    app = falcon.App()
    app.add_route("/healthz", Health())
    app.add_route("/api/drops/{drop_id:int}/purchases", Purchases(Store(path, synchronous)))
    return app


def main(argv: list[str] | None = None) -> int:
    import bjoern

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default="NORMAL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if args.workers == 1:
        bjoern.run(create_app(args.db, args.synchronous), args.host, args.port)
        return 0
    sock = bjoern.bind_and_listen(args.host, args.port)  # bind once, then fork: the processes share it
    for _ in range(args.workers - 1):
        if os.fork() == 0:
            break
    bjoern.server_run(sock, create_app(args.db, args.synchronous))  # one connection per process
    return 0


if __name__ == "__main__":
    sys.exit(main())
