"""Server-side chart geometry for the hand-written inline SVG templates (no charting library: the figures
are a few bars and one line, which plain SVG draws readably without JavaScript)."""

from __future__ import annotations

from collections.abc import Sequence

BAR_W = 320  # drawing width of the longest bar, px
ROW_H = 18


def bars(rows: Sequence[tuple[str, Sequence[float]]], *, series: Sequence[str]) -> dict:
    """Grouped horizontal bars: ``rows`` = [(label, [value per series])]; values ≥ 0 (shares or counts)."""
    top = max((v for _, values in rows for v in values), default=0) or 1
    out, y = [], 0
    for label, values in rows:
        group = []
        for i, v in enumerate(values):
            group.append({"y": y + i * ROW_H, "w": round(BAR_W * v / top, 1), "value": v, "series": i})
        out.append({"label": label, "y": y, "bars": group})
        y += ROW_H * len(values) + 8
    return {"rows": out, "height": max(y, ROW_H), "width": BAR_W + 260, "series": list(series)}


def funnel(steps: Sequence[tuple[str, int]]) -> dict:
    top = max((n for _, n in steps), default=0) or 1
    out = []
    for i, (label, n) in enumerate(steps):
        w = round(BAR_W * n / top, 1)
        out.append({"label": label, "n": n, "w": w, "x": round(130 + (BAR_W - w) / 2, 1), "y": i * 30})
    return {"steps": out, "height": 30 * len(steps), "width": BAR_W + 200}


def line(points: Sequence[tuple[str, float]], *, width: int = 480, height: int = 140) -> dict:
    """A polyline over evenly spaced labels."""
    if not points:
        return {"path": "", "width": width, "height": height, "labels": [], "top": 0}
    top = max(v for _, v in points) or 1
    step = (width - 40) / max(len(points) - 1, 1)
    coords = [
        (round(30 + i * step, 1), round(height - 20 - (height - 40) * v / top, 1))
        for i, (_, v) in enumerate(points)
    ]
    labels = [{"x": x, "text": label} for (x, _), (label, _) in zip(coords, points, strict=True)]
    return {
        "path": " ".join(f"{x},{y}" for x, y in coords),
        "width": width,
        "height": height,
        "labels": labels[:: max(1, len(labels) // 8)],
        "top": top,
    }
