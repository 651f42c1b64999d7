"""Where state lives: the storage root (``data_dir``) and the directory a Ray job must not use.

Every piece of state (model registry and tuned parameters, journals, checkpoints, segments,
keystore, Tune results, reports) resolves under ``data_dir`` unless its own key is absolute
(or, for segments and Tune results, a ``pyarrow.fs`` URI).  A job submitted with
``ray job submit --working-dir .`` runs in Ray's own unpacked copy of that directory,
``<session>/runtime_resources/working_dir_files/_ray_pkg_<hash>``: the next job gets another
copy (on another node, perhaps), and Ray deletes the copy once no job uses it.  State written
there under the default relative ``data_dir`` is silently lost, so ``check_state_root`` refuses
it unless ``storage.allow_ephemeral`` says a throw-away run is meant.

The journals, keystore and registry are files written in place (fsync, atomic rename): they
need a POSIX path, on a filesystem every node shares for a multi-node cluster.  Object storage
is honest only where the writer goes through ``pyarrow.fs``: Ray Tune's ``storage_path``
(``agents.tune_dir``, see ``tune_storage``) and the encrypted segments (``crypto.store_dir``).

Detection reads paths and environment variables only: this module never imports Ray.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr

from tinywindow.core.log import get_logger
from tinywindow.core.settings import Section, config_error

__all__ = [
    "StorageConfig",
    "check_state_root",
    "ephemeral_root",
    "is_uri",
    "local_tune_dir",
    "tune_storage",
]

# Ray unpacks a job's working_dir under <session dir>/runtime_resources/working_dir_files/<pkg>
_RESOURCES, _WORKING_DIRS = "runtime_resources", "working_dir_files"
# set by the Ray job supervisor for the entrypoint: {"runtime_env": {...}, "metadata": {...}}
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class StorageConfig(Section):
    """Where state may live (``storage``); the root itself is ``data_dir``."""

    # allow state under a Ray job's ephemeral working directory (lost when the job ends; a
    # throw-away run only).  Off: such a job refuses to start (tinywindow.core.storage).
    allow_ephemeral: bool = Field(default=False)
    # the SQL trade store (``tinywindow.records``), a projection of the journals: this URL
    # (``postgresql+psycopg://user@host:5432/db``, ``sqlite:///path``), or None for SQLite at
    # ``<data_dir>/trades.db``.  A secret (it may hold a password): masked in repr and logs.
    sql_url: SecretStr | None = Field(default=None, max_length=4096)
    # the PortfolioActor projects each journal commit into the store (a failed write is
    # logged and caught up later; trading never waits on the database)
    sql_store: bool = Field(default=True)


def is_uri(value: str) -> bool:
    """``s3://bucket/x``, ``gs://...``, ``file:///...``: a scheme, not a plain path."""
    return bool(_URI.match(value))


def _working_dir_copy(path: str | os.PathLike[str]) -> Path | None:
    """The ``.../runtime_resources/working_dir_files/<pkg>`` folder ``path`` lies in, if any."""
    parts = Path(os.path.abspath(path)).parts
    for i in range(len(parts) - 2):
        if parts[i] == _RESOURCES and parts[i + 1] == _WORKING_DIRS:
            return Path(*parts[: i + 3])
    return None


def _job_working_dir(environ: Mapping[str, str]) -> str | None:
    """The ``working_dir`` URI of the Ray job this process is the entrypoint of, if any."""
    raw = environ.get(JOB_CONFIG_ENV)
    if not raw:
        return None
    try:
        runtime_env = json.loads(raw).get("runtime_env") or {}
        uri = runtime_env.get("working_dir")
    except (ValueError, AttributeError):
        return None
    return uri if isinstance(uri, str) and uri else None


def ephemeral_root(cwd: str | os.PathLike[str] | None = None,
                   environ: Mapping[str, str] | None = None) -> Path | None:
    """The Ray job working directory this process runs in (a copy Ray made and will delete),
    or None outside such a job.

    Found from the current directory (the job supervisor starts the entrypoint there, and Ray
    starts the job's workers there) or from a ``PYTHONPATH`` entry (Ray puts the copy first on
    it, so an entrypoint that changed directory is still caught), as long as it lies under a
    Ray session's ``runtime_resources/working_dir_files``.  A ``local://`` working dir is the
    node's own folder, not a copy: not ephemeral.  Works with Ray neither imported nor running.
    """
    env = os.environ if environ is None else environ
    uri = _job_working_dir(env)
    if uri is not None and uri.startswith("local://"):
        return None
    here = os.getcwd() if cwd is None else cwd
    found = _working_dir_copy(here)
    if found is not None:
        return found
    for entry in env.get("PYTHONPATH", "").split(os.pathsep):
        if entry:
            found = _working_dir_copy(entry)
            if found is not None:
                return found
    return None


def check_state_root(data_dir: str, storage: StorageConfig, what: str, *,
                     ephemeral: Path | None = None) -> Path:
    """``data_dir`` as an absolute path, refused (``ConfigError``) when it is a URI or lies in
    a Ray job's ephemeral working directory and ``storage.allow_ephemeral`` is off.

    ``what`` names the command in the message; ``ephemeral`` is the job directory when the
    caller already knows it (default: ``ephemeral_root()``).
    """
    if is_uri(data_dir):
        raise config_error(
            f"{what}: data_dir={data_dir!r} is a URI, but the keystore, journals, checkpoints and "
            "model registry are files written in place and need a POSIX path: set data_dir to a "
            "filesystem every node shares (e.g. -s data_dir=/mnt/shared/tinywindow); object storage "
            "can take Tune results (agents.tune_dir=s3://...) and segments (crypto.store_dir=s3://...)",
            key="data_dir",
        )
    root = Path(os.path.abspath(data_dir))
    job_dir = ephemeral if ephemeral is not None else ephemeral_root()
    if job_dir is None:
        return root
    job_dir = Path(os.path.abspath(job_dir))
    if not _inside(root, job_dir):
        return root
    if storage.allow_ephemeral:
        get_logger("storage").warning(
            "%s: state goes to %s, inside this Ray job's working directory %s, which Ray deletes; "
            "nothing written there outlives the job (storage.allow_ephemeral=true)", what, root, job_dir)
        return root
    shown = str(root) if data_dir == str(root) else f"{data_dir!r} (resolved: {root})"
    raise config_error(
        f"{what}: data_dir {shown} is inside this Ray job's working directory {job_dir}, a copy Ray "
        "makes per job and deletes: models, journals and Tune results written there are lost to the "
        "next job. Set data_dir to an absolute path on storage every node shares (e.g. "
        "-s data_dir=/mnt/shared/tinywindow), or -s storage.allow_ephemeral=true for a throw-away run",
        key="data_dir",
    )


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or below it, symlinks (``session_latest``) resolved."""
    return path == folder or path.is_relative_to(folder) or path.resolve().is_relative_to(folder.resolve())


def tune_storage(tune_dir: str, data_dir: str | os.PathLike[str]) -> str:
    """What Tune's ``RunConfig(storage_path=...)`` gets for ``agents.tune_dir``: a URI as is
    (Tune writes it through ``pyarrow.fs``), an absolute path as is, a relative one under
    ``data_dir``, made absolute (Tune's trials run in other processes and folders)."""
    if is_uri(tune_dir):
        return tune_dir
    path = Path(tune_dir)
    return str((path if path.is_absolute() else Path(data_dir) / path).resolve())


def local_tune_dir(tune_dir: str, data_dir: str | os.PathLike[str]) -> Path | None:
    """``tune_storage`` as a local folder, or None when Tune results go to object storage."""
    storage = tune_storage(tune_dir, data_dir)
    return None if is_uri(storage) else Path(storage)
