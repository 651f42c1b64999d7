"""Configuration of execution and accounting: cash, costs, lots, checkpoints.

Defined beside the package that uses it and composed into the root ``tinywindow.config.Config``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tinywindow.core.settings import PlacementResources, Section
from tinywindow.portfolio.config import ConstructionConfig


class PortfolioConfig(Section):
    """The account: starting cash, costs, lot size, order-id namespace, checkpoint cadence,
    events kept in memory, the CPU share of its PortfolioActor, and what a consensus
    no-decision does (``no_decision``: ``flat`` closes the position, ``keep`` leaves it; the
    default ``flat`` holds a position only while the consensus affirms it)."""

    initial_cash_usd: float = Field(default=1_000_000.0, gt=0, le=1e15)
    commission_bps: float = Field(default=1.0, ge=0, le=10_000)
    slippage_bps: float = Field(default=2.0, ge=0, le=10_000)
    commission_per_share_usd: float = Field(default=0.0, ge=0, le=1_000)
    commission_min_usd: float = Field(default=0.0, ge=0, le=1e6)
    lot_size: float = Field(default=1.0, gt=0, le=1e9)  # quantities are multiples of this
    account: str = Field(default="default", min_length=1, max_length=128)  # part of every order id
    checkpoint_every: int = Field(default=200, ge=1, le=10_000_000)  # journal records between checkpoints
    events_kept: int = Field(default=100_000, ge=1, le=100_000_000)  # outcomes / risk events held in memory
    num_cpus: float = Field(default=0.05, ge=0.0, le=1024)
    resources: PlacementResources = Field(default_factory=dict)  # Ray custom resources of its actor
    no_decision: Literal["flat", "keep"] = "flat"
    # target weights of the whole book from the consensus scores, under constraints, with an
    # optimiser (``tinywindow.portfolio``); method "none" sizes each symbol alone (the
    # volatility-targeted +-1 exposure)
    construction: ConstructionConfig = ConstructionConfig()
