"""The experience buffer: an agent's own realized outcomes, for retraining.

Outcomes arrive as AGENT_OUTCOMES tables (symbol, ts, agent, model_version, action,
confidence, realized_return, reward) from the consensus: for every decision, this agent's
own vote and what it earned, ``reward = action x realized_return - cost x |action -
previous action|`` (``realized_return`` is the symbol's return from the decision bar's close
to the next close).  The buffer validates them, refuses rows of another agent (a routing
bug upstream, never silently mixed in), keeps one outcome per (symbol, ts) (a replayed
batch replaces, never double-counts) and holds at most ``capacity`` rows (oldest dropped).

``AgentActor`` journals every batch it receives (``to_rows``) and rebuilds the buffer from
its journal at start-up (``from_rows``): a restarted agent has the same experience.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tinywindow.contracts import AGENT_OUTCOMES, validate
from tinywindow.errors import DataError

COLUMNS = ("symbol", "ts", "agent", "model_version", "action", "confidence", "realized_return", "reward")


def _frame(table: pa.Table) -> pd.DataFrame:
    sym = table.column("symbol")
    if pa.types.is_dictionary(sym.type):
        sym = sym.cast(sym.type.value_type)
    return pd.DataFrame(
        {
            "symbol": np.asarray(sym.to_numpy(zero_copy_only=False), dtype=object),
            "ts": table.column("ts").cast(pa.int64()).to_numpy(),
            "agent": np.asarray(table.column("agent").to_numpy(zero_copy_only=False), dtype=object),
            "model_version": np.asarray(table.column("model_version").to_numpy(zero_copy_only=False), dtype=object),
            "action": table.column("action").to_numpy().astype(np.int8),
            "confidence": table.column("confidence").to_numpy().astype(np.float32),
            "realized_return": table.column("realized_return").to_numpy().astype(np.float64),
            "reward": table.column("reward").to_numpy().astype(np.float64),
        }
    )


def outcomes_table(frame: pd.DataFrame) -> pa.Table:
    """An AGENT_OUTCOMES table from a frame with the contract's columns."""
    return validate(
        pa.table(
            {
                "symbol": pa.array([str(x) for x in frame["symbol"]], pa.string()),
                "ts": pa.array(frame["ts"].to_numpy(dtype=np.int64), pa.timestamp("ns", tz="UTC")),
                "agent": pa.array([str(x) for x in frame["agent"]], pa.string()),
                "model_version": pa.array([str(x) for x in frame["model_version"]], pa.string()),
                "action": pa.array(frame["action"].to_numpy(dtype=np.int8)),
                "confidence": pa.array(frame["confidence"].to_numpy(dtype=np.float32)),
                "realized_return": pa.array(frame["realized_return"].to_numpy(dtype=np.float64)),
                "reward": pa.array(frame["reward"].to_numpy(dtype=np.float64)),
            }
        ),
        AGENT_OUTCOMES,
    )


def to_rows(table: pa.Table) -> list[list[Any]]:
    """AGENT_OUTCOMES rows as JSON-safe lists (the journal payload)."""
    f = _frame(validate(table, AGENT_OUTCOMES, source="outcomes"))
    return [
        [str(r.symbol), int(r.ts), str(r.agent), str(r.model_version), int(r.action), float(r.confidence),
         float(r.realized_return), float(r.reward)]
        for r in f.itertuples(index=False)
    ]


def from_rows(rows: Sequence[Sequence[Any]]) -> pa.Table:
    """The inverse of ``to_rows``."""
    frame = pd.DataFrame([list(r) for r in rows], columns=list(COLUMNS))
    if frame.empty:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
        frame["ts"] = frame["ts"].astype(np.int64)
        for c, dt in (("action", np.int8), ("confidence", np.float32), ("realized_return", np.float64), ("reward", np.float64)):
            frame[c] = frame[c].astype(dt)
    return outcomes_table(frame)


class ExperienceBuffer:
    """The realized outcomes of one agent's own votes (see the module docstring)."""

    def __init__(self, agent: str, capacity: int = 100_000) -> None:
        self.agent = agent
        self.capacity = capacity
        self._frame = _frame(from_rows([]))
        self.received = 0  # rows received in total (duplicates included)

    def add(self, outcomes: pa.Table) -> int:
        """Validate and add a batch of this agent's outcomes; returns how many (symbol, ts)
        keys were new.  A batch holding another agent's row is refused whole (DataError)."""
        table = validate(outcomes, AGENT_OUTCOMES, source=f"feedback to {self.agent}")
        if table.num_rows == 0:
            return 0
        batch = _frame(table)
        foreign = np.flatnonzero(batch["agent"].to_numpy() != self.agent)
        if len(foreign):
            i = int(foreign[0])
            raise DataError(
                f"AGENT_OUTCOMES for agent {self.agent!r}: row {i} belongs to agent {batch['agent'].iloc[i]!r} "
                f"({len(foreign)} foreign rows); route each agent only its own outcomes",
                column="agent",
            )
        if not (np.isfinite(batch["realized_return"]).all() and np.isfinite(batch["reward"]).all()):
            raise DataError(f"AGENT_OUTCOMES for agent {self.agent!r}: non-finite realized_return or reward")
        batch = batch.drop_duplicates(["symbol", "ts"], keep="last")
        before = pd.MultiIndex.from_frame(self._frame[["symbol", "ts"]])
        new = int((~pd.MultiIndex.from_frame(batch[["symbol", "ts"]]).isin(before)).sum())
        merged = pd.concat([self._frame, batch], ignore_index=True)
        merged = merged.drop_duplicates(["symbol", "ts"], keep="last")
        if len(merged) > self.capacity:
            merged = merged.sort_values("ts", kind="stable").iloc[-self.capacity :]
        self._frame = merged.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
        self.received += table.num_rows
        return new

    def __len__(self) -> int:
        return len(self._frame)

    def table(self) -> pa.Table:
        """The buffered outcomes as an AGENT_OUTCOMES table, ordered by (ts, symbol)."""
        return outcomes_table(self._frame)

    def stats(self) -> dict[str, float | int | None]:
        f = self._frame
        if f.empty:
            return {"outcomes": 0, "received": self.received, "hit_rate": None, "mean_reward": None}
        exposed = f["action"] != 0
        signed = f["action"].astype(np.float64) * f["realized_return"]
        hits = (signed[exposed] > 0).mean() if exposed.any() else float("nan")
        return {
            "outcomes": len(f),
            "received": self.received,
            "hit_rate": None if hits != hits else round(float(hits), 4),
            "mean_reward": round(float(f["reward"].mean()), 6),
        }
