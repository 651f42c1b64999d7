"""The model registry: signed versions, verified loads, tampering refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.unit.models.synth import NAMES
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.manifest import MANIFEST
from tinywindow.errors import IntegrityError, KeyStoreError, ModelError
from tinywindow.models.params import PPOParams, XGBParams
from tinywindow.models.registry import ModelRegistry
from tinywindow.models.rl import RLPredictor, build_policy
from tinywindow.models.windows import fit_normalizer, to_series
from tinywindow.models.xgb import train_xgb

WINDOW = 8


def _lstm(table: pa.Table) -> RLPredictor:
    norm = fit_normalizer(to_series(table), NAMES)
    cfg = PPOParams(hidden=16).model_config_dict()
    return RLPredictor("lstm", build_policy("lstm", WINDOW, len(NAMES), cfg), norm, WINDOW, cfg)


@pytest.fixture
def registry(registry_dir: Path, keystore: KeyStore) -> ModelRegistry:
    return ModelRegistry(registry_dir, keystore, signer=keystore, clock=lambda: 1_700_000_000_000_000_000)


def test_publish_then_load_gives_the_same_votes(registry: ModelRegistry, planted: pa.Table) -> None:
    model = _lstm(planted)
    version = registry.publish(model, {"data": {"train": {"start": "2010"}}, "metrics": {"sharpe": float("nan")}})
    assert version == "v0001" and model.version == "v0001"
    loaded = registry.load("lstm")
    assert loaded.version == "v0001"
    a, b = model.predict(planted), loaded.predict(planted)
    assert a.column("action").equals(b.column("action"))
    assert b.column("model_version").unique().to_pylist() == ["v0001"]
    meta = registry.metadata("lstm", "v0001")
    assert meta["agent"] == "lstm" and meta["kind"] == "ppo" and meta["metrics"]["sharpe"] is None  # NaN -> null
    assert meta["created"].startswith("2023-11-14")


def test_versions_count_up_and_list_with_status(registry: ModelRegistry, planted: pa.Table) -> None:
    series = to_series(planted)
    norm = fit_normalizer(series, NAMES)
    xgb_model, _ = train_xgb(series, norm, WINDOW, XGBParams(rounds=5), seed=0)
    assert [registry.publish(xgb_model, {}) for _ in range(3)] == ["v0001", "v0002", "v0003"]
    infos = registry.versions("xgboost")
    assert [i.version for i in infos] == ["v0001", "v0002", "v0003"] and all(i.ok for i in infos)
    assert registry.latest("xgboost") == "v0003"
    assert registry.load("xgboost", "v0002").version == "v0002"
    assert registry.versions("lstm") == []


def test_a_tampered_weight_file_is_refused(registry: ModelRegistry, planted: pa.Table) -> None:
    registry.publish(_lstm(planted), {})
    weights = registry.root / "lstm" / "v0001" / "weights.pt.twenc"  # a sealed file
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"'weights\.pt\.twenc' was changed after signing"):
        registry.load("lstm", "v0001")
    assert registry.versions("lstm")[0].status.startswith("refused")


@pytest.mark.parametrize("attack", ["unsigned", "added", "removed", "metadata"])
def test_other_tampering_is_refused(registry: ModelRegistry, planted: pa.Table, attack: str) -> None:
    registry.publish(_lstm(planted), {"metrics": {"sharpe": 1.0}})
    folder = registry.root / "lstm" / "v0001"
    if attack == "unsigned":
        (folder / MANIFEST).unlink()
        expect = "not signed"
    elif attack == "added":
        (folder / "extra.pkl").write_bytes(b"\x80\x04evil")
        expect = "added after signing"
    elif attack == "removed":
        (folder / "model.json.twenc").unlink()
        expect = "missing"
    else:  # rewrite the signed metadata without re-signing
        doc = json.loads((folder / MANIFEST).read_text())
        doc["body"] = doc["body"].replace('"sharpe":1.0', '"sharpe":9.0')
        (folder / MANIFEST).write_text(json.dumps(doc))
        expect = "signature"
    with pytest.raises(IntegrityError, match=expect):
        registry.load("lstm")


def test_a_version_folder_copied_under_another_name_is_refused(registry: ModelRegistry, planted: pa.Table) -> None:
    registry.publish(_lstm(planted), {})
    shutil.copytree(registry.root / "lstm" / "v0001", registry.root / "lstm" / "v0007")
    with pytest.raises(IntegrityError, match="signed for lstm v0001"):
        registry.load("lstm", "v0007")


def test_a_model_signed_by_another_key_is_refused(
    registry: ModelRegistry, planted: pa.Table, tmp_path: Path
) -> None:
    other = KeyStore.init(tmp_path / "other-keys", "another passphrase", scrypt_log2_n=10)
    ModelRegistry(registry.root, other, signer=other).publish(_lstm(planted), {})
    with pytest.raises(IntegrityError):
        registry.load("lstm", "v0001")


def test_missing_versions_and_read_only_registries(registry: ModelRegistry, planted: pa.Table, keystore: KeyStore) -> None:
    with pytest.raises(ModelError, match="no trained version"):
        registry.load("transformer")
    registry.publish(_lstm(planted), {})
    with pytest.raises(ModelError, match="no version"):
        registry.load("lstm", "v0009")
    ring = KeyStore.public_ring(keystore.directory)
    reader = ModelRegistry(registry.root, ring)
    assert reader.metadata("lstm")["encrypted"] is True  # listing and verifying need no passphrase
    assert [i.status for i in reader.versions("lstm")] == ["ok"]
    with pytest.raises(KeyStoreError, match="encrypted: loading it needs the unlocked keystore"):
        reader.load("lstm")  # decrypting does
    with pytest.raises(ModelError, match="read-only"):
        reader.publish(_lstm(planted), {})


def test_an_interrupted_publish_leaves_an_incomplete_version_that_is_skipped(
    registry: ModelRegistry, planted: pa.Table
) -> None:
    registry.publish(_lstm(planted), {})
    (registry.root / "lstm" / "v0002").mkdir()  # claimed, never filled
    assert registry.latest("lstm") == "v0001"
    assert [i.status for i in registry.versions("lstm")] == ["ok", "incomplete"]
    assert registry.publish(_lstm(planted), {}) == "v0003"
    assert np.isfinite(registry.load("lstm").predict(planted).column("confidence").to_numpy()).all()
