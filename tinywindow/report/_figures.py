"""Plotly figures of the report, each written as a ``<div>`` plus the script that draws it.

The plotly library itself is inlined once in the page head (``html.build_report``); each
figure here is serialised without it.  Traces are plain SVG lines and bars (no WebGL, so
the report draws in any browser, headless ones included), without per-point hover text,
and the layout uses no template (a template is ~10 kB of JSON per figure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["bars", "calibration_figure", "figure_html", "lines"]

HEIGHT = 340
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
_GRID = {"gridcolor": "#e5e7eb", "zerolinecolor": "#9ca3af", "linecolor": "#9ca3af", "automargin": True}


def _x(index: pd.Index) -> Any:
    """Times as short UTC strings (days when every stamp is midnight): a third of the bytes
    of plotly's own encoding, and never shifted into the viewer's zone."""
    if isinstance(index, pd.DatetimeIndex):
        utc = index.tz_convert(None) if index.tz is not None else index
        day = bool((utc.normalize() == utc).all())
        return utc.strftime("%Y-%m-%d" if day else "%Y-%m-%d %H:%M:%S").tolist()
    return index


def _layout(title: str, y_title: str = "", y_format: str = "", x_title: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01, "y": 0.98, "yanchor": "top", "font": {"size": 15}},
        "height": HEIGHT, "margin": {"l": 60, "r": 20, "t": 64, "b": 40},
        "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "x unified",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "legend": {"orientation": "h", "y": 1.02, "x": 1.0, "xanchor": "right", "yanchor": "bottom"},
        "xaxis": {**_GRID, "title": {"text": x_title}},
        "yaxis": {**_GRID, "title": {"text": y_title}, "tickformat": y_format},
        **extra,
    }


def lines(title: str, series: Mapping[str, pd.Series], y_title: str = "", y_format: str = "",
          fill: bool = False, y_range: Sequence[float] | None = None) -> go.Figure:
    """One line per named series (already thinned); ``fill`` shades to zero (a drawdown)."""
    fig = go.Figure(layout=_layout(title, y_title, y_format))
    if any(isinstance(s.index, pd.DatetimeIndex) for s in series.values()):
        fig.update_xaxes(type="date")
    for i, (name, s) in enumerate(series.items()):
        fig.add_trace(go.Scatter(
            x=_x(s.index), y=s.to_numpy(dtype=np.float64), name=name, mode="lines",
            line={"width": 1.5, "color": COLOURS[i % len(COLOURS)]}, fill="tozeroy" if fill else None,
        ))
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig


def bars(title: str, values: pd.Series, y_title: str = "", y_format: str = "", signed: bool = False) -> go.Figure:
    """A bar per label; ``signed`` colours gains green and losses red."""
    y = values.to_numpy(dtype=np.float64)
    colour: Any = np.where(y >= 0, "#16a34a", "#dc2626").tolist() if signed else COLOURS[0]
    fig = go.Figure(layout=_layout(title, y_title, y_format, hovermode="closest"))
    fig.add_trace(go.Bar(x=[str(v) for v in values.index], y=y, marker={"color": colour}, showlegend=False))
    return fig


def calibration_figure(table: pd.DataFrame) -> go.Figure:
    """Hit rate against mean confidence per confidence bin and agent, with the diagonal."""
    fig = go.Figure(layout=_layout("Calibration: hit rate by confidence bin", "hit rate", ".0%",
                                   x_title="mean confidence", hovermode="closest"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated",
                             line={"dash": "dot", "color": "#9ca3af", "width": 1}))
    for i, (agent, rows) in enumerate(table.groupby("agent", sort=True)):
        fig.add_trace(go.Scatter(
            x=rows["confidence"].to_numpy(dtype=np.float64), y=rows["hit_rate"].to_numpy(dtype=np.float64),
            name=str(agent), mode="lines+markers", line={"color": COLOURS[i % len(COLOURS)], "width": 1.5},
            customdata=rows["count"].to_numpy(dtype=np.int64),
            hovertemplate="confidence %{x:.2f}<br>hit rate %{y:.1%}<br>%{customdata} votes",
        ))
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1])
    return fig


def figure_html(fig: go.Figure, div_id: str) -> str:
    """The figure's ``<div>`` and drawing script, without the plotly library."""
    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id, config=CONFIG,
                       default_height=f"{HEIGHT}px", validate=False)
