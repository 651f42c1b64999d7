"""Hostile storage inputs: journals, segments and the verify CLI (keystores and the model
registry: test_storage_keys_models.py).

Every case asserts the typed error (or the correct repair), that the error names the record,
field or path, and that the stored bytes are unchanged ("nothing lost").  No Ray.  The table
of cases is docs/reliability/storage.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from tests.hostile.storage_kit import Clock, digest_tree, flip, new_keystore
from tinywindow.cli import main
from tinywindow.cli.verify import check_path
from tinywindow.crypto import envelope as ev
from tinywindow.crypto import journal as journal_mod
from tinywindow.crypto import journal_format as jf
from tinywindow.crypto.journal import Journal
from tinywindow.crypto.keystore import KeyStore
from tinywindow.crypto.store import EncryptedStore
from tinywindow.data.persist import read_segment, segment_name
from tinywindow.errors import IntegrityError

N_APPENDS = 6  # seq 0 is the key record, 1..6 data records, every record signed


# ---------------------------------------------------------------------------- helpers
def head_of(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def spans(path: Path) -> list[jf.RawRecord]:
    records, brk = jf.scan(path.read_bytes())
    assert brk is None
    return records


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return new_keystore(tmp_path_factory)


@pytest.fixture(scope="module")
def ring(keystore: KeyStore) -> object:
    return KeyStore.public_ring(keystore.directory)


@pytest.fixture(scope="module")
def golden_journal(keystore: KeyStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("golden") / "orders.twj"
    with Journal(path, keystore, clock=Clock(), fsync=False) as j:
        for i in range(N_APPENDS):
            j.append("order", {"order_id": f"o{i}", "qty": i})
    return path


@pytest.fixture
def jpath(golden_journal: Path, tmp_path: Path) -> Path:
    path = tmp_path / "j" / "orders.twj"
    path.parent.mkdir()
    shutil.copy(golden_journal, path)
    shutil.copy(head_of(golden_journal), head_of(path))
    return path


# ---------------------------------------------------------------------------- journal damage
def _flip_in(seq: int, where: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        rec = spans(path)[seq]
        pos = {
            "content": rec.offset + 4 + jf.FIXED.size + 20,
            "seqfield": rec.offset + 4 + 8,
            "length": rec.offset + 1,
            "signature": rec.end - 5,
        }[where]
        flip(path, pos)

    return edit


def _no_head(edit: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def run(path: Path) -> None:
        if edit is not None:
            edit(path)
        head_of(path).unlink()

    return run


def _reorder(path: Path) -> None:
    r = spans(path)
    data = path.read_bytes()
    a, b = data[r[3].offset : r[3].end], data[r[4].offset : r[4].end]
    path.write_bytes(data[: r[3].offset] + b + a + data[r[4].end :])


def _duplicate(path: Path) -> None:
    r = spans(path)
    data = path.read_bytes()
    path.write_bytes(data[: r[3].end] + data[r[3].offset : r[3].end] + data[r[3].end :])


def _remove(path: Path) -> None:
    r = spans(path)
    data = path.read_bytes()
    path.write_bytes(data[: r[3].offset] + data[r[3].end :])


def _truncate_boundary(path: Path) -> None:
    r = spans(path)
    path.write_bytes(path.read_bytes()[: r[5].offset])  # head still names seq 6


def _truncate_committed(path: Path) -> None:
    r = spans(path)
    path.write_bytes(path.read_bytes()[: r[6].offset + 200])  # the head names seq 6


def _garbage(path: Path) -> None:
    junk = bytes((i * 37 + 11) % 256 for i in range(600))
    path.write_bytes(path.read_bytes() + (200).to_bytes(4, "big") + junk)


def _garbage_huge_length(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\xff\xff\xff\xf0" + b"TWJR\x01\x02" + bytes(100))


def _head_text(text: bytes) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        head_of(path).write_bytes(text)

    return edit


def _head_dir(path: Path) -> None:
    head_of(path).unlink()
    head_of(path).mkdir()


def _zero_length(path: Path) -> None:
    path.write_bytes(b"")


def _head_from_other(keystore: KeyStore) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        other = path.with_name("other.twj")
        with Journal(other, keystore, clock=Clock(), fsync=False) as j:
            for i in range(N_APPENDS):
                j.append("order", {"other": i})
        shutil.copy(head_of(other), head_of(path))
        other.unlink()
        head_of(other).unlink()

    return edit


# (id, edit, first bad seq or None, words the error must contain)
JOURNAL_DAMAGE = [
    ("missing-head+flip-record-0", _no_head(_flip_in(0, "content")), 0, "seq 0"),
    ("missing-head+flip-middle", _no_head(_flip_in(3, "content")), 3, "seq 3"),
    ("missing-head+flip-last", _no_head(_flip_in(6, "content")), 6, "seq 6"),
    ("missing-head", _no_head(), None, "head file missing"),
    ("flip-content-record-0", _flip_in(0, "content"), 0, "seq 0"),
    ("flip-content-middle", _flip_in(3, "content"), 3, "seq 3"),
    ("flip-content-last", _flip_in(6, "content"), 6, "seq 6"),
    ("flip-seq-field-middle", _flip_in(3, "seqfield"), 3, "seq 3"),
    ("flip-length-prefix-middle", _flip_in(3, "length"), 3, "seq 3"),
    ("bad-signature-record-0", _flip_in(0, "signature"), 0, "signature"),
    ("bad-signature-middle", _flip_in(3, "signature"), 3, "signature"),
    ("bad-signature-last", _flip_in(6, "signature"), 6, "signature"),
    ("records-reordered", _reorder, 3, "reordered"),
    ("record-duplicated", _duplicate, 4, "duplicated"),
    ("record-removed", _remove, 3, "removed"),
    ("truncated-at-boundary-head-ahead", _truncate_boundary, 5, "truncated or rolled back"),
    ("truncated-inside-committed-record", _truncate_committed, 6, "cut short"),
    ("garbage-appended", _garbage, 7, "seq 7"),
    ("garbage-appended-huge-length", _garbage_huge_length, 7, "out of range"),
    ("head-corrupt-text", _head_text(b"garbage"), None, "head file is corrupt"),
    ("head-not-utf8", _head_text(b"\xff\xfe{\x00"), None, "head file is corrupt"),
    ("head-wrong-shape", _head_text(b'{"format": "tinywindow-journal-head/1", "seq": "6"}'), None, "corrupt"),
    ("head-is-a-folder", _head_dir, None, "head file is corrupt"),
    ("zero-length-journal-with-head", _zero_length, 0, "truncated or rolled back"),
]


@pytest.mark.parametrize(
    ("edit", "seq", "words"), [pytest.param(e, s, w, id=i) for i, e, s, w in JOURNAL_DAMAGE]
)
def test_damaged_journal_is_refused_untouched(
    jpath: Path, keystore: KeyStore, ring: object, edit: Callable[[Path], None], seq: int | None, words: str
) -> None:
    edit(jpath)
    before = digest_tree(jpath.parent)
    report = Journal.verify_file(jpath, ring)
    assert not report.ok and report.first_bad == seq, report.describe()
    assert words in report.describe()
    if seq is not None:
        assert f"seq {seq}" in report.describe() and "offset" in report.describe()
    with pytest.raises(IntegrityError) as info:  # open gives the same verdict
        Journal(jpath, keystore, fsync=False)
    assert str(info.value).endswith(report.describe().split(": ", 1)[1])
    assert digest_tree(jpath.parent) == before  # nothing cut, nothing rewritten
    ok, line = check_path(jpath, ring)
    assert not ok and words in line


def test_head_from_another_journal_is_refused(jpath: Path, keystore: KeyStore, ring: object) -> None:
    _head_from_other(keystore)(jpath)
    before = digest_tree(jpath.parent)
    report = Journal.verify_file(jpath, ring)
    assert not report.ok and report.first_bad == N_APPENDS and "does not match the journal head" in report.reason
    with pytest.raises(IntegrityError, match=f"seq {N_APPENDS}"):
        Journal(jpath, keystore, fsync=False)
    assert digest_tree(jpath.parent) == before


def test_journal_that_is_a_fifo_is_refused(tmp_path: Path, keystore: KeyStore, ring: object) -> None:
    fifo = tmp_path / "fifo.twj"
    os.mkfifo(fifo)
    with pytest.raises(IntegrityError, match="not a regular file"):
        Journal(fifo, keystore, fsync=False)
    with pytest.raises(IntegrityError, match="not a regular file"):
        Journal.verify_file(fifo, ring)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and not head_of(fifo).exists()


# ---------------------------------------------------------------------------- journal repair
def _crash_mid_append(path: Path, keystore: KeyStore, keep: Callable[[int], int], batch: int = 1) -> int:
    """Append, then cut the file to ``keep(bytes written)`` bytes of that write and restore
    the old head: a crash inside the write.  Returns the size before the write."""
    saved_head = head_of(path).read_bytes()
    size = path.stat().st_size
    with Journal(path, keystore, clock=Clock(), fsync=False) as j:
        j.append_many([("order", {"i": i}) for i in range(batch)])
    data = path.read_bytes()
    path.write_bytes(data[: size + keep(len(data) - size)])
    head_of(path).write_bytes(saved_head)
    return size


TORN = [
    ("torn-mid-record", lambda n: n // 2, 1),
    ("torn-last-byte-missing", lambda n: n - 1, 1),
    ("torn-inside-length-prefix", lambda n: 2, 1),
    ("torn-unsigned-batch", lambda n: n - 4000, 40),
    ("torn-batch-ends-on-record-boundary", None, 40),
]


@pytest.mark.parametrize(("keep", "batch"), [pytest.param(k, b, id=i) for i, k, b in TORN])
def test_torn_tail_is_cut_after_the_last_signed_record_and_recorded(
    jpath: Path, keystore: KeyStore, ring: object, keep: Callable[[int], int] | None, batch: int
) -> None:
    original = jpath.read_bytes()
    with Journal(jpath, keystore, fsync=False) as j:
        good = j.records()
    if keep is None:  # the write stopped exactly after a complete, unsigned record of the batch
        def boundary(n: int) -> int:
            records, _ = jf.scan(jpath.read_bytes())
            return records[N_APPENDS + 5].end - len(original)

        keep = boundary
    size = _crash_mid_append(jpath, keystore, keep, batch)
    assert size == len(original)
    torn = jpath.read_bytes()[size:]
    report = Journal.verify_file(jpath, ring)
    assert report.ok and report.torn_bytes == len(torn) and report.torn_offset == size, report.describe()
    with Journal(jpath, keystore, fsync=False) as j:
        assert jpath.read_bytes()[:size] == original  # every signed record kept, byte for byte
        assert j.records() == good
        assert j.head()[0] == N_APPENDS + 1  # the signed repair record
    assert jpath.with_name(f"{jpath.name}.torn-{size}").read_bytes() == torn  # the cut bytes kept
    after = Journal.verify_file(jpath, ring)
    assert after.ok and after.torn_bytes == 0
    assert [(r.cut_offset, r.cut_bytes) for r in after.repairs] == [(size, len(torn))]
    assert "repair" in after.describe() and str(size) in after.describe()


def test_signed_record_after_a_stale_head_is_kept(jpath: Path, keystore: KeyStore, ring: object) -> None:
    saved = head_of(jpath).read_bytes()
    with Journal(jpath, keystore, fsync=False) as j:
        j.append("fill", {"x": 1})
    head_of(jpath).write_bytes(saved)  # crash between the record's fsync and the head's
    data = jpath.read_bytes()
    assert Journal.verify_file(jpath, ring).ok
    with Journal(jpath, keystore, fsync=False) as j:
        assert j.records()[-1].payload == {"x": 1} and j.head()[0] == N_APPENDS + 1
    assert jpath.read_bytes() == data  # nothing cut


def test_journal_written_with_format_1_envelopes_still_opens(
    tmp_path: Path, keystore: KeyStore, ring: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Journals written before envelope v2 (their key records hold v1 envelopes) open and verify."""
    path = tmp_path / "old.twj"
    with monkeypatch.context() as m:
        m.setattr(journal_mod, "seal", functools.partial(ev.seal, version=1))
        with Journal(path, keystore, clock=Clock(), fsync=False) as j:
            j.append("order", {"i": 1})
    assert ev.parse_header(spans(path)[0].content).version == 1
    data = path.read_bytes()
    assert Journal.verify_file(path, ring).ok
    with Journal(path, keystore, fsync=False) as j:
        assert [r.payload for r in j.records()] == [{"i": 1}]
    assert path.read_bytes() == data


# ---------------------------------------------------------------------------- verify: foreign inputs
def _text(tmp: Path) -> Path:
    p = tmp / "hostname"
    p.write_text("tinywindow-node-1\n")
    return p


def _dev_zero(tmp: Path) -> Path:
    return Path("/dev/zero")


def _fifo(tmp: Path) -> Path:
    p = tmp / "pipe.twj"
    os.mkfifo(p)
    return p


def _folder(tmp: Path) -> Path:
    p = tmp / "folder"
    p.mkdir()
    (p / "a.txt").write_text("a")
    return p


def _empty(tmp: Path) -> Path:
    p = tmp / "empty.dat"
    p.write_bytes(b"")
    return p


def _random(tmp: Path) -> Path:
    p = tmp / "random.bin"
    p.write_bytes(hashlib.sha256(b"seed").digest() * 256)
    return p


def _huge_sparse(tmp: Path) -> Path:
    p = tmp / "huge.bin"
    with open(p, "wb") as fh:
        fh.write(b"\x00\x00\x10\x00NOPE")
        fh.truncate(8 << 30)  # 8 GiB, sparse: must be refused without reading it
    return p


def _missing(tmp: Path) -> Path:
    return tmp / "no-such-file.twj"


FOREIGN = [
    ("verify-text-file", _text, "not a TinyWindow journal/segment/manifest"),
    ("verify-dev-zero", _dev_zero, "not a regular file"),
    ("verify-fifo", _fifo, "not a regular file"),
    ("verify-folder-without-manifest", _folder, "not a TinyWindow journal/segment/manifest"),
    ("verify-empty-file", _empty, "empty file"),
    ("verify-random-file", _random, "not a TinyWindow journal/segment/manifest"),
    ("verify-huge-sparse-file", _huge_sparse, "not a TinyWindow journal/segment/manifest"),
    ("verify-missing-path", _missing, "no such file"),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("make", "words"), [pytest.param(m, w, id=i) for i, m, w in FOREIGN])
def test_verify_refuses_what_is_not_ours(
    tmp_path: Path, ring: object, make: Callable[[Path], Path], words: str
) -> None:
    path = make(tmp_path)
    before = digest_tree(tmp_path)
    ok, line = check_path(path, ring)
    assert not ok and line.startswith(f"{path}: BAD") and words in line and "\n" not in line
    assert digest_tree(tmp_path) == before


@pytest.mark.timeout(10)
def test_verify_cli_exits_non_zero_one_line_each(
    tmp_path: Path, keystore: KeyStore, golden_journal: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TW_PASSPHRASE", raising=False)
    pub = tmp_path / "pub.json"
    pub.write_text(json.dumps(keystore.export_public()))
    paths = [str(_text(tmp_path)), "/dev/zero", str(_fifo(tmp_path)), str(golden_journal)]
    rc = main(["verify", *paths, "--public-keys", str(pub)])
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert rc == 1 and len(lines) == 4 and "Traceback" not in out.out + out.err
    assert [("BAD" in line) for line in lines] == [True, True, True, False]


# ---------------------------------------------------------------------------- segments
def _bars(n: int = 40) -> pa.Table:
    return pa.table({
        "ts": pa.array(range(1_000, 1_000 + n), pa.timestamp("ns", tz="UTC")),
        "symbol": ["BTC"] * n,
        "close": [float(i) for i in range(n)],
    })


@pytest.fixture
def store(tmp_path: Path, keystore: KeyStore) -> EncryptedStore:
    return EncryptedStore(str(tmp_path / "store"), keystore)


def _segment(store: EncryptedStore) -> tuple[str, Path]:
    table = _bars()
    name = segment_name("feed", "bars", table)
    return name, Path(store.write(name, table))


SEGMENT_FLIPS = [
    ("segment-flip-version-byte", lambda h, n: 4),
    ("segment-flip-label", lambda h, n: 44),
    ("segment-flip-kem-block", lambda h, n: h - 500),
    ("segment-flip-nonce", lambda h, n: h - 3),
    ("segment-flip-ciphertext-first", lambda h, n: h),
    ("segment-flip-ciphertext-middle", lambda h, n: (h + n - 3325) // 2),
    ("segment-flip-ciphertext-last", lambda h, n: n - 3309 - 17),
    ("segment-flip-tag", lambda h, n: n - 3309 - 5),
    ("segment-flip-signature", lambda h, n: n - 100),
]


@pytest.mark.parametrize("offset", [pytest.param(f, id=i) for i, f in SEGMENT_FLIPS])
def test_segment_bit_flips_are_refused(
    store: EncryptedStore, ring: object, keystore: KeyStore, offset: Callable[[int, int], int]
) -> None:
    name, path = _segment(store)
    header_len = len(ev.parse_header(path.read_bytes()).raw)
    flip(path, offset(header_len, path.stat().st_size))
    before = digest_tree(path.parent)
    with pytest.raises(IntegrityError):
        store.read(name)
    with pytest.raises(IntegrityError):
        store.verify(name)
    ok, line = check_path(path, ring)  # public keys only: the v2 signature covers every byte
    assert not ok and "BAD" in line
    ok, _ = check_path(path, ring, lambda: keystore)
    assert not ok
    assert digest_tree(path.parent) == before


@pytest.mark.parametrize("how", ["renamed", "copied"])
def test_segment_under_another_digest_name_is_refused(
    store: EncryptedStore, ring: object, keystore: KeyStore, how: str
) -> None:
    name, path = _segment(store)
    other = segment_name("feed", "bars", _bars(41))
    target = Path(store.path_of(other))
    (shutil.move if how == "renamed" else shutil.copy)(path, target)
    before = digest_tree(target.parent)
    with pytest.raises(IntegrityError, match=f"labelled '{name}'"):
        store.read(other)
    ok, line = check_path(target, ring)
    assert not ok and f"labelled '{name}'" in line and target.name in line
    assert digest_tree(target.parent) == before


def test_segment_whose_bars_do_not_hash_to_its_name_is_refused(
    store: EncryptedStore, ring: object, keystore: KeyStore
) -> None:
    wrong = segment_name("feed", "bars", _bars(41))
    path = Path(store.write(wrong, _bars(40)))  # signed, but its content is another segment's
    with pytest.raises(IntegrityError, match="hash to"):
        read_segment(store, wrong)
    ok, line = check_path(path, ring, lambda: keystore)
    assert not ok and "hash to" in line


def test_format_1_segment_needs_the_private_key_to_be_verified(
    store: EncryptedStore, ring: object, keystore: KeyStore
) -> None:
    keys = keystore.active()
    name = "feed/legacy"
    path = Path(store.path_of(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.ipc as ipc

    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, _bars().schema) as w:
        w.write_table(_bars())
    path.write_bytes(ev.seal(sink.getvalue().to_pybytes(), keys.public, keys, label=name, version=1))
    assert store.read(name).num_rows == 40  # still readable
    ok, line = check_path(path, ring)
    assert not ok and "format-1" in line  # a public-key check cannot vouch for its ciphertext
    ok, line = check_path(path, ring, lambda: keystore)
    assert ok and "format 1" in line
    flip(path, len(ev.parse_header(path.read_bytes()).raw) + 10)
    ok, line = check_path(path, ring, lambda: keystore)
    assert not ok and "GCM" in line


def test_truncated_segment_is_refused(store: EncryptedStore, ring: object) -> None:
    name, path = _segment(store)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(IntegrityError):
        store.read(name)
    ok, _ = check_path(path, ring)
    assert not ok


@pytest.mark.timeout(10)
def test_segment_that_is_a_fifo_is_refused(store: EncryptedStore, ring: object) -> None:
    path = Path(store.path_of("feed/pipe"))
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    with pytest.raises(IntegrityError, match="not a regular file"):
        store.read("feed/pipe")
    ok, line = check_path(path, ring)
    assert not ok and "not a regular file" in line
