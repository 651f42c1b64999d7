"""``ConsensusActor``: the agents' votes in, one SIGNALS table per decision time out.

* ``submit_votes(votes)``: a VOTES batch from any agent (validated where it enters).
* ``decide(ts)``: SIGNALS at ``ts`` (ns or anything pandas reads as a UTC time) from each
  agent's latest vote; missing or stale agents are left out (N-1 decide), every row says
  why it decided what it did.  Asking again for the same ``ts`` returns the same decision.
* ``on_votes(votes)``: ``submit_votes`` then ``decide`` at the batch's latest ``ts``.
* ``on_agent_votes(ts, *votes)``: the actor graph's form: each agent's VOTES ref resolved by
  Ray, decided at ``ts`` (``actors.graph``).
* ``preview(votes)``: SIGNALS (with their combined ``score``; ``consensus.mode`` vote or
  score) from these votes with the live weights and calibration,
  recording nothing: what ``POST /v1/signal`` and the gRPC Signal call answer (the same
  function ``decide`` uses, so the served signal is the traded signal).
* ``learn(outcomes)``: OUTCOMES (from ``PortfolioActor.outcomes_since``) score each agent's
  votes; the adaptive weights move, each voting agent gets its own outcome and reward (net
  of ``agents.cost``), calibration maps are refitted when due; returns the call's
  AGENT_OUTCOMES.  An outcome seen before is not learned again; its AGENT_OUTCOMES are
  returned again, so a call Ray retries after a restart (the first attempt journaled, its
  reply lost) returns what the first attempt did and the agents miss no feedback.
* ``agent_outcomes(agent, since_ts)``: journaled AGENT_OUTCOMES still in memory.
* ``weights()``, ``agent_stats()``, ``calibration()``, ``checkpoint()``, ``recovery()``.

The live consensus registers as a named actor (``LIVE_NAME`` in namespace
``LIVE_NAMESPACE``, see ``remote_consensus``), which the serving gateway looks up.

Votes, decisions and weight updates are journaled (signed) and checkpointed;
``__init__`` is the only recovery path (checkpoint + journal replay).  A plain class;
``remote_consensus`` applies ``ray.remote`` at the edge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from actors import metrics as engine_metrics
from actors.settings import SettingsParticipant, SettingsStage
from tinywindow.config import Config, build
from tinywindow.consensus.events import ConsensusSettingsChanged
from tinywindow.consensus.state import ConsensusBook
from tinywindow.contracts import VOTES, validate
from tinywindow.core.events import Event
from tinywindow.core.log import get_logger
from tinywindow.core.time import TimeLike, to_utc_ns
from tinywindow.crypto.keystore import KeyStore
from tinywindow.durability.recovery import open_durable
from tinywindow.errors import DataError


class ConsensusActor(SettingsParticipant):
    """One consensus, durable (see the module docstring).  Receives the root config at this
    boundary and hands the book its own section."""

    SETTINGS_EVENT = ConsensusSettingsChanged  # what ``settings_changes`` reads from the journal

    def __init__(
        self,
        cfg: Config | dict[str, Any],
        agents: Sequence[str],
        name: str = "consensus",
        *,
        passphrase: str | None = None,
        keystore: KeyStore | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.cfg = cfg if isinstance(cfg, Config) else build(cfg)
        self.name = name
        self.log = get_logger(f"consensus.{name}")
        self.book = ConsensusBook(self.cfg.consensus, agents, cost=self.cfg.agents.cost)
        self.durable, self._recovery = open_durable(
            self.cfg.crypto, self.cfg.data_dir, name, self.book, self.cfg.consensus.checkpoint_every,
            passphrase=passphrase, keystore=keystore, clock=clock,
        )
        self.book.on_commit = self._commit
        self._settings = SettingsStage("consensus", self.book, clock)

    def _commit(self, events: list[Event]) -> None:
        """Journal a call's events, then count its new decisions (replay commits nothing, so
        a restart counts none twice)."""
        self.durable.commit(events)
        engine_metrics.consensus_committed(self.cfg.run.name, self.name, events)

    def submit_votes(self, votes: pa.Table) -> int:
        return self.book.submit_votes(votes)

    def decide(self, ts: TimeLike) -> pa.Table:
        """SIGNALS at ``ts`` (ns, or any time ``to_utc_ns`` reads; naive is UTC)."""
        at = to_utc_ns(ts)
        if at is None:
            raise DataError("decide needs a time, got None")
        return self.book.decide(at)

    def on_votes(self, votes: pa.Table) -> pa.Table:
        """Submit a batch and decide at its latest timestamp."""
        t = validate(votes, VOTES, source=f"{self.name}.on_votes")
        self.book.submit_votes(t)
        if t.num_rows == 0:
            return self.book.signals_at(0, [])
        return self.book.decide(int(pc.max(t.column("ts").cast(pa.int64())).as_py()))

    def on_agent_votes(self, ts: int, *votes: pa.Table, after: Any = None) -> pa.Table:
        """The actor graph's call: every agent's VOTES for bar time ``ts`` (each agent's
        table as it arrived; rows for other times are left out), decided at ``ts``.  With no
        vote at ``ts`` the SIGNALS table is empty and nothing is recorded.  ``after``: the
        previous bar's ``learn`` result, unused: as a reference argument it makes Ray run this
        call only after that one (``actors.graph``)."""
        parts = [validate(v, VOTES, source=f"{self.name}.on_agent_votes") for v in votes]
        parts = [v.filter(pc.equal(v.column("ts").cast(pa.int64()), pa.scalar(int(ts), pa.int64()))) for v in parts]
        t = pa.concat_tables([v for v in parts if v.num_rows]) if any(v.num_rows for v in parts) else None
        if t is None:
            return self.book.signals_at(0, [])
        self.book.submit_votes(t)
        return self.book.decide(int(ts))

    def preview(self, votes: pa.Table) -> pa.Table:
        """SIGNALS for ``votes`` at their latest ts with the live weights and calibration
        (nothing recorded)."""
        return self.book.preview(votes)

    def learn(self, outcomes: pa.Table) -> pa.Table:
        """Learn from OUTCOMES; returns their AGENT_OUTCOMES (validated): learned now, or
        journaled when they were learned (a retry: the same table as the first attempt)."""
        return self.book.learn(outcomes)

    def agent_outcomes(self, agent: str | None = None, since_ts: TimeLike | None = None) -> pa.Table:
        """AGENT_OUTCOMES still in memory, of ``agent`` (None: all) from ``since_ts`` on."""
        return self.book.agent_outcome_rows(agent, None if since_ts is None else to_utc_ns(since_ts))

    def calibration(self) -> dict[str, dict[str, Any]]:
        """Each calibrated agent's map: fitted points and the outcomes it was fitted on."""
        return {a: {"x": list(c.x), "y": list(c.y), "samples": c.samples} for a, c in self.book.calibration.items()}

    def weights(self) -> dict[str, float]:
        return dict(self.book.weights)

    def agent_stats(self) -> dict[str, dict[str, float]]:
        """Per agent: weight, scored votes, hits and hit rate."""
        out = {}
        for a in self.book.agents:
            s = self.book.stats[a]
            out[a] = {"weight": self.book.weights[a], "scored": s["scored"], "hits": s["hits"],
                      "hit_rate": s["hits"] / s["scored"] if s["scored"] else float("nan")}
        return out

    def checkpoint(self) -> int:
        return self.durable.checkpoint()

    def recovery(self) -> dict[str, int]:
        r = self._recovery
        return {"checkpoint_seq": r.checkpoint_seq, "replayed": r.replayed, "journal_seq": r.journal_seq}

    def close(self) -> None:
        self.durable.close()


LIVE_NAME = "consensus"  # the named actor the serving gateway asks (``live_consensus``)
LIVE_NAMESPACE = "tinywindow"


def live_consensus() -> Any | None:
    """The live ConsensusActor's handle, or None when none runs (from any job or replica)."""
    import ray

    try:
        return ray.get_actor(LIVE_NAME, namespace=LIVE_NAMESPACE)
    except ValueError:
        return None


def remote_consensus(num_cpus: float = 0.05, live: bool = True, **options: Any) -> Any:
    """``ConsensusActor`` as a Ray actor class: small CPU, restarted on a crash, calls retried
    (idempotent: decisions are recorded per timestamp, outcomes learned once and a retried
    ``learn`` answers the first attempt's AGENT_OUTCOMES again).

    ``live``: register it as the live consensus (``LIVE_NAME``), whose weights and
    calibration the serving gateway decides with; if one is already registered, this one
    runs unregistered (logged) and the gateway keeps asking the first."""
    import ray

    opts = {"num_cpus": num_cpus, "max_restarts": -1, "max_task_retries": 3, **options}
    if live and "name" not in opts:
        if live_consensus() is None:
            opts.update(name=LIVE_NAME, namespace=LIVE_NAMESPACE)
        else:
            get_logger("consensus").warning("a live consensus is already registered; this one runs unregistered")
    return ray.remote(ConsensusActor).options(**opts)
