"""A retrain as a challenger for the promotion gate (``tinywindow.models.promotion``).

``train_challenger`` cuts the features it is given (never a bar after the retrain point: the
caller passes the features up to it) into a training part and the gate window, trains the
challenger on the training part with the agent's own realized outcomes applied, scores the
challenger and the serving champion on the gate window the same way and publishes the
challenger with its *own* scores (``metrics.validation`` on the gate window, and both gate
scores under ``metrics.gate``) and the gate's decision (``promotion``: a pure function of
the two scores and ``agents.promotion``, so it is known and signed at publish time).  The
caller applies it at the decision bar (``AgentActor.finish_retrain``) and journals it; a
rejected version stays stored, not served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from actors.training.train import TrainResult, fit, scores_json, set_threads, training_series
from tinywindow.config import Config
from tinywindow.models import promotion
from tinywindow.models.evaluation import walkforward as wf
from tinywindow.models.params import PPOParams, resolve
from tinywindow.models.predictor import Predictor
from tinywindow.models.registry import ModelRegistry, registry_root
from tinywindow.models.retrain import TrainPlan
from tinywindow.models.windows import data_range, feature_names, fit_normalizer


@dataclass
class Challenger:
    result: TrainResult
    champion: promotion.GateScore | None
    challenger: promotion.GateScore
    decision: promotion.Decision


def train_challenger(
    agent: str,
    features: pa.Table,
    cfg: Config,
    plan: TrainPlan,
    *,
    champion: Predictor | None,
    outcomes: pa.Table | None,
    registry: ModelRegistry | None = None,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    threads: int = 1,
    extra_metadata: Mapping[str, Any] | None = None,
) -> Challenger:
    """Train, score and publish a challenger (see the module docstring)."""
    set_threads(threads)
    seed = cfg.agents.seed if seed is None else seed
    series = training_series(features, cfg.agents)
    split = promotion.gate_split(series, cfg.agents)
    train = wf.training_part(series, split)
    if plan.last_bars is not None:
        train = [s.tail(plan.last_bars) for s in train]
    init = champion if plan.init_from_serving else None
    # a fine-tune keeps the scale its weights were learned on
    normalizer = init.normalizer if init is not None else fit_normalizer(train, feature_names(features))
    params = resolve(agent, cfg.agents, registry_root(cfg.agents, cfg.data_dir), overrides,
                     keys=None if registry is None else registry.signer)
    if plan.max_iterations is not None and isinstance(params, PPOParams):
        params = params.model_copy(update={"iterations": min(params.iterations, plan.max_iterations)})
    predictor, stats = fit(agent, train, normalizer, cfg.agents, params, seed, outcomes=outcomes, init=init, threads=threads)
    vset = wf.ValidationSet.build(series, split, cfg.agents.window)
    own = promotion.score(vset, predictor, cfg.agents.cost)
    champ = None if champion is None else promotion.score(vset, champion, cfg.agents.cost)
    decision = promotion.decide(champ, own, cfg.agents.promotion)
    metadata = {
        "data": {"train": data_range(train), "validation": split.to_json(), "features": list(normalizer.names),
                 "retrain_point": data_range(series)["end"]},
        "config": {"agents": cfg.agents.model_dump(mode="json"), "params": params.model_dump()},
        "metrics": {
            "validation": scores_json(vset.evaluate(predictor, cfg.agents.cost)),
            "buy_and_hold": scores_json(vset.buy_and_hold(cfg.agents.cost)),
            "gate": {"window": split.to_json(), "challenger": own.to_json(),
                     "champion": None if champ is None else champ.to_json()},
        },
        "train": stats,
        "seed": seed,
        "parent": plan.parent,
        "promotion": {"promote": decision.promote, "reason": decision.reason, "metric": decision.metric},
        **dict(extra_metadata or {}),
    }
    version = registry.publish(predictor, metadata) if registry is not None else None
    own = replace(own, version=version)
    decision = replace(decision, challenger=own)
    return Challenger(TrainResult(agent, predictor, version, metadata), champ, own, decision)
