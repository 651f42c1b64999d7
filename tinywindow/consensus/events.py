"""The consensus book's events, and their journal spelling.

======================  ==================  ==============================================
event                   journal kind        what happened
======================  ==================  ==============================================
``VotesRecorded``       ``votes`` (v2)      a VOTES batch joined the per-(symbol, agent)
                                            buffer
``ConsensusDecided``    ``decided`` (v3)    SIGNALS at one time, and the votes (with their
                                            model versions and scores) that decided them
``WeightsLearned``      ``learned`` (v2)    outcomes scored the agents: new weights, stats,
                                            (score mode) each agent's rank IC per bar
``AgentOutcomesScored`` ``agent_outcomes``  each voting agent's own outcome (AGENT_OUTCOMES
                                            rows: its action, the return, its reward)
``CalibrationFitted``   ``calibrated``      an agent's calibration map refitted: its points
======================  ==================  ==============================================

``ConsensusSettingsChanged`` (kind ``consensus_set``): the ``consensus`` section changed on a
running engine (``tinywindow config set``), the changed values.

Codec versions:

* ``decided`` v3: each signal row ends with its ``score``, each used vote with its ``score``.
  v2 (no scores: signal rows of seven, used votes of five) and v1 (no ``decided`` flag nor
  model versions: rows of six and four) still decode: a v1 signal was a decision when its
  action was non-zero or its majority was flat ("hold majority"), a v1 vote's model version
  is ``"unknown"``, and a score the payload lacks is ``action x confidence`` (what
  ``contracts.DERIVED`` gives a table without the column).
* ``votes`` v2: each row ends with the vote's ``score``; a v1 row (six fields) decodes with
  score ``action x confidence``.
* ``learned`` v2: adds ``ic``, the rank IC of each agent scored per bar (score mode; empty in
  vote mode); a v1 payload has none.

Every other payload is spelled as the consensus journaled it before the typed events
existed (rows as JSON arrays, version 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event

__all__ = [
    "AgentIC", "AgentOutcomeRecord", "AgentOutcomesScored", "CalibrationFitted", "ConsensusDecided", "ConsensusSettingsChanged", "SignalRecord", "UsedVote",
    "VoteRecord", "VotesRecorded", "WeightsLearned",
]

# symbol, ts, agent, model_version, action, confidence, score
VoteRecord: TypeAlias = tuple[str, int, str, str, int, float, float]
# symbol, action, confidence, agreement, votes, reason, decided, score
SignalRecord: TypeAlias = tuple[str, int, float, float, int, str, bool, float]
UsedVote: TypeAlias = tuple[str, str, int, float, str, float]  # symbol, agent, action, raw confidence, model_version, score
AgentIC: TypeAlias = tuple[str, int, float]  # agent, ts of the bar, its rank IC there
# symbol, ts, agent, model_version, action, confidence, realized_return, reward (an AGENT_OUTCOMES row)
AgentOutcomeRecord: TypeAlias = tuple[str, int, str, str, int, float, float, float]
UNKNOWN_VERSION = "unknown"  # the model version of a vote journaled before versions were kept


@dataclass(frozen=True, slots=True)
class VotesRecorded(Event):
    KIND: ClassVar[str] = "votes"
    rows: tuple[VoteRecord, ...]


@dataclass(frozen=True, slots=True)
class ConsensusDecided(Event):
    """The decisions at ``at`` for the symbols not decided there before."""

    KIND: ClassVar[str] = "decided"
    at: int
    signals: tuple[SignalRecord, ...]
    used: tuple[UsedVote, ...]


@dataclass(frozen=True, slots=True)
class WeightsLearned(Event):
    """Agents' new weights and cumulative (scored, hits), sorted by agent, the decisions
    that taught them and (score mode) each agent's rank IC of every bar scored, in time order
    (applying it adds them to the agent's IC history, its calibration factor)."""

    KIND: ClassVar[str] = "learned"
    weights: tuple[tuple[str, float], ...]
    stats: tuple[tuple[str, int, int], ...]  # agent, scored, hits
    keys: tuple[tuple[str, int], ...]  # (symbol, ts) of the decisions scored
    ic: tuple[AgentIC, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentOutcomesScored(Event):
    """Each voting agent's own outcome on decisions whose return is known, in time order:
    ``reward`` = action x realized_return - cost x |action - the agent's previous action on
    the symbol|.  Applying it moves each agent's previous action and its calibration sample."""

    KIND: ClassVar[str] = "agent_outcomes"
    rows: tuple[AgentOutcomeRecord, ...]


@dataclass(frozen=True, slots=True)
class CalibrationFitted(Event):
    """``agent``'s calibration map: raw directional probability ``x`` -> hit rate ``y``
    (isotonic fit on ``samples`` outcomes; interpolated, clipped at the ends)."""

    KIND: ClassVar[str] = "calibrated"
    agent: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    samples: int


@dataclass(frozen=True, slots=True)
class ConsensusSettingsChanged(Event):
    """Consensus settings changed on a running engine (``tinywindow config set``): ``values``
    are the changed fields of the ``consensus`` section (field, JSON value), sorted; they
    apply over the section in effect from the next call on.  ``change_id`` names the change
    across the actors it was committed on."""

    KIND: ClassVar[str] = "consensus_set"
    ts: int
    change_id: str
    values: tuple[tuple[str, Any], ...]


# --------------------------------------------------------------------------- codec


def _enc_votes(e: VotesRecorded) -> dict[str, Any]:
    return {"rows": [list(r) for r in e.rows]}


def derived_score(action: int, confidence: float) -> float:
    """The score of a vote or signal journaled before scores existed: action x confidence
    (as ``contracts.DERIVED`` derives a table's missing column)."""
    return float(action * confidence)


def _dec_votes(p: Mapping[str, Any], version: int) -> VotesRecorded:
    if version == 1:
        return VotesRecorded(tuple(
            (str(s), int(ts), str(a), str(v), int(act), float(c), derived_score(int(act), float(c)))
            for s, ts, a, v, act, c in p["rows"]
        ))
    return VotesRecorded(tuple(
        (str(s), int(ts), str(a), str(v), int(act), float(c), float(sc)) for s, ts, a, v, act, c, sc in p["rows"]
    ))


def _enc_decided(e: ConsensusDecided) -> dict[str, Any]:
    return {"at": e.at, "signals": [list(s) for s in e.signals], "used": [list(u) for u in e.used]}


def v1_decided(action: int, reason: str) -> bool:
    """Whether a v1 signal (no ``decided`` field) was a decision in today's meaning: a
    direction, or a flat majority (v1 wrote it "HOLD (hold majority; ...)")."""
    return action != 0 or reason.startswith("HOLD (hold majority")


def signal_record(row: list[Any] | tuple[Any, ...]) -> SignalRecord:
    """A signal row of any version in today's form: v1 (six fields) lacks ``decided`` and
    the score, v2 (seven) the score."""
    s, a, c, g, n, r = row[:6]
    decided = bool(row[6]) if len(row) > 6 else v1_decided(int(a), str(r))
    score = float(row[7]) if len(row) > 7 else derived_score(int(a), float(c))
    return (str(s), int(a), float(c), float(g), int(n), str(r), decided, score)


def used_vote(row: list[Any] | tuple[Any, ...]) -> UsedVote:
    """A used vote of any version in today's form: v1 (four fields) lacks the model version
    and the score, v2 (five) the score."""
    s, a, act, c = row[:4]
    version = str(row[4]) if len(row) > 4 else UNKNOWN_VERSION
    score = float(row[5]) if len(row) > 5 else derived_score(int(act), float(c))
    return (str(s), str(a), int(act), float(c), version, score)


def _dec_decided(p: Mapping[str, Any], version: int) -> ConsensusDecided:
    width = {1: (6, 4), 2: (7, 5)}.get(version, (8, 6))
    for key, n in zip(("signals", "used"), width, strict=True):
        if any(len(r) != n for r in p[key]):
            raise ValueError(f"decided v{version}: {key} rows must have {n} fields")
    signals = tuple(signal_record(r) for r in p["signals"])
    used = tuple(used_vote(u) for u in p["used"])
    return ConsensusDecided(int(p["at"]), signals, used)


def _enc_learned(e: WeightsLearned) -> dict[str, Any]:
    return {
        "weights": dict(e.weights),
        "stats": {a: {"scored": scored, "hits": hits} for a, scored, hits in e.stats},
        "keys": [list(k) for k in e.keys],
        "ic": [list(x) for x in e.ic],
    }


def _dec_learned(p: Mapping[str, Any], version: int) -> WeightsLearned:
    return WeightsLearned(
        tuple(sorted((str(a), float(w)) for a, w in p["weights"].items())),
        tuple(sorted((str(a), int(s["scored"]), int(s["hits"])) for a, s in p["stats"].items())),
        tuple((str(s), int(ts)) for s, ts in p["keys"]),
        tuple((str(a), int(ts), float(ic)) for a, ts, ic in p.get("ic", [])) if version >= 2 else (),
    )


def _enc_agent_outcomes(e: AgentOutcomesScored) -> dict[str, Any]:
    return {"rows": [list(r) for r in e.rows]}


def _dec_agent_outcomes(p: Mapping[str, Any], version: int) -> AgentOutcomesScored:
    return AgentOutcomesScored(tuple(
        (str(s), int(ts), str(a), str(v), int(act), float(c), float(ret), float(rew))
        for s, ts, a, v, act, c, ret, rew in p["rows"]
    ))


def _enc_calibrated(e: CalibrationFitted) -> dict[str, Any]:
    return {"agent": e.agent, "x": list(e.x), "y": list(e.y), "samples": e.samples}


def _dec_calibrated(p: Mapping[str, Any], version: int) -> CalibrationFitted:
    return CalibrationFitted(
        str(p["agent"]), tuple(float(v) for v in p["x"]), tuple(float(v) for v in p["y"]), int(p["samples"])
    )


CODEC.register(VotesRecorded, _enc_votes, _dec_votes, version=2)
CODEC.register(ConsensusDecided, _enc_decided, _dec_decided, version=3)
CODEC.register(WeightsLearned, _enc_learned, _dec_learned, version=2)
CODEC.register(AgentOutcomesScored, _enc_agent_outcomes, _dec_agent_outcomes)
CODEC.register(CalibrationFitted, _enc_calibrated, _dec_calibrated)


def _enc_consensus_set(e: ConsensusSettingsChanged) -> dict[str, Any]:
    return {"ts": e.ts, "change_id": e.change_id, "values": dict(e.values)}


def _dec_consensus_set(p: Mapping[str, Any], version: int) -> ConsensusSettingsChanged:
    return ConsensusSettingsChanged(int(p["ts"]), str(p["change_id"]), tuple(sorted(dict(p["values"]).items())))


CODEC.register(ConsensusSettingsChanged, _enc_consensus_set, _dec_consensus_set)
