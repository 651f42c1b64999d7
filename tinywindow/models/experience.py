"""The experience buffer: realized outcomes an agent has been told about, for retraining.

Outcomes arrive as OUTCOMES tables (symbol, ts, action, realized_return) from the portfolio:
``realized_return`` is the symbol's return from the decision bar's close to the next close
(``tinywindow.execution.engine``), so the decision earned ``action x realized_return``.
The buffer validates them, keeps one outcome per (symbol, ts) (a replayed batch replaces,
never double-counts), holds at most ``capacity`` rows (oldest dropped first) and counts the
new ones since the last retrain, which is what triggers a periodic retrain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from tinywindow.contracts import OUTCOMES, validate


class ExperienceBuffer:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._frame = pd.DataFrame(
            {"symbol": pd.Series(dtype=object), "ts": pd.Series(dtype=np.int64),
             "action": pd.Series(dtype=np.int8), "realized_return": pd.Series(dtype=np.float64)}
        )
        self.pending = 0  # new (symbol, ts) outcomes since the last retrain
        self.received = 0  # rows received in total (duplicates included)

    def add(self, outcomes: pa.Table) -> int:
        """Validate and add a batch; returns how many (symbol, ts) keys were new."""
        table = validate(outcomes, OUTCOMES, source="feedback")
        if table.num_rows == 0:
            return 0
        sym = table.column("symbol")
        sym = sym.cast(sym.type.value_type)
        batch = pd.DataFrame(
            {
                "symbol": sym.to_numpy(zero_copy_only=False),
                "ts": table.column("ts").cast(pa.int64()).to_numpy(),
                "action": table.column("action").to_numpy(),
                "realized_return": table.column("realized_return").to_numpy(),
            }
        )
        batch = batch.drop_duplicates(["symbol", "ts"], keep="last")
        before = pd.MultiIndex.from_frame(self._frame[["symbol", "ts"]])
        new = int((~pd.MultiIndex.from_frame(batch[["symbol", "ts"]]).isin(before)).sum())
        merged = pd.concat([self._frame, batch], ignore_index=True)
        merged = merged.drop_duplicates(["symbol", "ts"], keep="last")
        if len(merged) > self.capacity:
            merged = merged.sort_values("ts", kind="stable").iloc[-self.capacity :]
        self._frame = merged.reset_index(drop=True)
        self.pending += new
        self.received += table.num_rows
        return new

    def __len__(self) -> int:
        return len(self._frame)

    def table(self) -> pa.Table:
        """The buffered outcomes as an OUTCOMES table."""
        f = self._frame
        return validate(
            pa.table(
                {
                    "symbol": pa.array(f["symbol"].astype(str).tolist(), pa.string()),
                    "ts": pa.array(f["ts"].to_numpy(dtype=np.int64), pa.timestamp("ns", tz="UTC")),
                    "action": pa.array(f["action"].to_numpy(dtype=np.int8)),
                    "realized_return": pa.array(f["realized_return"].to_numpy(dtype=np.float64)),
                }
            ),
            OUTCOMES,
        )

    def mark_retrained(self, consumed: int) -> None:
        """A retrain used the buffer when ``consumed`` outcomes were pending."""
        self.pending = max(0, self.pending - consumed)

    def stats(self) -> dict[str, float | int | None]:
        f = self._frame
        if f.empty:
            return {"outcomes": 0, "pending": self.pending, "received": self.received, "hit_rate": None, "mean_decision_return": None}
        exposed = f["action"] != 0
        signed = f["action"].astype(np.float64) * f["realized_return"]
        hits = (signed[exposed] > 0).mean() if exposed.any() else float("nan")
        return {
            "outcomes": len(f),
            "pending": self.pending,
            "received": self.received,
            "hit_rate": None if hits != hits else round(float(hits), 4),
            "mean_decision_return": round(float(signed.mean()), 6),
        }
