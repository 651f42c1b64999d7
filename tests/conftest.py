"""Shared test set-up: every test is marked by the folder it lives in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Explicit in every process a test starts (Ray 2.60 turns token auth on for local clusters).
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

_LAYERS = {"unit": pytest.mark.unit, "ray": pytest.mark.ray, "cluster": pytest.mark.cluster}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for name, mark in _LAYERS.items():
            if name in parts:
                item.add_marker(mark)
