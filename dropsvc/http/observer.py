"""The one middleware that times every request for ``/metrics`` and the access log.

Kept to the minimum on purpose, since it runs on the purchase path: two
``perf_counter_ns`` calls, the route template falcon already resolved, the
status as the responder set it (turned into a number through a small
cache), :meth:`RequestStats.record` (integers in memory) and the access log's
sampling decision. No string is built unless a line is written. Measured
cost: see the README's "Metrics and health".
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any

import falcon
from falcon.util.misc import http_status_to_code

from dropsvc.obs.access_log import AccessLog
from dropsvc.obs.metrics import RequestStats


class RequestObserver:
    """Falcon middleware: records each request's route, method, status and duration."""

    def __init__(self, stats: RequestStats, access_log: AccessLog | None) -> None:
        self.record = stats.record
        self.access_log = access_log
        self._codes: dict[Any, int] = {}  # resp.status as set (201, "200 OK"...) -> 201, 200

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.t0 = perf_counter_ns()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        now = perf_counter_ns()
        try:
            elapsed = now - req.context.t0
        except AttributeError:  # refused before the request middleware ran (falcon's own 400)
            elapsed = 0
        status = resp.status
        code = self._codes.get(status)
        if code is None:
            code = self._codes[status] = http_status_to_code(status)
        context = resp.context  # the responder's outcome, the error serializer's code
        self.observed(req.uri_template, req.method, code, elapsed, now, getattr(context, "outcome", None),
                      getattr(context, "error", None))

    def observed(self, route: str | None, method: str, code: int, elapsed_ns: int, now_ns: int,
                 outcome: str | None, error: str | None) -> None:
        """Count a finished request and offer it to the access log (the fast path calls this too)."""
        self.record(route, method, code, elapsed_ns)
        if self.access_log is not None:
            self.access_log.write(method, route, code, elapsed_ns, now_ns, outcome, error)
