"""Hostile configuration: every bad file, ``TW_*`` variable or ``-s key=value`` is one short
``ConfigError`` naming its key; nothing is accepted silently, nothing hangs, no traceback.
docs/reliability/config.md tables the cases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinywindow.config import Config, load
from tinywindow.errors import ConfigError

MAX_MESSAGE = 1000
SECRET = "s3cret-Token-4f9a1c2e7b"
REPO = Path(__file__).resolve().parents[2]


def _refused(path: Path | None = None, environ: dict[str, str] | None = None, sets: list[str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(path, environ=environ or {}, overrides=sets or [])
    return _short(info.value)


def _short(exc: ConfigError) -> ConfigError:
    msg = str(exc)
    assert len(msg) < MAX_MESSAGE, msg[:300]
    assert "\n" not in msg and "Traceback" not in msg
    return exc


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p


# --------------------------------------------------------------------- non-finite numbers
NONFINITE_LIMITS = ["max_position", "max_gross", "max_order_notional_usd", "halt_drawdown", "collar"]

FILE_NONFINITE = [
    pytest.param("c.yaml", f"risk:\n  {k}: {v}\n", f"risk.{k}", id=f"file-yaml-{v}-{k}")
    for k, v in zip(NONFINITE_LIMITS, [".inf", "-.inf", ".nan", "1.0e400", ".Inf"], strict=True)
] + [
    pytest.param("c.json", f'{{"risk": {{"{k}": {v}}}}}', f"risk.{k}", id=f"file-json-{v}-{k}")
    for k, v in zip(NONFINITE_LIMITS, ["Infinity", "-Infinity", "NaN", "1e400", "Infinity"], strict=True)
]


@pytest.mark.parametrize("name,text,key", FILE_NONFINITE)
def test_nonfinite_limit_in_file_refused(tmp_path: Path, name: str, text: str, key: str) -> None:
    exc = _refused(_write(tmp_path, name, text))
    assert exc.key == key and key in str(exc) and "finite" in str(exc)


ENV_NONFINITE = [
    pytest.param(f"TW_RISK__{k.upper()}", v, f"risk.{k}", id=f"env-{v}-{k}")
    for k, v in zip(NONFINITE_LIMITS, ["inf", "-inf", "nan", "Infinity", "1e400"], strict=True)
] + [pytest.param("TW_PORTFOLIO__INITIAL_CASH_USD", "inf", "portfolio.initial_cash_usd", id="env-inf-initial_cash")]


@pytest.mark.parametrize("var,value,key", ENV_NONFINITE)
def test_nonfinite_limit_in_env_refused(var: str, value: str, key: str) -> None:
    exc = _refused(environ={var: value})
    assert exc.key == key and "finite" in str(exc)


SET_NONFINITE = [
    pytest.param(f"risk.{k}={v}", f"risk.{k}", id=f"set-{v}-{k}")
    for k, v in zip(NONFINITE_LIMITS, ["1e400", "Infinity", "-inf", "nan", ".inf"], strict=True)
] + [pytest.param("consensus.stale_after_s=inf", "consensus.stale_after_s", id="set-inf-stale_after_s")]


@pytest.mark.parametrize("item,key", SET_NONFINITE)
def test_nonfinite_limit_in_set_refused(item: str, key: str) -> None:
    exc = _refused(sets=[item])
    assert exc.key == key and ("finite" in str(exc) or "valid number" in str(exc))


# --------------------------------------------------------------------- ranges and types
OUT_OF_RANGE = [
    pytest.param("risk.max_position=-0.1", "risk.max_position", id="negative-max_position"),
    pytest.param("risk.max_gross=0", "risk.max_gross", id="zero-max_gross"),
    pytest.param("risk.max_gross=1000", "risk.max_gross", id="huge-max_gross"),
    pytest.param("risk.max_order_notional_usd=1e300", "risk.max_order_notional_usd", id="huge-order-notional"),
    pytest.param("risk.ewma_lambda=1.0", "risk.ewma_lambda", id="ewma_lambda-one"),
    pytest.param("portfolio.commission_bps=-1", "portfolio.commission_bps", id="negative-commission"),
    pytest.param("portfolio.initial_cash_usd=-5", "portfolio.initial_cash_usd", id="negative-cash"),
    pytest.param("feed.port=70000", "feed.port", id="port-over-65535"),
    pytest.param("serving.http_port=-1", "serving.http_port", id="negative-port"),
    pytest.param("crypto.scrypt_log2_n=40", "crypto.scrypt_log2_n", id="scrypt-too-costly"),
    pytest.param("agents.seed=-1", "agents.seed", id="negative-seed"),
    pytest.param("consensus.quorum=0", "consensus.quorum", id="zero-quorum"),
    pytest.param("serving.batch_wait_timeout_s=1e9", "serving.batch_wait_timeout_s", id="huge-batch-wait"),
    pytest.param("ray.object_store_bytes=1", "ray.object_store_bytes", id="tiny-object-store"),
    pytest.param("risk.min_vol_obs=" + "9" * 5000, "risk.min_vol_obs", id="5000-digit-int"),
    pytest.param("risk.max_gross=abc", "risk.max_gross", id="wrong-type-text-for-number"),
    pytest.param("risk.max_gross=[1, 2]", "risk.max_gross", id="wrong-type-list-for-number"),
    pytest.param("log.level=5", "log.level", id="wrong-type-number-for-level"),
    pytest.param("data.persist=maybe", "data.persist", id="wrong-type-bool"),
    pytest.param("agents.window=1e3", "agents.window", id="float-for-int"),
]


@pytest.mark.parametrize("item,key", OUT_OF_RANGE)
def test_out_of_range_or_wrong_type_refused(item: str, key: str) -> None:
    exc = _refused(sets=[item])
    assert exc.key == key and key in str(exc)


# --------------------------------------------------------------------- cross-field rules
CROSS_FIELD = [
    pytest.param(None, {}, ["risk.halt_drawdown=0.05"], "risk.halt_drawdown", id="set-halt-below-reduce"),
    pytest.param(None, {"TW_RISK__HALT_DRAWDOWN": "0.08"}, [], "risk.halt_drawdown", id="env-halt-below-reduce"),
    pytest.param("risk:\n  reduce_drawdown: 0.3\n  halt_drawdown: 0.2\n", {}, [], "risk.halt_drawdown",
                 id="file-halt-below-reduce"),
    pytest.param(None, {}, ["risk.resume_drawdown=0.2"], "risk.reduce_drawdown", id="resume-above-reduce"),
    pytest.param(None, {}, ["risk.garch_min_obs=2000"], "risk.vol_window", id="garch-min-obs-above-window"),
    pytest.param("consensus:\n  min_weight: 5\n  max_weight: 2\n", {}, [], "consensus.max_weight",
                 id="min-weight-above-max"),
    pytest.param(None, {"TW_SERVING__MIN_REPLICAS": "5"}, [], "serving.max_replicas", id="min-replicas-above-max"),
    pytest.param(None, {}, ["serving.grpc_port=8000"], "serving.grpc_port", id="http-and-grpc-same-port"),
    pytest.param("data:\n  sources:\n    - {name: a, kind: synthetic}\n    - {name: a, kind: bundled}\n", {}, [],
                 "data.sources.1.name", id="file-duplicate-source-name"),
    pytest.param(None, {"TW_DATA__SOURCES": "[{name: x, kind: synthetic}, {name: x, kind: synthetic}]"}, [],
                 "data.sources.1.name", id="env-duplicate-source-name"),
]


@pytest.mark.parametrize("text,environ,sets,key", CROSS_FIELD)
def test_cross_field_rule_refused(
    tmp_path: Path, text: str | None, environ: dict[str, str], sets: list[str], key: str
) -> None:
    path = _write(tmp_path, "c.yaml", text) if text is not None else None
    exc = _refused(path, environ, sets)
    assert exc.key == key and key in str(exc)


# --------------------------------------------------------------------- time zones
@pytest.mark.parametrize(
    "tz",
    [
        pytest.param("Mars/Olympus", id="tz-unknown"),
        pytest.param("../../etc/passwd", id="tz-path-escape"),
        pytest.param("America", id="tz-directory"),
        pytest.param("", id="tz-empty"),
        pytest.param("A" * 5000, id="tz-5000-chars"),
    ],
)
def test_invalid_timezone_refused_at_load(tmp_path: Path, tz: str) -> None:
    text = f'data:\n  sources:\n    - {{name: a, kind: file, path: x.csv, timezone: "{tz}"}}\n'
    exc = _refused(_write(tmp_path, "c.yaml", text))
    assert exc.key == "data.sources.0.timezone" and "time zone" in str(exc)


def test_valid_timezone_accepted(tmp_path: Path) -> None:
    text = "data:\n  sources:\n    - {name: a, kind: file, path: x.csv, timezone: America/New_York}\n"
    assert load(_write(tmp_path, "c.yaml", text), environ={}).data.sources[0].timezone == "America/New_York"


# --------------------------------------------------------------------- malformed files
LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)

FILES: list[object] = [
    pytest.param("c.yaml", "risk:\n  collar: 0.1\nrisk:\n  collar: 0.2\n", "risk", "duplicate key", id="dup-key-top"),
    pytest.param("c.yaml", "risk:\n  collar: 0.1\n  max_gross: 1\n  collar: 0.2\n", "risk.collar", "line 4",
                 id="dup-key-nested"),
    pytest.param("c.json", '{"risk": {"collar": 0.1, "collar": 0.2}}', "risk.collar", "duplicate key",
                 id="dup-key-json"),
    pytest.param("c.yaml", "a: " + "[" * 1000 + "]" * 1000 + "\n", "a." + ".".join(["0"] * 32), "deeper than 32",
                 id="yaml-1000-deep"),
    pytest.param("c.json", '{"a": ' + "[" * 1000 + "]" * 1000 + "}", None, "deeper than 32", id="json-1000-deep"),
    pytest.param("c.json", '{"a": ' + "[" * 40 + "]" * 40 + "}", "a." + ".".join(["0"] * 32), "deeper than 32",
                 id="json-40-deep"),
    pytest.param("c.yaml", b"risk:\n  collar: \xff\xfe0.1\n", None, "not UTF-8", id="non-utf8"),
    pytest.param("c.yaml", "- risk\n- log\n", None, "not a list", id="top-level-list"),
    pytest.param("c.yaml", "42\n", None, "not a int", id="top-level-scalar"),
    pytest.param("c.json", '"risk"', None, "not a str", id="top-level-json-string"),
    pytest.param("c.yaml", "risk:\n  collar: [1, 2\nlog: {}\n", "risk.collar", "not valid YAML", id="yaml-syntax"),
    pytest.param("c.json", '{"risk": ', None, "not valid json", id="json-syntax"),
    pytest.param("c.yaml", "risk: {}\n---\nlog: {}\n", None, "not valid YAML", id="two-yaml-documents"),
    pytest.param("c.yaml", 'risk:\n  collar: "\x00"\n', None, "not valid YAML", id="nul-character"),
    pytest.param("c.yaml", "risk: !!python/object/apply:os.system [id]\n", None, "not valid YAML",
                 id="python-tag"),
    pytest.param("c.yaml", "risk: &r\n  collar: 0.1\nportfolio: *r\n", "risk", "anchors", id="anchor-and-alias"),
    pytest.param("c.yaml", "risk:\n  1: 0.1\n", "risk", "plain strings", id="non-string-key"),
    pytest.param("c.yaml", "risk:\n  max_postion: 0.1\n", "risk.max_postion", "allowed: ", id="unknown-key-nested"),
    pytest.param("c.yaml", "riks: {}\n", "riks", "allowed: ", id="unknown-key-top"),
    pytest.param("c.yaml", "risk: 0.2\n", "risk", "valid dictionary", id="scalar-for-section"),
    pytest.param("c.yaml", "feed:\n  port: 0x1F90\n", "feed.port", "valid integer", id="hex-int-not-retyped"),
    pytest.param("c.yaml", "risk:\n  min_vol_obs: " + "9" * 5000 + "\n", None, "cannot be read", id="yaml-5000-digits"),
]


@pytest.mark.parametrize("name,content,key,needle", FILES)
def test_malformed_file_refused(tmp_path: Path, name: str, content: str | bytes, key: str | None, needle: str) -> None:
    exc = _refused(_write(tmp_path, name, content))
    assert exc.key == key
    assert needle in str(exc)


@pytest.mark.timeout(10)
def test_billion_laughs_fails_fast_and_short(tmp_path: Path) -> None:
    exc = _refused(_write(tmp_path, "laughs.yaml", LAUGHS))
    assert "anchors and aliases" in str(exc) and "line 1," in str(exc) and len(str(exc)) < 500
    assert exc.key == "a"  # refused at the first anchor, before any alias is expanded


@pytest.mark.timeout(10)
def test_billion_laughs_in_env_value_fails_fast() -> None:
    exc = _refused(environ={"TW_DATA__SOURCES": "[" + LAUGHS.replace("\n", ", ").rstrip(", ") + "]"})
    assert exc.key == "data.sources.0.a" and "anchors and aliases" in str(exc) and len(str(exc)) < 300


@pytest.mark.timeout(10)
def test_5mb_file_refused_unparsed(tmp_path: Path) -> None:
    exc = _refused(_write(tmp_path, "big.yaml", "risk:\n" + "  # padding\n" * 500_000))
    assert "limit is 1048576 bytes" in str(exc) and exc.key is None


@pytest.mark.parametrize(
    "make",
    [pytest.param(lambda p: p / "nope.yaml", id="missing-file"), pytest.param(lambda p: p, id="directory")],
)
def test_missing_or_irregular_file(tmp_path: Path, make: object) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    exc = _refused(path)
    assert str(path) in str(exc)


def test_huge_value_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        Config().set("log.level", "X" * 1_000_000)
    assert _short(info.value).key == "log.level"


def test_huge_unknown_key_is_not_echoed(tmp_path: Path) -> None:
    exc = _refused(sets=["risk." + "k" * 100_000 + "=1"])
    assert exc.key is not None and len(exc.key) < 300


# --------------------------------------------------------------------- env and -s entry points
@pytest.mark.parametrize(
    "environ,sets,key",
    [
        pytest.param({"TW_RISKK__X": "1"}, [], "riskk", id="env-unknown-section"),
        pytest.param({"TW_RISK__MAX_POSTION": "0.1"}, [], "risk.max_postion", id="env-unknown-key"),
        pytest.param({"TW_RISK__COLLAR": "0.1", "TW_risk__collar": "0.2"}, [], "risk.collar", id="env-same-key-twice"),
        pytest.param({"TW_RISK__MAX_GROSS": "x" * 100_000}, [], "risk.max_gross", id="env-100k-value"),
        pytest.param({"TW_DATA__SOURCES": "[{name: a, kind: synthetic}"}, [], "data.sources", id="env-yaml-syntax"),
        pytest.param({}, ["risk.max_postion=0.1"], "risk.max_postion", id="set-unknown-key"),
        pytest.param({}, ["risk.max_gross"], "risk.max_gross", id="set-without-equals"),
    ],
)
def test_env_and_set_refused(environ: dict[str, str], sets: list[str], key: str) -> None:
    assert _refused(environ=environ, sets=sets).key == key


# --------------------------------------------------------------------- secrets
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("abc #def", id="token-space-hash"),
        pytest.param("yes", id="token-yes"),
        pytest.param("0123", id="token-leading-zero"),
        pytest.param("null", id="token-null"),
        pytest.param("1e400", id="token-1e400"),
        pytest.param("[a, b]", id="token-flow-list"),
        pytest.param("&a *a", id="token-yaml-alias-chars"),
    ],
)
def test_secret_from_env_or_set_kept_verbatim(value: str) -> None:
    cfg = load(environ={"TW_SERVING__TOKEN": value})
    assert cfg.serving.token is not None and cfg.serving.token.get_secret_value() == value
    cfg = load(environ={}, overrides=[f"serving.token={value}"])
    assert cfg.serving.token is not None and cfg.serving.token.get_secret_value() == value
    assert value not in repr(cfg).replace("serving", "")


def test_secret_in_file_stays_text(tmp_path: Path) -> None:
    cfg = load(_write(tmp_path, "c.yaml", "serving:\n  token: 0123\n"), environ={})
    assert cfg.serving.token is not None and cfg.serving.token.get_secret_value() == "0123"


@pytest.mark.parametrize(
    "environ,sets,key",
    [
        pytest.param({"TW_SERVING__TOKEN": SECRET, "TW_RISK__MAX_GROSS": "inf"}, [], "risk.max_gross",
                     id="secret-set-other-key-bad"),
        pytest.param({"TW_SERVING__TOKEN": f" {SECRET} "}, [], "serving.token", id="secret-with-whitespace"),
        pytest.param({"TW_SERVING__TOKEN__X": SECRET}, [], "serving.token", id="secret-as-mapping"),
        pytest.param({"TW_SERVING__TOKEN": SECRET * 5000}, [], "serving.token", id="secret-over-64k"),
        pytest.param({}, [f"serving.token={SECRET}", "serving.tokn=1"], "serving.tokn", id="secret-then-unknown-key"),
    ],
)
def test_secret_never_in_error_message(environ: dict[str, str], sets: list[str], key: str) -> None:
    exc = _refused(environ=environ, sets=sets)
    assert exc.key == key
    assert SECRET not in str(exc) and SECRET[:8] not in str(exc) and SECRET not in repr(exc)


def test_numbers_from_env_are_decimal_not_yaml_typed() -> None:
    cfg = load(environ={"TW_FEED__PORT": "0123", "TW_DATA__PERSIST": "true", "TW_RAY__NUM_CPUS": "null"})
    assert cfg.feed.port == 123 and cfg.data.persist is True and cfg.ray.num_cpus is None


# --------------------------------------------------------------------- the CLI
def _cli(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TW_")} | env_extra
    return subprocess.run(
        [sys.executable, "-m", "tinywindow", *args, "data", "list"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "kind",
    [pytest.param("laughs-file", id="cli-billion-laughs"), pytest.param("env-inf", id="cli-env-inf"),
     pytest.param("set-halt", id="cli-set-halt-below-reduce")],
)
def test_cli_bad_config_exits_nonzero_one_line(tmp_path: Path, kind: str) -> None:
    if kind == "laughs-file":
        proc = _cli(["-c", str(_write(tmp_path, "laughs.yaml", LAUGHS))], {})
    elif kind == "env-inf":
        proc = _cli([], {"TW_RISK__MAX_GROSS": "inf", "TW_SERVING__TOKEN": SECRET})
    else:
        proc = _cli(["-s", "risk.halt_drawdown=0.01"], {})
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and SECRET not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ConfigError: ") and len(lines[0]) < MAX_MESSAGE
