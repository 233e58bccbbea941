"""The one error envelope of SPEC 6: ``{"error": {"code": "...", "message": "..."}}``.

Responders raise ``ApiError`` (or use ``error_body`` for answers they render
themselves on the hot path); falcon's own errors (unknown route, wrong method,
bad headers) go through ``serialize_error`` too, with a code derived from the
status, so every error a client sees has the same shape.
"""

from __future__ import annotations

import falcon
import orjson

from dropsvc.logs import get_logger

# code and default message for falcon's built-in errors, which carry no code of ours
STATUS_CODES = {
    400: ("bad_request", "the request is malformed"),
    401: ("unauthorized", "authentication is required"),
    403: ("forbidden", "this is not allowed"),
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "this method is not allowed here"),
    406: ("not_acceptable", "no acceptable representation"),
    409: ("conflict", "the request conflicts with the resource's state"),
    411: ("length_required", "a Content-Length is required"),
    413: ("payload_too_large", "the body is too large"),
    414: ("uri_too_long", "the URI is too long"),
    415: ("unsupported_media_type", "the body must be JSON (Content-Type: application/json)"),
    416: ("range_not_satisfiable", "the range cannot be satisfied"),
    422: ("invalid_request", "the request cannot be processed"),
    429: ("too_many_requests", "too many requests"),
    431: ("headers_too_large", "the headers are too large"),
    500: ("internal_error", "internal error"),
    503: ("unavailable", "the service is unavailable; retry shortly"),
}

log = get_logger()


def error_body(code: str, message: str, **details: str) -> bytes:
    """The envelope as JSON bytes; ``details`` go in after the message (e.g. ``ticket_state``)."""
    return orjson.dumps({"error": {"code": code, "message": message, **details}})


class ApiError(falcon.HTTPError):
    """An HTTP error with the API's code: ``ApiError(409, "sold_out", "the drop is sold out")``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, title=code, description=message, headers=headers)
        self.error_code = code
        self.message = message


def invalid_field(message: str) -> ApiError:
    """422 ``invalid_field``; the message names the field."""
    return ApiError(422, "invalid_field", message)


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


def error_code(error: falcon.HTTPError) -> str:
    """Our code for any HTTPError, falcon's own included."""
    code = getattr(error, "error_code", None)
    if code:
        return code
    if error.status_code in STATUS_CODES:
        return STATUS_CODES[error.status_code][0]
    title = (error.title or "error").lower()
    return "".join(ch if ch.isalnum() else "_" for ch in title).strip("_") or "error"


def error_message(error: falcon.HTTPError) -> str:
    """Ours, falcon's description, or a plain default for the status."""
    message = getattr(error, "message", None) or error.description
    if not message and error.status_code in STATUS_CODES:
        message = STATUS_CODES[error.status_code][1]
    return str(message or error.title or "request failed")


def serialize_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Falcon's error serializer: always the JSON envelope, whatever the client accepts.

    The code is also left in ``resp.context.error`` for the request observer (access log).
    """
    code = error_code(error)
    resp.data = error_body(code, error_message(error))
    resp.content_type = falcon.MEDIA_JSON
    resp.context.error = code


def storage_unavailable(method: str, path: str, error: Exception) -> ApiError:
    """The 503 of a storage failure (busy, full, closed...), logged once: retry shortly.

    Falcon's error handler raises it; the purchase fast path renders it itself.
    """
    log.warning("storage_unavailable", method=method, path=path, error=type(error).__name__, detail=str(error))
    return ApiError(503, "storage_unavailable", "storage is unavailable; retry shortly", {"Retry-After": "1"})

