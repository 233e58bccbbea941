"""``dropsvc serve --replicate URL``: the real Litestream beside the service (SPEC 8, 10).

A herd buys over HTTP while Litestream ships the WAL to a ``file://`` replica;
then the service stops (cleanly, or with everything killed at once, as in a
crash) and ``litestream restore`` brings the replica back as a new file. The
restored file's invariant holds, and it has every order acknowledged well
before the cut.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from live_server import Api, Server

from dropsvc import Engine
from dropsvc.run.replication import ReplicationSettings, find_litestream, litestream_config

SYNC = 0.3  # seconds: the sync interval the service is started with
HERD = 6
BUY_SECONDS = 1.5


def events(server: Server, name: str) -> list[dict]:
    lines = (json.loads(line) for line in server.log().splitlines() if line.startswith("{"))
    return [line["fields"] for line in lines if line["event"] == name]


def start_replicated(start_server, tmp_path: Path) -> tuple[Server, str]:
    url = (tmp_path / "replica").as_uri()
    server = start_server(extra_args=("--replicate", url, "--replicate-sync-interval", f"{int(SYNC * 1000)}ms"))
    [started] = events(server, "replication_started")
    assert started["url"] == url and started["sync_interval"] == SYNC
    return server, url


def buy_for_a_while(server: Server, seconds: float) -> list[tuple[str, float]]:
    """HERD shoppers buying (one unit each) for ``seconds``: (public_ref, monotonic time of the 201)."""
    api = Api(server)
    drop = api.create_drop(total_stock=1_000_000, per_user_limit=1)
    api.close()
    acked: list[tuple[str, float]] = []
    deadline = time.monotonic() + seconds

    def shopper() -> None:
        client = Api(server)
        while time.monotonic() < deadline:
            try:
                reply = client.buy(drop["id"], f"shopper-{uuid.uuid4().hex}")
            except OSError:
                return  # the service was cut
            assert reply.status == 201, reply.body
            acked.append((reply.json["public_ref"], time.monotonic()))
        client.close()

    threads = [threading.Thread(target=shopper, daemon=True) for _ in range(HERD)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 10)
    assert len(acked) > 100
    return acked


def restore(url: str, output: Path) -> None:
    """The real thing, as an operator would run it."""
    done = subprocess.run([find_litestream(), "restore", "-o", str(output), url], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert output.exists()


def missing_orders(path: Path, refs: list[str]) -> list[str]:
    with Engine(path) as engine:
        assert engine.check() == []
        return [ref for ref in refs if engine.get_order(ref) is None]


def test_replica_restores_every_acknowledged_order_after_a_clean_stop(start_server, tmp_path):
    server, url = start_replicated(start_server, tmp_path)
    [litestream_pid] = [fields["pid"] for fields in events(server, "replication_started")]
    acked = buy_for_a_while(server, BUY_SECONDS)
    cut = time.monotonic()
    assert server.stop() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(litestream_pid, 0)  # Litestream stopped with the service
    [stopped] = events(server, "replication_stopped")
    assert stopped["status"] == 0

    restored = tmp_path / "restored.db"
    restore(url, restored)
    early = [ref for ref, at in acked if at < cut - SYNC]
    assert early and missing_orders(restored, early) == []
    # a clean stop lets Litestream ship the rest of the WAL: nothing acknowledged is lost at all
    assert missing_orders(restored, [ref for ref, _ in acked]) == []


def test_replica_after_a_crash_has_every_order_older_than_the_sync_lag(start_server, tmp_path):
    server, url = start_replicated(start_server, tmp_path)
    [litestream_pid] = [fields["pid"] for fields in events(server, "replication_started")]
    stop_buying = threading.Event()
    acked: list[tuple[str, float]] = []

    def buy() -> None:
        acked.extend(buy_for_a_while(server, BUY_SECONDS + 1))
        stop_buying.set()

    buyer = threading.Thread(target=buy, daemon=True)
    buyer.start()
    time.sleep(BUY_SECONDS)  # mid-sale: Litestream and the service die at once, as when the machine does
    os.kill(litestream_pid, signal.SIGKILL)
    cut = time.monotonic()
    server.process.kill()
    server.process.wait()
    buyer.join(15)
    assert stop_buying.is_set()

    restored = tmp_path / "restored.db"
    restore(url, restored)
    # the bound: Litestream notices a commit within its monitor interval and ships it at the next sync
    lag = SYNC + ReplicationSettings(url, SYNC).monitor_interval + 0.2  # + the writing itself, with room
    early = [ref for ref, at in acked if at < cut - lag]
    assert len(early) > 50
    assert missing_orders(restored, early) == []


def test_checkpoints_are_litestreams_while_it_replicates(start_server, tmp_path):
    server, _ = start_replicated(start_server, tmp_path)
    assert server.stop() == 0
    assert events(server, "checkpoints") == [{"owner": "litestream"}]  # the background worker stood down
    config = litestream_config(str(server.db_path), ReplicationSettings("file:///r", 0.25))
    [db] = config["dbs"]
    assert db["path"] == str(server.db_path) and db["replica"] == {"url": "file:///r", "sync-interval": "250ms"}
    assert db["monitor-interval"] == "50ms"


@pytest.mark.parametrize(("args", "named"), [
    (("--replicate", "ftp://example.com/x"), "--replicate"),
    (("--replicate", "file:///tmp/r", "--replicate-sync-interval", "5h"), "--replicate-sync-interval"),
])
def test_bad_replication_settings_exit_2(tmp_path, args, named):
    from live_server import run_cli

    done = run_cli("serve", "--db", str(tmp_path / "never.db"), *args)
    assert done.returncode == 2
    assert done.stderr.startswith(f"dropsvc: {named} ") and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "never.db").exists()


def test_a_litestream_that_dies_is_restarted(start_server, tmp_path):
    server, url = start_replicated(start_server, tmp_path)
    [first] = [fields["pid"] for fields in events(server, "replication_started")]
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while not events(server, "replication_restarted") and time.monotonic() < deadline:
        time.sleep(0.05)
    [exited] = events(server, "replication_exited")
    [restarted] = events(server, "replication_restarted")
    assert exited["pid"] == first and restarted["pid"] != first
    acked = buy_for_a_while(server, 0.5)  # the new one replicates what is sold after it started
    assert server.stop() == 0
    restored = tmp_path / "restored.db"
    restore(url, restored)
    assert missing_orders(restored, [ref for ref, _ in acked]) == []
