"""Access logs (SPEC 10): one JSON line per request, through the service's logger.

    {"ts": "...", "level": "info", "event": "access", "fields": {"route": "/api/drops/{drop_id}/purchases",
     "method": "POST", "status": 409, "duration_us": 61, "outcome": "sold_out", "error": "sold_out", "pid": 4242}}

A line names the route template, never the raw path (a path can carry an
order's ``public_ref``), and nothing of the body, the headers or the cookies:
no user id, no token, no buyer cookie.

Which requests get a line:

- errors always (not sampled, not capped): 5xx at ``error``, 4xx other than
  409 at ``info``; a 409 (sold out, per-user limit...) is an expected answer,
  logged like a success;
- every other request at ``info``, sampled: a fraction
  (``DROPSVC_ACCESS_LOG_SAMPLE``, default 1.0: all of them) and at most
  ``DROPSVC_ACCESS_LOG_MAX_PER_S`` lines per second per process (default
  100; 0 = no cap). A herd of 20,000 purchases/s would otherwise cost more
  in log lines than in purchases; what the cap drops is counted, and said in
  one ``access_log_suppressed`` line when the next second begins. The
  counts and latencies of every request are in ``/metrics`` regardless.

``DROPSVC_LOG_LEVEL=WARNING`` turns ordinary lines off (and 4xx lines);
5xx lines stay.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

from dropsvc.config import Config
from dropsvc.logs import LOGGER_NAME


class AccessLog:
    """Decides which requests get a line and writes it; ``write`` is called for every request."""

    def __init__(self, sample: float = Config.access_log_sample, max_per_s: int = Config.access_log_max_per_s,
                 logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.sample = sample
        self.max_per_s = max_per_s if max_per_s > 0 else 1 << 62
        self.pid = os.getpid()
        self._window_end = 0  # perf_counter_ns at which the current second's counts end
        self._lines = 0
        self._suppressed = 0

    def write(self, method: str, route: str | None, code: int, elapsed_ns: int, now_ns: int,
              outcome: str | None = None, error: str | None = None) -> None:
        """Log this request if it is an error, or if the sample and the cap let it through.

        ``outcome`` is what the engine decided (purchases: ``ok``, ``sold_out``..., or
        ``rejected`` when the request never reached it); ``error`` the envelope's code.
        Both are passed by whoever answered, never read back from the body.
        """
        if code < 400 or code == 409:
            if now_ns >= self._window_end:
                self._next_window(now_ns)
            if self._lines >= self.max_per_s:
                self._suppressed += 1
                return
            if self.sample < 1.0 and random.random() >= self.sample:
                return
            self._lines += 1
            level = logging.INFO
        else:
            level = logging.ERROR if code >= 500 else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        self.pid = os.getpid()  # cheap, and right after a fork
        fields: dict[str, Any] = {"route": route, "method": method, "status": code,
                                  "duration_us": elapsed_ns // 1000, "pid": self.pid}
        if outcome is not None:
            fields["outcome"] = outcome
        if error is not None:
            fields["error"] = error
        self.logger.log(level, "access", extra={"fields": fields})

    def _next_window(self, now_ns: int) -> None:
        if self._suppressed and self.logger.isEnabledFor(logging.INFO):
            self.logger.log(logging.INFO, "access_log_suppressed",
                            extra={"fields": {"lines": self._suppressed, "max_per_s": self.max_per_s,
                                              "pid": os.getpid()}})
        self._window_end = now_ns + 1_000_000_000
        self._lines = 0
        self._suppressed = 0
