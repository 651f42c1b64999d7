"""``tinywindow agents list``: the version history with the promotion gate's decisions."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tests.unit.models.synth import NAMES
from tinywindow.cli import main
from tinywindow.crypto.keystore import KeyStore
from tinywindow.models.params import XGBParams
from tinywindow.models.registry import ModelRegistry
from tinywindow.models.windows import fit_normalizer, to_series
from tinywindow.models.xgb import train_xgb

PASSPHRASE = "agents-list-test"


def _gate(challenger: float, champion: float, promote: bool) -> dict:
    return {
        "parent": "v0001",
        "promotion": {"promote": promote, "reason": "test", "metric": "sharpe"},
        "metrics": {"validation": {"ALL": {"sharpe": challenger}},
                    "gate": {"challenger": {"version": None, "sharpe": challenger},
                             "champion": {"version": "v0001", "sharpe": champion}}},
    }


def test_list_shows_each_retrain_with_its_gate_decision_and_both_scores(
    tmp_path: Path, planted: pa.Table, capsys: pytest.CaptureFixture[str]
) -> None:
    store = KeyStore.init(tmp_path / "keys", PASSPHRASE, scrypt_log2_n=10)
    registry = ModelRegistry(tmp_path / "models", store, signer=store)
    series = to_series(planted)
    model, _ = train_xgb(series, fit_normalizer(series, NAMES), 8, XGBParams(rounds=3), seed=0)
    registry.publish(model, {"metrics": {"validation": {"ALL": {"sharpe": 1.0}}}})
    registry.publish(model, _gate(-0.5, 1.0, False))
    registry.publish(model, _gate(1.7, 1.0, True))
    assert main(["-s", f"data_dir={tmp_path}", "agents", "list", "--agent", "xgboost"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("xgboost")}
    assert "trained" in lines["v0001"]
    assert "rejected" in lines["v0002"] and "sharpe -0.500 vs v0001 1.000" in lines["v0002"]
    assert "promoted" in lines["v0003"] and "sharpe 1.700 vs v0001 1.000" in lines["v0003"]
