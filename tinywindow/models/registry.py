"""The model registry: one signed directory per training run, loaded only once verified.

Layout under the registry root (``agents.registry_dir``)::

    <agent>/v0001/model.json.twenc    architecture, window, feature scaler
    <agent>/v0001/weights.pt.twenc    (RL agents) torch state_dict
    <agent>/v0001/booster.ubj.twenc   (XGBoost) the booster
    <agent>/v0001/MANIFEST.tw.json    ML-DSA-65 signature over every file + metadata
    <agent>/tuned.json.twenc          best parameters of the last sweep (``params.write_tuned``)

Every model file is a sealed file (``crypto.sealed``): one envelope encrypted to the keystore's
active key set, signed, labelled ``<agent>/<version>/<file>`` so a ciphertext moved to another
version or name is refused.  The manifest stays readable (its metadata says ``"encrypted":
true``), so listing and verifying a version need public keys only; loading one needs the
unlocked keystore.  A version written before issue 12 (plain files, no ``encrypted`` in its
signed metadata) still loads: its manifest signature vouches for that format.

``publish`` claims the next version number with an atomic ``mkdir``, saves the model into a
private temporary folder, seals each file into a staging folder, signs it and renames it into
place, so a reader sees either an empty (incomplete) version or a complete signed one.  The
signed metadata records the data range, the config and parameters, the metrics and the parent
version.

``load`` copies the version's files into a private temporary folder, verifies the copy
(``crypto.manifest.verify_dir``), decrypts each sealed file of that same copy (label, signature
and GCM tag checked again) and builds the predictor from it: what was verified is what is
loaded.  A changed, added, removed or swapped file, a missing, garbled or non-UTF-8 manifest or
a bad signature raises ``IntegrityError`` naming the file; nothing is unpickled from the
registry at all (JSON, ``torch.load(weights_only=True)``, the booster's UBJSON).  The
plaintext exists only in that private temporary folder, for the moment the predictors read it.
Anything else named like a version (a stray file ``v0007``, a symlink, an empty folder) is
listed with a status saying so, skipped by ``latest`` and refused by ``load`` with a
``ModelError`` naming its path: never a raw traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from tinywindow.crypto.keys import PrivateKeySource, PublicKeySource
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.manifest import MANIFEST, sign_dir, verify_dir
from tinywindow.crypto.sealed import SUFFIX as SEALED
from tinywindow.crypto.sealed import open_sealed, seal_bytes
from tinywindow.errors import IntegrityError, KeyStoreError, ModelError, TinyWindowError
from tinywindow.models.loading import load_dir
from tinywindow.models.params import check_agent
from tinywindow.models.predictor import Predictor

if TYPE_CHECKING:
    from tinywindow.crypto.config import CryptoConfig
    from tinywindow.models.config import AgentConfig

_VERSION = re.compile(r"^v(\d{4,})$")
ENCRYPTED = "encrypted"  # signed metadata key: true when every model file is sealed


def version_name(number: int) -> str:
    return f"v{number:04d}"


def registry_root(agents: AgentConfig, data_dir: str | Path) -> Path:
    """``agents.registry_dir``, under ``data_dir`` unless absolute."""
    path = Path(agents.registry_dir)
    return path if path.is_absolute() else Path(data_dir) / path


@dataclass(frozen=True)
class VersionInfo:
    """One version as listed: ``status`` is "ok", "incomplete", or why verification failed."""

    agent: str
    version: str
    status: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class ModelRegistry:
    """Signed model versions per agent under one root folder.

    ``keys`` verifies (a ``KeyStore`` or a passphrase-free ``PublicKeyRing``); ``signer``
    (an unlocked ``KeyStore``) is needed only to publish.
    """

    def __init__(
        self,
        root: str | Path,
        keys: PublicKeySource,
        signer: KeyStore | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.root = Path(root)
        self.keys = keys
        self.signer = signer
        self.clock = clock

    @classmethod
    def from_config(
        cls,
        agents: AgentConfig,
        crypto: CryptoConfig,
        data_dir: str | Path,
        keystore: KeyStore | None = None,
        *,
        read_only: bool = False,
    ) -> ModelRegistry:
        """The registry of the ``agents`` section under ``data_dir``: signing with ``keystore``
        (opened from the ``crypto`` section with the passphrase env var when None), or
        verify-only from the keystore's public keys."""
        from tinywindow.crypto import keystore_dir, open_keystore

        root = registry_root(agents, data_dir)
        if read_only and keystore is None:
            return cls(root, KeyStore.public_ring(keystore_dir(crypto, data_dir)))
        store = keystore if keystore is not None else open_keystore(crypto, data_dir)
        return cls(root, store, None if read_only else store)

    # ------------------------------------------------------------------ writing
    def publish(self, model: Predictor, metadata: dict[str, Any]) -> str:
        """Store ``model`` as the agent's next version, signed; returns the version name."""
        if self.signer is None:
            raise ModelError("this registry is read-only (opened without a keystore to sign with)")
        agent = check_agent(model.agent)
        base = self.root / agent
        base.mkdir(parents=True, exist_ok=True)
        version = self._claim(base)
        staging = base / f".staging-{version}-{os.getpid()}"
        try:
            self._seal_files(model, staging, f"{agent}/{version}")
            now = self.clock()
            meta = {
                **_json_safe(metadata),
                "agent": agent,
                "version": version,
                "kind": model.kind,
                "window": model.window,
                "created": pd.Timestamp(now, tz="UTC").isoformat(),
                ENCRYPTED: True,
            }
            sign_dir(staging, self.signer, meta)
            os.rename(staging, base / version)  # replaces the empty claimed folder atomically
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        model.version = version
        return version

    def _seal_files(self, model: Predictor, staging: Path, prefix: str) -> None:
        """``model.save`` into a private temporary folder, each file sealed into ``staging``
        (the predictors write files by path; plaintext never enters the registry)."""
        assert self.signer is not None
        with tempfile.TemporaryDirectory(prefix="tw-publish-") as tmp:
            plain = Path(tmp)
            model.save(plain)
            staging.mkdir()
            for path in sorted(p for p in plain.rglob("*") if p.is_file()):
                rel = path.relative_to(plain).as_posix()
                target = staging / f"{rel}{SEALED}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(seal_bytes(path.read_bytes(), self.signer, f"{prefix}/{rel}"))

    def _claim(self, base: Path) -> str:
        """The next free version number, claimed by an atomic mkdir (safe across processes)."""
        number = max((n for n, _ in self._entries(base)), default=0) + 1
        while True:
            name = version_name(number)
            try:
                (base / name).mkdir()
                return name
            except FileExistsError:
                number += 1

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _entries(base: Path) -> list[tuple[int, Path]]:
        """Everything under ``base`` named like a version, by number then name (may include
        stray files: callers check with ``_problem``)."""
        try:
            if not base.is_dir():
                return []
            found = [(int(m.group(1)), p) for p in base.iterdir() if (m := _VERSION.match(p.name))]
        except OSError as exc:
            raise ModelError(f"cannot list model versions in {base}: {exc.strerror or exc}") from None
        return sorted(found, key=lambda item: (item[0], item[1].name))

    @staticmethod
    def _problem(path: Path) -> str | None:
        """Why ``path`` is not a complete version folder ("incomplete" for an empty one), or None."""
        try:
            if path.is_symlink():
                return f"refused: {path} is a symlink, not a version folder"
            if not path.is_dir():
                return f"refused: {path} is not a version folder (a stray file)"
            if not any(path.iterdir()):
                return "incomplete"
        except OSError as exc:
            return f"refused: {path} cannot be read ({exc.strerror or exc})"
        return None

    def agents(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def versions(self, agent: str) -> list[VersionInfo]:
        """Every version of ``agent``, oldest first, each verified; anything else named like a
        version is listed with a status that says what it is."""
        base = self.root / check_agent(agent)
        out = []
        for _, path in self._entries(base):
            problem = self._problem(path)
            if problem is not None:
                out.append(VersionInfo(agent, path.name, problem))
                continue
            try:
                out.append(VersionInfo(agent, path.name, "ok", self._verify(path, agent, path.name)))
            except TinyWindowError as exc:
                out.append(VersionInfo(agent, path.name, f"refused: {exc}"))
        return out

    def latest(self, agent: str) -> str | None:
        """The newest complete version folder (verified when loaded, not here)."""
        base = self.root / check_agent(agent)
        for _, path in reversed(self._entries(base)):
            if self._problem(path) is None:
                return path.name
        return None

    def metadata(self, agent: str, version: str | None = None) -> dict[str, Any]:
        """The verified metadata of a version (the latest when None)."""
        name = self._resolve(agent, version)
        return self._verify(self.root / agent / name, agent, name)

    def load(self, agent: str, version: str | None = None) -> Predictor:
        """A verified predictor for ``agent`` (the latest version when ``version`` is None)."""
        name = self._resolve(agent, version)
        source = self.root / agent / name
        with tempfile.TemporaryDirectory(prefix="tw-model-") as tmp:
            copy = Path(tmp) / name
            try:
                shutil.copytree(source, copy, symlinks=True)
            except (OSError, shutil.Error) as exc:
                raise ModelError(f"cannot read model {agent} {name} at {source}: {exc}") from None
            meta = self._verify(copy, agent, name, shown=source)
            if meta.get(ENCRYPTED) is True:
                model_dir = self._open_files(copy, Path(tmp) / "plain", agent, name, source)
            else:  # written before issue 12: plain files under the signed manifest
                model_dir = copy
            try:
                predictor = load_dir(model_dir, name)
            except TinyWindowError:
                raise
            except (KeyError, TypeError, ValueError, OSError) as exc:
                raise ModelError(f"model {agent} {name} at {source} cannot be loaded: {exc!r}") from None
        if predictor.agent != agent or meta.get("kind") != predictor.kind:
            raise IntegrityError(f"model {agent} {name} at {source}: signed metadata does not match its files")
        return predictor

    def _open_files(self, copy: Path, out: Path, agent: str, name: str, source: Path) -> Path:
        """Decrypt every sealed file of the verified ``copy`` into ``out`` (private, temporary)."""
        what = f"{agent} {name}"
        if not hasattr(self.keys, "private"):
            raise KeyStoreError(
                f"model {what} at {source} is encrypted: loading it needs the unlocked keystore "
                "(its passphrase); public keys alone list and verify versions, they cannot load them"
            )
        keys = cast(PrivateKeySource, self.keys)
        for path in sorted(p for p in copy.rglob("*") if p.is_file()):
            rel = path.relative_to(copy).as_posix()
            if rel == MANIFEST:
                continue
            if not rel.endswith(SEALED):
                raise IntegrityError(f"model {what} at {source}: file {rel!r} is not sealed; refusing to load it")
            plain = rel.removesuffix(SEALED)
            try:
                data = open_sealed(path, keys, f"{agent}/{name}/{plain}")
            except (IntegrityError, KeyStoreError) as exc:
                text = str(exc).replace(str(path), str(source / rel))
                raise type(exc)(f"model {what}: file {rel!r} refused, not loading it: {text}") from None
            target = out / plain
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return out

    def _resolve(self, agent: str, version: str | None) -> str:
        check_agent(agent)
        name = version or self.latest(agent)
        if name is None:
            raise ModelError(f"no trained version of agent {agent!r} in {self.root} (run 'tinywindow agents train')")
        path = self.root / agent / name
        if not _VERSION.match(name) or not os.path.lexists(path):
            raise ModelError(f"agent {agent!r} has no version {name!r} in {self.root}")
        problem = self._problem(path)
        if problem == "incomplete":
            raise ModelError(f"model {agent} {name} at {path} is incomplete (an empty version folder)")
        if problem is not None:
            raise ModelError(f"model {agent} {name}: {problem.removeprefix('refused: ')}")
        return name

    def _verify(self, path: Path, agent: str, name: str, shown: Path | None = None) -> dict[str, Any]:
        """The signed metadata of the version folder ``path`` (``shown``: the path to name in
        errors when ``path`` is a private copy)."""
        where = shown or path
        if not (path / MANIFEST).is_file():
            raise IntegrityError(f"model {agent} {name} at {where} is not signed (no {MANIFEST}); refusing to load it")
        try:
            meta = verify_dir(path, self.keys)
        except IntegrityError as exc:
            text = str(exc).replace(str(path), str(where))
            raise IntegrityError(f"model {agent} {name} failed verification, refusing to load it: {text}") from None
        if meta.get("agent") != agent or meta.get("version") != name:
            raise IntegrityError(
                f"model {agent} {name} at {where}: manifest is signed for {meta.get('agent')} "
                f"{meta.get('version')} (a version folder was moved or copied)"
            )
        return meta


def _json_safe(value: Any) -> Any:
    """Metadata as strict JSON (NaN/inf -> None, numpy scalars -> Python)."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
