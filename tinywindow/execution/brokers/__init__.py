"""Where orders go: the ``Broker`` port live adapters implement, and the ``PaperBroker``."""

from __future__ import annotations

from tinywindow.execution.brokers.base import Broker, resubmit
from tinywindow.execution.brokers.paper import PaperBroker, paper_broker

__all__ = ["Broker", "PaperBroker", "paper_broker", "resubmit"]
