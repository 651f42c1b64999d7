"""Consensus: turn several agents' votes into one signal per symbol, and learn whom to trust.

Voting (``combine``, on arrays [G groups, A agents]): each valid vote puts
``weight * confidence`` on its action (-1, 0, +1); the action with the most mass wins.
``decide`` first turns directional votes' confidences into the probability that the
direction is right (``directional_probability``), so agents choosing among three actions
and agents choosing between two are on one scale, in voting and in learning alike.

* ``confidence`` = the winner's mass / the total weight of valid votes: the weighted mean
  confidence in the winner, with votes for other actions counting as zero.
* ``agreement`` = the weight share of valid votes for the winner.
* ``disagreement`` = the weight share of valid votes for the *opposite* direction (hold votes
  abstain, they do not contradict).

One meaning per action: a vote and a decision are a *target exposure*, short, flat or long
(-1, 0, +1).  A majority for 0 is a decision to be flat (``Code.FLAT``, ``decided`` True),
just as a majority for +1 is a decision to be long.

A vote is valid when the agent voted for that symbol and the vote is at most
``stale_after_s`` old; missing and stale agents are left out and the rest still decide
(N-1 agents decide), as long as ``quorum`` valid votes remain.  There is *no decision*
(``decided`` False, action 0), in this order, on: no quorum, a tie, disagreement above
``max_disagreement``, confidence below ``threshold`` (or no confidence at all); what a
no-decision does is the portfolio's choice (``portfolio.no_decision``).  The reason code
and a reason text (votes, raw and calibrated confidences, weights, staleness, numbers against
thresholds) travel with every SIGNALS row.

Calibration (``tinywindow.consensus.calibration``): before voting, each agent's directional
probability goes through that agent's calibration map, fitted from its own outcomes, so a
systematically over-confident agent counts with the hit rate it actually achieves.

Learning (``update_weights``): an agent's directional vote is a forecast that its direction
is right with probability ``confidence`` (rescaled for agents that also vote hold, see
``directional_probability``); once the realized return is known it is scored
with the Brier score ``(confidence - hit)**2`` (a proper score, so it rewards calibration
as well as accuracy).  Weights move multiplicatively, ``w *= exp(-lr * (score - 0.25))``
(0.25 is the score of an uninformed 0.5 forecast: better than chance grows, worse
shrinks), bounded to ``[min_weight, max_weight]``.  Hold votes and zero returns are not
scored.

Scores: every VOTES row carries the agent's cross-sectional ``score``.  In ``mode`` vote the
SIGNALS ``score`` is the weight-normalised mean of the valid votes' scores (raw, uncalibrated;
0 with no valid vote) and nothing else changes; in ``mode`` score the decision itself is
made from the scores (``tinywindow.consensus.scoring``: ``combine_scores``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tinywindow.consensus.calibration import Calibration
from tinywindow.consensus.codes import ACTION_TEXT, CODE_TEXT, NO_DECISION_TEXT, Code
from tinywindow.consensus.config import ConsensusConfig
from tinywindow.consensus.scoring import ScoreConsensus, combine_scores, explain_scores
from tinywindow.contracts import SIGNALS, VOTES, validate

__all__ = [
    "NO_DECISION_TEXT", "Code", "Consensus", "ScoreConsensus", "combine", "combine_scores", "decide",
    "directional_probability", "explain", "latest_votes", "signals_table", "update_weights",
]

UNINFORMED_BRIER = 0.25


@dataclass(frozen=True)
class Consensus:
    """Per-group result of ``combine`` (arrays of length G)."""

    action: np.ndarray  # int8, the target exposure decided (0: flat, or no decision)
    decided: np.ndarray  # bool, False on a fallback (no quorum, tie, disagreement, low confidence)
    winner: np.ndarray  # int8, the action with most mass before fallbacks
    confidence: np.ndarray  # float64
    agreement: np.ndarray
    disagreement: np.ndarray
    votes: np.ndarray  # int16, valid votes counted
    code: np.ndarray  # int8, a Code


def combine(
    action: np.ndarray,
    confidence: np.ndarray,
    valid: np.ndarray,
    weights: np.ndarray,
    cfg: ConsensusConfig,
) -> Consensus:
    """Confidence-weighted vote over agents for each of G groups (see module docstring).

    ``action`` int [G, A] in {-1, 0, 1}; ``confidence`` [G, A] in [0, 1]; ``valid`` bool
    [G, A] (False: missing or stale); ``weights`` [A] > 0.
    """
    a = np.asarray(action, dtype=np.int8)
    c = np.where(valid, np.asarray(confidence, dtype=np.float64), 0.0)
    w = np.where(valid, np.asarray(weights, dtype=np.float64)[None, :], 0.0)
    total = w.sum(axis=1)
    masses = np.stack([(w * c * (a == k)).sum(axis=1) for k in (-1, 0, 1)], axis=1)  # [G, 3]
    share = np.stack([(w * (a == k)).sum(axis=1) for k in (-1, 0, 1)], axis=1)
    order = np.argsort(-masses, axis=1, kind="stable")
    top, second = order[:, 0], order[:, 1]
    rows = np.arange(a.shape[0])
    top_mass = masses[rows, top]
    tie = (top_mass > 0) & (masses[rows, second] == top_mass)
    winner = np.where(top_mass > 0, top - 1, 0).astype(np.int8)  # no mass at all: no winner
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(total > 0, top_mass / total, 0.0)
        agreement = np.where(total > 0, share[rows, top] / total, 0.0)
        opposite = np.where(winner != 0, share[rows, 2 - top], 0.0)
        disagreement = np.where(total > 0, opposite / total, 0.0)
    n_valid = valid.sum(axis=1).astype(np.int16)
    code = np.full(a.shape[0], Code.DECIDED, dtype=np.int8)
    # Later rules overwrite only rows still DECIDED, so the first failing rule is the reason.
    for cond, why in (
        (n_valid < cfg.quorum, Code.NO_QUORUM),
        (tie, Code.TIE),
        (disagreement > cfg.max_disagreement, Code.DISAGREEMENT),
        ((conf < cfg.threshold) | (top_mass <= 0), Code.LOW_CONFIDENCE),
    ):
        code = np.where((code == Code.DECIDED) & cond, why, code).astype(np.int8)
    code = np.where((code == Code.DECIDED) & (winner == 0), Code.FLAT, code).astype(np.int8)
    decided = (code == Code.DECIDED) | (code == Code.FLAT)
    action = np.where(decided, winner, 0).astype(np.int8)
    return Consensus(action, decided, winner, conf, agreement, disagreement, n_valid, code)


def directional_probability(confidence: np.ndarray, uninformed: np.ndarray) -> np.ndarray:
    """The probability a directional vote is right, from the probability of its action.

    An agent choosing among k actions is uninformed at confidence 1/k and certain at 1; the
    forecast that its direction is right runs linearly from 0.5 to 1 over that range (and
    below 0.5 under 1/k).  A two-action agent (it never holds, ``uninformed`` = 0.5) keeps
    its confidence as is; a three-action policy voting BUY at 0.45 forecasts 0.59.
    """
    c = np.asarray(confidence, dtype=np.float64)
    u = np.asarray(uninformed, dtype=np.float64)
    return np.clip(0.5 + 0.5 * (c - u) / (1.0 - u), 0.0, 1.0)


def update_weights(
    weights: np.ndarray,
    action: np.ndarray,
    confidence: np.ndarray,
    valid: np.ndarray,
    realized: np.ndarray,
    cfg: ConsensusConfig,
    uninformed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multiplicative weights on the Brier score for one batch of outcomes [M, A].

    ``uninformed`` [A] is each agent's no-information confidence (1/k for k actions; 0.5,
    the default, for agents that never hold); confidences are turned into directional
    forecasts with ``directional_probability`` before scoring, so agents with different
    action sets are scored on the same scale.  Returns ``(new_weights [A], hits [A],
    scored [A])`` where ``hits``/``scored`` count this batch's correct and scored directional
    votes per agent.  Rows are applied in order, one step per row, with the bounds enforced
    after every step.
    """
    w = np.asarray(weights, dtype=np.float64).copy()
    a = np.asarray(action, dtype=np.int8)
    r = np.sign(np.asarray(realized, dtype=np.float64))
    scored_mask = np.asarray(valid, dtype=bool) & (a != 0) & (r[:, None] != 0)
    hit = (a == r[:, None]).astype(np.float64)
    u = np.full(w.shape, 0.5) if uninformed is None else np.asarray(uninformed, dtype=np.float64)
    forecast = directional_probability(np.asarray(confidence, dtype=np.float64), u[None, :])
    brier = (forecast - hit) ** 2
    for m in range(a.shape[0]):
        s = scored_mask[m]
        if s.any():
            w[s] *= np.exp(-cfg.learning_rate * (brier[m, s] - UNINFORMED_BRIER))
            np.clip(w, cfg.min_weight, cfg.max_weight, out=w)
    hits = (hit * scored_mask).sum(axis=0)
    return w, hits, scored_mask.sum(axis=0)


# --------------------------------------------------------------------------- tables


def explain(
    res: Consensus, g: int, agents: Sequence[str], a: np.ndarray, c: np.ndarray,
    status: np.ndarray, weights: np.ndarray, cfg: ConsensusConfig, raw: np.ndarray | None = None,
) -> str:
    """The reason text of group ``g``: decision, numbers against thresholds, every agent
    (``raw``: the directional probability before calibration, shown where it differs)."""
    code = Code(int(res.code[g]))
    if code.is_decision:
        head = ACTION_TEXT[int(res.action[g])]
    else:
        majority = ACTION_TEXT[int(res.winner[g])] if res.agreement[g] > 0 else "none"
        head = f"{NO_DECISION_TEXT} ({CODE_TEXT[code]}; majority {majority})"
    parts = [
        head,
        f"confidence {res.confidence[g]:.3f} vs threshold {cfg.threshold:.3f}",
        f"agreement {res.agreement[g]:.3f}",
        f"disagreement {res.disagreement[g]:.3f} vs max {cfg.max_disagreement:.3f}",
        f"votes {int(res.votes[g])}/{len(agents)} (quorum {cfg.quorum})",
    ]
    who = []
    for i, name in enumerate(agents):
        st = status[g, i]
        if st == "ok":
            cal = "" if raw is None or abs(raw[g, i] - c[g, i]) < 5e-3 else f" (raw {raw[g, i]:.2f})"
            who.append(f"{name} {int(a[g, i]):+d}@{c[g, i]:.2f}{cal} w={weights[i]:.3f}")
        else:
            who.append(f"{name} {st}")
    return "; ".join(parts) + " | " + ", ".join(who)


def latest_votes(votes: pa.Table, at_ns: int) -> pd.DataFrame:
    """Each (symbol, agent)'s latest vote stamped at or before ``at_ns``."""
    df = pd.DataFrame(
        {
            "symbol": votes.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False),
            "ts": votes.column("ts").cast(pa.int64()).to_numpy(),
            "agent": votes.column("agent").to_numpy(zero_copy_only=False),
            "model_version": votes.column("model_version").to_numpy(zero_copy_only=False),
            "action": votes.column("action").to_numpy(),
            "confidence": votes.column("confidence").to_numpy().astype(np.float64),
            "score": votes.column("score").to_numpy().astype(np.float64),
        }
    )
    df = df[df["ts"] <= at_ns]
    if df.empty:
        return df
    df = df.sort_values(["symbol", "agent", "ts"], kind="stable")
    return df.groupby(["symbol", "agent"], sort=True).tail(1).reset_index(drop=True)


def decide(
    votes: pa.Table,
    at_ns: int,
    agents: Sequence[str],
    weights: Mapping[str, float],
    cfg: ConsensusConfig,
    holders: Collection[str] = (),
    calibration: Mapping[str, Calibration] | None = None,
    scales: Mapping[str, float] | None = None,
) -> tuple[pa.Table, pd.DataFrame]:
    """SIGNALS at time ``at_ns`` for every symbol with a vote, from each agent's latest vote.

    ``agents`` are the agents expected to vote (an unknown agent's votes are ignored).
    ``cfg.mode`` vote: directional votes count with their ``directional_probability``:
    agents in ``holders`` (known to vote flat, i.e. to choose among three actions) or with a
    flat vote in ``votes`` are uninformed at 1/3, the others at 1/2, so a three-action
    policy's 0.45 and a two-action model's 0.59 weigh the same; then each agent's
    ``calibration`` map (if any) turns that into the hit rate it achieves.  ``cfg.mode``
    score: ``combine_scores`` over the symbols of the bar, each agent's standardised score
    times its factor in ``scales`` (its IC-based calibration, 1 where absent).  Returns the
    validated SIGNALS table and the valid votes that decided it (symbol, agent,
    model_version, action, raw confidence, score), which the caller keeps to score agents
    once outcomes arrive.
    """
    votes = validate(votes, VOTES, source="consensus")
    latest = latest_votes(votes, at_ns)
    agents = list(agents)
    if latest.empty:
        return SIGNALS.empty_table(), latest
    latest = latest[latest["agent"].isin(agents)]
    symbols = sorted(latest["symbol"].unique())
    g_of = {s: i for i, s in enumerate(symbols)}
    a_of = {name: i for i, name in enumerate(agents)}
    shape = (len(symbols), len(agents))
    a = np.zeros(shape, dtype=np.int8)
    c = np.zeros(shape)
    sc = np.zeros(shape)
    status = np.full(shape, "missing", dtype=object)
    gi = latest["symbol"].map(g_of).to_numpy()
    ai = latest["agent"].map(a_of).to_numpy()
    age_s = (at_ns - latest["ts"].to_numpy()) / 1e9
    a[gi, ai] = latest["action"].to_numpy()
    c[gi, ai] = latest["confidence"].to_numpy()
    sc[gi, ai] = latest["score"].to_numpy()
    fresh = age_s <= cfg.stale_after_s
    status[gi, ai] = np.where(fresh, "ok", [f"stale {x:.0f}s" for x in age_s])
    valid = status == "ok"
    w = np.array([float(weights.get(name, 1.0)) for name in agents])
    used = latest[fresh][["symbol", "agent", "model_version", "action", "confidence", "score"]].reset_index(drop=True)
    if cfg.mode == "score":
        k = np.array([float((scales or {}).get(name, 1.0)) for name in agents])
        res = combine_scores(sc, valid, w, cfg, k)
        reasons = [explain_scores(res, g, agents, sc, status, w, k, cfg) for g in range(len(symbols))]
        table = signals_table(at_ns, symbols, res.action, res.confidence, res.agreement, res.votes, reasons,
                              res.decided, score=res.score)
        return table, used
    holding = set(holders) | set(
        votes.filter(pc.equal(votes.column("action"), 0)).column("agent").to_pylist()
    )
    u = np.array([1 / 3 if name in holding else 0.5 for name in agents])
    p_dir = directional_probability(c, u[None, :])
    cal = calibration or {}
    p_cal = np.column_stack([cal[name](p_dir[:, i]) if name in cal else p_dir[:, i] for i, name in enumerate(agents)])
    c_dir = np.where(a != 0, p_cal, c)
    res_v = combine(a, c_dir, valid, w, cfg)
    raw = np.where(a != 0, p_dir, c)
    reasons = [explain(res_v, g, agents, a, c_dir, status, w, cfg, raw) for g in range(len(symbols))]
    table = signals_table(
        at_ns, symbols, res_v.action, res_v.confidence, res_v.agreement, res_v.votes, reasons, res_v.decided,
        score=mean_vote_score(sc, valid, w),
    )
    return table, used


def mean_vote_score(scores: np.ndarray, valid: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Vote mode's SIGNALS score [G]: the weight-normalised mean of the valid votes' scores
    [G, A] (0 where no vote is valid)."""
    wv = np.where(valid, np.asarray(weights, dtype=np.float64)[None, :], 0.0)
    total = wv.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (wv * np.where(valid, scores, 0.0)).sum(axis=1) / total, 0.0)


def signals_table(
    at_ns: int,
    symbols: Sequence[str],
    action: Sequence[int] | np.ndarray,
    confidence: Sequence[float] | np.ndarray,
    agreement: Sequence[float] | np.ndarray,
    votes: Sequence[int] | np.ndarray,
    reason: Sequence[str],
    decided: Sequence[bool] | np.ndarray,
    score: Sequence[float] | np.ndarray | None = None,
) -> pa.Table:
    """The validated SIGNALS table of decisions at ``at_ns``, one row per symbol (the one
    place a SIGNALS table is built, for fresh and for recorded decisions).  ``score`` None:
    derived as action x confidence (``contracts.DERIVED``)."""
    cols = {
        "symbol": pa.array(symbols, pa.string()),
        "ts": pa.array(np.full(len(symbols), at_ns, dtype=np.int64)).cast(pa.timestamp("ns", tz="UTC")),
        "action": pa.array(action, pa.int8()),
        "decided": pa.array(np.asarray(decided, dtype=bool), pa.bool_()),
        "confidence": pa.array(np.asarray(confidence, dtype=np.float32), pa.float32()),
        "agreement": pa.array(np.asarray(agreement, dtype=np.float32), pa.float32()),
        "votes": pa.array(votes, pa.int16()),
        "reason": pa.array(reason, pa.string()),
    }
    if score is not None:
        cols["score"] = pa.array(np.asarray(score, dtype=np.float32), pa.float32())
    return validate(pa.table(cols), SIGNALS, source="consensus")
