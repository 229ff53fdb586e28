"""Helpers shared by the benchmark scripts: machine facts, databases, timing, tables.

Scripts run as ``python bench/<name>.py`` from the repository root; they put the root on
``sys.path`` themselves before importing this module.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "bench" / "data"  # gitignored
PG_SERVER = os.environ.get("TASKOPS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


# --- machine ------------------------------------------------------------------------------


def _first_line(path: str, prefix: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            for line in file:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine_facts() -> dict[str, str]:
    """CPU, cores, RAM, OS, Python and SQLite versions, and the date (UTC)."""
    mem_kb = _first_line("/proc/meminfo", "MemTotal").split()[0]
    ram = f"{int(mem_kb) / 1024 / 1024:.1f} GiB" if mem_kb.isdigit() else "unknown"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _first_line("/proc/cpuinfo", "model name"),
        "cores": str(os.cpu_count()),
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load average": load_average(),
    }


def load_average() -> str:
    """1/5/15-minute load: other work on the machine shows up in the timings."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


async def pg_facts(server: str = PG_SERVER) -> dict[str, str]:
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        facts = {"postgresql": str(await conn.fetchval("SHOW server_version"))}
        for name in ("shared_buffers", "work_mem", "effective_cache_size", "random_page_cost"):
            facts[f"pg {name}"] = str(await conn.fetchval(f"SHOW {name}"))
        return facts
    finally:
        await conn.close()


def print_facts(facts: dict[str, str]) -> None:
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        print(f"  {key:<{width}}  {value}")


# --- databases ------------------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def pg_url(name: str, server: str = PG_SERVER) -> str:
    return f"{server.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"


async def pg_admin(sql: str, server: str = PG_SERVER) -> None:
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def pg_database_exists(name: str, server: str = PG_SERVER) -> bool:
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def create_pg_database(name: str, server: str = PG_SERVER) -> None:
    await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', server)
    await pg_admin(f'CREATE DATABASE "{name}"', server)


async def drop_pg_database(name: str, server: str = PG_SERVER) -> None:
    await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', server)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


# --- timing ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 30 samples is the 29th smallest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


async def measure(run: Callable[[], Awaitable[object]], repeat: int,
                  warmup: int = 3) -> list[float]:
    """Milliseconds of ``repeat`` awaited calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        await run()
    gc.collect()
    samples: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summarize(samples: Sequence[float]) -> tuple[float, float]:
    return statistics.median(samples), percentile(samples, 95)


# --- output ---------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                   right: Sequence[int] = ()) -> str:
    """A Markdown table whose columns line up in a terminal too."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))
                                 ) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if i in right else "-" * (w + 2)
                          for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
