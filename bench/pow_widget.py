"""What a proof-of-work cost buys: the shopper page's ALTCHA widget solving the service's challenges in headless
Chromium (Debian's, through Playwright), timed from the solve's start to its payload.

For each cost: ``dropsvc serve`` on a fresh database with a queue drop asking for that proof of work; the page
open (its buyer cookie); then, in the page, a fresh challenge and a solve by the widget, ``--runs`` times, with
one worker (the CPU time one identity costs) and with the widget's default (one worker per core: what a shopper
waits). The counter each challenge asks for is drawn from 500 to 1,499 (dropsvc/challenges.py), so runs vary
with it; the table gives the mean and the range, and the time per try (one key derivation).

    python -m bench.pow_widget [--runs 5] [--cost PBKDF2/SHA-256:5000 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from playwright.sync_api import sync_playwright

from bench.harness import PYTHON, results_folder
from bench.harness.servers import Server, free_port, running
from dropsvc import Engine

CHROMIUM = "/usr/bin/chromium"
DEFAULT_COSTS = ("PBKDF2/SHA-256:5000", "PBKDF2/SHA-256:1000", "PBKDF2/SHA-256:20000", "SHA-256:1")
# in the page (proof.js's globals): the widget's workers registered, a widget solving one fresh challenge
SOLVE = """async ({dropId, workers}) => {
  await altchaWidget();
  const widget = document.createElement('altcha-widget');
  document.body.append(widget);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const challenge = await (await fetch(`/api/drops/${dropId}/challenge`)).json();
  widget.configure({ minDuration: 0, timeout: 600000, ...(workers ? { workers } : {}) });
  const started = performance.now();
  const payload = await widgetSolves(widget, challenge);
  const seconds = (performance.now() - started) / 1000;
  widget.remove();
  return { seconds, counter: JSON.parse(atob(payload)).solution.counter };
}"""


def measure(base_url: str, drop_id: int, runs: int, workers: int | None) -> list[dict[str, float]]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(base_url + "/")
            page.wait_for_function("typeof altchaWidget === 'function'")
            return [page.evaluate(SOLVE, {"dropId": drop_id, "workers": workers}) for _ in range(runs)]
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cost", action="append", help="ALGORITHM:COST (repeatable)")
    args = parser.parse_args()
    stamp, folder = results_folder("pow-widget")
    db = folder / "pow.db"
    terms = [(spec.rsplit(":", 1)[0], int(spec.rsplit(":", 1)[1])) for spec in args.cost or DEFAULT_COSTS]
    with Engine(str(db)) as engine:
        drops = [engine.create_drop(slug=f"pow-{i}", name=f"{algorithm} {cost}", price=1000, total_stock=1,
                                    admission="queue", challenge="pow", pow_algorithm=algorithm, pow_cost=cost,
                                    starts_at=int(time.time() * 1000) + 86_400_000)
                 for i, (algorithm, cost) in enumerate(terms)]
    port = free_port()
    server = Server("dropsvc", [PYTHON, "-m", "dropsvc", "serve", "--db", str(db), "--port", str(port)], port, folder)
    rows = []
    print(f"{os.cpu_count()} cores; {args.runs} solves each; seconds per identity (mean, min-max); ms per try")
    with running(server):
        for (algorithm, cost), drop_id in zip(terms, drops, strict=True):
            for workers in (1, None):
                solves = measure(f"http://127.0.0.1:{port}", drop_id, args.runs, workers)
                seconds = [s["seconds"] for s in solves]
                per_try = statistics.mean(s["seconds"] / (s["counter"] + 1) for s in solves) * 1000
                row = {"algorithm": algorithm, "cost": cost, "workers": workers or "default",
                       "mean_s": statistics.mean(seconds), "min_s": min(seconds), "max_s": max(seconds),
                       "ms_per_try": per_try, "solves": solves}
                rows.append(row)
                print(f"{algorithm:>15} cost {cost:>6}  workers {str(row['workers']):>7}: {row['mean_s']:6.2f} s"
                      f" ({row['min_s']:.2f}-{row['max_s']:.2f})  {per_try:6.3f} ms/try")
    (folder / "results.json").write_text(json.dumps({"stamp": stamp, "cores": os.cpu_count(), "rows": rows}, indent=1))
    print(f"results: {folder / 'results.json'}")


if __name__ == "__main__":
    main()
