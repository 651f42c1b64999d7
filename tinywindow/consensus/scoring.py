"""Consensus over scores (``consensus.mode`` score): each agent's cross-sectional scores of
a bar's symbols -> one combined score per symbol, and weights learned from each agent's rank
information coefficient (IC).  Pure functions on arrays [G symbols of one bar, A agents].

A vote is *valid* as in voting (the agent voted for the symbol, at most ``stale_after_s``
ago).  An agent is *ranked* at the bar when it has at least ``min_names`` valid votes; an
agent with fewer cannot be compared across symbols and is left out (reason: ``unranked``).

* Standardising (``standardise``, per agent over its valid symbols): ``zscore`` is
  ``(s - mean) / std`` (population std; std 0 -> 0 for every symbol); ``rank`` maps average
  ranks (ties averaged) linearly onto [-1, 1] (lowest -1, highest +1).
* Calibration: each standardised score is multiplied by the agent's factor ``k``: 1 until the
  agent has ``calibration_min`` scored bars, then the mean of its rank ICs over its last
  ``calibration_window`` scored bars, clipped to [0, 1] (``ic_scale``).  With scores and
  returns jointly normal, E[z_return | z_agent] = IC x z_agent, so ``k x z`` reads as the
  agent's forecast of the return's cross-sectional z-score; an agent without a positive IC
  counts 0 (its weight still dilutes the others).  The learned weight is the other factor.
* Combined score of symbol g: ``sum_a w_a k_a z_ga / sum_a w_a`` over g's ranked valid agents
  (a weighted z-score, or rank, average).
* ``agreement``: the weight share of those agents whose ``k z`` has the combined score's sign.
* ``confidence``: the share of the weighted evidence ``|w k z|`` on the combined score's side,
  ``max(P, N) / (P + N)`` (P, N: the positive and negative mass; 0 when there is none): 0.5
  when the evidence is balanced, 1 when every agent points the same way.  A probability-like
  number for the *sign*, not a fitted hit rate.
* Decision, the first failing rule is the reason: fewer than ``min_names`` symbols of the bar
  with a quorum of ranked votes -> no decision (``Code.TOO_FEW_NAMES``); fewer than
  ``quorum`` ranked votes for the symbol -> no decision (``Code.NO_QUORUM``); |score| below
  ``score_threshold`` (or 0) -> decided flat (``Code.FLAT``); else the sign of the score.
  ``threshold`` and ``max_disagreement`` are vote-mode rules and not used here.

Learning (``rank_ic``, ``update_weights_ic``): once a bar's returns are known, each agent is
scored by the Spearman correlation of its scores (the same ranks as its standardised scores)
with the realized returns over the symbols it voted on (at least ``min_names`` with a
return; no score when either side is constant), and ``w *= exp(score_lr x IC)`` per bar, in
time order, bounded to ``[min_weight, max_weight]`` after every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tinywindow.consensus.codes import ACTION_TEXT, CODE_TEXT, NO_DECISION_TEXT, Code
from tinywindow.consensus.config import ConsensusConfig

__all__ = ["ScoreConsensus", "combine_scores", "explain_scores", "ic_scale", "rank_ic", "standardise",
           "update_weights_ic"]


@dataclass(frozen=True)
class ScoreConsensus:
    """Per-symbol result of ``combine_scores`` (arrays of length G, except where noted)."""

    score: np.ndarray  # float64, the combined score
    action: np.ndarray  # int8, sign(score), 0 when flat or no decision
    decided: np.ndarray  # bool
    confidence: np.ndarray  # float64, in [0, 1]
    agreement: np.ndarray  # float64, in [0, 1]
    votes: np.ndarray  # int16, ranked valid votes counted
    code: np.ndarray  # int8, a Code
    z: np.ndarray  # float64 [G, A], standardised scores before calibration (0 where not counted)
    ranked: np.ndarray  # bool [A], agents with at least min_names valid votes at the bar
    names: int  # symbols of the bar with a quorum of ranked votes


def _average_ranks(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties averaged) of ``x`` down each column among ``mask``; NaN
    elsewhere."""
    from scipy.stats import rankdata

    if x.size == 0:
        return np.full(x.shape, np.nan)
    return np.asarray(rankdata(np.where(mask, x, np.nan), axis=0, nan_policy="omit"), dtype=np.float64)


def standardise(scores: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """Each column's scores standardised across the rows in ``mask`` (``zscore`` or ``rank``,
    see the module docstring); 0 outside ``mask``."""
    s = np.asarray(scores, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    n = m.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "zscore":
            mean = np.where(n > 0, np.where(m, s, 0.0).sum(axis=0) / n, 0.0)
            dev = np.where(m, s - mean[None, :], 0.0)
            std = np.sqrt(np.where(n > 0, (dev * dev).sum(axis=0) / n, 0.0))
            z = np.where(std[None, :] > 0, dev / std[None, :], 0.0)
        elif method == "rank":
            r = _average_ranks(s, m)
            z = np.where(n[None, :] > 1, 2.0 * (r - 1.0) / (n[None, :] - 1.0) - 1.0, 0.0)
        else:
            raise ValueError(f"unknown score method {method!r} (zscore or rank)")
    return np.where(m, z, 0.0)


def combine_scores(
    scores: np.ndarray,
    valid: np.ndarray,
    weights: np.ndarray,
    cfg: ConsensusConfig,
    scales: np.ndarray | None = None,
) -> ScoreConsensus:
    """Weighted, calibrated average of the agents' standardised scores for each of the G
    symbols of one bar (see the module docstring).

    ``scores`` float [G, A] (any scale; only valid entries are read); ``valid`` bool [G, A]
    (False: missing or stale); ``weights`` [A] > 0; ``scales`` [A] the calibration factors
    ``k`` (default 1).
    """
    s = np.asarray(scores, dtype=np.float64)
    v = np.asarray(valid, dtype=bool)
    g_count, a_count = v.shape
    w = np.asarray(weights, dtype=np.float64)
    k = np.ones(a_count) if scales is None else np.asarray(scales, dtype=np.float64)
    ranked = v.sum(axis=0) >= cfg.min_names
    used = v & ranked[None, :]
    z = standardise(s, used, cfg.score_method)
    wu = np.where(used, w[None, :], 0.0)
    contrib = wu * k[None, :] * z
    total = wu.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(total > 0, contrib.sum(axis=1) / total, 0.0)
        sign = np.sign(score)
        pos = np.where(contrib > 0, contrib, 0.0).sum(axis=1)
        neg = np.where(contrib < 0, -contrib, 0.0).sum(axis=1)
        confidence = np.where(pos + neg > 0, np.maximum(pos, neg) / (pos + neg), 0.0)
        same = (np.sign(contrib) == sign[:, None]) & (sign[:, None] != 0) & used
        agreement = np.where(total > 0, np.where(same, wu, 0.0).sum(axis=1) / total, 0.0)
    n_votes = used.sum(axis=1).astype(np.int16)
    names = int((n_votes >= cfg.quorum).sum())
    code = np.full(g_count, Code.DECIDED, dtype=np.int8)
    for cond, why in (
        (np.full(g_count, names < cfg.min_names), Code.TOO_FEW_NAMES),
        (n_votes < cfg.quorum, Code.NO_QUORUM),
        ((np.abs(score) < cfg.score_threshold) | (score == 0), Code.FLAT),
    ):
        code = np.where((code == Code.DECIDED) & cond, why, code).astype(np.int8)
    decided = (code == Code.DECIDED) | (code == Code.FLAT)
    action = np.where(code == Code.DECIDED, sign, 0).astype(np.int8)
    return ScoreConsensus(score, action, decided, confidence, agreement, n_votes, code, z, ranked, names)


def explain_scores(
    res: ScoreConsensus, g: int, agents: Sequence[str], scores: np.ndarray, status: np.ndarray,
    weights: np.ndarray, scales: np.ndarray, cfg: ConsensusConfig,
) -> str:
    """The reason text of symbol ``g``: decision, numbers against thresholds, every agent
    (standardised score z, calibration factor k, weight, raw score)."""
    code = Code(int(res.code[g]))
    score = float(res.score[g])
    if code == Code.DECIDED:
        head = ACTION_TEXT[int(res.action[g])]
    elif code == Code.FLAT:
        head = f"FLAT (|score| {abs(score):.3f} < threshold {cfg.score_threshold:.3f})"
    else:
        head = f"{NO_DECISION_TEXT} ({CODE_TEXT[code]})"
    parts = [
        head,
        f"score {score:+.3f} vs threshold {cfg.score_threshold:.3f} ({cfg.score_method})",
        f"confidence {res.confidence[g]:.3f}",
        f"agreement {res.agreement[g]:.3f}",
        f"votes {int(res.votes[g])}/{len(agents)} (quorum {cfg.quorum})",
        f"names {res.names} (min {cfg.min_names})",
    ]
    who = []
    for i, name in enumerate(agents):
        st = status[g, i]
        if st != "ok":
            who.append(f"{name} {st}")
        elif not res.ranked[i]:
            who.append(f"{name} unranked (fewer than {cfg.min_names} names)")
        else:
            who.append(f"{name} z={res.z[g, i]:+.2f} k={scales[i]:.2f} w={weights[i]:.3f} (score {scores[g, i]:.4g})")
    return "; ".join(parts) + " | " + ", ".join(who)


def rank_ic(scores: np.ndarray, valid: np.ndarray, realized: np.ndarray, min_names: int) -> np.ndarray:
    """Each agent's Spearman correlation [A] of its ``scores`` [G, A] with ``realized`` [G]
    returns over the symbols where its vote is ``valid`` and the return finite; NaN where
    fewer than ``min_names`` such symbols or either side is constant (not scored)."""
    s = np.asarray(scores, dtype=np.float64)
    r = np.asarray(realized, dtype=np.float64)
    m = np.asarray(valid, dtype=bool) & np.isfinite(r)[:, None] & np.isfinite(s)
    rs = _average_ranks(s, m)
    rr = _average_ranks(np.broadcast_to(r[:, None], s.shape), m)
    n = m.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        da = np.where(m, rs - np.nanmean(np.where(m, rs, np.nan), axis=0), 0.0)
        db = np.where(m, rr - np.nanmean(np.where(m, rr, np.nan), axis=0), 0.0)
        den = np.sqrt((da * da).sum(axis=0) * (db * db).sum(axis=0))
        ic = np.where((n >= max(min_names, 2)) & (den > 0), (da * db).sum(axis=0) / den, np.nan)
    return np.asarray(ic, dtype=np.float64)


def update_weights_ic(weights: np.ndarray, ic: np.ndarray, cfg: ConsensusConfig) -> np.ndarray:
    """Multiplicative weights on rank ICs [B bars, A] (NaN: not scored), one step per bar in
    order, ``w *= exp(score_lr x IC)``, bounded to [min_weight, max_weight] after each."""
    w = np.asarray(weights, dtype=np.float64).copy()
    for row in np.atleast_2d(np.asarray(ic, dtype=np.float64)):
        ok = np.isfinite(row)
        if ok.any():
            w[ok] *= np.exp(cfg.score_lr * row[ok])
            np.clip(w, cfg.min_weight, cfg.max_weight, out=w)
    return w


def ic_scale(ics: Sequence[float], cfg: ConsensusConfig) -> float:
    """An agent's calibration factor ``k`` from its per-bar ICs (latest last): 1 before
    ``calibration_min`` of them, then their mean over the last ``calibration_window``,
    clipped to [0, 1]."""
    if len(ics) < cfg.calibration_min:
        return 1.0
    recent = np.asarray(list(ics)[-cfg.calibration_window:], dtype=np.float64)
    return float(np.clip(recent.mean(), 0.0, 1.0))
