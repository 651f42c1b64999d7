"""Tests under tests/ray share the one local Ray cluster of ``tests/conftest.py``
(``ray_cluster``)."""

from __future__ import annotations

import os

os.environ["RAY_AUTH_MODE"] = "token"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
