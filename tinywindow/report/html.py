"""The run report: one self-contained HTML file of a run's records.

``build_report(records)`` returns the page: the plotly library inlined once in its head (no
CDN, no web fonts, so it opens offline) and one ``<section>`` per view, each with a stable
id: ``equity``, ``drawdown``, ``rolling-sharpe``, ``agents``, ``consensus``, ``symbols``,
``trades``, ``risk``, ``models``, ``explanations``.  An empty table renders as a line saying
nothing was recorded; a report never fails for lack of data.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.offline

from tinywindow.backtest import metrics
from tinywindow.report import _series as S
from tinywindow.report._figures import bars, calibration_figure, figure_html, lines
from tinywindow.report._tables import html_table, none_line, trades_frame

if TYPE_CHECKING:
    from tinywindow.records import RunRecords

__all__ = ["SECTIONS", "build_report"]

SECTIONS = ("equity", "drawdown", "rolling-sharpe", "agents", "consensus", "symbols", "trades", "risk", "models",
            "explanations")
_TITLES = {
    "equity": "Equity", "drawdown": "Drawdown", "rolling-sharpe": "Rolling Sharpe", "agents": "Agents",
    "consensus": "Consensus", "symbols": "Per-symbol P&L", "trades": "Trades", "risk": "Risk events",
    "models": "Model versions", "explanations": "Explained decisions",
}
TOP_FEATURES = 15
EXPLAINED_ROWS = 200
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#111827;background:#f9fafb}
header{background:#111827;color:#f9fafb;padding:16px 24px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#d1d5db}nav{margin-top:10px}nav a{color:#93c5fd;margin-right:14px;text-decoration:none}
main{padding:8px 24px 40px;max-width:1400px;margin:auto}
section{background:white;border:1px solid #e5e7eb;border-radius:8px;margin:16px 0;padding:12px 16px}
section h2{font-size:18px;margin:4px 0 8px}p.none{color:#6b7280;font-style:italic}p.note{color:#6b7280;font-size:13px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:8px}.grid>div{min-width:0}
.table{max-height:480px;overflow:auto;border:1px solid #e5e7eb}
table{border-collapse:collapse;font-size:12px;width:100%}th,td{padding:3px 8px;border-bottom:1px solid #f3f4f6;
text-align:left;white-space:nowrap}th{background:#f3f4f6;position:sticky;top:0}td.num{text-align:right;
font-variant-numeric:tabular-nums}.kpi td:first-child{color:#6b7280}.promoted{color:#15803d}.rejected{color:#b91c1c}
"""


class _Page:
    """Figure ids numbered per section, so every plot's ``<div>`` id is stable and unique."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}

    def figure(self, section: str, fig: go.Figure) -> str:
        n = self.count[section] = self.count.get(section, 0) + 1
        return figure_html(fig, f"{section}-plot-{n}")


def _pct(v: float) -> str:
    return f"{v:.2%}" if np.isfinite(v) else "–"


def _num(v: float) -> str:
    return f"{v:.2f}" if np.isfinite(v) else "–"


def _kpis(equity: pd.Series, bench: pd.Series) -> str:
    rows = [("total return", "total_return", _pct), ("CAGR", "cagr", _pct), ("volatility", "volatility", _pct),
            ("Sharpe", "sharpe", _num), ("Sortino", "sortino", _num), ("max drawdown", "max_drawdown", _pct),
            ("Calmar", "calmar", _num)]
    books = [("strategy", equity)] + ([("buy & hold", bench)] if len(bench) > 1 else [])
    sums = {name: metrics.summarize(s.to_numpy(), periods=S.periods_per_year(pd.DatetimeIndex(s.index))).as_dict()
            for name, s in books}
    head = "".join(f"<th>{name}</th>" for name, _ in books)
    body = "".join(f"<tr><td>{label}</td>" + "".join(f'<td class="num">{fmt(sums[n][key])}</td>' for n, _ in books)
                   + "</tr>" for label, key, fmt in rows)
    return f'<table class="kpi" style="width:auto"><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>'


def _equity(r: RunRecords, page: _Page, eq: pd.Series, bench: pd.Series) -> str:
    if eq.empty:
        return none_line("No equity was recorded.")
    series = {"strategy": eq.iloc[S.thin(len(eq))]}
    if not bench.empty:
        series["buy & hold"] = bench.iloc[S.thin(len(bench))]
    return _kpis(eq, bench) + page.figure("equity", lines("Equity: strategy against buy-and-hold", series, "equity"))


def _drawdown(page: _Page, eq: pd.Series) -> str:
    if len(eq) < 2:
        return none_line("Too few equity points for a drawdown.")
    dd = S.drawdown(eq)
    dd = dd.iloc[S.thin(len(dd), values=dd.to_numpy())]
    return page.figure("drawdown", lines(f"Drawdown (worst {dd.min():.2%})", {"drawdown": dd}, "", ".1%", fill=True))


def _rolling_sharpe(page: _Page, eq: pd.Series) -> str:
    rs = S.rolling_sharpe(eq)
    if rs.empty:
        return none_line(f"Fewer than {S.ROLLING_BARS + 1} equity points: no rolling Sharpe.")
    periods = S.periods_per_year(pd.DatetimeIndex(eq.index))
    title = f"Rolling Sharpe ({S.ROLLING_BARS} bars, annualised at {periods:,} bars a year)"
    return page.figure("rolling-sharpe", lines(title, {"Sharpe": rs}, "Sharpe"))


def _agents(r: RunRecords, page: _Page) -> str:
    parts = []
    if S.usable(r.weights, "ts", "agent", "weight"):
        w = r.weights.assign(ts=pd.to_datetime(r.weights["ts"], utc=True, errors="coerce"),
                             weight=S.numeric(r.weights["weight"]))
        series = {}
        for agent, rows in w.groupby(w["agent"].astype(str), sort=True):
            s = rows.groupby("ts")["weight"].last().sort_index()
            series[str(agent)] = s.iloc[S.thin(len(s))]
        parts.append(page.figure("agents", lines("Consensus weight per agent", series, "weight")))
    else:
        parts.append(none_line("No agent weights were recorded."))
    hits = S.hit_rate_over_time(r.outcomes)
    cal = S.calibration(r.outcomes)
    if hits:
        parts.append(page.figure("agents", lines(f"Hit rate per agent (directional votes, last {S.ROLLING_BARS} bars)",
                                                 hits, "hit rate", ".0%", y_range=(0, 1))))
    if not cal.empty:
        parts.append(page.figure("agents", calibration_figure(cal)))
    if not hits and cal.empty:
        parts.append(none_line("No vote outcomes were recorded: no hit rate or calibration."))
    return '<div class="grid">' + "".join(parts) + "</div>"


def _consensus(r: RunRecords, page: _Page) -> str:
    if not S.usable(r.signals, "ts"):
        return none_line("No consensus signals were recorded.")
    sig = r.signals
    parts = []
    n = len(sig)
    decided = np.asarray(sig["decided"], dtype=bool) if "decided" in sig.columns else np.zeros(n, dtype=bool)
    if "confidence" in sig.columns:
        frame = pd.DataFrame({"ts": pd.to_datetime(sig["ts"], utc=True, errors="coerce"),
                              "confidence": S.numeric(sig["confidence"]), "decided": decided.astype(np.float64)})
        per_bar = frame.groupby("ts")[["confidence", "decided"]].mean().sort_index()
        per_bar = per_bar.iloc[S.thin(len(per_bar))]
        parts.append(page.figure("consensus", lines(
            "Mean confidence and share decided per bar", {
                "mean confidence": per_bar["confidence"], "share decided": per_bar["decided"]}, "", ".0%",
            y_range=(0, 1))))
    reasons = S.no_decision_reasons(sig)
    if reasons.empty:
        parts.append(none_line("No no-decisions were recorded."))
    else:
        parts.append(page.figure("consensus", bars(f"No-decision reasons ({int(reasons.sum()):,} of {n:,} signals)",
                                                   reasons, "signals")))
    summary = f'<p class="note">{n:,} signals, {int(decided.sum()):,} decided.</p>'
    return summary + '<div class="grid">' + "".join(parts) + "</div>"


def _symbols(r: RunRecords, page: _Page) -> str:
    pnl = S.symbol_pnl(r.fills, r.positions)
    if pnl.empty:
        return none_line("No fills were recorded: no per-symbol P&L.")
    note = ""
    if len(pnl) > 60:
        note = f'<p class="note">The 30 best and 30 worst of {len(pnl):,} symbols.</p>'
        pnl = pd.concat([pnl.iloc[:30], pnl.iloc[-30:]])
    title = f"P&L per symbol from fills and final marks (total {pnl.sum():,.0f})" if not note else "P&L per symbol"
    return note + page.figure("symbols", bars(title, pnl, "P&L", ",.0f", signed=True))


def _trades(r: RunRecords) -> str:
    frame, noun = trades_frame(r.orders, r.fills)
    if frame.empty:
        return none_line("No orders or fills were recorded.")
    fills = len(r.fills) if r.fills is not None else 0
    return f'<p class="note">{len(frame):,} {noun}, {fills:,} fills.</p>' + html_table(frame, noun, table_id="trades-table")


def _risk(r: RunRecords, page: _Page) -> str:
    if not S.usable(r.risk_events, "reason"):
        return none_line("No risk events were recorded.")
    ev = r.risk_events
    counts = ev["reason"].astype(str).value_counts()
    table = ev.copy()
    if "ts" in table.columns:
        table["ts"] = pd.to_datetime(table["ts"], utc=True, errors="coerce")
        table = table.sort_values("ts", kind="stable")
    return (page.figure("risk", bars(f"Risk events by reason ({len(ev):,})", counts, "events"))
            + html_table(table.reset_index(drop=True), "risk events", table_id="risk-table"))


def _decision_class(value: object) -> str:
    text = str(value).strip().lower()
    if value is True or text.startswith(("promot", "true", "accept")):
        return "promoted"
    if value is False or text.startswith(("reject", "false", "not ", "kept")):
        return "rejected"
    return ""


def _models(r: RunRecords) -> str:
    if not S.usable(r.models, "agent", "version"):
        return none_line("No model versions were recorded.")
    m = r.models.reset_index(drop=True)
    kinds = m["decision"].map(_decision_class) if "decision" in m.columns else pd.Series([""] * len(m))
    promoted, rejected = int((kinds == "promoted").sum()), int((kinds == "rejected").sum())
    note = (f'<p class="note">{len(m):,} versions of {m["agent"].nunique():,} agents: '
            f'<span class="promoted">{promoted} promoted</span>, <span class="rejected">{rejected} rejected</span>.</p>')
    return note + html_table(m, "model versions", table_id="models-table")


def _explanations(r: RunRecords, page: _Page) -> str:
    if not S.usable(r.explanations, "symbol", "ts", "feature", "contribution"):
        return none_line("No explanations were recorded (explanations are computed only for decisions that trade).")
    ex = r.explanations.assign(ts=pd.to_datetime(r.explanations["ts"], utc=True, errors="coerce"),
                               contribution=S.numeric(r.explanations["contribution"]))
    if "agent" not in ex.columns:
        ex = ex.assign(agent="")
    impact = ex.assign(size=ex["contribution"].abs()).groupby("feature")["size"].mean()
    impact = impact.sort_values(ascending=False).iloc[:TOP_FEATURES]
    fig = page.figure("explanations", bars(f"Mean |contribution| of the top {len(impact)} features", impact,
                                           "mean |contribution|"))
    ex = ex.assign(size=ex["contribution"].abs()).sort_values(["ts", "symbol", "agent", "size"],
                                                              ascending=[True, True, True, False])
    top = ex.groupby(["ts", "symbol", "agent"], sort=True).head(3)
    top = top.assign(item=top["feature"].astype(str) + " " + top["contribution"].map(lambda v: f"{v:+.4g}"))
    table = top.groupby(["ts", "symbol", "agent"], sort=True)["item"].agg(", ".join).reset_index()
    table.columns = ["time (UTC)", "symbol", "agent", "top features (contribution)"]
    if S.usable(r.signals, "symbol", "ts", "action"):
        action = pd.Series(S.numeric(r.signals["action"]), index=pd.MultiIndex.from_arrays(
            [pd.to_datetime(r.signals["ts"], utc=True, errors="coerce"), r.signals["symbol"].astype(str)]))
        action = action[~action.index.duplicated(keep="last")]
        got = action.reindex(pd.MultiIndex.from_arrays([table["time (UTC)"], table["symbol"].astype(str)]))
        table.insert(3, "decision", np.select([got.to_numpy() > 0, got.to_numpy() < 0], ["long", "short"], ""))
    return fig + html_table(table, "explained decisions", max_rows=EXPLAINED_ROWS, table_id="explanations-table")


def _header(r: RunRecords, title: str, eq: pd.Series) -> str:
    span = f", {eq.index[0]:%Y-%m-%d} to {eq.index[-1]:%Y-%m-%d}, {len(eq):,} bars" if len(eq) else ""
    nav = "".join(f'<a href="#{s}">{_TITLES[s]}</a>' for s in SECTIONS)
    meta = f"run {r.run} · mode {r.mode}{span}"
    return f"<header><h1>{html.escape(title)}</h1><p>{html.escape(meta)}</p><nav>{nav}</nav></header>"


def build_report(records: RunRecords, title: str | None = None) -> str:
    """The report of ``records`` as one self-contained HTML page (see the module docstring)."""
    r = records
    page = _Page()
    eq = S.equity_series(r.equity)
    bench = S.equity_series(r.benchmark)
    title = title or f"TinyWindow report: {r.run} ({r.mode})"
    body: dict[str, Callable[[], str]] = {
        "equity": lambda: _equity(r, page, eq, bench),
        "drawdown": lambda: _drawdown(page, eq),
        "rolling-sharpe": lambda: _rolling_sharpe(page, eq),
        "agents": lambda: _agents(r, page),
        "consensus": lambda: _consensus(r, page),
        "symbols": lambda: _symbols(r, page),
        "trades": lambda: _trades(r),
        "risk": lambda: _risk(r, page),
        "models": lambda: _models(r),
        "explanations": lambda: _explanations(r, page),
    }
    sections = "".join(f'<section id="{s}"><h2>{_TITLES[s]}</h2>{body[s]()}</section>' for s in SECTIONS)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script></head>'
        f"<body>{_header(r, title, eq)}<main>{sections}</main></body></html>\n"
    )
