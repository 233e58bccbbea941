"""The merchant's hand on a line (SPEC 11), behind the admin token:

- ``GET  /api/admin/drops/{drop_id}/line``: the line's figures (``LineReport``);
- ``POST /api/admin/drops/{drop_id}/line/pause`` and ``.../line/resume``: stop and restart
  admission (the figures after); pausing a paused line changes nothing;
- ``POST /api/admin/drops/{drop_id}/line/extend`` ``{"seconds": N}`` (and ``"ticket_id"`` for one
  ticket): admitted tickets' windows N seconds longer;
- ``POST /api/admin/drops/{drop_id}/tickets/{ticket_id}/void``: take a ticket out of the line.

Each change is a structured log line (who changed the line is whoever holds the token).
"""

from __future__ import annotations

from typing import Any

import falcon

from dropsvc.http.errors import ApiError, invalid_field
from dropsvc.http.resources.admin import AdminResource, admin_only, checked_fields
from dropsvc.http.resources.common import parse_id, read_json_object, send_json
from dropsvc.http.resources.drops import drop_not_found, drop_number
from dropsvc.http.resources.tickets import no_queue, ticket_not_found
from dropsvc.ledger.line_controls import MAX_EXTEND_SECONDS
from dropsvc.logs import get_logger

BODY_LIMIT = 4096
EXTEND_FIELDS = frozenset(("seconds", "ticket_id"))

log = get_logger()


def refused(outcome: str, drop_id: object, ticket_id: object = None, state_code: str = "ticket_final") -> ApiError:
    """The 4xx of a ledger outcome other than ``ok``; a ticket's state refusing the change is ``state_code``."""
    if outcome == "drop_not_found":
        return drop_not_found(drop_id)
    if outcome == "ticket_not_found":
        return ticket_not_found(ticket_id)
    if outcome == "no_queue":
        return no_queue(drop_id)
    if outcome == "ended":
        return ApiError(409, "line_ended", f"drop {drop_id}'s line has ended: nothing to change")
    return ApiError(409, state_code, f"ticket {ticket_id} is {outcome}")


class LineResource(AdminResource):
    """What the line routes share: the figures of a drop's line, or 404."""

    def report(self, number: int, drop_id: str) -> dict[str, Any]:
        report = self.engine.line_report(number)
        if report is None:
            raise refused(self.engine.line_refusal(number), drop_id)
        return report


@falcon.before(admin_only)
class AdminLine(LineResource):
    """GET /api/admin/drops/{drop_id}/line: the line's figures."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        send_json(resp, self.report(drop_number(drop_id), drop_id))


@falcon.before(admin_only)
class AdminLineSwitch(LineResource):
    """POST .../line/pause or .../line/resume (one instance each): the figures after."""

    def __init__(self, *args: Any, paused: bool) -> None:
        super().__init__(*args)
        self.paused = paused

    def on_post(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        number = drop_number(drop_id)
        outcome = self.engine.pause_line(number, self.paused)
        if outcome != "ok":
            raise refused(outcome, drop_id)
        log.info("line_paused" if self.paused else "line_resumed", drop_id=number)
        send_json(resp, self.report(number, drop_id))


def extend_body(req: falcon.Request) -> tuple[int, int | None]:
    """``seconds`` (1..MAX_EXTEND_SECONDS) and the optional ``ticket_id`` of an extend, or 422."""
    body = checked_fields(read_json_object(req, BODY_LIMIT), EXTEND_FIELDS)
    seconds = body.get("seconds")
    if type(seconds) is not int or not 0 < seconds <= MAX_EXTEND_SECONDS:
        raise invalid_field(f"seconds must be an integer from 1 to {MAX_EXTEND_SECONDS}")
    ticket_id = None
    if "ticket_id" in body:
        ticket_id = parse_id(str(body["ticket_id"])) if type(body["ticket_id"]) in (int, str) else None
        if ticket_id is None:
            raise invalid_field("ticket_id must be a ticket's id (a positive integer, or its decimal string)")
    return seconds, ticket_id


@falcon.before(admin_only)
class AdminLineExtend(LineResource):
    """POST .../line/extend: ``{"extended": tickets, "line": figures}``."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        number = drop_number(drop_id)
        seconds, ticket_id = extend_body(req)
        outcome, extended = self.engine.extend_windows(number, seconds, ticket_id)
        if outcome != "ok":
            raise refused(outcome, drop_id, ticket_id, "not_admitted")
        log.info("line_extended", drop_id=number, seconds=seconds, ticket_id=ticket_id, tickets=extended)
        send_json(resp, {"extended": extended, "line": self.report(number, drop_id)})


@falcon.before(admin_only)
class AdminTicketVoid(AdminResource):
    """POST /api/admin/drops/{drop_id}/tickets/{ticket_id}/void: the ticket, now ``voided``."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, drop_id: str, ticket_id: str) -> None:
        number, ticket_number = drop_number(drop_id), parse_id(ticket_id)
        if ticket_number is None:
            raise ticket_not_found(ticket_id)
        outcome, ticket = self.engine.void_ticket(number, ticket_number)
        if outcome != "ok" or ticket is None:
            raise refused(outcome, drop_id, ticket_id)
        log.info("ticket_voided", drop_id=number, ticket_id=ticket_number)
        send_json(resp, {**ticket, "ticket_id": str(ticket["ticket_id"])})
