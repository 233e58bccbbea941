"""Durability under injected faults (issue 15), the way SQLite tests itself: for each write path of
the service (bench/crashkit/scenarios.py), fail the Nth I/O call of each kind for N = 1..K, and
lose power at the Nth write, sync or truncate (and at random points) with the unsynced writes
dropped, kept, torn or garbled at 512- and 4096-byte sectors, in NORMAL and in FULL; then the
mutants (a disk whose sync lies, a flipped byte) that prove the checks can fail.

    python -m bench.crash                 # the full sweep (make bench-crash)
    python -m bench.crash --quick         # the bounded sweep make test runs
    python -m bench.crash --replay JSON   # one fault point again, as a failure printed it

Every point is one JSON line in the trace (--trace), with its seed; a failure prints its --replay.
Ends with one line: ``crash: P fault points; FULL lost 0; NORMAL lost L; ...``; exit 1 when a
check failed (FULL lost anything, an integrity or invariant failure, an untyped error, an
engine that did not go on) or a mutant went unseen.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.crashkit import disk
from bench.crashkit.http_case import http_point
from bench.crashkit.runs import Point, engine_on, flip_point, forked, io_point, power_point, scratch
from bench.crashkit.scenarios import SCENARIOS, Ctx, make_template
from dropsvc import _engine

MODES = ("NORMAL", "FULL")
KINDS = _engine.FAULT_KIND_NAMES
DEVICES = [(sector, how) for how in disk.HOW for sector in (512, 4096)]  # 8 disks a crash is seen on
POINT_TIMEOUT_S = 120
RUNNERS = {"io": io_point, "power": power_point, "lying": power_point, "flip": flip_point, "http": http_point}


@dataclass
class Tally:
    """The sweep's counts, for the final line."""

    points: int = 0
    full_lost: int = 0
    normal_lost: int = 0
    lying: int = 0
    lying_detected: int = 0
    integrity: int = 0
    invariant: int = 0
    mutants: int = 0
    caught: int = 0
    failures: list[Point] = field(default_factory=list)

    def add(self, point: Point) -> None:
        kind = point.spec["type"]
        if kind in ("lying", "flip"):
            self.mutants += 1
            seen = bool(point.lost or point.integrity or point.invariant)
            self.caught += seen
            if kind == "lying":
                self.lying += 1
                self.lying_detected += seen
            else:
                self.failures += [] if seen else [point]
            return
        self.points += point.fired
        if point.spec["sync"] == "FULL":
            self.full_lost += point.lost
        else:
            self.normal_lost += point.lost
        self.integrity += bool(point.integrity)
        self.invariant += bool(point.invariant)
        if point.failed or (point.lost and point.spec["sync"] == "FULL"):
            self.failures.append(point)

    def line(self) -> str:
        return (f"crash: {self.points} fault points; FULL lost {self.full_lost}; NORMAL lost {self.normal_lost};"
                f" lying disk detected {self.lying_detected}; integrity failures {self.integrity};"
                f" invariant failures {self.invariant}; mutants caught {self.caught}/{self.mutants}")

    @property
    def ok(self) -> bool:
        return (not self.failures and self.full_lost == 0 and self.lying_detected > 0
                and self.caught == self.mutants)


def io_calls(template: Path, work: Path, scenario: str, sync: str) -> dict[str, int]:
    """A fault-free run's calls of each kind (the Ns worth failing)."""
    folder = disk_copy(template, work)
    state = json.loads((folder / "state.json").read_text())
    _engine.fault_vfs_register(4096, True)
    with engine_on(folder, sync, _engine.FAULT_VFS) as engine:
        _engine.fault_clear()
        SCENARIOS[scenario].act(Ctx(engine, folder, state, sync, _engine.FAULT_VFS))
        return dict(_engine.fault_counts()["calls"])


def mutations(template: Path, work: Path, scenario: str, sync: str) -> int:
    """A fault-free run's writes, syncs and truncates (its crash points), counted in a child."""
    point = power_point(template, fresh_dir(work), {"type": "power", "scenario": scenario, "sync": sync, "at": 0,
                                                     "how": "keep", "sector": 4096, "seed": 0})
    done = [op for op in point.ops if op.startswith("done after ")]
    if not done or point.failed:
        raise SystemExit(f"the fault-free run of {scenario} ({sync}) failed: {point.problems} {point.ops}")
    return int(done[0].split()[2])


def disk_copy(template: Path, work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template, work)
    return work


def fresh_dir(work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def pick(ns: range, quick: bool, rng: random.Random, most: int) -> list[int]:
    """Every N (up to most), or in the quick sweep the first, the last and a few between."""
    if not quick:
        return list(ns)[:most]
    chosen = {ns[0], ns[-1], *rng.sample(list(ns), min(2, len(ns)))}
    return sorted(chosen)


def plan(scenario: str, template: Path, work: Path, args: argparse.Namespace,
         rng: random.Random) -> Iterator[dict[str, Any]]:
    """The fault points of one write path."""
    for sync in MODES:
        calls = io_calls(template, work / "dry", scenario, sync)
        for kind in KINDS:
            if calls[kind] == 0 or (args.quick and kind not in ("write", "sync", "read")):
                continue
            for n in pick(range(1, calls[kind] + 1), args.quick, rng, args.k):
                yield {"type": "io", "scenario": scenario, "sync": sync, "fault": kind, "n": n,
                       "persistent": n % 2 == 0, "full": kind in ("write", "truncate") and n % 3 == 0}
        total = mutations(template, work / "dry", scenario, sync)
        crashes = []  # every crash point on two of the disks (the quick sweep: a few, on one), then random ones
        for index, at in enumerate(pick(range(1, total + 1), args.quick, rng, total)):
            disks = (index,) if args.quick else (index, index + 3)
            crashes += [(at, *DEVICES[d % len(DEVICES)]) for d in disks]
        crashes += [(rng.randrange(1, total + 1), *rng.choice(DEVICES)) for _ in range(args.random)]
        for at, sector, how in crashes:
            yield {"type": "power", "scenario": scenario, "sync": sync, "at": at, "how": how, "sector": sector,
                   "seed": rng.randrange(2**32)}
        if sync == "FULL":  # the lying disk: acknowledged in FULL, gone after the power loss (at the
            # last write or sync, or after the run: a crash point before any answer could lose nothing)
            for at in (total, 0):
                yield {"type": "lying", "scenario": scenario, "sync": sync, "at": at, "how": "drop",
                       "sector": 4096, "lying": True, "seed": rng.randrange(2**32)}
    yield {"type": "flip", "scenario": scenario, "sync": "FULL", "seed": rng.randrange(2**32)}


def http_plan() -> list[dict[str, Any]]:
    """A full disk and a failing write in both modes; a failing sync where commits sync (FULL)."""
    faults = {"NORMAL": (("write", True), ("write", False)),
              "FULL": (("write", True), ("write", False), ("sync", False))}
    return [{"type": "http", "scenario": "purchase_keyed", "sync": sync, "fault": fault, "n": 1, "full": full}
            for sync in MODES for fault, full in faults[sync]]


def run_point(spec: dict[str, Any], templates: Path, work: Path) -> Point:
    """One fault point, in a forked child (a hang or a crash of the checks is a finding, not the end)."""
    template = templates / spec["scenario"]
    if not template.exists():
        make_template(SCENARIOS[spec["scenario"]], template)
    target = fresh_dir(work) if spec["type"] in ("power", "lying") else work
    verdict = work.parent / "point.json"
    verdict.unlink(missing_ok=True)

    def child() -> int:
        verdict.write_text(json.dumps(asdict(RUNNERS[spec["type"]](template, target, spec))))
        return 0

    status = forked(child, POINT_TIMEOUT_S)
    if status != 0 or not verdict.exists():
        return Point(spec, problems=[f"the run hung or died (status {status})"])
    return Point(**json.loads(verdict.read_text()))


def report_failure(point: Point, out: Any) -> None:
    print(f"FAILED {json.dumps(point.spec)}", file=out)
    for label, items in (("integrity", point.integrity), ("invariant", point.invariant),
                         ("problems", point.problems), ("ops", point.ops[-12:])):
        if items:
            print(f"  {label}: {items}", file=out)
    print(f"  lost: {point.lost}; replay: python -m bench.crash --replay '{json.dumps(point.spec)}'", file=out)


def replay(spec_text: str) -> int:
    spec = json.loads(spec_text)
    base = scratch()
    point = run_point(spec, base / "templates", base / "work")
    print(json.dumps(spec))
    print(f"fired {point.fired}; lost {point.lost}")
    for op in point.ops:
        print(f"  {op}")
    for label, items in (("integrity", point.integrity), ("invariant", point.invariant), ("problems", point.problems)):
        print(f"{label}: {items or 'none'}")
    if spec["type"] in ("power", "lying"):
        print("files after the power loss:", sorted(p.name for p in (base / "work" / "db").iterdir()))
    return 1 if point.failed else 0


def sweep(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    base = scratch()
    templates, work = base / "templates", base / "work"
    tally = Tally()
    started = time.monotonic()
    trace = Path(args.trace)
    trace.parent.mkdir(parents=True, exist_ok=True)
    with trace.open("w") as log:
        specs = [spec for name in SCENARIOS for spec in plan_for(name, templates, work, args, rng)] + http_plan()
        print(f"seed {args.seed}: {len(specs)} runs over {len(SCENARIOS)} write paths; trace in {trace}", flush=True)
        for spec in specs:
            point = run_point(spec, templates, work)
            tally.add(point)
            log.write(json.dumps({"spec": spec, "fired": point.fired, "lost": point.lost,
                                  "failed": point.failed, "ops": point.ops}) + "\n")
            log.flush()
            if point in tally.failures:
                report_failure(point, sys.stdout)
    shutil.rmtree(base, ignore_errors=True)
    print(f"{time.monotonic() - started:.1f} s; lying disk runs {tally.lying}; failures {len(tally.failures)}")
    print(tally.line())
    return 0 if tally.ok else 1


def plan_for(name: str, templates: Path, work: Path, args: argparse.Namespace,
             rng: random.Random) -> list[dict[str, Any]]:
    make_template(SCENARIOS[name], templates / name)
    return list(plan(name, templates / name, work, args, rng))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the bounded sweep (make test)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--k", type=int, default=60, help="I/O errors: N = 1..K of each kind (default 60)")
    parser.add_argument("--random", type=int, help="random crash points per path and mode (12; quick: 2)")
    parser.add_argument("--trace", default="bench/results/crash-trace.jsonl")
    parser.add_argument("--replay", metavar="JSON", help="run one fault point (a trace line's spec) again")
    args = parser.parse_args(argv)
    if args.random is None:
        args.random = 2 if args.quick else 12
    if args.replay:
        return replay(args.replay)
    return sweep(args)


if __name__ == "__main__":
    sys.exit(main())
