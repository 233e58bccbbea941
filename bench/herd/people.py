"""The simulated people of bench/herd: what a shopper and a bot do, in each admission mode.

Every person has its own buyer cookie (from ``GET /``, as the page gets it), its own random
generator (seeded from the population seed and its index, so what each one does does not
depend on the order the event loop runs them in), and ends in a final state:
``bought`` (paid), ``expired`` (reserved, walked away without paying: the hold runs out),
``sold_out``, or what its ticket ended as (``lapsed``, ``ended``, ...). A shopper waits
50-500 ms of network and reaction time before each thing it does; a bot never waits.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.harness.client import Pool, Reply

REACTION_S = (0.05, 0.5)
PAGE_POLL_S = 1.5  # the shopper page refreshes a drop this often (open mode)
ORDER_POLL_S = 1.0  # the order page polls an order this often until it is paid
ORDER_POLLS = 30  # then it gives up
FINAL_VIEWS = 10  # views of a ticket, a second apart, once the line is over
FINAL_TICKET_STATES = ("used", "lapsed", "left", "sold_out", "ended")
RETRY_CODES = ("sold_out", "not_started")  # a click refused now that may succeed later
JSON = {"Content-Type": "application/json"}


class Unanswered(Exception):
    """A request got no answer (the connection failed): the person stops there."""


@dataclass
class Tally:
    """What the crowd sent and got: latencies per kind of request, answers, requests per group."""

    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)  # service requests: shopper, bot
    failures: Counter[str] = field(default_factory=Counter)

    def record(self, kind: str, reply: Reply, bot: bool, service: bool) -> None:
        self.latency[kind].append(reply.seconds)
        self.answers[(kind, reply.status)] += 1
        if service:
            self.requests["bot" if bot else "shopper"] += 1


@dataclass
class Person:
    index: int
    bot: bool
    rng: random.Random
    arrive_at: float  # epoch seconds
    cookie: str = ""
    buyer: str = ""  # the engine's user_id of the cookie's buyer
    ticket: dict[str, Any] | None = None
    position: int | None = None
    state: str = "arriving"
    clicks: int = 0


@dataclass
class Crowd:
    """What every person shares: the drop, the pools, the tally, and the finish (set by the run)."""

    mode: str  # open, queue
    drop_id: int
    starts_at: float  # epoch seconds
    pay_share: float
    service: Pool
    bot_service: Pool
    sandbox: Pool
    bot_pause: float = 0.0
    tally: Tally = field(default_factory=Tally)
    finished: bool = False

    @property
    def drop_path(self) -> str:
        return f"/api/drops/{self.drop_id}"

    async def call(self, person: Person, kind: str, method: str, path: str, body: Any = None,
                   headers: dict[str, str] | None = None, pool: Pool | None = None) -> Reply:
        """One request as ``person`` (its cookie), timed and counted under ``kind``."""
        sent = {"Cookie": person.cookie} if person.cookie else {}
        if body is not None:
            sent.update(JSON)
        sent.update(headers or {})
        service = pool is None
        pool = pool or (self.bot_service if person.bot else self.service)
        try:
            reply = await pool.request(method, path, sent, None if body is None else orjson.dumps(body))
        except (OSError, asyncio.IncompleteReadError) as error:
            self.tally.failures[kind] += 1
            raise Unanswered(f"{kind}: {error!r}") from error
        self.tally.record(kind, reply, person.bot, service)
        return reply


def revalidate(etag: str) -> dict[str, str]:
    """If-None-Match with the last ETag seen, as a browser sends it (nothing before the first)."""
    return {"If-None-Match": etag} if etag else {}


async def sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def react(person: Person) -> None:
    if not person.bot:
        await asyncio.sleep(person.rng.uniform(*REACTION_S))


async def enter(crowd: Crowd, person: Person) -> None:
    """Arrive and open the page, which sets the buyer cookie."""
    await sleep_until(person.arrive_at)
    await react(person)
    reply = await crowd.call(person, "page", "GET", "/")
    value = reply.headers.get("set-cookie", "").partition(";")[0]
    if not value.startswith("buyer="):
        raise Unanswered(f"no buyer cookie from GET /: {reply.status}")
    person.cookie = value
    person.buyer = "buyer-" + value.removeprefix("buyer=").partition(".")[0]


async def buy(crowd: Crowd, person: Person) -> tuple[Reply, dict[str, Any]]:
    """One click on Buy (a shopper's own Idempotency-Key per click; a bot sends none)."""
    headers = {}
    if not person.bot:
        person.clicks += 1
        headers["Idempotency-Key"] = f"herd-{person.index}-{person.clicks}"
    if person.ticket is not None:
        headers["Admission-Ticket"] = person.ticket["token"]
    reply = await crowd.call(person, "purchase", "POST", f"{crowd.drop_path}/purchases", {"quantity": 1}, headers)
    return reply, orjson.loads(reply.body) if reply.body else {}


async def settle(crowd: Crowd, person: Person, order: dict[str, Any]) -> None:
    """Pay (``pay_share`` of reservations, drawn from the person's generator) or walk away."""
    if person.rng.random() >= crowd.pay_share:
        person.state = "expired"
        return
    ref = order["public_ref"]
    await react(person)
    reply = await crowd.call(person, "checkout", "POST", f"/api/orders/{ref}/checkout")
    link = orjson.loads(reply.body).get("checkout_url") or ""
    await react(person)
    await crowd.call(person, "pay", "POST", f"/checkout/{link.rsplit('/', 1)[-1]}/pay", pool=crowd.sandbox)
    status = "reserved"
    for _ in range(ORDER_POLLS):
        await asyncio.sleep(ORDER_POLL_S)
        status = orjson.loads((await crowd.call(person, "order", "GET", f"/api/orders/{ref}")).body)["status"]
        if status != "reserved":
            break
    person.state = "bought" if status == "paid" else f"unpaid_{status}"


async def view(crowd: Crowd, person: Person) -> dict[str, Any]:
    """The ticket's view (the check-in); keeps its position and state."""
    assert person.ticket is not None
    reply = await crowd.call(person, "ticket", "GET", f"{crowd.drop_path}/tickets/{person.ticket['ticket_id']}")
    ticket = orjson.loads(reply.body)
    if reply.status == 200:
        person.position = ticket["position"]
        person.ticket["token"] = ticket["token"]
    return ticket


async def join(crowd: Crowd, person: Person) -> None:
    """Join the line, then view the ticket (checking in)."""
    await react(person)
    reply = await crowd.call(person, "join", "POST", f"{crowd.drop_path}/tickets", {})
    if reply.status not in (200, 201):
        raise Unanswered(f"join answered {reply.status}: {reply.body[:200]!r}")
    person.ticket = orjson.loads(reply.body)
    await react(person)
    await view(crowd, person)


async def attempt(crowd: Crowd, person: Person) -> bool:
    """One click on Buy; True when that settles the person (it reserved, or was refused for good),
    False when it may try again (sold out, not started, its ticket not admitted yet)."""
    reply, answer = await buy(crowd, person)
    if reply.status == 201:
        await settle(crowd, person, answer)
        return True
    error = answer.get("error", {})
    if error.get("code") in RETRY_CODES:
        return False
    if error.get("code") == "not_admitted":
        if error.get("ticket_state") not in FINAL_TICKET_STATES:
            return False
        person.state = error["ticket_state"]
    else:
        person.state = error.get("code") or f"http_{reply.status}"
    return True


async def bot_clicks(crowd: Crowd, person: Person) -> bool:
    """From the start, a bot's clicks one after another until one settles it (True) or the finish."""
    await sleep_until(crowd.starts_at)
    while not crowd.finished:
        if await attempt(crowd, person):
            return True
        await asyncio.sleep(crowd.bot_pause)
    return False


# -- open mode: everyone fires at the start; the page refreshes the drop; bots retry at once ----------


async def open_shopper(crowd: Crowd, person: Person) -> None:
    await enter(crowd, person)
    await sleep_until(crowd.starts_at)  # the page's countdown, on the server's clock
    await react(person)
    etag = ""
    while not crowd.finished:
        if await attempt(crowd, person):
            return
        while not crowd.finished:  # sold out: watch the drop for units coming back, as the page does
            await asyncio.sleep(PAGE_POLL_S)
            reply = await crowd.call(person, "drop", "GET", crowd.drop_path, headers=revalidate(etag))
            etag = reply.headers.get("etag", etag)
            if reply.status == 200 and orjson.loads(reply.body)["remaining"] > 0:
                await react(person)
                break
    person.state = "sold_out"


async def open_bot(crowd: Crowd, person: Person) -> None:
    await enter(crowd, person)
    if not await bot_clicks(crowd, person):
        person.state = "sold_out"


# -- queue mode: join, check in, poll the queue document, buy when admitted --------------------------


async def turn(crowd: Crowd, person: Person) -> bool:
    """The document says this ticket's turn may have come: view it, buy when admitted. True when done."""
    await react(person)
    ticket = await view(crowd, person)
    if ticket.get("state") in FINAL_TICKET_STATES:
        person.state = ticket["state"]
        return True
    if ticket.get("state") != "admitted":
        return False
    await react(person)
    return await attempt(crowd, person)


async def queue_shopper(crowd: Crowd, person: Person) -> None:
    await enter(crowd, person)
    await join(crowd, person)
    etag, looked, doc = "", "", {}
    while not crowd.finished:
        reply = await crowd.call(person, "queue", "GET", f"{crowd.drop_path}/queue", headers=revalidate(etag))
        if reply.status == 200:
            doc = orjson.loads(reply.body)
            etag = reply.headers.get("etag", "")
        if doc["state"] in ("sold_out", "ended"):
            break
        if doc["state"] not in ("upcoming", "entries_open") and looked != etag:
            looked = etag  # each version of the document is looked at once
            if person.position is None:  # the line closed: the page views the ticket for its place
                await react(person)
                await view(crowd, person)
            if person.position is not None and doc["admitted_through"] >= person.position and doc["remaining"] > 0 \
                    and await turn(crowd, person):
                return
        await asyncio.sleep(doc["poll_after_ms"] / 1000)
    await final_view(crowd, person)


async def final_view(crowd: Crowd, person: Person) -> None:
    """The line is over: view the ticket until it says how it ended (the admission pass that
    records the finish may come a moment after the document says sold out)."""
    for _ in range(FINAL_VIEWS):
        state = (await view(crowd, person)).get("state", "unknown")
        if state in FINAL_TICKET_STATES:
            break
        await asyncio.sleep(ORDER_POLL_S)
    person.state = state


async def queue_bot(crowd: Crowd, person: Person) -> None:
    await enter(crowd, person)
    await join(crowd, person)
    if not await bot_clicks(crowd, person):
        await final_view(crowd, person)


BEHAVIOUR = {("open", False): open_shopper, ("open", True): open_bot,
             ("queue", False): queue_shopper, ("queue", True): queue_bot}


async def live(crowd: Crowd, person: Person) -> None:
    """The person's whole visit; a request left unanswered ends it (state ``no_answer``)."""
    try:
        await BEHAVIOUR[(crowd.mode, person.bot)](crowd, person)
    except Unanswered:
        person.state = "no_answer"


def population(seed: int, shoppers: int, bots: int, created_at: float, starts_at: float) -> list[Person]:
    """Bots arrive the instant the drop is created; shoppers at random moments before the start
    (in its first 80 %, so that their joins are in before the close)."""
    people = []
    for index in range(shoppers + bots):
        rng = random.Random(f"herd-{seed}-{index}")
        bot = index >= shoppers
        arrive = created_at if bot else created_at + rng.uniform(0, 0.8) * (starts_at - created_at)
        people.append(Person(index, bot, rng, arrive))
    return people
