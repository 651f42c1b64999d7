"""Windows, per-symbol series and scaling: vectorized code against naive loops."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tests.unit.models.synth import NAMES, planted_features
from tinywindow.models.windows import (
    Normalizer,
    WindowIndex,
    fit_normalizer,
    series_windows,
    to_series,
)


def _shuffled(table: pa.Table, seed: int = 0) -> pa.Table:
    order = np.random.default_rng(seed).permutation(table.num_rows)
    return table.take(pa.array(order))


def test_series_are_time_ordered_with_forward_returns() -> None:
    table = planted_features(n_symbols=2, n_bars=50)
    series = to_series(_shuffled(table))
    assert [s.symbol for s in series] == ["SYM0", "SYM1"]
    for s in series:
        assert np.all(np.diff(s.ts) > 0)
        ret1 = s.x[:, NAMES.index("ret_1")].astype(np.float64)
        np.testing.assert_allclose(s.fwd_ret[:-1], np.expm1(ret1[1:]), rtol=1e-6)
        assert np.isnan(s.fwd_ret[-1])


def test_between_drops_a_label_that_needs_a_bar_outside_the_range() -> None:
    s = to_series(planted_features(n_symbols=1, n_bars=50))[0]
    cut = s.between(None, int(s.ts[30]))
    assert len(cut) == 30 and np.isnan(cut.fwd_ret[-1])
    np.testing.assert_array_equal(cut.fwd_ret[:-1], s.fwd_ret[:29])


def test_window_index_matches_a_naive_loop_and_skips_warmup() -> None:
    table = _shuffled(planted_features(n_symbols=3, n_bars=40, warmup=5), seed=1)
    norm = Normalizer(tuple(NAMES), np.zeros(4, np.float32), np.ones(4, np.float32))
    window = 6
    index = WindowIndex.build(table, norm, window)
    windows = index.batch(0, len(index))
    sym = table.column("symbol").cast(pa.string()).to_pylist()
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    x = np.stack([table.column(n).to_numpy() for n in NAMES], axis=1)
    expected = {}
    for row in range(table.num_rows):
        same = sorted((ts[r], r) for r in range(table.num_rows) if sym[r] == sym[row] and ts[r] <= ts[row])
        rows = [r for _, r in same[-window:]]
        if len(rows) == window and np.isfinite(x[rows]).all():
            expected[row] = x[rows]
    assert sorted(index.rows.tolist()) == sorted(expected)
    for k, row in enumerate(index.rows):
        np.testing.assert_array_equal(windows[k], expected[int(row)])
    # 3 symbols x (40 bars - 5 warm-up - 5 more rows to fill a window)
    assert len(index) == 3 * (40 - 5 - (window - 1))


def test_latest_only_keeps_each_symbols_newest_row() -> None:
    table = planted_features(n_symbols=3, n_bars=30)
    norm = fit_normalizer(to_series(table), NAMES)
    index = WindowIndex.build(table, norm, 4, latest_only=True)
    assert sorted(index.rows.tolist()) == [29, 59, 89]


def test_normalizer_uses_only_the_rows_it_is_fitted_on() -> None:
    series = to_series(planted_features(n_symbols=2, n_bars=100))
    train = [s.between(None, int(s.ts[50])) for s in series]
    norm = fit_normalizer(train, NAMES)
    rows = np.concatenate([s.x[:50] for s in series])
    rows = rows[np.isfinite(rows).all(axis=1)]
    np.testing.assert_allclose(norm.mean, rows.mean(axis=0), rtol=1e-5, atol=1e-6)
    back = Normalizer.from_json(norm.to_json())
    assert back.names == norm.names
    np.testing.assert_array_equal(back.mean, norm.mean)
    np.testing.assert_array_equal(back.std, norm.std)


def test_series_windows_pairs_each_window_with_its_forward_return() -> None:
    series = to_series(planted_features(n_symbols=2, n_bars=60, warmup=3))
    norm = Normalizer(tuple(NAMES), np.zeros(4, np.float32), np.ones(4, np.float32))
    windows, fwd, used = series_windows(series, norm, 5)
    assert len(windows) == len(fwd) == sum(len(u) for u in used)
    signal = NAMES.index("signal")
    # the planted signal at the window's last row predicts the sign of its forward return
    assert np.mean(np.sign(windows[:, -1, signal]) == np.sign(fwd)) > 0.95
    assert np.isfinite(windows).all() and np.isfinite(fwd).all()
