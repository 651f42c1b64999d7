"""The optional liboqs backend: lazy import, clear unavailability, interop when present."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tinywindow.crypto import oqs_backend
from tinywindow.crypto.backend import get_backend
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
