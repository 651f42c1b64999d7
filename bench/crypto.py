"""Crypto benchmark: encrypted vs plain Arrow IPC, ML-KEM-768 and ML-DSA-65 rates.

    .venv/bin/python bench/crypto.py [--mb 256] [--repeat 3] [--dir /tmp]

Write paths compared at equal durability: plain = Arrow IPC stream through the same atomic
writer (temp file, fsync, rename) as ``EncryptedStore.write``; "plain, no fsync" is shown too.
Read paths: one read of the file into memory, then a zero-copy Arrow IPC read (plain) or
verify + decrypt + zero-copy read (encrypted).  Best of ``--repeat`` runs.  Ends with one
line of JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.ipc as ipc

from tinywindow.crypto.backends import get_backend
from tinywindow.crypto.fsutil import AtomicOutput
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.store import EncryptedStore


def make_table(megabytes: int) -> pa.Table:
    rows = megabytes * 1024 * 1024 // 48
    rng = np.random.default_rng(0)
    ts = pa.array(np.arange(rows, dtype="int64") * 60_000_000_000, pa.timestamp("ns", tz="UTC"))
    cols = {c: rng.standard_normal(rows) for c in ("open", "high", "low", "close", "volume")}
    return pa.table({"ts": ts, **cols})


def best(fn: Callable[[int], object], repeat: int) -> float:
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return min(times)


def rate(fn: Callable[[], object], seconds: float = 1.0) -> float:
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        fn()
        n += 1
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tw-bench-crypto-", dir=args.dir))
    try:
        keystore = KeyStore.init(work / "keys", "bench-passphrase", scrypt_log2_n=14)
        store = EncryptedStore(str(work / "enc"), keystore)
        fs, plain_root = pafs.LocalFileSystem(), str(work / "plain")
        table = make_table(args.mb)
        nbytes = table.nbytes

        def plain_write(i: int) -> None:
            with AtomicOutput(fs, f"{plain_root}/seg{i}.arrow") as out, ipc.new_stream(out, table.schema) as w:
                w.write_table(table)

        def plain_write_nofsync(i: int) -> None:
            with fs.open_output_stream(f"{plain_root}/raw{i}.arrow") as out, ipc.new_stream(out, table.schema) as w:
                w.write_table(table)

        def plain_read(i: int) -> pa.Table:
            with fs.open_input_file(f"{plain_root}/seg{i}.arrow") as fh:
                return ipc.open_stream(fh.read_buffer()).read_all()

        t = {
            "plain write (atomic, fsync)": best(plain_write, args.repeat),
            "plain write (no fsync)": best(plain_write_nofsync, args.repeat),
            "encrypted write (atomic, fsync)": best(lambda i: store.write(f"seg{i}", table), args.repeat),
            "plain read": best(plain_read, args.repeat),
            "encrypted read (verify + decrypt)": best(lambda i: store.read(f"seg{i}"), args.repeat),
        }
        assert store.read("seg0").equals(table) and plain_read(0).equals(table)

        backend = get_backend()
        kem = backend.mlkem768_from_seed(bytes(range(64)))
        pk = kem.public_bytes()
        mlkem_s = rate(lambda: kem.decapsulate(backend.mlkem768_encapsulate(pk)[1]))
        sig = backend.mldsa65_from_seed(bytes(32))
        msg, ctx = b"\x01" * 32, b"tinywindow/bench"
        sign_s = rate(lambda: sig.sign(msg, ctx))
        signature = sig.sign(msg, ctx)
        verify_s = rate(lambda: backend.mldsa65_verify(sig.public_bytes(), signature, msg, ctx))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"table: {nbytes / 1e6:.0f} MB, {table.num_rows:,} rows; best of {args.repeat}")
    print("| operation | seconds | GB/s |")
    print("|---|---|---|")
    for name, seconds in t.items():
        print(f"| {name} | {seconds:.3f} | {nbytes / seconds / 1e9:.2f} |")
    write_ratio = t["plain write (atomic, fsync)"] / t["encrypted write (atomic, fsync)"]
    read_ratio = t["plain read"] / t["encrypted read (verify + decrypt)"]
    nofsync_ratio = t["plain write (no fsync)"] / t["encrypted write (atomic, fsync)"]
    print(f"| encrypted/plain write ratio (equal durability) | | {write_ratio:.2f} |")
    print(f"| encrypted (fsync) / plain (no fsync) write ratio | | {nofsync_ratio:.2f} |")
    print(f"| encrypted/plain read ratio | | {read_ratio:.2f} |")
    print(f"| ML-KEM-768 encaps+decaps per s | | {mlkem_s:,.0f} |")
    print(f"| ML-DSA-65 sign per s / verify per s | | {sign_s:,.0f} / {verify_s:,.0f} |")
    print(json.dumps({
        "encrypted_write_ratio": round(write_ratio, 3),
        "encrypted_read_ratio": round(read_ratio, 3),
        "mlkem768_ops_s": round(mlkem_s, 1),
        "mldsa65_sign_s": round(sign_s, 1),
    }))


if __name__ == "__main__":
    main()
