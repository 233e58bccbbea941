"""A queue drop's line as gauges read at scrape time (SPEC 11; issue 13's metrics).

For each drop not ended whose admission is a line: its tickets by state (``lapsed``
counts the lapses, ``used`` the admissions bought), ``admitted_through``, and the
queue's state as a state set (1 for the current state). Two or three reads per such
drop per scrape; drops are few.
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
        states = GaugeMetricFamily("dropsvc_queue_state", "A queue drop's state (1 for the current one)",
                                   labels=(*labels, "state"))
        now = now_ms()
        for row in self.engine.list_drops():
            if drop_status(row, now) == "ended":
                continue
            figures = self.engine.line_figures(row["id"])
            state = None if figures is None else self.engine.queue_state(row["id"], now)
            if figures is None or state is None:
                continue  # an open drop
            drop = (str(row["id"]), row["slug"])
            for name, count in figures["by_state"].items():
                tickets.add_metric((*drop, name), count)
            through.add_metric(drop, figures["admitted_through"])
            for name in QUEUE_STATES:
                states.add_metric((*drop, name), int(state["state"] == name))
        yield tickets
        yield through
        yield states
