"""What every resource needs: ids from the path, a JSON body in, ETags."""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from dropsvc.http.errors import ApiError

MAX_ID = 2**63 - 1  # SQLite's INTEGER
MAX_ID_DIGITS = len(str(MAX_ID))
JSON_TYPE = "application/json"


def parse_id(text: str) -> int | None:
    """A positive integer id from a path segment (ASCII digits only), or None."""
    if not text or len(text) > MAX_ID_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def is_json(content_type: str | None) -> bool:
    """True for ``application/json``, parameters (charset) allowed."""
    if content_type is None:
        return False
    return content_type == JSON_TYPE or content_type.partition(";")[0].strip().lower() == JSON_TYPE


def read_json_object(req: falcon.Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, read once: 415 / 413 / 400 / 422 otherwise."""
    if not is_json(req.content_type):
        raise ApiError(415, "unsupported_media_type",
                       "the body must be JSON (Content-Type: application/json)")
    length = req.content_length
    if length is not None and length > limit:
        raise ApiError(413, "payload_too_large", f"the body must be at most {limit} bytes")
    if length is None and req.env.get("wsgi.input_terminated"):
        data = req.stream.read(limit + 1)  # chunked, and the server says reading to the end is safe
    elif length is None and req.get_header("Transfer-Encoding"):
        raise ApiError(411, "length_required", "send the body with a Content-Length")
    else:
        data = req.bounded_stream.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"the body must be at most {limit} bytes")
    if not data:
        raise ApiError(400, "malformed_json", "the body is empty; send a JSON object")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    if type(body) is not dict:
        raise ApiError(422, "invalid_field", "the body must be a JSON object")
    return body


def etag_matches(req: falcon.Request, etag: str) -> bool:
    """Whether If-None-Match names ``etag`` (a quoted strong tag) or ``*``."""
    wanted = req.if_none_match
    if not wanted:
        return False
    opaque = etag[1:-1]
    return any(tag == "*" or tag == opaque for tag in wanted)


def send_json(resp: falcon.Response, payload: Any, status: int = 200) -> None:
    """Serialize with orjson straight into the body."""
    resp.status = status
    resp.data = orjson.dumps(payload)
