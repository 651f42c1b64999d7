"""The encrypted, signed envelope (format v2, reads v1; byte-by-byte in ``docs/crypto-format.md``).

::

    header (= AES-GCM associated data)
      magic "TWEV" | version 1 | kem id | aead id | sig id | recipient key id (16)
      | signer key id (16) | label length (u16 BE) | label (UTF-8)
      | KEM block (hybrid: X25519 ephemeral public key 32 || ML-KEM-768 ciphertext 1088)
      | nonce (12)
    ciphertext (AES-256-GCM, same length as the plaintext) | GCM tag (16)
    ML-DSA-65 signature (3309) over
      v2: header || u64 BE ciphertext length || tag || SHA-256(ciphertext), context "tinywindow/envelope/v2"
      v1: header || u64 BE ciphertext length || tag,                        context "tinywindow/envelope/v1"

Version 2 (written since issue 10) signs a digest of the ciphertext, so a verifier holding only
public keys checks every byte (``verify_envelope``).  Version 1 is still read; its ciphertext can
only be checked by decrypting (the GCM tag), so ``verify_envelope`` needs the private keys for it.

The data key is ``HKDF-SHA256(ikm = ss_mlkem [|| ss_x25519], salt = none, info = "tinywindow/
envelope/v1/dek" || header[0:8] || recipient key id || KEM block)``: the hybrid stays safe while
either ML-KEM-768 or X25519 holds.  Readers check structure and the signature *before* any
decapsulation or decryption, and no plaintext leaves ``open_envelope`` unless the GCM tag
verified.  Every failure on the bytes raises ``IntegrityError``; an envelope made for another
keystore raises ``KeyStoreError``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from typing import Any, Protocol, cast

import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tinywindow.crypto.backends import (
    MLDSA65_SIGNATURE_BYTES,
    MLKEM768_CIPHERTEXT_BYTES,
    Backend,
    get_backend,
)
from tinywindow.crypto.keys import (
    X25519_BYTES,
    KeySet,
    PrivateKeySource,
    PublicKeys,
    PublicKeySource,
)
from tinywindow.errors import IntegrityError, KeyStoreError

MAGIC = b"TWEV"
VERSION = 2  # written
VERSIONS = (1, 2)  # read
KEM_MLKEM768 = 1
KEM_HYBRID = 2
AEAD_AES256GCM = 1
SIG_MLDSA65 = 1
KEM_IDS = {"mlkem768": KEM_MLKEM768, "hybrid": KEM_HYBRID}
KEM_BLOCK = {KEM_MLKEM768: MLKEM768_CIPHERTEXT_BYTES, KEM_HYBRID: X25519_BYTES + MLKEM768_CIPHERTEXT_BYTES}
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_LABEL = 1024
SIG_CONTEXT = b"tinywindow/envelope/v2"
SIG_CONTEXT_V1 = b"tinywindow/envelope/v1"
DEK_INFO = b"tinywindow/envelope/v1/dek"
_FIXED = struct.Struct(">4sBBBB16s16sH")  # 42 bytes, up to the label
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Header:
    """A parsed header; ``raw`` is its exact bytes (the AAD and the start of the signed data)."""

    kem_id: int
    version: int
    recipient: bytes
    signer: bytes
    label: str
    kem_block: bytes
    nonce: bytes
    raw: bytes


def build_header(
    kem_id: int, recipient: bytes, signer: bytes, label: str, kem_block: bytes, nonce: bytes, version: int = VERSION
) -> bytes:
    label_bytes = label.encode("utf-8")
    if len(label_bytes) > MAX_LABEL:
        raise ValueError(f"envelope label longer than {MAX_LABEL} bytes")
    if version not in VERSIONS:
        raise ValueError(f"unknown envelope version {version}")
    fixed = _FIXED.pack(MAGIC, version, kem_id, AEAD_AES256GCM, SIG_MLDSA65, recipient, signer, len(label_bytes))
    return fixed + label_bytes + kem_block + nonce


def parse_header(blob: Any) -> Header:
    """Parse the header at the start of ``blob`` (bytes-like); ``IntegrityError`` on any defect."""
    view = memoryview(blob)
    if len(view) < _FIXED.size:
        raise IntegrityError(f"envelope truncated: {len(view)} bytes is shorter than a header")
    magic, version, kem_id, aead_id, sig_id, recipient, signer, label_len = _FIXED.unpack_from(view, 0)
    if magic != MAGIC:
        raise IntegrityError("not a TinyWindow envelope (bad magic)")
    if version not in VERSIONS:
        raise IntegrityError(f"unsupported envelope version {version}")
    if kem_id not in KEM_BLOCK or aead_id != AEAD_AES256GCM or sig_id != SIG_MLDSA65:
        raise IntegrityError(f"unknown algorithm ids kem={kem_id} aead={aead_id} sig={sig_id}")
    if label_len > MAX_LABEL:
        raise IntegrityError("envelope label length out of range")
    pos = _FIXED.size
    end = pos + label_len + KEM_BLOCK[kem_id] + NONCE_BYTES
    if len(view) < end + TAG_BYTES + MLDSA65_SIGNATURE_BYTES:
        raise IntegrityError(f"envelope truncated: {len(view)} bytes")
    try:
        label = bytes(view[pos : pos + label_len]).decode("utf-8")
    except UnicodeDecodeError:
        raise IntegrityError("envelope label is not UTF-8") from None
    pos += label_len
    kem_block = bytes(view[pos : pos + KEM_BLOCK[kem_id]])
    pos += KEM_BLOCK[kem_id]
    nonce = bytes(view[pos:end])
    return Header(kem_id, version, recipient, signer, label, kem_block, nonce, bytes(view[:end]))


def _signed_message(header: bytes, ciphertext_len: int, tag: bytes, ciphertext_digest: bytes | None) -> bytes:
    """What the signature covers: v2 adds SHA-256 of the ciphertext (``ciphertext_digest``)."""
    message = header + struct.pack(">Q", ciphertext_len) + tag
    return message if ciphertext_digest is None else message + ciphertext_digest


def _context(version: int) -> bytes:
    return SIG_CONTEXT_V1 if version == 1 else SIG_CONTEXT


def _dek(kem_id: int, header: bytes, recipient: bytes, kem_block: bytes, secrets: bytes) -> bytes:
    info = DEK_INFO + header[:8] + recipient + kem_block
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secrets)


def _encapsulate(kem_id: int, recipient: PublicKeys, backend: Backend) -> tuple[bytes, bytes]:
    """``(kem_block, shared secrets)`` for a fresh data key."""
    ss_mlkem, ct_mlkem = backend.mlkem768_encapsulate(recipient.mlkem768)
    if kem_id == KEM_MLKEM768:
        return ct_mlkem, ss_mlkem
    ephemeral = x25519.X25519PrivateKey.generate()
    ss_x = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(recipient.x25519))
    return ephemeral.public_key().public_bytes_raw() + ct_mlkem, ss_mlkem + ss_x


def _decapsulate(header: Header, keys: KeySet) -> bytes:
    block = header.kem_block
    if header.kem_id == KEM_MLKEM768:
        return keys.mlkem_decapsulate(block)
    ss_mlkem = keys.mlkem_decapsulate(block[X25519_BYTES:])
    try:
        ss_x = keys.x25519_exchange(block[:X25519_BYTES])
    except ValueError:
        raise IntegrityError("envelope X25519 share is a low-order point") from None
    return ss_mlkem + ss_x


class Sink(Protocol):
    def write(self, data: Any) -> Any: ...


class EnvelopeWriter:
    """Encrypts everything written to it into ``sink`` as one envelope; ``close()`` appends the
    tag and the signature.  File-like enough for ``pa.PythonFile`` (Arrow IPC streams straight
    through it, so no full-size plaintext copy is ever made)."""

    def __init__(
        self,
        sink: Sink,
        recipient: PublicKeys,
        signer: KeySet,
        *,
        label: str = "",
        kem: str = "hybrid",
        backend: Backend | None = None,
        version: int = VERSION,
    ) -> None:
        if kem not in KEM_IDS:
            raise ValueError(f"unknown KEM {kem!r} (allowed: {', '.join(KEM_IDS)})")
        kem_id = KEM_IDS[kem]
        kem_block, secrets = _encapsulate(kem_id, recipient, backend or get_backend())
        nonce = os.urandom(NONCE_BYTES)
        self._header = build_header(kem_id, recipient.key_id, signer.key_id, label, kem_block, nonce, version)
        self._version = version
        self._digest = hashlib.sha256()
        dek = _dek(kem_id, self._header, recipient.key_id, kem_block, secrets)
        self._enc = Cipher(algorithms.AES(dek), modes.GCM(nonce)).encryptor()
        self._enc.authenticate_additional_data(self._header)
        self._sink, self._signer = sink, signer
        self._scratch = bytearray(_CHUNK + 16)
        self._length = 0
        self.closed = False
        sink.write(self._header)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        out = memoryview(self._scratch)
        for start in range(0, len(view), _CHUNK):
            piece = view[start : start + _CHUNK]
            n = self._enc.update_into(piece, out)
            self._digest.update(out[:n])
            self._sink.write(out[:n])
        self._length += len(view)
        return len(view)

    def flush(self) -> None:
        """Nothing to flush: ciphertext goes to the sink as it is produced."""

    def close(self) -> None:
        if self.closed:
            return
        self._enc.finalize()  # GCM emits nothing here
        tag = self._enc.tag
        digest = self._digest.digest() if self._version >= 2 else None
        message = _signed_message(self._header, self._length, tag, digest)
        signature = self._signer.sign(message, _context(self._version))
        self._sink.write(tag)
        self._sink.write(signature)
        self.closed = True


def seal(
    plaintext: bytes,
    recipient: PublicKeys,
    signer: KeySet,
    *,
    label: str = "",
    kem: str = "hybrid",
    backend: Backend | None = None,
    version: int = VERSION,
) -> bytes:
    """One envelope holding ``plaintext``, encrypted to ``recipient`` and signed by ``signer``
    (``version`` 1 only to produce old-format test data)."""
    parts: list[bytes] = []

    class _Collect:
        def write(self, data: Any) -> int:
            parts.append(bytes(data))
            return len(parts[-1])

    writer = EnvelopeWriter(_Collect(), recipient, signer, label=label, kem=kem, backend=backend, version=version)
    writer.write(plaintext)
    writer.close()
    return b"".join(parts)


def verify_signature(blob: Any, keys: PublicKeySource, *, label: str | None = None) -> Header:
    """Check structure, label and signature (no private key needed).  For a v2 envelope that
    covers every byte (the signature includes a ciphertext digest); for v1 the ciphertext is
    bound only through the GCM tag, which needs the private key (``verify_envelope``)."""
    view = memoryview(blob).cast("B")
    header = parse_header(view)
    if label is not None and header.label != label:
        raise IntegrityError(f"envelope is labelled {header.label!r}, expected {label!r} (moved or swapped?)")
    total = len(view)
    ct_end = total - MLDSA65_SIGNATURE_BYTES - TAG_BYTES
    ct_len = ct_end - len(header.raw)
    tag = bytes(view[ct_end : total - MLDSA65_SIGNATURE_BYTES])
    signature = bytes(view[total - MLDSA65_SIGNATURE_BYTES :])
    try:
        signer = keys.public(header.signer)
    except KeyStoreError:
        try:
            keys.public(header.recipient)
        except KeyStoreError:
            raise KeyStoreError(
                f"envelope was made with key {header.recipient.hex()} (signed by "
                f"{header.signer.hex()}), which this keystore does not hold: wrong keystore, "
                "or a copy from before a rotation"
            ) from None
        raise IntegrityError(f"envelope signed by unknown key {header.signer.hex()} (tampered?)") from None
    digest = hashlib.sha256(view[len(header.raw) : ct_end]).digest() if header.version >= 2 else None
    message = _signed_message(header.raw, ct_len, tag, digest)
    if not get_backend().mldsa65_verify(signer.mldsa65, signature, message, _context(header.version)):
        what = "signature does not verify" if digest is None else "signature or ciphertext digest does not verify"
        raise IntegrityError(f"envelope {what}")
    return header


def verify_envelope(blob: Any, keys: PublicKeySource, *, label: str | None = None) -> Header:
    """Check every byte: v2 with public keys alone; v1 by decrypting, so ``keys`` must then
    hold the private keys (a ``KeyStore``), else ``IntegrityError`` says the check is incomplete."""
    header = verify_signature(blob, keys, label=label)
    if header.version >= 2:
        return header
    if not hasattr(keys, "private"):
        raise IntegrityError(
            "format-1 envelope: its ciphertext is not covered by the signature and can only be "
            "checked by decrypting; verify with the keystore passphrase set, or rewrite it"
        )
    open_envelope(blob, cast(PrivateKeySource, keys), label=label)
    return header


def open_envelope(blob: Any, keys: PrivateKeySource, *, label: str | None = None) -> pa.Buffer:
    """Verify, then decrypt: the plaintext as an Arrow buffer (zero-copy for ``pa.ipc``)."""
    view = memoryview(blob).cast("B")
    header = verify_signature(view, keys, label=label)
    try:
        keyset = keys.private(header.recipient)
    except KeyStoreError:
        raise KeyStoreError(
            f"envelope is encrypted to key {header.recipient.hex()}, which this keystore cannot unlock"
        ) from None
    secrets = _decapsulate(header, keyset)
    dek = _dek(header.kem_id, header.raw, header.recipient, header.kem_block, secrets)
    body = view[len(header.raw) : len(view) - MLDSA65_SIGNATURE_BYTES]
    out = pa.allocate_buffer(len(body) - TAG_BYTES)
    try:
        AESGCM(dek).decrypt_into(header.nonce, body, header.raw, memoryview(out).cast("B"))
    except InvalidTag:
        raise IntegrityError("envelope ciphertext fails authentication (GCM tag)") from None
    return out
