"""Cross-sectional features, the IC, and the planted synthetic signals (``models.xs``,
``data.sources.synthetic.generate_xs``)."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest
from scipy.special import ndtri
from scipy.stats import spearmanr

from tinywindow.contracts import BARS, validate
from tinywindow.data import features as F
from tinywindow.data.sources.synthetic import PlantedSignals, SyntheticSource, generate, generate_xs
from tinywindow.models.windows import to_series
from tinywindow.models.xs import (
    XS_KEY,
    information_coefficient,
    table_ic,
    to_panel,
    xs_normalize,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def feats() -> pa.Table:
    return F.compute(generate(30, 120, seed=5))


@pytest.fixture(scope="module")
def big() -> tuple[pa.Table, object]:
    return generate_xs(200, 500, seed=0)


def values(table: pa.Table, names: tuple[str, ...] = F.FEATURE_NAMES) -> np.ndarray:
    return np.stack([table.column(n).to_numpy(zero_copy_only=False) for n in names], axis=1)


# ------------------------------------------------------------------ xs_normalize
def test_rank_gauss_known_values() -> None:
    t = pa.table({
        "symbol": ["A", "B", "C", "D", "E"],
        "ts": pa.array([1, 1, 1, 2, 3], pa.int64()),
        "f": pa.array([1.0, 2.0, 2.0, 7.0, np.nan], pa.float32()),
    })
    z = xs_normalize(t).column("f").to_numpy(zero_copy_only=False)
    expected = ndtri(np.array([0.5, 2.0, 2.0]) / 3.0)  # average ranks 1, 2.5, 2.5 of 3
    np.testing.assert_allclose(z[:3], expected, rtol=1e-6)
    assert z[3] == 0.0  # lone finite value of its ts
    assert np.isnan(z[4])


def test_xs_normalize_idempotent_and_marked(feats: pa.Table) -> None:
    once = xs_normalize(feats)
    assert once.schema.metadata[XS_KEY] == b"rank-gauss"
    assert once.schema.names == feats.schema.names and once.num_rows == feats.num_rows
    assert xs_normalize(once) is once  # marked: passed through
    twice = xs_normalize(once.replace_schema_metadata({}))  # unmarked: ranks again
    np.testing.assert_allclose(values(twice), values(once), atol=1e-6)
    assert not np.allclose(np.nan_to_num(values(once)), np.nan_to_num(values(feats)))


def test_xs_normalize_keeps_nan_and_row_order(feats: pa.Table) -> None:
    out = xs_normalize(feats)
    np.testing.assert_array_equal(np.isnan(values(out)), ~np.isfinite(values(feats)))
    assert out.column("symbol").equals(feats.column("symbol"))
    assert out.column("ts").equals(feats.column("ts"))
    assert all(out.schema.field(n).type == pa.float32() for n in F.FEATURE_NAMES)


def test_xs_normalize_reads_only_rows_of_the_same_ts(feats: pa.Table) -> None:
    ts = feats.column("ts").cast(pa.int64()).to_numpy()
    t0 = np.unique(ts)[80]
    rng = np.random.default_rng(0)
    poisoned = feats
    for name in F.FEATURE_NAMES:
        v = feats.column(name).to_numpy(zero_copy_only=False).copy()
        v[ts != t0] = rng.standard_normal(int((ts != t0).sum())) * 1e6
        i = poisoned.schema.get_field_index(name)
        poisoned = poisoned.set_column(i, poisoned.schema.field(i), pa.array(v.astype(np.float32)))
    a = values(xs_normalize(feats))[ts == t0]
    b = values(xs_normalize(poisoned))[ts == t0]
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ panel and IC
def test_to_panel_matches_series(feats: pa.Table) -> None:
    panel = to_panel(feats)
    series = to_series(feats, F.FEATURE_NAMES)
    assert panel.symbols == [s.symbol for s in series]
    for j, s in enumerate(series):
        np.testing.assert_array_equal(panel.fwd[:, j], s.fwd_ret)
        np.testing.assert_array_equal(panel.x[:, j], s.x)


def test_ic_equals_scipy_spearman_per_bar() -> None:
    rng = np.random.default_rng(3)
    score = rng.standard_normal((40, 25))
    fwd = 0.3 * score + rng.standard_normal((40, 25))
    score[:, :5] = np.round(score[:, :5])  # ties
    score[rng.random((40, 25)) < 0.1] = np.nan
    fwd[rng.random((40, 25)) < 0.1] = np.nan
    score[7, 3:] = np.nan  # too few names on bar 7
    ic = information_coefficient(score, fwd, min_names=5)
    for t in range(40):
        ok = np.isfinite(score[t]) & np.isfinite(fwd[t])
        if ok.sum() < 5:
            assert np.isnan(ic.per_bar[t])
            continue
        assert ic.per_bar[t] == pytest.approx(spearmanr(score[t, ok], fwd[t, ok]).statistic, abs=1e-12)
    assert ic.n_bars == 39
    good = ic.per_bar[np.isfinite(ic.per_bar)]
    assert ic.t_stat == pytest.approx(good.mean() / good.std(ddof=1) * np.sqrt(39))


def test_table_ic_joins_on_symbol_and_ts(feats: pa.Table) -> None:
    panel = to_panel(feats, ["ret_1"])
    rng = np.random.default_rng(1)
    score = rng.standard_normal(feats.num_rows)
    signals = pa.table({"symbol": feats.column("symbol"), "ts": feats.column("ts"), "score": score})
    shuffled = signals.take(pa.array(rng.permutation(signals.num_rows)))
    uts = panel.ts
    dense = np.full(panel.fwd.shape, np.nan)
    ti = np.searchsorted(uts, feats.column("ts").cast(pa.int64()).to_numpy())
    si = np.searchsorted(panel.symbols, feats.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False))
    dense[ti, si] = score
    want = information_coefficient(dense, panel.fwd)
    got = table_ic(shuffled, feats)
    np.testing.assert_array_equal(got.per_bar, want.per_bar)


# ------------------------------------------------------------------ planted generator
def digest(t: pa.Table) -> str:
    h = hashlib.sha256()
    h.update("\n".join(t.column("symbol").cast(pa.string()).to_pylist()).encode())
    h.update(t.column("ts").cast(pa.int64()).to_numpy().tobytes())
    for k in ("open", "high", "low", "close", "volume"):
        h.update(np.ascontiguousarray(t.column(k).to_numpy(), dtype="<f8").tobytes())
    return h.hexdigest()


def test_unplanted_generate_unchanged() -> None:
    # digests of the generator on main before planted signals were added
    assert digest(generate(7, 50, seed=3)) == "22d9b0f41758e4f795c984bd1fbeb1adb95c11449af3114bc1fe44f8391a796c"
    assert (
        digest(generate(5, 30, seed=0, start="2020-01-01", freq="h"))
        == "a40115221a829d469eedd6d46a8652b4597456bb7e92a4fb7575c8a3c9273e7e"
    )
    source = next(SyntheticSource("s", 7, 50, 3).parts())[1]
    assert digest(source) == digest(generate(7, 50, seed=3))


def next_returns(table: pa.Table, n_symbols: int, n_bars: int) -> np.ndarray:
    close = table.column("close").to_numpy().reshape(n_symbols, n_bars).T
    out = np.full_like(close, np.nan)
    out[:-1] = close[1:] / close[:-1] - 1.0
    return out


def test_planted_oracle_ic_in_documented_band(big: tuple) -> None:
    table, truth = big
    ic = information_coefficient(truth.expected_return, next_returns(table, 200, 500))
    assert 0.05 <= ic.mean <= 0.10, ic.mean
    assert ic.t_stat > 5


def test_planted_signal_decays_with_horizon(big: tuple) -> None:
    table, truth = big
    fwd = next_returns(table, 200, 500)
    ics = []
    for h in (0, 2, 5, 20):
        lagged = np.full_like(truth.expected_return, np.nan)
        lagged[h:] = truth.expected_return[: 500 - h]
        ics.append(information_coefficient(lagged, fwd).mean)
    assert ics[0] > ics[1] > ics[2] > ics[3], ics
    assert abs(ics[3]) < 0.25 * ics[0]


def test_planted_bars_valid_and_seeded(big: tuple) -> None:
    table, truth = big
    validate(table, BARS)
    assert truth.expected_return.shape == (500, 200) and len(truth.symbols) == 200
    again, truth2 = generate_xs(200, 500, seed=0)
    assert digest(again) == digest(table)
    np.testing.assert_array_equal(truth2.expected_return, truth.expected_return)
    assert digest(generate_xs(20, 50, seed=0, planted=PlantedSignals(reversal=0.0))[0]) != digest(generate(20, 50))


def test_synthetic_source_planted_from_mapping() -> None:
    source = SyntheticSource("s", 10, 60, 2, planted={"volume_ic": 0.1})
    table = next(source.parts())[1]
    assert digest(table) == digest(generate_xs(10, 60, seed=2, planted=PlantedSignals(volume_ic=0.1))[0])
    with pytest.raises(ValueError, match="unknown planted signal"):
        SyntheticSource("s", planted={"bogus": 1.0})
