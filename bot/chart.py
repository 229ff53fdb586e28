"""The usage chart: cost per provider per day, as a PNG for ``sendPhoto``.

matplotlib's object API on the Agg canvas: no pyplot (its global figure registry is not
meant for a server's threads), no display. Drawing takes ~0.1 s, so it runs in a worker
thread and the event loop keeps serving presses meanwhile.

matplotlib is imported at the first chart, not with the bot: with NumPy it adds ~45 MB
resident, which a bot that never draws one (no ``summary_at``, no ``/usage``) should not
carry against the 200 MB budget (DESIGN.md).
"""

from __future__ import annotations

import asyncio
import io
from datetime import date

from taskops.storage.usage import DailyCost

#: a phone shows the photo about this wide; 2:1 keeps a week's or a month's bars readable
SIZE_INCHES = (8.0, 4.0)
DPI = 120
#: providers drawn one by one; the rest are summed as "other"
SERIES_SHOWN = 6


def _label(day: date, days: int) -> str:
    return day.strftime("%a %d" if days <= 7 else "%d %b").replace(" 0", " ")


def _series(daily: DailyCost) -> list[tuple[str, list[float]]]:
    ranked = sorted(daily.series.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    shown = [(name or "unknown", costs) for name, costs in ranked[:SERIES_SHOWN]]
    rest = ranked[SERIES_SHOWN:]
    if rest:
        shown.append(("other", [sum(day) for day in zip(*(c for _, c in rest), strict=True)]))
    return shown


def draw(daily: DailyCost, title: str) -> bytes:
    """The chart as PNG bytes: stacked bars, one colour per provider."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(daily.days)))
    bottom = [0.0] * len(positions)
    series = _series(daily)
    for name, costs in series:
        axes.bar(positions, costs, bottom=bottom, label=name, width=0.7)
        bottom = [b + c for b, c in zip(bottom, costs, strict=True)]
    if not series:
        axes.text(0.5, 0.5, "no cost recorded", ha="center", va="center",
                  transform=axes.transAxes, color="grey")
    step = 1 if len(positions) <= 10 else max(1, len(positions) // 8)
    axes.set_xticks(positions[::step],
                    [_label(d, len(positions)) for d in daily.days[::step]])
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"${value:,.2f}"))
    axes.set_ylim(bottom=0)
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if series:
        axes.legend(loc="upper left", fontsize="small", frameon=False)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


async def draw_png(daily: DailyCost, title: str) -> bytes:
    return await asyncio.to_thread(draw, daily, title)
