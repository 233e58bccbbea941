"""The HTTP side of an injected fault: purchases answer 503 with Retry-After (never 500) and /readyz
says storage_failing while writes fail; both recover on their own once the fault clears."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from falcon import testing

from bench.crashkit.runs import Point, engine_on, fresh_copy, verify
from bench.crashkit.scenarios import Ctx
from dropsvc import _engine
from dropsvc.config import Config
from dropsvc.http.app import serving_app
from dropsvc.logs import LOGGER_NAME


def http_point(template: Path, work: Path, spec: dict[str, Any]) -> Point:
    """Fail the spec's kind from its Nth call on, through the app in process (falcon's test client)."""
    point = Point(spec)
    logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())  # the 503s' log lines are expected
    folder = fresh_copy(template, work)
    state = json.loads((folder / "state.json").read_text())
    _engine.fault_vfs_register(4096, True)
    engine = engine_on(folder, spec["sync"], _engine.FAULT_VFS)
    ctx = Ctx(engine, folder, state, spec["sync"], _engine.FAULT_VFS)
    client = testing.TestClient(serving_app(engine, Config.load({})))
    url = f"/api/drops/{state['drop']}/purchases"

    def buy(user: str, key: str) -> testing.Result:
        ctx.op(f"POST purchase {user} key={key}")
        reply = client.simulate_post(url, json={"user_id": user}, headers={"Idempotency-Key": key})
        if reply.status_code in (200, 201):
            ctx.ack(kind="order", id=engine.order_id_from_ref(reply.json["public_ref"]), user=user, key=key)
        return reply

    def expect(what: str, ok: bool) -> None:
        if not ok:
            point.problems.append(what)

    try:
        expect("ready before the fault", client.simulate_get("/readyz").status_code == 200)
        expect("a purchase before the fault", buy("h0", "h-0").status_code == 201)
        _engine.fault_arm(spec["fault"], spec["n"], True, spec["full"])
        failing = buy("h1", "h-1")
        point.fired = _engine.fault_counts()["fired"] > 0
        expect(f"503 + Retry-After under the fault, got {failing.status_code}",
               failing.status_code == 503 and failing.headers.get("retry-after") == "1")
        ready = client.simulate_get("/readyz")
        expect(f"/readyz storage_failing under the fault, got {ready.status_code}",
               ready.status_code == 503 and ready.json["error"]["code"] == "storage_failing")
        _engine.fault_clear()
        again = buy("h1", "h-1")  # the same key: the order if the failed request left it, else a new one
        expect(f"the retry after the fault, got {again.status_code}", again.status_code in (200, 201))
        expect("ready after the fault", client.simulate_get("/readyz").status_code == 200)
        point.invariant += engine.check()
    finally:
        _engine.fault_clear()
        engine.close()
    point.ops = ctx.ops
    verify(folder, ctx.acks, point)
    return point
