"""Configuration of the consensus: quorum, thresholds, staleness, weight learning and the
per-agent calibration maps (refit every ``calibrate_every`` scored outcomes of an agent once it
has ``calibration_min``, on its last ``calibration_window``).

``mode`` picks how votes become a signal: ``vote`` (weighted, calibrated voting over actions)
or ``score`` (each agent's scores standardised across the bar's symbols, ``score_method``, and
combined by weight; see ``tinywindow.consensus.scoring``).  In score mode ``threshold`` and
``max_disagreement`` are not used; ``score_threshold`` is (|combined score| below it: flat),
``min_names`` (symbols a bar needs to be ranked), and ``score_lr`` for the weights learned
from each agent's per-bar rank IC.

Defined beside the package that uses it and composed into the root ``tinywindow.config.Config``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tinywindow.core.settings import PlacementResources, Section, require_ordered

# Read only when the consensus actor starts (its placement and its checkpoint store), never
# by the book: ``tinywindow config set`` refuses them on a running engine.
STARTUP_ONLY = frozenset({"checkpoint_every", "num_cpus", "resources"})


class ConsensusConfig(Section):
    threshold: float = Field(default=0.55, ge=0.0, le=1.0)
    quorum: int = Field(default=2, ge=1, le=1000)
    max_disagreement: float = Field(default=0.5, ge=0.0, le=1.0)
    stale_after_s: float = Field(default=300.0, gt=0, le=365 * 86400.0)
    min_weight: float = Field(default=0.1, gt=0, le=1e6)
    max_weight: float = Field(default=10.0, gt=0, le=1e6)
    learning_rate: float = Field(default=0.1, gt=0, le=1.0)
    decisions_kept: int = Field(default=100_000, ge=1, le=100_000_000)  # decisions (and agent outcomes) remembered
    calibrate_every: int = Field(default=50, ge=1, le=10_000_000)  # an agent's new scored outcomes between refits
    calibration_min: int = Field(default=100, ge=2, le=10_000_000)  # scored outcomes before an agent is calibrated
    calibration_window: int = Field(default=2_000, ge=2, le=10_000_000)  # an agent's latest outcomes a fit uses
    checkpoint_every: int = Field(default=200, ge=1, le=10_000_000)  # journal records between checkpoints
    num_cpus: float = Field(default=0.05, ge=0.0, le=1024)
    resources: PlacementResources = Field(default_factory=dict)  # Ray custom resources of its actor
    mode: Literal["vote", "score"] = "vote"
    score_method: Literal["zscore", "rank"] = "zscore"
    score_threshold: float = Field(default=0.0, ge=0.0, le=1e6)  # |combined score| below it: flat
    # per bar and agent, w *= exp(score_lr * rank IC): an IC of 0.1 held over 100 bars is x2.7
    score_lr: float = Field(default=0.1, gt=0, le=10.0)
    min_names: int = Field(default=3, ge=2, le=1_000_000)  # symbols a bar needs to be ranked

    @model_validator(mode="after")
    def _ordered(self) -> ConsensusConfig:
        require_ordered("consensus", ("min_weight", self.min_weight), ("max_weight", self.max_weight))
        require_ordered("consensus", ("calibration_min", self.calibration_min),
                        ("calibration_window", self.calibration_window))
        return self
