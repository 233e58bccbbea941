"""dropsvc.fairness: a line's fairness file checks out, and each kind of tampering is named (SPEC 11, Audit)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import subprocess
import sys

import pytest

from dropsvc.fairness import expected_positions, verify

SEED = bytes(range(32))


def key(seed: bytes, ticket_id: int) -> str:  # written out again on purpose: the test's own HMAC
    return hmac.new(seed, str(ticket_id).encode(), hashlib.sha256).hexdigest()


def line_file(seed: bytes = SEED, prequeue: int = 8, fifo: int = 3) -> tuple[dict, list[dict]]:
    """A line as the service would export it: positions by draw key, then fifo; admissions in order.

    The ticket at position 3 was skipped as absent (never checked in); the ticket at position 5
    left; the rest were admitted one per second from t=1000, in position order.
    """
    tickets = [{"ticket_id": str(n), "joined_at": 100 + n, "kind": "prequeue", "draw_key": key(seed, n),
                "position": None, "checked_in_at": 500, "admitted_at": [], "outcome": "waiting"}
               for n in range(1, prequeue + 1)]
    tickets += [{"ticket_id": str(n), "joined_at": 900 + n, "kind": "fifo", "draw_key": None, "position": None,
                 "checked_in_at": 900 + n, "admitted_at": [], "outcome": "waiting"}
                for n in range(prequeue + 1, prequeue + fifo + 1)]
    order = sorted(tickets[:prequeue], key=lambda t: t["draw_key"]) + tickets[prequeue:]
    clock = 1000
    for position, ticket in enumerate(order, 1):
        ticket["position"] = position
        if position == 3:
            ticket["checked_in_at"], ticket["outcome"] = None, "absent"
        elif position == 5:
            ticket["outcome"] = "left"
        else:
            ticket["admitted_at"], ticket["outcome"] = [clock], "bought"
            clock += 1000
    header = {"commitment": hashlib.sha256(seed).hexdigest(), "seed": seed.hex()}
    return header, tickets


def by_position(tickets: list[dict], position: int) -> dict:
    return next(ticket for ticket in tickets if ticket["position"] == position)


def test_an_honest_line_checks_out():
    header, tickets = line_file()
    assert verify(header, tickets) == []
    assert expected_positions(SEED, tickets) == {int(t["ticket_id"]): t["position"] for t in tickets
                                                 if t["kind"] == "prequeue"}


def test_a_seed_that_is_not_the_committed_one():
    header, tickets = line_file()
    header["seed"] = secrets.token_bytes(32).hex()
    [problem] = verify(header, tickets)
    assert "is not the commitment" in problem


def test_no_seed_yet_checks_nothing():
    header, tickets = line_file()
    header["seed"] = None
    assert verify(header, tickets) == ["the seed is not revealed yet (null): nothing can be checked before the close"]


def test_a_swapped_position():
    header, tickets = line_file()
    first, second = by_position(tickets, 1), by_position(tickets, 2)
    first["position"], second["position"] = 2, 1
    problems = verify(header, tickets)
    assert any(f"ticket {second['ticket_id']}: placed at 1, but its draw key puts it at 2" in p
               for p in problems), problems


def test_a_forged_draw_key():
    header, tickets = line_file()
    by_position(tickets, 4)["draw_key"] = "0" * 64
    assert any("is not HMAC(seed" in problem for problem in verify(header, tickets))


def test_a_ticket_admitted_out_of_order():
    header, tickets = line_file()
    early, late = by_position(tickets, 2), by_position(tickets, 6)
    late["admitted_at"] = [early["admitted_at"][0] - 1]  # before the one ahead of it
    problems = verify(header, tickets)
    assert any(f"ticket {late['ticket_id']} (position 6) was admitted" in p for p in problems), problems


def test_an_absent_ticket_marked_checked_in():
    header, tickets = line_file()
    by_position(tickets, 3)["checked_in_at"] = 500  # it "was there", yet everyone behind it was admitted
    problems = verify(header, tickets)
    assert any("position 3), checked in, had not been" in p for p in problems), problems


def test_moving_back_needs_a_check_in_and_a_voided_ticket_is_passed_over():
    header, tickets = line_file()
    skipped = by_position(tickets, 3)
    skipped["first_position"], skipped["position"] = 3, 12  # absent, then checked in late: to the end of the line
    assert any("without checking in" in p for p in verify(header, tickets))
    skipped["checked_in_at"] = 9000
    assert verify(header, tickets) == []
    skipped["checked_in_at"] = 905  # back before ticket 10 joined (at 910), yet placed after it
    assert any("before a place given earlier" in p for p in verify(header, tickets))
    skipped["checked_in_at"] = 9000
    skipped["position"] = 2
    assert any("moved forward from 3 to 2" in p for p in verify(header, tickets))
    skipped["position"] = 12
    voided = by_position(tickets, 2)
    voided["admitted_at"], voided["outcome"] = [], "voided"
    assert verify(header, tickets) == []


def test_malformed_lines_are_named():
    header, tickets = line_file()
    broken = copy.deepcopy(tickets)
    del broken[0]["kind"]
    broken[1]["ticket_id"] = broken[2]["ticket_id"]
    problems = verify(header, broken)
    assert "line 2: missing kind" in problems and any("appears twice" in p for p in problems)


@pytest.mark.parametrize("tamper", ["none", "seed"])
def test_the_cli_reads_a_file_and_exits_1_naming_the_mismatch(tmp_path, tamper):
    header, tickets = line_file()
    if tamper == "seed":
        header["seed"] = "ab" * 32
    path = tmp_path / "fairness.jsonl"
    path.write_text("\n".join(json.dumps(item) for item in [header, *tickets]) + "\n")
    done = subprocess.run([sys.executable, "-m", "dropsvc", "verify-fairness", str(path)],
                          capture_output=True, text=True, timeout=60)
    if tamper == "none":
        assert done.returncode == 0 and done.stdout.startswith("ok: 11 tickets"), done.stdout + done.stderr
    else:
        assert done.returncode == 1 and "is not the commitment" in done.stdout, done.stdout + done.stderr
    missing = subprocess.run([sys.executable, "-m", "dropsvc", "verify-fairness", str(tmp_path / "none.jsonl")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
