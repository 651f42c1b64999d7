"""A run torn down by ``actors.runtime.shutdown`` prints no Ray errors or warnings.

The demo's shape in small, in a child process with its own embedded cluster (``connect``):
more small actors than Ray's default start-up concurrency tolerates on 2 CPUs, Serve with a
deployment, and actors that hold a deployment handle (the AgentActors do).  Ray reports
these problems only as text (pushed to the driver's stdout/stderr, not as exceptions), so
this test reads the child's output: the one place these checks look at log text.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import ray
    from ray import serve

    from actors.runtime import connect, shutdown
    from tinywindow.config import Config

    connect(Config().set("ray.num_cpus", 2))

    @serve.deployment(ray_actor_options={"num_cpus": 0.01})
    class Echo:
        def status(self) -> str:
            return "ok"

    class Holder:  # holds a deployment handle, like an AgentActor
        def attach(self) -> str:
            self.handle = serve.get_deployment_handle("Echo", "echo")
            return self.handle.status.remote().result(timeout_s=60)

    class Idle:
        def ready(self) -> bool:
            return True

    # 18 long-lived workers + Serve's controller, proxy and replica: above the 16 that made
    # Ray warn about start-up concurrency on 2 CPUs.
    idle = [ray.remote(Idle).options(num_cpus=0.01).remote() for _ in range(16)]
    ray.get([a.ready.remote() for a in idle])
    serve.start(http_options={"host": "127.0.0.1", "port": 0})
    serve.run(Echo.bind(), name="echo", route_prefix=None)
    holders = [ray.remote(Holder).options(num_cpus=0.01).remote() for _ in range(2)]
    assert ray.get([h.attach.remote() for h in holders]) == ["ok", "ok"]
    shutdown(holders)
    print("CLEAN-SHUTDOWN-DONE", flush=True)
    """
)

# What Ray prints when something went wrong (or when teardown left calls on a dead actor).
NOISE = ("(raylet)", "ERROR", "failed", "killed by `ray.kill`", "WARNING", "Traceback")


@pytest.mark.timeout(240)
def test_shutdown_leaves_no_ray_errors_or_warnings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ADDRESS": "",  # always a private embedded cluster
        "PYTHONPATH": str(ROOT),
    }
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    run = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=200
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "CLEAN-SHUTDOWN-DONE" in run.stdout, output
    noisy = [line for line in output.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, "\n".join(noisy)
