"""The manifests in cluster/ are valid for what reads them (Serve, the KubeRay CRDs) and in
step with the code that generates them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tinywindow.config import Config, build

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"


def strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever it lists properties."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and "x-kubernetes-preserve-unknown-fields" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def crd(kind: str) -> dict[str, Any]:
    return strict(json.loads((CLUSTER / "schemas" / f"ray.io_{kind}.v1.json").read_text()))


def serve_config() -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / "serve-config.yaml").read_text())


def test_serve_config_is_a_valid_serve_deploy_schema() -> None:
    from ray.serve.schema import ServeDeploySchema

    doc = ServeDeploySchema.model_validate(serve_config())
    app = doc.applications[0]
    assert app.import_path == "actors.serving:app_builder"
    assert "token_digest" not in app.args  # no secret material in a committed file
    cfg = build(app.args["config"])
    assert cfg.serving.host == "0.0.0.0" and cfg.serving.token is None


def test_serve_config_matches_the_generator() -> None:
    from actors.serving import deploy_config

    cfg = (
        Config()
        .set("serving.host", "0.0.0.0")
        .set("data_dir", "/data/tinywindow")
        .set("serving.min_replicas", 1)
        .set("serving.max_replicas", 4)
    )
    assert serve_config() == deploy_config(cfg, ["lstm", "transformer", "xgboost"], None)


def test_rayservice_validates_against_the_kuberay_crd() -> None:
    doc = yaml.safe_load((CLUSTER / "kuberay" / "rayservice.yaml").read_text())
    jsonschema.validate(doc["spec"], crd("rayservices")["properties"]["spec"])
    assert doc["spec"]["rayClusterConfig"]["authOptions"]["mode"] == "token"
    assert yaml.safe_load(doc["spec"]["serveConfigV2"]) == serve_config()


def test_strict_validation_catches_a_misspelt_field() -> None:
    doc = yaml.safe_load((CLUSTER / "kuberay" / "rayservice.yaml").read_text())
    doc["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartPrams"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc["spec"], crd("rayservices")["properties"]["spec"])
