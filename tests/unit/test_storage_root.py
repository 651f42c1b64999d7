"""The storage root: state never lands in a Ray job's throw-away working directory unless asked,
URIs go only where a ``pyarrow.fs`` writer takes them, Tune's storage path is absolute."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from tinywindow.config import Config, load
from tinywindow.core import storage
from tinywindow.core.storage import (
    JOB_CONFIG_ENV,
    StorageConfig,
    check_state_root,
    ephemeral_root,
    is_uri,
    local_tune_dir,
    tune_storage,
)
from tinywindow.errors import ConfigError

STRICT, LENIENT = StorageConfig(), StorageConfig(allow_ephemeral=True)


@pytest.fixture()
def job_dir(tmp_path: Path) -> Path:
    """A folder laid out as Ray unpacks a job's ``--working-dir``."""
    d = tmp_path / "session_2025" / "runtime_resources" / "working_dir_files" / "_ray_pkg_0123abcd"
    (d / "tinywindow").mkdir(parents=True)
    return d


def test_the_storage_section_defaults_to_refusing_and_rejects_unknown_keys() -> None:
    cfg = load(environ={})
    assert cfg.storage.allow_ephemeral is False
    assert load(environ={}, overrides=["storage.allow_ephemeral=true"]).storage.allow_ephemeral is True
    assert load(environ={"TW_STORAGE__ALLOW_EPHEMERAL": "1"}).storage.allow_ephemeral is True
    with pytest.raises(ConfigError) as err:
        load(environ={}, overrides={"storage": {"allow_ephemral": True}})
    assert err.value.key == "storage.allow_ephemral"


def test_the_job_working_dir_is_found_from_the_current_directory(job_dir: Path) -> None:
    assert ephemeral_root(cwd=job_dir, environ={}) == job_dir
    assert ephemeral_root(cwd=job_dir / "tinywindow", environ={}) == job_dir
    assert ephemeral_root(cwd=job_dir.parent, environ={}) is None  # working_dir_files itself: no job
    assert ephemeral_root(cwd="/srv/tinywindow", environ={}) is None


def test_the_job_working_dir_is_found_from_pythonpath_when_the_entrypoint_changed_directory(
    job_dir: Path, tmp_path: Path,
) -> None:
    env = {"PYTHONPATH": f"/opt/lib{os.pathsep}{job_dir}"}
    assert ephemeral_root(cwd=tmp_path, environ=env) == job_dir


def test_a_local_working_dir_is_the_nodes_own_folder_not_a_copy(job_dir: Path) -> None:
    env = {JOB_CONFIG_ENV: json.dumps({"runtime_env": {"working_dir": "local:///srv/app"}, "metadata": {}})}
    assert ephemeral_root(cwd=job_dir, environ=env) is None
    bad = {JOB_CONFIG_ENV: "{not json"}
    assert ephemeral_root(cwd=job_dir, environ=bad) == job_dir  # unreadable job config: the path decides


def test_the_real_current_directory_is_used_by_default(job_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv(JOB_CONFIG_ENV, raising=False)
    monkeypatch.chdir(job_dir)
    with pytest.raises(ConfigError) as err:
        check_state_root("var", STRICT, "tinywindow tune")
    assert err.value.key == "data_dir"


def test_state_inside_the_job_working_dir_is_refused_naming_both_paths_and_the_fix(job_dir: Path) -> None:
    with pytest.raises(ConfigError) as err:
        check_state_root(str(job_dir / "var"), STRICT, "tinywindow tune", ephemeral=job_dir)
    msg = str(err.value)
    assert str(job_dir / "var") in msg and f"working directory {job_dir}" in msg
    assert "data_dir=/mnt/shared/tinywindow" in msg and "storage.allow_ephemeral=true" in msg
    assert msg.startswith("tinywindow tune:") and err.value.key == "data_dir"
    with pytest.raises(ConfigError):
        check_state_root(str(job_dir), STRICT, "x", ephemeral=job_dir)  # the folder itself too


def test_a_relative_data_dir_resolves_against_the_current_directory(
    job_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(job_dir)
    with pytest.raises(ConfigError, match=r"data_dir .var. \(resolved: "):
        check_state_root("var", STRICT, "tune", ephemeral=job_dir)
    monkeypatch.setattr(storage, "ephemeral_root", lambda: job_dir)  # the detection, faked
    with pytest.raises(ConfigError):
        check_state_root("var", STRICT, "tune")


def test_a_symlinked_path_into_the_job_dir_is_refused(job_dir: Path, tmp_path: Path) -> None:
    link = tmp_path / "latest"
    link.symlink_to(job_dir.parent.parent.parent)  # like /tmp/ray/session_latest
    with pytest.raises(ConfigError):
        check_state_root(str(link / "runtime_resources" / "working_dir_files" / job_dir.name / "var"),
                         STRICT, "tune", ephemeral=job_dir)


def test_allow_ephemeral_lets_it_through_with_a_warning(
    job_dir: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="tinywindow.storage"):
        root = check_state_root(str(job_dir / "var"), LENIENT, "tinywindow demo", ephemeral=job_dir)
    assert root == job_dir / "var"
    assert [r.levelno for r in caplog.records if r.name == "tinywindow.storage"] == [logging.WARNING]


def test_an_absolute_root_outside_the_job_dir_is_accepted(job_dir: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "tinywindow"
    assert check_state_root(str(shared), STRICT, "tune", ephemeral=job_dir) == shared
    assert check_state_root(str(tmp_path / "session_2025"), STRICT, "t", ephemeral=job_dir).is_absolute()


def test_outside_a_job_a_relative_root_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(storage, "ephemeral_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert check_state_root("var", STRICT, "tune") == tmp_path / "var"


@pytest.mark.parametrize("uri", ["s3://bucket/tw", "gs://bucket/tw", "file:///srv/tw", "hdfs://nn:8020/tw"])
def test_a_uri_data_dir_is_refused_pointing_to_what_does_take_object_storage(uri: str) -> None:
    assert is_uri(uri)
    with pytest.raises(ConfigError) as err:
        check_state_root(uri, STRICT, "tinywindow tune", ephemeral=None)
    msg = str(err.value)
    assert "POSIX path" in msg and "agents.tune_dir" in msg and "crypto.store_dir" in msg
    assert err.value.key == "data_dir"


@pytest.mark.parametrize("path", ["var", "/mnt/shared/tw", "C:/x", "./s3://x", "relative/dir"])
def test_plain_paths_are_not_uris(path: str) -> None:
    assert not is_uri(path)


def test_tune_storage_is_absolute_under_data_dir_or_the_uri_as_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert tune_storage("tune", "var") == str(tmp_path / "var" / "tune")  # not relative to a trial's cwd
    assert tune_storage("tune", "/data/tw") == "/data/tw/tune"
    assert tune_storage("/elsewhere/tune", "/data/tw") == "/elsewhere/tune"
    assert tune_storage("s3://bucket/tune", "/data/tw") == "s3://bucket/tune"
    assert local_tune_dir("s3://bucket/tune", "/data/tw") is None
    assert local_tune_dir("tune", "/data/tw") == Path("/data/tw/tune")


def test_the_root_config_takes_a_tune_uri_and_resolves_it_as_is() -> None:
    cfg = Config().set("agents.tune_dir", "gs://bucket/tw/tune").set("data_dir", "/data/tw")
    assert tune_storage(cfg.agents.tune_dir, cfg.data_dir) == "gs://bucket/tw/tune"


@pytest.mark.parametrize("argv", [
    ["tune", "--agent", "xgboost"],
    ["agents", "train", "--agent", "xgboost"],
    ["keys", "init"],
    ["data", "ingest", "goog"],
    ["demo", "--quick"],
])
def test_every_command_that_writes_state_refuses_the_job_dir_before_writing(
    argv: list[str], job_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from tinywindow.cli import main

    monkeypatch.setattr(storage, "ephemeral_root", lambda: job_dir)
    monkeypatch.chdir(job_dir)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for name in [n for n in os.environ if n.startswith("TW_")]:
        monkeypatch.delenv(name)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ConfigError: tinywindow ") and "storage.allow_ephemeral=true" in err
    assert not (job_dir / "var").exists()  # nothing written, nothing wiped
