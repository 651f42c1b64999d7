"""Starting, waiting for and stopping the Ray processes a test owns.

Deadlines are sized for a cold first start on a fresh virtualenv of a loaded 2-core machine
(bytecode compiling, cold page cache, the other core busy): over a minute has been seen before
the GCS wrote its port file.  A start that fails is retried once with a clear message.  Teardown
stops only what the test started and never raises because a process already exited.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

COLD_START_S = 240.0  # readiness deadline for anything that starts Ray processes
RAY = str(Path(sys.executable).with_name("ray"))


def poll(fn: Callable[[], T], ok: Callable[[T], bool], timeout_s: float, what: str,
         every_s: float = 0.2) -> T:
    """Call ``fn`` until ``ok(value)``; TimeoutError naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = fn()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f}s; last value {value!r}")
        time.sleep(every_s)


def retry_once(start: Callable[[], T], what: str, cleanup: Callable[[], Any] | None = None) -> T:
    """``start()``, and once more if it fails (after ``cleanup()``), saying why."""
    try:
        return start()
    except Exception as first:
        print(f"{what} failed to start ({first!r}); retrying once", file=sys.stderr)
        if cleanup is not None:
            cleanup()
        try:
            return start()
        except Exception as second:
            raise RuntimeError(f"{what} failed to start twice; first: {first!r}; second: {second!r}") from second


def _signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes of the session ``sid``: a process started with
    ``start_new_session`` and everything it spawned (read from /proc, Linux)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            out.append(int(d.name))
    return out


def stop_session(proc: subprocess.Popen[Any], grace_s: float = 3.0, kill_s: float = 30.0) -> None:
    """SIGTERM every process of ``proc``'s session, give them ``grace_s`` to exit, then SIGKILL
    what is left until nothing of the session is alive (``kill_s`` at most).

    ``ray start --block`` leaves ``gcs_server`` (and the autoscaler's monitor, and the raylets of
    the nodes a fake_multinode autoscaler launched) running for half a minute after its process
    group is signalled; they hold nothing a test keeps (the GCS state is in memory, the test
    deletes the temp dir), so after a short grace they are killed.  The session, not only the
    group, is swept: every Ray process ``ray start`` spawned stays in it, orphans included.
    Processes that already exited are fine."""
    sid = proc.pid
    for pid in session_pids(sid) or [proc.pid]:
        _signal_pid(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while session_pids(sid) and time.monotonic() < deadline:
        time.sleep(0.2)
    deadline = time.monotonic() + kill_s
    while (left := session_pids(sid)) and time.monotonic() < deadline:
        for pid in left:  # again while any is left: one may have forked meanwhile
            _signal_pid(pid, signal.SIGKILL)
        time.sleep(0.1)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    if left := session_pids(sid):
        print(f"processes of session {sid} still alive after SIGKILL: {left}", file=sys.stderr)


class RayHead:
    """A head node started with ``ray start --head --block`` in its own session, on ports Ray
    binds itself (``--port=0``, ``--dashboard-port=0``, and the dashboard agent's HTTP port:
    its default 52365 is taken whenever another Ray runs on the machine, and a head whose agent
    could not bind it accepts no job), with its own auth token (a fresh machine has no
    ``~/.ray/auth_token``) and its own temp dir (short: Unix socket paths).

    ``autoscaling_config``: a cluster config the head's autoscaler (its ``monitor`` process)
    follows, e.g. ``cluster/local-autoscale.yaml`` with ``extra_env={"RAY_FAKE_CLUSTER": "1"}``
    (``extra_env``: the head's environment only, on top of ``env()``); the nodes it launches are
    processes of the head's session, stopped with it.  ``port``: the GCS port (0: any free one;
    fake_multinode workers join the GCS at 6379 only)."""

    def __init__(self, num_cpus: int = 2, *, port: int = 0, autoscaling_config: Path | None = None,
                 extra_env: Mapping[str, str] | None = None) -> None:
        self.num_cpus = num_cpus
        self.port = port
        self.autoscaling_config = autoscaling_config
        self.extra_env = dict(extra_env or {})
        self.temp = tempfile.mkdtemp(prefix="twhead-", dir="/tmp")
        self.token_path = Path(self.temp) / "auth_token"
        self.token_path.write_text(secrets.token_hex(32))
        self.token_path.chmod(0o600)
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    def env(self) -> dict[str, str]:
        """The environment of the head and of its clients (token auth on, this head's token)."""
        env = dict(os.environ)
        env.update(RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0",
                   RAY_AUTH_TOKEN_PATH=str(self.token_path))
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the venv's python
        env.pop("RAY_ADDRESS", None)
        env.pop("RAY_AUTH_TOKEN", None)
        return env

    def start(self) -> str:
        retry_once(self._start_once, "ray start --head", cleanup=self.stop_processes)
        return self.address

    def _start_once(self) -> None:
        log = open(Path(self.temp) / "head.out", "wb")  # noqa: SIM115 - the head keeps writing it
        self.proc = subprocess.Popen(
            [RAY, "start", "--head", "--block", f"--num-cpus={self.num_cpus}", f"--port={self.port}",
             "--dashboard-host=127.0.0.1", "--dashboard-port=0", f"--temp-dir={self.temp}",
             "--include-dashboard=true", "--dashboard-agent-listen-port=0",
             *([f"--autoscaling-config={self.autoscaling_config}"] if self.autoscaling_config else [])],
            env={**self.env(), **self.extra_env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        proc = self.proc

        def dashboard() -> str | None:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {proc.returncode}: {self.output()[-2000:]}")
            m = re.search(r"RAY_API_SERVER_ADDRESS='(http://127\.0\.0\.1:\d+)'", self.output())
            return m.group(1) if m else None

        self.address = str(poll(dashboard, bool, COLD_START_S, "the head's dashboard address", 0.5))

        def jobs_api_up() -> bool:
            try:
                return subprocess.run([RAY, "job", "list", "--address", self.address], env=self.env(),
                                      capture_output=True, timeout=60).returncode == 0
            except subprocess.TimeoutExpired:
                return False

        poll(jobs_api_up, bool, COLD_START_S, f"the Jobs API at {self.address}", 1.0)

    def output(self) -> str:
        try:
            return (Path(self.temp) / "head.out").read_text(errors="replace")
        except OSError:
            return ""

    def stop_processes(self) -> None:
        if self.proc is not None:
            stop_session(self.proc)
            self.proc = None

    def stop(self) -> None:
        self.stop_processes()
        shutil.rmtree(self.temp, ignore_errors=True)


NO_AGENT = "No available agent to submit job"


def job_submit(cmd: Sequence[str], env: Mapping[str, str], timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    """``ray job submit ...``, again while the head answers that no job agent is available
    yet: ``ray job list`` works before the head's agent has registered, and on a cold or busy
    machine the first submission can come in between (seen here after another test's
    cluster had just stopped)."""
    deadline = time.monotonic() + COLD_START_S
    while True:
        out = subprocess.run(list(cmd), env=dict(env), capture_output=True, text=True, timeout=timeout)
        if out.returncode == 0 or NO_AGENT not in out.stdout + out.stderr or time.monotonic() > deadline:
            return out
        time.sleep(2.0)
