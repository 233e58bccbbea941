"""The ``dropsvc`` command (SPEC 10): serve, drop, line, check, migrate, backup, restore, verify-fairness,
payos-sandbox.

Exit codes: 0 done, 1 the operation failed or found a problem (a broken
invariant, a refused drop, an unknown id), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import struct
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

import orjson

from dropsvc._engine import StorageError
from dropsvc.config import LOG_LEVELS, SERVERS, SYNCHRONOUS_MODES, Config, ConfigError
from dropsvc.drops import DropError, present_drop
from dropsvc.fairness import verify as verify_fairness
from dropsvc.ledger.files import describe_file, file_problems, no_new_sidecars
from dropsvc.logs import EventLogger, configure
from dropsvc.run.cli_common import CommandError, open_engine, print_json
from dropsvc.run.cli_line import add_line_commands
from dropsvc.threads import server_signals_blocked

CONFIG_FLAGS = ("db", "host", "port", "workers", "server", "synchronous", "readers", "threads", "log_level",
                "public_url", "replicate", "replicate_sync_interval")
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
    ("admission", str, "open (default: first come, first served), queue (a line, admitted by the stock left)"
                       " or draw (entries until entries_close_at, then winners by lot)"),
    ("admit_seconds", int, "queue/draw: how long an admitted ticket may buy (default 120; a draw 3600)"),
    ("admission_margin", int, "queue: extra tickets in the first wave (default max(1, total_stock // 5))"),
    ("entries_close_at", int, "draw: when entries close and the draw happens, Unix milliseconds (required)"),
    ("challenge", str, "none (default) or pow: a join needs a solved ALTCHA proof of work"),
    ("pow_algorithm", str, "pow: SHA-256/384/512 or PBKDF2/SHA-256/384/512 (default PBKDF2/SHA-256)"),
    ("pow_cost", int, "pow: iterations of one try (default 5000)"),
)


# -- commands -------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    from dropsvc.run.demo import seed_demo, start_demo_payments
    from dropsvc.run.replication import ReplicationError, ReplicationSettings, Replicator
    from dropsvc.run.server import serve
    from dropsvc.run.wsgi import CHECKPOINTS_ENV, open_service

    replication = ReplicationSettings.of(config)
    log.info("starting", config=config.describe(),
             replicate=None if replication is None else replication.url)
    # the schema and the demo drop, once, before any serving process opens the file
    with open_engine(config, autocheckpoint=0) as engine:
        if args.demo:
            drop_id, created = seed_demo(engine)
            log.info("demo_drop", drop_id=drop_id, created=created,
                     url=f"{config.public_url}/api/drops/{drop_id}")
    replicator = None
    if replication is not None:
        try:
            replicator = Replicator(config.db, replication, log=log).start()
        except (ReplicationError, OSError) as error:
            raise CommandError(f"cannot replicate to {replication.url}: {error}") from None
    sandbox, address = None, f"{config.host}:{config.port}"
    try:
        if args.demo:  # the offline PayOS, unless a real one is configured: the demo pays at once
            address = "the demo PayOS sandbox"
            with server_signals_blocked():  # its threads leave the stop signals to the server
                sandbox, config = start_demo_payments(config)
            address = f"{config.host}:{config.port}"
            log.info("demo_payments", payos_base_url=config.payos_base_url, sandbox=sandbox is not None)
        # checkpoints leave the commit path: the background worker runs them, or Litestream while it
        # replicates (SPEC 8); granian's worker processes read the choice from the environment
        checkpoints = replicator is None
        os.environ[CHECKPOINTS_ENV] = "1" if checkpoints else "0"
        log.info("checkpoints", owner="background" if checkpoints else "litestream")
        serve(config, log, lambda: open_service(config, log, checkpoints=checkpoints))
    except OSError as error:
        raise CommandError(f"cannot listen on {address}: {error.strerror or error}") from None
    finally:
        if replicator is not None:
            replicator.stop()  # after the last write: Litestream ships it before it exits
        if sandbox is not None:
            sandbox.stop()
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


def cmd_backup(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    """Online copy (SQLite backup API, one reader snapshot) while the service sells."""
    if not os.path.exists(config.db):
        raise CommandError(f"no database at {config.db}", 2)
    target = os.path.abspath(args.path)
    if os.path.exists(target) and not args.force:
        raise CommandError(f"{target} exists: refusing to overwrite it (use --force)")
    if os.path.abspath(config.db) == target:
        raise CommandError("the backup path is the database itself", 2)
    # a fresh file beside the target, renamed into place: a half-written or --force'd copy is never seen
    partial = f"{target}.partial-{os.getpid()}"
    started = time.monotonic()
    try:
        with open_engine(config, migrate=False, autocheckpoint=0) as engine:
            engine.backup(partial)
        problems = file_problems(partial)
        os.replace(partial, target)
    except (StorageError, OSError) as error:
        raise CommandError(f"backup to {target} failed: {error}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
    log.info("backup_done", db=config.db, path=target, seconds=round(time.monotonic() - started, 3),
             problems=len(problems))
    print(target)
    print(f"{describe_file(target)}; invariant: {'ok' if not problems else 'BROKEN'}")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


SHM_DMS_OFFSET = 128  # SQLite's unix VFS: every open WAL connection holds a read lock on this -shm byte


def database_in_use(db: str) -> bool:
    """Whether another process has the database open (a ``dropsvc serve``, Litestream, a CLI).

    Asks the kernel whether a write lock on the -shm file's DMS byte would
    conflict (F_GETLK): SQLite holds a shared lock there for as long as a
    connection is open. Linux ``struct flock`` layout, like the rest of the engine.
    """
    try:
        fd = os.open(db + "-shm", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        probe = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, SHM_DMS_OFFSET, 1, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
        return struct.unpack("hhqqi", answer)[0] != fcntl.F_UNLCK
    finally:
        os.close(fd)


def cmd_restore(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    """Replace --db's content with a backup whose invariant holds; the old content is kept beside it."""
    source = os.path.abspath(args.path)
    if not os.path.isfile(source):
        raise CommandError(f"no backup file at {source}", 2)
    if os.path.abspath(config.db) == source:
        raise CommandError("the backup is the database itself", 2)
    problems = file_problems(source)
    if problems:
        for problem in problems:
            print(problem)
        raise CommandError(f"{source}: the invariant is broken ({len(problems)} problems); not restoring it")
    if database_in_use(config.db):
        raise CommandError(f"{config.db} is open in another process (dropsvc serve?): stop it first; "
                           "a running service would not see the restore")
    existed = os.path.exists(config.db)
    before = describe_file(config.db) if existed else "nothing (new file)"
    saved = None
    try:
        with open_engine(config, autocheckpoint=0) as engine:
            if existed:
                saved = f"{config.db}.replaced-{time.strftime('%Y%m%dT%H%M%S')}"
                engine.backup(saved)
            with no_new_sidecars(source):
                engine.restore(source)
            after_problems = engine.check()
    except StorageError as error:
        raise CommandError(f"restore into {config.db} failed: {error}") from None
    with open_engine(config):  # a backup of an older schema is migrated now, not at the next start
        pass
    log.info("restore_done", db=config.db, source=source, saved=saved, problems=len(after_problems))
    print(f"restored {source} into {config.db}")
    print(f"replaced: {before}" + (f" (kept as {saved})" if saved else ""))
    print(f"now: {describe_file(config.db)}; invariant: {'ok' if not after_problems else 'BROKEN'}")
    for problem in after_problems:
        print(problem)
    return 1 if after_problems else 0


def read_fairness(source: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the /fairness object, the ticket lines) from a fairness file, or from the URL of ``/fairness``."""
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=30) as reply:
                header = orjson.loads(reply.read())
            with urllib.request.urlopen(source.rstrip("/") + "/tickets", timeout=120) as reply:
                lines = reply.read().splitlines()
        else:
            with open(source, "rb") as file:
                first, *lines = file.read().splitlines()
            header = orjson.loads(first)
        tickets = [orjson.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as error:  # unreadable, unreachable, HTTP errors, not JSON lines
        raise CommandError(f"cannot read {source}: {error}", 2) from None
    if not isinstance(header, dict) or not all(isinstance(ticket, dict) for ticket in tickets):
        raise CommandError(f"{source}: not a fairness file (JSON objects, one per line)", 2)
    return header, tickets


def cmd_verify_fairness(args: argparse.Namespace, config: Config, log: EventLogger) -> int:
    """Recompute a line's commitment, draw keys, positions and admission order (SPEC 11, Audit)."""
    header, tickets = read_fairness(args.source)
    problems = verify_fairness(header, tickets)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"ok: {len(tickets)} tickets; the seed matches the commitment, the order and the admissions follow it")
    return 0


def cmd_payos_sandbox(argv: Sequence[str]) -> int:
    """``dropsvc payos-sandbox ...``: the offline PayOS (its own flags; see --help)."""
    from dropsvc.payments.sandbox.cli import run_sandbox_cli

    return run_sandbox_cli(list(argv))


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
    serve.add_argument("--workers", help="worker processes sharing the database (env DROPSVC_WORKERS, default 1)")
    serve.add_argument("--server", choices=SERVERS, help="WSGI server (env DROPSVC_SERVER, default bjoern)")
    serve.add_argument("--readers", help="reader handles (env DROPSVC_READERS, default 4)")
    serve.add_argument("--threads", help="granian's threads per worker (env DROPSVC_THREADS, default 16)")
    serve.add_argument("--public-url", help="URL shoppers reach (env DROPSVC_PUBLIC_URL)")
    serve.add_argument("--demo", action="store_true", help="create the demo drop (demo-sneaker) if missing")
    serve.add_argument("--replicate", metavar="URL",
                       help="run Litestream beside the service, replicating to URL (file://, s3://...; "
                            "env DROPSVC_REPLICATE)")
    serve.add_argument("--replicate-sync-interval", metavar="DURATION",
                       help="how often Litestream ships the WAL, e.g. 250ms, 1s "
                            "(env DROPSVC_REPLICATE_SYNC_INTERVAL, default 1s)")
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

    backup = commands.add_parser("backup", parents=[common],
                                 help="online copy of the database to PATH (exit 1 if the copy's invariant is broken)")
    backup.add_argument("path", metavar="PATH", help="the new file")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    backup.set_defaults(handler=cmd_backup)
    restore = commands.add_parser("restore", parents=[common],
                                  help="replace the database's content with a backup (service stopped)")
    restore.add_argument("path", metavar="PATH", help="a file made by `dropsvc backup` (or litestream restore)")
    restore.set_defaults(handler=cmd_restore)
    fairness = commands.add_parser("verify-fairness",
                                   help="check a line's fairness file or /fairness URL (exit 1 on a mismatch)")
    fairness.add_argument("source", metavar="URL_OR_FILE",
                          help="the URL of GET /api/drops/{id}/fairness, or a saved fairness file")
    fairness.set_defaults(handler=cmd_verify_fairness)
    add_line_commands(commands, common)
    commands.add_parser("payos-sandbox", add_help=False,
                        help="the offline PayOS sandbox (see dropsvc payos-sandbox --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dropsvc`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["payos-sandbox"]:  # its own parser and settings (PAYOS_*)
        try:
            return cmd_payos_sandbox(argv[1:])
        except KeyboardInterrupt:
            return 130
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
