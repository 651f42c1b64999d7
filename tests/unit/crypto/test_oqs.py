"""The optional liboqs backend: lazy import, clear unavailability, interop when present."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tinywindow.crypto.backends import get_backend
from tinywindow.crypto.backends import oqs as oqs_backend
from tinywindow.errors import ConfigError

needs_liboqs = pytest.mark.skipif(
    not oqs_backend.available(), reason=f"liboqs unavailable: {oqs_backend.unavailable_reason()}"
)


def test_package_import_never_imports_oqs() -> None:
    code = (
        "import sys, tinywindow.crypto, tinywindow.crypto.store, tinywindow.crypto.journal, "
        "tinywindow.crypto.manifest, tinywindow.cli.keys, tinywindow.cli.verify; "
        "print('oqs' in sys.modules, 'ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_unavailable_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oqs_backend, "_candidate_paths", lambda: [])
    oqs_backend._probe.cache_clear()
    try:
        assert not oqs_backend.available()
        assert "liboqs shared library was not found" in oqs_backend.unavailable_reason()
        with pytest.raises(ConfigError, match="unavailable") as info:
            get_backend("oqs")
        assert info.value.key == "crypto.backend"
        assert get_backend("auto").name == "cryptography"
        assert "oqs" not in sys.modules  # probing never imported liboqs-python
    finally:
        oqs_backend._probe.cache_clear()


def test_unknown_backend_name() -> None:
    with pytest.raises(ConfigError, match="unknown crypto backend"):
        get_backend("openssl3")


@needs_liboqs
def test_kem_interop_both_ways() -> None:
    cg, oq = get_backend("cryptography"), get_backend("oqs")
    seed = os.urandom(64)
    k_cg, k_oq = cg.mlkem768_from_seed(seed), oq.mlkem768_from_seed(seed)
    assert k_cg.public_bytes() == k_oq.public_bytes()
    shared, ct = oq.mlkem768_encapsulate(k_cg.public_bytes())  # liboqs encapsulates
    assert k_cg.decapsulate(ct) == shared  # cryptography decapsulates
    shared, ct = cg.mlkem768_encapsulate(k_oq.public_bytes())
    assert k_oq.decapsulate(ct) == shared


@needs_liboqs
def test_signature_interop_both_ways() -> None:
    cg, oq = get_backend("cryptography"), get_backend("oqs")
    seed = os.urandom(32)
    s_cg, s_oq = cg.mldsa65_from_seed(seed), oq.mldsa65_from_seed(seed)
    assert s_cg.public_bytes() == s_oq.public_bytes()
    assert cg.mldsa65_verify(s_oq.public_bytes(), s_oq.sign(b"m", b"ctx"), b"m", b"ctx")
    assert oq.mldsa65_verify(s_cg.public_bytes(), s_cg.sign(b"m", b"ctx"), b"m", b"ctx")


class _FakeNative:
    """liboqs' randombytes hook, as ctypes would expose it."""

    def __init__(self) -> None:
        self.custom: object = None

    def OQS_randombytes_custom_algorithm(self, callback: object) -> None:
        self.custom = callback

    def OQS_randombytes_switch_algorithm(self, name: bytes) -> None:
        assert name == b"system"
        self.custom = None


def _fake_oqs() -> object:
    """A stand-in for liboqs-python 0.14's API, computing with ``cryptography``; it checks our
    wrapper's plumbing (seeded keygen, the randombytes hook, context strings), not liboqs."""
    import ctypes
    import types

    from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem

    native = _FakeNative()

    class KeyEncapsulation:
        def __init__(self, alg: str) -> None:
            assert alg == "ML-KEM-768"
            self.key: mlkem.MLKEM768PrivateKey | None = None

        def __enter__(self) -> KeyEncapsulation:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def generate_keypair_seed(self, seed: bytes) -> bytes:
            self.key = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
            return self.key.public_key().public_bytes_raw()

        def encap_secret(self, public_key: bytes) -> tuple[bytes, bytes]:
            shared, ct = mlkem.MLKEM768PublicKey.from_public_bytes(public_key).encapsulate()
            return ct, shared  # liboqs order: (ciphertext, shared secret)

        def decap_secret(self, ciphertext: bytes) -> bytes:
            assert self.key is not None
            return self.key.decapsulate(ciphertext)

    class Signature:
        def __init__(self, alg: str) -> None:
            assert alg == "ML-DSA-65"
            self.key: mldsa.MLDSA65PrivateKey | None = None

        def __enter__(self) -> Signature:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def generate_keypair(self) -> bytes:
            buf = (ctypes.c_uint8 * 32)()
            assert native.custom is not None, "seeded keygen must install the randombytes hook"
            native.custom(buf, 32)  # type: ignore[operator]
            self.key = mldsa.MLDSA65PrivateKey.from_seed_bytes(bytes(buf))
            return self.key.public_key().public_bytes_raw()

        def sign_with_ctx_str(self, message: bytes, context: bytes) -> bytes:
            assert self.key is not None
            return self.key.sign(message, context)

        def verify_with_ctx_str(self, message: bytes, signature: bytes, context: bytes, public_key: bytes) -> bool:
            try:
                mldsa.MLDSA65PublicKey.from_public_bytes(public_key).verify(signature, message, context)
            except Exception:
                return False
            return True

    return types.SimpleNamespace(KeyEncapsulation=KeyEncapsulation, Signature=Signature, native=lambda: native)


def test_oqs_wrapper_plumbing_with_a_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oqs_backend, "_probe", lambda: (_fake_oqs(), ""))
    oq, cg = oqs_backend.OqsBackend(), get_backend("cryptography")
    seed = os.urandom(64)
    k_oq, k_cg = oq.mlkem768_from_seed(seed), cg.mlkem768_from_seed(seed)
    assert k_oq.public_bytes() == k_cg.public_bytes()
    shared, ct = oq.mlkem768_encapsulate(k_cg.public_bytes())
    assert k_cg.decapsulate(ct) == shared == k_oq.decapsulate(ct)
    with pytest.raises(ValueError):
        k_oq.decapsulate(ct[:-1])
    s_oq = oq.mldsa65_from_seed(seed[:32])
    assert s_oq.public_bytes() == cg.mldsa65_from_seed(seed[:32]).public_bytes()
    signature = s_oq.sign(b"m", b"ctx")
    assert cg.mldsa65_verify(s_oq.public_bytes(), signature, b"m", b"ctx")
    assert oq.mldsa65_verify(s_oq.public_bytes(), signature, b"m", b"ctx")
    assert not oq.mldsa65_verify(s_oq.public_bytes(), signature, b"m", b"other")
