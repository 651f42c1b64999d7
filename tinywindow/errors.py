"""TinyWindow's exceptions, one tree, each class saying what the operator should do.

::

    TinyWindowError                  base of everything TinyWindow raises on purpose
    ├── ConfigError                  a setting is wrong: fix the file / env var / flag named
    ├── DataError                    market data is bad: fix or quarantine the rows named
    │   └── SchemaError              a batch does not match its Arrow contract
    ├── IntegrityError               tampering, a bad signature, a broken hash chain:
    │                                do not trust the artefact; restore it from a good copy
    ├── KeyStoreError                a key is missing, locked, corrupt or the passphrase is
    │                                wrong: check the keystore directory and passphrase
    ├── ModelError                   a model version is missing or cannot be loaded:
    │                                retrain or pick another version
    └── TransientError               a peer is unreachable or busy: retry with back-off

Risk denials are *not* exceptions: they are events with reason codes
(see ``tinywindow.risk.checks``).
"""

from __future__ import annotations


class TinyWindowError(Exception):
    """Base class of every error TinyWindow raises on purpose."""


class ConfigError(TinyWindowError):
    """A configuration value is invalid; the message names the key, the value and what is allowed."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class DataError(TinyWindowError):
    """Market data failed validation.

    ``source``, ``row`` and ``column`` locate the first offending value so an operator can
    fix the file or feed; any of them may be None when it does not apply.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        where = []
        if source is not None:
            where.append(f"source={source!r}")
        if row is not None:
            where.append(f"row={row}")
        if column is not None:
            where.append(f"column={column!r}")
        super().__init__(f"{message} [{', '.join(where)}]" if where else message)
        self.reason = message
        self.source = source
        self.row = row
        self.column = column


class SchemaError(DataError):
    """A batch does not match its Arrow contract (missing, mistyped or null column)."""


class IntegrityError(TinyWindowError):
    """Stored bytes were changed: a bad signature, tag, hash chain or truncated record."""


class KeyStoreError(TinyWindowError):
    """A key is missing, corrupt, locked under another passphrase, or of the wrong kind."""


class ModelError(TinyWindowError):
    """A model version is missing, unsigned, or cannot be loaded."""


class TransientError(TinyWindowError):
    """A temporary failure (peer down, timeout, back-pressure); retrying may succeed."""
