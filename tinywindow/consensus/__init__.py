"""Consensus: several agents' votes -> one signal per symbol, and learning whom to trust.

Votes and decisions are target exposures (-1 short, 0 flat, +1 long); a decision is either
a target or an explicit no-decision with its reason (SIGNALS ``decided``).

* ``voting``: ``decide``, ``combine``, ``update_weights``, ``signals_table`` (pure functions)
* ``scoring``: ``combine_scores``, ``rank_ic``, ``update_weights_ic`` (``mode`` score: agents'
  cross-sectional scores standardised per bar and averaged by weight; weights from rank ICs)
* ``codes``: ``Code``, why a consensus decided what it did
* ``calibration``: ``Calibration``, ``fit_calibration`` (per-agent isotonic maps)
* ``state``: ``ConsensusBook``, the event-sourced state a ConsensusActor keeps (``preview``
  is the one decision function the trading path and the serving gateway share)
* ``events``: ``VotesRecorded``, ``ConsensusDecided``, ``WeightsLearned``,
  ``AgentOutcomesScored``, ``CalibrationFitted``
* ``config``: ``ConsensusConfig``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinywindow.core.lazy import lazy_exports

if TYPE_CHECKING:
    from tinywindow.consensus.calibration import Calibration, fit_calibration
    from tinywindow.consensus.codes import Code
    from tinywindow.consensus.config import ConsensusConfig
    from tinywindow.consensus.scoring import (
        ScoreConsensus,
        combine_scores,
        rank_ic,
        update_weights_ic,
    )
    from tinywindow.consensus.state import ConsensusBook
    from tinywindow.consensus.voting import combine, decide, signals_table, update_weights

__all__ = [
    "Calibration", "Code", "ConsensusBook", "ConsensusConfig", "ScoreConsensus", "combine", "combine_scores",
    "decide", "fit_calibration", "rank_ic", "signals_table", "update_weights", "update_weights_ic",
]

_EXPORTS = {
    "Calibration": "tinywindow.consensus.calibration",
    "fit_calibration": "tinywindow.consensus.calibration",
    "Code": "tinywindow.consensus.codes",
    "ScoreConsensus": "tinywindow.consensus.scoring",
    "combine_scores": "tinywindow.consensus.scoring",
    "rank_ic": "tinywindow.consensus.scoring",
    "update_weights_ic": "tinywindow.consensus.scoring",
    "ConsensusBook": "tinywindow.consensus.state",
    "ConsensusConfig": "tinywindow.consensus.config",
    "combine": "tinywindow.consensus.voting",
    "decide": "tinywindow.consensus.voting",
    "signals_table": "tinywindow.consensus.voting",
    "update_weights": "tinywindow.consensus.voting",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)
