"""A finer grid as a model option: 12 steps per quarter (16ths and triplets), from `qbdi train` to the outputs.

The corpus is a few synthetic files holding eighth-note triplets and 16ths (written here at 480 ticks
per quarter); the model is tiny and trained for two epochs: what is checked is the plumbing (the grid
the model saves, the query read on it, the lengths and the refusals), not the music.
"""

from __future__ import annotations

import json
import wave

import mido
import numpy as np
import pytest

from qbdi_utils import pianoroll
from qbdi_utils.cli import corpus_options, main
from qbdi_utils.errors import MidiFileError
from qbdi_utils.pianoroll import RollSpec, notes_to_roll, read_midi, roll_to_notes
from qbdi_utils.render import BUILTIN_RELEASE_S, synthesis_engine

FINE = RollSpec(steps_per_quarter=12, steps_per_frame=48)


def _triplet_notes(root: int, n_bars: int = 4):
    """Per bar: a held triad, eighth-note triplets on beats 1-2 (4 steps each), 16ths on beats 3-4 (3 steps)."""
    notes = []
    for b in range(n_bars):
        t = 48 * b
        notes += [(p, t, t + 48) for p in (root, root + 4, root + 7)]
        notes += [(root + 12 + (k % 3), t + 4 * k, t + 4 * k + 4) for k in range(6)]
        notes += [(root + 19 + (k % 2), t + 24 + 3 * k, t + 27 + 3 * k) for k in range(8)]
    return notes


@pytest.fixture(autouse=True)
def only_our_commands(monkeypatch):
    from qbdi_utils import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["train", "improvise", "navigate"])


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fine_model(tmp_path_factory):
    """`qbdi train --steps-per-quarter 12` on six synthetic triplet files; (model dir, corpus dir)."""
    base = tmp_path_factory.mktemp("grid")
    folder = base / "corpus"
    folder.mkdir()
    for i in range(6):
        pianoroll.write_midi(notes_to_roll(_triplet_notes(48 + i), 48 * 4, FINE), folder / f"t{i}.mid",
                             tempo_bpm=90.0, spec=FINE)
    out = base / "model"
    code = main(["train", "--corpus", str(folder), "--out", str(out), "--steps-per-quarter", "12",
                 "--epochs", "2", "--hidden-dim", "16", "--latent-dim", "4", "--quiet"])
    assert code == 0
    return out, folder


def test_triplets_round_trip_on_the_fine_grid(tmp_path):
    notes = _triplet_notes(60)
    roll = notes_to_roll(notes, 48 * 4, FINE)
    back = read_midi(pianoroll.write_midi(roll, tmp_path / "t.mid", spec=FINE), FINE)
    assert (back.roll == roll).all()
    assert sorted(roll_to_notes(back.roll, FINE)) == sorted(notes)
    # on the paper's grid the triplets cannot be told apart: onsets 4 and 8 (of 12 a beat) round to 1 and 3
    coarse = read_midi(tmp_path / "t.mid")
    assert {s % 4 for _, s, _ in roll_to_notes(coarse.roll)} != {0}


def test_the_model_saves_its_grid_and_improvises_on_it(capsys, tmp_path, fine_model):
    model_dir, folder = fine_model
    spec = json.loads((model_dir / "model.json").read_text())["spec"]
    assert (spec["steps_per_quarter"], spec["steps_per_frame"]) == (12, 48)
    out, wav = tmp_path / "o.mid", tmp_path / "o.wav"
    code, stdout, err = _run(capsys, "improvise", "--model", model_dir, "--query", folder / "t0.mid",
                             "--bits", "full", "--out", out, "--wav", wav, "--wav-format", "stereo44")
    assert code == 0, err
    assert "192 steps at 90 bpm" in stdout  # 4 bars of 48 steps
    back = read_midi(out, FINE)
    assert back.n_steps == 192
    assert mido.MidiFile(out).length == pytest.approx(4 * 4 * 60 / 90.0)
    with wave.open(str(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
        assert (w.getnchannels(), w.getframerate()) == (2, 44100)
    tail = BUILTIN_RELEASE_S if synthesis_engine() == "builtin" else 1.0  # the synthesizer's release
    assert seconds == pytest.approx(4 * 4 * 60 / 90.0 + tail, abs=1e-3)
    code, _, err = _run(capsys, "navigate", "--model", model_dir, "--query", folder / "t1.mid", "--source", "query",
                        "--out", tmp_path / "n.mid")
    assert code == 0, err
    assert read_midi(tmp_path / "n.mid", FINE).n_steps == 192


def test_a_grid_that_does_not_divide_the_resolution_is_one_line(capsys, tmp_path, fine_model):
    model_dir, _ = fine_model
    mid = mido.MidiFile(type=0, ticks_per_beat=1000)  # 1000 / 12 is not whole; 1000 / 4 is
    mid.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                                      mido.Message("note_off", note=60, velocity=0, time=4000)]))
    query = tmp_path / "k.mid"
    mid.save(str(query))
    assert read_midi(query).n_steps == 16
    with pytest.raises(MidiFileError, match="1000 ticks per quarter note is not a multiple of the grid's 12"):
        read_midi(query, FINE)
    code, _, err = _run(capsys, "improvise", "--model", model_dir, "--query", query, "--bits", "full",
                        "--out", tmp_path / "o.mid")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("qbdi improvise: error: ") and "1000" in lines[0]
    assert not (tmp_path / "o.mid").exists()


def test_train_refuses_another_grid(capsys, tmp_path):
    code, _, err = _run(capsys, "train", "--corpus", tmp_path, "--out", tmp_path / "m", "--steps-per-quarter", "5")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--steps-per-quarter '5' is not one of 4, 12" in lines[0]


def test_the_default_grid_stays_the_papers():
    assert RollSpec().steps_per_quarter == 4 and RollSpec().steps_per_frame == 16
    from qbdi_utils.cli import options

    assert corpus_options.grid_spec(type("A", (), {"steps_per_quarter": 4})()) == RollSpec()
    assert np.isclose(FINE.quarters_per_frame, RollSpec().quarters_per_frame)
