"""Server-drawn SVG bar charts: bars, a y axis with round ticks, and a tooltip per bar."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

WIDTH, HEIGHT = 720, 220
LEFT, BOTTOM, TOP = 64, 190, 12  # plot area: x from LEFT, y from TOP down to BOTTOM


@dataclass(frozen=True)
class Bar:
    label: str
    tooltip: str
    value_micro: int
    x: float
    y: float
    width: float
    height: float
    show_label: bool

    @property
    def cx(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Tick:
    value_micro: int
    y: float


def _nice_step(top_micro: int, ticks: int = 4) -> int:
    """A 1/2/5 × 10ⁿ step so that `ticks` steps cover the highest bar."""
    raw = Decimal(max(top_micro, 1)) / ticks
    power = Decimal(10) ** (len(str(int(raw))) - 1)
    for factor in (1, 2, 5, 10):
        if power * factor >= raw:
            return int(power * factor)
    return int(power * 10)


def bar_chart(points: list[tuple[str, str, int]]) -> dict:
    """`points` are (axis label, tooltip, micro-yuan); labels thin out to stay readable."""
    step = _nice_step(max((v for _, _, v in points), default=0))
    top = step * 4
    span = BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(points), 1)
    every = max(1, round(len(points) / 12))
    bars = []
    for i, (label, tooltip, value) in enumerate(points):
        h = span * value / top if top else 0
        bars.append(
            Bar(
                label,
                tooltip,
                value,
                LEFT + i * slot + slot * 0.15,
                BOTTOM - h,
                slot * 0.7,
                h,
                i % every == 0,
            )
        )
    ticks = [Tick(step * k, BOTTOM - span * k / 4) for k in range(5)]
    return {"bars": bars, "ticks": ticks, "width": WIDTH, "height": HEIGHT, "left": LEFT, "bottom": BOTTOM}
