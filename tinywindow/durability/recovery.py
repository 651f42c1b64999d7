"""Durability for event-sourced state: a signed journal plus checkpoints, one recovery path.

A ``DurableState`` wraps an object with ``snapshot() -> dict``, ``restore(dict)`` and
``apply(kind, payload)``.  ``start()`` is the only way to come up, first start and restart
alike: load the latest checkpoint (an encrypted, signed one-row Arrow segment holding the
state as JSON and the journal head it covers), refuse a journal that is behind it (a
rollback) or whose record at that seq is another one (a replaced journal), then ``apply`` every journal record after it.  ``commit(events)`` appends a
call's events to the journal as one signed batch (all or nothing after a crash) and writes
a new checkpoint every ``checkpoint_every`` records.

The journal is ``tinywindow.crypto.journal.Journal`` (hash-chained, signed, encrypted); the
checkpoint store is ``tinywindow.crypto.store.EncryptedStore``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from tinywindow.config import Config
from tinywindow.core.log import get_logger
from tinywindow.crypto.journal import Journal
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.store import EncryptedStore
from tinywindow.errors import IntegrityError

_log = get_logger("durable")
Event = tuple[str, dict[str, Any]]


class EventSourced(Protocol):
    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, d: Mapping[str, Any]) -> None: ...

    def apply(self, kind: str, payload: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class Recovery:
    """What ``start`` did: the checkpoint seq it loaded (-1: none) and records replayed."""

    checkpoint_seq: int
    replayed: int
    journal_seq: int


def journal_path(cfg: Config, name: str) -> Path:
    base = Path(cfg.crypto.journal_dir)
    base = base if base.is_absolute() else cfg.path(cfg.crypto.journal_dir)
    return base / f"{name}.journal"


class DurableState:
    """Journal + checkpoint persistence of one event-sourced object (module docstring)."""

    def __init__(
        self,
        name: str,
        target: EventSourced,
        journal: Journal,
        store: EncryptedStore,
        checkpoint_every: int,
    ) -> None:
        self.name, self.target = name, target
        self.journal, self.store = journal, store
        self.checkpoint_every = checkpoint_every
        self._since_checkpoint = 0

    @classmethod
    def open(
        cls, cfg: Config, name: str, target: EventSourced, keystore: KeyStore, checkpoint_every: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> DurableState:
        """The journal ``<journal_dir>/<name>.journal`` and the checkpoint store of ``cfg``."""
        journal = Journal(journal_path(cfg, name), keystore, clock=clock, fsync=cfg.crypto.journal_fsync)
        return cls(name, target, journal, EncryptedStore.from_config(cfg, keystore), checkpoint_every)

    @property
    def segment(self) -> str:
        return f"checkpoints/{self.name}"

    def start(self) -> Recovery:
        """Checkpoint + journal replay into ``target`` (the one start-up path).

        On any failure the journal is closed (its lock released) before the error propagates.
        """
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> Recovery:
        cp_seq = -1
        if self.segment in self.store.list("checkpoints/"):
            row = self.store.read(self.segment).to_pylist()[0]
            cp_seq = int(row["seq"])
            head_seq, _ = self.journal.head()
            if cp_seq > head_seq:
                raise IntegrityError(
                    f"{self.name}: checkpoint covers journal seq {cp_seq} but the journal ends at "
                    f"{head_seq}: the journal was rolled back or replaced"
                )
            if cp_seq >= 0 and self.journal.hash_at(cp_seq) != row["hash"]:
                raise IntegrityError(
                    f"{self.name}: journal record {cp_seq} is not the one the checkpoint covers: "
                    "the journal was replaced"
                )
            self.target.restore(json.loads(row["state"]))
        replayed = 0
        for rec in self.journal.records(after=cp_seq):
            self.target.apply(rec.kind, rec.payload)
            replayed += 1
        self._since_checkpoint = replayed
        seq = self.journal.head()[0]
        _log.info("%s: started from checkpoint %d, replayed %d records (journal at %d)", self.name, cp_seq, replayed, seq)
        return Recovery(cp_seq, replayed, seq)

    def commit(self, events: list[Event]) -> None:
        """Journal a call's events as one signed batch; checkpoint when due."""
        if not events:
            return
        self.journal.append_many(events)
        self._since_checkpoint += len(events)
        if self._since_checkpoint >= self.checkpoint_every:
            self.checkpoint()

    def checkpoint(self) -> int:
        """Write the state and the journal head it covers; returns that seq."""
        seq, digest = self.journal.head()
        table = pa.table(
            {
                "name": [self.name],
                "seq": pa.array([seq], pa.int64()),
                "hash": [digest],
                "state": [json.dumps(self.target.snapshot(), sort_keys=True, allow_nan=False)],
            }
        )
        self.store.write(self.segment, table)
        self._since_checkpoint = 0
        return seq

    def close(self) -> None:
        self.journal.close()
