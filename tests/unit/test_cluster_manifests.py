"""The manifests in cluster/ are valid for what reads them (Serve, the KubeRay CRDs and operator,
Ray's cluster launcher and autoscaler) and in step with the code that generates or runs them.

Offline: KubeRay manifests are checked against the CRD schemas committed in cluster/schemas (with
unknown fields refused), against the operator's own spec rules restated here, and through Ray's
own derivation of an autoscaling config from a RayCluster; launcher configs (cluster/*.yaml with
a ``provider:``) through Ray's ``validate_config`` (and ``prepare_config`` where Ray ships the
provider's defaults).  Nothing here reaches a cloud or a Kubernetes API."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tinywindow.config import Config, build, load

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
SHARED_CRDS = ROOT.parent / "shared" / "schemas" / "kuberay"
CUSTOM = ("agents", "sources")  # the custom resources the scale-out node types offer
SECRET_ENV = ("TW_PASSPHRASE", "TW_SERVING__TOKEN", "RAY_AUTH_TOKEN")


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


@functools.cache
def crd(kind: str) -> dict[str, Any]:
    return strict(json.loads((CLUSTER / "schemas" / f"ray.io_{kind}.v1.json").read_text()))


def serve_config() -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / "serve-config.yaml").read_text())


# --- KubeRay ---------------------------------------------------------------------------------

# manifest -> (CRD plural, where its RayCluster spec lives)
KUBERAY: dict[str, tuple[str, tuple[str, ...]]] = {
    "rayservice": ("rayservices", ("spec", "rayClusterConfig")),
    "raycluster": ("rayclusters", ("spec",)),
    "rayjob": ("rayjobs", ("spec", "rayClusterSpec")),
}
SCALE_OUT = ("raycluster", "rayjob")  # the manifests that run the engine (agents and sources)


def manifest(name: str) -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / "kuberay" / f"{name}.yaml").read_text())


def cluster_spec(doc: dict[str, Any], name: str) -> dict[str, Any]:
    node = doc
    for key in KUBERAY[name][1]:
        node = node[key]
    return node


@functools.cache
def crd_validator(kind: str) -> Any:
    schema = crd(kind)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # once: it is most of the cost of jsonschema.validate
    return cls(schema)


def validate_kuberay(doc: dict[str, Any], name: str) -> None:
    crd_validator(KUBERAY[name][0]).validate(doc)


def groups(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The head group, then the worker groups."""
    return [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]


def ray_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The Ray container (index 0, as KubeRay takes it) of every group."""
    return [g["template"]["spec"]["containers"][0] for g in groups(spec)]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """name -> value (a string) or valueFrom (a dict)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in env_of(container).items() if isinstance(v, str)}


def autoscaling_config(spec: dict[str, Any]) -> dict[str, Any]:
    """What Ray's autoscaler makes of a RayCluster spec (its own code; it ends in validate_config)."""
    from ray.autoscaler._private.kuberay.autoscaling_config import (
        _derive_autoscaling_config_from_ray_cr,
    )

    cr = {"metadata": {"name": "tinywindow", "namespace": "default"}, "spec": copy.deepcopy(spec)}
    return _derive_autoscaling_config_from_ray_cr(cr)


@pytest.mark.parametrize("name", list(KUBERAY))
def test_kuberay_manifest_validates_strictly_against_its_crd(name: str) -> None:
    doc = manifest(name)
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"].lower() + "s" == KUBERAY[name][0]
    validate_kuberay(doc, name)


MISSPELLINGS = [
    ("spec field", lambda s: s.update(enableInTreeAutoscalling=True)),
    ("autoscaler option", lambda s: s["autoscalerOptions"].update(idleTimeoutSecond=60)),
    ("head group field", lambda s: s["headGroupSpec"].update(rayStartPrams={})),
    ("worker group field", lambda s: s["workerGroupSpecs"][0].update(minReplica=0)),
    ("container field", lambda s: s["headGroupSpec"]["template"]["spec"]["containers"][0].update(volumeMount=[])),
    ("pod field", lambda s: s["workerGroupSpecs"][0]["template"]["spec"].update(volume=[])),
    ("auth option", lambda s: s["authOptions"].update(mod="token")),
]


@pytest.mark.parametrize("name", list(KUBERAY))
@pytest.mark.parametrize(("where", "misspell"), MISSPELLINGS, ids=[m[0] for m in MISSPELLINGS])
def test_strict_validation_catches_a_misspelt_field(name: str, where: str, misspell: Any) -> None:
    doc = manifest(name)
    spec = cluster_spec(doc, name)
    spec.setdefault("autoscalerOptions", {})
    validate_kuberay(doc, name)
    misspell(spec)
    with pytest.raises(jsonschema.ValidationError):
        validate_kuberay(doc, name)


def test_strict_validation_catches_a_misspelt_rayjob_field() -> None:
    doc = manifest("rayjob")
    doc["spec"]["shutdownAfterJobFinish"] = True
    with pytest.raises(jsonschema.ValidationError):
        validate_kuberay(doc, "rayjob")


def kuberay_rule_violations(doc: dict[str, Any], name: str) -> list[str]:
    """The operator's spec checks (ray-operator/controllers/ray/utils/validation.go, KubeRay 1.7)
    that the schema cannot express, as far as these manifests could trip them."""
    out = []
    meta_name = doc["metadata"]["name"]
    if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", meta_name) or len(meta_name) > 47:
        out.append(f"metadata.name {meta_name!r} is not a short DNS-1035 label")
    spec = cluster_spec(doc, name)
    for group in groups(spec):
        label = group.get("groupName", "head")
        params = group.get("rayStartParams", {})
        if not group["template"]["spec"].get("containers"):
            out.append(f"{label}: no container")
        if group.get("resources") and any(k in params for k in ("num-cpus", "num-gpus", "memory", "resources")):
            out.append(f"{label}: resources set both in rayStartParams and in resources")
        if "labels" in params:
            out.append(f"{label}: rayStartParams.labels is refused")
    names = [g["groupName"] for g in spec.get("workerGroupSpecs", [])]
    if len(names) != len(set(names)):
        out.append(f"worker group names repeat: {names}")
    for g in spec.get("workerGroupSpecs", []):
        if not g["minReplicas"] <= g.get("replicas", 0) <= g["maxReplicas"]:
            out.append(f"{g['groupName']}: replicas outside [minReplicas, maxReplicas]")
    if spec.get("authOptions", {}).get("mode") == "token":
        version = tuple(int(p) for p in spec.get("rayVersion", "0").split("."))
        if version < (2, 52, 0):
            out.append("authOptions.mode token needs rayVersion >= 2.52.0")
    if name == "rayjob":
        job = doc["spec"]
        if not job.get("rayClusterSpec") and not job.get("clusterSelector"):
            out.append("one of rayClusterSpec or clusterSelector must be set")
        if "runtimeEnvYAML" in job and not isinstance(yaml.safe_load(job["runtimeEnvYAML"]), dict):
            out.append("runtimeEnvYAML is not a YAML mapping")
        if job.get("activeDeadlineSeconds", 1) <= 0 or job.get("backoffLimit", 0) < 0:
            out.append("activeDeadlineSeconds must be > 0 and backoffLimit >= 0")
        if job.get("suspend") and not job.get("shutdownAfterJobFinishes"):
            out.append("a suspended RayJob needs shutdownAfterJobFinishes")
    return out


@pytest.mark.parametrize("name", list(KUBERAY))
def test_kuberay_manifest_passes_the_operators_own_rules(name: str) -> None:
    import ray

    doc = manifest(name)
    assert kuberay_rule_violations(doc, name) == []
    assert cluster_spec(doc, name)["rayVersion"] == ray.__version__  # the Ray we test with
    assert f"FROM rayproject/ray:{ray.__version__}-" in (CLUSTER / "Dockerfile").read_text()  # and the image's

    broken = copy.deepcopy(doc)
    spec = cluster_spec(broken, name)
    spec["rayVersion"] = "2.51.0"
    spec["workerGroupSpecs"][0]["replicas"] = spec["workerGroupSpecs"][0]["maxReplicas"] + 1
    assert len(kuberay_rule_violations(broken, name)) == 2


@pytest.mark.parametrize("name", list(KUBERAY))
def test_kuberay_cluster_autoscales_through_rays_own_derivation(name: str) -> None:
    spec = cluster_spec(manifest(name), name)
    assert spec["enableInTreeAutoscaling"] is True
    derived = autoscaling_config(spec)
    head = derived["available_node_types"]["headgroup"]
    assert head["resources"]["CPU"] == 0 and not set(CUSTOM) & set(head["resources"])
    workers = [t for n, t in derived["available_node_types"].items() if n != "headgroup"]
    assert workers and all(t["max_workers"] >= max(t["min_workers"], 1) for t in workers)
    assert any(t["resources"].get("agents") == 1 for t in workers)


@pytest.mark.parametrize("name", SCALE_OUT)
def test_worker_groups_offer_agents_and_sources_from_zero(name: str) -> None:
    derived = autoscaling_config(cluster_spec(manifest(name), name))["available_node_types"]
    for resource in CUSTOM:
        offering = [t for n, t in derived.items() if resource in t["resources"]]
        assert len(offering) == 1, resource
        assert offering[0]["resources"][resource] == 1 and offering[0]["min_workers"] == 0


def head_config(spec: dict[str, Any]) -> Config:
    """The engine config a job's driver builds on the head (its ``TW_*`` literals; secrets come
    from Secrets and are not config keys)."""
    return load(environ=literal_env(ray_containers(spec)[0]))


def nodes_for(
    node_types: dict[str, Any], head: str, demands: list[dict[str, float]]
) -> tuple[dict[str, int], list[Any]]:
    """The node types Ray's autoscaler adds for ``demands`` (its bin packing, in-process)."""
    from ray.autoscaler._private.node_provider_availability_tracker import NodeAvailabilitySummary
    from ray.autoscaler._private.resource_demand_scheduler import (
        _default_utilization_scorer,
        get_nodes_for,
    )

    def scorer(resources: Any, demand: Any, node_type: str) -> Any:
        return _default_utilization_scorer(
            resources, demand, node_type, node_availability_summary=NodeAvailabilitySummary({})
        )

    added, residual = get_nodes_for(node_types, {}, head, 100, demands, scorer)
    return dict(added), residual


def engine_demands(cfg: Config, agents: int, sources: int) -> list[dict[str, float]]:
    """The resource requests of ``agents`` AgentActors, ``sources`` DataSourceActors and the
    consensus and portfolio, as the engine makes them from ``cfg``."""
    from tinywindow.config.placement import placement

    def bundle(num_cpus: float, resources: Any) -> dict[str, float]:
        opts = placement(num_cpus, resources)
        return {k: v for k, v in {"CPU": opts["num_cpus"], **opts.get("resources", {})}.items() if v}

    return (
        [bundle(cfg.agents.num_cpus, cfg.agents.resources)] * agents
        + [bundle(cfg.data.num_cpus, cfg.data.resources)] * sources
        + [bundle(cfg.consensus.num_cpus, cfg.consensus.resources)]
        + [bundle(cfg.portfolio.num_cpus, cfg.portfolio.resources)]
    )


@pytest.mark.parametrize("name", SCALE_OUT)
def test_the_driver_asks_for_what_the_worker_groups_offer(name: str) -> None:
    from tinywindow.config.placement import requested

    spec = cluster_spec(manifest(name), name)
    cfg = head_config(spec)
    assert requested(cfg) == {"agents.resources": {"agents": 1.0}, "data.resources": {"sources": 1.0}}
    derived = autoscaling_config(spec)
    added, residual = nodes_for(derived["available_node_types"], "headgroup", engine_demands(cfg, agents=3, sources=2))
    assert residual == [] and added == {"agents": 3, "sources": 2}
    # without the placement settings nothing asks for a worker group in particular
    added, _ = nodes_for(derived["available_node_types"], "headgroup", engine_demands(Config(), agents=3, sources=2))
    assert sum(added.values()) < 5


@pytest.mark.parametrize("name", list(KUBERAY))
def test_token_auth_is_on_and_no_secret_is_inline(name: str) -> None:
    spec = cluster_spec(manifest(name), name)
    assert spec["authOptions"] == {"mode": "token", "secretName": "tinywindow-ray-token"}
    for container in ray_containers(spec):
        env = env_of(container)
        assert env["RAY_AUTH_MODE"] == "token", container["name"]
        for secret in SECRET_ENV:
            assert not isinstance(env.get(secret), str), f"{secret} inline in {container['name']}"
        assert {"TW_PASSPHRASE", "TW_SERVING__TOKEN"} <= set(env)  # actors read them from their own env


@pytest.mark.parametrize("name", list(KUBERAY))
def test_the_storage_root_is_the_shared_volume_on_every_pod(name: str) -> None:
    spec = cluster_spec(manifest(name), name)
    for group in groups(spec):
        pod = group["template"]["spec"]
        volumes = [v for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in volumes}
        container = pod["containers"][0]
        data_dir = Path(literal_env(container)["TW_DATA_DIR"])
        mounts = [m for m in container.get("volumeMounts", []) if claims.get(m["name"]) == "tinywindow-data"]
        assert [m["mountPath"] for m in mounts] == ["/data/tinywindow"], group.get("groupName", "head")
        assert data_dir == Path("/data/tinywindow")
    if name == "rayservice":  # the app's data_dir is the same root
        assert build(serve_config()["applications"][0]["args"]["config"]).data_dir == "/data/tinywindow"


def test_rayjob_runs_on_the_raycluster_spec() -> None:
    assert manifest("rayjob")["spec"]["rayClusterSpec"] == manifest("raycluster")["spec"]


def test_rayjob_entrypoint_is_a_real_command_on_a_file_in_the_image() -> None:
    from tinywindow.cli import _parser
    from tinywindow.config.placement import requested

    job = manifest("rayjob")["spec"]
    argv = shlex.split(job["entrypoint"])
    assert argv[0] == "tinywindow"
    args = _parser().parse_args(argv[1:])
    assert (args.command, args.mode) == ("run", "backtest")
    copy_line = next(line for line in (CLUSTER / "Dockerfile").read_text().splitlines() if line.startswith("COPY"))
    image_root = copy_line.split()[-1]  # where the Dockerfile puts this repository
    assert args.config.startswith(image_root + "/")
    local = ROOT / Path(args.config).relative_to(image_root)
    cfg = load(local, environ=literal_env(ray_containers(job["rayClusterSpec"])[0]))
    assert cfg.data_dir == "/data/tinywindow" and set(requested(cfg)) == {"agents.resources", "data.resources"}


# --- CRD schemas in step with ../shared -----------------------------------------------------


def test_in_repo_crd_schemas_are_the_extraction_of_the_shared_crds() -> None:
    if not SHARED_CRDS.is_dir():
        pytest.skip(f"{SHARED_CRDS} does not exist here (a clean clone): the committed JSON is used as is")
    spec = importlib.util.spec_from_file_location("extract", CLUSTER / "schemas" / "extract.py")
    assert spec is not None and spec.loader is not None
    extract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extract)
    for file, text in extract.extract(SHARED_CRDS).items():
        assert (CLUSTER / "schemas" / file).read_text() == text, (
            f"{file} differs from {SHARED_CRDS}: regenerate with python cluster/schemas/extract.py"
        )


# --- Ray cluster launcher configs -----------------------------------------------------------

LAUNCHERS = sorted(p.name for p in CLUSTER.glob("*.yaml") if "provider" in (yaml.safe_load(p.read_text()) or {}))
CLOUDS = ("aws", "gcp", "azure")


def launcher(name: str) -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / name).read_text())


def cloud(name: str) -> bool:
    return launcher(name)["provider"]["type"] in CLOUDS


def test_there_is_a_cloud_launcher_config() -> None:
    assert [n for n in LAUNCHERS if cloud(n)], LAUNCHERS


def prepared(cfg: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` validates: the config merged with Ray's defaults for its provider (cloud
    providers; Ray 2.60's wheel lacks the fake_multinode defaults, so those configs are complete
    as written)."""
    from ray.autoscaler._private.util import prepare_config

    return prepare_config(copy.deepcopy(cfg)) if cfg["provider"]["type"] in CLOUDS else cfg


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_config_passes_rays_validator(name: str) -> None:
    from ray.autoscaler._private.util import validate_config

    cfg = launcher(name)
    validate_config(cfg)
    full = prepared(cfg)
    validate_config(full)
    workers = [t for n, t in full["available_node_types"].items() if n != full["head_node_type"]]
    assert workers and all(0 < t["max_workers"] <= full["max_workers"] for t in workers)  # reachable caps


LAUNCHER_MISSPELLINGS = [
    ("top-level key", lambda c: c.update(idle_timeout_minute=5)),
    ("node type key", lambda c: c["available_node_types"][c["head_node_type"]].update(max_worker=0)),
    ("non-integer resource", lambda c: next(iter(c["available_node_types"].values()))["resources"].update(agents=0.5)),
    ("auth key", lambda c: c.setdefault("auth", {}).update(ssh_usr="ubuntu")),
]


@pytest.mark.parametrize("name", LAUNCHERS)
@pytest.mark.parametrize(("where", "misspell"), LAUNCHER_MISSPELLINGS, ids=[m[0] for m in LAUNCHER_MISSPELLINGS])
def test_rays_validator_catches_a_misspelt_launcher_field(name: str, where: str, misspell: Any) -> None:
    from ray.autoscaler._private.util import validate_config

    cfg = launcher(name)
    misspell(cfg)
    with pytest.raises(jsonschema.ValidationError):
        validate_config(cfg)


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_node_types_scale_agents_from_zero_and_keep_the_head_free(name: str) -> None:
    cfg = prepared(launcher(name))
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    assert head["max_workers"] == 0 and not set(CUSTOM) & set(head["resources"])
    wanted = CUSTOM if cloud(name) else ("agents",)
    for resource in wanted:
        offering = [t for n, t in types.items() if n != cfg["head_node_type"] and resource in t["resources"]]
        assert len(offering) == 1 and offering[0]["resources"][resource] >= 1, resource
        assert offering[0]["min_workers"] == 0 and offering[0]["max_workers"] >= 1
    demands = [{"agents": 1.0}] * 2 + ([{"sources": 1.0}] if cloud(name) else [])
    added, residual = nodes_for(types, cfg["head_node_type"], demands)
    assert residual == [] and sum(added.values()) == len(demands)


def docker_env(cfg: dict[str, Any]) -> dict[str, str]:
    """The ``--env`` / ``-e`` variables of the containers every node runs (docker.run_options,
    joined into one shell command by Ray)."""
    words = shlex.split(" ".join(cfg.get("docker", {}).get("run_options", [])))
    pairs = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("--env", "-e")]
    return dict(p.split("=", 1) for p in pairs)


@pytest.mark.parametrize("name", [n for n in LAUNCHERS if cloud(n)])
def test_cloud_launcher_token_auth_storage_and_placement(name: str) -> None:
    from tinywindow.config.placement import requested

    cfg = prepared(launcher(name))
    assert all(isinstance(o, str) for o in cfg["docker"]["run_options"])  # Ray joins them into one command
    options = " ".join(cfg["docker"]["run_options"])
    env = docker_env(cfg)
    assert env["RAY_AUTH_MODE"] == "token" and not set(SECRET_ENV) & set(env)  # secrets via --env-file
    words = shlex.split(options)
    env_file = words[words.index("--env-file") + 1]  # the secrets, written on the host from a secret store
    assert any(env_file in c and "umask 077" in c for c in cfg["initialization_commands"])
    assert not any("worker_run_options" in t.get("docker", {}) for t in cfg["available_node_types"].values())
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in head_start
    # the storage root: mounted on the host before docker starts, bind-mounted into the container
    assert env["TW_DATA_DIR"] == "/data/tinywindow" and "-v /data:/data" in options
    assert any(" /data" in c and "mount" in c for c in cfg["initialization_commands"])
    # the driver asks for what the worker types offer, and the autoscaler adds them
    engine = load(environ=env)
    assert requested(engine) == {"agents.resources": {"agents": 1.0}, "data.resources": {"sources": 1.0}}
    added, residual = nodes_for(cfg["available_node_types"], cfg["head_node_type"], engine_demands(engine, 3, 2))
    assert residual == [] and {n: added.get(n, 0) for n in ("ray.worker.agents", "ray.worker.sources")} == {
        "ray.worker.agents": 3, "ray.worker.sources": 2}


# --- Serve config ---------------------------------------------------------------------------


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


def test_rayservice_embeds_the_serve_config() -> None:
    doc = manifest("rayservice")
    assert yaml.safe_load(doc["spec"]["serveConfigV2"]) == serve_config()
