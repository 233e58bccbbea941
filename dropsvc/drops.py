"""Drops: the fields a merchant sets, their validation, and how a drop looks to a shopper."""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from dropsvc._engine import ADMISSIONS, CHALLENGES
from dropsvc.challenges import ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_COST, MAX_COST

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MAX_PRICE = 10**12  # VND, no minor unit
MAX_STOCK = 10**9
MAX_PER_USER_LIMIT = 100
MAX_HOLD_SECONDS = 7 * 24 * 3600
MAX_TIME_MS = 10**14  # ~ year 5138: anything later is a unit mistake (seconds vs ms)
MAX_ADMIT_SECONDS = 7 * 24 * 3600
DEFAULT_ADMIT_SECONDS = {"queue": 120, "draw": 3600}  # SPEC 11

# What the admin routes and the CLI take (the HTTP/CLI surface)...
REQUIRED_FIELDS = ("slug", "name", "price", "total_stock")
OPTIONAL_FIELDS = ("description", "image_url", "currency", "per_user_limit", "hold_seconds",
                   "starts_at", "ends_at")
EDITABLE_FIELDS = ("slug", "name", "description", "image_url", "price", "total_stock",
                   "per_user_limit", "hold_seconds", "starts_at", "ends_at")
# ...and fair admission's fields (SPEC 11), on create and patch alike (LINE_FIELDS frozen once a ticket exists)
ADMISSION_FIELDS = ("admission", "admit_seconds", "admission_margin", "entries_close_at", "challenge", "pow_algorithm",
                    "pow_cost")
AVAILABLE_ADMISSIONS = ADMISSIONS  # open, queue, draw
QUEUE_FIELDS = ("admit_seconds", "admission_margin")  # NULL on an open drop
POW_FIELDS = ("pow_algorithm", "pow_cost")  # NULL unless the drop's challenge is pow
# what a line's tickets were issued under: changing them once the line has a ticket is tickets_exist
LINE_FIELDS = ("admission", "starts_at", "entries_close_at", "admission_margin", "challenge")


class DropError(ValueError):
    """A drop change that cannot be made; ``code`` is the API's error code."""

    code = "invalid_drop"
    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidDropField(DropError):
    code = "invalid_field"


class DropConflict(DropError):
    """The change clashes with what the database holds (a taken slug, stock below sold)."""

    code = "conflict"
    status = 409

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message, field)
        self.code = code


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _integer(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidDropField(f"{field} must be an integer", field)
    if not low <= value <= high:
        raise InvalidDropField(f"{field} must be from {low} to {high}", field)
    return value


def _text(field: str, value: Any, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise InvalidDropField(f"{field} must be a string", field)
    if not low <= len(value) <= high:
        raise InvalidDropField(f"{field} must be {low} to {high} characters", field)
    return value


def _check_field(field: str, value: Any) -> Any:
    if field == "slug":
        slug = _text(field, value, 1, 64)
        if not SLUG_PATTERN.match(slug):
            raise InvalidDropField("slug must be lower-case letters, digits and inner dashes", field)
        return slug
    if field == "name":
        name = _text(field, value, 1, 200)
        if not name.strip():
            raise InvalidDropField("name must not be blank", field)
        return name
    if field == "description":
        return _text(field, value, 0, 5000)
    if field == "image_url":
        url = _text(field, value, 0, 2000)
        if url and not url.startswith(("https://", "http://", "/")):
            raise InvalidDropField("image_url must be an http(s) URL or a path", field)
        return url
    if field == "currency":
        if value != "VND":
            raise InvalidDropField("currency must be VND (PayOS settles in VND only)", field)
        return value
    if field == "price":
        return _integer(field, value, 0, MAX_PRICE)
    if field == "total_stock":
        return _integer(field, value, 0, MAX_STOCK)
    if field == "per_user_limit":
        return _integer(field, value, 1, MAX_PER_USER_LIMIT)
    if field == "hold_seconds":
        return _integer(field, value, 1, MAX_HOLD_SECONDS)
    if field == "starts_at":
        return _integer(field, value, 0, MAX_TIME_MS)
    if field == "ends_at":
        return None if value is None else _integer(field, value, 0, MAX_TIME_MS)
    return _check_admission_field(field, value)


def _check_admission_field(field: str, value: Any) -> Any:
    if field == "admission":
        if value not in AVAILABLE_ADMISSIONS:
            raise InvalidDropField("admission must be 'open', 'queue' or 'draw'", field)
        return value
    if field == "admit_seconds":
        return None if value is None else _integer(field, value, 1, MAX_ADMIT_SECONDS)
    if field == "admission_margin":
        return None if value is None else _integer(field, value, 0, MAX_STOCK)
    if field == "entries_close_at":
        return None if value is None else _integer(field, value, 0, MAX_TIME_MS)
    if field == "challenge":
        if value not in CHALLENGES:
            raise InvalidDropField("challenge must be 'none' or 'pow'", field)
        return value
    if field == "pow_algorithm":
        if value is not None and value not in ALGORITHMS:
            raise InvalidDropField(f"pow_algorithm must be one of {', '.join(ALGORITHMS)}", field)
        return value
    if field == "pow_cost":
        return None if value is None else _integer(field, value, 1, MAX_COST)
    raise InvalidDropField(f"unknown field {field!r}", field)


def validate_new_drop(fields: dict[str, Any], now: int | None = None) -> dict[str, Any]:
    """The complete row for a new drop, defaults filled in (SPEC 3), or InvalidDropField."""
    for field in REQUIRED_FIELDS:
        if field not in fields:
            raise InvalidDropField(f"{field} is required", field)
    unknown = set(fields) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS) - set(ADMISSION_FIELDS)
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidDropField(f"unknown field {field!r}", field)
    now = now_ms() if now is None else now
    row = {"description": "", "image_url": "", "currency": "VND", "per_user_limit": 1,
           "hold_seconds": 600, "starts_at": now, "ends_at": None,
           "admission": "open", "admit_seconds": None, "admission_margin": None, "entries_close_at": None,
           "challenge": "none", "pow_algorithm": None, "pow_cost": None}
    for field, value in fields.items():
        row[field] = _check_field(field, value)
    if row["total_stock"] < 1:
        raise InvalidDropField("total_stock must be at least 1", "total_stock")
    _check_window(row)
    _settle_admission(row, fields)
    row["sold"] = 0
    row["created_at"] = now
    return row


def validate_drop_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Checked values for a PATCH; the cross-field checks need the stored row (merge_drop_changes)."""
    if not changes:
        raise InvalidDropField("nothing to change")
    checked = {}
    for field, value in changes.items():
        if field not in EDITABLE_FIELDS and field not in ADMISSION_FIELDS:
            raise InvalidDropField(f"{field!r} cannot be changed", field)
        checked[field] = _check_field(field, value)
    return checked


def merge_drop_changes(stored: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The drop after changes, or DropConflict/InvalidDropField when it would be unsound."""
    merged = {**stored, **changes}
    if merged["total_stock"] < stored["sold"]:
        raise DropConflict("stock_below_sold",
                           f"total_stock cannot go below the {stored['sold']} units already sold",
                           "total_stock")
    _check_window(merged)
    _settle_admission(merged, changes)
    return merged


def line_fields_changed(stored: dict[str, Any], merged: dict[str, Any]) -> list[str]:
    """The LINE_FIELDS a change moves: refused once the drop's line has a ticket (SPEC 11)."""
    return [field for field in LINE_FIELDS if merged[field] != stored[field]]


def _check_window(row: dict[str, Any]) -> None:
    if row["ends_at"] is not None and row["ends_at"] <= row["starts_at"]:
        raise InvalidDropField("ends_at must be after starts_at", "ends_at")


def _settle_admission(row: dict[str, Any], given: dict[str, Any]) -> None:
    """A line's unset fields take SPEC 11's defaults; an open drop has none.

    Giving one for an open drop is refused; a drop switched back to open
    drops the values it had as a queue. The same for the proof of work's terms
    and for ``entries_close_at``, a draw's only (``_settle_draw``).
    """
    _settle_challenge(row, given)
    _settle_draw(row, given)
    if row["admission"] in DEFAULT_ADMIT_SECONDS:
        if row["admit_seconds"] is None:
            row["admit_seconds"] = DEFAULT_ADMIT_SECONDS[row["admission"]]
        if row["admission_margin"] is None:
            row["admission_margin"] = max(1, row["total_stock"] // 5)
        return
    for field in QUEUE_FIELDS:
        if given.get(field) is not None:
            raise InvalidDropField(f"{field} is for queue drops only (this drop's admission is open)", field)
        row[field] = None


def _settle_draw(row: dict[str, Any], given: dict[str, Any]) -> None:
    """A draw: ``entries_close_at`` required, ``starts_at < entries_close_at <= ends_at - admit_seconds``
    (when ends_at is set; admit_seconds as it will be), no margin (0; another value refused). Any other
    drop has no ``entries_close_at`` (refused when given; a drop switched away from draw drops it)."""
    if row["admission"] != "draw":
        if given.get("entries_close_at") is not None:
            raise InvalidDropField("entries_close_at is for draw drops only (admission 'draw')", "entries_close_at")
        row["entries_close_at"] = None
        return
    if given.get("admission_margin") not in (None, 0):
        raise InvalidDropField("admission_margin is always 0 for a draw: the winners are exactly the stock's"
                               " worth, and units that come back go to the waitlist", "admission_margin")
    row["admission_margin"] = 0
    closes_at = row["entries_close_at"]
    if closes_at is None:
        raise InvalidDropField("entries_close_at is required for a draw (when entries close and the draw"
                               " happens, Unix milliseconds)", "entries_close_at")
    if closes_at <= row["starts_at"]:
        raise InvalidDropField("entries_close_at must be after starts_at (entries run from starts_at"
                               " to entries_close_at)", "entries_close_at")
    admit_ms = (row["admit_seconds"] or DEFAULT_ADMIT_SECONDS["draw"]) * 1000
    if row["ends_at"] is not None and closes_at > row["ends_at"] - admit_ms:
        raise InvalidDropField("entries_close_at must leave the winners admit_seconds before ends_at"
                               " (entries_close_at <= ends_at - admit_seconds)", "entries_close_at")


def _settle_challenge(row: dict[str, Any], given: dict[str, Any]) -> None:
    """A pow challenge needs a line and takes the default ALTCHA terms when unset; without one, none."""
    if row["challenge"] == "pow":
        if row["admission"] == "open":
            raise InvalidDropField("challenge 'pow' is for a drop with a line (admission queue or draw)",
                                   "challenge")
        if row["pow_algorithm"] is None:
            row["pow_algorithm"] = DEFAULT_ALGORITHM
        if row["pow_cost"] is None:
            row["pow_cost"] = DEFAULT_COST
        return
    for field in POW_FIELDS:
        if given.get(field) is not None:
            raise InvalidDropField(f"{field} is for drops whose challenge is pow", field)
        row[field] = None


def sales_start(row: dict[str, Any]) -> int:
    """When purchases open: ``starts_at``, or a draw's ``entries_close_at`` (the draw)."""
    return row["entries_close_at"] if row.get("admission") == "draw" else row["starts_at"]


def drop_status(row: dict[str, Any], now: int) -> str:
    """upcoming | live | sold_out | ended, as a shopper would read it now (a draw: upcoming until the draw)."""
    if row["ends_at"] is not None and now >= row["ends_at"]:
        return "ended"
    if now < sales_start(row):
        return "upcoming"
    if row["sold"] >= row["total_stock"]:
        return "sold_out"
    return "live"


def present_drop(row: dict[str, Any], now: int | None = None) -> dict[str, Any]:
    """The drop as the API shows it: the row plus remaining and status."""
    now = now_ms() if now is None else now
    drop = dict(row)
    drop["remaining"] = row["total_stock"] - row["sold"]
    drop["status"] = drop_status(row, now)
    return drop


def drop_etag(drop: dict[str, Any]) -> str:
    """A strong ETag over the presented drop (the row and its status)."""
    text = "|".join(f"{key}={drop[key]}" for key in sorted(drop))
    return '"' + hashlib.blake2b(text.encode(), digest_size=12).hexdigest() + '"'
