"""`--key corpus|query` of `qbdi improvise`, `navigate` and `sweep`: a query heard in the corpus's key.

The queries are written here with mido (a C major progression, and the same moved up a semitone);
the model is trained on a small folder corpus, so it records ``transpose="tonic"`` as the chorales do.
"""

from __future__ import annotations

import csv

import mido
import numpy as np
import pytest

from qbdi_utils import pianoroll
from qbdi_utils.cli import main
from qbdi_utils.harmony import estimate_key

# I IV V I vi IV V I in C: bass and triad, one 4/4 bar each
PROGRESSION = [(48, 60, 64, 67), (53, 60, 65, 69), (43, 59, 62, 67), (48, 60, 64, 67),
               (45, 60, 64, 69), (53, 60, 65, 69), (43, 59, 62, 67), (48, 60, 64, 67)]
TPB = 96


def write_progression(path, semitones: int) -> str:
    """The progression moved by ``semitones`` as a type-0 MIDI file at 100 bpm, velocity 72."""
    mid = mido.MidiFile(type=0, ticks_per_beat=TPB)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0))
    tr.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    for chord in PROGRESSION:
        for p in chord:
            tr.append(mido.Message("note_on", note=p + semitones, velocity=72, time=0))
        for i, p in enumerate(chord):
            tr.append(mido.Message("note_off", note=p + semitones, velocity=0, time=4 * TPB if i == 0 else 0))
    mid.save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def queries(tmp_path_factory):
    d = tmp_path_factory.mktemp("key_queries")
    return {"C#": write_progression(d / "prog_cs.mid", 1), "C": write_progression(d / "prog_c.mid", 0)}


@pytest.fixture(scope="module")
def tonic_model(tmp_path_factory):
    """A small model trained on a folder corpus loaded with the default transpose="tonic" (recorded)."""
    from qbdi_utils import corpus as corpus_mod
    from qbdi_utils import training
    from qbdi_utils.model import PRESETS, synthetic_frames

    spec = pianoroll.RollSpec()
    folder = tmp_path_factory.mktemp("key_corpus")
    for i in range(8):
        roll = pianoroll.make_valid(pianoroll.from_frames(synthetic_frames(6, seed=50 + i), spec), spec)
        pianoroll.write_midi(roll, folder / f"p{i}.mid", spec=spec)
    corp = corpus_mod.load_corpus(str(folder), spec=spec, progress=False)
    assert corp.options["transpose"] == "tonic"
    model, _ = training.train(corp.frames, spec=spec, groups=corp.piece_index, progress=False, seed=0,
                              config=PRESETS["paper"].replace(input_dim=spec.frame_size, hidden_dim=32,
                                                              latent_dim=8, epochs=2))
    training.record_corpus(model, str(folder), corp)
    out = tmp_path_factory.mktemp("key_model")
    model.save(out)
    return str(out)


@pytest.fixture(autouse=True)
def only_our_commands(monkeypatch):
    from qbdi_utils import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["improvise", "navigate", "sweep"])


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def key_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("key: ")]


def fidelity(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("fidelity: "))


def shifted_up(path):
    """The roll and velocities of a written output moved up a semitone, as the expected output in the
    other key, and the notes folded: pianoroll.transpose_roll, and the top pitch (F7 -> F#7, out of
    range) put an octave lower, F#6, by hand."""
    piece = pianoroll.read_midi(path, allow_empty=True)
    spec = piece.spec
    n, top = spec.n_pitches, spec.n_pitches - 1
    roll, lost = pianoroll.transpose_roll(piece.roll, 1, spec)
    assert lost == int(piece.roll[:, n + top].sum())
    for plane in (0, n):
        roll[:, plane + top + 1 - 12] |= piece.roll[:, plane + top]
    vel = piece.velocities.copy()
    vel[:, 1] += 1
    vel[vel[:, 1] > spec.max_pitch, 1] -= 12
    return roll, np.unique(vel, axis=0), lost  # a folded onset on one of the same pitch: one note


def folded_note(lost: int) -> str:
    return f" ({lost} of the outputs' notes folded by an octave to stay within the roll's range)" if lost else ""


def test_queries_are_in_the_keys_they_claim(queries):
    assert estimate_key(pianoroll.read_midi(queries["C#"]))[:2] == (1, "major")
    assert estimate_key(pianoroll.read_midi(queries["C"]))[:2] == (0, "major")


@pytest.mark.parametrize("bits", ["full", "64"])
def test_key_corpus_is_the_c_output_moved_back_to_the_querys_key(capsys, tmp_path, tonic_model, queries, bits):
    cs, c = tmp_path / "cs.mid", tmp_path / "c.mid"
    code, out_cs, err = run(capsys, "improvise", "--model", tonic_model, "--query", queries["C#"], "--bits", bits,
                            "--out", cs)
    assert code == 0, err
    code, out_c, err = run(capsys, "improvise", "--model", tonic_model, "--query", queries["C"], "--bits", bits,
                           "--key", "query", "--out", c)
    assert code == 0, err
    assert key_lines(out_c) == []
    roll, vel, lost = shifted_up(c)
    assert key_lines(out_cs) == ["key: query moved -1 semitones (C# major) to the corpus's key (C major); "
                                 "outputs written back in C# major" + folded_note(lost)]
    got = pianoroll.read_midi(cs, allow_empty=True)
    assert got.roll.any()
    assert got.roll.tobytes() == roll.tobytes()
    np.testing.assert_array_equal(np.unique(got.velocities, axis=0), vel)
    assert len(np.unique(got.velocities[:, :2], axis=0)) == len(got.velocities)
    # the output sits a semitone above the C run's, as the query does (this untrained model's output
    # has no clear key of its own; the default model's outputs are checked in the README's numbers)
    key_c, key_cs = estimate_key(pianoroll.read_midi(c, allow_empty=True).roll), estimate_key(got.roll)
    assert (key_cs.tonic, key_cs.mode) == ((key_c.tonic + 1) % 12, key_c.mode)
    # measured in the corpus's key, both runs are one comparison
    assert fidelity(out_cs) == fidelity(out_c)


def test_key_query_is_todays_pipeline(capsys, tmp_path, tonic_model, queries):
    """--key query: the bytes of improvise on the query as read, performed and written as before."""
    from qbdi_utils import performance
    from qbdi_utils.cli.outputs import midi_bytes
    from qbdi_utils.improvise import improvise
    from qbdi_utils.model import StyleVAE

    out = tmp_path / "q.mid"
    code, stdout, err = run(capsys, "improvise", "--model", tonic_model, "--query", queries["C#"], "--bits", "64",
                            "--seed", "3", "--key", "query", "--out", out)
    assert code == 0, err
    assert key_lines(stdout) == []
    model = StyleVAE.load(tonic_model)
    query = pianoroll.read_midi(queries["C#"], model.spec)
    piece = improvise(model, query, 64, seed=3)
    performance.perform(piece, query, "query")
    assert out.read_bytes() == midi_bytes(piece)


def test_a_model_recording_no_corpus_is_not_moved(capsys, tmp_path, tiny_model, queries):
    model_dir = tiny_model.info["model_dir"]
    outs = {}
    for key in ("corpus", "query"):
        outs[key] = tmp_path / f"{key}.mid"
        code, stdout, err = run(capsys, "improvise", "--model", model_dir, "--query", queries["C#"], "--bits", "full",
                                "--key", key, "--out", outs[key])
        assert code == 0, err
        assert key_lines(stdout) == []
    assert outs["corpus"].read_bytes() == outs["query"].read_bytes()


def test_quiet_says_nothing_about_the_key(capsys, tmp_path, tonic_model, queries):
    code, stdout, err = run(capsys, "improvise", "--model", tonic_model, "--query", queries["C#"], "--bits", "full",
                            "--out", tmp_path / "o.mid", "--quiet")
    assert code == 0, err
    assert key_lines(stdout) == [] and "fidelity: " in stdout


@pytest.mark.parametrize("command", ["improvise", "navigate", "sweep"])
def test_bad_key_is_one_line(capsys, tmp_path, queries, command):
    extra = {"improvise": ["--bits", "full"], "navigate": ["--source", "query"], "sweep": []}[command]
    out = tmp_path / ("o" if command == "sweep" else "o.mid")
    code, _, err = run(capsys, command, "--query", queries["C#"], *extra, "--key", "tonic", "--out", out)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"qbdi {command}: error: --key 'tonic' is not one of corpus, query")
    assert not out.exists()


def test_navigate_key_corpus_moves_back_what_it_walked_in_c(capsys, tmp_path, tonic_model, queries):
    cs, c = tmp_path / "cs.mid", tmp_path / "c.mid"
    base = ["navigate", "--model", tonic_model, "--source", "query", "--continuity", "0.5", "--seed", "2"]
    code, out_cs, err = run(capsys, *base, "--query", queries["C#"], "--out", cs)
    assert code == 0, err
    assert len(key_lines(out_cs)) == 1
    code, out_c, err = run(capsys, *base, "--query", queries["C"], "--key", "query", "--out", c)
    assert code == 0, err
    roll, _, _ = shifted_up(c)
    assert pianoroll.read_midi(cs, allow_empty=True).roll.tobytes() == roll.tobytes()
    assert cs.with_suffix(".json").read_text().replace("prog_cs", "prog_c") == c.with_suffix(".json").read_text()
    assert fidelity(out_cs) == fidelity(out_c)


def test_sweep_measures_in_the_corpus_key_and_writes_in_the_querys(capsys, tmp_path, tonic_model, queries):
    dirs = {"C#": tmp_path / "cs", "C": tmp_path / "c"}
    code, out_cs, err = run(capsys, "sweep", "--model", tonic_model, "--query", queries["C#"], "--seeds", "1",
                            "--out", dirs["C#"])
    assert code == 0, err
    assert len(key_lines(out_cs)) == 1
    code, out_c, err = run(capsys, "sweep", "--model", tonic_model, "--query", queries["C"], "--seeds", "1",
                           "--key", "query", "--out", dirs["C"])
    assert code == 0, err
    tables = {k: list(csv.DictReader(open(d / "claims.csv"))) for k, d in dirs.items()}
    assert tables["C#"] == tables["C"]
    names = sorted(p.name.replace("prog_c", "") for p in dirs["C"].glob("*.mid"))
    assert names == sorted(p.name.replace("prog_cs", "") for p in dirs["C#"].glob("*.mid")) and names
    for p in dirs["C"].glob("*.mid"):
        roll, _, _ = shifted_up(p)
        got = pianoroll.read_midi(dirs["C#"] / p.name.replace("prog_c", "prog_cs"), allow_empty=True)
        assert got.roll.tobytes() == roll.tobytes(), p.name
