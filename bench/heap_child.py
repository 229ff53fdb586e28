"""Run ``taskops`` with tracemalloc on, writing the heap's growth every few minutes (issue 18).

    python bench/heap_child.py OUT_FILE INTERVAL_S -- <taskops.cli arguments>

bench/soak.py --heap starts ``taskops run`` through this wrapper. A first snapshot is taken
after one interval (caches warm); each later interval appends to OUT_FILE the 25 allocation
sites (10 frames deep) whose live size grew most since that baseline. tracemalloc costs
memory and CPU of its own, so a --heap run diagnoses growth; its RSS is not the figure.
"""

from __future__ import annotations

import sys
import threading
import time
import tracemalloc
from pathlib import Path

#: this watcher's own allocations (snapshots, their comparison, source lines) are not
#: the product's
_OWN = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__),
        tracemalloc.Filter(False, "*/linecache.py")]


def _snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces(_OWN)


def _watch(out: Path, interval: float) -> None:
    time.sleep(interval)
    baseline = _snapshot()
    started = time.monotonic()
    while True:
        time.sleep(interval)
        _write(out, baseline, started)


def _write(out: Path, baseline: tracemalloc.Snapshot, started: float) -> None:
    # A function of its own: the snapshot and its statistics are freed before the next.
    snapshot = _snapshot()
    stats = snapshot.compare_to(baseline, "traceback")
    current, peak = tracemalloc.get_traced_memory()
    with out.open("a", encoding="utf-8") as file:
        minutes = (time.monotonic() - started) / 60
        file.write(f"\n=== {minutes:.0f} min after the baseline; traced {current / 1e6:.1f} MB"
                   f" (peak {peak / 1e6:.1f} MB); the product's heap "
                   f"{sum(s.size for s in snapshot.statistics('filename')) / 1e6:.1f} MB\n")
        for stat in stats[:25]:
            file.write(f"{stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks\n")
            for line in stat.traceback.format()[-10:]:
                file.write(f"    {line}\n")


def main() -> None:
    out, interval, separator, *rest = sys.argv[1:]
    assert separator == "--", "usage: heap_child.py OUT INTERVAL -- <taskops.cli arguments>"
    # The checkout this script is in, not whichever one an editable install points at.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    tracemalloc.start(10)
    threading.Thread(target=_watch, args=(Path(out), float(interval)), daemon=True).start()
    from taskops.cli import main as cli_main
    sys.argv = ["taskops", *rest]
    cli_main()


if __name__ == "__main__":
    main()
