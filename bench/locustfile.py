"""A shopper journey under load (locust): list, poll the stock, buy with an Idempotency-Key, cancel some.

Run it through ``make bench-locust`` (bench/journey_check.py starts ``dropsvc
serve`` on a fresh drop, runs locust headless, then checks the database);
by hand, against a running service:

    LOCUST_DROP_SLUG=locust-drop LOCUST_REF_LOG=/tmp/refs.jsonl \\
        locust -f bench/locustfile.py --headless -u 200 -r 50 -t 30s --host http://127.0.0.1:8000

Each locust user is a stream of shoppers: a shopper (a fresh ``user_id``)
lists the drops, polls one drop's stock a few times (``If-None-Match`` with
the last ETag: 304 when nothing changed), buys one unit with a fresh
``Idempotency-Key`` (sometimes two, or a third to meet the per-user limit),
sometimes clicks "buy" twice with the same key, sometimes gives up after 1 ms
(a bad network: the answer is lost, the purchase usually made), sometimes
cancels a reservation, then leaves and the next shopper arrives. A purchase
that times out, fails to connect or gets a 5xx is retried with the SAME key
(up to ``RETRIES`` times): the service must answer the same order (200) and
never sell twice. Every purchase answer is logged as one JSON line (key, user,
attempt, status, public_ref) to ``LOCUST_REF_LOG`` so the checker can compare
the refs a key was answered with.

Expected answers count as successes in locust's table: 201/200 for a
purchase, 409 ``sold_out`` / ``per_user_limit``, 200/304 for a poll, 200 for a
cancel (409 when the order was already paid or expired). Anything else is a
failure there.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from typing import Any

from locust import HttpUser, between, events, task

DROP_SLUG = os.environ.get("LOCUST_DROP_SLUG", "locust-drop")
REF_LOG = os.environ.get("LOCUST_REF_LOG")
TIMEOUT = float(os.environ.get("LOCUST_TIMEOUT", "2.0"))  # seconds, per request
FLAKY_TIMEOUT = 0.001  # seconds: the first try of a "flaky" purchase gives up this soon
RETRIES = 3  # retries of one purchase, with the same key
PURCHASE_REFUSALS = {"sold_out", "per_user_limit"}

_log_file: Any = None


@events.test_start.add_listener
def open_log(environment: Any, **kwargs: Any) -> None:
    global _log_file
    if REF_LOG:
        _log_file = open(REF_LOG, "a", buffering=1)  # noqa: SIM115 (closed at test_stop)


@events.test_stop.add_listener
def close_log(environment: Any, **kwargs: Any) -> None:
    global _log_file
    if _log_file is not None:
        _log_file.close()
        _log_file = None


def record(**fields: Any) -> None:
    if _log_file is not None:
        _log_file.write(json.dumps(fields, separators=(",", ":")) + "\n")


def error_code(response: Any) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


class Shopper(HttpUser):
    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        self.drop_id: int | None = None
        self.new_shopper()

    def new_shopper(self) -> None:
        self.user_id = "shopper-" + uuid.uuid4().hex[:16]
        self.etag: str | None = None
        self.refs: list[str] = []

    # -- steps --

    def list_drops(self) -> None:
        with self.client.get("/api/drops", name="GET /api/drops", timeout=TIMEOUT, catch_response=True) as reply:
            if reply.status_code != 200:
                reply.failure(f"status {reply.status_code}")
                return
            for drop in reply.json()["drops"]:
                if drop["slug"] == DROP_SLUG:
                    self.drop_id = drop["id"]
            if self.drop_id is None:
                reply.failure(f"no drop with slug {DROP_SLUG!r}")

    def poll(self) -> None:
        headers = {"If-None-Match": self.etag} if self.etag else {}
        with self.client.get(f"/api/drops/{self.drop_id}", name="GET /api/drops/{id}", headers=headers,
                             timeout=TIMEOUT, catch_response=True) as reply:
            if reply.status_code == 200:
                self.etag = reply.headers.get("ETag")
            elif reply.status_code != 304:
                reply.failure(f"status {reply.status_code}")

    def buy(self, quantity: int = 1, double_click: bool = False, flaky: bool = False) -> str | None:
        """One purchase with a fresh key, retried with the same key on timeouts/5xx; the order's ref or None.

        ``flaky``: the first try gives up after 1 ms (a shopper on a bad network): the request
        usually reaches the service and buys, the answer is lost, and the retry must get that
        same order back (200), never a second one.
        """
        key = uuid.uuid4().hex
        body = {"user_id": self.user_id, "quantity": quantity}
        ref = None
        attempts = RETRIES + 1 + (1 if double_click else 0)
        for attempt in range(attempts):
            name = "POST purchases" if attempt == 0 else "POST purchases (same key again)"
            if flaky and attempt == 0:
                name = "POST purchases (gives up after 1 ms)"
            with self.client.post(f"/api/drops/{self.drop_id}/purchases", name=name, json=body,
                                  headers={"Idempotency-Key": key},
                                  timeout=FLAKY_TIMEOUT if flaky and attempt == 0 else TIMEOUT,
                                  catch_response=True) as reply:
                status = reply.status_code  # 0: no answer (timeout, connection error)
                answer_ref = None
                if status in (200, 201):
                    answer_ref = reply.json()["public_ref"]
                    reply.success()
                elif status == 409 and error_code(reply) in PURCHASE_REFUSALS:
                    reply.success()
                elif status == 0 and flaky and attempt == 0:
                    reply.success()  # the timeout was the point
                elif status == 0 or status >= 500:
                    reply.failure(f"status {status}: retried with the same key")
                else:
                    reply.failure(f"status {status} {error_code(reply)}")
                record(key=key, user=self.user_id, quantity=quantity, attempt=attempt, status=status,
                       ref=answer_ref, code=error_code(reply) if status >= 400 else None)
            if answer_ref is not None:
                ref = answer_ref
            if status in (200, 201, 409, 422, 404) and not (double_click and attempt == 0 and ref):
                break  # answered: no retry (a double click sends the same key once more)
        if ref is not None and ref not in self.refs:
            self.refs.append(ref)
        return ref

    def cancel(self, ref: str) -> None:
        with self.client.post(f"/api/orders/{ref}/cancel", name="POST /api/orders/{ref}/cancel", timeout=TIMEOUT,
                              catch_response=True) as reply:
            if reply.status_code == 200:
                self.refs.remove(ref)
            elif not (reply.status_code == 409 and error_code(reply) in ("paid", "expired")):
                reply.failure(f"status {reply.status_code} {error_code(reply)}")

    def view(self, ref: str) -> None:
        with self.client.get(f"/api/orders/{ref}", name="GET /api/orders/{ref}", timeout=TIMEOUT,
                             catch_response=True) as reply:
            if reply.status_code != 200:
                reply.failure(f"status {reply.status_code}")

    # -- the journey --

    @task
    def journey(self) -> None:
        self.list_drops()
        if self.drop_id is None:
            return
        for _ in range(random.randint(1, 4)):
            self.poll()
            self.wait()
        ref = self.buy(quantity=1, double_click=random.random() < 0.1, flaky=random.random() < 0.05)
        if ref is not None:
            self.view(ref)
        if random.random() < 0.3:  # a second unit (the limit is 2), sometimes two more: over the limit
            self.wait()
            self.buy(quantity=random.choice((1, 1, 2)))
        if self.refs and random.random() < 0.3:
            self.wait()
            self.cancel(random.choice(self.refs))
        self.new_shopper()  # this shopper leaves; the next one arrives
