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


def unoffered(cfg: Config, cluster_total: Mapping[str, float]) -> list[str]:
    """One line per requested custom resource that no node of the cluster offers now (an
    autoscaler may still add one; without one, the actor waits PENDING forever)."""
    out = []
    for key, req in requested(cfg).items():
        for name, amount in req.items():
            have = float(cluster_total.get(name, 0.0))
            if have < amount:
                out.append(f"{key} asks for {name}={amount:g} per actor; the cluster offers {have:g} now: "
                           f"those actors wait until a node with {name!r} joins (an autoscaler's node type "
                           f"declaring it, or `ray start --resources='{{\"{name}\": N}}'`)")
    return out
