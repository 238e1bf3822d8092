"""CPU priority of a server's threads (Linux only).

Two threads are on every answer's path: the event loop, which serves every page and every API request, and the
live writer's journal thread, which makes each scored payment durable before its answer. The rest of the
server's work can wait a moment: the database queries behind the views, the writer's commits, background jobs,
and the worker threads DuckDB and LightGBM start themselves.

Under a team's load (bench/team.py: 10 analysts and 100 API requests a second on 2 cores) the slow answers came
in bursts. In those bursts the server's other threads used 0.6 of a core, against 0.08 otherwise, and the event
loop waited for a CPU three times as long. So those threads run at a lower priority: their work is done when
the two urgent threads leave a core free, and they keep the whole CPU when nothing else needs it.

Linux keeps a nice value per thread. An unprivileged process can lower a thread's priority but not raise it
again, so the other threads are lowered rather than the two raised. Other systems (macOS, Windows) keep one
value per process: there this does nothing."""
from __future__ import annotations

import os
import sys
import threading

# The live writer's journal thread has this name (live.py).
JOURNAL_THREAD = "fraud-app-journal"

# Added to the process's own nice value (19 at most). Each step is about 1.25 times less CPU when threads
# compete: the loop outweighs a background thread about 9 to 1, and background threads still share equally.
BACKGROUND = 10


def lower_background() -> int:
    """Lower every thread of this process but the main one (the event loop's) and the journal thread, unless
    already lower. New threads appear now and then (DuckDB's, the sessions' workers), so the server calls this
    every second. Returns how many threads it lowered."""
    if not sys.platform.startswith("linux"):
        return 0
    main = threading.main_thread().native_id
    keep = {main} | {thread.native_id for thread in threading.enumerate() if thread.name == JOURNAL_THREAD}
    try:
        target = min(19, os.getpriority(os.PRIO_PROCESS, main) + BACKGROUND)
        tids = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return 0
    lowered = 0
    for tid in tids:
        if tid in keep:
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < target:
                os.setpriority(os.PRIO_PROCESS, tid, target)
                lowered += 1
        except OSError:  # the thread ended meanwhile
            pass
    return lowered
