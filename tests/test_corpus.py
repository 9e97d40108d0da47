"""Corpus loading (qbdi_utils.corpus): folders with bad files, caching, transposition, queries."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from qbdi_utils import paths
from qbdi_utils.corpus import (
    DEFAULT_QUERY, QUERY_NAMES, Corpus, default_query_path, estimate_key, load_corpus, load_query,
    normalising_shift,
)
from qbdi_utils.errors import CorpusError, MidiFileError, OptionError
from qbdi_utils.pianoroll import (
    RollSpec, from_frames, notes_to_roll, piece_to_frames, roll_to_notes, write_midi,
)

SPEC = RollSpec()

# I-IV-V-I cadences in C major, 2 bars each (chord tones weighted like a real piece)
C_MAJOR = [(60, 64, 67), (60, 65, 69), (59, 62, 67), (60, 64, 67)]
A_MINOR = [(57, 60, 64), (57, 62, 65), (56, 59, 64), (57, 60, 64)]


def _cadence_roll(chords, shift=0, bars=8):
    notes = []
    for b in range(bars):
        chord = chords[b % len(chords)]
        for p in chord:
            notes.append((p + shift, 16 * b, 16 * b + 16))
        notes.append((chord[0] + shift - 12, 16 * b, 16 * b + 8))
    return notes_to_roll(notes, 16 * bars)


def _folder(tmp_path):
    d = tmp_path / "midis"
    (d / "sub").mkdir(parents=True)
    write_midi(_cadence_roll(C_MAJOR, shift=2), d / "d_major.mid")            # D major
    write_midi(_cadence_roll(A_MINOR, shift=-2), d / "sub" / "g_minor.MIDI")   # G minor, nested
    write_midi(_cadence_roll(C_MAJOR), d / "waltz.mid", time_signature=(3, 4))
    (d / "empty.mid").write_bytes(b"")
    (d / "text.mid").write_text("not midi")
    good = (d / "d_major.mid").read_bytes()
    (d / "truncated.mid").write_bytes(good[:30])
    silent = mido.MidiFile(type=0)
    silent.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)]))
    silent.save(str(d / "silent.mid"))
    (d / "readme.txt").write_text("ignored: not .mid")
    return d


def test_folder_with_bad_files_loads_good_ones_and_reports_bad(tmp_path):
    d = _folder(tmp_path)
    c = load_corpus(d, cache=False, progress=False, meter="4/4")
    assert sorted(c.piece_names) == ["d_major.mid", "sub/g_minor.MIDI"]
    reasons = dict(c.skipped)
    assert set(reasons) == {"waltz.mid", "empty.mid", "text.mid", "truncated.mid", "silent.mid"}
    assert "3/4" in reasons["waltz.mid"]
    assert "empty" in reasons["empty.mid"]
    assert "MThd" in reasons["text.mid"]
    assert "truncated" in reasons["truncated.mid"]
    assert "no notes" in reasons["silent.mid"]
    assert c.frames.shape == (16, SPEC.frame_size) and c.frames.dtype == np.uint8
    assert np.bincount(c.piece_index).tolist() == [8, 8]
    # with any meter accepted (the default) the waltz loads too, each 3/4 bar its own 12-step frame:
    # 8 bars of 4/4 notes = 128 steps = 10 bars of 3/4 and a partial eleventh
    for meter in ("any", None):
        c_any = load_corpus(d, cache=False, progress=False, **({} if meter == "any" else {"meter": meter}))
        assert "waltz.mid" in c_any.piece_names and len(c_any.skipped) == 4
        w = c_any.piece_names.index("waltz.mid")
        assert c_any.pieces[w]["meters"] == {"3/4": 11}
        assert c_any.frame_lengths[c_any.piece_index == w].tolist() == [12] * 11
        assert c_any.frame_lengths[c_any.piece_index != w].tolist() == [16] * 16
        assert c_any.meter_counts() == {"pieces": {"4/4": 2, "3/4": 1}, "bars": {"4/4": 16, "3/4": 11}}
        # the waltz's frames are its 3/4 bars: each holds 12 steps of the roll, silence after
        rows = c_any.piece_frames(w).reshape(11, 16, SPEC.n_columns)
        assert not rows[:, 12:].any()
        expected = np.zeros((132, SPEC.n_columns), np.uint8)
        expected[:128] = _cadence_roll(C_MAJOR)
        np.testing.assert_array_equal(rows[:, :12].reshape(-1, SPEC.n_columns), expected)
    # the sharded (streaming) view knows the same lengths, in its shard order
    sc = load_corpus(d, cache=False, progress=False, in_memory=False)
    order = np.argsort(sc.piece_index, kind="stable")
    np.testing.assert_array_equal(sc.frame_lengths[order], c_any.frame_lengths)


def test_transposition_to_c_major_and_a_minor(tmp_path):
    d = _folder(tmp_path)
    c = load_corpus(d, cache=False, progress=False, transpose="relative")
    info = {p["name"]: p for p in c.pieces}
    assert info["d_major.mid"]["key"] == "D major" and info["d_major.mid"]["shift"] == -2
    assert info["sub/g_minor.MIDI"]["key"] == "G minor" and info["sub/g_minor.MIDI"]["shift"] == 2
    # the transposed D-major piece is now exactly the C-major cadence
    np.testing.assert_array_equal(from_frames(c.piece_frames(0)), _cadence_roll(C_MAJOR))
    np.testing.assert_array_equal(from_frames(c.piece_frames(1)), _cadence_roll(A_MINOR))
    tonic = load_corpus(d, cache=False, progress=False, transpose="tonic")
    assert {p["name"]: p["shift"] for p in tonic.pieces}["sub/g_minor.MIDI"] == 5  # G minor -> C minor
    none = load_corpus(d, cache=False, progress=False, transpose=None)
    np.testing.assert_array_equal(from_frames(none.piece_frames(0)), _cadence_roll(C_MAJOR, shift=2))


def test_augmentation_adds_shifted_copies(tmp_path):
    d = _folder(tmp_path)
    c = load_corpus(d, cache=False, progress=False, augment=(-1, 2), transpose="relative", meter="4/4")
    assert len(c.piece_names) == 6 and c.n_frames == 48
    assert "d_major.mid@+2" in c.piece_names
    summ = c.summary()
    assert summ["pieces_kept"] == 2 and summ["pieces_with_augmentation"] == 6 and summ["frames"] == 48
    i0, i2 = c.piece_names.index("d_major.mid"), c.piece_names.index("d_major.mid@+2")
    a = roll_to_notes(from_frames(c.piece_frames(i0)))
    b = roll_to_notes(from_frames(c.piece_frames(i2)))
    assert b == [(p + 2, s, e) for p, s, e in a]


def test_cache_round_trip_and_keying(tmp_path, monkeypatch):
    monkeypatch.setenv("QBDI_CACHE_DIR", str(tmp_path / "cache"))
    d = _folder(tmp_path)
    cold = load_corpus(d, progress=False)
    assert not cold.from_cache and cold.cache_path.is_dir()  # the shard store (qbdi_utils.shards)
    assert cold.cache_path.parent == paths.cache_dir()
    warm = load_corpus(d, progress=False)
    assert warm.from_cache and warm.fingerprint == cold.fingerprint
    np.testing.assert_array_equal(warm.frames, cold.frames)
    np.testing.assert_array_equal(warm.piece_index, cold.piece_index)
    assert warm.piece_names == cold.piece_names and warm.skipped == cold.skipped
    assert warm.pieces == cold.pieces
    # every option and the spec change the key
    other = {load_corpus(d, progress=False, transpose=None).fingerprint,
             load_corpus(d, progress=False, augment=(1,)).fingerprint,
             load_corpus(d, progress=False, meter="4/4").fingerprint,
             load_corpus(d, progress=False, limit=3).fingerprint,
             load_corpus(d, progress=False, spec=RollSpec(min_pitch=36, max_pitch=96)).fingerprint}
    assert len(other) == 5 and cold.fingerprint not in other
    # a changed file changes the key too
    write_midi(_cadence_roll(C_MAJOR, shift=4, bars=4), d / "d_major.mid", force=True)
    changed = load_corpus(d, progress=False)
    assert changed.fingerprint != cold.fingerprint and not changed.from_cache
    assert changed.n_frames == 12 + 11  # 4 + 8 bars of 4/4 and the waltz's 11 bars of 3/4


def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("QBDI_CACHE_DIR", str(tmp_path / "cache"))
    d = _folder(tmp_path)
    cold = load_corpus(d, progress=False)
    shard_files = sorted(cold.cache_path.glob("*.npz"))
    assert any(p.name.startswith("pieces-") for p in shard_files)
    assert any(p.name.startswith("frames-") for p in shard_files)
    for p in shard_files:  # every shard, pieces and frames, damaged
        p.write_bytes(b"garbage")
    again = load_corpus(d, progress=False)
    assert not again.from_cache and again.ingest["parsed"] == 7
    np.testing.assert_array_equal(again.frames, cold.frames)
    assert again.piece_names == cold.piece_names and again.skipped == cold.skipped
    for p in cold.cache_path.glob("*.json"):  # damaged manifests: the shard files are adopted again
        p.write_text("{")
    third = load_corpus(d, progress=False)
    assert third.ingest["parsed"] == 0
    np.testing.assert_array_equal(third.frames, cold.frames)


def test_bad_sources_and_options(tmp_path):
    with pytest.raises(CorpusError, match="no such corpus"):
        load_corpus(tmp_path / "missing", cache=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .mid"):
        load_corpus(tmp_path / "empty", cache=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.mid").write_text("x")
    with pytest.raises(CorpusError, match="no usable piece") as e:
        load_corpus(bad, cache=False, progress=False)
    assert "a.mid" in str(e.value)
    for kw in ({"transpose": "F#"}, {"augment": (12,)}, {"meter": "fast"}, {"limit": 0}):
        with pytest.raises(OptionError):
            load_corpus(tmp_path / "bad", cache=False, **kw)


def test_limit_uses_first_files(tmp_path):
    d = _folder(tmp_path)
    c = load_corpus(d, cache=False, progress=False, limit=2)  # sorted: d_major.mid, empty.mid
    assert c.piece_names == ["d_major.mid"] and [n for n, _ in c.skipped] == ["empty.mid"]


def test_chorales_small(tmp_path, monkeypatch):
    monkeypatch.setenv("QBDI_CACHE_DIR", str(tmp_path / "cache"))
    c = load_corpus("chorales", limit=4, progress=False)
    assert isinstance(c, Corpus)
    # bwv1.6 (F major, one-beat pickup), bwv10.7 (G minor), bwv101.7 (D minor), bwv102.7 (G minor);
    # with music21 10.5 none of these four is in 3/4
    assert c.piece_names[:2] == ["bwv1.6", "bwv10.7"]
    info = {p["name"]: p for p in c.pieces}
    assert info["bwv1.6"]["key"] == "F major" and info["bwv1.6"]["shift"] == -5
    assert info["bwv1.6"]["bar_offset_steps"] == 4
    assert info["bwv10.7"]["key"] == "G minor" and info["bwv10.7"]["shift"] == 5  # to C minor
    # the pickup fills the end of the first frame; frames start on bar lines
    first = from_frames(c.piece_frames(0))
    assert first[:12].sum() == 0 and first[12:16].sum() > 0
    # after the default transposition every piece's estimated tonic is C
    for i in range(len(c.piece_names)):
        tonic, mode = estimate_key(from_frames(c.piece_frames(i)))[:2]
        assert tonic == 0
    rel = load_corpus("chorales", limit=4, progress=False, transpose="relative")
    for i in range(len(rel.piece_names)):
        assert estimate_key(from_frames(rel.piece_frames(i)))[:2] in {(0, "major"), (9, "minor")}


def test_estimate_key_and_shift():
    assert estimate_key(_cadence_roll(C_MAJOR, shift=7))[:2] == (7, "major")
    assert estimate_key(_cadence_roll(A_MINOR, shift=1))[:2] == (10, "minor")
    assert normalising_shift(7, "major", "relative") == 5
    assert normalising_shift(6, "major", "relative") == -6
    assert normalising_shift(4, "minor", "relative") == 5
    assert normalising_shift(4, "minor", "tonic") == -4
    assert normalising_shift(4, "minor", None) == 0


def test_queries_ship_and_load():
    assert DEFAULT_QUERY in QUERY_NAMES and default_query_path().exists()
    for name in QUERY_NAMES:
        assert (paths.QUERY_DIR / f"{name}.mid").exists(), name
    q = load_query()
    assert q.name == DEFAULT_QUERY
    assert estimate_key(q.roll)[:2] == (0, "major")
    assert q.time_signatures == [(0, 4, 4)]
    assert piece_to_frames(q).shape[0] >= 32
    rag = load_query("joplin_maple_leaf_rag")
    assert rag.bar_offset_steps == 2  # the eighth-note pickup, marked in the exported file
    assert estimate_key(load_query("joplin_maple_leaf_rag", transpose="relative").roll)[:2] == (0, "major")


def test_query_errors(tmp_path):
    with pytest.raises(MidiFileError, match="not found"):
        load_query(str(tmp_path / "nope.mid"))
    with pytest.raises(OptionError):
        load_query(transpose="up")


def test_links_that_dangle_or_loop_and_midi_named_folders_are_reported(tmp_path):
    """Issue 11 item 7: nothing MIDI-named below a corpus folder is ignored without a word."""
    d = _folder(tmp_path)
    (d / "gone.mid").symlink_to(d / "no_such_file.mid")
    (d / "loop.mid").symlink_to(d / "loop.mid")
    (d / "folder.mid").mkdir()
    (d / "alias.mid").symlink_to(d / "d_major.mid")  # a link to a good file is a good file
    c = load_corpus(d, cache=False, progress=False)
    reasons = dict(c.skipped)
    assert "does not exist" in reasons["gone.mid"]
    assert "loops" in reasons["loop.mid"]
    assert "folder" in reasons["folder.mid"]
    assert "alias.mid" in c.piece_names


def test_unwritable_cache_is_a_warning_not_a_failure(tmp_path, monkeypatch):
    blocker = tmp_path / "cache_is_a_file"
    blocker.write_text("x")
    monkeypatch.setenv("QBDI_CACHE_DIR", str(blocker / "cache"))
    d = _folder(tmp_path)
    with pytest.warns(UserWarning, match="cache not written"):
        c = load_corpus(d, progress=False, meter="4/4")
    assert sorted(c.piece_names) == ["d_major.mid", "sub/g_minor.MIDI"]
    assert not c.from_cache


def test_essen_small(tmp_path, monkeypatch):
    """The second embedded corpus resolves by name; its first songs parse, are 4/4 and move to tonic C."""
    from qbdi_utils.corpus import NAMED_SOURCES
    from qbdi_utils.music21_files import ESSEN_PIECES, essen_path, essen_tunes

    monkeypatch.setenv("QBDI_CACHE_DIR", str(tmp_path / "cache"))
    assert "essen" in NAMED_SOURCES
    tunes = essen_tunes()
    # erk10.abc as music21 ships it: 663 songs, 195 of them with every M: field 4/4 (counted by grep)
    text = essen_path().read_text(encoding="latin-1")
    assert text.count("\nX:") + text.startswith("X:") == 663 and len(tunes) == 195 >= ESSEN_PIECES
    assert [n for n, _ in tunes[:3]] == [4, 9, 10]  # X:1-3 are in 2/4 and 6/8
    c = load_corpus("essen", limit=3, progress=False, workers=1)
    assert c.piece_names == ["erk10-4", "erk10-9", "erk10-10"] and c.skipped == []
    info = {p["name"]: p for p in c.pieces}
    # X:4 is written in F major (K: F) with a one-quarter pickup (C4 at L:1/16), 8 bars of melody
    assert info["erk10-4"]["key"] == "F major" and info["erk10-4"]["shift"] == -5
    assert info["erk10-4"]["bar_offset_steps"] == 4
    for i in range(len(c.piece_names)):
        roll = from_frames(c.piece_frames(i))
        assert estimate_key(roll)[0] == 0
        assert (roll[:, :SPEC.n_pitches] != 0).sum(axis=1).max() == 1  # one voice: one pitch sounds at a time
    again = load_corpus("essen", limit=3, progress=False, workers=1)
    assert again.from_cache and np.array_equal(again.frames, c.frames)
