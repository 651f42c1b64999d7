"""Sealed files: one file, one envelope, labelled with the file's path under its root.

``<root>/<rel>.twenc`` holds one envelope (``envelope``, format 2) encrypted to the keystore's
active key set and signed by it, labelled ``<rel>``: a file moved, renamed or swapped for
another sealed file is refused by its label, as a segment is.  The model registry stores every
model file and the tuned parameters this way; ``tinywindow verify`` checks one with public keys
alone (the signature covers a digest of the ciphertext).  Every failure raises the envelope's
typed error (``IntegrityError``, or ``KeyStoreError`` for another keystore) naming the path.
"""

from __future__ import annotations

from pathlib import Path

from tinywindow.crypto.envelope import Header, seal, verify_envelope
from tinywindow.crypto.envelope import open_envelope as _open
from tinywindow.crypto.fsutil import atomic_write_local, read_regular
from tinywindow.crypto.keys import PrivateKeySource, PublicKeySource
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import IntegrityError, KeyStoreError

SUFFIX = ".twenc"


def seal_bytes(data: bytes, keystore: KeyStore, label: str, *, kem: str = "hybrid") -> bytes:
    """``data`` as one envelope to and from the keystore's active key set."""
    keys = keystore.active()
    return seal(data, keys.public, keys, label=label, kem=kem, backend=keystore.backend)


def write_sealed(path: Path, data: bytes, keystore: KeyStore, label: str, *, kem: str = "hybrid") -> Path:
    """Seal ``data`` into ``path`` atomically and durably (mode 0600)."""
    atomic_write_local(path, seal_bytes(data, keystore, label, kem=kem))
    return path


def _read(path: Path) -> bytes:
    try:
        return read_regular(path)
    except IntegrityError as exc:  # a FIFO, a device: already names the path
        raise IntegrityError(f"sealed file {exc}") from None


def open_sealed(path: Path, keys: PrivateKeySource, label: str) -> bytes:
    """The plaintext of ``path`` after checking label, signature and GCM tag."""
    blob = _read(path)
    try:
        return _open(blob, keys, label=label).to_pybytes()
    except (IntegrityError, KeyStoreError) as exc:
        raise type(exc)(f"sealed file {path}: {exc}") from None


def verify_sealed(path: Path, keys: PublicKeySource, label: str) -> Header:
    """Check every byte of ``path`` (label, signature, ciphertext digest) without decrypting."""
    blob = _read(path)
    try:
        return verify_envelope(blob, keys, label=label)
    except (IntegrityError, KeyStoreError) as exc:
        raise type(exc)(f"sealed file {path}: {exc}") from None
