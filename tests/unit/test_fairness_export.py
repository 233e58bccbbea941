"""A real line, run through joins, the close, check-ins, admission passes, purchases, a lapse and a late
check-in, exports a fairness file that ``dropsvc verify-fairness`` passes, and fails once tampered with."""

from __future__ import annotations

import json
import subprocess
import sys

from dropsvc.fairness import verify
from dropsvc.ledger import admission

START = 1_000_000
PRESENT = START - admission.CHECK_IN_LEAD_MS


def run_line(engine, make_drop) -> int:
    drop_id = make_drop(admission="queue", starts_at=START, admit_seconds=60, admission_margin=0, total_stock=3,
                        per_user_limit=1)
    assert engine.fairness_tickets(drop_id) is None  # nothing to export before the seed is revealed
    tickets = {}
    for n in range(1, 9):
        outcome, ticket = engine.join_line(drop_id, f"b{n}", now=START - 100 + n)
        assert outcome == "ok"
        tickets[n] = ticket["ticket_id"]
    engine.admit_drop(drop_id, now=START)  # the close
    by_position = {row["position"]: row for row in engine.read(
        "SELECT ticket_id, buyer, position FROM tickets WHERE drop_id = ?", (drop_id,))}
    for position in (1, 3, 4, 5, 6, 7, 8):  # position 2 is not there
        row = by_position[position]
        engine.check_in(drop_id, row["ticket_id"], row["buyer"], now=PRESENT)
    engine.admit_drop(drop_id, now=START + 10)  # 1, 2 (absent), 3, 4 admitted: 3 units
    for position in (1, 3):
        row = by_position[position]
        assert engine.purchase(drop_id, row["buyer"], 1, ticket_id=row["ticket_id"]).ok
    engine.admit_drop(drop_id, now=START + 61_000)  # position 4's window ran out: lapsed, 5 admitted
    assert engine.join_line(drop_id, "late-joiner", now=START + 62_000)[0] == "ok"  # fifo
    row = by_position[2]
    engine.check_in(drop_id, row["ticket_id"], row["buyer"], now=START + 63_000)  # back, at the end
    engine.admit_drop(drop_id, now=START + 64_000)
    return drop_id


def test_a_real_line_exports_a_file_that_checks_out(engine, make_drop, tmp_path):
    drop_id = run_line(engine, make_drop)
    fairness = engine.fairness(drop_id)
    lines = engine.fairness_tickets(drop_id)
    assert len(lines) == 9 and all("buyer" not in line for line in lines)
    assert {line["outcome"] for line in lines} >= {"bought", "lapsed", "admitted"}
    moved = next(line for line in lines if line["first_position"] is not None)
    assert moved["position"] > moved["first_position"] == 2
    assert verify(fairness, lines) == []
    path = tmp_path / "fairness.jsonl"
    path.write_bytes(engine.fairness_file(drop_id))
    done = subprocess.run([sys.executable, "-m", "dropsvc", "verify-fairness", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

    tampered = [dict(line) for line in lines]
    first, second = (next(line for line in tampered if line["position"] == p) for p in (1, 2))
    first["position"], second["position"] = second["position"], first["position"]
    assert verify(fairness, tampered)
    changed = dict(fairness, seed="00" * 32)
    assert verify(changed, lines)
    path.write_text("\n".join(json.dumps(line) for line in [fairness, *tampered]) + "\n")
    done = subprocess.run([sys.executable, "-m", "dropsvc", "verify-fairness", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "draw key puts it at" in done.stdout, done.stdout
