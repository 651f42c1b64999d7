"""How an agent's own realized outcomes enter its training data (pure numpy, no Ray).

An AGENT_OUTCOMES row says what the agent voted at (symbol, ts) and what that vote earned:
``realized_return`` (close ts -> next close) and ``reward`` (action x realized_return net of
the cost of changing the agent's previous action).  ``apply_outcomes`` matches them to the
rows of the training series by (symbol, ts) and, for every matched row that carries a label
inside the training window (a finite forward return: ``Series.between`` drops a label that
needs a close after the cut, so an outcome can never add one):

* the row's forward return becomes the realized return: XGBoost's label is
  ``realized_return > 0``, the RL env's return for that bar is the realized one;
* the row's weight is ``|reward| / mean |reward|`` over the matched rows, clipped to
  ``[1 / cap, cap]`` (``reward_weights``); unmatched rows weigh 1.  XGBoost uses it as the
  sample weight, the RL env multiplies the bar's reward by it.  The bars where the agent's
  own vote earned or lost the most count the most (cost-sensitive learning: the loss tracks
  the P&L the agent's decisions actually produced).

Rows outside the training window are never matched, so outcomes dated after a retrain's
training cut (its evaluation window) cannot leak into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from tinywindow.models.windows import Series


def reward_weights(rewards: np.ndarray, cap: float) -> np.ndarray:
    """``|reward|`` scaled to mean 1 and clipped to ``[1/cap, cap]`` (all ones when every
    reward is 0)."""
    size = np.abs(np.asarray(rewards, dtype=np.float64))
    mean = size.mean() if len(size) else 0.0
    if not mean > 0:
        return np.ones_like(size)
    return np.clip(size / mean, 1.0 / cap, cap)


@dataclass(frozen=True)
class Matched:
    """Training series with outcomes applied, each series' row weights, and what matched."""

    series: list[Series]
    weights: list[np.ndarray]
    matched: int  # labelled training rows that had an outcome
    received: int  # outcomes offered
    first: str | None = None  # ISO date of the first / last matched outcome
    last: str | None = None

    def to_json(self, used_as: str) -> dict[str, object]:
        return {"offered": self.received, "matched": self.matched, "first": self.first, "last": self.last,
                "used_as": used_as if self.matched else "none matched"}


def apply_outcomes(series: Sequence[Series], outcomes: pa.Table | None, cap: float) -> Matched:
    """Match ``outcomes`` (AGENT_OUTCOMES) to ``series`` (see the module docstring)."""
    ones = [np.ones(len(s), dtype=np.float64) for s in series]
    if outcomes is None or outcomes.num_rows == 0:
        return Matched(list(series), ones, 0, 0 if outcomes is None else outcomes.num_rows)
    sym = outcomes.column("symbol")
    if pa.types.is_dictionary(sym.type):
        sym = sym.cast(sym.type.value_type)
    frame = pd.DataFrame(
        {
            "symbol": np.asarray(sym.to_numpy(zero_copy_only=False), dtype=object),
            "ts": outcomes.column("ts").cast(pa.int64()).to_numpy(),
            "ret": outcomes.column("realized_return").to_numpy().astype(np.float64),
            "reward": outcomes.column("reward").to_numpy().astype(np.float64),
        }
    ).drop_duplicates(["symbol", "ts"], keep="last")
    by_symbol = {str(k): g for k, g in frame.groupby("symbol", sort=True)}
    hits: list[tuple[int, np.ndarray, np.ndarray]] = []  # (series index, row positions, outcome rows)
    for i, s in enumerate(series):
        g = by_symbol.get(s.symbol)
        if g is None or not len(s):
            continue
        pos = np.searchsorted(s.ts, g["ts"].to_numpy())
        inside = pos < len(s)
        found = np.zeros(len(g), dtype=bool)
        found[inside] = s.ts[pos[inside]] == g["ts"].to_numpy()[inside]
        found[found] &= np.isfinite(s.fwd_ret[pos[found]])  # only rows labelled inside the window
        if found.any():
            hits.append((i, pos[found], np.flatnonzero(found)))
    if not hits:
        return Matched(list(series), ones, 0, outcomes.num_rows)
    groups = {i: by_symbol[series[i].symbol] for i, _, _ in hits}
    rewards = np.concatenate([groups[i]["reward"].to_numpy()[rows] for i, _, rows in hits])
    w_all = reward_weights(rewards, cap)
    out = list(series)
    k = 0
    stamps: list[int] = []
    for i, pos, rows in hits:
        g = groups[i]
        fwd = np.array(series[i].fwd_ret, dtype=np.float64, copy=True)
        fwd[pos] = g["ret"].to_numpy()[rows]
        out[i] = replace(series[i], fwd_ret=fwd)
        ones[i][pos] = w_all[k : k + len(pos)]
        k += len(pos)
        stamps += [int(series[i].ts[pos].min()), int(series[i].ts[pos].max())]
    iso = [pd.Timestamp(t, tz="UTC").date().isoformat() for t in (min(stamps), max(stamps))]
    return Matched(out, ones, int(sum(len(p) for _, p, _ in hits)), outcomes.num_rows, iso[0], iso[1])
