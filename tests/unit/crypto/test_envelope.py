"""Envelope: round trips, per-byte tampering, truncation, fuzzing, wrong keys, the doc."""

from __future__ import annotations

import hashlib
import shutil
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tinywindow.crypto import envelope as ev
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import IntegrityError, KeyStoreError

from .conftest import PASSPHRASE, make_keystore

PLAINTEXT = b"tiny secret: 42 BTC @ 64k"


def seal(ks: KeyStore, data: bytes = PLAINTEXT, kem: str = "hybrid", label: str = "t") -> bytes:
    keys = ks.active()
    return ev.seal(data, keys.public, keys, label=label, kem=kem)


@pytest.mark.parametrize("kem", ["hybrid", "mlkem768"])
@pytest.mark.parametrize("size", [0, 1, 17, 70_000])
def test_round_trip(shared_keystore: KeyStore, kem: str, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    blob = seal(shared_keystore, data, kem)
    assert bytes(ev.open_envelope(blob, shared_keystore, label="t")) == data
    header = ev.parse_header(blob)
    assert header.kem_id == ev.KEM_IDS[kem]
    assert header.recipient == header.signer == shared_keystore.active().key_id


def test_every_flipped_byte_is_rejected(shared_keystore: KeyStore) -> None:
    blob = seal(shared_keystore)
    accepted, other = [], []
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        try:
            ev.open_envelope(bytes(tampered), shared_keystore)
            accepted.append(i)
        except IntegrityError:
            pass
        except Exception as exc:  # the point is to catch anything else
            other.append((i, type(exc).__name__))
    assert accepted == [] and other == [], (accepted[:5], other[:5])


def test_every_truncation_is_rejected(shared_keystore: KeyStore) -> None:
    blob = seal(shared_keystore, kem="mlkem768")
    for n in range(len(blob)):
        with pytest.raises(IntegrityError):
            ev.open_envelope(blob[:n], shared_keystore)
    with pytest.raises(IntegrityError):
        ev.open_envelope(blob + b"\x00", shared_keystore)


_PREFIXES = st.sampled_from([b"", b"TWEV", b"TWEV\x01\x02\x01\x01", b"TWEV\x01\x01\x01\x01"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=_PREFIXES, data=st.binary(max_size=6000))
def test_parser_fuzz_arbitrary_bytes(shared_keystore: KeyStore, prefix: bytes, data: bytes) -> None:
    """Arbitrary bytes: a typed error every time (KeyStoreError only for well-formed headers
    naming keys this keystore does not hold), never another exception, never plaintext."""
    blob = prefix + data
    with pytest.raises((IntegrityError, KeyStoreError)) as info:
        ev.open_envelope(blob, shared_keystore)
    if info.type is KeyStoreError:
        ev.parse_header(blob)  # only reachable past a structurally valid header


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 255)), min_size=1, max_size=8),
       cut=st.integers(0, 6000))
def test_fuzz_mutated_envelopes(shared_keystore: KeyStore, edits: list[tuple[int, int]], cut: int) -> None:
    original = seal(shared_keystore)
    blob = bytearray(original)
    for pos, xor in edits:
        blob[pos % len(blob)] ^= xor
    mutated = bytes(blob[:cut] if cut < len(blob) else blob)
    assume(mutated != original)  # edits may cancel out
    with pytest.raises(IntegrityError):
        ev.open_envelope(mutated, shared_keystore)


def test_label_binds_the_name(shared_keystore: KeyStore) -> None:
    blob = seal(shared_keystore, label="bars/a")
    with pytest.raises(IntegrityError, match="labelled"):
        ev.open_envelope(blob, shared_keystore, label="bars/b")


def test_wrong_keystore_is_a_keystore_error(tmp_path: Path, shared_keystore: KeyStore) -> None:
    other = make_keystore(tmp_path / "other")
    with pytest.raises(KeyStoreError, match="does not hold"):
        ev.open_envelope(seal(shared_keystore), other)


def test_old_key_after_rotation(tmp_path: Path) -> None:
    ks = make_keystore(tmp_path / "keys")
    shutil.copytree(tmp_path / "keys", tmp_path / "before")
    old_blob = seal(ks)
    old_id = ks.active_id
    new_id = ks.rotate()
    new_blob = seal(ks)
    assert ev.parse_header(new_blob).recipient.hex() == new_id != old_id
    assert bytes(ev.open_envelope(old_blob, ks)) == PLAINTEXT  # old data stays readable
    reopened = KeyStore.open(tmp_path / "keys", PASSPHRASE)
    assert bytes(ev.open_envelope(old_blob, reopened)) == PLAINTEXT
    stale = KeyStore.open(tmp_path / "before", PASSPHRASE)  # a copy from before the rotation
    with pytest.raises(KeyStoreError, match=new_id):
        ev.open_envelope(new_blob, stale)


def test_signature_only_check_needs_no_private_key(shared_keystore: KeyStore, tmp_path: Path) -> None:
    ring = KeyStore.public_ring(shared_keystore.directory)
    header = ev.verify_signature(seal(shared_keystore), ring)
    assert header.label == "t"
    with pytest.raises(IntegrityError):
        bad = bytearray(seal(shared_keystore))
        bad[10] ^= 1
        ev.verify_signature(bytes(bad), ring)


def test_decrypt_with_only_the_document_and_cryptography(shared_keystore: KeyStore) -> None:
    """An independent reader written from docs/crypto-format.md alone."""
    blob = seal(shared_keystore, label="doc")
    seeds = shared_keystore.active().seeds  # 64 ML-KEM seed, 32 X25519, 32 ML-DSA seed
    magic, version, kem_id, aead_id, sig_id, rid, _sid, label_len = struct.unpack(">4sBBBB16s16sH", blob[:42])
    assert (magic, version, kem_id, aead_id, sig_id) == (b"TWEV", 2, 2, 1, 1)
    pos = 42 + label_len
    x_eph, ct_kem = blob[pos : pos + 32], blob[pos + 32 : pos + 32 + 1088]
    nonce = blob[pos + 1120 : pos + 1132]
    header = blob[: pos + 1132]
    body, signature = blob[len(header) : -3309], blob[-3309:]
    tag = body[-16:]
    signer = mldsa.MLDSA65PrivateKey.from_seed_bytes(seeds[96:]).public_key()
    ct_digest = hashlib.sha256(body[:-16]).digest()
    signer.verify(signature, header + struct.pack(">Q", len(body) - 16) + tag + ct_digest, b"tinywindow/envelope/v2")
    ss_kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(seeds[:64]).decapsulate(ct_kem)
    ss_x = x25519.X25519PrivateKey.from_private_bytes(seeds[64:96]).exchange(
        x25519.X25519PublicKey.from_public_bytes(x_eph)
    )
    info = b"tinywindow/envelope/v1/dek" + header[:8] + rid + x_eph + ct_kem
    dek = HKDF(hashes.SHA256(), 32, None, info).derive(ss_kem + ss_x)
    assert AESGCM(dek).decrypt(nonce, body, header) == PLAINTEXT


def test_format_1_envelopes_stay_readable(shared_keystore: KeyStore) -> None:
    """Version 1 (signature over header, length and tag only) is still read; a public-key-only
    check cannot vouch for its ciphertext, so ``verify_envelope`` needs the private keys."""
    keys = shared_keystore.active()
    blob = ev.seal(PLAINTEXT, keys.public, keys, label="old", version=1)
    assert ev.parse_header(blob).version == 1
    assert bytes(ev.open_envelope(blob, shared_keystore, label="old")) == PLAINTEXT
    assert ev.verify_envelope(blob, shared_keystore, label="old").version == 1
    ring = KeyStore.public_ring(shared_keystore.directory)
    with pytest.raises(IntegrityError, match="format-1"):
        ev.verify_envelope(blob, ring)
    bad = bytearray(blob)
    bad[len(ev.parse_header(blob).raw) + 3] ^= 1  # a ciphertext byte
    ev.verify_signature(bytes(bad), ring)  # v1: the signature alone does not see it
    with pytest.raises(IntegrityError, match="GCM"):
        ev.verify_envelope(bytes(bad), shared_keystore)


def test_format_2_signature_covers_the_ciphertext(shared_keystore: KeyStore) -> None:
    ring = KeyStore.public_ring(shared_keystore.directory)
    blob = seal(shared_keystore, bytes(300))
    start = len(ev.parse_header(blob).raw)
    for pos in (start, start + 150, start + 299):
        bad = bytearray(blob)
        bad[pos] ^= 1
        with pytest.raises(IntegrityError, match="digest"):
            ev.verify_envelope(bytes(bad), ring)
