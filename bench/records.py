"""Results people look at and query (issue 15): report generation, fills/s into the SQL trade store
against the journal's append rate, and the cost of explaining a traded decision.

1. **Report.** ``tinywindow.report.build_report`` on a 10-year, 50-symbol ``RunRecords``
   (``tests/unit/report/synth.py``: 2,520 business days x 50 symbols, ~20,000 fills, three
   agents' votes and outcomes per bar per symbol), encoded and written to a temp file; best
   and median of ``--report-repeats``.  Goals: < 5 s and < 10 MB.
2. **Fills/s.**  Real engine events: ``TradingEngine.on_bars`` then ``apply_signals`` per bar
   (``--store-symbols`` x ``--store-bars``, synthetic regime-switching panel, SMA(10/30)
   target exposures, EWMA sizing: ``bench/engine.py``'s setup), journal off, every committed
   batch kept.  The same batches then go through, one commit at a time:
   * the journal (``Journal.append_many(CODEC.encode_all(batch))``: what
     ``DurableState.commit`` does; codec + AES-GCM + Ed25519 signature per batch), with
     fsync on (``crypto.journal_fsync`` default) and off;
   * the LIVE store path, ``StoreWriter.on_events(batch, head_seq)`` after each journal
     commit, as ``actors/portfolio.py`` calls it (journal append untimed), into SQLite
     (WAL, synchronous=NORMAL, as ``TradeStore`` sets it) and into a throwaway PostgreSQL 15
     server (initdb/pg_ctl in a temp dir as a non-root user, ``fsync`` on unless
     ``--pg-fsync-off``);
   * ``TradeStore.project`` (the bulk rebuild, one transaction) of ``load_run`` on that
     journal (the synthetic report records carry no journal seqs, so they cannot be projected).
   Fills/s = fills / seconds in the timed call.  "Keeps up": store fills/s against the
   journal's (fsync on, the configured default) and against the fills/s the engine produces at
   BENCHMARKS.md's 45,654 bar-events/s (this run's fills per bar-event x that rate).
3. **Explanations.**  ``tinywindow.models.explain.explain`` with one key per call (one traded
   decision), window 32, 14 features, 50 symbols x (window + 4) bars of features as the
   serving call carries them: XGBoost (``XGBPredictor``, trained here with ``XGBParams()``,
   exact tree SHAP) and the RL policies (``RLPredictor`` over ``build_policy`` lstm and
   transformer, ``PPOParams()`` architecture, integrated gradients, 32 steps); ``--explain-warmup``
   calls first, then ``--explain-calls`` timed.

    .venv/bin/python bench/records.py [--store-symbols 50] [--store-bars 504] [--explain-calls 200] [--no-postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinywindow.cli._tables import table
from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event
from tinywindow.crypto.config import CryptoConfig
from tinywindow.crypto.journal import Journal
from tinywindow.crypto.keystore import KeyStore
from tinywindow.execution.config import PortfolioConfig
from tinywindow.execution.engine import BarRow, SignalRow, TradingEngine
from tinywindow.execution.events import OrderFilled
from tinywindow.risk.config import RiskConfig

REPORT_GOAL_S, REPORT_GOAL_MB = 5.0, 10.0
ENGINE_BAR_EVENTS_S = 45_654  # BENCHMARKS.md, "Event engine vs backtrader": TradingEngine, journal off
PASS = "bench records passphrase"
PG_USER = "tw_pgtest"  # the test fixture's user (tests/unit/records/test_postgres.py)
RUN, MODE = "bench", "backtest"
T0 = pd.Timestamp("2015-01-02T21:00:00Z").value


# --------------------------------------------------------------------------- 1. report


def bench_report(bars: int, symbols: int, fills: int, repeats: int) -> dict[str, Any]:
    from tests.unit.report.synth import synthetic_records
    from tinywindow.report import build_report

    t0 = time.perf_counter()
    rec = synthetic_records(bars=bars, symbols=symbols, fills=fills)
    build_s = time.perf_counter() - t0
    secs, size = [], 0
    with tempfile.TemporaryDirectory(prefix="tw-report-") as tmp:
        for _ in range(repeats):
            t0 = time.perf_counter()
            data = build_report(rec).encode()
            (Path(tmp) / "report.html").write_bytes(data)
            secs.append(time.perf_counter() - t0)
            size = len(data)
    return {"best_s": min(secs), "median_s": float(np.median(secs)), "mb": size / 1e6, "records_s": build_s,
            "fills": len(rec.fills), "votes": len(rec.votes), "outcomes": len(rec.outcomes), "signals": len(rec.signals)}


# --------------------------------------------------------------------------- 2. engine events


def engine_configs(symbols: int) -> tuple[RiskConfig, PortfolioConfig]:
    """bench/engine.py's: EWMA volatility, per-symbol caps of 1/symbols, drawdown states off."""
    cap = min(1.0, 1.0 / symbols)
    risk = RiskConfig(max_position=cap, max_weight=cap, max_gross=2.0, max_net=2.0, confidence_floor=0.0,
                      reduce_drawdown=1.0, halt_drawdown=1.0, vol_model="ewma")
    return risk, PortfolioConfig(initial_cash_usd=1_000_000.0, commission_bps=10.0, slippage_bps=5.0)


def engine_batches(symbols: int, bars: int, seed: int) -> dict[str, Any]:
    """Drive the engine (journal off) and keep every committed batch, in commit order."""
    from tinywindow.backtest.simulator import sma
    from tinywindow.data.sources.synthetic import generate_panel

    data = generate_panel(symbols, bars, seed)
    ts = pd.date_range("2015-01-02", periods=bars, freq="B", tz="UTC").as_unit("ns").asi8.tolist()
    names = [f"S{n:03d}" for n in range(symbols)]
    with np.errstate(invalid="ignore"):
        expo = np.nan_to_num(np.sign(sma(data["close"], 10) - sma(data["close"], 30)), nan=0.0).astype(int).tolist()
    o, c = data["open"].tolist(), data["close"].tolist()
    bar_rows = [[BarRow(s, t, o[i][n], c[i][n]) for n, s in enumerate(names)] for i, t in enumerate(ts)]
    sig_rows = [[SignalRow(s, t, expo[i][n], 1.0, "sma") for n, s in enumerate(names)] for i, t in enumerate(ts)]
    risk, port = engine_configs(symbols)
    eng = TradingEngine(risk, port)
    batches: list[list[Event]] = []
    eng.on_commit = batches.append  # what the PortfolioActor's journal hook receives
    t0 = time.perf_counter()
    for b, s in zip(bar_rows, sig_rows, strict=True):
        eng.on_bars(b)
        eng.apply_signals(s)
    secs = time.perf_counter() - t0
    fills = sum(isinstance(e, OrderFilled) for batch in batches for e in batch)
    return {"batches": batches, "secs": secs, "fills": fills, "events": sum(map(len, batches)),
            "bar_events": symbols * bars, "risk": risk, "portfolio": port}


def n_fills(batch: Sequence[Event]) -> int:
    return sum(isinstance(e, OrderFilled) for e in batch)


def bench_journal(batches: list[list[Event]], keys: KeyStore, path: Path, fsync: bool) -> float:
    """Seconds in ``Journal.append_many(CODEC.encode_all(batch))`` over every batch."""
    total = 0.0
    with Journal(path, keys, clock=lambda: T0, fsync=fsync) as journal:
        for batch in batches:
            t0 = time.perf_counter()
            journal.append_many(CODEC.encode_all(batch))
            total += time.perf_counter() - t0
    return total


def bench_live_store(batches: list[list[Event]], keys: KeyStore, url: str, journal: Path, eng: dict[str, Any]) -> dict[str, Any]:
    """The live path: journal each batch (untimed), then ``StoreWriter.on_events`` (timed)."""
    from tinywindow.records.sql import StoreWriter, TradeStore

    store = TradeStore(url)
    per_commit: list[tuple[float, int]] = []
    with Journal(journal, keys, clock=lambda: T0, fsync=False) as j:
        writer = StoreWriter(store, RUN, MODE, lambda after: j.records(after=after), risk=eng["risk"],
                             portfolio=eng["portfolio"])
        writer.catch_up()  # start-up (empty journal): the first timed call is a plain live write
        for batch in batches:
            j.append_many(CODEC.encode_all(batch))
            head = j.head()[0]
            t0 = time.perf_counter()
            ok = writer.on_events(batch, head)
            per_commit.append((time.perf_counter() - t0, n_fills(batch)))
            if not ok:
                raise RuntimeError(f"StoreWriter failed on {store.safe_url} (see the log)")
    stored = len(store.trades(f"{RUN}-{MODE}"))
    store.close()
    secs = np.array([s for s, _ in per_commit])
    fills = np.array([f for _, f in per_commit])
    start = int(np.argmax(fills > 0))  # quarters of the commits from the first fill on (SMA warm-up has none)
    q = max(1, (len(per_commit) - start) // 4)
    return {"secs": float(secs.sum()), "fills": int(fills.sum()), "stored": stored, "commits": len(per_commit),
            "commit_p50_ms": float(np.percentile(secs, 50) * 1e3), "commit_p99_ms": float(np.percentile(secs, 99) * 1e3),
            "first_q_fills_s": float(fills[start:start + q].sum() / secs[start:start + q].sum()),
            "last_q_fills_s": float(fills[-q:].sum() / secs[-q:].sum())}


def bench_project(url: str, records: Any) -> float:
    from tinywindow.records.sql import TradeStore

    store = TradeStore(url)
    t0 = time.perf_counter()
    store.project(records)
    secs = time.perf_counter() - t0
    store.close()
    return secs


# --------------------------------------------------------------------------- PostgreSQL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres(fsync: bool) -> Iterator[str | None]:
    """A throwaway server from /usr/lib/postgresql/*/bin (the test fixture's recipe); None when
    the binaries are missing.  Stopped and removed on exit."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        yield None
        return
    bindir = Path(found[-1]).parent
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                           check=True, capture_output=True)
        as_user = ["runuser", "-u", PG_USER, "--"]
    tmp = Path(tempfile.mkdtemp(prefix="tw-pgbench-"))
    if as_user:
        shutil.chown(tmp, PG_USER)
        tmp.chmod(0o700)
    data, port = tmp / "data", _free_port()
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, capture_output=True)
        opts = f"-k {tmp} -p {port} -c listen_addresses=127.0.0.1 -c fsync={'on' if fsync else 'off'}"
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(tmp / "log"),
                        "-o", opts, "start"], check=True, capture_output=True)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- 3. explanations


def features_table(symbols: int, bars: int, n_features: int, seed: int) -> tuple[pa.Table, list[str]]:
    """A FEATURES table: ``ret_1`` (a random walk's log return) and noise features correlated
    with the next return, consecutive business days per symbol."""
    from tinywindow.contracts import features_schema

    rng = np.random.default_rng(seed)
    names = ["ret_1", *(f"f{i:02d}" for i in range(1, n_features))]
    ts = pd.date_range("2015-01-02T21:00", periods=bars, freq="B", tz="UTC").as_unit("ns").asi8
    ret = rng.normal(0, 0.015, (symbols, bars))
    cols: dict[str, np.ndarray] = {"ret_1": ret}
    nxt = np.concatenate([ret[:, 1:], np.zeros((symbols, 1))], axis=1)
    for n in names[1:]:
        cols[n] = rng.normal(0, 1, (symbols, bars)) + 20 * rng.uniform(0, 1) * nxt
    arrays = [pa.array(np.repeat([f"S{k:03d}" for k in range(symbols)], bars), pa.string()).dictionary_encode(),
              pa.array(np.tile(ts, symbols), pa.timestamp("ns", tz="UTC")),
              *(pa.array(cols[n].ravel().astype(np.float32)) for n in names)]
    return pa.Table.from_arrays(arrays, schema=features_schema(names)), names


def bench_explain(window: int, n_features: int, symbols: int, train_bars: int, calls: int, warmup: int,
                  seed: int) -> dict[str, dict[str, Any]]:
    import torch

    from tinywindow.models.explain import explain
    from tinywindow.models.params import PPOParams, XGBParams
    from tinywindow.models.rl import RLPredictor, build_policy
    from tinywindow.models.windows import fit_normalizer, to_series
    from tinywindow.models.xgb import train_xgb

    torch.set_num_threads(1)
    train, names = features_table(symbols, train_bars, n_features, seed)
    norm = fit_normalizer(to_series(train, names), names)
    t0 = time.perf_counter()
    xgb_pred, _ = train_xgb(to_series(train, names), norm, window, XGBParams(), seed=seed, threads=2)
    train_s = time.perf_counter() - t0
    cfg = PPOParams().model_config_dict()
    torch.manual_seed(seed)
    agents: dict[str, tuple[str, Any]] = {
        "xgboost": ("XGBPredictor (tree SHAP, pred_contribs)", xgb_pred),
        "lstm": ("RLPredictor lstm (integrated gradients)", RLPredictor("lstm", build_policy("lstm", window, n_features, cfg), norm, window, cfg)),
        "transformer": ("RLPredictor transformer (integrated gradients)",
                        RLPredictor("transformer", build_policy("transformer", window, n_features, cfg), norm, window, cfg)),
    }
    # what one serving call carries: every symbol's last window + 4 bars
    keep = window + 4
    last_ts = train.column("ts").cast(pa.int64()).to_numpy()
    cut = np.sort(np.unique(last_ts))[-keep]
    live = train.filter(pa.compute.greater_equal(train.column("ts").cast(pa.int64()), pa.scalar(int(cut), pa.int64())))
    final = int(np.max(last_ts))
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, Any]] = {}
    for agent, (path, pred) in agents.items():
        ms: list[float] = []
        rows = 0
        for i in range(warmup + calls):
            key = [(f"S{int(rng.integers(symbols)):03d}", final)]
            t0 = time.perf_counter()
            got = explain(pred, live, key)
            took = (time.perf_counter() - t0) * 1e3
            rows = got.num_rows
            if i >= warmup:
                ms.append(took)
        out[agent] = {"path": path, "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                      "rows": rows, "train_s": train_s if agent == "xgboost" else 0.0}
    return out


# --------------------------------------------------------------------------- main


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    got = fn()
    return got, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report-bars", type=int, default=2520)
    ap.add_argument("--report-symbols", type=int, default=50)
    ap.add_argument("--report-fills", type=int, default=20_000)
    ap.add_argument("--report-repeats", type=int, default=3)
    ap.add_argument("--store-symbols", type=int, default=50)
    ap.add_argument("--store-bars", type=int, default=504, help="engine bars replayed into the journal and stores")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--pg-fsync-off", action="store_true", help="start PostgreSQL with fsync=off (the tests' setting)")
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--features", type=int, default=14)
    ap.add_argument("--explain-symbols", type=int, default=50)
    ap.add_argument("--explain-train-bars", type=int, default=160)
    ap.add_argument("--explain-calls", type=int, default=200)
    ap.add_argument("--explain-warmup", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    wall0 = time.perf_counter()

    # 1. report
    rep = bench_report(args.report_bars, args.report_symbols, args.report_fills, args.report_repeats)

    # 2. fills/s
    from tinywindow.records import load_run
    from tinywindow.records.journal import journal_path

    eng = engine_batches(args.store_symbols, args.store_bars, args.seed)
    batches, fills = eng["batches"], eng["fills"]
    pg_fsync = not args.pg_fsync_off
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix="tw-records-") as tmp_s:
        tmp = Path(tmp_s)
        keys = KeyStore.init(tmp / "keys", PASS, scrypt_log2_n=10)
        default_fsync = CryptoConfig().journal_fsync
        j_on = bench_journal(batches, keys, tmp / "j-fsync.journal", fsync=True)
        data_dir = tmp / "run"
        jpath = journal_path(data_dir, RUN, MODE, "portfolio")
        j_off = bench_journal(batches, keys, jpath, fsync=False)
        sqlite = bench_live_store(batches, keys, f"sqlite:///{tmp / 'live.db'}", tmp / "j-sqlite.journal", eng)
        records, load_s = timed(lambda: load_run(data_dir, RUN, MODE, keys, risk=eng["risk"], portfolio=eng["portfolio"]))
        proj_sqlite = bench_project(f"sqlite:///{tmp / 'rebuild.db'}", records)
        pg: dict[str, Any] | None = None
        proj_pg = None
        pg_note = "skipped (--no-postgres)"
        if not args.no_postgres:
            try:
                with postgres(pg_fsync) as url:
                    if url is None:
                        pg_note = "skipped: no /usr/lib/postgresql/*/bin/initdb"
                    else:
                        pg = bench_live_store(batches, keys, url, tmp / "j-pg.journal", eng)
                        proj_pg = bench_project(url, records)  # replaces the live-written run
                        pg_note = ""
            except (subprocess.CalledProcessError, OSError) as exc:
                pg_note = f"skipped: server did not start ({exc})"

    # 3. explanations
    exp = bench_explain(args.window, args.features, args.explain_symbols, args.explain_train_bars,
                        args.explain_calls, args.explain_warmup, args.seed)

    # ------------------------------------------------------------------ output
    fills_per_bar_event = fills / eng["bar_events"]
    engine_fills_s = fills / eng["secs"]
    bench_engine_fills_s = ENGINE_BAR_EVENTS_S * fills_per_bar_event
    print(f"records bench: {os.cpu_count()} CPUs (shared), {time.perf_counter() - wall0:.0f} s wall")
    print(f"\n1. report: {args.report_bars} bars x {args.report_symbols} symbols; RunRecords with {rep['fills']:,} fills, "
          f"{rep['votes']:,} votes, {rep['outcomes']:,} outcomes, {rep['signals']:,} signals "
          f"(tests/unit/report/synth.py, built in {rep['records_s']:.2f} s, not counted)")
    report_ok = rep["median_s"] < REPORT_GOAL_S and rep["mb"] < REPORT_GOAL_MB
    print(table([["tinywindow.report.build_report + write", round(rep["best_s"], 2), round(rep["median_s"], 2),
                  round(rep["mb"], 2)]], ["code path", "best s", "median s", "MB"]))
    print(f"goal < {REPORT_GOAL_S:g} s and < {REPORT_GOAL_MB:g} MB: {'met' if report_ok else 'NOT met'} "
          f"(median {rep['median_s']:.2f} s of {args.report_repeats}, {rep['mb']:.2f} MB)")

    print(f"\n2. fills/s: TradingEngine over {args.store_symbols} symbols x {args.store_bars} bars (SMA 10/30, EWMA sizing): "
          f"{len(batches):,} commits, {eng['events']:,} events, {fills:,} fills "
          f"({fills_per_bar_event:.3f} fills per bar-event); crypto.journal_fsync default = {default_fsync}")
    rows.append(["TradingEngine.on_bars/apply_signals (journal off), this run", round(eng["secs"], 2), round(engine_fills_s),
                 round(eng["bar_events"] / eng["secs"]), ""])
    rows.append(["  at BENCHMARKS.md's 45,654 bar-events/s", "", round(bench_engine_fills_s), ENGINE_BAR_EVENTS_S, ""])
    rows.append(["Journal.append_many(CODEC.encode_all) fsync ON (default)", round(j_on, 2), round(fills / j_on),
                 round(eng["bar_events"] / j_on), ""])
    rows.append(["Journal.append_many(CODEC.encode_all) fsync off", round(j_off, 2), round(fills / j_off),
                 round(eng["bar_events"] / j_off), ""])

    def live_row(name: str, r: dict[str, Any]) -> list[Any]:
        return [name, round(r["secs"], 2), round(r["fills"] / r["secs"]), round(eng["bar_events"] / r["secs"]),
                f"p50 {r['commit_p50_ms']:.2f} / p99 {r['commit_p99_ms']:.2f} ms; fills/s 1st/last quarter "
                f"{r['first_q_fills_s']:,.0f} / {r['last_q_fills_s']:,.0f}"]

    rows.append(live_row("StoreWriter.on_events -> SQLite (live, per commit)", sqlite))
    if pg is not None:
        rows.append(live_row(f"StoreWriter.on_events -> PostgreSQL 15 (live, fsync {'on' if pg_fsync else 'off'})", pg))
    rows.append(["load_run (journal -> RunRecords)", round(load_s, 2), round(fills / load_s), "", ""])
    rows.append(["TradeStore.project -> SQLite (bulk rebuild)", round(proj_sqlite, 2), round(fills / proj_sqlite), "", ""])
    if proj_pg is not None:
        rows.append(["TradeStore.project -> PostgreSQL (bulk rebuild)", round(proj_pg, 2), round(fills / proj_pg), "", ""])
    print(table(rows, ["code path", "seconds", "fills/s", "bar-events/s", "per commit"]))
    if pg_note:
        print(f"PostgreSQL: {pg_note}")
    for name, r in (("SQLite", sqlite), ("PostgreSQL", pg)):
        if r is not None and r["stored"] != r["fills"]:
            print(f"WARNING: {name} store holds {r['stored']} fills, the journal {r['fills']}")

    journal_fills_s = fills / (j_on if default_fsync else j_off)
    for name, r in (("SQLite", sqlite), ("PostgreSQL", pg)):
        if r is None:
            continue
        rate = r["fills"] / r["secs"]
        vs_j, vs_e = rate / journal_fills_s, rate / bench_engine_fills_s
        keeps = vs_e >= 1.0
        print(f"{name} store: {rate:,.0f} fills/s = {vs_j:.2f}x the journal's {journal_fills_s:,.0f} fills/s "
              f"(fsync {'on' if default_fsync else 'off'}, the default) and {vs_e:.2f}x the "
              f"{bench_engine_fills_s:,.0f} fills/s the engine produces at 45,654 bar-events/s: "
              f"{'keeps up' if keeps else 'does NOT keep up'} with the engine"
              f"{'' if rate >= journal_fills_s else '; slower than the journal'}"
              f" (last quarter of the run: {r['last_q_fills_s']:,.0f} fills/s)")

    print(f"\n3. explanation per traded decision: tinywindow.models.explain.explain, one key per call, window {args.window}, "
          f"{args.features} features, {args.explain_symbols} symbols x {args.window + 4} bars per call, "
          f"{args.explain_warmup} warm-up + {args.explain_calls} timed, torch 1 thread "
          f"(XGBoost trained {exp['xgboost']['train_s']:.1f} s, XGBParams())")
    print(table([[r["path"], r["rows"], round(r["p50"], 2), round(r["p99"], 2)] for r in exp.values()],
                ["code path", "rows out", "p50 ms", "p99 ms"]))
    explain_p99 = max(r["p99"] for r in exp.values())

    out: dict[str, Any] = {
        "report_s": round(rep["median_s"], 3), "report_mb": round(rep["mb"], 2), "report_goal_met": report_ok,
        "sqlite_fills_s": round(sqlite["fills"] / sqlite["secs"]),
        "postgres_fills_s": None if pg is None else round(pg["fills"] / pg["secs"]),
        "journal_fills_s": round(journal_fills_s), "journal_fsync": default_fsync,
        "journal_nofsync_fills_s": round(fills / j_off),
        "engine_fills_s_at_45654": round(bench_engine_fills_s), "engine_fills_s_this_run": round(engine_fills_s),
        "sqlite_project_fills_s": round(fills / proj_sqlite),
        "postgres_project_fills_s": None if proj_pg is None else round(fills / proj_pg),
        "sqlite_last_quarter_fills_s": round(sqlite["last_q_fills_s"]),
        "postgres_last_quarter_fills_s": None if pg is None else round(pg["last_q_fills_s"]),
        "explain_p99_ms": round(explain_p99, 2),
        **{f"explain_{a}_p50_ms": round(r["p50"], 2) for a, r in exp.items()},
        **{f"explain_{a}_p99_ms": round(r["p99"], 2) for a, r in exp.items()},
        "fills": fills, "commits": len(batches), "store_symbols": args.store_symbols, "store_bars": args.store_bars,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
