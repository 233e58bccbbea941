"""Proof of work for bench/herd's crowds: ALTCHA challenges solved with the library's own solver
(``altcha.solve_challenge``) in a pool of processes, so the asyncio crowd stays responsive.

Each solve is timed in its worker with ``time.process_time()`` (that process's CPU seconds, its
only work being the solve), and counted per group (``shopper``, ``bot``) in the crowd's tally.
The pool takes solves in priority order: a shopper's before any bot's still waiting. A person
solves on a device of its own, so its solve should not wait behind a farm's thousand; the farm's
solves queue behind each other, as they would on the farm's own cores. What a solve costs is the
same either way: the CPU seconds are measured per solve, not from the wall clock.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import altcha

from bench.herd.people import Tally

SOLVE_TIMEOUT_S = 120.0
PRIORITY = {"shopper": 0, "bot": 1}

Job = tuple[int, int, str, dict[str, Any], "asyncio.Future[str]"]  # priority, order, group, challenge, answer


def solve(challenge: dict[str, Any]) -> tuple[str, float]:
    """In a worker: the widget's payload for ``challenge`` (as GET .../challenge gave it) and the
    CPU seconds the solve took."""
    started = time.process_time()
    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed, timeout=SOLVE_TIMEOUT_S)
    if solution is None:
        raise RuntimeError(f"no solution within {SOLVE_TIMEOUT_S:g} s")
    return altcha.Payload(parsed, solution).to_base64(), time.process_time() - started


def ready() -> bool:
    return True


class Solver:
    """``workers`` processes solving challenges, a shopper's first; use ``async with``."""

    def __init__(self, tally: Tally, workers: int = 2) -> None:
        self.tally = tally
        self.workers = workers
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        self.waiting: asyncio.PriorityQueue[Job] = asyncio.PriorityQueue()
        self.order = itertools.count()
        self.dispatchers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Solver:
        loop = asyncio.get_running_loop()
        # the workers started and importing altcha before the clock of any run starts
        await asyncio.gather(*(loop.run_in_executor(self.pool, ready) for _ in range(self.workers)))
        self.dispatchers = [asyncio.create_task(self.dispatch()) for _ in range(self.workers)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self.dispatchers:
            task.cancel()
        await asyncio.gather(*self.dispatchers, return_exceptions=True)
        self.pool.shutdown(wait=True, cancel_futures=True)

    async def dispatch(self) -> None:
        """One worker's feed: the next solve by priority, one at a time."""
        loop = asyncio.get_running_loop()
        while True:
            _, _, group, challenge, answer = await self.waiting.get()
            try:
                payload, cpu = await loop.run_in_executor(self.pool, solve, challenge)
            except Exception as error:  # handed to the person who asked
                answer.set_exception(error)
                continue
            self.tally.solves[group] += 1
            self.tally.solve_cpu[group] += cpu
            answer.set_result(payload)

    async def payload(self, challenge: dict[str, Any], bot: bool) -> str:
        """The solved challenge's payload for a join; waits for a worker (a bot behind every shopper)."""
        group = "bot" if bot else "shopper"
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        await self.waiting.put((PRIORITY[group], next(self.order), group, challenge, answer))
        return await answer
