"""What the ``dropsvc`` commands share: the one-line failure, JSON output, opening the engine."""

from __future__ import annotations

import sys
from typing import Any

import orjson

from dropsvc._engine import MigrationError, StorageError
from dropsvc.config import Config
from dropsvc.ledger import Engine


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
