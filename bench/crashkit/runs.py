"""One fault point each: an injected I/O error (in this process), a modelled power loss (in a forked
child, SIGKILLed by the fault VFS at its crash point), and the mutants that prove the checks bite.

Each returns a ``Point``: whether the fault fired, what the checks found, and the trace to replay it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropsvc._engine import StorageError

from bench.crashkit import disk
from bench.crashkit.scenarios import DB, SCENARIOS, Ctx, read_log
from dropsvc import Engine, _engine
from dropsvc.ledger.files import file_problems, read_only

VERIFY_TIMEOUT_S = 30


@dataclass
class Point:
    """What one fault point came to. ``lost`` counts acknowledged results missing after reopen."""

    spec: dict[str, Any]
    fired: bool = True
    lost: int = 0
    integrity: list[str] = field(default_factory=list)
    invariant: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # anything else the checks refuse
    ops: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.integrity or self.invariant or self.problems)


def fresh_copy(template: Path, work: Path) -> Path:
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(template, work)
    return work


def engine_on(folder: Path, synchronous: str, base_vfs: str | None) -> Engine:
    # checkpoints only where a scenario asks for them: the WAL keeps every commit of the run
    return Engine(folder / DB, base_vfs=base_vfs, synchronous=synchronous, readers=2, autocheckpoint=0)


def check_acks(folder: Path, acks: list[dict[str, Any]], point: Point) -> list[int]:
    """Count acknowledged results the reopened files lack; the ids of the purchases lost."""
    engines: dict[str, Engine | None] = {}
    lost_orders = []
    try:
        for ack in acks:
            name = ack.get("path", DB)
            if ack["kind"] == "backup":
                point.lost += not backup_intact(folder / name, ack["sold"], point)
                continue
            if name not in engines:
                engines[name] = open_checked(folder / name, point)
            engine = engines[name]
            if engine is None:
                point.lost += 1
                continue
            if ack["kind"] == "order":
                row = engine.get_order_by_id(ack["id"])
                if row is None or row["user_id"] != ack["user"]:
                    point.lost += 1
                    lost_orders.append(ack["id"])
            elif ack["kind"] == "status":
                row = engine.get_order_by_id(ack["id"])
                point.lost += row is None or row["status"] != ack["status"]
    finally:
        for engine in engines.values():
            if engine is not None:
                engine.close()
    return lost_orders


def backup_intact(path: Path, sold: int, point: Point) -> bool:
    """An acknowledged backup: there, sound, holding what was sold when it was taken."""
    if not path.exists():
        return False
    problems = file_problems(str(path))
    if problems:
        point.integrity += problems
        return False
    with read_only(str(path)) as db:
        return db.execute("SELECT sum(sold) FROM drops").fetchone()[0] == sold


def open_checked(path: Path, point: Point) -> Engine | None:
    """The file reopened with the default VFS, its integrity and invariant checked; None if absent."""
    if not path.exists() and not Path(f"{path}-wal").exists():
        return None
    try:
        engine = Engine(path, readers=1, migrate=False)
    except _engine.MigrationError:
        return None  # the schema's commit did not survive: the file is as good as new
    except StorageError as error:
        point.integrity.append(f"{path.name}: cannot open: {error!r}")
        return None
    try:
        result = engine.read("PRAGMA integrity_check")
        if result != [{"integrity_check": "ok"}]:
            point.integrity.append(f"{path.name}: {result[:3]}")
        point.invariant += [f"{path.name}: {p}" for p in engine.check()]
    except StorageError as error:
        point.integrity.append(f"{path.name}: {error!r}")
    return engine


def verify(folder: Path, acks: list[dict[str, Any]], point: Point) -> list[int]:
    """Integrity and invariant of the database (checked even with nothing acknowledged), then the acks."""
    engine = open_checked(folder / DB, point)
    if engine is None:
        point.problems.append("the database is gone")
        return []
    engine.close()
    return check_acks(folder, acks, point)


def io_point(template: Path, work: Path, spec: dict[str, Any]) -> Point:
    """Fail the spec's Nth call of a kind while the scenario runs; the engine must raise a typed
    error, go on once the fault clears, and lose nothing it acknowledged."""
    point = Point(spec)
    folder = fresh_copy(template, work)
    state = json.loads((folder / "state.json").read_text())
    _engine.fault_vfs_register(4096, True)
    engine = engine_on(folder, spec["sync"], _engine.FAULT_VFS)
    ctx = Ctx(engine, folder, state, spec["sync"], _engine.FAULT_VFS)
    try:
        _engine.fault_arm(spec["fault"], spec["n"], spec["persistent"], spec["full"])
        try:
            SCENARIOS[spec["scenario"]].act(ctx)
        except StorageError:
            pass
        except Exception as error:  # noqa: BLE001 - anything but a storage error is a finding
            point.problems.append(f"untyped error: {error!r}")
        point.fired = _engine.fault_counts()["fired"] > 0
        _engine.fault_clear()
        if ctx.pending:  # the keyed purchase that failed: its retry says whether it is there
            p = ctx.pending
            retry = engine.purchase(p["drop"], p["user"], 1, p["key"])
            ctx.ack(kind="order", id=retry.order["id"], user=p["user"], key=p["key"])
        if not engine.purchase(state["drop"], "after-the-fault").ok:  # the same engine goes on
            point.problems.append("no purchase after the fault cleared")
        point.invariant += engine.check()
    except StorageError as error:
        point.problems.append(f"the engine did not go on after the fault cleared: {error!r}")
    finally:
        _engine.fault_clear()
        engine.close()
    point.ops = ctx.ops
    check_keys_once(folder, ctx.acks, point)
    verify(folder, ctx.acks, point)
    if point.lost:
        point.problems.append(f"{point.lost} acknowledged results lost to an I/O error")
    return point


def check_keys_once(folder: Path, acks: list[dict[str, Any]], point: Point) -> None:
    keys = [a["key"] for a in acks if a["kind"] == "order" and a.get("key") and "path" not in a]
    with Engine(folder / DB, readers=1, migrate=False) as engine:
        for key in keys:
            found = engine.read("SELECT count(*) AS n FROM orders WHERE idempotency_key = ?", (key,))[0]["n"]
            if found != 1:
                point.problems.append(f"key {key}: {found} orders")


def forked(fn: Callable[[], int], timeout_s: float = VERIFY_TIMEOUT_S) -> int:
    """fn() in a forked child; its exit status (negative: killed by that signal)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = fn()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -signal.SIGALRM  # hung
        time.sleep(0.002)


def crash_child(folder: Path, spec: dict[str, Any], log: Path, crash_dir: Path) -> int:
    """The writer's process: the scenario on the fault VFS until the crash point kills it."""
    state = json.loads((folder / "state.json").read_text())
    _engine.fault_power_model(spec["at"], True, spec.get("lying", False),
                              [(f"{folder / DB}-lock", str(crash_dir / "lock"))])
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    engine = engine_on(folder, spec["sync"], _engine.FAULT_VFS)
    ctx = Ctx(engine, folder, state, spec["sync"], _engine.FAULT_VFS, log_fd=fd)
    SCENARIOS[spec["scenario"]].act(ctx)
    engine.close()
    os.write(fd, (json.dumps({"op": f"done after {_engine.fault_counts()['mutations']} mutations"}) + "\n").encode())
    return 0


def power_point(template: Path, work: Path, spec: dict[str, Any]) -> Point:
    """Run the scenario in a child that loses power at the spec's crash point; rebuild the disk;
    reopen as after a reboot and check."""
    point = Point(spec)
    folder = fresh_copy(template, work / "db")
    crash_dir = work / "crash"
    crash_dir.mkdir()
    log = work / "log.jsonl"
    disk.mark_durable(folder)
    _engine.fault_vfs_register(spec["sector"], spec["how"] != "tear")
    status = forked(lambda: crash_child(folder, spec, log, crash_dir))
    point.fired = status == -signal.SIGKILL
    point.ops, acks = read_log(log)
    if status not in (0, -signal.SIGKILL):
        point.problems.append(f"the writer's process ended with status {status} before the crash point")
    fates = disk.power_loss(folder, random.Random(spec["seed"]), spec["how"], spec["sector"], crash_dir / "lock")
    point.ops.append("power loss: " + ", ".join(fates))
    result = work / "verdict.json"

    def check() -> int:
        _engine.set_boot_id_for_tests(f"boot-after-{spec['seed']}")  # the machine booted again
        lost_orders = verify(folder, acks, point)
        result.write_text(json.dumps({"lost": point.lost, "lost_orders": lost_orders, "integrity": point.integrity,
                                      "invariant": point.invariant, "problems": point.problems}))
        return 0

    if forked(check) != 0 or not result.exists():
        point.problems.append("reopening after the power loss hung or failed (the lock file?)")
        return point
    verdict = json.loads(result.read_text())
    point.lost, point.integrity, point.invariant = verdict["lost"], verdict["integrity"], verdict["invariant"]
    point.problems = verdict["problems"]
    kept = [a["id"] for a in acks if a["kind"] == "order" and "path" not in a and a["id"] not in verdict["lost_orders"]]
    if verdict["lost_orders"] and kept and min(verdict["lost_orders"]) < max(kept):
        point.problems.append(f"an older purchase was lost while a newer one survived: {verdict['lost_orders']}")
    return point


def flip_point(template: Path, work: Path, spec: dict[str, Any]) -> Point:
    """The mutant disk that flips a byte of a synced page: the integrity check must see it."""
    point = Point(spec)
    folder = fresh_copy(template, work)
    page = disk.flip_byte_in_a_page(folder / DB, random.Random(spec["seed"]))
    point.ops.append(f"flipped page {page}'s type byte")
    engine = open_checked(folder / DB, point)
    if engine is not None:
        engine.close()
    return point


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="crash-"))
