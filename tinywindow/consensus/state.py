"""The consensus state a ConsensusActor keeps: votes, decisions, adaptive weights.

Event-sourced on the same base as the trading engine (``EventSourced``): ``apply(event)`` is
the only mutation, live calls record typed events (``VotesRecorded``, ``ConsensusDecided``,
``WeightsLearned``) and commit them to ``on_commit`` (the actor journals them), and start-up
is snapshot + replay.

* ``submit_votes``: VOTES rows join a per-(symbol, agent) buffer.
* ``decide(at)``: one decision per (symbol, at) from each agent's latest vote at or before
  ``at`` (``consensus.decide``); asking again for the same ``at`` returns the recorded
  decision, so a retried call is idempotent.  The votes that decided are remembered.
* ``learn(outcomes)``: OUTCOMES for remembered decisions score the agents who voted
  (``consensus.update_weights``) in time order; an outcome seen before is ignored.  The
  last ``decisions_kept`` decisions are remembered.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tinywindow.consensus.config import ConsensusConfig
from tinywindow.consensus.events import ConsensusDecided, VotesRecorded, WeightsLearned
from tinywindow.consensus.voting import decide, signals_table, update_weights
from tinywindow.contracts import OUTCOMES, VOTES, validate
from tinywindow.durability.eventsourced import CommitHook, EventSourced, applies

__all__ = ["ConsensusBook"]

VoteRow = tuple[int, str, int, float]  # ts, model_version, action, confidence


class ConsensusBook(EventSourced):
    """Votes, decisions and per-agent weights of one consensus (see the module docstring)."""

    def __init__(self, cfg: ConsensusConfig, agents: Sequence[str], on_commit: CommitHook | None = None) -> None:
        if not agents or len(set(agents)) != len(agents):
            raise ValueError("consensus needs a non-empty list of distinct agent names")
        super().__init__(on_commit)
        self.cfg = cfg
        self.agents = list(agents)
        self.weights: dict[str, float] = {a: 1.0 for a in self.agents}
        self.stats: dict[str, dict[str, float]] = {a: {"scored": 0, "hits": 0} for a in self.agents}
        self.holders: set[str] = set()  # agents seen voting hold: they choose among 3 actions
        self.votes: dict[tuple[str, str], list[VoteRow]] = {}
        # (symbol, ts) -> {"signal": [SIGNALS row values], "used": [[agent, action, conf]...],
        #                  "learned": True once its outcome scored the agents}
        self.decisions: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()

    # ------------------------------------------------------------------ event core
    @applies(VotesRecorded)
    def _voted(self, e: VotesRecorded) -> None:
        for symbol, ts, agent, version, action, conf in e.rows:
            rows = self.votes.setdefault((symbol, agent), [])
            row = (ts, version, action, conf)
            if action == 0:
                self.holders.add(agent)
            i = bisect.bisect_right([r[0] for r in rows], ts)
            if i and rows[i - 1][0] == ts:
                rows[i - 1] = row  # a re-sent vote for the same ts replaces the old one
            else:
                rows.insert(i, row)

    @applies(ConsensusDecided)
    def _decided(self, e: ConsensusDecided) -> None:
        for sig in e.signals:
            used = [list(u[1:]) for u in e.used if u[0] == sig[0]]
            self.decisions[(sig[0], e.at)] = {"signal": list(sig), "used": used}
        while len(self.decisions) > self.cfg.decisions_kept:
            self.decisions.popitem(last=False)
        self._prune(e.at)

    @applies(WeightsLearned)
    def _learned(self, e: WeightsLearned) -> None:
        self.weights.update(dict(e.weights))
        for a, scored, hits in e.stats:
            self.stats[a] = {"scored": scored, "hits": hits}
        for symbol, ts in e.keys:
            dec = self.decisions.get((symbol, ts))
            if dec is not None:
                dec["learned"] = True

    def _prune(self, at: int) -> None:
        """Drop votes superseded at ``at``: keep each agent's latest vote <= at and later ones."""
        for rows in self.votes.values():
            i = bisect.bisect_right([r[0] for r in rows], at)
            if i > 1:
                del rows[: i - 1]

    # ------------------------------------------------------------------ operations
    def submit_votes(self, votes: pa.Table) -> int:
        """Buffer a VOTES batch (validated as it enters); returns the rows accepted."""
        t = validate(votes, VOTES, source="consensus.submit_votes")
        rows = [
            (str(s), int(ts), str(a), str(v), int(act), float(c))
            for s, ts, a, v, act, c in zip(
                t.column("symbol").cast(pa.string()).to_pylist(),
                t.column("ts").cast(pa.int64()).to_pylist(),
                t.column("agent").to_pylist(),
                t.column("model_version").to_pylist(),
                t.column("action").to_pylist(),
                t.column("confidence").to_pylist(),
                strict=True,
            )
        ]
        if rows:
            self.record(VotesRecorded(tuple(rows)))
        self.commit()
        return len(rows)

    def _votes_table(self) -> pa.Table:
        cols: dict[str, list[Any]] = {k: [] for k in ("symbol", "ts", "agent", "model_version", "action", "confidence")}
        for (symbol, agent), rows in sorted(self.votes.items()):
            for ts, version, action, conf in rows:
                for k, v in zip(cols, (symbol, ts, agent, version, action, conf), strict=True):
                    cols[k].append(v)
        return pa.table(
            {
                "symbol": pa.array(cols["symbol"], pa.string()),
                "ts": pa.array(cols["ts"], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
                "agent": pa.array(cols["agent"], pa.string()),
                "model_version": pa.array(cols["model_version"], pa.string()),
                "action": pa.array(cols["action"], pa.int8()),
                "confidence": pa.array(cols["confidence"], pa.float32()),
            }
        )

    def decide(self, at: int) -> pa.Table:
        """SIGNALS at ``at`` (ns) for every symbol with a vote (recorded decisions reused)."""
        signals, used = decide(self._votes_table(), at, self.agents, self.weights, self.cfg, self.holders)
        rows = signals.to_pylist()
        fresh = [r for r in rows if (r["symbol"], at) not in self.decisions]
        if fresh:
            names = {r["symbol"] for r in fresh}
            self.record(ConsensusDecided(
                at,
                tuple((r["symbol"], r["action"], r["confidence"], r["agreement"], r["votes"], r["reason"])
                      for r in fresh),
                tuple((s, a, int(act), float(c)) for s, a, act, c in used.itertuples(index=False) if s in names),
            ))
        self.commit()
        return self.signals_at(at, [r["symbol"] for r in rows])

    def signals_at(self, at: int, symbols: Sequence[str]) -> pa.Table:
        """The recorded decisions at ``at`` for ``symbols`` as a SIGNALS table."""
        got = [self.decisions[(s, at)]["signal"] for s in sorted(symbols) if (s, at) in self.decisions]
        return signals_table(
            at, [g[0] for g in got], [g[1] for g in got], [g[2] for g in got], [g[3] for g in got],
            [g[4] for g in got], [g[5] for g in got],
        )

    def learn(self, outcomes: pa.Table) -> dict[str, float]:
        """Score agents on realized outcomes of remembered decisions; returns the weights."""
        t = validate(outcomes, OUTCOMES, source="consensus.learn")
        df = pd.DataFrame(
            {
                "symbol": t.column("symbol").cast(pa.string()).to_pylist(),
                "ts": t.column("ts").cast(pa.int64()).to_pylist(),
                "ret": t.column("realized_return").to_pylist(),
            }
        ).drop_duplicates(["symbol", "ts"]).sort_values(["ts", "symbol"], kind="stable")
        keys, actions, confs, valid, rets = [], [], [], [], []
        col = {a: i for i, a in enumerate(self.agents)}
        for symbol, ts, ret in df.itertuples(index=False):
            dec = self.decisions.get((symbol, int(ts)))
            if dec is None or dec.get("learned") or not np.isfinite(ret):
                continue
            a = np.zeros(len(self.agents), np.int8)
            c = np.zeros(len(self.agents))
            v = np.zeros(len(self.agents), bool)
            for agent, act, conf in dec["used"]:
                if agent in col:
                    a[col[agent]], c[col[agent]], v[col[agent]] = act, conf, True
            keys.append([symbol, int(ts)])
            actions.append(a)
            confs.append(c)
            valid.append(v)
            rets.append(float(ret))
        if keys:
            w0 = np.array([self.weights[a] for a in self.agents])
            # an agent that has voted hold chooses among three actions: uninformed at 1/3
            uninformed = np.array([1 / 3 if a in self.holders else 0.5 for a in self.agents])
            w, hits, scored = update_weights(
                w0, np.array(actions), np.array(confs), np.array(valid), np.array(rets), self.cfg, uninformed
            )
            stats = {
                a: {"scored": self.stats[a]["scored"] + int(scored[i]), "hits": self.stats[a]["hits"] + int(hits[i])}
                for i, a in enumerate(self.agents)
            }
            self.record(WeightsLearned(
                tuple(sorted(zip(self.agents, map(float, w), strict=True))),
                tuple(sorted((a, int(st["scored"]), int(st["hits"])) for a, st in stats.items())),
                tuple((symbol, ts) for symbol, ts in keys),
            ))
        self.commit()
        return dict(self.weights)

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able data (the checkpoint)."""
        return {
            "agents": self.agents,
            "weights": self.weights,
            "stats": self.stats,
            "holders": sorted(self.holders),
            "votes": [[s, a, [list(r) for r in rows]] for (s, a), rows in sorted(self.votes.items())],
            "decisions": [[s, ts, d] for (s, ts), d in self.decisions.items()],
        }

    def restore(self, d: Mapping[str, Any]) -> None:
        """Load a snapshot of a consensus of the same agents."""
        if list(d["agents"]) != self.agents:
            raise ValueError(f"checkpoint is for agents {d['agents']}, this consensus has {self.agents}")
        self.weights = {a: float(w) for a, w in d["weights"].items()}
        self.stats = {a: dict(s) for a, s in d["stats"].items()}
        self.holders = set(d.get("holders", []))
        self.votes = {(s, a): [(int(r[0]), str(r[1]), int(r[2]), float(r[3])) for r in rows] for s, a, rows in d["votes"]}
        self.decisions = OrderedDict(((s, int(ts)), dict(dd)) for s, ts, dd in d["decisions"])
