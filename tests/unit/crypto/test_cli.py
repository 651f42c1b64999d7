"""``tinywindow keys ...`` and ``tinywindow verify ...`` end to end (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinywindow.cli import main
from tinywindow.crypto import journal_format as jf
from tinywindow.crypto import open_keystore
from tinywindow.crypto.journal import Journal
from tinywindow.crypto.manifest import sign_dir

SECRET = "s3cret-Passphrase-xyz"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TW_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TW_PASSPHRASE", SECRET)
    monkeypatch.setenv("TW_CRYPTO__SCRYPT_LOG2_N", "10")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    assert SECRET not in out.out and SECRET not in out.err  # never printed or logged
    return rc, out.out + out.err


def test_keys_commands(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(capsys, "--log-level", "DEBUG", "keys", "init")
    assert rc == 0 and "created keystore" in out
    rc, out = run(capsys, "keys", "init")
    assert rc == 2 and "already exists" in out
    rc, out = run(capsys, "keys", "rotate")
    assert rc == 0 and "->" in out
    rc, out = run(capsys, "keys", "list", "--json")
    rows = json.loads(out)
    assert [r["active"] for r in rows] == [False, True]
    rc, _ = run(capsys, "keys", "export-public", "-o", str(env / "pub.json"))
    assert rc == 0 and len(json.loads((env / "pub.json").read_text())["keys"]) == 2


def test_wrong_or_missing_passphrase(env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(capsys, "keys", "init")[0] == 0
    monkeypatch.setenv("TW_PASSPHRASE", "nope-nope")
    rc, out = run(capsys, "keys", "rotate")
    assert rc == 2 and "wrong passphrase" in out
    monkeypatch.delenv("TW_PASSPHRASE")
    rc, out = run(capsys, "keys", "rotate")
    assert rc == 2 and "TW_PASSPHRASE" in out


def test_verify_names_the_first_bad_record(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "keys", "init")[0] == 0
    run(capsys, "keys", "export-public", "-o", str(env / "pub.json"))
    from tinywindow.config import load

    cfg = load()
    keystore = open_keystore(cfg.crypto, cfg.data_dir)
    path = env / "orders.twj"
    with Journal(path, keystore, fsync=False) as j:
        for i in range(6):
            j.append("order", {"i": i})
    art = env / "model"
    art.mkdir()
    (art / "w.bin").write_bytes(b"weights")
    sign_dir(art, keystore, {"v": 1})
    rc, out = run(capsys, "verify", str(path), str(art), "--public-keys", str(env / "pub.json"))
    assert rc == 0 and out.count("OK") == 2
    records, _ = jf.scan(path.read_bytes())
    data = bytearray(path.read_bytes())
    data[records[3].offset + 100] ^= 1
    path.write_bytes(bytes(data))
    rc, out = run(capsys, "verify", str(path), str(art))
    assert rc == 1 and "first bad record is seq 3" in out


def test_verify_a_folder_of_journals_checks_each_journal(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``<data_dir>/journal`` (no manifest) stands for every journal in it; one bad journal
    among them is named and makes the exit code 1."""
    assert run(capsys, "keys", "init")[0] == 0
    from tinywindow.config import load

    cfg = load()
    keystore = open_keystore(cfg.crypto, cfg.data_dir)
    folder = env / "journal"
    folder.mkdir()
    for name in ("a-portfolio.journal", "agent-x.twj"):
        with Journal(folder / name, keystore, fsync=False) as j:
            for i in range(3):
                j.append("order", {"i": i})
    rc, out = run(capsys, "verify", str(folder))
    assert rc == 0 and out.count(": OK, ") == 2 and "a-portfolio.journal" in out and "agent-x.twj" in out
    path = folder / "agent-x.twj"
    records, _ = jf.scan(path.read_bytes())
    data = bytearray(path.read_bytes())
    data[records[1].offset + 100] ^= 1
    path.write_bytes(bytes(data))
    rc, out = run(capsys, "verify", str(folder))
    assert rc == 1 and "agent-x.twj" in out and "first bad record is seq 1" in out
