"""Atomic, durable file writes: temp file, fsync, rename, fsync of the folder.

``read_regular`` reads a local file only if it is a regular one (never blocks on a FIFO or
reads a device forever).  ``atomic_write_local`` is for the keystore and the journal head (local POSIX paths, mode 0600).
``AtomicOutput`` does the same through ``pyarrow.fs``: on a local filesystem with a real fsync;
elsewhere (S3, GCS, HDFS...) temp + ``FileSystem.move``, so a failed write never leaves a
partial object under the final name (on object stores a move is a copy + delete: it costs a
second transfer, and buys that guarantee).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow.fs as pafs

from tinywindow.errors import IntegrityError


def read_regular(path: str | Path, *, limit: int | None = None) -> bytes:
    """The bytes of ``path`` (at most ``limit``), refusing anything but a regular file (a FIFO,
    a device such as /dev/zero, a folder) without blocking on it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        raise
    except OSError as exc:
        raise IntegrityError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IntegrityError(f"{path}: not a regular file")
        size = info.st_size if limit is None else min(info.st_size, limit)
        chunks, got = [], 0
        while got < size:
            chunk = os.read(fd, min(size - got, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_local(path: str | Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so a crash leaves either the old or the new file."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def local_path(fs: pafs.FileSystem, path: str) -> str | None:
    """The OS path behind ``path`` when ``fs`` is a local filesystem (maybe under a SubTree)."""
    while isinstance(fs, pafs.SubTreeFileSystem):
        path = f"{fs.base_path.rstrip('/')}/{path.lstrip('/')}"
        fs = fs.base_fs
    return path if isinstance(fs, pafs.LocalFileSystem) else None


class AtomicOutput:
    """``with AtomicOutput(fs, path) as out: out.write(...)``: the file appears at ``path``
    complete and durable, or not at all."""

    def __init__(self, fs: pafs.FileSystem, path: str) -> None:
        self.fs, self.path = fs, path
        self._local = local_path(fs, path)
        parent, _, name = path.rpartition("/")
        self._tmp = f"{parent}/.{name}.{secrets.token_hex(6)}.tmp"
        self._stream: Any = None

    def __enter__(self) -> Any:
        parent = self.path.rpartition("/")[0]
        if parent:
            self.fs.create_dir(parent, recursive=True)
        self._stream = self.fs.open_output_stream(self._tmp, compression=None)
        return self._stream

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stream.close()
        if exc_type is not None:
            with contextlib.suppress(OSError):
                self.fs.delete_file(self._tmp)
            return
        if self._local is not None:
            tmp_local = local_path(self.fs, self._tmp)
            assert tmp_local is not None
            fd = os.open(tmp_local, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp_local, self._local)
            fsync_dir(os.path.dirname(self._local) or ".")
        else:
            self.fs.move(self._tmp, self.path)
