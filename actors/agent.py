"""``AgentActor``: one trading agent as an actor (trains, versions, predicts, learns).

* ``train(features)``: train on a FEATURES table (or the attached data source's features),
  publish a signed version, serve it.
* ``explain(features, keys)``: EXPLANATIONS of the serving version's votes on those
  (symbol, ts) rows (``tinywindow.models.explain``), for the decisions that trade.
  ``explain_and_record(features, keys)`` journals them (``explanations``,
  ``tinywindow.models.events``), once per (symbol, ts, version): the trading paths call it
  for the keys of each bar's ORDERS, and ``tinywindow.records`` reads them back.
* ``predict(features)``: VOTES for a FEATURES table (pass an ObjectRef: Ray resolves it
  zero-copy); by the in-process predictor loaded from the registry, or, after
  ``attach_serving()``, through the agent's Ray Serve deployment (a DeploymentHandle).
* every version that goes live (train, a promoted retrain, ``use``) is journaled (signed,
  ``model_promotion``) and, when serving, put live on the deployment without downtime
  (``actors.serving.promote``).
* ``feedback(agent_outcomes)``: this agent's own AGENT_OUTCOMES rows (another agent's row is
  refused) are journaled (``outcomes``) and buffered (``tinywindow.models.experience``), once
  per (symbol, ts): rows of a key already received are skipped (a retried call journals
  nothing twice).
* ``start_retrain(features)`` / ``finish_retrain()``: the caller (``actors.pipeline``) starts
  a retrain at a fixed bar with the features up to that bar; it runs on a worker thread with
  a snapshot of the buffer and of the serving champion while ``predict`` keeps answering.
  ``finish_retrain`` waits for it (its error is raised), applies the promotion gate's
  decision (``tinywindow.models.promotion``), journals it with both scores
  (``promotion_decision``) and serves the challenger only if it was promoted.  Nothing
  happens on a timer: which version votes on which bar depends only on the bar clock.
  ``retrain(features)`` is both at once.  A retrain runs in the actor's memory: if the actor
  restarts before ``finish_retrain`` (its node lost), the retrain is lost, and
  ``finish_retrain`` on the restarted actor journals and returns a "not promoted" decision
  (``RETRAIN_LOST``; ``challenger`` and ``champion`` None); retried after its decision was
  journaled, it returns that decision again.
* ``versions()``, ``history()``, ``use(version)``, ``status()``.

Start-up is the one recovery path: the experience buffer is rebuilt from the journal's
``outcomes`` records, the decisions already explained from its ``explanations`` records, a
retrain started and not decided (``retrain_started``) is known lost, and the actor serves the
version its journal last put live if that verifies, else the newest verified version the gate
did not reject.  The class is plain Python; ``remote_agent`` applies ``ray.remote`` at the
edge with explicit small resources and a few threads, so ``predict`` answers while a retrain
runs, and makes it restartable: every method the graph and the pipeline call is safe to run
twice (``predict`` and ``explain`` are pure, ``explain_and_record`` and ``feedback`` skip what
the journal has).  A restarted actor predicts in-process, not through Serve (the handle is not
re-acquired), with the version its journal last put live, which is the one the deployment
was last told to serve; it still puts later versions live on the app its journal names
(``serving_attached``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from actors import metrics as engine_metrics
from tinywindow.config import Config, build
from tinywindow.core.codec import CODEC
from tinywindow.core.log import get_logger
from tinywindow.crypto.journal import Journal
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import DataError, ModelError, TransientError
from tinywindow.models.events import ExplanationsRecorded, explanation_rows
from tinywindow.models.experience import ExperienceBuffer, from_rows, to_rows
from tinywindow.models.params import check_agent
from tinywindow.models.predictor import Predictor
from tinywindow.models.registry import ModelRegistry, VersionInfo
from tinywindow.models.retrain import RetrainPolicy, TrainPlan

if TYPE_CHECKING:
    from actors.training.challenger import Challenger

FeatureSource = Callable[[], pa.Table]
EXPLAINED_PER_BAR = 20  # decisions explained per bar: a bar with more orders explains the first symbols
SMALL_TABLE_BYTES = 4 * 1024**2  # below this, Arrow IPC bytes beat Ray's Table serialization
RETRAIN_LOST = "retrain lost with the actor's restart: not promoted"  # finish_retrain's reason then


def _is_ray_handle(obj: Any) -> bool:
    return hasattr(obj, "_actor_id")


class AgentActor:
    def __init__(
        self,
        agent: str,
        cfg: Config | dict[str, Any],
        *,
        passphrase: str | None = None,
        keystore: KeyStore | None = None,
        data_source: Any = None,
        overrides: dict[str, Any] | None = None,
        threads: int = 1,
        serve_app: str | None = None,
    ) -> None:
        from tinywindow.crypto import open_keystore

        self.agent = check_agent(agent)
        self.cfg = cfg if isinstance(cfg, Config) else build(cfg)
        self.log = get_logger(f"agent.{agent}")
        store = keystore if keystore is not None else open_keystore(self.cfg.crypto, self.cfg.data_dir, passphrase)
        self.registry = ModelRegistry.from_config(self.cfg.agents, self.cfg.crypto, self.cfg.data_dir, store)
        self.journal = Journal.from_config(self.cfg.crypto, self.cfg.data_dir, f"agent-{self.agent}", store)
        self._journal_lock = threading.Lock()  # retrains run on a worker thread
        self._state_lock = threading.Lock()  # the buffer and the retrain job
        self.buffer = ExperienceBuffer(self.agent)
        self._explained: set[tuple[str, int, str]] = set()  # (symbol, ts, version) journaled
        self._explain_lock = threading.Lock()
        self.retrain_policy = RetrainPolicy(self.agent, self.cfg.agents)
        self.overrides = dict(overrides or {})
        self.threads = threads
        self._features = self._wrap_source(data_source)
        self._last_features: pa.Table | None = None
        self._lock = threading.Lock()  # one training run at a time
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"retrain-{agent}")
        self._job: Future[Challenger] | None = None
        self._last_error: str | None = None
        self._fed: set[tuple[str, int]] = set()  # (symbol, ts) of the outcomes journaled (feedback)
        # a retrain a previous incarnation started and did not decide (the journal's
        # ``retrain_started`` payload), and the decision of one it did decide (a retried
        # ``finish_retrain`` returns it): both rebuilt by ``_start_up``
        self._lost_retrain: dict[str, Any] | None = None
        self._decided: dict[str, Any] | None = None
        self.serve_app = serve_app
        self._actor_id = _actor_id()  # the same across this actor's restarts; None in-process
        self.predictor: Predictor | None = self._start_up()  # the one recovery path
        self._handle: Any = None

    # ------------------------------------------------------------------ serving
    def attach_serving(self, app: str = "tinywindow") -> str | None:
        """Predict through this agent's Serve deployment (a DeploymentHandle) from now on,
        and put every new version live there.  Returns the version the deployment serves."""
        from ray import serve

        from actors.serving import model_deployment_name

        self.serve_app = app
        self._handle = serve.get_deployment_handle(model_deployment_name(self.agent), app)
        with self._journal_lock:  # this actor, restarted, puts its later versions live there too
            self.journal.append("serving_attached", {"agent": self.agent, "app": app, "actor": self._actor_id})
        status: dict[str, Any] = self._handle.status.remote().result()
        return status.get("version")

    def _promote(self, version: str, reason: str) -> None:
        """Journal a model promotion and, when serving, make the version live there."""
        with self._journal_lock:
            self.journal.append("model_promotion", {"agent": self.agent, "version": version, "reason": reason,
                                                    "served": self.serve_app is not None})
        if self.serve_app is not None:
            from actors.serving import promote

            promote(self.agent, version, self.serve_app)

    # ------------------------------------------------------------------ start-up
    def _start_up(self) -> Predictor | None:
        """Rebuild the buffer from the journal; load the version to serve (module docstring)."""
        served: str | None = None
        started: dict[str, Any] | None = None  # the retrain started last, until decided
        for record in self.journal.records():
            if record.kind == "outcomes":
                self.buffer.add(from_rows(record.payload["rows"]))
                self._fed |= {(str(r[0]), int(r[1])) for r in record.payload["rows"]}
            elif record.kind == "model_promotion":
                served = record.payload["version"]
            elif record.kind == ExplanationsRecorded.KIND:
                self._explained |= CODEC.decode_as(ExplanationsRecorded, record.payload).keys()
            elif record.kind == "retrain_started":
                started, self._decided = record.payload, None
            elif record.kind == "promotion_decision":
                # answered again only to a retry: the decision of a retrain this actor started
                # in a previous incarnation (the same actor id across restarts)
                mine = started is not None and self._actor_id is not None and started.get("actor") == self._actor_id
                self._decided = record.payload if mine else None
                started = None
            elif record.kind == "retrain_failed":
                started, self._decided = None, None
            elif record.kind == "serving_attached" and self._actor_id is not None \
                    and record.payload.get("actor") == self._actor_id:
                self.serve_app = self.serve_app or record.payload["app"]  # attached before a restart
        self._lost_retrain = started  # started by this actor before a restart, or by an earlier one
        infos = self.registry.versions(self.agent)
        if served is not None:
            for info in infos:
                if info.version == served and info.ok:
                    return self.registry.load(self.agent, served)
            self.log.warning("journaled serving version %s %s does not verify", self.agent, served)
        for info in reversed(infos):
            if info.ok and not _rejected(info):
                return self.registry.load(self.agent, info.version)
            self.log.warning("skipping %s %s: %s", self.agent, info.version, "rejected" if info.ok else info.status)
        return None

    @staticmethod
    def _wrap_source(source: Any) -> FeatureSource | None:
        if source is None:
            return None
        if _is_ray_handle(source):
            import ray

            return lambda: ray.get(source.features.remote())
        if callable(source):
            return source  # type: ignore[no-any-return]
        raise TypeError("data_source must be a DataSourceActor handle or a callable returning FEATURES")

    def _data(self, features: pa.Table | None) -> pa.Table:
        if features is not None:
            return features
        if self._features is not None:
            return self._features()
        if self._last_features is not None:
            return self._last_features
        raise DataError(f"agent {self.agent}: no features to train on (pass a table or attach a data source)")

    # ------------------------------------------------------------------ training
    def train(self, features: pa.Table | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train from scratch, publish a new version and serve it."""
        return self._train(self._data(features), overrides)

    def _train(self, features: pa.Table, overrides: dict[str, Any] | None) -> dict[str, Any]:
        from actors.training.train import train_agent

        with self._lock:
            t0 = time.perf_counter()
            with self._state_lock:
                outcomes = self.buffer.table() if len(self.buffer) else None
            result = train_agent(
                self.agent,
                features,
                self.cfg,
                registry=self.registry,
                overrides={**self.overrides, **(overrides or {})},
                outcomes=outcomes,
                threads=self.threads,
            )
            assert result.version is not None
            self._last_features = _owned(features)
            self.predictor = self.registry.load(self.agent, result.version)  # serve what was signed
            self._promote(result.version, "train")
            validation = result.metadata["metrics"]["validation"]["ALL"]
            self.log.info("%s %s published (validation Sharpe %s)", self.agent, result.version, validation["sharpe"])
            return {
                "agent": self.agent,
                "version": result.version,
                "parent": result.metadata.get("parent"),
                "seconds": round(time.perf_counter() - t0, 2),
                "validation": validation,
                "buy_and_hold": result.metadata["metrics"]["buy_and_hold"]["ALL"],
                "data": result.metadata["data"],
                "train": result.metadata["train"],
            }

    # ------------------------------------------------------------------ retraining
    def start_retrain(self, features: pa.Table | None = None) -> dict[str, Any]:
        """Start a challenger on ``features`` (which must end at the retrain point) with a
        snapshot of the buffered outcomes and of the serving champion; returns at once."""
        with self._state_lock:
            if self._job is not None:
                raise ModelError(f"agent {self.agent}: a retrain is already in flight (call finish_retrain first)")
            if self._lost_retrain is not None:  # lost before a restart and never finished: close it
                self._retrain_lost()
            data = _owned(self._data(features))
            champion = self.predictor
            plan = self.retrain_policy.plan(warm=True, serving=None if champion is None else champion.version)
            outcomes = self.buffer.table()
            with self._journal_lock:  # a restart before finish_retrain then knows it lost one
                self.journal.append("retrain_started", {"agent": self.agent, "parent": plan.parent,
                                                        "outcomes": outcomes.num_rows, "actor": self._actor_id})
            self._decided = None
            self._job = self._pool.submit(self._challenger, data, plan, champion, outcomes)
        engine_metrics.retrain_started(self.cfg.run.name, self.agent)
        return {"agent": self.agent, "parent": plan.parent, "outcomes": outcomes.num_rows}

    def _challenger(self, features: pa.Table, plan: TrainPlan, champion: Predictor | None, outcomes: pa.Table) -> Challenger:
        from actors.training.challenger import train_challenger

        with self._lock:
            t0 = time.perf_counter()
            out = train_challenger(
                self.agent, features, self.cfg, plan, champion=champion, outcomes=outcomes if outcomes.num_rows else None,
                registry=self.registry, overrides=self.overrides, threads=self.threads,
            )
            out.result.metadata["seconds"] = round(time.perf_counter() - t0, 2)
            self._last_features = features
            return out

    def finish_retrain(self, timeout_s: float = 900.0) -> dict[str, Any]:
        """Wait for the retrain in flight (its error is raised here), apply and journal the
        gate's decision; returns it with both scores.  On a restarted actor (see the module
        docstring): the lost retrain's "not promoted" decision, or the decision its previous
        incarnation journaled (Ray's retry of this call)."""
        job = self._job
        if job is None:
            if self._lost_retrain is not None:
                return self._retrain_lost()
            if self._decided is not None:
                decided, self._decided = self._decided, None  # answered once
                return {**decided, "serving": self.version(), "seconds": None, "train": {}}
            raise ModelError(f"agent {self.agent}: no retrain in flight")
        try:
            ch = job.result(timeout=timeout_s)
        except FutureTimeout:
            raise TransientError(f"agent {self.agent}: retrain still running after {timeout_s}s") from None
        except Exception as exc:
            self._job = None
            self._last_error = f"{type(exc).__name__}: {exc}"
            with self._journal_lock:  # closes the retrain_started record: nothing lost on a restart
                self.journal.append("retrain_failed", {"agent": self.agent, "error": self._last_error[:500]})
            raise
        self._job = None
        self._last_error = None
        d = ch.decision
        meta = ch.result.metadata
        record = {
            "agent": self.agent,
            "version": ch.result.version,
            "parent": meta.get("parent"),
            **d.to_json(),
            "gate_window": meta["metrics"]["gate"]["window"],
            "outcomes": meta["train"].get("outcomes"),
        }
        with self._journal_lock:
            self.journal.append("promotion_decision", record)
        engine_metrics.promotion_decided(self.cfg.run.name, self.agent, d.promote)
        if d.promote:
            assert ch.result.version is not None
            self.predictor = self.registry.load(self.agent, ch.result.version)
            self._promote(ch.result.version, "gate")
        self.log.info("%s %s %s: %s", self.agent, ch.result.version, "promoted" if d.promote else "rejected", d.reason)
        return {**record, "serving": self.version(), "seconds": meta.get("seconds"), "train": meta["train"]}

    def _retrain_lost(self) -> dict[str, Any]:
        """Journal (as a rejection) and return the decision on a retrain lost with a restart."""
        started = self._lost_retrain or {}
        record = {
            "agent": self.agent, "version": None, "parent": started.get("parent"), "promote": False,
            "reason": RETRAIN_LOST, "metric": self.cfg.agents.promotion.metric, "champion": None,
            "challenger": None, "gate_window": None, "outcomes": None,
        }
        with self._journal_lock:
            self.journal.append("promotion_decision", record)
        self._lost_retrain, self._decided = None, None
        engine_metrics.promotion_decided(self.cfg.run.name, self.agent, False)
        self.log.warning("%s: %s", self.agent, RETRAIN_LOST)
        return {**record, "serving": self.version(), "seconds": None, "train": {}}

    def retrain(self, features: pa.Table | None = None) -> dict[str, Any]:
        """``start_retrain`` then ``finish_retrain``: a gated new version from ``features``."""
        self.start_retrain(features)
        return self.finish_retrain()

    def history(self) -> list[dict[str, Any]]:
        """Every journaled promotion decision, oldest first."""
        with self._journal_lock:
            return [r.payload for r in self.journal.records() if r.kind == "promotion_decision"]

    # ------------------------------------------------------------------ serving
    def predict(self, features: pa.Table, latest_only: bool = False) -> pa.Table:
        """VOTES of the serving version (ModelError before the first training).

        With ``attach_serving`` the call goes through the agent's Serve deployment: small
        tables as Arrow IPC bytes, large ones as Tables (they travel zero-copy)."""
        if self._handle is not None:
            if features.nbytes <= SMALL_TABLE_BYTES:
                from tinywindow.serving.payload import from_ipc, to_ipc

                return from_ipc(self._handle.predict_ipc.remote(to_ipc(features), latest_only).result())
            result: pa.Table = self._handle.predict.remote(features, latest_only).result()
            return result
        predictor = self.predictor
        if predictor is None:
            raise ModelError(f"agent {self.agent} has no trained version yet (call train())")
        return predictor.predict(features, latest_only=latest_only)

    def explain(self, features: pa.Table, keys: list[tuple[str, int]], top_k: int = 5) -> pa.Table:
        """EXPLANATIONS of the serving version's votes on the (symbol, ts_ns) ``keys`` rows of
        ``features`` (``tinywindow.models.explain``): call it for decisions that trade only.
        With ``attach_serving`` the deployment explains (it serves the same version)."""
        if self._handle is not None:
            from tinywindow.serving.payload import from_ipc, to_ipc

            return from_ipc(self._handle.explain_ipc.remote(to_ipc(features), list(keys), top_k).result())
        predictor = self.predictor
        if predictor is None:
            raise ModelError(f"agent {self.agent} has no trained version yet (call train())")
        from tinywindow.models.explain import explain

        return explain(predictor, features, keys, top_k)

    def explain_and_record(self, features: pa.Table, keys: Any, top_k: int = 5) -> int:
        """``explain`` the serving version's votes on ``keys`` (a list of (symbol, ts_ns), or a
        table with ``symbol`` and ``ts`` columns: a bar's ORDERS) and journal the decisions not
        yet journaled for this version; returns the rows journaled (0 for a replayed bar).
        At most ``EXPLAINED_PER_BAR`` symbols per ts, the first by symbol.  A key this agent
        did not vote on (no full window) has no explanation."""
        wanted = _capped(_keys(keys))
        with self._explain_lock:  # the check and the record are one step: nothing journaled twice
            version = self.version()
            if version is None:
                return 0
            fresh = [k for k in wanted if (k[0], k[1], version) not in self._explained]
            if not fresh:
                return 0
            rows = explanation_rows(self.explain(features, fresh, top_k))
            event = ExplanationsRecorded(self.agent, rows)
            if rows:
                with self._journal_lock:
                    self.journal.append(*CODEC.encode(event))
            self._explained |= {(s, ts, version) for s, ts in fresh} | event.keys()
            return len(rows)

    def version(self) -> str | None:
        return None if self.predictor is None else self.predictor.version

    def versions(self) -> list[dict[str, Any]]:
        """Every stored version with its verification status, signed metrics and gate result."""
        out = []
        for info in self.registry.versions(self.agent):
            metrics = info.metadata.get("metrics", {}).get("validation", {}).get("ALL", {})
            gate = info.metadata.get("metrics", {}).get("gate") or {}
            out.append(
                {
                    "version": info.version,
                    "status": info.status,
                    "serving": self.predictor is not None and info.version == self.predictor.version,
                    "created": info.metadata.get("created"),
                    "parent": info.metadata.get("parent"),
                    "validation_sharpe": metrics.get("sharpe"),
                    "promotion": info.metadata.get("promotion"),
                    "gate": {k: gate.get(k) for k in ("challenger", "champion")} if gate else None,
                    "data": info.metadata.get("data", {}).get("train"),
                }
            )
        return out

    def use(self, version: str) -> str:
        """Serve another (verified) version, e.g. to roll back."""
        predictor = self.registry.load(self.agent, version)
        self.predictor = predictor
        self._promote(predictor.version, "use")
        return predictor.version

    # ------------------------------------------------------------------ learning
    def feedback(self, outcomes: pa.Table) -> dict[str, Any]:
        """Buffer and journal this agent's AGENT_OUTCOMES (DataError for another agent's row).

        Idempotent by (symbol, ts): rows of a key received before are skipped, so Ray's retry
        of a call the previous incarnation journaled (or outcomes sent again) journals and
        counts nothing twice."""
        with self._state_lock:
            rows = to_rows(outcomes)  # validated against the contract
            if any(r[2] != self.agent for r in rows):
                self.buffer.add(outcomes)  # refuses the whole batch, naming the first foreign row
            fresh = [r for r in rows if (r[0], r[1]) not in self._fed]
            new = self.buffer.add(from_rows(fresh) if len(fresh) < len(rows) else outcomes)
            if fresh:
                with self._journal_lock:
                    self.journal.append("outcomes", {"agent": self.agent, "rows": fresh})
                self._fed |= {(r[0], r[1]) for r in fresh}
                if len(self._fed) > 2 * self.buffer.capacity:  # bounded: the keys the buffer still holds
                    held = self.buffer.table()
                    self._fed = set(zip(held.column("symbol").to_pylist(),
                                        held.column("ts").cast(pa.int64()).to_pylist(), strict=True))
            return {"new": new, **self.buffer.stats()}

    def feedback_own(self, agent_outcomes: pa.Table) -> dict[str, Any]:
        """``feedback`` with this agent's rows of a whole AGENT_OUTCOMES table (the actor
        graph passes ``ConsensusActor.learn``'s result to every agent by reference)."""
        import pyarrow.compute as pc

        return self.feedback(agent_outcomes.filter(pc.equal(agent_outcomes.column("agent"), self.agent)))

    def experience(self) -> pa.Table:
        """The buffered outcomes (AGENT_OUTCOMES ordered by (ts, symbol)): what retrains learn from."""
        with self._state_lock:
            return self.buffer.table()

    def status(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "version": self.version(),
            "serving": self.serve_app,
            "retraining": self._job is not None,
            "retrain_lost": self._lost_retrain is not None,
            "last_error": self._last_error,
            "experience": self.buffer.stats(),
        }


def _actor_id() -> str | None:
    """The Ray actor this runs in (its id stays the same across restarts); None in-process."""
    try:
        import ray

        return ray.get_runtime_context().get_actor_id() if ray.is_initialized() else None
    except Exception:  # no Ray worker here: a plain in-process object
        return None


def _keys(keys: Any) -> list[tuple[str, int]]:
    """(symbol, ts_ns) pairs of a key list or of a table's ``symbol`` and ``ts`` columns."""
    if isinstance(keys, pa.Table):
        ts = keys.column("ts").cast(pa.int64()).to_pylist()
        return [(str(s), int(t)) for s, t in zip(keys.column("symbol").to_pylist(), ts, strict=True)]
    return [(str(s), int(t)) for s, t in keys]


def _capped(keys: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The distinct keys, sorted, at most ``EXPLAINED_PER_BAR`` per ts (the first symbols)."""
    out: list[tuple[str, int]] = []
    per_ts: dict[int, int] = {}
    for s, ts in sorted(set(keys), key=lambda k: (k[1], k[0])):
        if per_ts.get(ts, 0) < EXPLAINED_PER_BAR:
            per_ts[ts] = per_ts.get(ts, 0) + 1
            out.append((s, ts))
    return out


def _rejected(info: VersionInfo) -> bool:
    """Whether the promotion gate rejected this version (signed in its manifest)."""
    return info.metadata.get("promotion", {}).get("promote") is False


def _owned(table: pa.Table) -> pa.Table:
    """A copy in this process's memory: a zero-copy view would pin its object-store object
    for as long as the actor keeps it."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return pa.ipc.open_stream(sink.getvalue()).read_all()


def remote_agent(num_cpus: float = 0.25, **options: Any) -> Any:
    """``AgentActor`` as a Ray actor class: explicit small CPU share, a few threads (predict
    and status answer while a retrain runs), restarted on a crash (its node lost: agents get
    their own nodes, the likeliest loss) with its calls retried, as the consensus and the
    portfolio are: every call is safe to run twice (module docstring)."""
    import ray

    opts = {"num_cpus": num_cpus, "max_concurrency": 4, "max_restarts": -1, "max_task_retries": 3, **options}
    return ray.remote(AgentActor).options(**opts)

