"""Journal: append/replay, rotation, batches, torn writes, and every kind of tampering."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from tinywindow.crypto import journal_format as jf
from tinywindow.crypto.journal import Journal
from tinywindow.crypto.keystore import KeyStore
from tinywindow.errors import IntegrityError, TransientError

from .conftest import FakeClock


def fill(j: Journal, n: int, kind: str = "order") -> list[int]:
    return [j.append(kind, {"order_id": f"o{i}", "qty": i, "px": 100.5 + i}) for i in range(n)]


def spans(path: Path) -> list[tuple[int, int, int]]:
    records, brk = jf.scan(path.read_bytes())
    assert brk is None
    return [(r.seq, r.offset, r.end) for r in records]


@pytest.fixture
def jpath(tmp_path: Path) -> Path:
    return tmp_path / "journal" / "orders.twj"


def test_append_and_replay(keystore: KeyStore, jpath: Path) -> None:
    clock = FakeClock(start=1_000, step=10)
    with Journal(jpath, keystore, clock=clock, fsync=False) as j:
        seqs = fill(j, 5)
        assert seqs == [1, 2, 3, 4, 5]  # seq 0 is the journal's first key record
        records = j.records()
        assert [r.seq for r in records] == seqs
        assert records[2].payload == {"order_id": "o2", "qty": 2, "px": 102.5}
        assert records[0].kind == "order" and records[0].key_id == keystore.active_id
        assert [r.timestamp for r in records] == [1_020, 1_030, 1_040, 1_050, 1_060]
        assert j.records(after=3) == records[3:]
        assert list(j) == records
    with Journal(jpath, keystore, clock=clock, fsync=False) as j:  # restart: same records, in order
        assert j.records() == records
        assert j.append("fill", {"order_id": "o1"}) == 6
        assert j.verify().ok


def test_payload_must_be_json(keystore: KeyStore, jpath: Path) -> None:
    with Journal(jpath, keystore, fsync=False) as j:
        size = jpath.stat().st_size
        with pytest.raises(TypeError):
            j.append("order", {"when": object()})
        with pytest.raises(ValueError):
            j.append("order", {"px": math.nan})
        with pytest.raises(ValueError):
            j.append("", {})
        assert jpath.stat().st_size == size  # nothing half-written


def test_rotation_starts_a_new_epoch(keystore: KeyStore, jpath: Path) -> None:
    with Journal(jpath, keystore, fsync=False) as j:
        fill(j, 2)
        new_id = keystore.rotate()
        seq = j.append("risk", {"event": "halt"})
        assert seq == 4  # seq 3 is the new key record
        records = j.records()
        assert [r.key_id for r in records][-1] == new_id
        assert records[0].key_id != new_id
    with Journal(jpath, keystore, fsync=False) as j:
        assert [r.payload for r in j.records()][-1] == {"event": "halt"}


def test_only_one_writer(keystore: KeyStore, jpath: Path) -> None:
    with Journal(jpath, keystore, fsync=False), pytest.raises(TransientError):
        Journal(jpath, keystore, fsync=False)


def crash_mid_append(keystore: KeyStore, jpath: Path, cut: int, batch: int = 1) -> None:
    """Simulate a crash: the file gets ``cut`` bytes of the next write, the head is not updated."""
    head = jpath.with_name(jpath.name + ".head")
    saved_head = head.read_bytes()
    before = jpath.stat().st_size
    with Journal(jpath, keystore, fsync=False) as j:
        j.append_many([("order", {"i": i}) for i in range(batch)])
    data = jpath.read_bytes()
    jpath.write_bytes(data[: before + cut])
    head.write_bytes(saved_head)


@pytest.mark.parametrize("cut", [1, 3, 90, 500, -1])
def test_torn_final_write_is_repaired(keystore: KeyStore, jpath: Path, cut: int) -> None:
    with Journal(jpath, keystore, fsync=False) as j:
        fill(j, 3)
        good = j.records()
    size = jpath.stat().st_size
    original = jpath.read_bytes()
    head = jpath.with_name(jpath.name + ".head")
    saved_head = head.read_bytes()
    with Journal(jpath, keystore, fsync=False) as j:
        j.append("order", {"i": 0})  # the same size as crash_mid_append writes
    record_len = jpath.stat().st_size - size
    jpath.write_bytes(jpath.read_bytes()[:size])  # reset to before that append
    head.write_bytes(saved_head)
    crash_mid_append(keystore, jpath, record_len - 1 if cut == -1 else cut)
    report = Journal.verify_file(jpath, keystore)
    assert report.ok and report.torn_bytes > 0 and report.torn_offset == size
    torn = jpath.read_bytes()[size:]
    with Journal(jpath, keystore, fsync=False) as j:  # open repairs: cuts, and records the cut
        assert j.records() == good
        assert jpath.read_bytes()[:size] == original  # every signed record kept, byte for byte
        assert j.head()[0] == 4  # seq 4 is the signed repair record
        assert jpath.with_name(f"{jpath.name}.torn-{size}").read_bytes() == torn
        assert j.append("order", {"after": "repair"}) == 5
        report = j.verify()
        assert report.ok and [(r.seq, r.cut_offset, r.cut_bytes) for r in report.repairs] == [(4, size, len(torn))]


def test_torn_batch_is_dropped_whole(keystore: KeyStore, jpath: Path) -> None:
    with Journal(jpath, keystore, fsync=False) as j:
        fill(j, 2)
        good = j.records()
    crash_mid_append(keystore, jpath, cut=2_000, batch=50)  # cuts inside the unsigned middle
    with Journal(jpath, keystore, fsync=False) as j:
        assert j.records() == good


def test_crash_after_write_before_head_keeps_the_record(keystore: KeyStore, jpath: Path) -> None:
    with Journal(jpath, keystore, fsync=False) as j:
        fill(j, 2)
    head = jpath.with_name(jpath.name + ".head")
    saved = head.read_bytes()
    with Journal(jpath, keystore, fsync=False) as j:
        j.append("fill", {"x": 1})
    head.write_bytes(saved)
    with Journal(jpath, keystore, fsync=False) as j:
        assert j.records()[-1].payload == {"x": 1}
        assert j.head()[0] == 3


@pytest.fixture
def journal10(keystore: KeyStore, jpath: Path) -> Path:
    with Journal(jpath, keystore, fsync=False) as j:
        fill(j, 10)
    return jpath


def expect_bad(path: Path, keystore: KeyStore, seq: int | None, reason: str = "", *, on_open: bool = True) -> None:
    report = Journal.verify_file(path, KeyStore.public_ring(keystore.directory))
    assert not report.ok and report.first_bad == seq, report.describe()
    assert reason in report.reason
    if not on_open:
        return
    with pytest.raises(IntegrityError, match=f"seq {seq}" if seq is not None else reason):
        Journal(path, keystore, fsync=False)


@pytest.mark.parametrize("seq", [0, 1, 4, 10])
def test_changed_record_is_named(journal10: Path, keystore: KeyStore, seq: int) -> None:
    _, start, end = spans(journal10)[seq]
    for pos in (start + 16, start + 30, start + 90, end - 5):  # seq, prev hash, content, signature
        data = bytearray(journal10.read_bytes())
        original = data[pos]
        data[pos] ^= 0x01
        journal10.write_bytes(bytes(data))
        # open and verify share one verdict: a damaged signature refuses the journal even where
        # a later signature still vouches for the record's content
        before = journal10.read_bytes()
        expect_bad(journal10, keystore, seq)
        assert journal10.read_bytes() == before  # refused, nothing changed
        data[pos] = original
        journal10.write_bytes(bytes(data))


def test_removed_record_is_named(journal10: Path, keystore: KeyStore) -> None:
    _, start, end = spans(journal10)[4]
    data = journal10.read_bytes()
    journal10.write_bytes(data[:start] + data[end:])
    expect_bad(journal10, keystore, 4, "removed or reordered")


def test_reordered_records_are_named(journal10: Path, keystore: KeyStore) -> None:
    s = spans(journal10)
    data = journal10.read_bytes()
    a, b = data[s[6][1] : s[6][2]], data[s[7][1] : s[7][2]]
    journal10.write_bytes(data[: s[6][1]] + b + a + data[s[7][2] :])
    expect_bad(journal10, keystore, 6, "removed or reordered")


def test_truncated_at_a_record_boundary_is_named(journal10: Path, keystore: KeyStore) -> None:
    s = spans(journal10)
    journal10.write_bytes(journal10.read_bytes()[: s[8][1]])  # drop committed 8, 9, 10
    expect_bad(journal10, keystore, 8, "truncated")


def test_truncated_inside_a_committed_record_is_named(journal10: Path, keystore: KeyStore) -> None:
    s = spans(journal10)
    journal10.write_bytes(journal10.read_bytes()[: s[10][1] + 100])
    expect_bad(journal10, keystore, 10)


def test_missing_or_replaced_head(journal10: Path, keystore: KeyStore, tmp_path: Path) -> None:
    head = journal10.with_name(journal10.name + ".head")
    saved = head.read_bytes()
    head.unlink()
    expect_bad(journal10, keystore, None, "head file missing")
    head.write_text("garbage")
    expect_bad(journal10, keystore, None, "corrupt")
    head.write_bytes(saved)
    other = tmp_path / "other.twj"  # a head from another journal signed by the same key
    with Journal(other, keystore, fsync=False) as j:
        fill(j, 10)
    shutil.copy(other.with_name("other.twj.head"), head)
    expect_bad(journal10, keystore, 10, "does not match the journal head")


def test_changed_on_disk_while_open(keystore: KeyStore, jpath: Path) -> None:
    with Journal(jpath, keystore, fsync=False) as j:
        fill(j, 3)
        _, start, _ = spans(jpath)[2]
        data = bytearray(jpath.read_bytes())
        data[start + 100] ^= 1
        jpath.write_bytes(bytes(data))
        with pytest.raises(IntegrityError, match="seq 2"):
            j.records()


def test_replay_of_many_records_is_cheap(keystore: KeyStore, jpath: Path) -> None:
    with Journal(jpath, keystore, fsync=False) as j:
        j.append_many([("fill", {"i": i, "px": 1.25}) for i in range(5_000)])
        assert len(j.records()) == 5_000
    with Journal(jpath, keystore, fsync=False) as j:
        assert j.records()[-1].payload == {"i": 4_999, "px": 1.25}
        assert j.verify().ok


def test_from_config(tmp_path: Path, keystore: KeyStore) -> None:
    from tinywindow.config import load

    cfg = load(environ={}, overrides={"data_dir": str(tmp_path), "crypto.journal_fsync": False})
    with Journal.from_config(cfg.crypto, cfg.data_dir, "portfolio", keystore, clock=FakeClock()) as j:
        assert j.path == tmp_path / "journal" / "portfolio.twj"
        assert j.append("order", {"i": 1}) == 1
