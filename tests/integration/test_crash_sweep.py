"""bench/crash.py's bounded sweep (issue 15): I/O errors and power losses over every write path, and the
mutants, with the same checks as the full sweep (make bench-crash), in well under a minute."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from live_server import REPO

LINE = re.compile(r"^crash: (\d+) fault points; FULL lost (\d+); NORMAL lost (\d+); lying disk detected (\d+);"
                  r" integrity failures (\d+); invariant failures (\d+); mutants caught (\d+)/(\d+)$")


def run_crash(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.crash", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_the_bounded_sweep_loses_nothing_acknowledged_in_full_and_catches_every_mutant(tmp_path):
    trace = tmp_path / "trace.jsonl"
    done = run_crash("--quick", "--seed", "15", "--trace", str(trace))
    last = done.stdout.strip().splitlines()[-1]
    match = LINE.match(last)
    assert match, done.stdout[-3000:] + done.stderr[-3000:]
    points, full_lost, normal_lost, lying, integrity, invariant, caught, mutants = map(int, match.groups())
    assert done.returncode == 0, done.stdout[-3000:]
    assert points >= 300 and full_lost == 0 and integrity == 0 and invariant == 0
    assert normal_lost > 0  # the model does lose what NORMAL never synced: the FULL figure means something
    assert lying > 0 and caught == mutants >= 20
    runs = [json.loads(line) for line in trace.read_text().splitlines()]
    kinds = {run["spec"]["type"] for run in runs}
    assert kinds == {"io", "power", "lying", "flip", "http"}
    assert {run["spec"]["scenario"] for run in runs} >= {"group_commit", "checkpoints", "backup", "open_migrate",
                                                        "late_payment", "webhook", "expiry", "cancel"}
    assert {run["spec"].get("sector") for run in runs if run["spec"]["type"] == "power"} == {512, 4096}


def test_a_traced_point_replays(tmp_path):
    spec = {"type": "power", "scenario": "purchase_keyed", "sync": "NORMAL", "at": 9, "how": "tear",
            "sector": 512, "seed": 7}
    first, second = run_crash("--replay", json.dumps(spec)), run_crash("--replay", json.dumps(spec))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "power loss: shop.db" in first.stdout and "integrity: none" in first.stdout
    assert first.stdout == second.stdout  # the seed decides every sector: the same case again
