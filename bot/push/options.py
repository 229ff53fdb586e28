"""Timings of the push side, in one place so tests and benchmarks can shorten them.

The user-facing knobs (stuck after, digest threshold and window) are settings
(``[notifications]``); these are the engineering ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PushOptions:
    #: how often the feed is read when no in-process signal arrives (another process wrote)
    poll_seconds: float = 1.0
    #: after a wake-up, wait this long for more changes before reading (bursts)
    coalesce_seconds: float = 0.05
    #: a cursor moved only past changes nobody wants is stored at most this often (a
    #: restart re-reads them, harmlessly); a delivery stores its cursor at once
    cursor_save_seconds: float = 2.0
    #: change-feed events read per batch
    batch_size: int = 500
    #: a digest starts a new message once it covers this long ("in the last minute")
    digest_max_span_seconds: float = 60.0
    #: batches a digest edit takes in at most (the rest goes with the next edit)
    digest_gather_batches: int = 40
    #: at most one live edit of a message in this many seconds
    live_edit_seconds: float = 2.0
    #: the same in a group (its 20 messages a minute also carry alerts and presses)
    live_edit_group_seconds: float = 10.0
    #: how often live views are checked when no in-process signal arrives
    live_poll_seconds: float = 1.0
    #: an opened detail follows its task this long after the chat last used it
    live_idle_minutes: float = 10.0
    #: following stops after this long without a new event of the task
    follow_quiet_minutes: float = 30.0
    #: how often running tasks are checked for being stuck
    stuck_check_seconds: float = 30.0
    #: how often the shift summary's time is checked (``[notifications] summary_at``)
    summary_check_seconds: float = 30.0
    #: a delivery under way (a message sent and what records it saved) may go on this long
    #: once the push side is stopped (bot/push/inflight.py)
    stop_grace_seconds: float = 2.0
    #: how often group alerts nobody acked are checked for re-announcement
    escalate_check_seconds: float = 20.0
    #: a task past its max duration by this much is announced as stuck (the worker normally
    #: fails it at the limit; still running after that means nothing is enforcing it)
    max_duration_grace_seconds: float = 60.0
