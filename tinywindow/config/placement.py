"""Placement by resource: what each kind of actor asks Ray for, from the config.

Every actor kind has a CPU share and a mapping of Ray custom resources (``agents.resources``,
``data.resources``, ``consensus.resources``, ``portfolio.resources``,
``serving.replica_resources``; ``{}`` by default).  On a cluster an actor runs only on a node
that offers its custom resources (``ray start --resources='{"agents": 1}'``, a launcher node
type's ``resources``, a KubeRay worker group's ``rayStartParams.resources``), and an autoscaler
launches such nodes when the demand cannot be placed: adding agents or sources adds nodes.
On a laptop the embedded cluster declares every configured custom resource with ample
capacity (``local_resources``), so any config runs there unchanged.

Pure: no Ray import.  ``actors/`` applies the options; ``actors.runtime`` warns about a
resource no node offers (``unoffered``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinywindow.config import Config

# the capacity the embedded local cluster gives each configured custom resource: far more than
# one machine's actors ask for (a resource is bookkeeping there, not a limit)
LOCAL_CAPACITY = 10_000.0


def placement(num_cpus: float, resources: Mapping[str, float], options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Ray actor options: ``num_cpus`` and the custom ``resources`` of the config, then the
    caller's ``options`` (a ``resources`` there adds to or overrides the config's, by name)."""
    opts = dict(options or {})
    out: dict[str, Any] = {"num_cpus": num_cpus, **opts}
    merged = {**dict(resources), **dict(opts.get("resources") or {})}
    if merged:
        out["resources"] = merged
    else:
        out.pop("resources", None)
    return out


def requested(cfg: Config) -> dict[str, dict[str, float]]:
    """Each config key that asks for custom resources, with its request (empty ones left out)."""
    keys = {
        "agents.resources": cfg.agents.resources,
        "data.resources": cfg.data.resources,
        "consensus.resources": cfg.consensus.resources,
        "portfolio.resources": cfg.portfolio.resources,
        "serving.replica_resources": cfg.serving.replica_resources,
    }
    return {k: dict(v) for k, v in keys.items() if v}


def local_resources(cfg: Config) -> dict[str, float]:
    """The custom resources an embedded single-machine cluster declares: every one the config
    asks for, with ``LOCAL_CAPACITY``."""
    return {name: LOCAL_CAPACITY for req in requested(cfg).values() for name in req}


def demand(cfg: Config) -> dict[str, tuple[int, dict[str, float]]]:
    """Per config key: how many actors of that kind a run starts and what each asks for (one
    per data source, one per agent of ``run.agents``; one consensus, one portfolio; Serve
    replicas: up to ``serving.max_replicas`` per agent model and the gateway's)."""
    counts = {
        "agents.resources": len(cfg.run.agents),
        "data.resources": len(cfg.data.sources),
        "consensus.resources": 1,
        "portfolio.resources": 1,
        "serving.replica_resources": max(cfg.serving.max_replicas, 1) * (len(cfg.run.agents) + 1),
    }
    return {key: (counts[key], req) for key, req in requested(cfg).items()}


def unoffered(cfg: Config, cluster_total: Mapping[str, float]) -> list[str]:
    """One line per custom resource the cluster offers less of now than the run's actors ask
    for together (an autoscaler may still add nodes; without one, the actors that do not fit
    wait PENDING forever)."""
    need: dict[str, float] = {}
    why: dict[str, list[str]] = {}
    for key, (n, req) in demand(cfg).items():
        for name, amount in req.items():
            need[name] = need.get(name, 0.0) + n * amount
            why.setdefault(name, []).append(f"{key} {name}={amount:g} x {n}")
    out = []
    for name, total in need.items():
        have = float(cluster_total.get(name, 0.0))
        if have < total:
            out.append(f"the run asks for {name}={total:g} ({', '.join(why[name])}); the cluster offers {have:g} "
                       f"now: actors that do not fit wait until nodes with {name!r} join (an autoscaler's node "
                       f"type declaring it, or `ray start --resources='{{\"{name}\": N}}'`)")
    return out
