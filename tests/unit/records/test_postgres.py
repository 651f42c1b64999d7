"""The trade store against a real PostgreSQL server, started from the machine's binaries
(initdb + pg_ctl in a temporary folder, as a non-root user, trust auth, 127.0.0.1 only)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from tests.unit.records.conftest import PORT
from tinywindow.records import TradeStore, load_run
from tinywindow.records._models import OrderRow

pytestmark = pytest.mark.unit
USER = "tw_pgtest"


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _runner() -> list[str]:
    """Run as a non-root user (initdb refuses root): our own test user, created when missing."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True,
                       capture_output=True)
    return ["runuser", "-u", USER, "--"]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    bindir = _bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (/usr/lib/postgresql/*/bin; .ci/run installs them)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as a non-root user")
    as_user = _runner()
    tmp = Path(tempfile.mkdtemp(prefix="tw-pg-"))
    if as_user:
        shutil.chown(tmp, USER)
        tmp.chmod(0o700)
    data, port = tmp / "data", _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(tmp / "log"),
                    "-o", f"-k {tmp} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def test_project_and_verify_on_postgres(pg_url: str, small_run: dict[str, Any]) -> None:
    rec = load_run(small_run["data_dir"], "t", "backtest", small_run["keys"], portfolio=PORT)
    store = TradeStore(pg_url)
    store.project(rec)
    store.project(rec)  # idempotent
    assert store.verify(rec) == []
    trades = store.trades("t")
    assert [Decimal(q) for q in trades["qty"]] == [Decimal(q) for q in rec.fills["qty_exact"]]
    assert [Decimal(f) for f in trades["fee"]] == [Decimal(f) for f in rec.fills["fee_exact"]]  # exact, every digit
    assert store.rebuild(small_run["data_dir"], small_run["keys"], portfolio=PORT) == ["t-backtest"]
    assert store.verify(rec) == []
    victim = rec.orders["order_id"].iloc[1]
    with store.engine.begin() as conn:
        conn.execute(update(OrderRow).where(OrderRow.order_id == victim).values(qty=Decimal("999")))
    assert any(victim in d and "qty" in d for d in store.verify(rec))
    store.close()
