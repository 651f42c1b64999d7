"""The universe a run trades: which sources train and trade, which symbols, the bar frequency,
the agents, the training and trading windows, the training budget, the broker and how paper
and live modes stream (the ``run`` section of a config file).

The sources themselves (bundled, files, synthetic, the gRPC feed) stay in ``data.sources``;
risk in ``risk``; costs and cash in ``portfolio``; the retrain schedule in ``agents``.  One
file holding all of them is a universe (``configs/demo.yaml`` is the bundled one), checked by
``tinywindow config check FILE`` and run by ``tinywindow run -c FILE --mode ...``.

Defined beside the package that uses it and composed into the root ``tinywindow.config.Config``.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from tinywindow.core.settings import Section

AgentName = Literal["lstm", "transformer", "xgboost"]
AGENTS: tuple[AgentName, ...] = ("lstm", "transformer", "xgboost")
BAR = re.compile(r"^(\d{1,4})(s|min|h|d)$")
_UNIT_S = {"s": 1, "min": 60, "h": 3600, "d": 86400}


def bar_seconds(bar: str) -> int:
    """Seconds in one bar of frequency ``bar`` (``1d``, ``4h``, ``15min``, ``30s``)."""
    m = BAR.match(bar)
    if m is None:
        raise ValueError(f"bar frequency {bar!r} is not like 1d, 4h, 15min or 30s")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def periods_per_year(bar: str) -> int:
    """Bars in a year for annualising: 252 trading days of daily bars; intraday bars as if a
    day held 24 hours of them (round-the-clock markets; a 6.5-hour session overstates it)."""
    return max(1, round(252 * 86400 / bar_seconds(bar)))


def _date(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        np.datetime64(value, "ns")
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a date or time (e.g. 2015-01-01 or 2015-01-01T16:00)") from None
    return value


class Window(Section):
    """A half-open time range [start, end); either side open when unset."""

    start: str | None = None
    end: str | None = None

    @field_validator("start", "end")
    @classmethod
    def _is_time(cls, v: str | None) -> str | None:
        return _date(v, "time")

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start is not None and self.end is not None and np.datetime64(self.start, "ns") >= np.datetime64(self.end, "ns"):
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


class PaperConfig(Section):
    """Paper and live modes: the stream through the actor graph.

    ``speed``: market seconds replayed per wall-clock second (86400 plays a day of daily bars
    a second); 0 plays as fast as the graph takes them.  ``bars``: replay only the last N bars
    of the trade window (None: all).  ``max_inflight``: bars in the graph at once (the bounded
    queue: when it is full the source waits).  ``stall_s``: a bar still in the graph after this
    long stops the run with an error naming the stage."""

    speed: float = Field(default=0.0, ge=0.0, le=1e9)
    bars: int | None = Field(default=None, ge=1, le=100_000_000)
    max_inflight: int = Field(default=4, ge=1, le=10_000)
    stall_s: float = Field(default=600.0, gt=0, le=86_400)


class RunConfig(Section):
    """``run``: the universe and the windows of ``tinywindow run`` (see the module docstring).

    ``train_sources`` / ``trade_sources``: names from ``data.sources`` (empty: every source).
    ``symbols``: the symbols traded and trained on (empty: every symbol those sources hold).
    ``train.end`` must not be after ``trade.start``: agents never train on the bars they trade
    (walk-forward retrains inside the trade window see only bars before their bar)."""

    name: str = Field(default="run", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    mode: Literal["backtest", "paper", "live"] = "backtest"
    agents: list[AgentName] = Field(default_factory=lambda: list(AGENTS), min_length=1)
    symbols: list[str] = Field(default_factory=list, max_length=100_000)
    bar: str = "1d"
    train_sources: list[str] = Field(default_factory=list, max_length=256)
    trade_sources: list[str] = Field(default_factory=list, max_length=256)
    train: Window = Window(end="2015-01-01")
    trade: Window = Window(start="2015-01-01", end="2019-01-01")
    budget: Literal["test", "demo", "full"] = "demo"  # training budget (models.params)
    retrain_models: bool = False  # train even when the registry has a version for the agent
    broker: Literal["paper"] = "paper"  # the only broker shipped; adapters implement execution.brokers.Broker
    namespace: str = Field(default="tinywindow", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    period_bars: int = Field(default=63, ge=1, le=100_000)  # backtest: bars voted per vectorised batch
    paper: PaperConfig = PaperConfig()

    @field_validator("bar")
    @classmethod
    def _bar(cls, v: str) -> str:
        bar_seconds(v)
        return v

    @field_validator("agents", "symbols", "train_sources", "trade_sources")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        seen = [x for i, x in enumerate(v) if x in v[:i]]
        if seen:
            raise ValueError(f"{seen[0]!r} is listed twice")
        return v

    @model_validator(mode="after")
    def _no_training_on_traded_bars(self) -> RunConfig:
        if self.train.end is None:
            raise ValueError("train.end must be set: agents train on bars before it")
        if self.trade.start is None:
            raise ValueError("trade.start must be set: the first bar traded")
        if np.datetime64(self.train.end, "ns") > np.datetime64(self.trade.start, "ns"):
            raise ValueError(f"train.end {self.train.end} is after trade.start {self.trade.start}: "
                             "agents would train on bars they then trade")
        return self

    def actor_name(self, mode: str, role: str) -> str:
        """The name of a run's actor and of its journal (``<run>-<mode>-<role>``): a backtest
        and a paper run of one universe keep separate accounts, the same run resumes its own."""
        return f"{self.name}-{mode}-{role}"
