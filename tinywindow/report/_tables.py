"""HTML tables of the report: escaped, numbers formatted, and capped in rows so a run of
tens of thousands of fills stays a page a browser opens at once (the full record is the
journal and the trade store)."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from tinywindow.report._series import numeric, usable

__all__ = ["MAX_ROWS", "html_table", "none_line", "trades_frame"]

MAX_ROWS = 2000
_TEXT_CHARS = 120


def none_line(text: str) -> str:
    return f'<p class="none">{html.escape(text)}</p>'


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S") if (value.hour or value.minute or value.second) else value.strftime("%Y-%m-%d")
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):,.6g}"
    text = str(value)
    return text if len(text) <= _TEXT_CHARS else text[: _TEXT_CHARS - 1] + "…"


def html_table(df: pd.DataFrame, noun: str, max_rows: int = MAX_ROWS, table_id: str = "") -> str:
    """``df`` as a table of its last ``max_rows`` rows, with a note when rows were left out."""
    note = ""
    if len(df) > max_rows:
        note = (f'<p class="note">Showing the last {max_rows:,} of {len(df):,} {noun}; the full list is in the '
                f"run's journal and trade store.</p>")
        df = df.iloc[-max_rows:]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    columns = [[html.escape(_cell(v)) for v in df[c].tolist()] for c in df.columns]
    numeric_cols = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    open_td = ['<td class="num">' if n else "<td>" for n in numeric_cols]
    body = "".join(
        "<tr>" + "".join(f"{open_td[j]}{columns[j][i]}</td>" for j in range(len(columns))) + "</tr>"
        for i in range(len(df))
    )
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    return f'{note}<div class="table"><table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def trades_frame(orders: pd.DataFrame | None, fills: pd.DataFrame | None) -> tuple[pd.DataFrame, str]:
    """One row per order with what filled of it (quantity, average price, fees), in time
    order; the fills alone when no orders were recorded.  Returns the frame and its noun."""
    has_fills = usable(fills, "order_id", "qty", "price")
    if usable(orders, "order_id", "ts", "symbol", "side", "qty"):
        assert orders is not None
        out = pd.DataFrame({
            "time (UTC)": pd.to_datetime(orders["ts"], utc=True, errors="coerce"),
            "symbol": orders["symbol"].astype(str), "side": np.where(numeric(orders["side"]) > 0, "buy", "sell"),
            "qty": numeric(orders["qty"]),
            "limit": numeric(orders["limit_price"]) if "limit_price" in orders.columns else np.nan,
            "order_id": orders["order_id"].astype(str),
        })
        if has_fills:
            assert fills is not None
            qty, price = numeric(fills["qty"]), numeric(fills["price"])
            fee = numeric(fills["fee"]) if "fee" in fills.columns else np.zeros(len(fills))
            agg = pd.DataFrame({"order_id": fills["order_id"].astype(str).to_numpy(), "qty": qty, "notional": qty * price,
                                "fee": fee}).groupby("order_id").sum()
            got = agg.reindex(out["order_id"].to_numpy())
            out["filled"] = got["qty"].to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                out["fill price"] = (got["notional"] / got["qty"]).to_numpy()
            out["fee"] = got["fee"].to_numpy()
        if "reason" in orders.columns:
            out["reason"] = orders["reason"].astype(str).to_numpy()
        return out.sort_values("time (UTC)", kind="stable").reset_index(drop=True), "orders"
    if has_fills and usable(fills, "ts", "symbol", "side"):
        assert fills is not None
        out = pd.DataFrame({
            "time (UTC)": pd.to_datetime(fills["ts"], utc=True, errors="coerce"), "symbol": fills["symbol"].astype(str),
            "side": np.where(numeric(fills["side"]) > 0, "buy", "sell"), "qty": numeric(fills["qty"]),
            "price": numeric(fills["price"]),
            "fee": numeric(fills["fee"]) if "fee" in fills.columns else np.nan,
            "order_id": fills["order_id"].astype(str),
        })
        return out.sort_values("time (UTC)", kind="stable").reset_index(drop=True), "fills"
    return pd.DataFrame(), "orders"
