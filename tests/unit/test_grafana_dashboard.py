"""``cluster/grafana/tinywindow-dashboard.json`` is a Grafana dashboard over a Prometheus
datasource variable, and it charts exactly the metrics ``actors/metrics.py`` defines, by the
names Ray exports them under (``ray_`` prefix, counters ``_total``, histograms ``_bucket``),
with tag names the metric has: the two cannot drift apart."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from actors.metrics import METRICS, MetricSpec

DASHBOARD = Path(__file__).resolve().parents[2] / "cluster" / "grafana" / "tinywindow-dashboard.json"
SERIES = re.compile(r"\b(ray_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?")
MATCHER_KEY = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def exprs(doc: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in doc["panels"] for t in p["targets"]]


def spec_of(series: str) -> MetricSpec | None:
    """The metric a scraped series belongs to (None: none defined)."""
    for m in METRICS:
        names = {m.exported} | ({f"{m.exported}_{s}" for s in ("bucket", "sum", "count")} if m.kind == "histogram" else set())
        if series in names:
            return m
    return None


def test_it_is_a_dashboard_of_panels_with_prometheus_targets(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert panels and len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        assert p["title"] and p["type"] and {"x", "y", "w", "h"} <= set(p["gridPos"])
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["refId"] and t["datasource"]["uid"] == "${datasource}"
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]


def test_every_defined_metric_is_charted_and_every_charted_one_defined(dashboard: dict[str, Any]) -> None:
    charted = {name for e in exprs(dashboard) for name, _ in SERIES.findall(e)}
    unknown = sorted(s for s in charted if spec_of(s) is None)
    assert not unknown, f"the dashboard charts metrics actors/metrics.py does not define: {unknown}"
    covered = {spec.name for s in charted if (spec := spec_of(s)) is not None}
    missing = sorted({m.name for m in METRICS} - covered)
    assert not missing, f"metrics defined in actors/metrics.py but on no panel: {missing}"
    histograms = [m for m in METRICS if m.kind == "histogram"]
    for m in histograms:  # quantiles come from the buckets
        assert any("histogram_quantile" in e and f"{m.exported}_bucket" in e for e in exprs(dashboard)), m.name


def test_the_queries_use_only_the_tags_a_metric_has(dashboard: dict[str, Any]) -> None:
    for e in exprs(dashboard):
        keys: set[str] = {"le"}
        for name, matchers in SERIES.findall(e):
            spec = spec_of(name)
            assert spec is not None
            used = set(MATCHER_KEY.findall(matchers))
            assert used <= set(spec.tag_keys), f"{e}: {sorted(used - set(spec.tag_keys))} not tags of {spec.name}"
            keys |= set(spec.tag_keys)
        for group in BY.findall(e):
            labels = {x.strip() for x in group.split(",") if x.strip()}
            assert labels <= keys, f"{e}: groups by {sorted(labels - keys)}"


def test_the_variables_read_defined_series(dashboard: dict[str, Any]) -> None:
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            for name, _ in SERIES.findall(v["definition"]):
                assert spec_of(name) is not None, v["definition"]
