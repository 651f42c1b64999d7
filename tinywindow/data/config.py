"""Configuration of the data layer: sources (bundled, files, synthetic, gRPC), the data
section (cache, persistence, bad rows) and the gRPC feed server.

Defined beside the package that uses it and composed into the root ``tinywindow.config.Config``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator

from tinywindow.core.settings import PlacementResources, Section, TimeZoneName, config_error


class PlantedConfig(Section):
    """synthetic: cross-sectional signals planted in the generator (``synthetic.PlantedSignals``);
    an unset field keeps the generator's default."""

    volume_ic: float | None = Field(default=None, ge=-1.0, le=1.0)
    half_life: float | None = Field(default=None, gt=0.0, le=1e6)
    volume_loading: float | None = Field(default=None, ge=-10.0, le=10.0)
    reversal: float | None = Field(default=None, ge=-1.0, le=1.0)

    def given(self) -> dict[str, float]:
        """The fields set, as ``SyntheticSource(planted=...)`` takes them."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class SourceConfig(Section):
    """One market-data source, served by one DataSourceActor."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["bundled", "file", "synthetic", "grpc"]
    # bundled: datasets from {"sp500", "nasdaq", "goog", "btcusd"}
    datasets: list[str] = Field(default_factory=list)
    # file: a CSV or Parquet path (or directory of them) and its column mapping
    path: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    symbol: str | None = None
    timezone: TimeZoneName = "UTC"
    # file: timestamps, one format per file (docs/reliability/files.md); unset = inferred from
    # the whole column and refused when ambiguous.  `timestamp_format` and `daily_close` are
    # accepted as the spellings of `ts_format` and `close_time` (one or the other, not both).
    ts_format: str | None = Field(  # strftime, e.g. "%d.%m.%Y %H:%M:%S.%f"
        default=None, min_length=2, max_length=64, validation_alias=AliasChoices("ts_format", "timestamp_format")
    )
    dayfirst: bool | None = None  # 01/02/2020 is 1 Feb (true) or 2 Jan (false)
    epoch_unit: Literal["s", "ms", "us", "ns"] | None = None  # integer epoch column
    time_column: str | None = Field(default=None, min_length=1, max_length=256)  # Date + Time
    close_time: str | None = Field(  # "16:00": date-only bars stamped at this time in `timezone`
        default=None,
        pattern=r"^(?:(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)?|24:00)$",
        validation_alias=AliasChoices("close_time", "daily_close"),
    )
    dst_policy: Literal["refuse", "shift"] = "refuse"  # shift: gap -> forward, overlap -> earlier
    mixed_offsets: Literal["refuse", "utc"] = "refuse"  # utc: each time by its own UTC offset
    # file: value bounds (finite, > 0 already required) and resource limits
    min_price: float = Field(default=1e-9, ge=1e-300, le=1e6)
    max_price: float = Field(default=1e12, ge=1.0, le=1e300)
    max_volume: float = Field(default=1e18, gt=0, le=1e300)
    max_file_mb: float = Field(default=2048.0, gt=0, le=1_048_576)  # up to 1 TiB
    max_rows: int = Field(default=50_000_000, ge=1, le=2_000_000_000)
    max_columns: int = Field(default=256, ge=2, le=10_000)
    max_uncompressed_mb: float = Field(default=8192.0, gt=0, le=1_048_576)  # Parquet, decompressed
    chunk_rows: int = Field(default=65_536, ge=1, le=10_000_000)  # CSV rows per read block (about)

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, alias in (("ts_format", "timestamp_format"), ("close_time", "daily_close")):
                if name in data and alias in data:
                    raise ValueError(f"{alias} is another name for {name}: set one of them, not both")
        return data

    @model_validator(mode="after")
    def _check_file_options(self) -> SourceConfig:
        from datetime import datetime

        if self.min_price >= self.max_price:
            raise ValueError(f"min_price ({self.min_price:g}) must be below max_price ({self.max_price:g})")
        if self.ts_format is not None:
            if "%Y" not in self.ts_format and "%y" not in self.ts_format:
                raise ValueError(f"ts_format {self.ts_format!r} has no year (%Y or %y)")
            sample = datetime(2001, 2, 3, 4, 5, 6, 7000)
            try:
                datetime.strptime(sample.strftime(self.ts_format), self.ts_format)
            except ValueError as exc:
                raise ValueError(f"ts_format {self.ts_format!r} is not a usable strftime format: {exc}") from None
        given = [k for k in ("ts_format", "dayfirst", "epoch_unit") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"set at most one of ts_format, dayfirst, epoch_unit (got {', '.join(given)})")
        if self.close_time is not None and (self.epoch_unit is not None or self.time_column is not None):
            raise ValueError("close_time is for date-only timestamps; it cannot go with epoch_unit or time_column")
        return self

    # synthetic
    n_symbols: int = Field(default=20, ge=1, le=100_000)
    n_bars: int = Field(default=2520, ge=2, le=10_000_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    start: str = "2007-01-01"
    freq: str = "B"
    planted: PlantedConfig | None = None  # None: no planted signals (bit-identical to before)
    # grpc
    address: str = "127.0.0.1:50051"
    symbols: list[str] = Field(default_factory=list)
    max_reconnects: int = Field(default=20, ge=0, le=1_000_000)  # in a row without progress, then give up
    # streaming (replay of any source through stream())
    replay_speed: float = Field(default=0.0, ge=0.0, le=1e6)

class DataConfig(Section):
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig(name="bundled", kind="bundled", datasets=["sp500", "nasdaq", "goog"])],
        max_length=256,
    )
    cache_bytes: int = Field(default=512 * 1024**2, ge=0, le=2**40)  # up to 1 TiB
    num_cpus: float = Field(default=0.0, ge=0.0, le=1024)  # CPUs each DataSourceActor holds
    # Ray custom resources each DataSourceActor asks for (e.g. ``{sources: 1}``; docs/scaling.md)
    resources: PlacementResources = Field(default_factory=dict)
    on_bad_rows: Literal["reject", "quarantine"] = "reject"
    persist: bool = False
    segment_rows: int = Field(default=1_000_000, ge=1, le=100_000_000)

    @model_validator(mode="after")
    def _unique_source_names(self) -> DataConfig:
        first: dict[str, int] = {}
        for i, src in enumerate(self.sources):
            if src.name in first:
                raise config_error(
                    f"duplicate source name {src.name!r} at data.sources.{i}.name (already used by "
                    f"data.sources.{first[src.name]}): each source needs its own name",
                    key=f"data.sources.{i}.name",
                )
            first[src.name] = i
        return self

class FeedConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    speed: float = Field(default=0.0, ge=0.0, le=1e6)  # 0 = as fast as possible
    batch_rows: int = Field(default=1, ge=1, le=1_000_000)
