from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tinywindow.config import Config, load
from tinywindow.errors import ConfigError


def test_defaults_are_valid_and_frozen() -> None:
    cfg = load(environ={})
    assert cfg.risk.max_position == 0.2
    with pytest.raises(ValidationError):
        cfg.risk.max_position = 0.3  # type: ignore[misc]


def test_precedence_defaults_file_env_cli(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("risk:\n  max_position: 0.1\n  max_gross: 0.9\nlog:\n  level: DEBUG\n")
    env = {"TW_RISK__MAX_POSITION": "0.15", "TW_PASSPHRASE": "not-a-key"}
    cfg = load(f, environ=env, overrides=["risk.max_position=0.05"])
    assert cfg.risk.max_position == 0.05  # CLI beats env
    assert cfg.risk.max_gross == 0.9  # file beats default
    assert cfg.log.level == "DEBUG"
    assert load(f, environ=env).risk.max_position == 0.15  # env beats file


def test_json_file(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text('{"portfolio": {"commission_bps": 3}}')
    assert load(f, environ={}).portfolio.commission_bps == 3


def test_dot_get_set_and_save_roundtrip(tmp_path: Path) -> None:
    cfg = Config().set("consensus.threshold", 0.7)
    assert cfg.get("consensus.threshold") == 0.7
    out = tmp_path / "saved.yaml"
    cfg.save(out)
    assert load(out, environ={}) == cfg


@pytest.mark.parametrize(
    "key,value,needle",
    [
        ("risk.max_position", 2.0, "risk.max_position"),
        ("log.level", "LOUD", "log.level"),
        ("serving.http_port", "eighty", "serving.http_port"),
    ],
)
def test_bad_value_names_key_value_and_allowed(key: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Config().set(key, value)
    msg = str(exc.value)
    assert needle in msg and repr(value) in msg
    assert exc.value.key == key


def test_unknown_key_rejected_everywhere(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="risk.max_postion"):
        Config().get("risk.max_postion")
    f = tmp_path / "c.yaml"
    f.write_text("risk:\n  max_postion: 0.1\n")
    with pytest.raises(ConfigError, match="allowed: .*max_position"):
        load(f, environ={})
    with pytest.raises(ConfigError, match="riskk"):
        load(environ={"TW_RISKK__X": "1"})


def test_secret_never_in_repr_or_saved_file(tmp_path: Path) -> None:
    cfg = load(environ={"TW_SERVING__TOKEN": "s3cret-token-value"})
    assert cfg.serving.token is not None
    assert cfg.serving.token.get_secret_value() == "s3cret-token-value"
    assert "s3cret" not in repr(cfg)
    out = tmp_path / "c.yaml"
    cfg.save(out)
    assert "s3cret" not in out.read_text()
    with pytest.raises(ConfigError) as exc:
        cfg.set("serving.token", 12)
    assert "s3cret" not in str(exc.value)


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "nope.yaml", environ={})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid json"):
        load(bad, environ={})
