"""The weekly digest's chart: cases per day by topic over the digest's period, and overdue cases by locality.

One PNG in portrait, sized for a phone screen (its smallest text still 12 CSS pixels when shown 390 pixels
wide), drawn with matplotlib's Agg backend (no display, no pyplot state) in DejaVu Sans, which has every
Vietnamese diacritic. The figures drawn are also written into the PNG's text metadata ("danvan" key, JSON), so
that what the picture says can be checked without OCR.
"""

from __future__ import annotations

import io
import json
import textwrap
from dataclasses import dataclass

from messages import Texts

# Colours told apart by people with the common colour-vision deficiencies (Okabe–Ito).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
MAX_PLACES = 12
WIDTH, HEIGHT, DPI = 4.2, 6.6, 250  # inches, pixels per inch: a narrow figure, so that its text is not shrunk
SMALLEST = 10  # points: tick labels, legend, bar labels
TITLE_CHARACTERS = 30  # a line of an axis title that fits the narrow figure


@dataclass(frozen=True)
class ChartData:
    title: str
    days: tuple[str, ...]  # "dd/mm", oldest first
    series: tuple[tuple[str, tuple[int, ...]], ...]  # (topic name, cases per day)
    overdue: tuple[tuple[str, int], ...]  # (place name, overdue cases), most first

    def numbers(self) -> dict:
        return {"days": list(self.days), "series": {name: list(v) for name, v in self.series},
                "overdue": dict(self.overdue)}


def render(data: ChartData, t: Texts) -> bytes:
    """The PNG. CPU-bound (about 0.2 s): call it in a thread."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with rc_context({"font.family": "DejaVu Sans", "font.size": 11, "axes.titlesize": 11.5,
                     "axes.titleweight": "bold", "axes.spines.top": False, "axes.spines.right": False}):
        fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        fig.suptitle(data.title, fontsize=13, fontweight="bold")
        top, bottom = fig.subplots(2, 1, height_ratios=(3, 2))
        _per_day(top, data, t)
        _overdue(bottom, data, t)
        out = io.BytesIO()
        fig.savefig(out, format="png", metadata={"Title": data.title, "Software": "danvan",
                                                 "danvan": json.dumps(data.numbers(), ensure_ascii=False)})
    return out.getvalue()


def _per_day(ax, data: ChartData, t: Texts) -> None:
    positions = range(len(data.days))
    base = [0] * len(data.days)
    for index, (name, values) in enumerate(s for s in data.series if any(s[1])):
        ax.bar(positions, values, bottom=base, label=name, color=COLOURS[index % len(COLOURS)], width=0.75)
        base = [b + v for b, v in zip(base, values, strict=True)]
    for x, total in zip(positions, base, strict=True):
        if total:
            ax.annotate(str(total), (x, total), ha="center", va="bottom", fontsize=SMALLEST, xytext=(0, 2),
                        textcoords="offset points")
    ax.set_title(_wrapped(t("chart.per_day")), loc="left")
    ax.set_xticks(list(positions), data.days, rotation=60, ha="right", fontsize=SMALLEST)
    ax.set_ylabel(t("chart.cases"))
    ax.set_ylim(0, max([*base, 1]) * 1.15)
    ax.yaxis.get_major_locator().set_params(integer=True)
    if any(base):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=1, frameon=False, fontsize=SMALLEST)
    else:
        ax.text(0.5, 0.5, t("chart.none"), ha="center", va="center", transform=ax.transAxes)


def _overdue(ax, data: ChartData, t: Texts) -> None:
    ax.set_title(_wrapped(t("chart.overdue")), loc="left")
    shown = data.overdue[:MAX_PLACES]
    if not shown:
        ax.text(0.5, 0.5, t("chart.no_overdue"), ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    names = [name for name, _ in reversed(shown)]
    values = [value for _, value in reversed(shown)]
    bars = ax.barh(range(len(shown)), values, color="#D55E00", height=0.65)
    ax.bar_label(bars, padding=3, fontsize=SMALLEST)
    ax.set_yticks(range(len(shown)), names, fontsize=SMALLEST)
    ax.set_xlim(0, max(values) * 1.2)
    ax.xaxis.get_major_locator().set_params(integer=True)


def _wrapped(title: str) -> str:
    return "\n".join(textwrap.wrap(title, TITLE_CHARACTERS))
