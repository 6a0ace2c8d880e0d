"""Shapes for the drift dashboard: 8x8 maps, the score history and bars as plain SVG numbers.

Pure presentation: it takes what the selectors return and computes coordinates and
colours, so the template only loops. No JavaScript, no external assets.
"""

from __future__ import annotations

CELL = 22  # pixels per 8x8 cell
GRID = 8 * CELL
HISTORY_WIDTH = 640
HISTORY_HEIGHT = 170
HISTORY_PAD = 30
SEVERITY_COLOURS = {"none": "#15803d", "warning": "#b45309", "critical": "#b91c1c"}
STATUS_COLOURS = {"ok": "#15803d", "drift": "#b91c1c", "insufficient_data": "#6b7280"}


def _mix(value: float, low=(255, 255, 255), high=(185, 28, 28)) -> str:
    t = min(max(value, 0.0), 1.0)
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def drift_cells(features: list[dict], cap: float) -> list[dict]:
    """Heat-map cells: colour by normalised W1 (full red at ``cap``), outline if drifted."""
    cells = []
    for f in features:
        value = f["normalised"]
        cells.append(
            {
                "x": f["col"] * CELL,
                "y": f["row"] * CELL,
                "fill": "#e5e7eb" if value is None else _mix(value / cap),
                "drifted": f["drifted"],
                "title": (
                    f"pixel ({f['row']},{f['col']}): no live data"
                    if value is None
                    else f"pixel ({f['row']},{f['col']}): W1 {f['wasserstein']:.3f}, "
                    f"normalised {value:.3f}{' (drifted)' if f['drifted'] else ''}"
                ),
            }
        )
    return cells


def digit_cells(means: list[float | None]) -> list[dict]:
    """Grey cells of a mean digit on 0..16 (16 = black ink on white)."""
    cells = []
    for j, mean in enumerate(means):
        level = 0.0 if mean is None else min(max(mean / 16.0, 0.0), 1.0)
        grey = round(255 * (1 - level))
        cells.append(
            {
                "x": (j % 8) * CELL,
                "y": (j // 8) * CELL,
                "fill": f"#{grey:02x}{grey:02x}{grey:02x}",
                "title": f"pixel ({j // 8},{j % 8}): "
                + ("no data" if mean is None else f"mean {mean:.2f} of 16"),
            }
        )
    return cells


def history_chart(history: list[dict], thresholds: dict | None) -> dict:
    """Polylines of score and drifted share over the reports, with the severity lines."""
    values = [v for row in history for v in (row["score"], row["drifted_share"]) if v is not None]
    top = max([1.0, *values])
    inner_w = HISTORY_WIDTH - 2 * HISTORY_PAD
    inner_h = HISTORY_HEIGHT - 2 * HISTORY_PAD

    def x(i: int) -> float:
        return HISTORY_PAD + (inner_w * i / (len(history) - 1) if len(history) > 1 else inner_w / 2)

    def y(v: float) -> float:
        return HISTORY_PAD + inner_h * (1 - v / top)

    points = []
    for i, row in enumerate(history):
        if row["score"] is None:
            continue
        points.append(
            {
                "x": round(x(i), 1),
                "y": round(y(row["score"]), 1),
                "share_y": round(y(row["drifted_share"]), 1),
                "colour": SEVERITY_COLOURS.get(row["severity"], "#6b7280"),
                "title": f"{row['created_at']:%Y-%m-%d %H:%M} v{row['model_version__version']}: "
                f"{row['status']}, score {row['score']:.3f}, "
                f"drifted {row['drifted_share']:.0%}, n={row['n_current']}",
            }
        )
    lines = []
    if thresholds:
        for name in ("warning_share", "critical_share"):
            lines.append(
                {
                    "y": round(y(thresholds[name]), 1),
                    "label": f"{name.split('_')[0]} {thresholds[name]:.0%}",
                    "colour": SEVERITY_COLOURS[name.split("_")[0]],
                }
            )
    return {
        "width": HISTORY_WIDTH,
        "height": HISTORY_HEIGHT,
        "pad": HISTORY_PAD,
        "right": HISTORY_WIDTH - HISTORY_PAD,
        "bottom": HISTORY_HEIGHT - HISTORY_PAD,
        "top_label": f"{top:.2f}",
        "points": points,
        "score_line": " ".join(f"{p['x']},{p['y']}" for p in points),
        "share_line": " ".join(f"{p['x']},{p['share_y']}" for p in points),
        "thresholds": lines,
        "first": history[0]["created_at"] if history else None,
        "last": history[-1]["created_at"] if history else None,
    }


def mix_bars(prediction_mix: dict) -> list[dict]:
    """Per digit: training and live shares as bar widths (percent of the widest share)."""
    reference, current = prediction_mix["reference"], prediction_mix["current"]
    widest = max([*reference, *current, 1e-9])
    return [
        {
            "digit": digit,
            "reference": reference[digit],
            "current": current[digit],
            "reference_width": round(100 * reference[digit] / widest, 1),
            "current_width": round(100 * current[digit] / widest, 1),
        }
        for digit in range(len(reference))
    ]


def dashboard_context(
    *,
    name: str,
    models: list[str],
    report,
    history: list[dict],
    traffic: list[dict],
    versions: list[dict],
) -> dict:
    """Everything ``dashboard.html`` shows for one model."""
    context = {
        "model": name,
        "models": models,
        "report": None,
        "history": history_chart(history, report.document["thresholds"] if report else None),
        "n_history": len(history),
        "grid": GRID,
        "cell": CELL,
    }
    by_version = {row["version"]: row for row in traffic}
    context["versions"] = [
        {
            **v,
            "answered": by_version.get(v["version"], {}).get("n", 0),
            "answered_share": by_version.get(v["version"], {}).get("share", 0.0),
        }
        for v in versions
        if v["stage"] != "archived" or v["version"] in by_version
    ]
    context["traffic_total"] = sum(row["n"] for row in traffic)
    if report is None:
        return context
    doc = report.document
    cap = max(1.0, 2 * doc["thresholds"]["feature"])
    features = doc["features"]
    context.update(
        report=doc,
        report_id=report.pk,
        status_colour=STATUS_COLOURS.get(doc["status"], "#6b7280"),
        severity_colour=SEVERITY_COLOURS.get(doc["severity"], "#6b7280"),
        heat_cells=drift_cells(features, cap),
        heat_cap=cap,
        mean_digits=[
            {
                "name": "Mean training digit",
                "count": f"{doc['n_reference']} samples",
                "cells": digit_cells([f["reference_mean"] for f in features]),
            },
            {
                "name": "Mean live digit",
                "count": f"{doc['n_current']} predictions in the window",
                "cells": digit_cells([f["current_mean"] for f in features]),
            },
        ],
        mix=mix_bars(doc["prediction_mix"]),
        worst=sorted(
            (f for f in features if f["normalised"] is not None),
            key=lambda f: -f["normalised"],
        )[:5],
    )
    return context
