"""Which worker holds a task, and whether it is gone.

A worker's id is ``host:pid:nonce``. A worker that finds a task claimed by a worker of
its own host whose process no longer exists (or whose pid is now its own: the process
was restarted, as in a container where the worker is always pid 1) takes the task up at
once instead of waiting for the lease to run out — a restart on one machine resumes its
runs within a tick. Workers on other hosts are judged by their lease alone.

Ids that are not in that form (set by hand, as tests do) are judged by the lease only.
"""

from __future__ import annotations

import os
import socket
import uuid

#: the workers running in this process (a second worker here is alive, not a dead one)
_LIVE: set[str] = set()


def host_name() -> str:
    return socket.gethostname()[:60]


def default_worker_id() -> str:
    return f"{host_name()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def started(worker_id: str) -> None:
    _LIVE.add(worker_id)


def stopped(worker_id: str) -> None:
    _LIVE.discard(worker_id)


def gone_here(worker_id: str) -> bool:
    """Whether ``worker_id`` names a worker of this host whose process is gone."""
    parts = worker_id.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid_text, _ = parts
    if host != host_name() or worker_id in _LIVE:
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # an earlier run of this process's pid: not one of ours now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False
