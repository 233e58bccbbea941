"""Request metrics, the access log's sampling and the new settings, in process."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tempfile

import pytest
from falcon import testing
from prometheus_client.parser import text_string_to_metric_families

from dropsvc.config import Config, ConfigError
from dropsvc.http.app import create_app
from dropsvc.logs import configure
from dropsvc.obs.access_log import AccessLog
from dropsvc.obs.metrics import (
    BOUNDS_NS,
    DIR_PREFIX,
    MULTIPROC_ENV,
    Metrics,
    RequestStats,
    multiprocess_dir,
    request_labels,
)


def samples_of(text: str) -> dict:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize("threaded", [False, True])
def test_request_stats_buckets(threaded):
    stats = RequestStats(threaded)
    for elapsed in (0, BOUNDS_NS[0], BOUNDS_NS[0] + 1, BOUNDS_NS[-1], BOUNDS_NS[-1] + 1):
        stats.record("/r", "GET", 200, elapsed)
    stats.record("/r", "BREW", 418, 5)  # invented methods share one label
    stats.record("/r", "SPAM", 418, 5)
    cells = stats.snapshot()
    cell = cells[("/r", "GET", 200)]
    assert cell[0] == 5 and cell[1] == sum((0, BOUNDS_NS[0], BOUNDS_NS[0] + 1, BOUNDS_NS[-1], BOUNDS_NS[-1] + 1))
    buckets = cell[2:]
    assert buckets[0] == 2 and buckets[1] == 1 and buckets[-2] == 1 and buckets[-1] == 1 and sum(buckets) == 5
    assert cells[("/r", "other", 418)][0] == 2
    assert request_labels(None, "GET", 200) == ("unmatched", "GET", "200")
    assert request_labels("/r", "BREW", 418) == ("/r", "other", "418")


def test_flush_adds_only_what_changed(engine):
    metrics = Metrics(engine, workers=3, threaded=False)
    drop_id = engine.create_drop(slug="m", name="M", price=1, total_stock=1)
    engine.purchase(drop_id, "a", 1, None)
    engine.purchase(drop_id, "b", 1, None)
    for _ in range(3):
        metrics.requests.record("/api/x", "POST", 201, 300_000)  # 0.3 ms
    for _ in range(3):  # a scrape flushes; flushing again must not count twice
        samples = samples_of(metrics.render().decode())
    labels = {"route": "/api/x", "method": "POST", "status": "201"}
    assert samples[("dropsvc_http_requests_total", frozenset(labels.items()))] == 3
    key = frozenset({**labels, "le": "0.0005"}.items())
    assert samples[("dropsvc_http_request_duration_seconds_bucket", key)] == 3
    below = frozenset({**labels, "le": "0.00025"}.items())
    assert samples[("dropsvc_http_request_duration_seconds_bucket", below)] == 0
    assert samples[("dropsvc_http_request_duration_seconds_sum", frozenset(labels.items()))] == pytest.approx(0.0009)
    assert samples[("dropsvc_purchases_total", frozenset({"outcome": "ok"}.items()))] == 1
    assert samples[("dropsvc_purchases_total", frozenset({"outcome": "sold_out"}.items()))] == 1
    assert samples[("dropsvc_workers", frozenset())] == 3
    assert samples[("dropsvc_drop_sold", frozenset({"drop_id": str(drop_id), "slug": "m"}.items()))] == 1
    metrics.requests.record("/api/x", "POST", 201, 300_000)
    samples = samples_of(metrics.render().decode())
    assert samples[("dropsvc_http_requests_total", frozenset(labels.items()))] == 4


def test_the_app_observes_its_own_requests(engine):
    app = create_app(engine, Config.load({}))
    client = testing.TestClient(app)
    client.simulate_get("/api/drops")
    client.simulate_get("/nowhere")
    text = client.simulate_get("/metrics").text
    samples = samples_of(text)
    assert samples[("dropsvc_http_requests_total",
                    frozenset({"route": "/api/drops", "method": "GET", "status": "200"}.items()))] == 1
    assert samples[("dropsvc_http_requests_total",
                    frozenset({"route": "unmatched", "method": "GET", "status": "404"}.items()))] == 1
    assert "/nowhere" not in text


def access_log(stream: io.StringIO, **options) -> AccessLog:
    configure("INFO", stream=stream)
    return AccessLog(logger=logging.getLogger("dropsvc"), **options)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(text) for text in stream.getvalue().splitlines()]


def test_cap_and_sample():
    stream = io.StringIO()
    log = access_log(stream, max_per_s=3)
    second = 1_000_000_000
    for i in range(10):
        log.write("GET", "/a", 200, 1000, 5 * second + i)
    for i in range(2):  # errors pass the cap
        log.write("GET", "/a", 422, 1000, 5 * second + 20 + i, error="nope")
    log.write("GET", "/a", 200, 1000, 7 * second)  # a new second
    got = lines(stream)
    assert [line["event"] for line in got] == ["access"] * 5 + ["access_log_suppressed", "access"]
    assert got[3]["fields"]["error"] == "nope" and got[5]["fields"]["lines"] == 7
    stream = io.StringIO()
    log = access_log(stream, sample=0.0, max_per_s=0)
    for i in range(50):
        log.write("GET", "/a", 409, 1000, i)
    log.write("GET", "/a", 503, 1000, 99)
    assert [(line["level"], line["fields"]["status"]) for line in lines(stream)] == [("error", 503)]
    configure("INFO")


@pytest.mark.parametrize("raw, parsed", [("0", 0.0), ("0.25", 0.25), ("1", 1.0), (" 1.0 ", 1.0)])
def test_sample_setting(raw, parsed):
    assert Config.load({"DROPSVC_ACCESS_LOG_SAMPLE": raw}).access_log_sample == parsed


@pytest.mark.parametrize("raw", ["-0.1", "1.5", "nan", "inf", "half", "1e9"])
def test_bad_sample_setting_names_the_variable(raw):
    with pytest.raises(ConfigError, match="DROPSVC_ACCESS_LOG_SAMPLE"):
        Config.load({"DROPSVC_ACCESS_LOG_SAMPLE": raw})


def test_cap_setting():
    assert Config.load({}).access_log_max_per_s == 100
    assert Config.load({"DROPSVC_ACCESS_LOG_MAX_PER_S": "0"}).access_log_max_per_s == 0
    with pytest.raises(ConfigError, match="DROPSVC_ACCESS_LOG_MAX_PER_S"):
        Config.load({"DROPSVC_ACCESS_LOG_MAX_PER_S": "-1"})


def test_the_multiprocess_dir_is_made_exported_and_removed(monkeypatch, tmp_path):
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    orphan = tmp_path / f"{DIR_PREFIX}{dead}-abc"
    orphan.mkdir()
    alive = tmp_path / f"{DIR_PREFIX}{os.getppid()}-abc"
    alive.mkdir()
    with multiprocess_dir() as path:
        assert os.environ[MULTIPROC_ENV] == path and os.path.isdir(path)
        assert os.path.basename(path).startswith(f"{DIR_PREFIX}{os.getpid()}-")
        assert not orphan.exists() and alive.exists()  # a dead service's files go, a live one's stay
    assert MULTIPROC_ENV not in os.environ and not os.path.exists(path)


def test_an_operators_multiprocess_dir_is_emptied_and_kept(monkeypatch, tmp_path):
    given = tmp_path / "prom"
    given.mkdir()
    (given / "counter_1.db").write_bytes(b"old")
    (given / "notes.txt").write_text("kept")
    monkeypatch.setenv(MULTIPROC_ENV, str(given))
    with multiprocess_dir() as path:
        assert path == str(given) and sorted(os.listdir(given)) == ["notes.txt"]
    assert given.is_dir() and os.environ[MULTIPROC_ENV] == str(given)
