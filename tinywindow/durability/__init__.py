"""Durability of event-sourced state.

* ``eventsourced``: the ``EventSourced`` base (record, commit, apply by event type,
  snapshot/restore) that the trading engine and the consensus book share; exported here.
* ``recovery``: ``DurableState`` (signed journal + encrypted checkpoints, one start-up path
  that is also the recovery path) and ``open_durable``, the actors' start-up.  Import them
  from ``tinywindow.durability.recovery``: it depends on ``tinywindow.crypto``, and this
  package, reached from every event-sourced state, stays free of it (no import cycle back
  through the root config).
"""

from __future__ import annotations

from tinywindow.durability.eventsourced import CommitHook, EventSourced, applies

__all__ = ["CommitHook", "EventSourced", "applies"]
