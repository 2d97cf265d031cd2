"""Plotly figures (plain dicts, drawn by portal.js from ``data-figure``) of a resident's record.

Plotly renders a subset of HTML in its strings (``<a href>``, ``<b>`` …): every text that goes into a
figure (titles, trace names, axis titles, hover text) passes :func:`plain` first, so a lab name or a title
an institution sent shows as the text it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SYSTOLIC_COLOUR = "#cf222e"
DIASTOLIC_COLOUR = "#0969da"
VALUE_COLOUR = "#0969da"
RANGE_COLOUR = "rgba(26, 127, 55, 0.12)"


def plain(text: object) -> str:
    """``text`` with ``&``, ``<`` and ``>`` escaped as HTML entities (plotly shows them as the characters)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _layout(title: str, y_title: str, height: int = 280) -> dict[str, Any]:
    return {
        "title": {"text": plain(title), "font": {"size": 14}},
        "height": height,
        "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": plain(y_title)}},
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "x unified",
    }


def _x(when: object) -> str:
    # portal times are "YYYY-MM-DD HH:MM" in Shanghai time, which plotly reads as a date axis value
    return plain(when)


def bp_figure(
    points: Sequence[Mapping[str, Any]], *, title: str, systolic: str, diastolic: str
) -> dict[str, Any]:
    """The blood-pressure trend: systolic and diastolic lines (mmHg) with the 140/90 thresholds."""
    xs = [_x(p["when"]) for p in points]
    figure: dict[str, Any] = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": plain(systolic),
                "x": xs,
                "y": [p["systolic"] for p in points],
                "line": {"color": SYSTOLIC_COLOUR},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": plain(diastolic),
                "x": xs,
                "y": [p["diastolic"] for p in points],
                "line": {"color": DIASTOLIC_COLOUR},
            },
        ],
        "layout": _layout(title, "mmHg"),
    }
    if xs:
        figure["layout"]["shapes"] = [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": level,
                "y1": level,
                "line": {"dash": "dot", "width": 1, "color": colour},
            }
            for level, colour in ((140, SYSTOLIC_COLOUR), (90, DIASTOLIC_COLOUR))
        ]
    return figure


def lab_figure(test: Mapping[str, Any], *, title: str) -> dict[str, Any]:
    """One test's values over time, its reference range shaded."""
    series = test.get("series") or []
    figure: dict[str, Any] = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": plain(test.get("name", "")),
                "x": [_x(p["when"]) for p in series],
                "y": [p["value"] for p in series],
                "line": {"color": VALUE_COLOUR},
            }
        ],
        "layout": {**_layout(title, str(test.get("unit", "")), height=220), "showlegend": False},
    }
    low, high = test.get("low"), test.get("high")
    if low is not None and high is not None:
        figure["layout"]["shapes"] = [
            {
                "type": "rect",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": low,
                "y1": high,
                "fillcolor": RANGE_COLOUR,
                "line": {"width": 0},
                "layer": "below",
            }
        ]
    return figure
