"""Durability for event-sourced state: a signed journal plus checkpoints, one recovery path.

A ``DurableState`` wraps an ``EventSourced`` object (``snapshot() -> dict``,
``restore(dict)``, ``apply(event)``).  ``start()`` is the only way to come up, first start
and restart alike: load the latest checkpoint (an encrypted, signed one-row Arrow segment
holding the state as JSON and the journal head it covers), refuse a journal that is behind
it (a rollback) or whose record at that seq is another one (a replaced journal), then
``apply`` every journal record after it, decoded by the one codec (``tinywindow.core.codec``,
which reads every codec version up to its own).  ``commit(events)`` encodes a call's events
and appends them to the journal as one signed batch (all or nothing after a crash), and
writes a new checkpoint every ``checkpoint_every`` records.

``DurableState.open`` takes the crypto section and the data directory; ``open_durable`` is
the start-up an actor runs from the root config it receives (keystore, journal, checkpoint
store, recovery), shared by the PortfolioActor and the ConsensusActor.

The journal is ``tinywindow.crypto.journal.Journal`` (hash-chained, signed, encrypted); the
checkpoint store is ``tinywindow.crypto.store.EncryptedStore``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from tinywindow.core.codec import CODEC
from tinywindow.core.events import Event
from tinywindow.core.log import get_logger
from tinywindow.crypto import under
from tinywindow.crypto.config import CryptoConfig
from tinywindow.crypto.journal import Journal
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.store import EncryptedStore
from tinywindow.durability.eventsourced import EventSourced
from tinywindow.errors import IntegrityError

__all__ = ["DurableState", "Recovery", "journal_file", "open_durable"]

_log = get_logger("durable")


@dataclass(frozen=True)
class Recovery:
    """What ``start`` did: the checkpoint seq it loaded (-1: none) and records replayed."""

    checkpoint_seq: int
    replayed: int
    journal_seq: int


def journal_file(crypto: CryptoConfig, data_dir: str | Path, name: str) -> Path:
    """``<crypto.journal_dir>/<name>.journal`` (under ``data_dir`` unless absolute)."""
    return under(data_dir, crypto.journal_dir) / f"{name}.journal"


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
        cls, crypto: CryptoConfig, data_dir: str | Path, name: str, target: EventSourced, keystore: KeyStore,
        checkpoint_every: int, clock: Callable[[], int] = time.time_ns,
    ) -> DurableState:
        """The journal ``<journal_dir>/<name>.journal`` and the checkpoint store at
        ``crypto.store_dir`` (a URI, or a path under ``data_dir`` unless absolute)."""
        journal = Journal(journal_file(crypto, data_dir, name), keystore, clock=clock, fsync=crypto.journal_fsync)
        return cls(name, target, journal, EncryptedStore.from_config(crypto, data_dir, keystore), checkpoint_every)

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
            self.target.apply(CODEC.decode(rec.kind, rec.payload))
            replayed += 1
        self._since_checkpoint = replayed
        seq = self.journal.head()[0]
        _log.info("%s: started from checkpoint %d, replayed %d records (journal at %d)", self.name, cp_seq, replayed, seq)
        return Recovery(cp_seq, replayed, seq)

    def commit(self, events: Sequence[Event]) -> None:
        """Journal a call's events (through the codec) as one signed batch; checkpoint when due."""
        if not events:
            return
        self.journal.append_many(CODEC.encode_all(events))
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


def open_durable(
    crypto: CryptoConfig,
    data_dir: str | Path,
    name: str,
    target: EventSourced,
    checkpoint_every: int,
    *,
    passphrase: str | None = None,
    keystore: KeyStore | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> tuple[DurableState, Recovery]:
    """An actor's durable start-up: open the keystore (unless given), the journal and the
    checkpoint store of the ``crypto`` section under ``data_dir``, and bring ``target`` up through ``start`` (the one recovery
    path).  Returns the started state and what the start did."""
    from tinywindow.crypto import open_keystore

    keys = keystore if keystore is not None else open_keystore(crypto, data_dir, passphrase)
    durable = DurableState.open(crypto, data_dir, name, target, keys, checkpoint_every, clock)
    return durable, durable.start()
