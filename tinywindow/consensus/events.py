"""The consensus book's events, and their journal spelling (codec version 1).

====================  ============  ==================================================
event                 journal kind  what happened
====================  ============  ==================================================
``VotesRecorded``     ``votes``     a VOTES batch joined the per-(symbol, agent) buffer
``ConsensusDecided``  ``decided``   SIGNALS at one time, and the votes that decided them
``WeightsLearned``    ``learned``   outcomes scored the agents: new weights and stats
====================  ============  ==================================================

The payloads are spelled as the consensus journaled them before the typed events existed
(rows as JSON arrays), so those journals replay unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event

__all__ = ["ConsensusDecided", "SignalRecord", "UsedVote", "VoteRecord", "VotesRecorded", "WeightsLearned"]

VoteRecord: TypeAlias = tuple[str, int, str, str, int, float]  # symbol, ts, agent, model_version, action, confidence
SignalRecord: TypeAlias = tuple[str, int, float, float, int, str]  # symbol, action, confidence, agreement, votes, reason
UsedVote: TypeAlias = tuple[str, str, int, float]  # symbol, agent, action, raw confidence


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
    """Agents' new weights and cumulative (scored, hits), sorted by agent, and the decisions
    that taught them."""

    KIND: ClassVar[str] = "learned"
    weights: tuple[tuple[str, float], ...]
    stats: tuple[tuple[str, int, int], ...]  # agent, scored, hits
    keys: tuple[tuple[str, int], ...]  # (symbol, ts) of the decisions scored


# --------------------------------------------------------------------------- codec, v1


def _enc_votes(e: VotesRecorded) -> dict[str, Any]:
    return {"rows": [list(r) for r in e.rows]}


def _dec_votes(p: Mapping[str, Any], version: int) -> VotesRecorded:
    return VotesRecorded(tuple(
        (str(s), int(ts), str(a), str(v), int(act), float(c)) for s, ts, a, v, act, c in p["rows"]
    ))


def _enc_decided(e: ConsensusDecided) -> dict[str, Any]:
    return {"at": e.at, "signals": [list(s) for s in e.signals], "used": [list(u) for u in e.used]}


def _dec_decided(p: Mapping[str, Any], version: int) -> ConsensusDecided:
    return ConsensusDecided(
        int(p["at"]),
        tuple((str(s), int(a), float(c), float(g), int(n), str(r)) for s, a, c, g, n, r in p["signals"]),
        tuple((str(s), str(a), int(act), float(c)) for s, a, act, c in p["used"]),
    )


def _enc_learned(e: WeightsLearned) -> dict[str, Any]:
    return {
        "weights": dict(e.weights),
        "stats": {a: {"scored": scored, "hits": hits} for a, scored, hits in e.stats},
        "keys": [list(k) for k in e.keys],
    }


def _dec_learned(p: Mapping[str, Any], version: int) -> WeightsLearned:
    return WeightsLearned(
        tuple(sorted((str(a), float(w)) for a, w in p["weights"].items())),
        tuple(sorted((str(a), int(s["scored"]), int(s["hits"])) for a, s in p["stats"].items())),
        tuple((str(s), int(ts)) for s, ts in p["keys"]),
    )


CODEC.register(VotesRecorded, _enc_votes, _dec_votes)
CODEC.register(ConsensusDecided, _enc_decided, _dec_decided)
CODEC.register(WeightsLearned, _enc_learned, _dec_learned)
