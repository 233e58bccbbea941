"""The ``dropsvc`` command (SPEC 10): serve, drop create|list|show, check, migrate.

Exit codes: 0 done, 1 the operation failed or found a problem (a broken
invariant, a refused drop, an unknown id), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from dropsvc import Engine, MigrationError, StorageError
from dropsvc.config import LOG_LEVELS, SERVERS, SYNCHRONOUS_MODES, Config, ConfigError
from dropsvc.drops import DropError, present_drop
from dropsvc.logs import EventLogger, configure

CONFIG_FLAGS = ("db", "host", "port", "workers", "server", "synchronous", "readers", "log_level",
                "public_url")
DROP_FIELDS = (  # (flag, type, help) for `drop create`
    ("slug", str, "URL name: lower-case letters, digits, inner dashes (required)"),
    ("name", str, "display name (required)"),
    ("price", int, "price per unit in VND (required)"),
    ("total_stock", int, "units for sale (required)"),
    ("description", str, "longer text"),
    ("image_url", str, "http(s) URL or /path of the picture"),
    ("per_user_limit", int, "most units one shopper may hold (default 1)"),
    ("hold_seconds", int, "how long a reservation waits for payment (default 600)"),
    ("starts_at", int, "opening time, Unix milliseconds (default now)"),
    ("ends_at", int, "closing time, Unix milliseconds (default open-ended)"),
)


class CommandError(Exception):
    """A failure to report on one line: ``dropsvc: <message>``, then exit ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def open_engine(config: Config, migrate: bool = True, autocheckpoint: int = 1000) -> Engine:
    try:
        return Engine(config.db, readers=config.readers, synchronous=config.synchronous, migrate=migrate,
                      autocheckpoint=autocheckpoint)
    except MigrationError as error:
        raise CommandError(str(error), 2) from None
    except StorageError as error:
        raise CommandError(f"cannot open {config.db}: {error}", 2) from None


# -- commands -------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    from dropsvc.app import create_app
    from dropsvc.demo import seed_demo
    from dropsvc.server import serve
    from dropsvc.workers import BackgroundWorker

    if config.workers != 1:
        raise CommandError(f"--workers {config.workers}: only 1 worker is supported for now", 2)
    log.info("starting", config=config.describe())
    # checkpoints leave the commit path: the background worker (one per database) runs them
    with open_engine(config, autocheckpoint=0) as engine:
        if args.demo:
            drop_id, created = seed_demo(engine)
            log.info("demo_drop", drop_id=drop_id, created=created,
                     url=f"{config.public_url}/api/drops/{drop_id}")
        background = BackgroundWorker(engine, log=log).start()
        try:
            serve(create_app(engine, config), config, log)
        except OSError as error:
            reason = error.strerror or error
            raise CommandError(f"cannot listen on {config.host}:{config.port}: {reason}") from None
        finally:
            background.stop()
    log.info("engine_closed", db=config.db)
    return 0


def cmd_drop_create(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    fields = {name: getattr(args, name) for name, _, _ in DROP_FIELDS if getattr(args, name) is not None}
    with open_engine(config) as engine:
        try:
            drop_id = engine.create_drop(**fields)
        except DropError as error:
            raise CommandError(f"{error.code}: {error.message}") from None
        print_json(present_drop(engine.get_drop(drop_id)))
    return 0


def cmd_drop_list(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    with open_engine(config) as engine:
        drops = [present_drop(row) for row in engine.list_drops()]
    if args.json:
        print_json(drops)
        return 0
    print(f"{'ID':>6}  {'SLUG':<24} {'STATUS':<9} {'SOLD':>15} {'PRICE':>14}  NAME")
    for drop in drops:
        sold = f"{drop['sold']}/{drop['total_stock']}"
        print(f"{drop['id']:>6}  {drop['slug']:<24} {drop['status']:<9} {sold:>15} "
              f"{drop['price']:>14,}  {drop['name']}")
    return 0


def cmd_drop_show(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    with open_engine(config) as engine:
        row = engine.get_drop(args.id) if 0 < args.id < 2**63 else None
    if row is None:
        raise CommandError(f"no drop with id {args.id}")
    print_json(present_drop(row))
    return 0


def cmd_check(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    if not os.path.exists(config.db):
        raise CommandError(f"no database at {config.db}", 2)
    with open_engine(config, migrate=False) as engine:
        problems = engine.check()
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print("ok")
    return 0


def cmd_migrate(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    with open_engine(config) as engine:
        print(f"{config.db}: schema version {engine.schema_version}")
    return 0


# -- the parser -----------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="SQLite file (env DROPSVC_DB, default ./dropsvc.db)")
    common.add_argument("--synchronous", type=str.upper, choices=SYNCHRONOUS_MODES,
                        help="NORMAL, or FULL for durable commits (env DROPSVC_SYNCHRONOUS)")
    common.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, help="env DROPSVC_LOG_LEVEL")

    parser = argparse.ArgumentParser(prog="dropsvc", description=__doc__.split("\n")[0],
                                     epilog="Flags override the DROPSVC_* environment variables.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the HTTP service")
    serve.add_argument("--host", help="address to bind (env DROPSVC_HOST, default 127.0.0.1)")
    serve.add_argument("--port", help="port (env DROPSVC_PORT, default 8000)")
    serve.add_argument("--workers", help="worker processes (env DROPSVC_WORKERS); only 1 works for now, "
                                         "more come later")
    serve.add_argument("--server", choices=SERVERS, help="WSGI server (env DROPSVC_SERVER, default bjoern)")
    serve.add_argument("--readers", help="reader handles (env DROPSVC_READERS, default 4)")
    serve.add_argument("--public-url", help="URL shoppers reach (env DROPSVC_PUBLIC_URL)")
    serve.add_argument("--demo", action="store_true", help="create the demo drop (demo-sneaker) if missing")
    serve.set_defaults(handler=cmd_serve)

    drop = commands.add_parser("drop", help="create, list or show drops")
    drop_commands = drop.add_subparsers(dest="drop_command", required=True, metavar="ACTION")
    create = drop_commands.add_parser("create", parents=[common], help="create a drop (prints it as JSON)")
    for name, kind, text in DROP_FIELDS:
        create.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, help=text,
                            required=name in ("slug", "name", "price", "total_stock"))
    create.set_defaults(handler=cmd_drop_create)
    listing = drop_commands.add_parser("list", parents=[common], help="list drops")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.set_defaults(handler=cmd_drop_list)
    show = drop_commands.add_parser("show", parents=[common], help="one drop as JSON")
    show.add_argument("id", type=int, help="the drop's id")
    show.set_defaults(handler=cmd_drop_show)

    check = commands.add_parser("check", parents=[common],
                                help="verify the stock invariant (exit 1 if broken)")
    check.set_defaults(handler=cmd_check)
    migrate = commands.add_parser("migrate", parents=[common], help="bring the schema up to date")
    migrate.set_defaults(handler=cmd_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dropsvc`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    overrides = {name: getattr(args, name, None) for name in CONFIG_FLAGS}
    try:
        config = Config.load(os.environ, **overrides)
    except ConfigError as error:
        print(f"dropsvc: {error}", file=sys.stderr)
        return 2
    log = configure(config.log_level, config.secrets)
    try:
        return args.handler(args, config, log)
    except CommandError as error:
        print(f"dropsvc: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
