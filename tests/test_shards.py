"""The sharded, incremental corpus store (qbdi_utils.shards) through corpus.load_corpus (issue 15).

Folders of small synthetic MIDI files; the expected frames come from the rolls the test wrote
(``to_frames`` of each roll, with ``transpose=None``), not from the code under test.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from qbdi_utils import files as files_mod
from qbdi_utils import shard_workers, shards, shards_view
from qbdi_utils.corpus import load_corpus
from qbdi_utils.errors import OptionError
from qbdi_utils.pianoroll import RollSpec, midi_bytes, notes_to_roll, to_frames
from qbdi_utils.model import frames_fingerprint

SPEC = RollSpec()
REPO = Path(__file__).resolve().parents[1]


def _roll(seed: int, bars: int | None = None) -> np.ndarray:
    """A random but valid 4-voice roll of 2..5 bars (16th-note grid)."""
    rng = np.random.default_rng(seed)
    bars = int(rng.integers(2, 6)) if bars is None else bars
    notes = []
    for v in range(4):
        t = 0
        while t < 16 * bars:
            d = int(rng.choice([2, 4, 8]))
            notes.append((int(36 + 12 * v + rng.integers(0, 12)), t, min(t + d, 16 * bars)))
            t += d
    return notes_to_roll(notes, 16 * bars)


def _write(folder: Path, name: str, seed: int) -> np.ndarray:
    roll = _roll(seed)
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(midi_bytes(roll))
    return roll


def _folder(root: Path, n: int, prefix: str = "f") -> tuple[Path, dict]:
    d = root / "midis"
    rolls = {f"{prefix}{i:03d}.mid": _write(d, f"{prefix}{i:03d}.mid", i) for i in range(n)}
    return d, rolls


def _load(d, root, **kw):
    kw.setdefault("transpose", None)
    kw.setdefault("progress", False)
    kw.setdefault("workers", 1)
    return load_corpus(d, cache_root=root, **kw)


def _same(a, b):
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.piece_index, b.piece_index)
    assert a.piece_names == b.piece_names and a.skipped == b.skipped and a.pieces == b.pieces
    assert a.fingerprint == b.fingerprint


def _expected(c, rolls):
    """Each piece's frames are the frames of the roll written for it."""
    for i, name in enumerate(c.piece_names):
        np.testing.assert_array_equal(c.frames[c.piece_index == i], to_frames(rolls[name]), err_msg=name)
    assert sorted(c.piece_names) == c.piece_names  # piece order: sorted relative paths


def test_parallel_equals_serial(tmp_path):
    d, rolls = _folder(tmp_path, 20)
    (d / "bad.mid").write_bytes(b"MThd garbage")
    serial = _load(d, tmp_path / "c1", shard_files=3, workers=1)
    parallel = _load(d, tmp_path / "c2", shard_files=3, workers=2)
    assert serial.ingest["workers"] == 1 and parallel.ingest["workers"] == 2
    assert serial.ingest["parsed"] == parallel.ingest["parsed"] == 21
    _same(serial, parallel)
    _same(serial, _load(d, None, cache=False))
    _expected(serial, rolls)
    assert [n for n, _ in serial.skipped] == ["bad.mid"]
    # warm: nothing parsed or cut, same result
    warm = _load(d, tmp_path / "c2", shard_files=3, workers=2)
    assert warm.from_cache and warm.ingest["parsed"] == 0 and warm.ingest["reused"] == 21
    _same(warm, parallel)


def test_incremental_add_change_delete(tmp_path):
    d, rolls = _folder(tmp_path, 12)
    root = tmp_path / "cache"
    first = _load(d, root, shard_files=4)
    assert first.ingest["parsed"] == 12 and first.ingest["new_shards"] == 3
    # add files, two sorting between old ones, one after: only they are parsed
    for name, seed in (("f003a.mid", 100), ("f007a.mid", 101), ("g.mid", 102)):
        rolls[name] = _write(d, name, seed)
    grown = _load(d, root, shard_files=4)
    assert (grown.ingest["parsed"], grown.ingest["reused"]) == (3, 12)
    scratch = _load(d, tmp_path / "scratch", shard_files=4)
    _same(grown, scratch)
    _expected(grown, rolls)
    sc = _load(d, root, shard_files=4, in_memory=False)
    assert sc.ingest["parsed"] == 0 and not sc.in_piece_order  # the new shard interleaves
    assert sc.frames_fingerprint() == frames_fingerprint(scratch.frames)
    # change one file (new content, new size and mtime): only it is parsed again
    rolls["f005.mid"] = _write(d, "f005.mid", 200)
    os.utime(d / "f005.mid", ns=(1_700_000_000_000_000_000,) * 2)
    changed = _load(d, root, shard_files=4)
    assert (changed.ingest["parsed"], changed.ingest["reused"]) == (1, 14)
    _same(changed, _load(d, tmp_path / "scratch2", shard_files=4))
    _expected(changed, rolls)
    # delete one: gone, nothing parsed
    (d / "f010.mid").unlink()
    del rolls["f010.mid"]
    shrunk = _load(d, root, shard_files=4)
    assert shrunk.ingest["parsed"] == 0 and "f010.mid" not in shrunk.piece_names
    _same(shrunk, _load(d, tmp_path / "scratch3", shard_files=4))
    _expected(shrunk, rolls)
    # a shard all of whose files vanished is dropped from the manifest and deleted
    for name in ("f000.mid", "f001.mid", "f002.mid", "f003.mid"):
        (d / name).unlink()
    _load(d, root, shard_files=4)
    store = shrunk.cache_path
    listed = json.loads((store / shards.MANIFEST).read_text())["shards"]
    keys = {k for entry in listed.values() for k, *_ in entry["files"]}
    assert "f000.mid" not in keys and "f003a.mid" in keys
    assert sorted(p.name for p in store.glob("pieces-*.npz")) == sorted(listed)


def test_unreadable_files_across_shards(tmp_path):
    d, rolls = _folder(tmp_path, 9)
    (d / "a_garbage.mid").write_bytes(os.urandom(200))
    (d / "f002b_empty.mid").write_bytes(b"")
    (d / "f004b_dir.mid").mkdir()
    (d / "f006b_link.mid").symlink_to(d / "nowhere.mid")
    (d / "z_text.MIDI").write_text("hello")
    c = _load(d, tmp_path / "cache", shard_files=3)
    reasons = dict(c.skipped)
    assert set(reasons) == {"a_garbage.mid", "f002b_empty.mid", "f004b_dir.mid", "f006b_link.mid",
                            "z_text.MIDI"}
    assert "empty" in reasons["f002b_empty.mid"] and "folder" in reasons["f004b_dir.mid"]
    assert "does not exist" in reasons["f006b_link.mid"] and "MThd" in reasons["z_text.MIDI"]
    assert c.ingest["new_shards"] == 4  # 12 files in shards of 3 (the folder and the link are not files): bad ones in several
    _expected(c, rolls)
    # the skip reasons are cached too: the next load parses nothing and says the same
    again = _load(d, tmp_path / "cache", shard_files=3)
    assert again.ingest["parsed"] == 0 and again.skipped == c.skipped


def test_disk_full_while_sharding(tmp_path, monkeypatch):
    d, rolls = _folder(tmp_path, 10)
    root = tmp_path / "cache"
    real = shard_workers.savez
    calls = []

    def full_on_second_pieces_shard(tmp, arrays):
        if "rolls" in arrays:
            calls.append(tmp)
            if len(calls) == 2:
                Path(tmp).write_bytes(b"PK\x03\x04 partial")  # a partial file, then the disk is full
                raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
        real(tmp, arrays)

    monkeypatch.setattr(shard_workers, "savez", full_on_second_pieces_shard)
    with pytest.warns(UserWarning, match="disk full"):
        c = _load(d, root, shard_files=4)
    _same(c, _load(d, None, cache=False))
    _expected(c, rolls)
    store = c.cache_path
    listed = json.loads((store / shards.MANIFEST).read_text())["shards"]
    keys = sorted(k for entry in listed.values() for k, *_ in entry["files"])
    assert keys == [f"f{i:03d}.mid" for i in (0, 1, 2, 3, 8, 9)]  # the 2nd shard (f004-f007) is not
    assert sorted(p.name for p in store.glob("pieces-*")) == sorted(listed)
    assert not [p for p in store.iterdir() if files_mod.is_leftover(p) or "partial" in p.name]
    monkeypatch.setattr(shard_workers, "savez", real)
    again = _load(d, root, shard_files=4)
    assert (again.ingest["parsed"], again.ingest["reused"]) == (4, 6)
    _same(again, c)


def test_interrupted_ingest_resumes(tmp_path):
    n = 150
    d, rolls = _folder(tmp_path, n)
    root = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import time
        from qbdi_utils import corpus
        parse = corpus._parse_midi_file
        def slow(*a):  # about 3 s in all: time to be killed half-way
            time.sleep(0.02)
            return parse(*a)
        corpus._parse_midi_file = slow
        corpus.load_corpus({str(d)!r}, cache_root={str(root)!r}, workers=1, shard_files=10,
                           transpose=None, progress=False)
        print("finished")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE)
    listed = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        manifests = list(root.glob(f"shards-*/{shards.MANIFEST}"))
        if manifests:
            try:
                listed = len(json.loads(manifests[0].read_text())["shards"])
            except (OSError, ValueError):
                listed = 0
            if listed >= 1:
                break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL and b"finished" not in out
    assert 1 <= listed < n // 10
    c = _load(d, root, shard_files=10)
    assert 0 < c.ingest["parsed"] < n and c.ingest["reused"] >= 10
    assert c.ingest["parsed"] + c.ingest["reused"] == n
    _same(c, _load(d, None, cache=False))
    _expected(c, rolls)
    assert not [p for p in c.cache_path.iterdir() if files_mod.is_leftover(p)]


def test_sharded_corpus_streams_the_same_frames(tmp_path):
    d, rolls = _folder(tmp_path, 14)
    root = tmp_path / "cache"
    c = _load(d, root, shard_files=4, augment=(-1, 2))
    sc = _load(d, root, shard_files=4, augment=(-1, 2), in_memory=False)
    assert isinstance(sc, shards_view.ShardedCorpus) and sc.ingest["parsed"] == 0
    assert sc.n_shards == 4 and sum(sc.shard_sizes) == sc.n_frames == c.n_frames
    assert sc.frame_size == SPEC.frame_size and sc.piece_names == c.piece_names
    assert sc.frames_fingerprint() == frames_fingerprint(c.frames)
    assert sc.piece_index.dtype == np.int32 and sc.in_piece_order
    parts = list(sc.iter_shards())
    np.testing.assert_array_equal(np.concatenate([f for f, _ in parts]), c.frames)
    np.testing.assert_array_equal(np.concatenate([i for _, i in parts]), c.piece_index)
    np.testing.assert_array_equal(np.concatenate([i for _, i in parts]), sc.piece_index)
    # the documented npz keys, read without the package
    for path, size, (fr, ids) in zip(sc.shard_paths, sc.shard_sizes, parts):
        with np.load(path) as z:
            raw = np.unpackbits(z["frames"], axis=1, count=int(z["n_columns"]))
            np.testing.assert_array_equal(raw, fr)
            np.testing.assert_array_equal(z["piece_index"], ids)
        assert len(fr) == size and fr.dtype == np.uint8
    # augmented copies sit right after their original
    assert c.piece_names[:3] == ["f000.mid", "f000.mid@-1", "f000.mid@+2"]
    # not cached: the shards are held in memory, same frames
    mem = _load(d, None, cache=False, augment=(-1, 2), in_memory=False)
    assert all(p is None for p in mem.shard_paths)
    assert mem.frames_fingerprint() == sc.frames_fingerprint()


def test_bad_ingest_options(tmp_path):
    d, _ = _folder(tmp_path, 2)
    with pytest.raises(OptionError, match="workers"):
        _load(d, tmp_path / "c", workers=0)
    with pytest.raises(OptionError, match="shard_files"):
        _load(d, tmp_path / "c", shard_files=0)


_SEEN_GC: list = []


def _parse_noting_gc(path, name, spec, meter):
    """A parser (top-level, as the store requires) that notes the collector's threshold."""
    import gc

    from qbdi_utils.corpus import _parse_midi_file

    _SEEN_GC.append(gc.get_threshold())
    return _parse_midi_file(path, name, spec, meter)


def test_parse_jobs_collect_garbage_less_often_then_restore(tmp_path):
    import gc

    from qbdi_utils.corpus import _expand_piece, _source_id

    d, rolls = _folder(tmp_path, 4)
    _, files, _, _, ident = _source_id(d)
    before = gc.get_threshold()
    _SEEN_GC.clear()
    sc = shards.build(shards.SourceRecipe("folder", ident, _parse_noting_gc, _expand_piece, SPEC, "4/4", None, ()),
                      files, files, shards.StoreSettings(cache_root=tmp_path / "c", workers=1, progress=False))
    assert gc.get_threshold() == before
    assert len(_SEEN_GC) == 4 and all(t[0] >= shard_workers.PARSE_GC_THRESHOLD and t[1:] == before[1:] for t in _SEEN_GC)
    assert sc.piece_names == sorted(rolls)
    # the CPU split: jobs = parse + frames; the caller's own share is reported apart
    i = sc.ingest
    assert i["job_cpu_seconds"] == pytest.approx(i["parse_cpu_seconds"] + i["frames_cpu_seconds"], abs=2e-3)
    assert i["parse_cpu_seconds"] > 0 and i["frames_cpu_seconds"] > 0 and i["parent_cpu_seconds"] >= 0
