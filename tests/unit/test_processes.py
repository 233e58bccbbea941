"""Several processes on one file: the write lock spans them and survives a SIGKILL."""

from __future__ import annotations

import os
import signal
import time

from child_python import spawn_python

from dropsvc import Engine

BUYER = """
import sys, threading
from collections import Counter
from dropsvc import Engine
path, drop_id, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
outcomes, lock = Counter(), threading.Lock()
with Engine(path) as engine:
    def buy(thread):
        mine = Counter(engine.purchase(drop_id, f"{name}-{thread}-{n}").outcome for n in range(150))
        with lock:
            outcomes.update(mine)
    threads = [threading.Thread(target=buy, args=(t,)) for t in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(outcomes["ok"], outcomes["sold_out"], sum(outcomes.values()), flush=True)
"""

HOLDER = """
import sys, time
from dropsvc import Engine
engine = Engine(sys.argv[1])
def hold(tx):
    tx.execute("UPDATE drops SET name = 'written by a process about to die' WHERE id = ?", (int(sys.argv[2]),))
    print("holding", flush=True)
    time.sleep(600)
engine.write(hold)
"""


def test_two_processes_of_eight_threads_share_one_stock(db_path):
    with Engine(db_path) as engine:
        drop_id = engine.create_drop(slug="p", name="P", price=1, total_stock=1000)
    buyers = [spawn_python(BUYER, db_path, drop_id, name) for name in ("left", "right")]
    results = []
    for buyer in buyers:
        out, err = buyer.communicate(timeout=120)
        assert buyer.returncode == 0, err  # a BusyError or any storage error would fail here
        results.append([int(x) for x in out.split()])
    assert sum(r[0] for r in results) == 1000
    assert all(r[0] + r[1] == r[2] == 8 * 150 for r in results)
    with Engine(db_path) as engine:
        assert engine.get_drop(drop_id)["sold"] == 1000
        assert engine.check() == []


def test_a_process_killed_inside_the_lock_does_not_wedge_the_others(db_path):
    with Engine(db_path) as engine:
        drop_id = engine.create_drop(slug="k", name="Before", price=1, total_stock=5)
        holder = spawn_python(HOLDER, db_path, drop_id)
        try:
            assert holder.stdout.readline().strip() == "holding"
            os.kill(holder.pid, signal.SIGKILL)
            killed = time.monotonic()
            holder.wait(timeout=10)
            result = engine.purchase(drop_id, "survivor")  # blocks until the lock is recovered
            recovery = time.monotonic() - killed
        finally:
            if holder.poll() is None:
                holder.kill()
            holder.stdout.close()
            holder.stderr.close()
        assert result.ok
        assert recovery < 10, f"took {recovery:.2f}s to recover the lock"
        assert engine.counters()["lock_recoveries"] == 1
        # the dead process's uncommitted write is gone, the survivor's purchase stands
        drop = engine.get_drop(drop_id)
        assert drop["name"] == "Before" and drop["sold"] == 1
        assert engine.check() == []
        print(f"lock recovered {recovery * 1000:.1f} ms after SIGKILL")
