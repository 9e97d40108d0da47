"""Every bad input a user can give the MIDI reader raises a QbdiError subclass naming file and reason.

Also a fuzz test: thousands of mutated MIDI byte strings each either load or raise QbdiError.
"""

from __future__ import annotations

import mido
import numpy as np
import pytest

from qbdi_utils.errors import MeterError, MidiFileError, NoNotesError, QbdiError
from qbdi_utils.pianoroll import make_valid, read_midi, write_midi, RollSpec


def _one_track(msgs, tpb=480, type_=0):
    mid = mido.MidiFile(type=type_, ticks_per_beat=tpb)
    mid.tracks.append(mido.MidiTrack(msgs))
    return mid


def _good(tmp_path):
    mid = _one_track([mido.Message("note_on", note=60, velocity=64, time=0),
                      mido.Message("note_off", note=60, velocity=0, time=480)])
    p = tmp_path / "good.mid"
    mid.save(str(p))
    return p


def _check(exc_info, path, *words):
    msg = str(exc_info.value)
    assert str(path) in msg, msg
    assert exc_info.value.path == path
    for w in words:
        assert w in msg.lower(), msg


def test_missing_path(tmp_path):
    p = tmp_path / "nope.mid"
    with pytest.raises(MidiFileError) as e:
        read_midi(p)
    _check(e, p, "not found")


def test_directory(tmp_path):
    with pytest.raises(MidiFileError) as e:
        read_midi(tmp_path)
    _check(e, tmp_path, "directory")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mid"
    p.write_bytes(b"")
    with pytest.raises(MidiFileError) as e:
        read_midi(p)
    _check(e, p, "empty")


def test_text_renamed_mid(tmp_path):
    p = tmp_path / "notes.mid"
    p.write_text("these are my notes, not a MIDI file\n")
    with pytest.raises(MidiFileError) as e:
        read_midi(p)
    _check(e, p, "not a standard midi file")


@pytest.mark.parametrize("keep", [6, 14, 20, 25])
def test_truncated_file(tmp_path, keep):
    data = _good(tmp_path).read_bytes()
    p = tmp_path / "trunc.mid"
    p.write_bytes(data[:keep])
    with pytest.raises(MidiFileError) as e:
        read_midi(p)
    _check(e, p)
    assert "truncated" in str(e.value) or "corrupt" in str(e.value)


def test_no_notes(tmp_path):
    p = tmp_path / "silent.mid"
    _one_track([mido.MetaMessage("set_tempo", tempo=500000, time=0)]).save(str(p))
    with pytest.raises(NoNotesError) as e:
        read_midi(p)
    _check(e, p, "no notes")


def test_drums_only(tmp_path):
    p = tmp_path / "drums.mid"
    _one_track([mido.Message("note_on", channel=9, note=36, velocity=100, time=0),
                mido.Message("note_off", channel=9, note=36, velocity=0, time=240)]).save(str(p))
    with pytest.raises(NoNotesError) as e:
        read_midi(p)
    _check(e, p, "drum")


def test_all_out_of_range(tmp_path):
    p = tmp_path / "high.mid"
    _one_track([mido.Message("note_on", note=120, velocity=100, time=0),
                mido.Message("note_off", note=120, velocity=0, time=240)]).save(str(p))
    with pytest.raises(NoNotesError) as e:
        read_midi(p)
    _check(e, p, "outside the pitch range")


def test_unsupported_meter_when_44_required(tmp_path):
    p = tmp_path / "waltz.mid"
    _one_track([mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
                mido.Message("note_on", note=60, velocity=64, time=0),
                mido.Message("note_off", note=60, velocity=0, time=480)]).save(str(p))
    assert read_midi(p).time_signatures == [(0, 3, 4)]  # fine when any meter is accepted
    with pytest.raises(MeterError) as e:
        read_midi(p, meter="4/4")
    _check(e, p, "3/4", "4/4")


def test_smpte_time_division_is_refused(tmp_path):
    data = bytearray(_good(tmp_path).read_bytes())
    data[12:14] = bytes([0xE7, 0x28])  # -25 fps, 40 ticks per frame
    p = tmp_path / "smpte.mid"
    p.write_bytes(bytes(data))
    with pytest.raises(MidiFileError) as e:
        read_midi(p)
    _check(e, p, "smpte")


def test_all_errors_are_qbdi_errors():
    for cls in (MidiFileError, NoNotesError, MeterError):
        assert issubclass(cls, QbdiError)


# ---------------------------------------------------------------------------------------------
# fuzz

def _seed_files(tmp_path):
    """A few structurally different valid MIDI byte strings to mutate."""
    rng = np.random.default_rng(0)
    seeds = []
    roll = make_valid(rng.random((48, RollSpec().n_columns)) < 0.05)
    seeds.append(write_midi(roll, tmp_path / "s0.mid").read_bytes())
    # type 1, conductor track, running status, velocity-0 offs, drums, several channels
    mid = mido.MidiFile(type=1, ticks_per_beat=96)
    mid.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=600000, time=0),
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
        mido.MetaMessage("key_signature", key="Eb", time=0),
        mido.MetaMessage("set_tempo", tempo=400000, time=288)]))
    for ch in (0, 1, 9):
        msgs = [mido.Message("program_change", channel=ch, program=ch, time=0)]
        for k in range(8):
            msgs.append(mido.Message("note_on", channel=ch, note=40 + 5 * k + ch, velocity=90, time=24))
            msgs.append(mido.Message("note_on", channel=ch, note=40 + 5 * k + ch, velocity=0, time=30))
            msgs.append(mido.Message("control_change", channel=ch, control=64, value=127, time=0))
        mid.tracks.append(mido.MidiTrack(msgs))
    p = tmp_path / "s1.mid"
    mid.save(str(p))
    seeds.append(p.read_bytes())
    return seeds


def _mutate(data: bytes, rng) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        # mostly length-preserving edits, so many cases get past the chunk structure into events
        op = rng.choice(6, p=[0.35, 0.35, 0.1, 0.1, 0.05, 0.05])
        i = int(rng.integers(0, max(len(b), 1)))
        if op == 0 and b:                       # overwrite a byte
            b[i % len(b)] = int(rng.integers(0, 256))
        elif op == 1 and b:                     # flip a bit
            b[i % len(b)] ^= 1 << int(rng.integers(0, 8))
        elif op == 2:                           # insert random bytes
            b[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 8))).astype(np.uint8))
        elif op == 3 and b:                     # delete a run
            del b[i:i + int(rng.integers(1, 8))]
        elif op == 4:                           # truncate
            b = b[:i]
        else:                                   # duplicate a slice
            j = int(rng.integers(i, len(b) + 1))
            b[j:j] = b[i:j][:64]
    return bytes(b)


N_FUZZ = 3000


def test_fuzz_mutated_midi_loads_or_raises_qbdi_error(tmp_path):
    seeds = _seed_files(tmp_path)
    rng = np.random.default_rng(12345)
    p = tmp_path / "fuzz.mid"
    outcomes = {"loaded": 0, "qbdi_error": 0}
    for k in range(N_FUZZ):
        data = _mutate(seeds[k % len(seeds)], rng)
        p.write_bytes(data)
        try:
            piece = read_midi(p)
        except QbdiError as exc:
            assert str(p) in str(exc)
            outcomes["qbdi_error"] += 1
        except Exception as exc:  # pragma: no cover - this is the failure the test looks for
            pytest.fail(f"case {k}: {type(exc).__name__}: {exc} for bytes {data[:80]!r}")
        else:
            assert piece.roll.ndim == 2 and piece.roll.shape[1] == 156
            outcomes["loaded"] += 1
    # the mutations must exercise both paths, or the test proves nothing
    assert outcomes["loaded"] > N_FUZZ // 20 and outcomes["qbdi_error"] > N_FUZZ // 20, outcomes


# ---------------------------------------------------------------------------------------------
# the MIDI writer: atomic, exclusive unless force, file-system faults as one-line QbdiErrors


def test_write_midi_refuses_to_overwrite_without_force(tmp_path):
    import os

    from qbdi_utils.errors import OutputExistsError

    spec = RollSpec()
    roll = make_valid(np.eye(16, spec.n_columns, dtype=np.uint8), spec)
    path = tmp_path / "a.mid"
    path.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="--force") as info:
        write_midi(roll, path)
    assert info.value.path == path and path.read_bytes() == b"keep me"
    write_midi(roll, path, force=True)
    back = read_midi(path, allow_empty=True).roll
    assert np.array_equal(back, roll)  # the round trip the reader promises, through the replaced file
    assert os.listdir(tmp_path) == ["a.mid"]  # no temporaries left


def test_write_midi_file_system_faults_are_one_line(tmp_path):
    import os

    from qbdi_utils.errors import FileSystemError

    blocker = tmp_path / "f"
    blocker.write_text("keep")
    roll = np.zeros((16, RollSpec().n_columns), np.uint8)
    with pytest.raises(FileSystemError) as info:
        write_midi(roll, blocker / "x.mid")
    msg = str(info.value)
    assert "\n" not in msg and f"{blocker} is a file, not a folder" in msg
    with pytest.raises(FileSystemError, match="is a folder, not a file"):
        write_midi(roll, tmp_path, force=True)
    assert os.listdir(tmp_path) == ["f"]


def test_every_error_class_is_a_qbdi_error():
    from qbdi_utils import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), QbdiError), name
    assert issubclass(errors.TrainingDivergedError, errors.OptionError)  # exit 2 with the option hint


def test_fuzz_model_json_loads_or_raises_model_error(tiny_model, tmp_path):
    """Random type and value changes to model.json's fields: load either works or raises ModelError
    naming the model folder (never a TypeError, KeyError, ... from deeper down)."""
    import json
    import shutil

    from qbdi_utils.model import StyleVAE
    from qbdi_utils.errors import ModelError

    src = tiny_model.info["model_dir"]
    meta0 = json.loads(open(f"{src}/model.json").read())
    values = [None, True, -3, 0, 0.5, 7.5, 1e308, "x", "16", [], [1, 2], {}, {"a": 1}]
    rng = np.random.default_rng(11)
    paths = [(k,) for k in meta0] + [("config", k) for k in meta0["config"]] + \
        [("spec", k) for k in meta0["spec"]] + [("corpus_stats", "mean"), ("corpus_stats", "var")]
    d = tmp_path / "m"
    shutil.copytree(src, d)
    refused = 0
    for _ in range(40):
        meta = json.loads(json.dumps(meta0))
        path = paths[rng.integers(len(paths))]
        target = meta
        for k in path[:-1]:
            target = target[k]
        if rng.random() < 0.15:
            target.pop(path[-1])
        else:
            target[path[-1]] = values[rng.integers(len(values))]
        (d / "model.json").write_text(json.dumps(meta))
        try:
            StyleVAE.load(d)
        except ModelError as exc:
            assert str(d) in str(exc)
            refused += 1
    assert refused >= 20  # most mutations break the schema
