"""bench/herd's figures and checks: each run against its database, and the table for the README."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.harness.scrape import quantile_bound
from bench.herd.people import Person
from bench.herd.run import FINALS, Outcome
from dropsvc import Engine

BOT_SHARE_LIMIT = 0.10  # the queue run fails above this share of the stock going to bots


@dataclass
class Figures:
    """One run's figures, read from its people, its tally and its database."""

    outcome: Outcome
    bot_units: int
    paid_units: int
    sold: int
    total: int
    states: Counter[str]
    checks: list[tuple[bool, str]]
    admitted: tuple[int, int] = (0, 0)  # a queue's tickets ever admitted: the bots', all

    @property
    def bot_share(self) -> float:
        return self.bot_units / self.total if self.total else 0.0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(outcome: Outcome, kind: str) -> str:
    """p50 / p99 in ms of one kind of request, "-" when there were none."""
    values = outcome.tally.latency.get(kind, [])
    if not values:
        return "-"
    return f"{1000 * percentile(values, 0.5):.1f} / {1000 * percentile(values, 0.99):.1f}"  # type: ignore[operator]


ROUTES = {"queue": ("/queue", "GET"), "ticket": ("/tickets/{ticket_id}", "GET"), "purchase": ("/purchases", "POST")}


def in_service(outcome: Outcome, kind: str) -> str:
    """p50 / p99 inside the service (the bucket bounds of its histogram), "-" without requests."""
    suffix, method = ROUTES[kind]
    bounds = [quantile_bound(*outcome.scrapes, suffix, method, q) for q in (0.5, 0.99)]
    if bounds[0] is None or bounds[1] is None:
        return "-"
    return " / ".join(f"<= {1000 * bound:g}" for bound in bounds)


def people_of(outcome: Outcome) -> dict[str, Person]:
    return {person.buyer: person for person in outcome.people if person.buyer}


def admitted_tickets(engine: Engine, outcome: Outcome) -> tuple[int, int]:
    """(the bots' tickets ever admitted, all tickets ever admitted): luck in the draw, or an edge?"""
    admitted = {row["ticket_id"] for row in engine.read(
        "SELECT DISTINCT ticket_id FROM ticket_admissions WHERE drop_id = ?", (outcome.drop_id,))}
    bots = {int(p.ticket["ticket_id"]) for p in outcome.people if p.bot and p.ticket is not None}
    return len(admitted & bots), len(admitted)


def database_checks(outcome: Outcome, limit: int) -> tuple[list[tuple[bool, str]], int, int, int, int,
                                                           tuple[int, int]]:
    """The invariant and what the database says against what the people say; with (bot units
    paid, units paid, sold, total_stock, admitted tickets)."""
    by_buyer = people_of(outcome)
    with Engine(outcome.db_path, readers=1) as engine:
        problems = engine.check()
        drop = engine.get_drop(outcome.drop_id)
        orders = engine.read("SELECT user_id, status, quantity FROM orders WHERE drop_id = ?", (outcome.drop_id,))
        admitted = admitted_tickets(engine, outcome) if outcome.mode == "queue" else (0, 0)
    held: Counter[str] = Counter()
    paid: Counter[str] = Counter()
    for order in orders:
        if order["status"] in ("reserved", "paid"):
            held[order["user_id"]] += order["quantity"]
        if order["status"] == "paid":
            paid[order["user_id"]] += order["quantity"]
    sold, total = drop["sold"], drop["total_stock"]
    over = [user for user, units in held.items() if units > limit]
    told = {person.buyer for person in outcome.people if person.state == "bought"}
    bot_units = sum(units for user, units in paid.items() if user in by_buyer and by_buyer[user].bot)
    paid_units = sum(paid.values())
    checks = [
        (not problems, f"invariant (SPEC 3): sold={sold} of {total}"
         + (f"; {problems[:3]}" if problems else ", sold == reserved + paid")),
        (sold <= total and paid_units <= total and not over,
         f"no oversell: {paid_units} units paid, {sum(held.values())} reserved or paid, "
         f"{len(over)} buyers over per_user_limit {limit}"),
        (told == set(paid), f"the {len(told)} people told they bought are the {len(paid)} buyers with a paid order"),
    ]
    return checks, bot_units, paid_units, sold, total, admitted


def figures(outcome: Outcome) -> Figures:
    checks, bot_units, paid_units, sold, total, admitted = database_checks(outcome, outcome.settings.per_user_limit)
    states = Counter(person.state for person in outcome.people)
    unfinal = {state: n for state, n in states.items() if state not in FINALS}
    checks.append((outcome.finish_s is not None and paid_units == total,
                   f"finished: sold out with nothing held {fmt_seconds(outcome.finish_s)} after the start, "
                   f"{paid_units} of {total} units paid"))
    checks.append((not unfinal, "every person ends in a final state"
                   + (": not " + ", ".join(f"{n} {state}" for state, n in unfinal.items()) if unfinal else "")))
    share = bot_units / total if total else 0.0
    if outcome.mode == "queue":
        checks.append((share <= BOT_SHARE_LIMIT, f"bots' share of the stock {100 * share:.1f} % "
                       f"<= {100 * BOT_SHARE_LIMIT:.0f} %"))
        code, text = outcome.fairness or (1, "not run")
        checks.append((code == 0, f"dropsvc verify-fairness: exit {code}: {text.splitlines()[-1] if text else ''}"))
    return Figures(outcome, bot_units, paid_units, sold, total, states, checks, admitted)


def admitted_share(fig: Figures) -> str:
    bots, admitted = fig.admitted
    return f"{100 * bots / admitted:.1f} % ({bots} of {admitted})" if admitted else "-"


def fmt_seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def requests_per(fig: Figures, group: str | None = None) -> float:
    people = [p for p in fig.outcome.people if group is None or p.bot == (group == "bot")]
    requests = fig.outcome.tally.requests
    count = sum(requests.values()) if group is None else requests[group]
    return count / len(people) if people else 0.0


def table(runs: list[Figures]) -> str:
    """The README's "Fair admission" table: one column per mode."""
    cfg = runs[0].outcome.settings
    people = cfg.shoppers + cfg.bots
    rows: list[tuple[str, list[str]]] = [
        (f"bots' share of the stock ({cfg.bots:,} of {people:,} people = {100 * cfg.bots / people:.1f} %)",
         [f"{100 * f.bot_share:.0f} % ({f.bot_units} of {f.total})" for f in runs]),
        ("bots' tickets among those admitted", [admitted_share(f) for f in runs]),
        ("start to sold out with nothing held", [fmt_seconds(f.outcome.finish_s) for f in runs]),
        ("requests per person: all / shopper / bot",
         [f"{requests_per(f):.1f} / {requests_per(f, 'shopper'):.1f} / {requests_per(f, 'bot'):.0f}" for f in runs]),
        *[(f"{name} p50 / p99 ms: at the client; in the service", [
            f"{latency(f.outcome, kind)}; {in_service(f.outcome, kind)}" for f in runs])
          for kind, name in (("queue", "queue document"), ("ticket", "ticket view"), ("purchase", "purchase"))],
        ("server CPU ms per person", [f"{1000 * f.outcome.cpu_s / people:.2f}" for f in runs]),
        ("final states", [", ".join(f"{n:,} {s}" for s, n in f.states.most_common()) for f in runs]),
    ]
    lines = ["| | " + " | ".join(f"`{f.outcome.mode}`" for f in runs) + " |",
             "|---|" + "---|" * len(runs)]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    return "\n".join(lines)


def print_run(fig: Figures) -> None:
    outcome = fig.outcome
    tally = outcome.tally
    print(f"\n== {outcome.mode}: drop {outcome.drop_id}, finish {fmt_seconds(outcome.finish_s)} after the start, "
          f"server CPU {outcome.cpu_s:.1f} s, others {outcome.others_pct:.0f} % of the machine")
    answers = Counter()
    for (kind, status), n in tally.answers.items():
        answers[f"{kind} {status}"] += n
    print("  answers: " + ", ".join(f"{n:,} x {k}" for k, n in sorted(answers.items())))
    if tally.failures:
        print("  unanswered: " + ", ".join(f"{n} x {k}" for k, n in sorted(tally.failures.items())))
    by_group = {group: Counter(p.state for p in outcome.people if p.bot == (group == "bots"))
                for group in ("shoppers", "bots")}
    for group, states in by_group.items():
        print(f"  {group}: " + ", ".join(f"{n:,} {s}" for s, n in states.most_common()))
    for note in outcome.notes:
        print(f"  {note}")
    for good, text in fig.checks:
        print(f"  {'ok    ' if good else 'BROKEN'} {text}")


def write_people(outcome: Outcome, folder: Path) -> Path:
    """Every person's final state, one JSON object a line: people-<mode>.jsonl."""
    path = folder / f"people-{outcome.mode}.jsonl"
    with open(path, "wb") as out:
        for p in outcome.people:
            ticket = p.ticket["ticket_id"] if p.ticket else None
            out.write(orjson.dumps({"person": p.index, "bot": p.bot, "buyer": p.buyer, "state": p.state,
                                    "ticket_id": ticket, "position": p.position, "clicks": p.clicks}) + b"\n")
    return path
