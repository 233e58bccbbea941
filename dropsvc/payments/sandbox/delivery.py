"""Webhook delivery for the sandbox, retrying like PayOS does.

One background thread takes signed webhook bodies from a bounded queue and
POSTs them to the webhook URL. A non-2xx answer or a connection error is
retried after ``backoff`` seconds, doubling, up to ``max_attempts`` attempts.
Retries are scheduled, not slept, so one failing callback does not hold up
the others. Every attempt is logged (``deliveries()``).

Faults: ``copies`` delivers a body several times; ``reorder`` holds bodies
and releases them shuffled when ``reorder`` of them are held (``-1``: only
on ``flush()``).
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import queue
import random
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dropsvc.logs import get_logger

TICK = 0.05  # the longest the thread sleeps before looking at the stop flag again


@dataclass
class _Job:
    body: dict[str, Any]
    payload: bytes
    attempt: int = 0


_WAKE_UP = _Job({}, b"")


def post_json(url: str, payload: bytes, timeout: float) -> int:
    """POST ``payload`` as JSON to an http(s) URL, without proxies; the answer's status."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the webhook URL must be http:// or https://")
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(parts.hostname, parts.port, timeout=timeout)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=payload, headers={"Content-Type": "application/json",
                                                          "User-Agent": "payos-sandbox"})
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


class WebhookDelivery:
    """Queues, holds, shuffles, sends and retries webhook bodies; see the module docstring."""

    def __init__(self, url: Callable[[], str | None], *, max_attempts: int = 8, backoff: float = 0.1,
                 timeout: float = 3.0, queue_size: int = 1000, log_limit: int = 10_000, seed: int = 0) -> None:
        if max_attempts < 1 or backoff < 0 or timeout <= 0 or queue_size < 1:
            raise ValueError("max_attempts and queue_size must be >= 1, backoff >= 0, timeout > 0")
        self._url = url
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.timeout = timeout
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=queue_size)
        self._cond = threading.Condition()
        self._pending = 0  # queued + scheduled + in flight (held ones excluded)
        self._held: list[_Job] = []
        self._log: deque[dict[str, Any]] = deque(maxlen=log_limit)
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logger = get_logger()

    # -- control --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="payos-sandbox-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        try:
            self._queue.put_nowait(_WAKE_UP)  # don't wait for the next tick
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def reseed(self, seed: int) -> None:
        with self._cond:
            self._rng = random.Random(seed)

    def submit(self, body: dict[str, Any], copies: int = 1, reorder: int = 0) -> int:
        """Queue ``copies`` deliveries of ``body`` (or hold them when ``reorder``); how many were accepted."""
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        jobs = [_Job(body, payload) for _ in range(max(copies, 1))]
        with self._cond:
            if reorder:
                self._held.extend(jobs)
                if reorder < 0 or len(self._held) < reorder:
                    return len(jobs)
                jobs = self._take_held()
            self._pending += len(jobs)
        return self._enqueue(jobs)

    def flush(self) -> int:
        """Release every held body now, shuffled; how many."""
        with self._cond:
            jobs = self._take_held()
            self._pending += len(jobs)
        self._enqueue(jobs)
        return len(jobs)

    def held(self) -> int:
        with self._cond:
            return len(self._held)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is queued, scheduled or in flight (held bodies don't count)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def deliveries(self) -> list[dict[str, Any]]:
        """Every attempt so far, oldest first."""
        with self._cond:
            return [dict(entry) for entry in self._log]

    def clear_log(self) -> None:
        with self._cond:
            self._log.clear()

    # -- internals ------------------------------------------------------------------------------

    def _take_held(self) -> list[_Job]:
        jobs, self._held = self._held, []
        self._rng.shuffle(jobs)
        return jobs

    def _enqueue(self, jobs: list[_Job]) -> int:
        accepted = 0
        for job in jobs:
            try:
                self._queue.put_nowait(job)
                accepted += 1
            except queue.Full:
                self._record(job, None, "dropped: the delivery queue is full")
                self._finish()
        return accepted

    def _finish(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def _record(self, job: _Job, status: int | None, error: str | None) -> None:
        data = job.body.get("data") or {}
        entry = {"orderCode": data.get("orderCode"), "reference": data.get("reference"),
                 "paymentLinkId": data.get("paymentLinkId"), "amount": data.get("amount"),
                 "attempt": job.attempt, "status": status, "error": error,
                 "ok": status is not None and 200 <= status < 300, "at": time.time()}
        with self._cond:
            self._log.append(entry)

    def _run(self) -> None:
        scheduled: list[tuple[float, int, _Job]] = []
        order = itertools.count()
        while not self._stop.is_set():
            wait = TICK if not scheduled else min(max(scheduled[0][0] - time.monotonic(), 0.0), TICK)
            try:
                job = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                if job is _WAKE_UP:
                    continue
                heapq.heappush(scheduled, (time.monotonic(), next(order), job))
            except queue.Empty:
                pass
            while scheduled and scheduled[0][0] <= time.monotonic() and not self._stop.is_set():
                _, _, job = heapq.heappop(scheduled)
                if self._attempt(job):
                    self._finish()
                else:
                    delay = self.backoff * 2 ** (job.attempt - 1)
                    heapq.heappush(scheduled, (time.monotonic() + delay, next(order), job))

    def _attempt(self, job: _Job) -> bool:
        """One POST; True when the job is done (delivered, or no attempts left)."""
        job.attempt += 1
        url = self._url()
        if not url:
            self._record(job, None, "no webhook_url configured")
            return True
        status: int | None = None
        error: str | None = None
        try:
            status = post_json(url, job.payload, self.timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._record(job, status, error)
        delivered = status is not None and 200 <= status < 300
        if not delivered and job.attempt >= self.max_attempts:
            self._logger.warning("payos_sandbox_webhook_gave_up", attempts=job.attempt, status=status, error=error)
        return delivered or job.attempt >= self.max_attempts
