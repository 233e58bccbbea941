"""Baseline: the full SPEC 5 purchase with the stdlib sqlite3 module, as fast as it allows.

Same schema (made by the engine), same statements, same PRAGMAs; autocommit
mode with explicit BEGIN IMMEDIATE / COMMIT, the module's statement cache,
one connection behind a threading.Lock. What a careful Python developer
writes without a compiled core.
"""

from __future__ import annotations

import sqlite3
import threading
import time


class StdlibShop:
    def __init__(self, path: str, synchronous: str = "NORMAL") -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                  cached_statements=64)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=5000")
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
