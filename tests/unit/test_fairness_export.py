"""A real line, run through joins, the close, check-ins, admission passes, purchases, a lapse and a late
check-in, exports a fairness file that ``dropsvc verify-fairness`` passes, and fails once tampered with."""

from __future__ import annotations

import json
import subprocess
import sys

from engine_machine import buy_admitted

from dropsvc.fairness import verify
from dropsvc.ledger import queue

START = 1_000_000
PRESENT = START - queue.CHECK_IN_LEAD_MS


def run_line(engine, make_drop) -> int:
    drop_id = make_drop(admission="queue", starts_at=START, admit_seconds=60, admission_margin=0, total_stock=3,
                        per_user_limit=1)
    assert engine.fairness_tickets(drop_id) is None  # nothing to export before the seed is revealed
    tickets = {}
    for n in range(1, 9):
        outcome, ticket = engine.join_line(drop_id, f"b{n}", now=START - 100 + n)
        assert outcome == "ok"
        tickets[n] = ticket["ticket_id"]
    assert engine.record_close(drop_id, now=START)  # the pre-queue's positions, by draw key
    at = {row["position"]: row for row in engine.read(
        "SELECT ticket_id, buyer, position FROM tickets WHERE drop_id = ?", (drop_id,))}
    for position in (1, 3, 4, 5, 6, 7, 8):  # the holder at position 2 is not there
        engine.check_in(drop_id, at[position]["ticket_id"], at[position]["buyer"], now=PRESENT)
    engine.admit_drop(drop_id, now=START + 10)  # the first wave, 3 units: 1, 3 and 4 admitted, 2 absent
    for position in (1, 3):
        buy_admitted(engine, drop_id, at[position]["buyer"], at[position]["ticket_id"])
    engine.admit_drop(drop_id, now=START + 61_000)  # 4's window ran out: lapsed, 5 admitted
    assert engine.join_line(drop_id, "late-joiner", now=START + 62_000)[0] == "ok"  # fifo, position 9
    engine.check_in(drop_id, at[2]["ticket_id"], at[2]["buyer"], now=START + 63_000)  # back, at the end: 10
    engine.admit_drop(drop_id, now=START + 64_000)
    return drop_id


def test_a_real_line_exports_a_file_that_checks_out(engine, make_drop, tmp_path):
    drop_id = run_line(engine, make_drop)
    fairness = engine.fairness(drop_id)
    lines = engine.fairness_tickets(drop_id)
    assert len(lines) == 9 and all("buyer" not in line for line in lines)
    assert {line["outcome"] for line in lines} >= {"bought", "lapsed", "admitted"}
    [moved] = [line for line in lines if line["first_position"] is not None]
    assert moved["position"] == 10 and moved["first_position"] == 2
    assert verify(fairness, lines) == []
    path = tmp_path / "fairness.jsonl"
    path.write_bytes(engine.fairness_file(drop_id))
    done = subprocess.run([sys.executable, "-m", "dropsvc", "verify-fairness", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

    tampered = [dict(line) for line in lines]
    placed = {line["position"]: line for line in tampered}
    first, second = placed[1], placed[4]
    first["position"], second["position"] = second["position"], first["position"]
    assert verify(fairness, tampered)
    changed = dict(fairness, seed="00" * 32)
    assert verify(changed, lines)
    path.write_text("\n".join(json.dumps(line) for line in [fairness, *tampered]) + "\n")
    done = subprocess.run([sys.executable, "-m", "dropsvc", "verify-fairness", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "draw key puts it at" in done.stdout, done.stdout
