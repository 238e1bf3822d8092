"""The event loop and the journal thread keep the process's priority; the server's other threads are lowered
(fraud_app/priority.py). Linux only: elsewhere a process has one priority for all its threads."""
import json
import os
import subprocess
import sys
import time

import pytest
import requests

from conftest import Server, copy_of

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")

# Threads of its own, named as the live writer names its journal thread and otherwise, then lowered once.
THREADS = """
import json, os, threading
from fraud_app.priority import JOURNAL_THREAD, lower_background
go = threading.Event()
threads = {name: threading.Thread(target=go.wait, name=name) for name in (JOURNAL_THREAD, "fraud-app-writer")}
for thread in threads.values():
    thread.start()
first, again = lower_background(), lower_background()
nice = {name: os.getpriority(os.PRIO_PROCESS, t.native_id) for name, t in threads.items()}
nice["main"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
go.set()
print(json.dumps({"nice": nice, "first": first, "again": again}))
"""


def nice_of(pid: int) -> dict[int, int]:
    """Each thread's nice value, as the kernel shows it (field 19 of /proc/PID/task/TID/stat)."""
    values = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:  # ended meanwhile
            continue
        values[int(tid)] = int(stat.rsplit(")", 1)[1].split()[16])
    return values


@pytest.mark.parametrize("added", [0, 4])
def test_only_the_journal_thread_and_the_main_thread_keep_the_process_priority(added):
    out = subprocess.run(["nice", "-n", str(added), sys.executable, "-c", THREADS], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    seen = json.loads(out)
    base = min(19, os.getpriority(os.PRIO_PROCESS, 0) + added)
    assert seen["nice"] == {"fraud-app-journal": base, "main": base, "fraud-app-writer": min(19, base + 10)}
    assert seen["first"] >= 1 and seen["again"] == 0  # a thread already lowered is left as it is


def test_a_served_app_lowers_every_thread_but_the_event_loop_and_the_journal(trained, tmp_path):
    srv = Server(tmp_path, copy_of(trained, tmp_path), FRAUD_APP_RATE_LIMIT="0")
    try:
        srv.wait("api/v1/health")
        body = {"transaction_id": "prio-1", "timestamp": "2018-06-20T12:00:00Z", "customer_id": "C00011",
                "terminal_id": "T00100", "amount": 12.5}
        assert requests.post(srv.url + "api/v1/score", json=body, timeout=60).status_code == 200
        base = os.getpriority(os.PRIO_PROCESS, 0)  # the server's, as it inherits this process's
        deadline = time.monotonic() + 120
        while True:  # new threads are lowered within a second; wait for that on a busy machine
            nice = nice_of(srv.proc.pid)
            kept = sorted(tid for tid, value in nice.items() if value == base)
            if len(kept) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert nice[srv.proc.pid] == base  # the main thread runs the event loop
        assert len(kept) == 2, nice  # it and the journal thread
        assert all(value == min(19, base + 10) for tid, value in nice.items() if tid not in kept), nice
        assert len(nice) > 4  # DuckDB's and the writer's threads, at least, were lowered
    finally:
        srv.stop()
