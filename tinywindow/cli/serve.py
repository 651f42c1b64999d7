"""``tinywindow serve start|config|swap``: the agents' models on Ray Serve."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import yaml

from tinywindow.config import Config
from tinywindow.errors import ConfigError, IntegrityError, ModelError

AGENTS = ["lstm", "transformer", "xgboost"]


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the agents' models (HTTP + gRPC, bearer token)")
    cmds = p.add_subparsers(dest="serve_command", metavar="ACTION")
    cmds.required = True

    start = cmds.add_parser("start", help="start Serve on an embedded local Ray (or --address) and block")
    _common(start)
    start.add_argument("--version", action="append", default=[], metavar="AGENT=VERSION",
                       help="serve this version (default: the newest signed one)")
    start.set_defaults(func=cmd_start)

    config = cmds.add_parser("config", help="print the Serve config (for `serve deploy` / a RayService)")
    _common(config)
    config.add_argument("--with-digest", action="store_true",
                        help="embed the token's digest (default: replicas read TW_SERVING__TOKEN)")
    config.set_defaults(func=cmd_config)

    swap = cmds.add_parser("swap", help="put model versions live on a running app (no downtime)")
    _common(swap)
    swap.add_argument("versions", nargs="+", metavar="AGENT=VERSION")
    swap.set_defaults(func=cmd_swap)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agents", default=",".join(AGENTS), help="comma-separated agents to serve")
    p.add_argument("--address", help="a running Ray cluster (default: ray.address, else embedded)")


def _agents(args: argparse.Namespace) -> list[str]:
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    unknown = sorted(set(agents) - set(AGENTS))
    if unknown or not agents:
        raise ConfigError(f"unknown agents {unknown} (have: {', '.join(AGENTS)})", key="--agents")
    return agents


def _versions(items: list[str], agents: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = dict.fromkeys(agents)
    for item in items:
        agent, sep, version = item.partition("=")
        if not sep or agent not in agents or not version:
            raise ConfigError(f"expected AGENT=VERSION with AGENT in {agents}, got {item!r}", key="version")
        out[agent] = version
    return out


def _connect(cfg: Config, args: argparse.Namespace) -> Config:
    from actors.runtime import connect

    if args.address:
        cfg = cfg.set("ray.address", args.address)
    connect(cfg)
    return cfg


def cmd_start(args: argparse.Namespace, cfg: Config) -> int:
    from actors import serving
    from tinywindow.models.registry import ModelRegistry
    from tinywindow.serving.auth import serving_token, token_digest

    agents = _agents(args)
    digest = token_digest(serving_token(cfg.serving))
    versions = _versions(args.version, agents)
    registry = ModelRegistry.from_config(cfg.agents, cfg.crypto, cfg.data_dir, read_only=True)
    for agent in agents:
        versions[agent] = versions[agent] or registry.latest(agent)
        if versions[agent] is None:
            raise ConfigError(f"no trained version of {agent!r} (run: tinywindow agents train {agent})")
    cfg = _connect(cfg, args)
    serving.start(cfg, agents, digest, versions)
    s = cfg.serving
    print(f"serving {', '.join(f'{a} {versions[a]}' for a in agents)}")
    print(f"  HTTP  http://{s.host}:{s.http_port}/v1/votes  /v1/signal  /v1/models  /healthz  /docs")
    print(f"  gRPC  {s.host}:{s.grpc_port}  tinywindow.serving.v1.TinyWindow/Votes|Signal|Models")
    print("  auth  Authorization: Bearer $TW_SERVING__TOKEN   (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        from actors.serving import shutdown

        shutdown()  # no call left waiting on the Serve controller (see actors.serving.shutdown)
    return 0


def cmd_config(args: argparse.Namespace, cfg: Config) -> int:
    from actors.serving import deploy_config
    from tinywindow.serving.auth import serving_token, token_digest

    digest = token_digest(serving_token(cfg.serving)) if args.with_digest else None
    doc = deploy_config(cfg, _agents(args), digest)
    sys.stdout.write(yaml.safe_dump(doc, sort_keys=False))
    return 0


SWAP_REFUSED = 3  # exit status of a refused swap (2: any other TinyWindowError)


def _refused(exc: Exception) -> int:
    print(f"refused: {type(exc).__name__}: {exc}", file=sys.stderr)
    return SWAP_REFUSED


def cmd_swap(args: argparse.Namespace, cfg: Config) -> int:
    """Verify the versions, then put them live; a refused version leaves the running app
    as it was and exits with ``SWAP_REFUSED``."""
    from actors import serving
    from tinywindow.serving.auth import serving_token, token_digest

    agents = _agents(args)
    versions = _versions(args.versions, agents)
    digest = token_digest(serving_token(cfg.serving))
    try:
        serving.verify_versions(cfg, versions)  # before connecting: nothing is touched
    except (IntegrityError, ModelError) as exc:
        return _refused(exc)
    cfg = _connect(cfg, args)
    try:
        serving.swap(cfg, agents, digest, versions)
    except IntegrityError as exc:  # the replicas refused it: the previous versions are back
        return _refused(exc)
    print("live:", ", ".join(f"{a} {v or 'latest'}" for a, v in versions.items()))
    return 0
