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


def _watch(out: Path, interval: float) -> None:
    time.sleep(interval)
    baseline = tracemalloc.take_snapshot()
    started = time.monotonic()
    while True:
        time.sleep(interval)
        snapshot = tracemalloc.take_snapshot()
        stats = snapshot.compare_to(baseline, "traceback")
        current, peak = tracemalloc.get_traced_memory()
        with out.open("a", encoding="utf-8") as file:
            minutes = (time.monotonic() - started) / 60
            file.write(f"\n=== {minutes:.0f} min after the baseline; traced {current / 1e6:.1f} MB"
                       f" (peak {peak / 1e6:.1f} MB)\n")
            for stat in stats[:25]:
                file.write(f"{stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks\n")
                for line in stat.traceback.format()[-10:]:
                    file.write(f"    {line}\n")


def main() -> None:
    out, interval, separator, *rest = sys.argv[1:]
    assert separator == "--", "usage: heap_child.py OUT INTERVAL -- <taskops.cli arguments>"
    tracemalloc.start(10)
    threading.Thread(target=_watch, args=(Path(out), float(interval)), daemon=True).start()
    from taskops.cli import main as cli_main
    sys.argv = ["taskops", *rest]
    cli_main()


if __name__ == "__main__":
    main()
