"""Consensus: several agents' votes -> one signal per symbol, and learning whom to trust.

* ``voting``: ``decide``, ``combine``, ``update_weights``, ``signals_table`` (pure functions)
* ``state``: ``ConsensusBook``, the event-sourced state a ConsensusActor keeps
* ``events``: ``VotesRecorded``, ``ConsensusDecided``, ``WeightsLearned``
* ``config``: ``ConsensusConfig``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinywindow.core.lazy import lazy_exports

if TYPE_CHECKING:
    from tinywindow.consensus.config import ConsensusConfig
    from tinywindow.consensus.state import ConsensusBook
    from tinywindow.consensus.voting import Code, combine, decide, signals_table, update_weights

__all__ = ["Code", "ConsensusBook", "ConsensusConfig", "combine", "decide", "signals_table", "update_weights"]

_EXPORTS = {
    "Code": "tinywindow.consensus.voting",
    "ConsensusBook": "tinywindow.consensus.state",
    "ConsensusConfig": "tinywindow.consensus.config",
    "combine": "tinywindow.consensus.voting",
    "decide": "tinywindow.consensus.voting",
    "signals_table": "tinywindow.consensus.voting",
    "update_weights": "tinywindow.consensus.voting",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)
