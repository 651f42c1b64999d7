"""A bounded in-memory LRU cache of Arrow tables with a byte budget and hit/miss counters."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    evictions: int
    entries: int
    bytes: int
    max_bytes: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class TableCache:
    """Least-recently-used tables, evicted once their total size would exceed ``max_bytes``.

    A table larger than the whole budget is returned but not kept.  Sizes are Arrow buffer
    sizes (``Table.nbytes``).
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[pa.Table, int]] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = self.evictions = 0

    def get(self, key: Hashable) -> pa.Table | None:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item[0]

    def put(self, key: Hashable, table: pa.Table) -> None:
        size = int(table.nbytes)
        self.discard(key)
        if size > self.max_bytes:
            return
        while self._bytes + size > self.max_bytes and self._items:
            _, (_, old) = self._items.popitem(last=False)
            self._bytes -= old
            self.evictions += 1
        self._items[key] = (table, size)
        self._bytes += size

    def get_or_compute(self, key: Hashable, compute: Callable[[], pa.Table]) -> pa.Table:
        found = self.get(key)
        if found is not None:
            return found
        table = compute()
        self.put(key, table)
        return table

    def discard(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= item[1]

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def stats(self) -> CacheStats:
        return CacheStats(self.hits, self.misses, self.evictions, len(self._items), self._bytes, self.max_bytes)
