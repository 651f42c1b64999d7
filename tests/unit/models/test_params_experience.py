"""Hyperparameter resolution (config < tuned file < overrides) and the experience buffer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tinywindow.config import AgentConfig
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import ConfigError, DataError
from tinywindow.models.experience import ExperienceBuffer, from_rows, to_rows
from tinywindow.models.params import PPOParams, XGBParams, read_tuned, resolve, write_tuned


def test_resolve_layers_config_tuned_file_and_overrides(tmp_path: Path, keystore: KeyStore) -> None:
    cfg = AgentConfig(hidden=48, train_iterations=3)
    p = resolve("lstm", cfg, tmp_path)
    assert isinstance(p, PPOParams) and p.hidden == 48 and p.iterations == 3
    write_tuned(tmp_path, "lstm", {"hidden": 64, "lr": 1e-3}, {"val_sharpe": 0.4}, keystore)
    assert read_tuned(tmp_path, "lstm", keystore) == {"hidden": 64, "lr": 1e-3}
    p = resolve("lstm", cfg, tmp_path, {"lr": 5e-4}, keys=keystore)
    assert p.hidden == 64 and p.lr == 5e-4 and p.iterations == 3
    assert resolve("lstm", cfg, tmp_path, use_tuned=False).hidden == 48
    assert isinstance(resolve("xgboost", AgentConfig(xgb_rounds=7), tmp_path), XGBParams)


def test_unknown_or_bad_parameters_are_rejected(tmp_path: Path, keystore: KeyStore) -> None:
    with pytest.raises(ConfigError, match="hiden"):
        resolve("lstm", AgentConfig(), tmp_path, {"hiden": 3})
    with pytest.raises(ConfigError, match="max_depth"):
        write_tuned(tmp_path, "xgboost", {"max_depth": 99}, {}, keystore)
    with pytest.raises(ConfigError, match="unknown agent"):
        resolve("gpt", AgentConfig(), tmp_path)


def _outcomes(symbols: list[str], days: list[int], actions: list[int], rets: list[float], agent: str = "xgboost") -> pa.Table:
    n = len(symbols)
    return pa.table({
        "symbol": symbols,
        "ts": pa.array(np.array(days, np.int64) * 86_400 * 10**9, pa.timestamp("ns", tz="UTC")),
        "agent": [agent] * n,
        "model_version": ["v0001"] * n,
        "action": pa.array(actions, pa.int8()),
        "confidence": pa.array([0.6] * n, pa.float32()),
        "realized_return": rets,
        "reward": [a * r for a, r in zip(actions, rets, strict=True)],
    })


def test_experience_buffer_deduplicates_and_keeps_its_capacity() -> None:
    buf = ExperienceBuffer("xgboost", capacity=4)
    assert buf.add(_outcomes(["A", "B"], [1, 1], [1, -1], [0.01, 0.02])) == 2
    assert buf.add(_outcomes(["A", "C"], [1, 2], [1, 1], [0.03, -0.01])) == 1  # (A, 1) replayed
    assert len(buf) == 3 and buf.received == 4
    table = buf.table()
    a1 = table.filter(pa.compute.equal(table.column("symbol").cast(pa.string()), "A"))
    assert a1.column("realized_return").to_pylist() == [0.03]  # latest wins
    stats = buf.stats()
    assert stats["hit_rate"] == pytest.approx(1 / 3, abs=1e-4)  # A +1 x +3% wins; B -1 x +2% and C +1 x -1% lose
    buf.add(_outcomes(["D", "E"], [3, 4], [0, 0], [0.0, 0.0]))
    assert len(buf) == 4  # capacity: oldest dropped


def test_experience_buffer_rejects_bad_batches_whole() -> None:
    buf = ExperienceBuffer("xgboost")
    bad = _outcomes(["A", "B"], [1, 2], [1, 1], [0.01, 0.02]).drop_columns(["action"])
    with pytest.raises(DataError, match="action"):
        buf.add(bad)
    mixed = pa.concat_tables([_outcomes(["A"], [1], [1], [0.01]), _outcomes(["B"], [1], [1], [0.01], agent="lstm")])
    with pytest.raises(DataError, match="row 1 belongs to agent 'lstm'"):
        buf.add(mixed)
    assert len(buf) == 0


def test_experience_rows_round_trip_through_the_journal_payload() -> None:
    import json

    table = _outcomes(["A", "B", "A"], [1, 1, 2], [1, -1, 0], [0.01, -0.02, 0.003])
    rows = json.loads(json.dumps(to_rows(table)))  # what the journal stores
    back = from_rows(rows)
    original = ExperienceBuffer("xgboost")
    original.add(table)
    rebuilt = ExperienceBuffer("xgboost")
    rebuilt.add(back)
    assert rebuilt.table().equals(original.table())
    assert from_rows([]).num_rows == 0
