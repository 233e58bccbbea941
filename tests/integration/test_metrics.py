"""GET /metrics over real HTTP: Prometheus text, per route template, engine counters, several workers."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from collections.abc import Callable

from live_server import Api, Server, exchange
from prometheus_client.parser import text_string_to_metric_families

PURCHASES = "/api/drops/{drop_id}/purchases"
FAMILIES = {"dropsvc_http_requests", "dropsvc_http_request_duration_seconds", "dropsvc_purchases",
            "dropsvc_engine_batches", "dropsvc_engine_transactions", "dropsvc_engine_lock_wait_seconds",
            "dropsvc_engine_lock_acquisitions", "dropsvc_engine_commit_seconds", "dropsvc_engine_storage_errors",
            "dropsvc_drop_remaining", "dropsvc_drop_sold", "dropsvc_wal_bytes", "dropsvc_workers",
            "dropsvc_worker_processes", "dropsvc_engine_wal_writes", "dropsvc_engine_wal_commits_one_write",
            "dropsvc_engine_sold_out_without_lock", "dropsvc_engine_not_admitted_without_lock"}


def scrape(api: Api) -> dict[tuple[str, frozenset], float]:
    """Every sample of one scrape: (name, labels) -> value."""
    reply = api.get("/metrics")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_of(samples: dict, route: str, method: str, status: str) -> float:
    return value(samples, "dropsvc_http_requests_total", route=route, method=method, status=status)


def wait_for(api: Api, done: Callable[[dict], bool], timeout: float = 5.0) -> dict:
    """Scrape until ``done(samples)`` (other workers flush once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(api)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def test_every_family_is_exposed(api):
    api.get("/healthz")
    samples = wait_for(api, lambda s: requests_of(s, "/healthz", "GET", "200") >= 1)
    text = api.get("/metrics").body.decode()
    assert {family.name for family in text_string_to_metric_families(text)} >= FAMILIES
    # every one, from 0 on
    for outcome in ("ok", "sold_out", "per_user_limit", "not_started", "ended", "duplicate", "not_admitted"):
        assert ("dropsvc_purchases_total", frozenset({"outcome": outcome}.items())) in samples, outcome
    assert ("dropsvc_wal_bytes", frozenset()) in samples
    workers = value(samples, "dropsvc_workers")
    assert workers >= 1 and value(samples, "dropsvc_worker_processes") == workers


def test_purchases_are_counted_per_route_template_and_outcome(api):
    drop = api.create_drop(total_stock=2)
    before = scrape(api)
    statuses = [api.buy(drop["id"], f"metrics-{i}").status for i in range(3)]
    assert statuses == [201, 201, 409]
    assert api.get("/api/drops/999999999").status == 404
    assert api.get("/no/such/route").status == 404

    def delta(samples: dict, name: str, **labels: str) -> float:
        return value(samples, name, **labels) - value(before, name, **labels)

    def counted(samples: dict) -> bool:
        return (delta(samples, "dropsvc_http_requests_total", route=PURCHASES, method="POST", status="201") == 2
                and delta(samples, "dropsvc_purchases_total", outcome="sold_out") >= 1
                and delta(samples, "dropsvc_http_requests_total", route="unmatched", method="GET", status="404") == 1)

    after = wait_for(api, counted)
    assert delta(after, "dropsvc_http_requests_total", route=PURCHASES, method="POST", status="201") == 2
    assert delta(after, "dropsvc_http_requests_total", route=PURCHASES, method="POST", status="409") == 1
    assert delta(after, "dropsvc_http_requests_total", route="/api/drops/{drop_id}", method="GET", status="404") == 1
    assert delta(after, "dropsvc_http_requests_total", route="unmatched", method="GET", status="404") == 1
    # the histogram counts the same requests, in buckets that add up
    labels = {"route": PURCHASES, "method": "POST", "status": "201"}
    assert delta(after, "dropsvc_http_request_duration_seconds_count", **labels) == 2
    assert delta(after, "dropsvc_http_request_duration_seconds_bucket", le="+Inf", **labels) == 2
    assert 0 < delta(after, "dropsvc_http_request_duration_seconds_sum", **labels) < 2
    # the engine's own counters: both purchases and the refusal (from whichever worker decided them)
    assert delta(after, "dropsvc_purchases_total", outcome="ok") == 2
    assert delta(after, "dropsvc_purchases_total", outcome="sold_out") == 1
    assert delta(after, "dropsvc_engine_transactions_total") >= 2
    assert sum(delta(after, "dropsvc_engine_batches_total", size=size)
               for size in ("1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128+")) >= 2
    # both purchases reached the WAL, each commit as one write
    assert delta(after, "dropsvc_engine_wal_commits_one_write_total") >= 2
    assert delta(after, "dropsvc_engine_wal_writes_total") >= 2
    # stock per open drop: this one is sold out
    drop_labels = {"drop_id": str(drop["id"]), "slug": drop["slug"]}
    assert value(after, "dropsvc_drop_remaining", **drop_labels) == 0
    assert value(after, "dropsvc_drop_sold", **drop_labels) == 2
    # never a raw path as a label
    text = api.get("/metrics").body.decode()
    assert f"/api/drops/{drop['id']}/purchases" not in text and "/no/such/route" not in text


def test_upcoming_and_ended_drops_have_no_stock_gauges(api):
    now = int(time.time() * 1000)
    upcoming = api.create_drop(starts_at=now + 3_600_000)
    live = api.create_drop(total_stock=7)
    samples = scrape(api)
    assert ("dropsvc_drop_remaining", frozenset({"drop_id": str(upcoming["id"]), "slug": upcoming["slug"]}.items())) \
        not in samples
    assert value(samples, "dropsvc_drop_remaining", drop_id=str(live["id"]), slug=live["slug"]) == 7


def access_pids(server: Server) -> set[int]:
    pids = set()
    for line in server.log().splitlines():
        if '"event":"access"' in line:
            pids.add(json.loads(line)["fields"]["pid"])
    return pids


def hammer(server: Server, path: str, count: int, threads: int = 8) -> None:
    """``count`` GETs, each on a new connection, from several threads at once (so both workers accept)."""
    def run(share: int) -> None:
        for _ in range(share):
            conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
            assert exchange(conn, "GET", path, headers={"Connection": "close"}).status == 200
            conn.close()

    workers = [threading.Thread(target=run, args=(count // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def worker_pids(server: Server) -> list[int]:
    return [json.loads(line)["fields"]["pid"] for line in server.log().splitlines()
            if '"event":"worker_started"' in line]


def test_two_workers_add_up_in_one_scrape(start_server):
    server = start_server(extra_args=("--workers", "2"), env={"DROPSVC_ACCESS_LOG_MAX_PER_S": "0"})
    client = Api(server)
    sent = 0
    for _ in range(10):  # until both workers have answered some
        hammer(server, "/api/drops", 80)
        sent += 80
        if len(access_pids(server)) == 2:
            break
    assert len(access_pids(server)) == 2, "the kernel gave every connection to one worker"
    samples = wait_for(client, lambda s: requests_of(s, "/api/drops", "GET", "200") == sent)
    assert requests_of(samples, "/api/drops", "GET", "200") == sent
    assert value(samples, "dropsvc_worker_processes") == 2 and value(samples, "dropsvc_workers") == 2

    # a worker killed outright: its requests stay counted, and it is no longer a live process
    time.sleep(1.5)  # its last counts flushed
    victim = worker_pids(server)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while len(worker_pids(server)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(worker_pids(server)) == 3, "the master did not replace the worker"
    time.sleep(0.5)
    samples = wait_for(client, lambda s: value(s, "dropsvc_worker_processes") == 2)
    assert value(samples, "dropsvc_worker_processes") == 2
    assert requests_of(samples, "/api/drops", "GET", "200") == sent
    client.close()


def test_granian_workers_add_up_too(start_server):
    server = start_server(extra_args=("--server", "granian", "--workers", "2", "--threads", "4"))
    client = Api(server)
    hammer(server, "/healthz", 120)
    samples = wait_for(client, lambda s: requests_of(s, "/healthz", "GET", "200") >= 120)
    assert requests_of(samples, "/healthz", "GET", "200") >= 120  # plus launch()'s own probes
    assert value(samples, "dropsvc_worker_processes") == 2
    client.close()
