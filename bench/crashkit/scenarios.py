"""The service's write paths, each as a scenario a fault can interrupt anywhere.

A scenario seeds a database fault-free (``seed``), then ``act`` does its writes on an engine that
stands on the fault VFS, writing down in ``ctx`` every operation it starts and every result the
caller was given (acknowledged). After the fault, ``verify`` (in ``runs.py``) looks for each
acknowledged result in the reopened file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropsvc import Engine, _engine
from dropsvc.ledger.payments import apply_payment

DB = "shop.db"
HOUR_MS = 3_600_000


@dataclass
class Ctx:
    """One run's engine and folder; the operation trace and the acknowledgements go to files
    (the caller's memory: they survive the writer's death) as well as to these lists."""

    engine: Engine
    folder: Path
    state: dict[str, Any]
    synchronous: str
    base_vfs: str | None = None
    acks: list[dict[str, Any]] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    pending: dict[str, Any] | None = None  # the keyed purchase in flight, for its retry
    log_fd: int | None = None

    def op(self, text: str) -> None:
        self.ops.append(text)
        self._log({"op": text})

    def ack(self, **what: Any) -> None:
        self.acks.append(what)
        self._log({"ack": what})

    def _log(self, line: dict[str, Any]) -> None:
        if self.log_fd is not None:
            os.write(self.log_fd, (json.dumps(line) + "\n").encode())

    def buy(self, user: str, key: str | None = None, drop: str = "drop") -> None:
        """One purchase, acknowledged when it returns ok (or its key's earlier order)."""
        drop_id = self.state[drop]
        self.op(f"purchase {user} key={key}")
        if key is not None:
            self.pending = {"drop": drop_id, "user": user, "key": key}
        result = self.engine.purchase(drop_id, user, 1, key)
        if result.outcome not in ("ok", "duplicate"):
            raise AssertionError(f"purchase {user}: {result.outcome}")
        self.pending = None
        self.ack(kind="order", id=result.order["id"], user=user, key=key)


def read_log(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The operations and acknowledgements a (killed) run wrote down."""
    ops, acks = [], []
    for line in path.read_text().splitlines() if path.exists() else ():
        entry = json.loads(line)
        if "op" in entry:
            ops.append(entry["op"])
        else:
            acks.append(entry["ack"])
    return ops, acks


def new_drop(engine: Engine, slug: str, **fields: Any) -> int:
    return engine.create_drop(slug=slug, name=slug, price=1000, total_stock=1000, per_user_limit=100, **fields)


def seed_orders(engine: Engine, drop: int, count: int, prefix: str = "seed") -> list[int]:
    return [engine.purchase(drop, f"{prefix}{n}").order["id"] for n in range(count)]


def payment(engine: Engine, order_id: int, reference: str) -> dict[str, Any]:
    """A verified PayOS callback paying the order in full."""
    order = engine.get_order_by_id(order_id)
    return {"code": "00", "desc": "success", "success": True, "signature": "checked",
            "data": {"orderCode": order["order_code"], "amount": order["amount"], "reference": reference,
                     "paymentLinkId": f"link-{order_id}", "code": "00", "desc": "ok"}}


@dataclass(frozen=True)
class Scenario:
    name: str
    act: Callable[[Ctx], None]
    seed: Callable[[Engine, Path], dict[str, Any]] = lambda engine, folder: {"drop": new_drop(engine, "drop")}


def act_keyed(ctx: Ctx) -> None:
    for n in range(5):
        ctx.buy(f"k{n}", key=f"key-{n}")


def act_plain(ctx: Ctx) -> None:
    for n in range(5):
        ctx.buy(f"p{n}")


def act_group_commit(ctx: Ctx) -> None:
    """Three threads buying at once: their purchases share commits (group commit)."""
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def buyer(thread: int) -> None:
        try:
            start.wait()
            for n in range(3):
                ctx.buy(f"t{thread}-{n}", key=f"gc-{thread}-{n}")
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            errors.append(error)

    threads = [threading.Thread(target=buyer, args=(t,)) for t in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def seed_reserved(engine: Engine, folder: Path) -> dict[str, Any]:
    drop = new_drop(engine, "drop")
    return {"drop": drop, "orders": seed_orders(engine, drop, 3)}


def act_cancel(ctx: Ctx) -> None:
    for order_id in ctx.state["orders"]:
        ctx.op(f"cancel {order_id}")
        result = ctx.engine.cancel(ctx.engine.public_ref(order_id))
        assert result.outcome == "ok", result
        ctx.ack(kind="status", id=order_id, status="cancelled")


def act_expiry(ctx: Ctx) -> None:
    ctx.op("expire_due")
    expired = ctx.engine.expire_due(now=int(time.time() * 1000) + 10 * HOUR_MS)
    assert expired == len(ctx.state["orders"]), expired
    for order_id in ctx.state["orders"]:
        ctx.ack(kind="status", id=order_id, status="expired")
    ctx.buy("after-expiry")


def seed_expired(engine: Engine, folder: Path) -> dict[str, Any]:
    state = seed_reserved(engine, folder)
    engine.expire_due(now=int(time.time() * 1000) + 10 * HOUR_MS)
    return state


def act_payments(ctx: Ctx) -> None:
    """Webhook events paying orders (a late payment retakes the stock of an expired one), one replayed."""
    for order_id in ctx.state["orders"]:
        ctx.op(f"webhook paid {order_id}")
        result = apply_payment(ctx.engine, payment(ctx.engine, order_id, f"ref-{order_id}"))
        assert result.action in ("paid", "refund_required") or result.replayed, result
        ctx.ack(kind="status", id=order_id, status="paid")
    first = ctx.state["orders"][0]
    ctx.op(f"webhook replayed {first}")
    assert apply_payment(ctx.engine, payment(ctx.engine, first, f"ref-{first}")).replayed


def seed_many(engine: Engine, folder: Path) -> dict[str, Any]:
    drop = new_drop(engine, "drop")
    seed_orders(engine, drop, 12)
    return {"drop": drop}


def act_checkpoints(ctx: Ctx) -> None:
    """The background worker's checkpoints: PASSIVE on a reader, then the FULL catch-up under the
    lock, with purchases between them; then a TRUNCATE."""
    for step, mode in enumerate(("PASSIVE", "FULL", "TRUNCATE")):
        ctx.buy(f"c{step}")
        ctx.op(f"checkpoint {mode}")
        ctx.engine.checkpoint(mode, busy_ms=100)
    ctx.buy("c-last")


def act_backup(ctx: Ctx) -> None:
    ctx.buy("b0")
    target = ctx.folder / "backup.db"
    ctx.op("backup")
    ctx.engine.backup(target)
    ctx.ack(kind="backup", path=target.name, sold=ctx.state["sold_at_backup"])
    ctx.buy("b1")


def seed_backup(engine: Engine, folder: Path) -> dict[str, Any]:
    drop = new_drop(engine, "drop")
    seed_orders(engine, drop, 4)
    return {"drop": drop, "sold_at_backup": 5}


def seed_old_schema(engine: Engine, folder: Path) -> dict[str, Any]:
    """A file one schema version behind (the migrations but the last), as stdlib sqlite3 makes it."""
    with sqlite3.connect(folder / "old.db") as old:
        for script in _engine.MIGRATIONS[:-1]:
            old.executescript(script)
        old.execute(f"PRAGMA user_version = {len(_engine.MIGRATIONS) - 1}")
    old.close()
    return {"drop": new_drop(engine, "drop")}


def act_open_and_migrate(ctx: Ctx) -> None:
    """Opening a new file (its schema made) and an old one (migrated), then buying on each."""
    for name in ("fresh.db", "old.db"):
        ctx.op(f"open {name}")
        with Engine(ctx.folder / name, base_vfs=ctx.base_vfs, synchronous=ctx.synchronous, readers=1) as other:
            drop = other.drop_id_by_slug("opened") or new_drop(other, "opened")
            ctx.ack(kind="opened", path=name)
            ctx.op(f"purchase on {name}")
            order = other.purchase(drop, f"on-{name}").order
            ctx.ack(kind="order", id=order["id"], user=f"on-{name}", key=None, path=name)


SCENARIOS = {s.name: s for s in (
    Scenario("purchase_keyed", act_keyed),
    Scenario("purchase_plain", act_plain),
    Scenario("group_commit", act_group_commit),
    Scenario("cancel", act_cancel, seed_reserved),
    Scenario("expiry", act_expiry, seed_reserved),
    Scenario("late_payment", act_payments, seed_expired),
    Scenario("webhook", act_payments, seed_reserved),
    Scenario("checkpoints", act_checkpoints, seed_many),
    Scenario("backup", act_backup, seed_backup),
    Scenario("open_migrate", act_open_and_migrate, seed_old_schema),
)}


def make_template(scenario: Scenario, folder: Path) -> dict[str, Any]:
    """The seeded database of a scenario in folder (checkpointed, closed cleanly); its state."""
    folder.mkdir(parents=True, exist_ok=True)
    with Engine(folder / DB, readers=1) as engine:
        state = scenario.seed(engine, folder)
        engine.checkpoint("TRUNCATE")
    (folder / "state.json").write_text(json.dumps(state))
    return state
