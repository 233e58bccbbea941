"""A queue drop's line as gauges read at scrape time (SPEC 11; issue 13's metrics).

For each drop not ended whose admission is a line (``Engine.line_report``): its tickets by
state (``lapsed`` counts the lapses, ``used`` the admissions bought), ``admitted_through``,
the admissions so far, whether the merchant paused admission, and the queue's state as a
state set (1 for the current state). A few reads per such drop per scrape; drops are few.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dropsvc.drops import drop_status, now_ms
from dropsvc.ledger import Engine

QUEUE_STATES = ("upcoming", "entries_open", "admitting", "all_held", "sold_out", "ended")


class QueueCollector(Collector):
    """Tickets by state, the highest position admitted and the queue state of each line not ended."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterable[Any]:
        labels = ("drop_id", "slug")
        tickets = GaugeMetricFamily("dropsvc_queue_tickets", "Tickets of a queue drop's line by state",
                                    labels=(*labels, "state"))
        through = GaugeMetricFamily("dropsvc_queue_admitted_through",
                                    "The highest position admitted so far of a queue drop's line", labels=labels)
        admissions = GaugeMetricFamily("dropsvc_queue_admissions",
                                       "Admissions so far of a queue drop's line (a ticket admitted twice: twice)",
                                       labels=labels)
        paused = GaugeMetricFamily("dropsvc_queue_paused", "1 while the merchant has paused a line's admission",
                                   labels=labels)
        states = GaugeMetricFamily("dropsvc_queue_state", "A queue drop's state (1 for the current one)",
                                   labels=(*labels, "state"))
        now = now_ms()
        for row in self.engine.list_drops():
            if drop_status(row, now) == "ended":
                continue
            report = self.engine.line_report(row["id"], now)
            if report is None:
                continue  # an open drop
            drop = (str(row["id"]), row["slug"])
            for name, count in report["by_state"].items():
                tickets.add_metric((*drop, name), count)
            through.add_metric(drop, report["admitted_through"])
            admissions.add_metric(drop, report["admissions"])
            paused.add_metric(drop, int(report["paused"]))
            for name in QUEUE_STATES:
                states.add_metric((*drop, name), int(report["state"] == name))
        yield from (tickets, through, admissions, paused, states)
