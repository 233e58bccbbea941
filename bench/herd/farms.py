"""bench/herd's farms (issue 14 item 4): bots that hold many identities, in `queue` and `draw` mode,
with and without proof of work (`python -m bench.herd --farms`, `make bench-herd-farms`).

A farm bot holds ``identities`` identities, each a buyer cookie of its own from ``GET /``, each
joining the line with a ticket of its own; whichever identity wins buys with it. The farm arrives
the instant the drop is made (in a draw, its identities wait for the entries to open). With proof
of work (``queue-pow``, ``draw-pow``) every identity asks for a challenge and solves it with the
altcha library's solver at once, in the solving processes (``proof.py``: the bots' solves wait
behind every shopper's), then joins and views its ticket, checking in. From the start of sales
one watcher per bot reads the queue document every ``BOT_POLL_S``; an identity whose turn has
come views its ticket and buys at once, with no reaction time. The shoppers are bench/herd's
queue shoppers; with proof of work each solves its own challenge when it arrives, before joining.

Every drop is made through the admin API (``DROPSVC_ADMIN_TOKEN``), ``admit_seconds``
``ADMIT_SECONDS``. ``queue``: sales start ``--lead`` seconds after the drop is made, and the
shoppers arrive in the first 80 % of that. ``draw``: entries open ``DRAW_OPENS_S`` after the drop
is made and close (the draw; sales open) ``--lead`` seconds after it is made; the shoppers arrive
in the first 80 % of the entries. A server that refuses the drop (``draw`` before it exists) stops
the run: ``Refused``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import random
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from bench.harness.client import Pool
from bench.harness.databases import PRICE
from bench.herd.people import (
    JSON,
    Crowd,
    Documents,
    Person,
    Unanswered,
    enter,
    in_line,
    join,
    live,
    population,
    revalidate,
    sleep_until,
)
from bench.herd.proof import Solver
from dropsvc.challenges import ALGORITHMS

if TYPE_CHECKING:
    from bench.herd.run import Settings

ADMIN_TOKEN = secrets.token_urlsafe(24)  # the service's DROPSVC_ADMIN_TOKEN in every herd run
MODES = ("queue", "queue-pow", "draw", "draw-pow")
BOT_POLL_S = 0.1  # a farm bot reads the queue document this often
ADMIT_SECONDS = 120
DRAW_OPENS_S = 3.0  # a draw's entries open this long after the drop is made
SHARE_SLACK = 0.15  # the farms' share of the units may exceed their share of the identities by this much


@dataclass
class FarmTerms:
    """The farms and the proof of work of a ``--farms`` run."""

    bots: int = 20
    identities: int = 50  # each bot's
    pow_algorithm: str = "PBKDF2/SHA-256"
    pow_cost: int = 50
    solvers: int = 2  # processes solving challenges, shoppers' and bots' alike

    @property
    def count(self) -> int:
        return self.bots * self.identities

    def share_limit(self, shoppers: int) -> float:
        """The most of the units the farms may take before the line looks like it favours them."""
        return self.count / (self.count + shoppers) + SHARE_SLACK


class Refused(RuntimeError):
    """The server would not make the run's drop (a mode it does not have)."""


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("farms (--farms: bots holding many identities; issue 14)")
    group.add_argument("--farms", action="store_true",
                       help=f"farm runs: modes {','.join(MODES)}; defaults 1,000 shoppers, no one-identity bots, "
                            "--lead 30")
    group.add_argument("--farm-bots", type=int, default=FarmTerms.bots)
    group.add_argument("--identities", type=int, default=FarmTerms.identities, help="each farm bot's identities")
    group.add_argument("--pow-algorithm", default=FarmTerms.pow_algorithm, choices=ALGORITHMS)
    group.add_argument("--pow-cost", type=int, default=FarmTerms.pow_cost, help="the pow drops' pow_cost")
    group.add_argument("--solvers", type=int, default=FarmTerms.solvers, help="processes solving challenges")


def terms(args: argparse.Namespace) -> FarmTerms | None:
    """The farm terms of the command line (None without --farms); fills in the farm runs' defaults."""
    if not args.farms:
        return None
    defaults = {"shoppers": 1000, "bots": 0, "lead": 30.0, "modes": ",".join(MODES)}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return FarmTerms(args.farm_bots, args.identities, args.pow_algorithm, args.pow_cost, args.solvers)


@dataclass
class FarmCrowd(Crowd):
    """The herd's crowd, with entries opening at ``opens_at`` and, in a pow mode, a ``solver``."""

    opens_at: float = 0.0  # epoch seconds: joins from then on
    solver: Solver | None = None

    async def entry_body(self, person: Person) -> dict[str, Any]:
        """Wait for the entries to open, then (in a pow mode) get the drop's challenge and solve it."""
        await sleep_until(self.opens_at)
        if self.solver is None:
            return {}
        reply = await self.call(person, "challenge", "GET", f"{self.drop_path}/challenge")
        if reply.status != 200:
            raise Unanswered(f"challenge answered {reply.status}: {reply.body[:200]!r}")
        return {"altcha": await self.solver.payload(orjson.loads(reply.body), person.bot)}


def ms(moment: float) -> int:
    return int(moment * 1000)


async def make_drop(mode: str, cfg: Settings, service: Pool, created: float) -> tuple[int, float, float]:
    """The drop, through the admin API: its id, when entries open and when sales start (epoch s)."""
    assert cfg.farm is not None
    admission = mode.partition("-")[0]
    starts_at = created + (DRAW_OPENS_S if admission == "draw" else cfg.lead)
    fields: dict[str, Any] = {
        "slug": f"herd-{mode}", "name": f"Herd ({mode})", "price": PRICE, "total_stock": cfg.stock,
        "per_user_limit": cfg.per_user_limit, "hold_seconds": cfg.hold_seconds, "starts_at": ms(starts_at),
        "admission": admission, "admit_seconds": ADMIT_SECONDS}
    if admission == "draw":
        fields["entries_close_at"] = ms(created + cfg.lead)
    if mode.endswith("-pow"):
        fields.update(challenge="pow", pow_algorithm=cfg.farm.pow_algorithm, pow_cost=cfg.farm.pow_cost)
    reply = await service.request("POST", "/api/admin/drops", {"Authorization": f"Bearer {ADMIN_TOKEN}", **JSON},
                                  orjson.dumps(fields))
    if reply.status != 201:
        hint = " (this server has no draw mode yet: run the draw modes on a tree that has it)" \
            if admission == "draw" else ""
        raise Refused(f"the server refused the `{mode}` drop: {reply.status} "
                      f"{reply.body.decode(errors='replace')[:300]}{hint}")
    if admission == "draw":
        return orjson.loads(reply.body)["id"], starts_at, created + cfg.lead
    return orjson.loads(reply.body)["id"], created, starts_at


class Feed:
    """A farm bot's one watch on the queue document, shared by all its identities."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {}
        self.etag = ""
        self.over = False
        self.changed = asyncio.Condition()

    async def watch(self, crowd: Crowd, person: Person) -> None:
        """From the start of sales, a read every BOT_POLL_S until the finish (as ``person``: the document
        is the same for everyone)."""
        await sleep_until(crowd.starts_at)
        try:
            while not crowd.finished:
                reply = await crowd.call(person, "queue", "GET", f"{crowd.drop_path}/queue",
                                         headers=revalidate(self.etag))
                if reply.status == 200:
                    async with self.changed:
                        self.doc, self.etag = orjson.loads(reply.body), reply.headers.get("etag", "")
                        self.changed.notify_all()
                await asyncio.sleep(BOT_POLL_S)
        except Unanswered:
            pass
        finally:
            async with self.changed:
                self.over = True
                self.changed.notify_all()

    def fresh(self, seen: str) -> bool:
        """A version of the document other than ``seen``, or the watch over."""
        return self.etag != seen or self.over

    async def documents(self) -> Documents:
        """Each new version of the document, until the watch is over."""
        seen = ""
        while True:
            async with self.changed:
                await self.changed.wait_for(functools.partial(self.fresh, seen))
                if self.etag == seen:
                    return
                doc, seen = self.doc, self.etag
            yield doc, seen


async def identity(crowd: Crowd, person: Person, feed: Feed) -> None:
    """One of a farm's identities: a cookie, a ticket (with a solved challenge in a pow mode), its turn."""
    await enter(crowd, person)
    await join(crowd, person)
    await in_line(crowd, person, feed.documents())


async def farm(crowd: Crowd, identities: list[Person]) -> None:
    """One farm bot: its identities and its watch on the queue document."""
    feed = Feed()
    watch = asyncio.create_task(feed.watch(crowd, identities[0]))
    try:
        await asyncio.gather(*(live(crowd, person, functools.partial(identity, feed=feed))
                               for person in identities))
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)


@contextlib.asynccontextmanager
async def loose(mode: str, cfg: Settings, pools: tuple[Pool, Pool, Pool]
                ) -> AsyncIterator[tuple[Crowd, list[Person], list[asyncio.Task[None]]]]:
    """The drop made and the crowd on its way: the shoppers and the farms (their identities last)."""
    assert cfg.farm is not None
    farms = cfg.farm
    crowd = FarmCrowd(mode, 0, 0.0, cfg.pay_share, *pools, cfg.bot_pause)
    solving = Solver(crowd.tally, farms.solvers) if mode.endswith("-pow") else contextlib.nullcontext()
    async with solving as solver:
        created = time.time()
        crowd.drop_id, crowd.opens_at, crowd.starts_at = await make_drop(mode, cfg, pools[0], created)
        crowd.solver = solver
        people = population(cfg.seed, cfg.shoppers, 0, crowd.opens_at, crowd.starts_at)
        identities = [Person(index, True, random.Random(f"herd-{cfg.seed}-{index}"), created)
                      for index in range(cfg.shoppers, cfg.shoppers + farms.count)]
        visits = [asyncio.create_task(live(crowd, person)) for person in people]
        visits += [asyncio.create_task(farm(crowd, identities[at:at + farms.identities]))
                   for at in range(0, farms.count, farms.identities)]
        yield crowd, people + identities, visits
