"""wrk on loopback with bench/lua/buyers.lua: one run, its output parsed."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass

from bench.harness import ROOT

LUA = ROOT / "bench" / "lua" / "buyers.lua"
CONNECTIONS = 64


@dataclass
class Load:
    """One wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    sent: int  # requests handed to wrk by request(); sent - answered were in flight at the end
    errors: dict[str, int]
    late: int | None = None  # paced runs: slots a thread fell >10 ms behind on
    seconds: float = 0.0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def in_flight(self) -> int:
        return max(0, self.sent - self.answered)


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def to_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNIT_MS[unit]


def parse_wrk(out: str, seconds: float) -> Load:
    percentiles = {int(p): to_ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M)}
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    statuses = {int(code): int(count) for code, count in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    sent = sum(int(n) for n in re.findall(r"^sent (\d+)$", out, re.M))
    errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if found:
        errors = dict(zip(errors, map(int, found.groups()), strict=True))
    late = re.search(r"^paced target \d+ late (\d+)$", out, re.M)
    if rps is None or 50 not in percentiles or 99 not in percentiles:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return Load(float(rps.group(1)), percentiles[50], percentiles[99], statuses, sent, errors,
                int(late.group(1)) if late else None, seconds)


def run_wrk(port: int, seconds: float, threads: int, *, mode: str = "post", path: str = "/api/drops/1/purchases",
            prefix: str = "u", rate: int | None = None, listed: str | None = None) -> Load:
    """One wrk run of bench/lua/buyers.lua; ``listed``: the file of requests of its "list" mode."""
    env = dict(os.environ, BUYERS_MODE=mode, BUYERS_PATH=path, BUYERS_PREFIX=prefix, BUYERS_THREADS=str(threads),
               BUYERS_LIST=listed or "")
    if rate:
        env["BUYERS_RATE"] = str(rate)
    argv = ["wrk", "-t", str(threads), "-c", str(CONNECTIONS), "-d", f"{max(1, round(seconds))}s", "--latency",
            "--timeout", "5s", "-s", str(LUA), f"http://127.0.0.1:{port}"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[:2000]}")
    return parse_wrk(done.stdout, seconds)
