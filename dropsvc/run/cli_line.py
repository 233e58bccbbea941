"""``dropsvc line``: the merchant's hand on a queue drop's line from the shell (SPEC 11), on the
database file, beside a running service or not (the writes take the same cross-process lock):

    dropsvc line show DROP_ID               the figures, as JSON
    dropsvc line pause DROP_ID              stop admitting (windows still run out)
    dropsvc line resume DROP_ID             admit again, from the earliest waiting ticket
    dropsvc line extend DROP_ID SECONDS [--ticket TICKET_ID]
    dropsvc line void DROP_ID TICKET_ID     out of the line, shown as voided in the fairness export
"""

from __future__ import annotations

import argparse
from typing import Any

from dropsvc.config import Config
from dropsvc.ledger import Engine
from dropsvc.ledger.line_controls import MAX_EXTEND_SECONDS
from dropsvc.logs import EventLogger
from dropsvc.run.cli_common import CommandError, open_engine, print_json

REFUSALS = {"drop_not_found": "no drop with id {drop}", "ticket_not_found": "drop {drop} has no ticket {ticket}",
            "no_queue": "drop {drop} has no line: its admission is open", "ended": "drop {drop}'s line has ended"}


def refuse(outcome: str, args: argparse.Namespace) -> CommandError:
    """Exit 1 naming why the ledger refused (``outcome``)."""
    template = REFUSALS.get(outcome, "ticket {ticket} is " + outcome)
    return CommandError(template.format(drop=args.drop_id, ticket=getattr(args, "ticket_id", None)))


def report(engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    figures = engine.line_report(args.drop_id)
    if figures is None:
        raise refuse(engine.line_refusal(args.drop_id), args)
    return figures


def cmd_line_show(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    with open_engine(config) as engine:
        print_json(report(engine, args))
    return 0


def cmd_line_pause(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    with open_engine(config) as engine:
        outcome = engine.pause_line(args.drop_id, args.paused)
        if outcome != "ok":
            raise refuse(outcome, args)
        log.info("line_paused" if args.paused else "line_resumed", drop_id=args.drop_id)
        print_json(report(engine, args))
    return 0


def cmd_line_extend(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    if not 0 < args.seconds <= MAX_EXTEND_SECONDS:
        raise CommandError(f"SECONDS must be 1..{MAX_EXTEND_SECONDS}", 2)
    with open_engine(config) as engine:
        outcome, extended = engine.extend_windows(args.drop_id, args.seconds, args.ticket_id)
        if outcome != "ok":
            raise refuse(outcome, args)
        log.info("line_extended", drop_id=args.drop_id, seconds=args.seconds, ticket_id=args.ticket_id,
                 tickets=extended)
        print_json({"extended": extended, "line": report(engine, args)})
    return 0


def cmd_line_void(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    with open_engine(config) as engine:
        outcome, ticket = engine.void_ticket(args.drop_id, args.ticket_id)
        if outcome != "ok" or ticket is None:
            raise refuse(outcome, args)
        log.info("ticket_voided", drop_id=args.drop_id, ticket_id=args.ticket_id)
        print_json(ticket)
    return 0


def positive(text: str) -> int:
    """An id: a positive integer that fits SQLite's."""
    value = int(text)
    if not 0 < value < 2**63:
        raise argparse.ArgumentTypeError(f"{text} is not an id")
    return value


def add_line_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``dropsvc line ACTION``'s parsers, under the top-level ``commands``."""
    line = commands.add_parser("line", help="a queue drop's line: figures, pause, resume, extend, void")
    actions = line.add_subparsers(dest="line_command", required=True, metavar="ACTION")

    def action(name: str, text: str, handler: Any, **defaults: Any) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, parents=[common], help=text)
        parser.add_argument("drop_id", type=positive, metavar="DROP_ID")
        parser.set_defaults(handler=handler, **defaults)
        return parser

    action("show", "the line's figures as JSON", cmd_line_show)
    action("pause", "stop admitting (windows still run out)", cmd_line_pause, paused=True)
    action("resume", "admit again, from the earliest waiting ticket", cmd_line_pause, paused=False)
    extend = action("extend", "lengthen admitted tickets' windows", cmd_line_extend)
    extend.add_argument("seconds", type=int, metavar="SECONDS")
    extend.add_argument("--ticket", dest="ticket_id", type=positive, help="only this ticket's window")
    void = action("void", "take a ticket out of the line (voided, in the fairness export)", cmd_line_void)
    void.add_argument("ticket_id", type=positive, metavar="TICKET_ID")
