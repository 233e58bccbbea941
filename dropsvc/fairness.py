"""Checking a line's fairness file (SPEC 11, Audit): what ``dropsvc verify-fairness`` recomputes.

A fairness file is the ``/fairness`` object (``commitment``, ``seed``) on its first line and one
ticket per line after it: ``ticket_id``, ``joined_at``, ``kind``, ``draw_key``, ``position``,
``checked_in_at``, ``admitted_at`` (every admission, a list), ``outcome``. Anyone holding one can
check, without the service:

- the seed is the one committed to at the drop's creation (``SHA-256(seed) == commitment``);
- every draw key is ``HMAC-SHA256(key = the seed, message = ticket_id)``; ``fifo`` tickets have none;
- a draw's tickets (kind ``entry``) are all entries: a draw takes no ``fifo`` joins after its close;
- the order was fixed by the seed: the pre-queue (or the draw's entries) in ascending draw-key
  order takes positions 1..P, ``fifo`` tickets follow in join order. A ticket may only have moved
  back from its first place (``first_position``: skipped as absent, it checked in later and went
  to the end of the line), never forward, and only once it checked in; the places after P were
  given in time order (a join at ``joined_at``, a return at ``checked_in_at``);
- admission followed the order: no ticket was admitted while a ticket ahead of it, checked in by
  then and not voided, had never been admitted yet (the file records admissions, not every
  state change, so a ticket that waited again after an admission of its own is not checked).

What it cannot show: that the operator, who sees the seed, favoured no one (README, Fair admission).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

DRAW_KIND = "entry"  # a draw's tickets, every one of them
PREQUEUE_KINDS = ("prequeue", DRAW_KIND)
KINDS = (*PREQUEUE_KINDS, "fifo")
TICKET_FIELDS = ("ticket_id", "joined_at", "kind", "draw_key", "position", "checked_in_at", "admitted_at",
                 "outcome")
HEX_SEED_LENGTH = 64


def draw_key(seed: bytes, ticket_id: int | str) -> str:
    """HMAC-SHA256(key = the seed's bytes, message = the ticket id in decimal, UTF-8), lower-case hex."""
    return hmac.new(seed, str(ticket_id).encode("utf-8"), hashlib.sha256).hexdigest()


def commitment_of(seed: bytes) -> str:
    """SHA-256 over the seed's bytes, lower-case hex."""
    return hashlib.sha256(seed).hexdigest()


def _seed_problems(header: dict[str, Any]) -> tuple[list[str], bytes | None]:
    seed_hex, commitment = header.get("seed"), header.get("commitment")
    if not isinstance(commitment, str) or len(commitment) != HEX_SEED_LENGTH:
        return ["the first line has no commitment (64 hex characters)"], None
    if seed_hex is None:
        return ["the seed is not revealed yet (null): nothing can be checked before the close"], None
    try:
        seed = bytes.fromhex(seed_hex) if isinstance(seed_hex, str) and len(seed_hex) == HEX_SEED_LENGTH else None
    except ValueError:
        seed = None
    if seed is None:
        return ["the seed is not 64 hex characters"], None
    if commitment_of(seed) != commitment.lower():
        return [f"SHA-256(seed) = {commitment_of(seed)} is not the commitment {commitment}"], None
    return [], seed


def _shape_problems(tickets: list[dict[str, Any]]) -> list[str]:
    problems = []
    seen: set[int] = set()
    for line, ticket in enumerate(tickets, 2):
        missing = [name for name in TICKET_FIELDS if name not in ticket]
        if missing:
            problems.append(f"line {line}: missing {', '.join(missing)}")
            continue
        try:
            number = int(ticket["ticket_id"])
        except (TypeError, ValueError):
            problems.append(f"line {line}: ticket_id {ticket['ticket_id']!r} is not a number")
            continue
        if number in seen:
            problems.append(f"line {line}: ticket {number} appears twice")
        seen.add(number)
        if ticket["kind"] not in KINDS:
            problems.append(f"ticket {number}: unknown kind {ticket['kind']!r}")
        if not isinstance(ticket["admitted_at"], list):
            problems.append(f"ticket {number}: admitted_at must be a list")
    kinds = {ticket.get("kind") for ticket in tickets}
    if DRAW_KIND in kinds and len(kinds) > 1:
        problems += [f"ticket {ticket['ticket_id']}: a draw's tickets are all entries, not {ticket['kind']!r}"
                     for ticket in tickets if ticket.get("kind") != DRAW_KIND]
    return problems


def expected_positions(seed: bytes, tickets: list[dict[str, Any]]) -> dict[int, int]:
    """Each pre-queue ticket's place as the seed fixed it: ascending draw key, positions 1..P."""
    keyed = sorted((draw_key(seed, ticket["ticket_id"]), int(ticket["ticket_id"]))
                   for ticket in tickets if ticket["kind"] in PREQUEUE_KINDS)
    return {number: position for position, (_, number) in enumerate(keyed, 1)}


def first_position(ticket: dict[str, Any]) -> Any:
    """Where the ticket was placed first (``first_position`` when it moved back, else ``position``)."""
    first = ticket.get("first_position")
    return ticket["position"] if first is None else first


def _order_problems(seed: bytes, tickets: list[dict[str, Any]]) -> list[str]:
    problems = []
    expected = expected_positions(seed, tickets)
    prequeue_size = len(expected)
    given: set[int] = set()
    placements = []  # (when, position): fifo joins and returns after absence, each at the end of the line
    last_fifo = (0, prequeue_size)
    for ticket in sorted(tickets, key=lambda item: int(item["ticket_id"])):
        number, position, first = int(ticket["ticket_id"]), ticket["position"], first_position(ticket)
        if ticket["kind"] == "fifo":
            if ticket["draw_key"] is not None:
                problems.append(f"ticket {number}: a fifo ticket with a draw key")
        elif ticket["draw_key"] != draw_key(seed, number):
            problems.append(f"ticket {number}: draw key {ticket['draw_key']} is not HMAC(seed, {number})"
                            f" = {draw_key(seed, number)}")
        if not isinstance(position, int) or not isinstance(first, int):
            problems.append(f"ticket {number}: no position")
            continue
        if position in given:
            problems.append(f"ticket {number}: position {position} given twice")
        given.add(position)
        if ticket["kind"] in PREQUEUE_KINDS and first != expected[number]:
            problems.append(f"ticket {number}: placed at {first}, but its draw key puts it at {expected[number]}")
        elif ticket["kind"] == "fifo":
            if first <= last_fifo[1]:
                problems.append(f"ticket {number}: fifo position {first} is not after the pre-queue and the"
                                " tickets that joined before it")
            last_fifo = (number, first)
            placements.append((ticket["joined_at"], first, number))
        if position != first:
            if position < first:
                problems.append(f"ticket {number}: moved forward from {first} to {position}")
            elif ticket["checked_in_at"] is None:
                problems.append(f"ticket {number}: moved back from {first} to {position} without checking in")
            else:
                placements.append((ticket["checked_in_at"], position, number))
    placements.sort()
    for (_, before, _), (when, position, number) in zip(placements, placements[1:], strict=False):
        if position < before:
            problems.append(f"ticket {number}: placed at {position} at {when}, before a place given earlier")
    return problems


def _admission_problems(tickets: list[dict[str, Any]]) -> list[str]:
    problems = []
    ranked = sorted((ticket for ticket in tickets if isinstance(ticket["position"], int)),
                    key=lambda ticket: ticket["position"])
    for index, ticket in enumerate(ranked):
        for at in ticket["admitted_at"]:
            for ahead in ranked[:index]:
                if ahead["outcome"] == "voided" or ahead["checked_in_at"] is None or ahead["checked_in_at"] > at:
                    continue
                if not any(first <= at for first in ahead["admitted_at"]) and ahead["outcome"] != "left":
                    problems.append(f"ticket {ticket['ticket_id']} (position {ticket['position']}) was admitted at"
                                    f" {at} while ticket {ahead['ticket_id']} (position {ahead['position']}),"
                                    " checked in, had not been")
                    break
    return problems


def verify(header: dict[str, Any], tickets: Iterable[dict[str, Any]]) -> list[str]:
    """Every mismatch in a fairness file, one line each; empty when it checks out."""
    tickets = list(tickets)
    problems, seed = _seed_problems(header)
    if seed is None:
        return problems
    problems += _shape_problems(tickets)
    if problems:
        return problems
    return _order_problems(seed, tickets) + _admission_problems(tickets)
