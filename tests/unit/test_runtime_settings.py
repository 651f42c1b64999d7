"""Runtime settings changes (``tinywindow config set``) without Ray: the events apply, replay
and survive checkpoints (an old checkpoint without them restores the start-up settings); the
two-phase change across the portfolio and the consensus lands on both or neither, is
journaled, outlives a restart, and changes what the limits do."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from actors.consensus import ConsensusActor
from actors.graph import GraphActor
from actors.portfolio import PortfolioActor
from tinywindow.config import (
    Config,
    ConsensusConfig,
    CryptoConfig,
    PortfolioConfig,
    RiskConfig,
    runtime_changes,
)
from tinywindow.consensus.events import ConsensusSettingsChanged
from tinywindow.consensus.state import ConsensusBook
from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event
from tinywindow.core.runtime_settings import changed_section
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import ConfigError, TransientError
from tinywindow.execution.engine import BarRow, TradingEngine
from tinywindow.execution.events import RiskSettingsChanged

PASS = "runtime settings tests passphrase"
AGENTS = ["lstm", "tfm", "xgb"]
RISK = dict(max_position=0.5, max_gross=2.0, max_net=2.0, collar=0.2, confidence_floor=0.5, max_weight=0.5,
            target_vol=0.5, vol_model="ewma", min_vol_obs=2)


# --------------------------------------------------------------------------- the engine's event


def engine(journal: list[Event] | None = None, **risk: Any) -> TradingEngine:
    return TradingEngine(RiskConfig(**{**RISK, **risk}), PortfolioConfig(initial_cash_usd=1_000_000),
                         on_commit=None if journal is None else journal.extend)


def change(e: TradingEngine | ConsensusBook, change_id: str, **values: Any) -> None:
    event = e.settings_change(7, change_id, values)
    assert event is not None
    e.change_settings(event)  # type: ignore[arg-type]


def test_a_risk_change_applies_journals_and_replays_at_the_same_point() -> None:
    journal: list[Event] = []
    e = engine(journal)
    e.on_bars([BarRow("AAA", 1, 100.0, 100.0)])
    change(e, "c1", max_position="0.1", halt_drawdown=0.3)
    e.on_bars([BarRow("AAA", 2, 100.0, 101.0)])
    assert e.risk_cfg.max_position == 0.1 and e.risk_cfg.halt_drawdown == 0.3
    assert str(e.limits.max_position) == "0.1"
    assert e.vol.cfg is e.risk_cfg and all(t.cfg is e.risk_cfg for t in e.vol.trackers.values())
    ev = [x for x in journal if isinstance(x, RiskSettingsChanged)]
    assert ev == [RiskSettingsChanged(7, "c1", (("halt_drawdown", 0.3), ("max_position", 0.1)))]
    assert CODEC.encode(ev[0]) == ("risk_set", {"ts": 7, "change_id": "c1",
                                               "values": {"halt_drawdown": 0.3, "max_position": 0.1}})

    replay = engine()
    for x in journal:  # what the actor's start-up does with the journal
        replay.apply(CODEC.decode(*CODEC.encode(x)))
    assert replay.risk_cfg == e.risk_cfg and replay.limits == e.limits
    assert replay.snapshot() == e.snapshot()

    halfway = engine()  # replaying only what came before the change: the start-up settings
    for x in journal[: journal.index(ev[0])]:
        halfway.apply(x)
    assert halfway.risk_cfg.max_position == 0.5


def test_checkpoints_carry_the_settings_and_old_ones_restore_the_start_up_config() -> None:
    e = engine()
    e.on_bars([BarRow("AAA", 1, 100.0, 100.0), BarRow("AAA", 2, 100.0, 101.0)])
    change(e, "c1", max_position=0.1, vol_window=300)
    snap = e.snapshot()
    assert snap["risk_settings"] == {"overrides": {"max_position": 0.1, "vol_window": 300}, "change_id": "c1"}

    back = engine()
    back.restore(snap)
    assert back.risk_cfg == e.risk_cfg and back.limits == e.limits and back.settings_id == "c1"
    assert back.vol.trackers["AAA"].window.maxlen == 300 and back.snapshot() == snap

    old = {k: v for k, v in snap.items() if k != "risk_settings"}  # written before runtime settings
    legacy = engine()
    legacy.restore(old)
    assert legacy.risk_cfg == RiskConfig(**RISK) and legacy.settings_id is None
    assert legacy.vol.trackers["AAA"].window.maxlen == RiskConfig(**RISK).vol_window


def test_a_tighter_max_position_clips_what_it_allowed_before() -> None:
    def ordered(e: TradingEngine) -> tuple[list[Any], list[Any]]:
        e.on_bars([BarRow("AAA", 1, 100.0, 100.0)])
        events = e.rebalance({"AAA": 3000}, 1)  # 300,000 USD of 1,000,000: 0.3 of equity
        return ([x.order for x in events if type(x).__name__ == "OrderSubmitted"],
                [x for x in events if type(x).__name__ == "RiskDenied"])

    (before,), denied = ordered(engine())
    assert before.qty == 3000 and not denied
    tight = engine()
    change(tight, "c1", max_position=0.1)
    (after,), denied = ordered(tight)
    assert after.qty == 1000  # 0.1 of equity at 100
    assert [(d.reason, d.action) for d in denied] == [("MAX_POSITION", "clipped")]


def test_a_change_is_validated_before_anything_is_recorded() -> None:
    journal: list[Event] = []
    e = engine(journal)
    with pytest.raises(ConfigError, match="risk.max_position") as bad:
        e.settings_change(1, "x", {"max_position": 5})
    assert bad.value.key == "risk.max_position"
    with pytest.raises(ConfigError, match="risk.halt_drawdown"):  # the ordered drawdowns
        e.settings_change(1, "x", {"halt_drawdown": 0.05})
    with pytest.raises(ConfigError, match="restart"):  # read only at start-up
        e.settings_change(1, "x", {"min_vol_obs": 30})
    with pytest.raises(ConfigError, match="unknown config key 'risk.nope'"):
        e.settings_change(1, "x", {"nope": 1})
    assert e.settings_change(1, "x", {"max_position": 0.5}) is None  # nothing differs
    assert journal == [] and e.risk_cfg == RiskConfig(**RISK)


def test_the_consensus_book_changes_resizes_and_restores() -> None:
    journal: list[Event] = []
    book = ConsensusBook(ConsensusConfig(quorum=2), AGENTS, on_commit=journal.extend)
    with pytest.raises(ConfigError, match="more than the 3 agents"):
        book.settings_change(1, "x", {"quorum": 4})
    with pytest.raises(ConfigError, match="restart"):
        book.settings_change(1, "x", {"num_cpus": 1})
    change(book, "c1", threshold=0.9, decisions_kept=5, calibration_min=10, calibration_window=10)
    assert book.cfg.threshold == 0.9 and book.agent_outcomes.maxlen == 5
    assert all(s.maxlen == 10 for s in book.cal_samples.values())
    assert [type(x) for x in journal] == [ConsensusSettingsChanged]

    replay = ConsensusBook(ConsensusConfig(quorum=2), AGENTS)
    for x in journal:
        replay.apply(x)
    assert replay.cfg == book.cfg and replay.snapshot() == book.snapshot()
    restored = ConsensusBook(ConsensusConfig(quorum=2), AGENTS)
    restored.restore(book.snapshot())
    assert restored.cfg == book.cfg and restored.agent_outcomes.maxlen == 5 and restored.settings_id == "c1"
    legacy = ConsensusBook(ConsensusConfig(quorum=2), AGENTS)
    legacy.restore({k: v for k, v in book.snapshot().items() if k != "settings"})
    assert legacy.cfg == ConsensusConfig(quorum=2) and legacy.agent_outcomes.maxlen == ConsensusConfig().decisions_kept


def test_changed_section_names_the_key_like_config_set() -> None:
    with pytest.raises(ConfigError) as ours:
        changed_section(RiskConfig(), "risk", {"collar": "lots"})
    with pytest.raises(ConfigError) as theirs:
        Config().set("risk.collar", "lots")
    assert ours.value.key == theirs.value.key == "risk.collar"
    assert str(ours.value).split(" - ")[0] == str(theirs.value).split(" - ")[0]
    with pytest.raises(ConfigError, match="only risk.*, consensus.* can"):
        runtime_changes({"portfolio.lot_size": 2})


# --------------------------------------------------------------------------- two phases, two actors


class Local:
    """An in-process stand-in for an actor handle: ``h.method.remote(...)`` is awaitable."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Any:
        method: Callable[..., Any] = getattr(self.target, name)

        class _Remote:
            @staticmethod
            async def _call(*args: Any) -> Any:
                return method(*args)

            def remote(self, *args: Any) -> Any:
                return self._call(*args)

        return _Remote()


def actor_cfg(root: Path, **risk: Any) -> Config:
    return Config(data_dir=str(root), crypto=CryptoConfig(journal_fsync=False), risk=RiskConfig(**{**RISK, **risk}),
                  consensus=ConsensusConfig(threshold=0.5, quorum=2),
                  portfolio=PortfolioConfig(initial_cash_usd=1_000_000, checkpoint_every=25))


class Engine:
    """The portfolio and the consensus of one run, in-process, and the graph's coordinator."""

    def __init__(self, root: Path, **risk: Any) -> None:
        self.root, self.cfg = root, actor_cfg(root, **risk)
        self.portfolio = PortfolioActor(self.cfg, passphrase=PASS)
        self.consensus = ConsensusActor(self.cfg, AGENTS, passphrase=PASS)
        self.graph = GraphActor("t-paper-graph", ["s"], {}, Local(self.consensus), Local(self.portfolio))

    def set(self, **changes: Any) -> dict[str, Any]:
        return asyncio.run(self.graph.set_config({k.replace("__", "."): v for k, v in changes.items()}))

    def settings(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.portfolio.settings(), self.consensus.settings()

    def close(self) -> None:
        self.portfolio.close()
        self.consensus.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    KeyStore.init(tmp_path / "keys", PASS, scrypt_log2_n=10)
    return tmp_path


@pytest.fixture
def running(root: Path) -> Iterator[Engine]:
    e = Engine(root)
    yield e
    e.close()


def test_a_bad_value_changes_nothing_on_either_actor(running: Engine) -> None:
    before = running.settings()
    with pytest.raises(ConfigError, match="'consensus.threshold'") as bad:  # the graph's own check
        running.set(risk__max_position=0.1, consensus__threshold=2.0)
    assert bad.value.key == "consensus.threshold"
    # refused by the consensus's prepare (its cross-check), after the portfolio had prepared
    with pytest.raises(ConfigError, match="more than the 3 agents"):
        running.set(risk__max_position=0.1, consensus__quorum=4)
    for key in ("portfolio.lot_size", "risk.min_vol_obs", "consensus.nope"):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            running.set(**{key.replace(".", "__"): 1})
    assert running.settings() == before
    assert before[0]["staged"] is None and before[1]["staged"] is None  # the portfolio's stage was aborted
    assert running.portfolio.settings_changes() == [] and running.consensus.settings_changes() == []


def test_a_good_change_lands_on_both_is_journaled_and_outlives_a_restart(root: Path) -> None:
    e = Engine(root)
    got = e.set(risk__max_position="0.1", consensus__threshold=0.7)
    assert got["changes"] == {"risk.max_position": {"from": 0.5, "to": 0.1},
                              "consensus.threshold": {"from": 0.5, "to": 0.7}}
    risk, consensus = e.settings()
    assert risk["values"]["max_position"] == 0.1 and risk["overrides"] == {"max_position": 0.1}
    assert consensus["values"]["threshold"] == 0.7 and consensus["overrides"] == {"threshold": 0.7}
    assert risk["change_id"] == consensus["change_id"] == got["change_id"]
    (p,), (c,) = e.portfolio.settings_changes(), e.consensus.settings_changes()
    assert p["values"] == {"max_position": 0.1} and c["values"] == {"threshold": 0.7}
    assert p["change_id"] == c["change_id"] == got["change_id"]
    e.close()

    again = Engine(root)  # restart: journal replay
    assert again.settings() == (risk, consensus)
    again.portfolio.checkpoint()
    again.consensus.checkpoint()
    again.close()
    third = Engine(root)  # restart: from the checkpoints
    assert third.portfolio.recovery()["replayed"] == 0 and third.settings() == (risk, consensus)
    third.close()


def test_a_journaled_change_that_no_longer_holds_over_the_start_up_config_stops_the_start(root: Path) -> None:
    e = Engine(root)
    e.set(risk__reduce_drawdown=0.15)
    e.close()
    with pytest.raises(ConfigError, match=r"journaled\) do not hold over this run's start-up risk"):
        PortfolioActor(actor_cfg(root, reduce_drawdown=0.1, halt_drawdown=0.12), passphrase=PASS)


def test_commit_is_idempotent_and_survives_a_restart_between_the_phases(root: Path) -> None:
    e = Engine(root)
    token = e.portfolio.prepare_settings({"max_position": 0.3}, "c1")
    e.portfolio.close()
    e.portfolio = PortfolioActor(e.cfg, passphrase=PASS)  # restarted: the staged change is gone
    with pytest.raises(TransientError, match="not prepared here"):
        e.portfolio.commit_settings(token)
    assert e.portfolio.commit_settings(token, {"max_position": 0.3})["changed"] == {"max_position": 0.3}
    assert e.portfolio.commit_settings(token)["already"]  # a retried commit applies nothing twice
    assert len(e.portfolio.settings_changes()) == 1
    assert e.portfolio.abort_settings(token) is False
    e.close()


def bars(day: int, price: float) -> pa.Table:
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=day)
    return pa.table({"symbol": ["AAA"], "ts": pa.array([ts], pa.timestamp("ns", tz="UTC")), "open": [price],
                     "high": [price * 1.01], "low": [price * 0.99], "close": [price], "volume": [1e6]})


def signal(day: int, action: int = 1) -> pa.Table:
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=day)
    return pa.table({"symbol": ["AAA"], "ts": pa.array([ts], pa.timestamp("ns", tz="UTC")),
                     "action": pa.array([action], pa.int8()), "decided": [True],
                     "confidence": pa.array([0.9], pa.float32()), "agreement": pa.array([1.0], pa.float32()),
                     "votes": pa.array([3], pa.int16()), "reason": ["test"]})


def test_after_the_change_the_portfolio_sizes_by_the_tighter_limit(root: Path) -> None:
    """The same history and signal: the order is 0.5 of equity before ``risk.max_position 0.05``
    and 0.05 after it; a restarted portfolio keeps sizing by 0.05."""

    def warm(p: PortfolioActor) -> None:
        for d, price in enumerate([100.0, 103.0, 99.0, 104.0, 101.0]):
            p.apply_signals(signal(d, 0), bars(d, price))

    def weight(orders: pa.Table) -> float:
        (o,) = orders.to_pylist()
        return float(o["qty"] * o["price"]) / 1_000_000

    KeyStore.init(root / "before" / "keys", PASS, scrypt_log2_n=10)
    loose = PortfolioActor(actor_cfg(root / "before"), passphrase=PASS)
    warm(loose)
    assert weight(loose.apply_signals(signal(5), bars(5, 102.0))) == pytest.approx(0.5, abs=0.001)
    loose.close()

    e = Engine(root)
    warm(e.portfolio)
    e.set(risk__max_position=0.05)
    assert weight(e.portfolio.apply_signals(signal(5), bars(5, 102.0))) == pytest.approx(0.05, abs=0.001)
    e.close()
    again = Engine(root)
    assert again.portfolio.settings()["values"]["max_position"] == 0.05
    again.close()


def test_after_the_change_the_consensus_decides_by_the_new_threshold(running: Engine) -> None:
    def votes(day: str) -> pa.Table:
        return pa.table({
            "symbol": ["AAA"] * 3, "ts": pa.array(pd.to_datetime([day] * 3, utc=True)), "agent": AGENTS,
            "model_version": ["v1"] * 3, "action": pa.array([1, 1, 1], pa.int8()),
            "confidence": pa.array([0.8] * 3, pa.float32())})

    first = running.consensus.on_votes(votes("2024-01-02")).to_pylist()[0]
    assert first["decided"] and first["action"] == 1
    running.set(consensus__threshold=0.999)
    later = running.consensus.on_votes(votes("2024-01-03")).to_pylist()[0]
    assert not later["decided"] and later["action"] == 0
