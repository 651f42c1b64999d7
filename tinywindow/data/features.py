"""Technical features, vectorised over every symbol at once and strictly causal.

The bars of each symbol are laid out *left-aligned* in a [n_symbols, max_bars] panel (the
k-th bar of every symbol in column k, NaN padding after a symbol's last bar; a symbol-major
table of equal-length symbols is just a reshape, no copy).  Every feature is then an
operation along the last (time) axis: rolling sums from cumulative sums, exponential
smoothing from ``scipy.signal.lfilter``.  Bar k of a symbol only ever reads bars <= k, so a
feature at ts uses data up to ts only; padding comes after the data and cannot leak
backwards.  No Python loop runs per row or per symbol.

Conventions follow the ``ta`` package (the tests cross-check on real data): RSI and ATR use
Wilder smoothing, MACD uses EMAs with ``adjust=False``, Bollinger bands use the population
standard deviation.  Price-level features are divided by the close so they compare across
symbols.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.signal import lfilter

from tinywindow.contracts import features_schema, symbol_codes

FEATURE_NAMES: tuple[str, ...] = (
    "ret_1",
    "ret_5",
    "ret_20",
    "ret_60",
    "vol_20",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_pctb_20",
    "atr_14",
    "volume_z_20",
    "hl_range",
    "sma_ratio_20",
)
FEATURES = features_schema(FEATURE_NAMES)

# Bar columns other than the close that a feature reads.  A close-only source fills open /
# high / low with the close and volume with 0 so its bars pass the BARS contract, and names
# the filled columns per symbol in the table's FILLED_KEY metadata; ``compute`` then leaves
# these features NaN (unavailable) for those symbols instead of computing them from filler.
FEATURE_INPUTS: dict[str, tuple[str, ...]] = {
    "atr_14": ("high", "low"),
    "hl_range": ("high", "low"),
    "volume_z_20": ("volume",),
}
FILLED_KEY = b"tw.filled"  # BARS metadata: {symbol: [filled columns]}
UNAVAILABLE_KEY = b"tw.unavailable"  # FEATURES metadata: {feature: reason}

# Bars a feature needs before it is defined (NaN before that); EMAs keep a fading memory
# of everything earlier, so recompute from at least this many bars for stable values.
WARMUP_BARS = 60


@dataclass(frozen=True)
class Panel:
    """Bars of each symbol left-aligned in [symbols, bars] arrays (time on the last axis)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    code: np.ndarray | None  # panel row of each input row (None: input is the panel, flattened)
    pos: np.ndarray | None  # panel column of each input row


def panelize(bars: pa.Table) -> Panel:
    """Lay out a validated BARS table (timestamps increasing per symbol) as a Panel."""
    codes = symbol_codes(bars)
    n = len(codes)
    symbol_major = bool(n) and bool(np.all(codes[1:] >= codes[:-1]))
    order = None if symbol_major else np.argsort(codes, kind="stable")
    sorted_codes = codes if order is None else codes[order]
    n_sym = int(codes.max()) + 1 if n else 0
    sizes = np.bincount(sorted_codes, minlength=n_sym)
    used = sizes[sizes > 0]
    if symbol_major and n_sym == len(used) and np.all(used == used[0]):
        # Dense symbol-major input: every column is the panel already, flattened.
        t = int(used[0])
        cols = {k: bars.column(k).to_numpy().reshape(n_sym, t) for k in _OHLCV}
        return Panel(**cols, code=None, pos=None)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos_sorted = np.arange(n) - starts[sorted_codes]
    if order is None:
        pos = pos_sorted
    else:
        pos = np.empty(n, dtype=np.int64)
        pos[order] = pos_sorted
    width = int(sizes.max()) if n else 0

    def lay(name: str) -> np.ndarray:
        out = np.full((n_sym, width), np.nan)
        out[codes, pos] = bars.column(name).to_numpy()
        return out

    return Panel(**{k: lay(k) for k in _OHLCV}, code=codes, pos=pos)


_OHLCV = ("open", "high", "low", "close", "volume")


# --------------------------------------------------------------------------- kernels
# Every kernel works along the last axis (time) and is causal: output[..., t] reads input
# [..., :t + 1] only.


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted right by k bars (bar t holds x[t-k]); NaN for t < k."""
    out = np.full_like(x, np.nan)
    out[:, k:] = x[:, :-k]
    return out


def rolling_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Sum over the last w bars, NaN until w bars exist."""
    c = np.cumsum(x, axis=-1)
    out = np.full_like(x, np.nan)
    if x.shape[-1] >= w:
        out[:, w - 1] = c[:, w - 1]
        out[:, w:] = c[:, w:] - c[:, :-w]
    return out


def rolling_mean_std(
    x: np.ndarray, w: int, ddof: int, rescale: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean and standard deviation over w bars.

    With ``rescale`` values are divided by each symbol's first value before summing so
    cumulative sums of squares stay well-conditioned for price-like series (a past-only
    constant: causality is preserved).
    """
    scale = x[:, 0:1].copy() if rescale else np.ones((x.shape[0], 1))
    scale[~np.isfinite(scale) | (scale == 0)] = 1.0
    z = x / scale
    s1 = rolling_sum(z, w)
    s2 = rolling_sum(z * z, w)
    mean = s1 / w
    var = (s2 - s1 * s1 / w) / (w - ddof)
    var[var < 1e-12 * np.maximum(mean * mean, 1e-12)] = 0.0
    return mean * scale, np.sqrt(var) * np.abs(scale)


def ema(x: np.ndarray, alpha: float, first: int = 0, min_periods: int = 1) -> np.ndarray:
    """Exponential moving average with ``adjust=False`` started at bar ``first``.

    y[first] = x[first]; y[t] = alpha x[t] + (1 - alpha) y[t-1].  Bars before
    ``first + min_periods - 1`` are NaN.
    """
    out = np.full_like(x, np.nan)
    if x.shape[-1] <= first:
        return out
    body = x[:, first:]
    zi = (1.0 - alpha) * body[:, 0:1]
    y, _ = lfilter([alpha], [1.0, -(1.0 - alpha)], body, axis=-1, zi=zi)
    out[:, first:] = y
    out[:, : first + min_periods - 1] = np.nan
    return out


def wilder_seeded(x: np.ndarray, w: int) -> np.ndarray:
    """Wilder smoothing seeded with the mean of the first w bars (ta's ATR convention)."""
    out = np.full_like(x, np.nan)
    if x.shape[-1] < w:
        return out
    seed = x[:, :w].mean(axis=-1, keepdims=True)
    out[:, w - 1] = seed[:, 0]
    if x.shape[-1] > w:
        a = 1.0 / w
        y, _ = lfilter([a], [1.0, -(1.0 - a)], x[:, w:], axis=-1, zi=(1.0 - a) * seed)
        out[:, w:] = y
    return out


def _safe_div(num: np.ndarray, den: np.ndarray, where_zero: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[(den == 0) & np.isfinite(num)] = where_zero
    return out


# --------------------------------------------------------------------------- features


def rsi(close: np.ndarray, w: int = 14) -> np.ndarray:
    d = np.diff(close, axis=-1, prepend=np.nan)
    with np.errstate(invalid="ignore"):
        up = np.where(d > 0, d, 0.0)
        dn = np.where(d < 0, -d, 0.0)
    a = 1.0 / w
    ema_up = ema(up, a, min_periods=w)
    ema_dn = ema(dn, a, min_periods=w)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 - 100.0 / (1.0 + ema_up / ema_dn)
    out[(ema_dn == 0) & np.isfinite(ema_up)] = 100.0
    return out


def macd(
    close: np.ndarray, fast: int = 12, slow: int = 26, sign: int = 9
) -> tuple[np.ndarray, np.ndarray]:
    """MACD line and its signal line, in price units."""
    line = ema(close, 2.0 / (fast + 1), min_periods=fast) - ema(
        close, 2.0 / (slow + 1), min_periods=slow
    )
    signal = ema(line, 2.0 / (sign + 1), first=slow - 1, min_periods=sign)
    return line, signal


def true_range(p: Panel) -> np.ndarray:
    prev = shift(p.close, 1)
    return np.fmax(np.fmax(p.high - p.low, np.abs(p.high - prev)), np.abs(p.low - prev))


def bollinger_pctb(close: np.ndarray, mean: np.ndarray, std: np.ndarray, k: float = 2.0) -> np.ndarray:
    """Where the close sits in its Bollinger band (0 = lower, 1 = upper); std with ddof=0."""
    return _safe_div(close - (mean - k * std), 2 * k * std, where_zero=0.5)


def compute_panel(p: Panel) -> dict[str, np.ndarray]:
    """Every feature as a panel of the same shape as the input."""
    c = p.close
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.log(c)
    r1 = logc - shift(logc, 1)
    line, signal = macd(c)
    vol20 = np.full_like(c, np.nan)
    if c.shape[-1] > 1:
        vol20[:, 1:] = rolling_mean_std(r1[:, 1:], 20, ddof=1, rescale=False)[1]
    vmean, vstd = rolling_mean_std(p.volume, 20, ddof=1)
    sma20, std20 = rolling_mean_std(c, 20, ddof=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "ret_1": r1,
            "ret_5": logc - shift(logc, 5),
            "ret_20": logc - shift(logc, 20),
            "ret_60": logc - shift(logc, 60),
            "vol_20": vol20,
            "rsi_14": rsi(c, 14),
            "macd": line / c,
            "macd_signal": signal / c,
            "macd_hist": (line - signal) / c,
            "bb_pctb_20": bollinger_pctb(c, sma20, std20, 2.0),
            "atr_14": wilder_seeded(true_range(p), 14) / c,
            "volume_z_20": _safe_div(p.volume - vmean, vstd, where_zero=0.0),
            "hl_range": (p.high - p.low) / c,
            "sma_ratio_20": c / sma20 - 1.0,
        }


FeatureFn = Callable[[Panel], dict[str, np.ndarray]]

# Symbols per block: a block's temporaries stay in cache and are recycled by the allocator.
BLOCK_SYMBOLS = 16


def _block(p: Panel, s0: int, s1: int) -> Panel:
    return Panel(
        p.open[s0:s1], p.high[s0:s1], p.low[s0:s1], p.close[s0:s1], p.volume[s0:s1], None, None
    )


def filled_columns(bars: pa.Table) -> dict[str, tuple[str, ...]]:
    """Symbol -> bar columns its source filled in (close-only data), from the metadata."""
    raw = (bars.schema.metadata or {}).get(FILLED_KEY)
    return {str(k): tuple(v) for k, v in json.loads(raw).items()} if raw else {}


def flat_columns(bars: pa.Table) -> dict[str, tuple[str, ...]]:
    """Symbol -> columns that carry nothing, read from the values: every bar (two or more)
    has open = high = low = close (and, for volume, volume 0 as well).  Close-only data looks
    like this even where the FILLED_KEY mark was lost (a store round trip, a re-validated
    window).  Zero volume alone is not a mark: real FX and crypto files often report none,
    and a guess that flips with the length of the history would make features before a cut
    depend on the bars after it."""
    if bars.num_rows == 0:
        return {}
    codes = symbol_codes(bars)
    col = {k: bars.column(k).to_numpy() for k in _OHLCV}
    c = col["close"]
    flat_range = (col["open"] == c) & (col["high"] == c) & (col["low"] == c)
    n = np.bincount(codes)
    names = bars.column("symbol").unify_dictionaries().combine_chunks()
    names = names.dictionary if pa.types.is_dictionary(names.type) else pc.unique(names)
    out: dict[str, tuple[str, ...]] = {}
    for cols, flat in ((("open", "high", "low"), flat_range), (("volume",), flat_range & (col["volume"] == 0))):
        whole = (n >= 2) & (np.bincount(codes, weights=flat, minlength=len(n)) == n)
        for code in np.flatnonzero(whole):
            name = str(names[int(code)].as_py())
            out[name] = out.get(name, ()) + cols
    return out


def with_filled(bars: pa.Table, filled: Mapping[str, Sequence[str]]) -> pa.Table:
    """``bars`` marked with the columns filled in per symbol (see ``FEATURE_INPUTS``)."""
    meta = dict(bars.schema.metadata or {})
    meta[FILLED_KEY] = json.dumps({k: list(v) for k, v in sorted(filled.items())}).encode()
    return bars.replace_schema_metadata(meta)


def unavailable_features(filled: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Feature -> why it is unavailable, for symbols whose columns ``filled`` names."""
    out: dict[str, str] = {}
    for name, needs in FEATURE_INPUTS.items():
        symbols = sorted(s for s, cols in filled.items() if set(needs) & set(cols))
        if symbols:
            missing = sorted({c for s in symbols for c in filled[s] if c in needs}, key=needs.index)
            shown = ", ".join(symbols[:10]) + (f", ... {len(symbols)} in all" if len(symbols) > 10 else "")
            out[name] = f"needs {', '.join(missing)}, not in the data of {shown} (close-only)"
    return out


def compute(
    bars: pa.Table,
    fn: FeatureFn = compute_panel,
    block: int = BLOCK_SYMBOLS,
    filled: Mapping[str, Sequence[str]] | None = None,
) -> pa.Table:
    """FEATURES for a validated BARS table: one row per input row, same order.

    Warm-up bars (not enough history yet) hold NaN.  Symbols are processed in blocks of
    ``block`` (features never mix symbols, so blocking changes nothing but speed).
    Features that read a column ``filled`` in for a symbol (default: the table's
    ``FILLED_KEY`` metadata) are NaN for that symbol and listed, with the reason, in the
    result's ``UNAVAILABLE_KEY`` metadata.
    """
    if bars.num_rows == 0:
        return FEATURES.empty_table()
    marked = filled_columns(bars) if filled is None else filled
    filled = {s: tuple(cols) for s, cols in marked.items()}
    for s, cols in flat_columns(bars).items():
        filled[s] = tuple(k for k in _OHLCV if k in cols or k in filled.get(s, ()))
    p = panelize(bars)
    n_sym = p.close.shape[0]
    out = {name: np.empty(bars.num_rows, dtype=np.float32) for name in FEATURE_NAMES}
    if p.code is not None and p.pos is not None:
        by_symbol = np.argsort(p.code, kind="stable")
        bounds = np.searchsorted(p.code[by_symbol], np.arange(0, n_sym + block, block))
    for b, s0 in enumerate(range(0, n_sym, block)):
        s1 = min(s0 + block, n_sym)
        feats = fn(_block(p, s0, s1))
        if p.code is None or p.pos is None:
            rows = slice(s0 * p.close.shape[1], s1 * p.close.shape[1])
            for name in FEATURE_NAMES:
                out[name][rows] = feats[name].reshape(-1)
        else:
            idx = by_symbol[bounds[b] : bounds[b + 1]]
            code, pos = p.code[idx] - s0, p.pos[idx]
            for name in FEATURE_NAMES:
                out[name][idx] = feats[name][code, pos]
    unavailable = unavailable_features(filled)
    columns: list[pa.Array | pa.ChunkedArray] = [bars.column("symbol"), bars.column("ts")]
    for name in FEATURE_NAMES:
        values = out[name]
        values[np.isinf(values)] = np.nan  # an undefined value is missing, not infinite
        if name in unavailable:
            symbols = [s for s, cols in filled.items() if set(FEATURE_INPUTS[name]) & set(cols)]
            hit = pc.is_in(bars.column("symbol").cast(pa.string()), value_set=pa.array(symbols, pa.string()))
            values[np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)] = np.nan
        columns.append(pa.array(values))
    if not unavailable:
        return pa.Table.from_arrays(columns, schema=FEATURES)
    meta = {**(FEATURES.metadata or {}), UNAVAILABLE_KEY: json.dumps(unavailable, sort_keys=True).encode()}
    return pa.Table.from_arrays(columns, schema=FEATURES.with_metadata(meta))


def complete_mask(features_table: pa.Table) -> np.ndarray:
    """True for rows whose every feature is defined (past warm-up)."""
    ok = np.ones(features_table.num_rows, dtype=bool)
    for name in FEATURE_NAMES:
        ok &= np.isfinite(features_table.column(name).to_numpy())
    return ok
