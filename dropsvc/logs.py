"""Structured logs (SPEC 10): one JSON object per line on stderr, never a secret.

    log = get_logger()
    log.info("listening", url="http://127.0.0.1:8000")
    -> {"ts":"2025-01-01T00:00:00.000Z","level":"info","event":"listening","fields":{"url":"..."}}

Fields whose name looks secret (token, key, secret, password, authorization)
are replaced by ``"[redacted]"``, and the values registered with ``configure``
(the admin token, the PayOS keys) are scrubbed from the whole line.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

LOGGER_NAME = "dropsvc"
REDACTED = "[redacted]"
SECRET_FIELD = re.compile(r"token|secret|password|passwd|api_?key|checksum|authorization|cookie", re.I)
MIN_SCRUBBED_LENGTH = 4  # shorter "secrets" would blank out ordinary words


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields with secret-looking names replaced (recursively for dicts)."""
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        if SECRET_FIELD.search(str(name)) and value is not None and not isinstance(value, bool):
            clean[name] = REDACTED
        elif isinstance(value, dict):
            clean[name] = redact(value)
        else:
            clean[name] = value
    return clean


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one JSON line: ts, level, event, fields (+ error)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= MIN_SCRUBBED_LENGTH},
                                    key=len, reverse=True))

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "fields": redact(getattr(record, "fields", None) or {}),
        }
        if record.exc_info:
            line["error"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        text = orjson.dumps(line, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


class EventLogger:
    """A thin front for ``logging``: ``log.info("event", key=value, ...)``."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def enabled(self, level: int) -> bool:
        return self._logger.isEnabledFor(level)

    def _log(self, level: int, event: str, fields: dict[str, Any], exc_info: bool = False) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={"fields": fields}, exc_info=exc_info)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An error with the traceback of the exception being handled."""
        self._log(logging.ERROR, event, fields, exc_info=True)


def configure(level: str = "INFO", secrets: Iterable[str] = (), stream: TextIO | None = None) -> EventLogger:
    """Send the service's logs to stderr (or ``stream``) as JSON lines at ``level``."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter(secrets))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return EventLogger(logger)


def get_logger() -> EventLogger:
    """The service's logger; ``configure`` decides where its lines go."""
    return EventLogger(logging.getLogger(LOGGER_NAME))
