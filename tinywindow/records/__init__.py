"""Records of a run people look at and query: ``load_run`` (journals and registry as frames)
and the SQL trade store (``TradeStore``, ``StoreWriter``), a projection of the journals."""

from tinywindow.records.journal import RunRecords, find_runs, load_run
from tinywindow.records.sql import StoreWriter, TradeStore, default_url

__all__ = ["RunRecords", "StoreWriter", "TradeStore", "default_url", "find_runs", "load_run"]
