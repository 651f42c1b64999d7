"""Issue 12: model files and tuned parameters are stored encrypted as well as signed."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from tests.unit.models.synth import NAMES
from tinywindow.cli.verify import check_path
from tinywindow.config import AgentConfig
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.manifest import MANIFEST, sign_dir, verify_dir
from tinywindow.errors import IntegrityError, KeyStoreError
from tinywindow.models.params import (
    PPOParams,
    XGBParams,
    read_tuned,
    resolve,
    tuned_path,
    write_tuned,
)
from tinywindow.models.predictor import Predictor
from tinywindow.models.registry import ModelRegistry
from tinywindow.models.rl import RLPredictor, build_policy
from tinywindow.models.windows import fit_normalizer, to_series
from tinywindow.models.xgb import XGBPredictor, train_xgb

WINDOW = 8


@pytest.fixture
def registry(registry_dir: Path, keystore: KeyStore) -> ModelRegistry:
    return ModelRegistry(registry_dir, keystore, signer=keystore)


@pytest.fixture(scope="module")
def booster_model(planted: pa.Table) -> XGBPredictor:
    series = to_series(planted)
    model, _ = train_xgb(series, fit_normalizer(series, NAMES), WINDOW, XGBParams(rounds=8), seed=0)
    return model


def _lstm(table: pa.Table) -> RLPredictor:
    cfg = PPOParams(hidden=16).model_config_dict()
    return RLPredictor("lstm", build_policy("lstm", WINDOW, len(NAMES), cfg), fit_normalizer(to_series(table), NAMES), WINDOW, cfg)


def _stored_bytes(root: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()]


def _plain_files(model: Predictor, tmp: Path) -> dict[str, bytes]:
    model.save(tmp)
    return {p.name: p.read_bytes() for p in tmp.iterdir()}


def test_no_model_plaintext_is_stored(
    registry: ModelRegistry, planted: pa.Table, booster_model: XGBPredictor, tmp_path: Path
) -> None:
    lstm = _lstm(planted)
    registry.publish(lstm, {})
    registry.publish(booster_model, {})
    stored = _stored_bytes(registry.root)
    names = sorted(p.relative_to(registry.root).as_posix() for p in registry.root.rglob("*") if p.is_file())
    assert names == [
        f"lstm/v0001/{MANIFEST}", "lstm/v0001/model.json.twenc", "lstm/v0001/weights.pt.twenc",
        f"xgboost/v0001/{MANIFEST}", "xgboost/v0001/booster.ubj.twenc", "xgboost/v0001/model.json.twenc",
    ]
    booster = bytes(booster_model.booster.save_raw("ubj"))
    tensors = [t.detach().numpy().tobytes() for t in lstm.module.state_dict().values() if t.numel() >= 16]
    plain = {**_plain_files(lstm, tmp_path / "l"), **_plain_files(booster_model, tmp_path / "x")}
    probes = [booster, *tensors, *(data[i : i + 32] for data in plain.values() for i in range(64, len(data) - 32, 997))]
    assert len(probes) > 20 and all(len(p) >= 32 for p in probes)
    assert booster == plain["booster.ubj"] and all(t in plain["weights.pt"] for t in tensors)  # control
    for blob in stored:
        assert not any(probe in blob for probe in probes)
    mean = json.dumps(lstm.normalizer.to_json()["mean"])[1:40]  # the scaler fitted on the data
    assert not any(mean.encode() in blob for blob in stored)


def test_sealed_versions_load_without_unpickling(
    registry: ModelRegistry, planted: pa.Table, booster_model: XGBPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.publish(_lstm(planted), {})
    registry.publish(booster_model, {})

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("pickle used while loading a model")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    for agent in ("lstm", "xgboost"):
        assert registry.load(agent).predict(planted).num_rows > 0


def test_a_ciphertext_swapped_between_versions_is_refused_naming_the_file(
    registry: ModelRegistry, keystore: KeyStore, booster_model: XGBPredictor
) -> None:
    registry.publish(booster_model, {"round": 1})
    registry.publish(booster_model, {"round": 2})
    v1, v2 = registry.root / "xgboost" / "v0001", registry.root / "xgboost" / "v0002"
    shutil.copy(v1 / "booster.ubj.twenc", v2 / "booster.ubj.twenc")
    with pytest.raises(IntegrityError, match=r"'booster\.ubj\.twenc' was changed after signing"):
        registry.load("xgboost", "v0002")
    # even re-signed by someone holding the key, the envelope's label names its true place
    sign_dir(v2, keystore, verify_dir(v1, keystore) | {"version": "v0002"})
    with pytest.raises(IntegrityError, match=r"file 'booster\.ubj\.twenc' refused.*labelled 'xgboost/v0001/booster\.ubj'"):
        registry.load("xgboost", "v0002")
    ok, line = check_path(v2, keystore)
    assert not ok and "booster.ubj.twenc" in line and "moved or swapped" in line


def test_a_version_from_before_issue_12_still_loads(
    registry: ModelRegistry, keystore: KeyStore, planted: pa.Table
) -> None:
    """Plain files under a signed manifest (the old format): the signature vouches for it."""
    model = _lstm(planted)
    folder = registry.root / "lstm" / "v0001"
    model.save(folder)
    created = pd.Timestamp(0, tz="UTC").isoformat()
    sign_dir(folder, keystore, {"agent": "lstm", "version": "v0001", "kind": "ppo", "window": WINDOW, "created": created})
    reader = ModelRegistry(registry.root, KeyStore.public_ring(keystore.directory))
    for reg in (registry, reader):  # no private key is needed for a plain version
        assert reg.load("lstm").predict(planted).column("action").equals(model.predict(planted).column("action"))
    assert registry.publish(model, {}) == "v0002"  # the next version is sealed
    assert registry.metadata("lstm", "v0002")["encrypted"] is True
    assert registry.load("lstm").version == "v0002"


def test_verify_checks_a_sealed_version_folder(registry: ModelRegistry, keystore: KeyStore, planted: pa.Table) -> None:
    registry.publish(_lstm(planted), {})
    folder = registry.root / "lstm" / "v0001"
    ring = KeyStore.public_ring(keystore.directory)
    ok, line = check_path(folder, ring)
    assert ok and "2 sealed files" in line
    ok, line = check_path(folder / "weights.pt.twenc", ring, lambda: keystore)
    assert ok and "'lstm/v0001/weights.pt'" in line and "decrypted" in line


# ---------------------------------------------------------------------------- tuned parameters
TUNED = {"hidden": 64, "lr": 0.00123456789}


def test_tuned_parameters_are_sealed_and_read_back(tmp_path: Path, keystore: KeyStore) -> None:
    path = write_tuned(tmp_path, "lstm", TUNED, {"val_sharpe": 0.4}, keystore)
    assert path == tuned_path(tmp_path, "lstm") and path.name == "tuned.json.twenc"
    blob = path.read_bytes()
    assert blob[:4] == b"TWEV"
    for text in (json.dumps(TUNED), "0.00123456789", '"hidden"', "val_sharpe"):
        assert text.encode() not in blob
    assert read_tuned(tmp_path, "lstm", keystore) == TUNED
    assert resolve("lstm", AgentConfig(), tmp_path, keys=keystore).hidden == 64
    ok, line = check_path(path, KeyStore.public_ring(keystore.directory))
    assert ok and "sealed file 'lstm/tuned.json'" in line


def test_tampered_moved_or_unreadable_tuned_files_are_refused(tmp_path: Path, keystore: KeyStore) -> None:
    path = write_tuned(tmp_path, "lstm", TUNED, {}, keystore)
    with pytest.raises(KeyStoreError, match="needs the unlocked keystore"):
        resolve("lstm", AgentConfig(), tmp_path)  # never silently ignored
    moved = tuned_path(tmp_path, "transformer")
    moved.parent.mkdir()
    shutil.copy(path, moved)
    with pytest.raises(IntegrityError, match=r"tuned\.json\.twenc.*labelled 'lstm/tuned\.json'"):
        read_tuned(tmp_path, "transformer", keystore)
    assert not check_path(moved, keystore)[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"sealed file .*tuned\.json\.twenc"):
        read_tuned(tmp_path, "lstm", keystore)
    ok, line = check_path(path, keystore)
    assert not ok and "ciphertext digest does not verify" in line


def test_a_plain_tuned_file_from_before_issue_12_is_refused_until_resealed(
    tmp_path: Path, keystore: KeyStore
) -> None:
    legacy = tmp_path / "xgboost" / "tuned.json"
    legacy.parent.mkdir()
    legacy.write_text(json.dumps({"params": {"max_depth": 5}}))
    with pytest.raises(IntegrityError, match="in the clear and unsigned.*tinywindow tune --agent xgboost"):
        read_tuned(tmp_path, "xgboost", keystore)
    write_tuned(tmp_path, "xgboost", {"max_depth": 4}, {}, keystore)
    assert not legacy.exists() and read_tuned(tmp_path, "xgboost", keystore) == {"max_depth": 4}
