"""The service's own view of a load: its request-latency histogram from ``GET /metrics``.

A crowd simulated from one Python process on a busy machine measures its own event loop too;
the service's histogram (``dropsvc_http_request_duration_seconds``, per route template)
measures the request inside the service only. Scraped before and after a load, the difference
gives that load's requests; a quantile is read as the bucket bound it falls under ("<= 1 ms").
"""

from __future__ import annotations

import math
import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

HISTOGRAM = "dropsvc_http_request_duration_seconds"
Buckets = dict[tuple[str, str], dict[float, float]]  # (route, method) -> {upper bound: cumulative count}


def latency_buckets(base_url: str) -> Buckets:
    """Every route's cumulative latency buckets, summed over the answers' statuses."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    buckets: Buckets = defaultdict(lambda: defaultdict(float))
    for family in text_string_to_metric_families(text):
        if family.name != HISTOGRAM:
            continue
        for sample in family.samples:
            if sample.name == HISTOGRAM + "_bucket":
                key = (sample.labels.get("route", ""), sample.labels.get("method", ""))
                buckets[key][float(sample.labels["le"])] += sample.value
    return buckets


def quantile_bound(before: Buckets, after: Buckets, route_suffix: str, method: str, q: float) -> float | None:
    """The bucket bound (seconds) under which a fraction ``q`` of the requests between the two
    scrapes fell, for the route ending in ``route_suffix``; None without requests."""
    counts: dict[float, float] = defaultdict(float)
    for (route, verb), bounds in after.items():
        if route.endswith(route_suffix) and verb == method:
            old = before.get((route, verb), {})
            for bound, count in bounds.items():
                counts[bound] += count - old.get(bound, 0.0)
    total = counts.get(math.inf, 0.0)
    if total <= 0:
        return None
    return next(bound for bound in sorted(counts) if counts[bound] >= q * total)
