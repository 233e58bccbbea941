"""Baselines with the stdlib sqlite3 module, as fast as it allows.

Same schema (made by the engine), same PRAGMAs as the engine's writer
(WAL, synchronous, foreign_keys, busy_timeout, mmap_size, cache_size,
temp_store); autocommit mode with explicit BEGIN IMMEDIATE / COMMIT, the
module's statement cache, one connection behind a threading.Lock. What a
careful Python developer writes without a compiled core.

- ``StdlibShop``: the full SPEC 5 purchase (window, per-user limit, stock,
  order, holding), the engine's statements one after another.
- ``StdlibBare``: the seed's bare transaction, the atomic conditional
  ``UPDATE drops SET sold = sold + 1 ...`` and an ``INSERT INTO orders``;
  no window, no per-user limit, no holdings (so a file it wrote has live
  orders without holdings: bench/engine_rates.py checks it accordingly).
"""

from __future__ import annotations

import sqlite3
import threading
import time


def connect(path: str, synchronous: str) -> sqlite3.Connection:
    """One connection with the engine's writer PRAGMAs."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=64)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=5000")
    db.execute(f"PRAGMA mmap_size={256 * 1024 * 1024}")
    db.execute(f"PRAGMA cache_size=-{64 * 1024}")
    db.execute("PRAGMA temp_store=MEMORY")
    return db


class StdlibShop:
    def __init__(self, path: str, synchronous: str = "NORMAL") -> None:
        self.db = connect(path, synchronous)
        self.lock = threading.Lock()

    def purchase(self, drop_id: int, user_id: str, quantity: int = 1) -> str:
        """The engine's transaction without an idempotency key: window, limit, stock, order, holding."""
        now = time.time_ns() // 1_000_000
        db = self.db
        with self.lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT price, total_stock, sold, per_user_limit, hold_seconds, starts_at,"
                                 " ends_at FROM drops WHERE id = ?1", (drop_id,)).fetchone()
                if row is None:
                    outcome = "not_found"
                else:
                    price, total, sold, limit, hold, starts, ends = row
                    held = db.execute("SELECT quantity FROM holdings WHERE drop_id = ?1 AND user_id = ?2",
                                      (drop_id, user_id)).fetchone()
                    if now < starts:
                        outcome = "not_started"
                    elif ends is not None and now >= ends:
                        outcome = "ended"
                    elif (held[0] if held else 0) + quantity > limit:
                        outcome = "per_user_limit"
                    elif sold + quantity > total or db.execute(
                            "UPDATE drops SET sold = sold + ?2 WHERE id = ?1 AND sold + ?2 <= total_stock",
                            (drop_id, quantity)).rowcount == 0:
                        outcome = "sold_out"
                    else:
                        db.execute("INSERT INTO orders (drop_id, user_id, quantity, amount, status,"
                                   " idempotency_key, request_hash, created_at, expires_at)"
                                   " VALUES (?1, ?2, ?3, ?4, 'reserved', NULL, NULL, ?5, ?6)",
                                   (drop_id, user_id, quantity, price * quantity, now, now + hold * 1000))
                        db.execute("INSERT INTO holdings (drop_id, user_id, quantity) VALUES (?1, ?2, ?3)"
                                   " ON CONFLICT (drop_id, user_id) DO UPDATE SET"
                                   " quantity = quantity + excluded.quantity", (drop_id, user_id, quantity))
                        outcome = "ok"
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT" if outcome == "ok" else "ROLLBACK")
            return outcome

    def close(self) -> None:
        self.db.close()


class StdlibBare:
    """The seed's transaction: the conditional UPDATE and the INSERT, nothing else."""

    def __init__(self, path: str, synchronous: str = "NORMAL", *, price: int, hold_seconds: int = 600) -> None:
        self.db = connect(path, synchronous)
        self.lock = threading.Lock()
        self.price = price
        self.hold_ms = hold_seconds * 1000

    def purchase(self, drop_id: int, user_id: str) -> str:
        now = time.time_ns() // 1_000_000
        db = self.db
        with self.lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute("UPDATE drops SET sold = sold + 1 WHERE id = ? AND sold + 1 <= total_stock",
                              (drop_id,)).rowcount == 0:
                    db.execute("ROLLBACK")
                    return "sold_out"
                db.execute("INSERT INTO orders (drop_id, user_id, quantity, amount, status, created_at, expires_at)"
                           " VALUES (?, ?, 1, ?, 'reserved', ?, ?)",
                           (drop_id, user_id, self.price, now, now + self.hold_ms))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return "ok"

    def close(self) -> None:
        self.db.close()
