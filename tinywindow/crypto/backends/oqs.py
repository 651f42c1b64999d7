"""Optional liboqs backend (``pip install 'tinywindow[oqs]'`` plus the liboqs C library).

``import oqs`` is never done at package import: when liboqs-python cannot find the shared
library it tries to git-clone and build liboqs (and exits the process if that fails).  So
``available()`` first looks for the library exactly where liboqs-python would (the system
loader path, ``$OQS_INSTALL_PATH`` or ``~/_oqs``, ``lib``/``lib64``) and loads it with ctypes;
only when that works is ``oqs`` imported.

Keys come from seeds like everywhere else: ML-KEM through ``KeyEncapsulation.
generate_keypair_seed`` (liboqs-python >= 0.14).  liboqs has no seeded ML-DSA key generation,
so the 32-byte seed ``xi`` is handed to liboqs' key generation through its randombytes hook
(ML-DSA key generation draws exactly those 32 bytes); the derived public key is then checked
against the one the ``cryptography`` backend derives, so a mismatch can never go unnoticed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import os
import re
import threading
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from tinywindow.crypto.backends.base import (
    MLDSA65_SEED_BYTES,
    MLKEM768_CIPHERTEXT_BYTES,
    MLKEM768_SEED_BYTES,
    KemPrivateKey,
    SigPrivateKey,
)
from tinywindow.crypto.backends.cryptography import CryptographyBackend
from tinywindow.errors import ConfigError

KEM_ALG = "ML-KEM-768"
SIG_ALG = "ML-DSA-65"
_RNG_LOCK = threading.Lock()


def _candidate_paths() -> list[str]:
    found = [p for p in (ctypes.util.find_library("oqs"), ctypes.util.find_library("liboqs")) if p]
    root = Path(os.environ.get("OQS_INSTALL_PATH", str(Path.home() / "_oqs")))
    for sub in ("lib", "lib64"):
        for suffix in (".so", ".dylib"):
            candidate = root / sub / f"liboqs{suffix}"
            if candidate.exists():
                found.append(str(candidate))
    return found


@cache
def _probe() -> tuple[ModuleType | None, str]:
    """``(oqs module, "")`` when liboqs loads, else ``(None, reason)``; cached per process."""
    paths = _candidate_paths()
    loaded = False
    for path in paths:
        try:
            ctypes.CDLL(path)
            loaded = True
            break
        except OSError:
            continue
    if not loaded:
        return None, (
            "the liboqs shared library was not found (looked on the loader path and in "
            "$OQS_INSTALL_PATH or ~/_oqs); install liboqs, or use crypto.backend=cryptography"
        )
    try:
        version = importlib.metadata.version("liboqs-python")
    except importlib.metadata.PackageNotFoundError:
        return None, "liboqs loads but liboqs-python is missing: pip install 'tinywindow[oqs]'"
    if tuple(int(p) for p in re.findall(r"\d+", version)[:2]) < (0, 14):
        # older wrappers search other folders and would try to build liboqs on import
        return None, f"liboqs-python {version} is too old (need >= 0.14)"
    try:
        import oqs  # lazy on purpose: see the module docstring
    except ImportError:
        return None, "liboqs loads but liboqs-python is missing: pip install 'tinywindow[oqs]'"
    except SystemExit:  # liboqs-python gives up this way when it cannot load liboqs
        return None, "liboqs-python could not load liboqs"
    missing = [n for n in ("generate_keypair_seed",) if not hasattr(oqs.KeyEncapsulation, n)]
    if missing:
        return None, "liboqs-python is too old (need >= 0.14 for seeded ML-KEM key generation)"
    kems, sigs = oqs.get_enabled_kem_mechanisms(), oqs.get_enabled_sig_mechanisms()
    if KEM_ALG not in kems or SIG_ALG not in sigs:
        return None, f"this liboqs build does not enable {KEM_ALG} and {SIG_ALG}"
    return oqs, ""


def available() -> bool:
    return _probe()[0] is not None


def unavailable_reason() -> str:
    return _probe()[1]


def _require() -> Any:
    module, reason = _probe()
    if module is None:
        raise ConfigError(f"crypto backend 'oqs' is unavailable: {reason}", key="crypto.backend")
    return module


class _OqsKem:
    def __init__(self, oqs: Any, seed: bytes) -> None:
        self._kem = oqs.KeyEncapsulation(KEM_ALG)
        self._public = bytes(self._kem.generate_keypair_seed(seed))

    def public_bytes(self) -> bytes:
        return self._public

    def decapsulate(self, ciphertext: bytes) -> bytes:
        if len(ciphertext) != MLKEM768_CIPHERTEXT_BYTES:
            raise ValueError(f"ML-KEM-768 ciphertext must be {MLKEM768_CIPHERTEXT_BYTES} bytes")
        return bytes(self._kem.decap_secret(ciphertext))


class _OqsSig:
    def __init__(self, oqs: Any, seed: bytes) -> None:
        self._sig = oqs.Signature(SIG_ALG)
        self._public = _seeded_sig_keypair(oqs, self._sig, seed)
        expected = CryptographyBackend().mldsa65_from_seed(seed).public_bytes()
        if self._public != expected:
            raise ConfigError(
                "liboqs derived a different ML-DSA-65 key from the same seed; "
                "use crypto.backend=cryptography",
                key="crypto.backend",
            )

    def public_bytes(self) -> bytes:
        return self._public

    def sign(self, message: bytes, context: bytes) -> bytes:
        return bytes(self._sig.sign_with_ctx_str(message, context))


def _seeded_sig_keypair(oqs: Any, sig: Any, seed: bytes) -> bytes:
    """Run liboqs' ML-DSA key generation with its randomness replaced by ``seed``."""
    native = oqs.native()
    callback_type = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t)
    served = {"calls": 0}

    def feed(buf: Any, n: int) -> None:
        if served["calls"] or n != len(seed):
            raise RuntimeError("unexpected randomness request during seeded ML-DSA keygen")
        served["calls"] += 1
        ctypes.memmove(buf, seed, n)

    callback = callback_type(feed)
    with _RNG_LOCK:
        native.OQS_randombytes_custom_algorithm(callback)
        try:
            public = bytes(sig.generate_keypair())
        finally:
            native.OQS_randombytes_switch_algorithm(b"system")
    if served["calls"] != 1:
        raise ConfigError("liboqs ML-DSA key generation did not use the seed", key="crypto.backend")
    return public


class OqsBackend:
    """ML-KEM-768 / ML-DSA-65 from liboqs (raises ``ConfigError`` when liboqs is absent)."""

    name = "oqs"

    def __init__(self) -> None:
        self._oqs = _require()

    def mlkem768_from_seed(self, seed: bytes) -> KemPrivateKey:
        if len(seed) != MLKEM768_SEED_BYTES:
            raise ValueError(f"ML-KEM-768 seed must be {MLKEM768_SEED_BYTES} bytes")
        return _OqsKem(self._oqs, seed)

    def mlkem768_encapsulate(self, public_key: bytes) -> tuple[bytes, bytes]:
        with self._oqs.KeyEncapsulation(KEM_ALG) as kem:
            ciphertext, shared = kem.encap_secret(public_key)
        return bytes(shared), bytes(ciphertext)

    def mldsa65_from_seed(self, seed: bytes) -> SigPrivateKey:
        if len(seed) != MLDSA65_SEED_BYTES:
            raise ValueError(f"ML-DSA-65 seed must be {MLDSA65_SEED_BYTES} bytes")
        return _OqsSig(self._oqs, seed)

    def mldsa65_verify(
        self, public_key: bytes, signature: bytes, message: bytes, context: bytes
    ) -> bool:
        with self._oqs.Signature(SIG_ALG) as verifier:
            return bool(verifier.verify_with_ctx_str(message, signature, context, public_key))
