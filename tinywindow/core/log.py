"""Standard ``logging``: one line per event, named by component, secrets masked."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SECRETS: set[str] = set()


class RedactSecrets(logging.Filter):
    """Replace every registered secret in a record's message with ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            msg = record.getMessage()
            for s in _SECRETS:
                msg = msg.replace(s, "***")
            record.msg, record.args = msg, None
        return True


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log line from now on (tokens, passphrases)."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def setup(level: str = "INFO") -> None:
    """Configure the ``tinywindow`` logger tree once per process (idempotent)."""
    root = logging.getLogger("tinywindow")
    root.setLevel(level)
    if not any(getattr(h, "_tinywindow", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(RedactSecrets())
        handler._tinywindow = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False


def get_logger(component: str) -> logging.Logger:
    return logging.getLogger(f"tinywindow.{component}")
