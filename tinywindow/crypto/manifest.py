"""Signed manifests for folders of artefacts (model checkpoints, reports).

``sign_dir`` writes ``MANIFEST.tw.json`` into the folder::

    {"format": "tinywindow-manifest/1",
     "body": "<canonical JSON text>",         # exactly the bytes that are signed
     "key_id": "<hex>", "signature": "<base64 ML-DSA-65, context tinywindow/manifest/v1>"}

where the body holds ``{"format", "key_id", "metadata", "files": {relative/posix/path:
{"size": n, "sha256": hex}}}``.  ``verify_dir`` recomputes every file's size and SHA-256 and
raises ``IntegrityError`` on any changed, added or removed file, a symlink or other special
file, a bad signature, or a folder without a manifest; it returns the signed metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from tinywindow.crypto.backends import get_backend
from tinywindow.crypto.fsutil import atomic_write_local, read_regular
from tinywindow.crypto.keys import PublicKeySource, b64, unb64
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import IntegrityError, KeyStoreError

MANIFEST = "MANIFEST.tw.json"
FORMAT = "tinywindow-manifest/1"
SIG_CONTEXT = b"tinywindow/manifest/v1"
_BLOCK = 1 << 20
MAX_MANIFEST_BYTES = 64 << 20


def _hash_file(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def _inventory(root: Path) -> dict[str, dict[str, Any]]:
    """Every regular file under ``root`` (except the manifest) with size and SHA-256."""
    files: dict[str, dict[str, Any]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for d in dirnames:
            if (here / d).is_symlink():
                raise IntegrityError(f"{here / d} is a symlink; manifests cover regular files only")
        for name in filenames:
            path = here / name
            rel = path.relative_to(root).as_posix()
            if rel == MANIFEST:
                continue
            if not stat.S_ISREG(path.lstat().st_mode):
                raise IntegrityError(f"{path} is not a regular file (symlink or special file)")
            size, digest = _hash_file(path)
            files[rel] = {"size": size, "sha256": digest}
    return dict(sorted(files.items()))


def sign_dir(directory: str | Path, keystore: KeyStore, metadata: dict[str, Any]) -> Path:
    """Sign every file in ``directory`` with the active key; the manifest's path."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"not a directory: {root}")
    keys = keystore.active()
    body = {
        "format": FORMAT,
        "key_id": keys.public.key_id_hex,
        "metadata": metadata,
        "files": _inventory(root),
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    signature = keys.sign(text.encode("utf-8"), SIG_CONTEXT)
    doc = {"format": FORMAT, "body": text, "key_id": keys.public.key_id_hex, "signature": b64(signature)}
    path = root / MANIFEST
    atomic_write_local(path, json.dumps(doc, indent=1).encode("utf-8"), mode=0o644)
    return path


def verify_dir(directory: str | Path, keys: PublicKeySource) -> dict[str, Any]:
    """The signed metadata of ``directory`` after checking signature and every file.
    Every failure, including an unreadable or non-UTF-8 manifest, is ``IntegrityError``
    naming the path."""
    root = Path(directory)
    path = root / MANIFEST
    try:
        raw = read_regular(path, limit=MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise IntegrityError(f"{path} is corrupt (over {MAX_MANIFEST_BYTES} bytes)")
        doc = json.loads(raw)
    except (FileNotFoundError, NotADirectoryError):
        raise IntegrityError(f"{root} is not signed (no {MANIFEST})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise IntegrityError(f"{path} is corrupt (not UTF-8 JSON)") from None
    except OSError as exc:
        raise IntegrityError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("body"), str):
        raise IntegrityError(f"{path} is not a TinyWindow manifest")
    text: str = doc["body"]
    try:
        key_id = bytes.fromhex(str(doc.get("key_id")))
        signature = unb64(doc.get("signature"), "manifest signature")
        public = keys.public(key_id)
    except (ValueError, KeyStoreError) as exc:
        raise IntegrityError(f"{path}: cannot check the signature ({exc})") from None
    try:
        message = text.encode("utf-8")
    except UnicodeEncodeError:
        raise IntegrityError(f"{path}: manifest body is not UTF-8") from None
    if not get_backend().mldsa65_verify(public.mldsa65, signature, message, SIG_CONTEXT):
        raise IntegrityError(f"{path}: signature does not verify")
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise IntegrityError(f"{path}: signed body is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("files", {}), dict) \
            or not isinstance(body.get("metadata", {}), dict):
        raise IntegrityError(f"{path}: signed body has the wrong shape")
    if body.get("key_id") != key_id.hex():
        raise IntegrityError(f"{path}: signed key id does not match")
    expected: dict[str, Any] = body.get("files", {})
    try:
        actual = _inventory(root)
    except OSError as exc:
        raise IntegrityError(f"{root}: a file cannot be read ({exc})") from None
    for rel in sorted(set(expected) | set(actual)):
        if rel not in actual:
            raise IntegrityError(f"{root}: signed file {rel!r} is missing")
        if rel not in expected:
            raise IntegrityError(f"{root}: file {rel!r} was added after signing")
        if actual[rel] != expected[rel]:
            raise IntegrityError(f"{root}: file {rel!r} was changed after signing")
    metadata: dict[str, Any] = body.get("metadata", {})
    return metadata
