"""``AgentActor``: one trading agent as an actor (trains, versions, predicts, learns).

* ``train(features)``: train on a FEATURES table (or the attached data source's features),
  publish a signed version, serve it.
* ``predict(features)``: VOTES for a FEATURES table (pass an ObjectRef: Ray resolves it
  zero-copy); by the in-process predictor loaded from the registry, or, after
  ``attach_serving()``, through the agent's Ray Serve deployment (a DeploymentHandle).
* every new version (train, retrain, ``use``) is a model promotion: journaled (signed) and,
  when serving, put live on the deployment without downtime (``actors.serving.promote``).
* ``feedback(outcomes)``: realized outcomes into the experience buffer; when the retrain
  policy says one is due (every ``agents.retrain_every`` new outcomes) a retrain starts in
  the background while the current version keeps serving.
* ``retrain()``: a new version from the latest data, on the window the retrain policy plans
  (``tinywindow.models.retrain``: XGBoost refitted on everything with outcome sample
  weights, its manifest saying ``refit: true``; the RL agents fine-tuned on each symbol's
  latest ``agents.retrain_bars`` bars, feedback being their trigger, not their signal).
* ``versions()``, ``use(version)``, ``status()``, ``wait_idle()``.

Start-up is the one recovery path: the actor serves the newest version that verifies, so a
restarted actor is back where it was (the experience buffer is in memory; outcomes can be
re-sent from the portfolio journal).  The class is plain Python; ``remote_agent`` applies
``ray.remote`` at the edge with explicit small resources and a few threads, so ``predict``
answers while a retrain runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import pyarrow as pa

from tinywindow.config import Config, build
from tinywindow.core.log import get_logger
from tinywindow.crypto.journal import Journal
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import DataError, ModelError
from tinywindow.models.experience import ExperienceBuffer
from tinywindow.models.params import check_agent
from tinywindow.models.predictor import Predictor
from tinywindow.models.registry import ModelRegistry
from tinywindow.models.retrain import RetrainPolicy

FeatureSource = Callable[[], pa.Table]
SMALL_TABLE_BYTES = 4 * 1024**2  # below this, Arrow IPC bytes beat Ray's Table serialization


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
        auto_retrain: bool = True,
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
        self.buffer = ExperienceBuffer()
        self.retrain_policy = RetrainPolicy(self.agent, self.cfg.agents, auto=auto_retrain)
        self.overrides = dict(overrides or {})
        self.threads = threads
        self._features = self._wrap_source(data_source)
        self._last_features: pa.Table | None = None
        self._lock = threading.Lock()  # one training run at a time
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"retrain-{agent}")
        self._job: Future[dict[str, Any]] | None = None
        self._last_error: str | None = None
        self.predictor: Predictor | None = self._load_newest()
        self.journal = Journal.from_config(self.cfg.crypto, self.cfg.data_dir, f"agent-{self.agent}", store)
        self._journal_lock = threading.Lock()  # retrains run on a worker thread
        self.serve_app = serve_app
        self._handle: Any = None

    # ------------------------------------------------------------------ serving
    def attach_serving(self, app: str = "tinywindow") -> str | None:
        """Predict through this agent's Serve deployment (a DeploymentHandle) from now on,
        and put every new version live there.  Returns the version the deployment serves."""
        from ray import serve

        from actors.serving import model_deployment_name

        self.serve_app = app
        self._handle = serve.get_deployment_handle(model_deployment_name(self.agent), app)
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
    def _load_newest(self) -> Predictor | None:
        """The newest version that verifies (older ones are tried if the newest is refused)."""
        for info in reversed(self.registry.versions(self.agent)):
            if info.ok:
                return self.registry.load(self.agent, info.version)
            self.log.warning("skipping %s %s: %s", self.agent, info.version, info.status)
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
        return self._train(self._data(features), overrides, warm=False)

    def retrain(self, features: pa.Table | None = None) -> dict[str, Any]:
        """A new version from the latest data and the buffered outcomes (see module doc)."""
        return self._train(self._data(features), None, warm=True)

    def _train(self, features: pa.Table, overrides: dict[str, Any] | None, warm: bool) -> dict[str, Any]:
        from actors.training.train import train_agent

        with self._lock:
            t0 = time.perf_counter()
            serving = self.predictor
            plan = self.retrain_policy.plan(
                warm=warm, buffered=len(self.buffer), serving=serving.version if serving is not None else None
            )
            pending = self.buffer.pending
            result = train_agent(
                self.agent,
                features,
                self.cfg,
                registry=self.registry,
                overrides={**self.overrides, **(overrides or {})},
                outcomes=self.buffer.table() if plan.use_outcomes else None,
                init=serving if plan.init_from_serving else None,
                last_bars=plan.last_bars,
                threads=self.threads,
                parent=plan.parent,
                refit=plan.refit,
                extra_metadata={"feedback": {**self.buffer.stats(), "used_as": plan.feedback_use}},
            )
            assert result.version is not None
            self._last_features = _owned(features)
            self.predictor = self.registry.load(self.agent, result.version)  # serve what was signed
            self._promote(result.version, "retrain" if warm else "train")
            if plan.warm:
                self.buffer.mark_retrained(pending)
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

    def version(self) -> str | None:
        return None if self.predictor is None else self.predictor.version

    def versions(self) -> list[dict[str, Any]]:
        """Every stored version with its verification status and signed metrics."""
        out = []
        for info in self.registry.versions(self.agent):
            metrics = info.metadata.get("metrics", {}).get("validation", {}).get("ALL", {})
            out.append(
                {
                    "version": info.version,
                    "status": info.status,
                    "serving": self.predictor is not None and info.version == self.predictor.version,
                    "created": info.metadata.get("created"),
                    "parent": info.metadata.get("parent"),
                    "validation_sharpe": metrics.get("sharpe"),
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
        """Buffer realized outcomes; start a background retrain when enough are new."""
        new = self.buffer.add(outcomes)
        started = False
        has_data = self._features is not None or self._last_features is not None
        if self.retrain_policy.due(self.buffer.pending, has_data=has_data, busy=self._busy()):
            self._job = self._pool.submit(self._retrain_job)
            started = True
        return {"new": new, **self.buffer.stats(), "retrain_started": started}

    def _retrain_job(self) -> dict[str, Any]:
        try:
            out = self.retrain()
            self._last_error = None
            return out
        except Exception as exc:  # kept for status(); the serving version is unchanged
            self._last_error = f"{type(exc).__name__}: {exc}"
            self.log.error("background retrain failed: %s", self._last_error)
            raise

    def _busy(self) -> bool:
        return self._job is not None and not self._job.done()

    def wait_idle(self, timeout_s: float = 300.0) -> dict[str, Any]:
        """Wait for a background retrain (if any) to finish, up to ``timeout_s``."""
        job = self._job
        if job is not None:
            try:
                job.result(timeout=timeout_s)
            except FutureTimeout:
                pass
            except Exception:  # reported by status()
                pass
        return self.status()

    def status(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "version": self.version(),
            "serving": self.serve_app,
            "retraining": self._busy(),
            "last_error": self._last_error,
            "experience": self.buffer.stats(),
        }


def _owned(table: pa.Table) -> pa.Table:
    """A copy in this process's memory: a zero-copy view would pin its object-store object
    for as long as the actor keeps it."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return pa.ipc.open_stream(sink.getvalue()).read_all()


def remote_agent(num_cpus: float = 0.25, **options: Any) -> Any:
    """``AgentActor`` as a Ray actor class: explicit small CPU share, a few threads (predict
    and status answer while a retrain runs)."""
    import ray

    opts = {"num_cpus": num_cpus, "max_concurrency": 4, **options}
    return ray.remote(AgentActor).options(**opts)

