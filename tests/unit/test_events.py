"""The typed event core: every event type round-trips through the one codec, the codec's
versioning, the event-sourced base, and the v1 journals (``tests/fixtures/journals_v1``,
written by the code before the typed events) verifying and replaying to the same state."""

from __future__ import annotations

import dataclasses
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.consensus import ConsensusActor
from actors.portfolio import PortfolioActor
from tests.fixtures.make_v1_journals import PASSPHRASE, fixture_cfg
from tinywindow.consensus.config import ConsensusConfig
from tinywindow.consensus.events import (
    AgentOutcomesScored,
    CalibrationFitted,
    ConsensusDecided,
    ConsensusSettingsChanged,
    VotesRecorded,
    WeightsLearned,
)
from tinywindow.consensus.state import ConsensusBook
from tinywindow.core.codec import CODEC, VERSION_KEY, EventCodec
from tinywindow.core.events import Event
from tinywindow.crypto.journal import Journal
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import IntegrityError
from tinywindow.execution.engine import BarRow, SignalRow, TradingEngine
from tinywindow.execution.events import (
    BarMarked,
    DecisionMade,
    OrderExpired,
    OrderFilled,
    OrderSubmitted,
    OutcomeRealized,
    RiskSettingsChanged,
    StateChanged,
    VolatilityFitted,
)
from tinywindow.execution.orders import Expiry, Fill, Order
from tinywindow.models.events import ExplanationsRecorded  # the agents' journal kind (registers it)
from tinywindow.risk.checks import TradingState
from tinywindow.risk.events import RiskDenied

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "journals_v1"
D = Decimal

SAMPLES: list[Event] = [
    DecisionMade("AAA", 5, 1, 0.75, D("101.25")),
    DecisionMade("AAA", 6, -1, 0.5, None),
    OrderSubmitted(Order("o1", "AAA", 5, 1, D("12"), D("101.25"), D("106.3125"), "signal +1 conf 0.750")),
    OrderSubmitted(Order("o2", "BBB", 5, -1, D("0.5"), D("3.1"), None, "target")),
    OrderFilled(Fill("o1", "AAA", 6, 1, D("12"), D("101.3"), D("0.60780"))),
    OrderExpired(Expiry("o2", "BBB", 6, "PRICE_COLLAR")),
    RiskDenied(5, "AAA", "o1", "MAX_GROSS", "clipped", "20", "12", "max gross 0.5"),
    RiskDenied(7, "*", "", "STATE_CHANGE", "state", detail="ACTIVE -> HALTED: operator halt"),
    OutcomeRealized(3, "AAA", 5, 1, 0.012345678901234),
    BarMarked(6, (("AAA", D("101.5")), ("BBB", D("3")))),
    VolatilityFitted("AAA", True, 0.01, 0.08, 0.9, 0.0001234),
    VolatilityFitted("BBB", False),
    StateChanged(7, TradingState.ACTIVE, TradingState.HALTED, "operator halt"),
    StateChanged(8, TradingState.HALTED, TradingState.ACTIVE, "operator resume", D("1000123.5")),
    VotesRecorded((("AAA", 5, "oracle", "v1", 1, 0.800000011920929, 1.25), ("AAA", 5, "noise", "v1", 0, 0.6, -0.5))),
    ConsensusDecided(5, (("AAA", 1, 0.6, 0.7, 3, "LONG ...", True, 0.42),
                         ("BBB", 0, 0.2, 0.4, 3, "NO DECISION ...", False, -0.1)),
                     (("AAA", "oracle", 1, 0.8, "v1", 1.25), ("AAA", "noise", 0, 0.6, "v2", -0.5))),
    WeightsLearned((("noise", 0.9), ("oracle", 1.2)), (("noise", 1, 0), ("oracle", 3, 2)), (("AAA", 5),)),
    WeightsLearned((("noise", 0.9), ("oracle", 1.2)), (("noise", 1, 0), ("oracle", 3, 2)), (("AAA", 5),),
                   (("noise", 5, -0.1), ("oracle", 5, 0.6))),
    AgentOutcomesScored((("AAA", 5, "oracle", "v1", 1, 0.800000011920929, 0.0123, 0.0118),
                         ("AAA", 5, "noise", "v2", 0, 0.6, 0.0123, 0.0))),
    CalibrationFitted("oracle", (0.55, 0.9), (0.5, 0.55), 120),
    RiskSettingsChanged(9, "c0ffee", (("allow_short", False), ("max_position", 0.1), ("vol_model", "ewma"))),
    ConsensusSettingsChanged(9, "c0ffee", (("quorum", 2), ("threshold", 0.7))),
    ExplanationsRecorded("xgboost", (("AAA", 5, "v1", "ret_1", 0, 0.25, 1), ("AAA", 5, "v1", "vol_20", 2, -0.125, 2))),
]
V1_KINDS = {"decision", "order", "fill", "expire", "risk", "outcome", "bar", "vol_fit", "state",
            "votes", "decided", "learned"}
KINDS = V1_KINDS | {"agent_outcomes", "calibrated", "risk_set", "consensus_set", "explanations"}
LATER_VERSIONS = {"decided": 3, "votes": 2, "learned": 2}  # kinds whose payload spelling changed since v1


def _json(x: Any) -> Any:
    return json.loads(json.dumps(x, sort_keys=True, allow_nan=False))


def test_every_kind_the_engine_and_consensus_journal_has_one_registered_type() -> None:
    assert set(CODEC.kinds()) == KINDS
    assert {type(e) for e in SAMPLES} == set(CODEC.kinds().values())


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_event_round_trips_through_the_codec_and_json(event: Event) -> None:
    kind, payload = CODEC.encode(event)
    assert kind == event.KIND
    assert payload.get(VERSION_KEY, 1) == LATER_VERSIONS.get(kind, 1)  # version 1 is written without the key
    back = CODEC.decode(kind, _json(payload))  # what a journal hands back
    assert back == event and type(back) is type(event)
    assert CODEC.encode(back) == (kind, payload)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(event, dataclasses.fields(event)[0].name, None)


def test_codec_versions_are_checked() -> None:
    kind, payload = CODEC.encode(SAMPLES[0])
    assert CODEC.decode(kind, {**payload, VERSION_KEY: 1}) == SAMPLES[0]
    with pytest.raises(IntegrityError, match="codec version"):
        CODEC.decode(kind, {**payload, VERSION_KEY: 2})
    with pytest.raises(IntegrityError, match="unknown kind"):
        CODEC.decode("no-such-kind", payload)
    later = EventCodec(version=2)  # a later codec writes its version and still reads v1
    later.register(DecisionMade, *_entry(DecisionMade))
    k2, p2 = later.encode(SAMPLES[0])
    assert p2[VERSION_KEY] == 2 and later.decode(k2, p2) == SAMPLES[0] == later.decode(kind, payload)


def test_a_v1_decided_payload_still_decodes() -> None:
    """v1 rows had no ``decided`` flag nor model versions: a direction or a flat ("hold")
    majority was a decision, every other hold a fallback; the version is "unknown"."""
    v1 = {"at": 5, "signals": [["AAA", 1, 0.6, 0.7, 3, "BUY ..."],
                               ["BBB", 0, 0.6, 0.7, 3, "HOLD (hold majority; majority HOLD); ..."],
                               ["CCC", 0, 0.3, 0.4, 3, "HOLD (low confidence; majority BUY); ..."]],
          "used": [["AAA", "oracle", 1, 0.8]]}
    e = CODEC.decode("decided", v1)
    assert isinstance(e, ConsensusDecided)
    assert [s[6] for s in e.signals] == [True, True, False]
    assert [s[7] for s in e.signals] == [0.6, 0.0, 0.0]  # no score then: action x confidence
    assert e.used == (("AAA", "oracle", 1, 0.8, "unknown", 0.8),)
    with pytest.raises(IntegrityError, match="codec version"):
        CODEC.decode("decided", {**v1, VERSION_KEY: 4})
    with pytest.raises(ValueError, match="fields"):  # a v3 payload must carry the scores
        CODEC.decode("decided", {**v1, VERSION_KEY: 3})


def test_v2_decided_votes_and_v1_learned_payloads_decode_with_derived_scores() -> None:
    """Before scores: a v2 decision's signals and used votes, a v1 votes batch, get
    ``action x confidence`` (as ``contracts.DERIVED`` gives a table without the column); a
    v1 ``learned`` payload has no ICs."""
    v2 = {"at": 5, "v": 2,
          "signals": [["AAA", -1, 0.75, 0.7, 3, "SHORT ...", True], ["BBB", 0, 0.6, 0.7, 3, "FLAT ...", True]],
          "used": [["AAA", "oracle", -1, 0.5, "v7"], ["AAA", "noise", 0, 0.9, "v1"]]}
    e = CODEC.decode("decided", v2)
    assert isinstance(e, ConsensusDecided)
    assert e.signals == (("AAA", -1, 0.75, 0.7, 3, "SHORT ...", True, -0.75),
                         ("BBB", 0, 0.6, 0.7, 3, "FLAT ...", True, 0.0))
    assert e.used == (("AAA", "oracle", -1, 0.5, "v7", -0.5), ("AAA", "noise", 0, 0.9, "v1", 0.0))
    votes = CODEC.decode("votes", {"rows": [["AAA", 5, "oracle", "v1", -1, 0.25], ["BBB", 5, "oracle", "v1", 1, 0.5]]})
    assert isinstance(votes, VotesRecorded)
    assert [r[6] for r in votes.rows] == [-0.25, 0.5]
    with pytest.raises(IntegrityError, match="codec version"):
        CODEC.decode("votes", {"rows": [], VERSION_KEY: 3})
    learned = CODEC.decode("learned", {"weights": {"a": 1.5}, "stats": {"a": {"scored": 2, "hits": 1}},
                                       "keys": [["AAA", 5]]})
    assert learned == WeightsLearned((("a", 1.5),), (("a", 2, 1),), (("AAA", 5),), ())
    # a book fed the old payloads serves and snapshots the derived scores
    book = ConsensusBook(ConsensusConfig(quorum=1), ["oracle", "noise"])
    book.apply(votes)
    book.apply(e)
    assert book.signals_at(5, ["AAA", "BBB"]).column("score").to_pylist() == [-0.75, 0.0]
    snap = book.snapshot()
    assert {r[4] for _s, _a, rows in snap["votes"] for r in rows} == {-0.25, 0.5}
    assert [u[4] for u in book.decisions[("AAA", 5)]["used"]] == [-0.5, 0.0]


def test_a_checkpoint_written_before_scores_restores_with_derived_scores() -> None:
    """A v2 checkpoint: votes of four fields, signals of seven, used votes of four."""
    book = ConsensusBook(ConsensusConfig(quorum=1), ["a", "b"])
    old = book.snapshot()
    old.pop("ic_samples")
    old["votes"] = [["AAA", "a", [[5, "v1", -1, 0.5]]]]
    old["decisions"] = [["AAA", 5, {"signal": ["AAA", -1, 0.5, 1.0, 1, "SHORT ...", True],
                                    "used": [["a", -1, 0.5, "v1"]], "learned": True}]]
    book.restore(old)
    assert book.votes[("AAA", "a")] == [(5, "v1", -1, 0.5, -0.5)]
    assert book.decisions[("AAA", 5)]["signal"][7] == -0.5
    assert book.decisions[("AAA", 5)]["used"] == [["a", -1, 0.5, "v1", -0.5]]
    assert book.signals_at(5, ["AAA"]).column("score").to_pylist() == [-0.5]
    assert all(not xs for xs in book.ic_samples.values())


def _v1_view(state: dict[str, Any]) -> dict[str, Any]:
    """A consensus snapshot as v1 spelled it: without the state added since (per-agent
    outcomes, calibration) and without the ``decided`` flag and model versions of decisions."""
    v1 = {k: v for k, v in state.items()
          if k not in ("calibration", "last_action", "agent_outcomes", "cal_samples", "cal_pending", "ic_samples")}
    v1["votes"] = [[s, a, [r[:4] for r in rows]] for s, a, rows in state["votes"]]
    v1["decisions"] = [[s, ts, {**d, "signal": d["signal"][:6], "used": [u[:3] for u in d["used"]]}]
                       for s, ts, d in state["decisions"]]
    return v1


def _entry(cls: type[Event]) -> tuple[Any, Any]:
    e = CODEC._by_cls[cls]
    return e.encode, e.decode


def test_event_sourced_base_refuses_an_event_it_does_not_apply() -> None:
    from tinywindow.config import ConsensusConfig, PortfolioConfig, RiskConfig

    engine = TradingEngine(RiskConfig(), PortfolioConfig())
    with pytest.raises(ValueError, match="cannot apply"):
        engine.apply(VotesRecorded(()))
    book = ConsensusBook(ConsensusConfig(), ["a", "b"])
    with pytest.raises(ValueError, match="cannot apply"):
        book.apply(BarMarked(1, ()))


def test_live_state_equals_the_replay_of_its_committed_events() -> None:
    from tinywindow.config import PortfolioConfig, RiskConfig

    risk = RiskConfig(vol_model="ewma", min_vol_obs=2, max_gross=0.5)
    journal: list[tuple[str, dict[str, Any]]] = []
    live = TradingEngine(risk, PortfolioConfig(), on_commit=lambda b: journal.extend(CODEC.encode_all(b)))
    day = 86_400 * 10**9
    for t in range(12):
        px = {"A": 100.0 + 0.7 * t + (t % 3), "B": 50.0 - 0.3 * t}
        live.on_bars([BarRow(s, (t + 1) * day, p * 0.999, p) for s, p in px.items()])
        live.apply_signals([SignalRow("A", (t + 1) * day, 1 if t % 4 else -1, 0.9),
                            SignalRow("B", (t + 1) * day, -1, 0.8)])
        if t == 8:
            live.halt((t + 1) * day + 1)
        if t == 9:
            live.resume((t + 1) * day + 1)
    replayed = TradingEngine(risk, PortfolioConfig())
    for kind, payload in journal:
        replayed.apply(CODEC.decode(kind, _json(payload)))
    assert _json(replayed.snapshot()) == _json(live.snapshot())
    assert {k for k, _ in journal} >= {"decision", "order", "fill", "expire", "risk", "outcome", "bar", "state"}


# --------------------------------------------------------------------------- the v1 fixture


@pytest.fixture
def v1(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of the v1 fixture (start-up takes the journal's lock and may write)."""
    root = tmp_path / "journals_v1"
    shutil.copytree(FIXTURE, root)
    return root, json.loads((root / "expected.json").read_text())


def test_v1_fixture_covers_every_kind(v1: tuple[Path, dict[str, Any]]) -> None:
    _, expected = v1
    assert expected["codec_version"] == 1
    assert set(expected["kinds"]["portfolio"]) | set(expected["kinds"]["consensus"]) == V1_KINDS


def test_v1_journals_verify_and_replay_from_scratch_to_the_recorded_state(v1: tuple[Path, dict[str, Any]]) -> None:
    root, expected = v1
    cfg = fixture_cfg(root)
    keys = KeyStore.open(root / "keys", PASSPHRASE)
    engine = TradingEngine(cfg.risk, cfg.portfolio)
    book = ConsensusBook(cfg.consensus, expected["agents"])
    for name, target in (("portfolio", engine), ("consensus", book)):
        with Journal(root / "journal" / f"{name}.journal", keys, fsync=False) as journal:
            assert journal.verify().ok
            for rec in journal.records():
                if rec.kind != "key" and rec.seq > 0:
                    target.apply(CODEC.decode(rec.kind, rec.payload))
    assert _json(engine.snapshot()) == expected["engine_state"]
    state = _json(book.snapshot())
    assert _v1_view(state) == expected["consensus_state"]
    assert state["agent_outcomes"] == [] and state["calibration"] == {}  # nothing of the kind in v1
    decisions = {(s, ts): d for s, ts, d in state["decisions"]}
    for s, ts, d in expected["consensus_state"]["decisions"]:  # the v1 reasons say what was decided
        assert decisions[(s, ts)]["signal"][6] == (d["signal"][1] != 0 or "(hold majority" in d["signal"][5])
        assert {u[3] for u in decisions[(s, ts)]["used"]} <= {"unknown"}
    assert book.weights == expected["consensus_weights"]


def test_v1_journals_start_the_actors_through_checkpoint_and_replay(v1: tuple[Path, dict[str, Any]]) -> None:
    root, expected = v1
    cfg = fixture_cfg(root)
    portfolio = PortfolioActor(cfg, passphrase=PASSPHRASE)
    consensus = ConsensusActor(cfg, expected["agents"], passphrase=PASSPHRASE)
    try:
        for actor in (portfolio, consensus):
            rec = actor.recovery()
            assert rec["checkpoint_seq"] > 0 and rec["replayed"] > 0, rec  # a v1 checkpoint, then v1 records
        assert portfolio.snapshot() == expected["portfolio_snapshot"]
        assert _json(portfolio.engine.snapshot()) == expected["engine_state"]
        assert consensus.weights() == expected["consensus_weights"]
        assert _v1_view(_json(consensus.book.snapshot())) == expected["consensus_state"]
        assert portfolio.verify_journal()["ok"]
    finally:
        portfolio.close()
        consensus.close()
