"""NIST known-answer vectors (from the cryptography-vectors package) through our Backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinywindow.crypto.backends import MLDSA65_SIGNATURE_BYTES, Backend, get_backend
from tinywindow.crypto.backends import oqs as oqs_backend

vectors = pytest.importorskip("cryptography_vectors")
ROOT = Path(vectors.__file__).parent / "asymmetric"
BACKENDS = ["cryptography", pytest.param("oqs", marks=pytest.mark.skipif(
    not oqs_backend.available(), reason=f"liboqs unavailable: {oqs_backend.unavailable_reason()}"
))]


def read_rsp(path: Path) -> Iterator[dict[str, str]]:
    entry: dict[str, str] = {}
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition(" = ")
            if key == "count" and entry:
                yield entry
                entry = {}
            entry[key] = value
    if entry:
        yield entry


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return get_backend(request.param)


def test_mlkem768_all_kat_vectors(backend: Backend) -> None:
    """Key generation from (d, z), decapsulation and implicit rejection for all 1000 vectors."""
    count = 0
    for v in read_rsp(ROOT / "MLKEM" / "kat_MLKEM_768.rsp"):
        key = backend.mlkem768_from_seed(bytes.fromhex(v["d"] + v["z"]))
        assert key.public_bytes() == bytes.fromhex(v["pk"]), f"pk mismatch at count {v['count']}"
        assert key.decapsulate(bytes.fromhex(v["ct"])) == bytes.fromhex(v["ss"]), v["count"]
        # implicit rejection: an invalid ciphertext yields the KAT's pseudo-random secret
        assert key.decapsulate(bytes.fromhex(v["ct_n"])) == bytes.fromhex(v["ss_n"]), v["count"]
        count += 1
    assert count == 1000


def test_mlkem768_encapsulation_round_trip(backend: Backend) -> None:
    key = backend.mlkem768_from_seed(os.urandom(64))
    shared, ciphertext = backend.mlkem768_encapsulate(key.public_bytes())
    assert key.decapsulate(ciphertext) == shared


def test_mldsa65_all_kat_vectors(backend: Backend) -> None:
    """Key generation from xi and verification of the deterministic signatures (100 vectors)."""
    count = 0
    for v in read_rsp(ROOT / "MLDSA" / "kat_MLDSA_65_det_pure.rsp"):
        key = backend.mldsa65_from_seed(bytes.fromhex(v["xi"]))
        pk = bytes.fromhex(v["pk"])
        assert key.public_bytes() == pk, f"pk mismatch at count {v['count']}"
        sm, msg, ctx = bytes.fromhex(v["sm"]), bytes.fromhex(v["msg"]), bytes.fromhex(v["ctx"])
        signature = sm[:MLDSA65_SIGNATURE_BYTES]
        assert int(v["smlen"]) == MLDSA65_SIGNATURE_BYTES + int(v["mlen"])
        assert sm[MLDSA65_SIGNATURE_BYTES:] == msg
        assert backend.mldsa65_verify(pk, signature, msg, ctx), v["count"]
        bad = bytearray(signature)
        bad[int(v["count"]) % len(bad)] ^= 0x01
        assert not backend.mldsa65_verify(pk, bytes(bad), msg, ctx)
        assert not backend.mldsa65_verify(pk, signature, msg + b"x", ctx)
        assert not backend.mldsa65_verify(pk, signature, msg, ctx + b"x")
        count += 1
    assert count == 100


def test_mldsa65_sign_verify_and_malformed_inputs(backend: Backend) -> None:
    key = backend.mldsa65_from_seed(os.urandom(32))
    sig = key.sign(b"message", b"ctx")
    assert backend.mldsa65_verify(key.public_bytes(), sig, b"message", b"ctx")
    assert not backend.mldsa65_verify(key.public_bytes()[:-1], sig, b"message", b"ctx")
    assert not backend.mldsa65_verify(key.public_bytes(), sig[:-1], b"message", b"ctx")


def test_seed_lengths_are_checked(backend: Backend) -> None:
    with pytest.raises(ValueError):
        backend.mlkem768_from_seed(b"\x00" * 63)
    with pytest.raises(ValueError):
        backend.mldsa65_from_seed(b"\x00" * 31)
