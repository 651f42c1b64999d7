"""Training entry points: one agent on a FEATURES table, walk-forward, and the demo run.

``train_agent`` holds out the most recent ``agents.valid_bars`` (after an embargo), trains on
what precedes them, scores the model out of sample and publishes it with those numbers in
its signed manifest: the metrics recorded for a version describe exactly that version.

The RL agents train with RLlib PPO (``actors.training.ppo``), which is why these entry points
live here and not in ``tinywindow.models``; XGBoost trains with ``tinywindow.models.xgb``.
Budgets: parameters come from ``params.resolve`` (config < tuned file < overrides);
``tinywindow.models.params.DEMO_BUDGET`` and ``TEST_BUDGET`` are such overrides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from tinywindow.config import Config
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import DataError
from tinywindow.models.config import AgentConfig
from tinywindow.models.evaluation import walkforward as wf
from tinywindow.models.evaluation.scoring import Score
from tinywindow.models.learning import apply_outcomes
from tinywindow.models.params import (
    AGENTS,
    DEMO_BUDGET,
    RL_AGENTS,
    PPOParams,
    XGBParams,
    check_agent,
    resolve,
)
from tinywindow.models.predictor import Predictor
from tinywindow.models.registry import ModelRegistry, registry_root
from tinywindow.models.windows import (
    Normalizer,
    Series,
    data_range,
    feature_names,
    fit_normalizer,
    to_series,
)

BUNDLED = ("sp500", "nasdaq", "goog")
DEMO_FIRST_TRAIN_END = "2011-01-01"


def bundled_features(datasets: Sequence[str] = BUNDLED) -> pa.Table:
    """FEATURES of the bundled real datasets (validated on the way in)."""
    from tinywindow.data import features
    from tinywindow.data.sources.bundled import BundledSource

    return features.compute(BundledSource("bundled", datasets).table())


def training_series(features: pa.Table, agents: AgentConfig) -> list[Series]:
    """The series an agent learns from.  With ``agents.cross_sectional`` the features are
    rank-normalised across each bar's symbols (the transform its predictor applies before
    voting) while the forward returns - the labels, the env's rewards, the validation's
    P&L - stay the real returns of the raw table."""
    raw = to_series(features)
    if not agents.cross_sectional:
        return raw
    from dataclasses import replace

    from tinywindow.models.xs import xs_normalize

    ranked = to_series(xs_normalize(features))
    return [replace(x, fwd_ret=r.fwd_ret) for x, r in zip(ranked, raw, strict=True)]


def set_threads(threads: int) -> None:
    """Threads torch may use in this process (RLlib's learner and inference)."""
    import torch

    torch.set_num_threads(max(1, int(threads)))


def embargo(agents: AgentConfig) -> int:
    """Bars between training and validation: ``agents.embargo_bars``, or the window."""
    return agents.window if agents.embargo_bars is None else agents.embargo_bars


def fit(
    agent: str,
    train: list[Series],
    normalizer: Normalizer,
    agents: AgentConfig,
    params: PPOParams | XGBParams,
    seed: int,
    *,
    outcomes: pa.Table | None = None,
    init: Predictor | None = None,
    threads: int = 1,
) -> tuple[Predictor, dict[str, Any]]:
    """Train one model on ``train`` (already cut); returns it and training statistics.

    ``outcomes`` (AGENT_OUTCOMES of this agent) are applied to the training rows they match
    (``tinywindow.models.learning``); the statistics say how many matched and how they were
    used."""
    matched = apply_outcomes(train, outcomes, params.outcome_weight_cap)
    weights = matched.weights if matched.matched else None
    if check_agent(agent) in RL_AGENTS:
        from actors.training.ppo import train_ppo
        from tinywindow.models.rl.inference import RLPredictor

        assert isinstance(params, PPOParams)
        if agents.cross_sectional:
            if len(matched.series) < 2:
                raise DataError(f"agents.cross_sectional: {agent} needs at least 2 symbols to rank, got {len(matched.series)}")
            # an episode holds one symbol per sub-env: a small universe gets fewer sub-envs
            params = params.model_copy(update={"num_envs": min(params.num_envs, len(matched.series))})
        warm = None
        wanted = {**params.model_config_dict(), **({"cross_sectional": True} if agents.cross_sectional else {})}
        if isinstance(init, RLPredictor) and init.agent == agent and init.model_config == wanted:
            warm = init.weights()
        rl, stats = train_ppo(
            agent, matched.series, normalizer, agents.window, agents.cost, params, seed, init_weights=warm, weights=weights,
            cross_sectional=agents.cross_sectional,
        )
        return rl, {**stats.to_json(), "warm_start": warm is not None,
                    "outcomes": matched.to_json("realized returns and reward weights of traded bars")}
    from tinywindow.models.xgb.train import train_xgb

    assert isinstance(params, XGBParams)
    if agents.cross_sectional:
        from tinywindow.models.xgb.xs import train_xgb_xs

        ranker, xs_stats = train_xgb_xs(matched.series, normalizer, agents.window, params, seed, weights=weights, threads=threads)
        return ranker, {**xs_stats, "outcomes": matched.to_json("forward returns of traded bars and sample weights")}
    model, xgb_stats = train_xgb(matched.series, normalizer, agents.window, params, seed, weights=weights, threads=threads)
    return model, {**xgb_stats, "outcomes": matched.to_json("labels (sign of realized return) and sample weights")}


def scores_json(scores: Mapping[str, Score]) -> dict[str, Any]:
    return {sym: sc.to_json() for sym, sc in scores.items()}


@dataclass
class TrainResult:
    agent: str
    predictor: Predictor
    version: str | None
    metadata: dict[str, Any]


def holdout_split(series: Sequence[Series], agents: AgentConfig) -> wf.Split:
    """The last ``valid_bars`` of the calendar, after an embargo, as validation."""
    cal = wf.calendar(series)
    need = agents.valid_bars + embargo(agents)
    if len(cal) < need + agents.window * 4:
        raise DataError(f"{len(cal)} bars are too few to train and validate (need > {need + agents.window * 4})")
    i1 = len(cal) - need
    return wf.Split(int(cal[i1]), int(cal[i1 + embargo(agents)]), int(cal[-1]) + 1)


def train_agent(
    agent: str,
    features: pa.Table,
    cfg: Config,
    *,
    registry: ModelRegistry | None = None,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    outcomes: pa.Table | None = None,
    init: Predictor | None = None,
    last_bars: int | None = None,
    threads: int = 1,
    parent: str | None = None,
    extra_metadata: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``agent`` on ``features`` (optionally only each symbol's last ``last_bars``),
    validate on the held-out tail and publish to ``registry`` when one is given.

    ``init`` warm-starts an RL agent from an earlier version; ``parent`` (default: the
    ``init`` version) records which version this run replaces.  The published model is the
    one validated: its signed metrics are its own."""
    set_threads(threads)
    seed = cfg.agents.seed if seed is None else seed
    series = training_series(features, cfg.agents)
    if last_bars is not None:
        series = [s.tail(last_bars) for s in series]
    split = holdout_split(series, cfg.agents)
    train = wf.training_part(series, split)
    normalizer = fit_normalizer(train, feature_names(features))
    params = resolve(agent, cfg.agents, registry_root(cfg.agents, cfg.data_dir), overrides,
                     keys=None if registry is None else registry.signer)
    predictor, stats = fit(agent, train, normalizer, cfg.agents, params, seed, outcomes=outcomes, init=init, threads=threads)
    vset = wf.ValidationSet.build(series, split, cfg.agents.window)
    validation = scores_json(vset.evaluate(predictor, cfg.agents.cost))
    metadata = {
        "data": {"train": data_range(train), "validation": split.to_json(), "features": list(normalizer.names)},
        "config": {"agents": cfg.agents.model_dump(mode="json"), "params": params.model_dump()},
        "metrics": {
            "validation": validation,
            "buy_and_hold": scores_json(vset.buy_and_hold(cfg.agents.cost)),
        },
        "train": stats,
        "seed": seed,
        "parent": parent if parent is not None else (init.version if init is not None else None),
        **dict(extra_metadata or {}),
    }
    version = registry.publish(predictor, metadata) if registry is not None else None
    return TrainResult(agent, predictor, version, metadata)


def walk_forward(
    features: pa.Table,
    cfg: Config,
    *,
    agents: Sequence[str] = AGENTS,
    folds: int = 1,
    first_train_end: str = DEMO_FIRST_TRAIN_END,
    budget: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int | None = None,
    threads: int = 1,
    on_model: Callable[[int, wf.Split, str, Predictor, dict[str, Score], dict[str, Any]], None] | None = None,
    log: Callable[[str], None] | None = None,
    keys: KeyStore | None = None,
) -> wf.Report:
    """Walk-forward over ``folds`` folds from ``first_train_end``; ``on_model`` sees every
    trained model with its out-of-sample scores (the demo publishes them there).  ``keys``
    (the unlocked keystore) reads a sealed tuned file when one exists."""
    set_threads(threads)
    seed = cfg.agents.seed if seed is None else seed
    series = training_series(features, cfg.agents)
    names = feature_names(features)
    splits = wf.make_splits(series, first_train_end, folds, cfg.agents.valid_bars, embargo(cfg.agents))
    budget = budget or {}

    def trainer(
        k: int, agent: str, train: list[Series], normalizer: Normalizer, split: wf.Split, vset: wf.ValidationSet
    ) -> Predictor:
        params = resolve(agent, cfg.agents, registry_root(cfg.agents, cfg.data_dir), budget.get(agent), keys=keys)
        t0 = time.perf_counter()
        predictor, stats = fit(agent, train, normalizer, cfg.agents, params, seed, threads=threads)
        info = {
            "data": {"train": data_range(train), "validation": split.to_json(), "features": list(normalizer.names)},
            "config": {"agents": cfg.agents.model_dump(mode="json"), "params": params.model_dump()},
            "train": stats,
            "seed": seed,
        }
        scores = vset.evaluate(predictor, cfg.agents.cost)
        if log is not None:
            log(f"fold {k} {agent}: trained in {time.perf_counter() - t0:.1f}s, out-of-sample Sharpe {scores[wf.ALL].sharpe:.2f}")
        if on_model is not None:
            info["metrics"] = {"validation": scores_json(scores), "buy_and_hold": scores_json(vset.buy_and_hold(cfg.agents.cost))}
            on_model(k, split, agent, predictor, scores, info)
        return predictor

    return wf.run(series, agents, splits, cfg.agents.window, cfg.agents.cost, trainer, lambda train: fit_normalizer(train, names))


@dataclass
class DemoResult:
    versions: dict[str, str]
    report: wf.Report
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def train_demo(
    cfg: Config,
    registry: ModelRegistry,
    *,
    features: pa.Table | None = None,
    agents: Sequence[str] = AGENTS,
    budget: Mapping[str, Mapping[str, Any]] = DEMO_BUDGET,
    first_train_end: str = DEMO_FIRST_TRAIN_END,
    seed: int | None = None,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Train all three agents on the bundled real data with the demo budget, publish each as
    a signed version and return the versions with the walk-forward (one fold) report."""
    t0 = time.perf_counter()
    features = bundled_features() if features is None else features
    versions: dict[str, str] = {}
    timings: dict[str, float] = {}
    last = [time.perf_counter()]

    def publish(fold: int, split: wf.Split, agent: str, predictor: Predictor, scores: dict[str, Score], info: dict[str, Any]) -> None:
        versions[agent] = registry.publish(predictor, {**info, "source": "demo"})
        now = time.perf_counter()
        timings[agent] = round(now - last[0], 1)
        last[0] = now

    report = walk_forward(
        features, cfg, agents=agents, folds=1, first_train_end=first_train_end, budget=budget,
        seed=seed, threads=threads, on_model=publish, log=log, keys=registry.signer,
    )
    return DemoResult(versions, report, time.perf_counter() - t0, timings)
