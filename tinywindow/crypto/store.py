"""``EncryptedStore``: Arrow IPC segments, encrypted and signed, on any ``pyarrow.fs``.

Each segment is one envelope (``tinywindow.crypto.envelope``) holding an Arrow IPC *stream*,
encrypted to the keystore's active key set and signed by it, labelled with the segment name
(so a segment copied or renamed to another name is refused).  Writes stream the table through
the encryptor into a temp file that is fsynced and renamed (``fsutil.AtomicOutput``): a reader
sees the old segment, the new one, or none, never half of one.  Reads verify the signature
(which covers a digest of the ciphertext, envelope v2) before decapsulating or decrypting
anything, and hand back a zero-copy table over the decrypted buffer.

``root`` is a local path or a URI (``s3://bucket/prefix``, ``gs://...``) that
``pyarrow.fs.FileSystem.from_uri`` understands, or a path inside ``filesystem`` when given.
Satisfies the data layer's ``SegmentSink`` protocol (``write(name, table) -> str``).
"""

from __future__ import annotations

import builtins
import os
import re
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.ipc as ipc

from tinywindow.crypto.config import CryptoConfig
from tinywindow.crypto.envelope import EnvelopeWriter, open_envelope, verify_envelope
from tinywindow.crypto.fsutil import AtomicOutput
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import IntegrityError

SUFFIX = ".twseg"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*(/[A-Za-z0-9][A-Za-z0-9._=-]*)*$")
_MAX_NAME = 512


def check_name(name: str) -> str:
    """Segment names: slash-separated parts of ``[A-Za-z0-9._=-]`` (no ``..``, no leading dot)."""
    if len(name) > _MAX_NAME or not _NAME.match(name) or ".." in name.split("/"):
        raise ValueError(
            f"bad segment name {name!r}: use parts of letters, digits, '.', '_', '=', '-' "
            "joined by '/', not starting with '.'"
        )
    return name


class _Unclosable:
    """What ``pa.PythonFile`` wraps: forwards writes, never closes (we sign on our own close)."""

    closed = False

    def __init__(self, writer: EnvelopeWriter) -> None:
        self._writer = writer

    def write(self, data: Any) -> int:
        return self._writer.write(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class EncryptedStore:
    """Encrypted, signed Arrow segments under ``root`` (see the module docstring)."""

    def __init__(
        self,
        root: str,
        keystore: KeyStore,
        filesystem: pafs.FileSystem | None = None,
        *,
        kem: str = "hybrid",
    ) -> None:
        if filesystem is None:
            if "://" in root:
                filesystem, root = pafs.FileSystem.from_uri(root)
            else:
                filesystem, root = pafs.LocalFileSystem(), os.path.abspath(root)
        self.fs: pafs.FileSystem = filesystem
        self.root = root.rstrip("/") or "/"
        self.keystore = keystore
        self.kem = kem

    @classmethod
    def from_config(
        cls, crypto: CryptoConfig, data_dir: str | os.PathLike[str], keystore: KeyStore | None = None
    ) -> EncryptedStore:
        """The store at ``crypto.store_dir`` (a URI, an absolute path, or under ``data_dir``),
        with the keystore from ``open_keystore(crypto, data_dir)`` unless one is given."""
        from tinywindow.crypto import open_keystore

        root = crypto.store_dir
        if "://" not in root and not os.path.isabs(root):
            root = os.path.join(os.fspath(data_dir), root)
        return cls(root, keystore or open_keystore(crypto, os.fspath(data_dir)), kem=crypto.kem)

    def path_of(self, name: str) -> str:
        return f"{self.root}/{check_name(name)}{SUFFIX}"

    def write(self, name: str, table: pa.Table) -> str:
        """Encrypt, sign and atomically store ``table`` as segment ``name``; returns its path."""
        path = self.path_of(name)
        keys = self.keystore.active()
        with AtomicOutput(self.fs, path) as out:
            writer = EnvelopeWriter(
                out, keys.public, keys, label=name, kem=self.kem, backend=self.keystore.backend
            )
            sink = pa.PythonFile(_Unclosable(writer), mode="w")
            with ipc.new_stream(sink, table.schema) as stream:
                stream.write_table(table)
            writer.close()
        return path

    def read(self, name: str) -> pa.Table:
        """Verify then decrypt segment ``name``; ``IntegrityError`` if anything was changed."""
        plaintext = open_envelope(self._load(name), self.keystore, label=name)
        try:
            return ipc.open_stream(plaintext).read_all()
        except (pa.ArrowInvalid, pa.ArrowIOError) as exc:  # authentic but not Arrow: a writer bug
            raise IntegrityError(f"segment {name!r} decrypts to invalid Arrow IPC: {exc}") from None

    def verify(self, name: str) -> str:
        """Check every byte of segment ``name`` (label, signature, ciphertext digest; a format-1
        segment is decrypted to check its GCM tag); the signer id."""
        return verify_envelope(self._load(name), self.keystore, label=name).signer.hex()

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Segment names under ``prefix`` (a name prefix), sorted."""
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        names = []
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File or not info.path.endswith(SUFFIX):
                continue
            rel = info.path[len(self.root) :].lstrip("/")[: -len(SUFFIX)]
            if any(part.startswith(".") for part in rel.split("/")):
                continue  # temp files of writes in progress
            if rel.startswith(prefix):
                names.append(rel)
        return sorted(names)

    def delete(self, name: str) -> None:
        self.fs.delete_file(self.path_of(name))

    def _load(self, name: str) -> pa.Buffer:
        path = self.path_of(name)
        kind = self.fs.get_file_info(path).type
        if kind not in (pafs.FileType.File, pafs.FileType.NotFound):  # a FIFO would block the read
            raise IntegrityError(f"segment {name!r} at {path} is not a regular file")
        try:
            with self.fs.open_input_file(path) as fh:
                return fh.read_buffer()
        except FileNotFoundError:
            raise FileNotFoundError(f"no segment {name!r} in {self.root}") from None

    def __repr__(self) -> str:
        return f"EncryptedStore({self.root!r}, fs={self.fs.type_name}, kem={self.kem})"
