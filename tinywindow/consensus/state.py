"""The consensus state a ConsensusActor keeps: votes, decisions, adaptive weights, each
agent's own outcomes and calibration map.

Event-sourced on the same base as the trading engine (``EventSourced``): ``apply(event)`` is
the only mutation, live calls record typed events (``VotesRecorded``, ``ConsensusDecided``,
``WeightsLearned``, ``AgentOutcomesScored``, ``CalibrationFitted``) and commit them to
``on_commit`` (the actor journals them), and start-up is snapshot + replay.

* ``submit_votes``: VOTES rows join a per-(symbol, agent) buffer.
* ``preview(votes)``: SIGNALS from given votes with the current weights and calibration,
  recording nothing (what the serving gateway answers).  ``decide`` goes through the same
  function (``_signals``), so the served signal is the traded signal.
* ``decide(at)``: one decision per (symbol, at) from each agent's latest vote at or before
  ``at`` (``consensus.decide``); asking again for the same ``at`` returns the recorded
  decision, so a retried call is idempotent.  The votes that decided (with their model
  versions) are remembered.
* ``learn(outcomes)``: OUTCOMES for remembered decisions, in time order, (1) score the
  agents who voted (``consensus.update_weights``, multiplicative Brier weights), (2) give
  each of them its own AGENT_OUTCOMES row, reward = action x return - cost x |action -
  its previous action on the symbol| (``cost`` per unit of exposure changed; each agent's
  previous action per symbol is state), and (3) refit an agent's calibration map every
  ``calibrate_every`` of its scored (directional, non-zero return) outcomes once it has
  ``calibration_min`` (isotonic, on its last ``calibration_window``; the fitted points are
  journaled, so replay is exact).  In ``mode`` score the weights are learned from each
  agent's rank IC per bar instead (``scoring.rank_ic``, ``update_weights_ic``: the
  Spearman correlation of its scores with the returns over the symbols it voted on, all of
  one bar's outcomes scored together); the ICs are journaled with the weights and kept per
  agent (the last ``calibration_window``), and their mean is the agent's calibration factor
  in score mode (``scoring.ic_scale``).  An outcome seen before is not learned again, but
  its agent outcomes (those still remembered) are returned again: a call retried after its
  reply was lost (an actor restarted between journaling and answering) returns what the
  first attempt returned, so the agents get that bar's feedback.  The last
  ``decisions_kept`` decisions and agent outcomes are remembered.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tinywindow.consensus.calibration import Calibration, fit_calibration
from tinywindow.consensus.config import STARTUP_ONLY, ConsensusConfig
from tinywindow.consensus.events import (
    UNKNOWN_VERSION,
    AgentIC,
    AgentOutcomeRecord,
    AgentOutcomesScored,
    CalibrationFitted,
    ConsensusDecided,
    ConsensusSettingsChanged,
    VotesRecorded,
    WeightsLearned,
    derived_score,
    v1_decided,
)
from tinywindow.consensus.scoring import ic_scale, rank_ic, update_weights_ic
from tinywindow.consensus.voting import (
    decide,
    directional_probability,
    signals_table,
    update_weights,
)
from tinywindow.contracts import AGENT_OUTCOMES, OUTCOMES, SIGNALS, VOTES, validate
from tinywindow.core.events import Event
from tinywindow.core.runtime_settings import changed_section, replayed_section
from tinywindow.core.settings import config_error
from tinywindow.durability.eventsourced import CommitHook, EventSourced, applies

__all__ = ["ConsensusBook"]

VoteRow = tuple[int, str, int, float, float]  # ts, model_version, action, confidence, score


class ConsensusBook(EventSourced):
    """Votes, decisions and per-agent weights of one consensus (see the module docstring)."""

    def __init__(
        self,
        cfg: ConsensusConfig,
        agents: Sequence[str],
        on_commit: CommitHook | None = None,
        cost: float = 0.0,
    ) -> None:
        if not agents or len(set(agents)) != len(agents):
            raise ValueError("consensus needs a non-empty list of distinct agent names")
        if not 0.0 <= cost < float("inf"):
            raise ValueError(f"cost per unit of exposure changed must be >= 0, got {cost}")
        super().__init__(on_commit)
        self.cfg = cfg
        self.cost = float(cost)  # per unit of exposure changed, in agent rewards (agents.cost)
        self.agents = list(agents)
        self.weights: dict[str, float] = {a: 1.0 for a in self.agents}
        self.stats: dict[str, dict[str, float]] = {a: {"scored": 0, "hits": 0} for a in self.agents}
        self.holders: set[str] = set()  # agents seen voting flat: they choose among 3 actions
        self.votes: dict[tuple[str, str], list[VoteRow]] = {}
        # (symbol, ts) -> {"signal": [symbol, action, conf, agreement, votes, reason, decided, score],
        #                  "used": [[agent, action, conf, model_version, score]...],
        #                  "learned": True once its outcome scored the agents}
        self.decisions: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self.calibration: dict[str, Calibration] = {}
        self.last_action: dict[tuple[str, str], int] = {}  # (agent, symbol) -> its last scored action
        self.agent_outcomes: deque[AgentOutcomeRecord] = deque(maxlen=cfg.decisions_kept)
        # per agent: (raw directional probability, hit) of its latest scored outcomes, and how
        # many arrived since its last calibration fit
        self.cal_samples: dict[str, deque[tuple[float, int]]] = {
            a: deque(maxlen=cfg.calibration_window) for a in self.agents
        }
        self.cal_pending: dict[str, int] = {a: 0 for a in self.agents}
        # per agent: (bar ts, rank IC) of its latest scored bars (score mode)
        self.ic_samples: dict[str, deque[tuple[int, float]]] = {
            a: deque(maxlen=cfg.calibration_window) for a in self.agents
        }
        self.settings_overrides: dict[str, Any] = {}  # fields changed at runtime (ConsensusSettingsChanged)
        self.settings_id: str | None = None  # the change id of the last runtime settings change

    # ------------------------------------------------------------------ event core
    @applies(VotesRecorded)
    def _voted(self, e: VotesRecorded) -> None:
        for symbol, ts, agent, version, action, conf, score in e.rows:
            rows = self.votes.setdefault((symbol, agent), [])
            row = (ts, version, action, conf, score)
            if action == 0:
                self.holders.add(agent)
            i = bisect.bisect_right([r[0] for r in rows], ts)
            if i and rows[i - 1][0] == ts:
                rows[i - 1] = row  # a re-sent vote for the same ts replaces the old one
            else:
                rows.insert(i, row)

    @applies(ConsensusDecided)
    def _decided(self, e: ConsensusDecided) -> None:
        by_symbol: dict[str, list[list[Any]]] = {}
        for u in e.used:  # one pass, not one scan of every used vote per signal
            by_symbol.setdefault(u[0], []).append([u[1], u[2], u[3], u[4], u[5]])
        for sig in e.signals:
            self.decisions[(sig[0], e.at)] = {"signal": list(sig), "used": by_symbol.get(sig[0], [])}
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
        for agent, ts, ic in e.ic:
            if agent in self.ic_samples:
                self.ic_samples[agent].append((ts, ic))

    @applies(AgentOutcomesScored)
    def _agents_scored(self, e: AgentOutcomesScored) -> None:
        for row in e.rows:
            symbol, _ts, agent, _version, action, conf, ret, _reward = row
            self.last_action[(agent, symbol)] = action
            self.agent_outcomes.append(row)
            if action != 0 and ret != 0 and agent in self.cal_samples:
                p = float(directional_probability(np.array(conf), np.array(self._uninformed(agent))))
                self.cal_samples[agent].append((p, int(np.sign(ret) == action)))
                self.cal_pending[agent] += 1

    @applies(CalibrationFitted)
    def _calibrated(self, e: CalibrationFitted) -> None:
        self.calibration[e.agent] = Calibration(e.x, e.y, e.samples)
        self.cal_pending[e.agent] = 0

    @applies(ConsensusSettingsChanged)
    def _settings(self, e: ConsensusSettingsChanged) -> None:
        values = dict(e.values)
        self._adopt(replayed_section(self.cfg, "consensus", values))
        self.settings_overrides.update(values)
        self.settings_id = e.change_id

    def _adopt(self, cfg: ConsensusConfig) -> None:
        """Decide, learn and calibrate by ``cfg`` from now on; what is remembered follows
        ``decisions_kept`` and ``calibration_window`` (the oldest go first)."""
        self.cfg = cfg
        if self.agent_outcomes.maxlen != cfg.decisions_kept:
            self.agent_outcomes = deque(self.agent_outcomes, maxlen=cfg.decisions_kept)
        while len(self.decisions) > cfg.decisions_kept:
            self.decisions.popitem(last=False)
        for a, samples in self.cal_samples.items():
            if samples.maxlen != cfg.calibration_window:
                self.cal_samples[a] = deque(samples, maxlen=cfg.calibration_window)
        for a, ics in self.ic_samples.items():
            if ics.maxlen != cfg.calibration_window:
                self.ic_samples[a] = deque(ics, maxlen=cfg.calibration_window)

    def _uninformed(self, agent: str) -> float:
        """An agent's no-information confidence: 1/3 once seen voting flat, else 1/2."""
        return 1 / 3 if agent in self.holders else 0.5

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
            (str(s), int(ts), str(a), str(v), int(act), float(c), float(sc))
            for s, ts, a, v, act, c, sc in zip(
                t.column("symbol").cast(pa.string()).to_pylist(),
                t.column("ts").cast(pa.int64()).to_pylist(),
                t.column("agent").to_pylist(),
                t.column("model_version").to_pylist(),
                t.column("action").to_pylist(),
                t.column("confidence").to_pylist(),
                t.column("score").to_pylist(),
                strict=True,
            )
        ]
        if rows:
            self.record(VotesRecorded(tuple(rows)))
        self.commit()
        return len(rows)

    def _votes_table(self) -> pa.Table:
        names = ("symbol", "ts", "agent", "model_version", "action", "confidence", "score")
        cols: dict[str, list[Any]] = {k: [] for k in names}
        for (symbol, agent), rows in sorted(self.votes.items()):
            for ts, version, action, conf, score in rows:
                for k, v in zip(cols, (symbol, ts, agent, version, action, conf, score), strict=True):
                    cols[k].append(v)
        return pa.table(
            {
                "symbol": pa.array(cols["symbol"], pa.string()),
                "ts": pa.array(cols["ts"], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
                "agent": pa.array(cols["agent"], pa.string()),
                "model_version": pa.array(cols["model_version"], pa.string()),
                "action": pa.array(cols["action"], pa.int8()),
                "confidence": pa.array(cols["confidence"], pa.float32()),
                "score": pa.array(cols["score"], pa.float32()),
            }
        )

    def _signals(self, votes: pa.Table, at: int) -> tuple[pa.Table, Any]:
        """The one decision function of the trading path and of ``preview``: ``decide`` with
        this consensus's agents, weights, known flat-voters and calibration maps (score mode:
        the agents' IC-based calibration factors)."""
        return decide(votes, at, self.agents, self.weights, self.cfg, self.holders, self.calibration,
                      self.ic_scales() if self.cfg.mode == "score" else None)

    def ic_scales(self) -> dict[str, float]:
        """Each agent's calibration factor in score mode (``scoring.ic_scale``)."""
        return {a: ic_scale([ic for _ts, ic in self.ic_samples[a]], self.cfg) for a in self.agents}

    def preview(self, votes: pa.Table, at: int | None = None) -> pa.Table:
        """SIGNALS from ``votes`` alone at ``at`` (default: their latest ts), with the current
        weights and calibration; records nothing (the served signal)."""
        t = validate(votes, VOTES, source="consensus.preview")
        if t.num_rows == 0:
            return SIGNALS.empty_table()
        if at is None:
            at = int(np.max(t.column("ts").cast(pa.int64()).to_numpy()))
        return self._signals(t, at)[0]

    def decide(self, at: int) -> pa.Table:
        """SIGNALS at ``at`` (ns) for every symbol with a vote (recorded decisions reused)."""
        signals, used = self._signals(self._votes_table(), at)
        rows = signals.to_pylist()
        fresh = [r for r in rows if (r["symbol"], at) not in self.decisions]
        if fresh:
            names = {r["symbol"] for r in fresh}
            self.record(ConsensusDecided(
                at,
                tuple((r["symbol"], r["action"], r["confidence"], r["agreement"], r["votes"], r["reason"],
                       bool(r["decided"]), float(r["score"])) for r in fresh),
                tuple((s, a, int(act), float(c), str(v), float(sc))
                      for s, a, v, act, c, sc in used.itertuples(index=False) if s in names),
            ))
        self.commit()
        return self.signals_at(at, [r["symbol"] for r in rows])

    def signals_at(self, at: int, symbols: Sequence[str]) -> pa.Table:
        """The recorded decisions at ``at`` for ``symbols`` as a SIGNALS table."""
        got = [self.decisions[(s, at)]["signal"] for s in sorted(symbols) if (s, at) in self.decisions]
        return signals_table(
            at, [g[0] for g in got], [g[1] for g in got], [g[2] for g in got], [g[3] for g in got],
            [g[4] for g in got], [g[5] for g in got], [bool(g[6]) for g in got], score=[g[7] for g in got],
        )

    def learn(self, outcomes: pa.Table) -> pa.Table:
        """Score agents on realized outcomes of remembered decisions (weights, per-agent
        outcomes, calibration: see the module docstring); returns the AGENT_OUTCOMES of these
        outcomes: this call's, and again those of outcomes learned before (a retry's)."""
        t = validate(outcomes, OUTCOMES, source="consensus.learn")
        df = pd.DataFrame(
            {
                "symbol": t.column("symbol").cast(pa.string()).to_pylist(),
                "ts": t.column("ts").cast(pa.int64()).to_pylist(),
                "ret": t.column("realized_return").to_pylist(),
            }
        ).drop_duplicates(["symbol", "ts"]).sort_values(["ts", "symbol"], kind="stable")
        keys, actions, confs, valid, rets = [], [], [], [], []
        scored_votes: list[tuple[str, int, float, list[Any]]] = []
        seen: set[tuple[str, int]] = set()  # learned before: their agent outcomes are returned again
        col = {a: i for i, a in enumerate(self.agents)}
        for symbol, ts, ret in df.itertuples(index=False):
            dec = self.decisions.get((symbol, int(ts)))
            if dec is not None and dec.get("learned"):
                seen.add((symbol, int(ts)))
            if dec is None or dec.get("learned") or not np.isfinite(ret):
                continue
            a = np.zeros(len(self.agents), np.int8)
            c = np.zeros(len(self.agents))
            v = np.zeros(len(self.agents), bool)
            for agent, act, conf, _version, _score in dec["used"]:
                if agent in col:
                    a[col[agent]], c[col[agent]], v[col[agent]] = act, conf, True
            scored_votes.append((symbol, int(ts), float(ret), dec["used"]))
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
            ic_rows: list[AgentIC] = []
            if self.cfg.mode == "score":  # weights from rank ICs; the hit counts stay directional
                w, ic_rows = self._learn_ic(w0, scored_votes)
            stats = {
                a: {"scored": self.stats[a]["scored"] + int(scored[i]), "hits": self.stats[a]["hits"] + int(hits[i])}
                for i, a in enumerate(self.agents)
            }
            self.record(WeightsLearned(
                tuple(sorted(zip(self.agents, map(float, w), strict=True))),
                tuple(sorted((a, int(st["scored"]), int(st["hits"])) for a, st in stats.items())),
                tuple((symbol, ts) for symbol, ts in keys),
                tuple(ic_rows),
            ))
        # a retried call (or outcomes sent again): the rows journaled when they were learned,
        # in the order they were returned then; read before this call's rows are appended
        again = [r for r in self.agent_outcomes if (r[0], r[1]) in seen] if seen else []
        rows = self._agent_outcomes(scored_votes)
        if rows:
            self.record(AgentOutcomesScored(tuple(rows)))
        self._refit_calibration()
        self.commit()
        return agent_outcomes_table(again + rows)

    def _learn_ic(
        self, w0: np.ndarray, scored: Sequence[tuple[str, int, float, list[Any]]],
    ) -> tuple[np.ndarray, list[AgentIC]]:
        """Score mode: each bar's rank IC per agent over the decisions of ``scored`` (in time
        order) and the weights they lead to; returns (weights, (agent, ts, IC) scored)."""
        col = {a: i for i, a in enumerate(self.agents)}
        bars: dict[int, list[tuple[float, list[Any]]]] = {}
        for _symbol, ts, ret, used in scored:
            bars.setdefault(ts, []).append((ret, used))
        ics, rows = [], []
        for ts, decisions in bars.items():
            s = np.zeros((len(decisions), len(self.agents)))
            v = np.zeros(s.shape, bool)
            for g, (_ret, used) in enumerate(decisions):
                for agent, _act, _conf, _version, score in used:
                    if agent in col:
                        s[g, col[agent]], v[g, col[agent]] = score, True
            ic = rank_ic(s, v, np.array([ret for ret, _ in decisions]), self.cfg.min_names)
            ics.append(ic)
            rows += [(a, ts, float(ic[i])) for i, a in enumerate(self.agents) if np.isfinite(ic[i])]
        return update_weights_ic(w0, np.array(ics).reshape(len(ics), len(self.agents)), self.cfg), rows

    def _agent_outcomes(self, scored: Sequence[tuple[str, int, float, list[Any]]]) -> list[AgentOutcomeRecord]:
        """Each used vote's own outcome, in time order, against its agent's previous action."""
        prev = dict(self.last_action)
        rows: list[AgentOutcomeRecord] = []
        for symbol, ts, ret, used in scored:
            for agent, act, conf, version, _score in sorted(used, key=lambda u: str(u[0])):
                before = prev.get((agent, symbol), 0)
                reward = act * ret - self.cost * abs(act - before)
                prev[(agent, symbol)] = act
                rows.append((symbol, ts, str(agent), str(version), int(act), float(conf), ret, float(reward)))
        return rows

    def _refit_calibration(self) -> None:
        """Refit (and record) the map of every agent due (see the module docstring)."""
        for agent in self.agents:
            samples = self.cal_samples[agent]
            if self.cal_pending[agent] >= self.cfg.calibrate_every and len(samples) >= self.cfg.calibration_min:
                p, hit = np.array(samples, dtype=np.float64).T
                cal = fit_calibration(p, hit)
                self.record(CalibrationFitted(agent, cal.x, cal.y, cal.samples))

    def agent_outcome_rows(self, agent: str | None = None, since_ts: int | None = None) -> pa.Table:
        """AGENT_OUTCOMES still in memory, of ``agent`` (all: None) with ts >= ``since_ts``."""
        return agent_outcomes_table([
            r for r in self.agent_outcomes
            if (agent is None or r[2] == agent) and (since_ts is None or r[1] >= since_ts)
        ])

    # ------------------------------------------------------------------ runtime settings
    @property
    def settings_section(self) -> ConsensusConfig:
        """The consensus section in effect."""
        return self.cfg

    def settings_change(self, ts: int, change_id: str, changes: Mapping[str, Any]) -> ConsensusSettingsChanged | None:
        """The event that would change the consensus settings (field -> value), validated
        (the section's model; a quorum no more than this consensus's agents); nothing is
        recorded.  None: nothing differs.  ``STARTUP_ONLY`` fields are refused."""
        new, values = changed_section(self.cfg, "consensus", changes, STARTUP_ONLY)
        if "quorum" in values and new.quorum > len(self.agents):
            raise config_error(f"consensus.quorum {new.quorum} is more than the {len(self.agents)} agents of this "
                               "consensus: it could never decide (halt the portfolio to stop trading)",
                               key="consensus.quorum")
        return ConsensusSettingsChanged(ts, change_id, tuple(values.items())) if values else None

    def change_settings(self, event: ConsensusSettingsChanged) -> list[Event]:
        """Apply a prepared settings change and commit it (journaled): the next decision and
        the next learning step use the new settings."""
        self.record(event)
        return self.commit()

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
            "calibration": {a: {"x": list(c.x), "y": list(c.y), "samples": c.samples}
                            for a, c in sorted(self.calibration.items())},
            "last_action": [[a, s, act] for (a, s), act in sorted(self.last_action.items())],
            "agent_outcomes": [list(r) for r in self.agent_outcomes],
            "cal_samples": {a: [list(x) for x in xs] for a, xs in self.cal_samples.items()},
            "cal_pending": dict(self.cal_pending),
            "ic_samples": {a: [list(x) for x in xs] for a, xs in self.ic_samples.items()},
            **({} if self.settings_id is None else {"settings": {  # none changed: as before they existed
                "overrides": dict(sorted(self.settings_overrides.items())), "change_id": self.settings_id}}),
        }

    def restore(self, d: Mapping[str, Any]) -> None:
        """Load a snapshot of a consensus of the same agents."""
        if list(d["agents"]) != self.agents:
            raise ValueError(f"checkpoint is for agents {d['agents']}, this consensus has {self.agents}")
        # runtime settings over the start-up section (none in a checkpoint written before
        # they existed); first, so the remembered deques get their sizes
        saved = d.get("settings") or {}
        if saved.get("overrides"):
            self._adopt(replayed_section(self.cfg, "consensus", saved["overrides"]))
            self.settings_overrides = dict(saved["overrides"])
        self.settings_id = saved.get("change_id")
        self.weights = {a: float(w) for a, w in d["weights"].items()}
        self.stats = {a: dict(s) for a, s in d["stats"].items()}
        self.holders = set(d.get("holders", []))
        self.votes = {(s, a): [_vote_row(r) for r in rows] for s, a, rows in d["votes"]}
        self.decisions = OrderedDict(((s, int(ts)), _decision(dd)) for s, ts, dd in d["decisions"])
        # a checkpoint written before per-agent outcomes and calibration has none of these
        self.calibration = {
            a: Calibration(tuple(map(float, c["x"])), tuple(map(float, c["y"])), int(c["samples"]))
            for a, c in d.get("calibration", {}).items()
        }
        self.last_action = {(str(a), str(s)): int(act) for a, s, act in d.get("last_action", [])}
        self.agent_outcomes.clear()
        self.agent_outcomes.extend(
            (str(s), int(ts), str(a), str(v), int(act), float(c), float(ret), float(rew))
            for s, ts, a, v, act, c, ret, rew in d.get("agent_outcomes", [])
        )
        saved = d.get("cal_samples", {})
        for a in self.agents:
            self.cal_samples[a].clear()
            self.cal_samples[a].extend((float(p), int(h)) for p, h in saved.get(a, []))
        self.cal_pending = {a: int(d.get("cal_pending", {}).get(a, 0)) for a in self.agents}
        saved_ic = d.get("ic_samples", {})  # none before the score consensus
        for a in self.agents:
            self.ic_samples[a].clear()
            self.ic_samples[a].extend((int(ts), float(ic)) for ts, ic in saved_ic.get(a, []))


def _vote_row(r: Sequence[Any]) -> VoteRow:
    """A checkpointed vote in today's form (one checkpointed before scores lacks its score)."""
    score = float(r[4]) if len(r) > 4 else derived_score(int(r[2]), float(r[3]))
    return (int(r[0]), str(r[1]), int(r[2]), float(r[3]), score)


def _decision(d: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpointed decision in today's form (a v1 one lacks ``decided`` and versions, one
    written before scores its scores: action x confidence)."""
    out = dict(d)
    sig = list(out["signal"])
    if len(sig) == 6:
        sig.append(v1_decided(int(sig[1]), str(sig[5])))
    if len(sig) == 7:
        sig.append(derived_score(int(sig[1]), float(sig[2])))
    out["signal"] = sig
    used = []
    for u in map(list, out["used"]):  # agent, action, conf[, model_version[, score]]
        if len(u) == 3:
            u.append(UNKNOWN_VERSION)
        if len(u) == 4:
            u.append(derived_score(int(u[1]), float(u[2])))
        used.append(u)
    out["used"] = used
    return out


def agent_outcomes_table(rows: Sequence[AgentOutcomeRecord]) -> pa.Table:
    """AGENT_OUTCOMES (validated) from agent outcome records."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * 8
    table = pa.table(
        {
            "symbol": pa.array(cols[0], pa.string()),
            "ts": pa.array(cols[1], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            "agent": pa.array(cols[2], pa.string()),
            "model_version": pa.array(cols[3], pa.string()),
            "action": pa.array(cols[4], pa.int8()),
            "confidence": pa.array(cols[5], pa.float32()),
            "realized_return": pa.array(cols[6], pa.float64()),
            "reward": pa.array(cols[7], pa.float64()),
        }
    )
    return validate(table, AGENT_OUTCOMES, source="consensus.learn")
