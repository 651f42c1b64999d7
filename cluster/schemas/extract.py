"""Extract the v1 schemas of the KubeRay CRDs into cluster/schemas/ray.io_<plural>.v1.json.

    python cluster/schemas/extract.py [CRD_DIR]    # default: ../shared/schemas/kuberay

CRD_DIR holds the CustomResourceDefinition YAMLs of KubeRay (``ray.io_rayclusters.yaml``,
``ray.io_rayjobs.yaml``, ``ray.io_rayservices.yaml``, from ray-operator/config/crd/bases).
Each output is ``spec.versions[name=v1].schema.openAPIV3Schema`` as compact JSON, so that tests
validate manifests offline, on a clone that has no CRD_DIR.  tests/unit/test_cluster_manifests.py
checks that the committed JSON equals this extraction whenever CRD_DIR exists.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_CRD_DIR = HERE.parents[2] / "shared" / "schemas" / "kuberay"
KINDS = ("rayclusters", "rayjobs", "rayservices")


def v1_schema(crd_path: Path) -> dict[str, Any]:
    """The ``v1`` openAPIV3Schema of the CustomResourceDefinition in ``crd_path``."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 20x faster on 1 MB
    docs = [d for d in yaml.load_all(crd_path.read_text(), Loader=loader) if d]
    crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
    if len(crds) != 1:
        raise ValueError(f"{crd_path}: expected one CustomResourceDefinition, found {len(crds)}")
    versions = [v for v in crds[0]["spec"]["versions"] if v["name"] == "v1"]
    if len(versions) != 1:
        raise ValueError(f"{crd_path}: expected one version named v1, found {len(versions)}")
    return versions[0]["schema"]["openAPIV3Schema"]


def render(schema: dict[str, Any]) -> str:
    """The committed form: compact JSON, keys in the CRD's order, no trailing newline."""
    return json.dumps(schema, separators=(",", ":"))


def extract(crd_dir: Path) -> dict[str, str]:
    """Output file name -> its text, for every kind."""
    return {f"ray.io_{kind}.v1.json": render(v1_schema(crd_dir / f"ray.io_{kind}.yaml")) for kind in KINDS}


def main(argv: list[str]) -> int:
    crd_dir = Path(argv[0]) if argv else DEFAULT_CRD_DIR
    if not crd_dir.is_dir():
        print(f"no CRD directory at {crd_dir}", file=sys.stderr)
        return 2
    for name, text in extract(crd_dir).items():
        (HERE / name).write_text(text)
        print(f"wrote cluster/schemas/{name} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
