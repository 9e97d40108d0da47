"""Tests of `qbdi improvise` and `qbdi sweep` (in-process through qbdi_utils.cli.main)."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from qbdi_utils import pianoroll
from qbdi_utils.cli import main
from qbdi_utils.improvise import CLAIM_RATES


@pytest.fixture(scope="module")
def query_mid(chord_query_mid):
    """A 5-bar synthetic chord query at 100 bpm, written as MIDI."""
    return chord_query_mid(5)


@pytest.fixture
def model_dir(tiny_model):
    return tiny_model.info["model_dir"]


@pytest.fixture(autouse=True)
def only_our_commands(monkeypatch):
    """Register just this module's sub-commands, so these tests do not depend on the others'."""
    from qbdi_utils import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["improvise", "sweep"])


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"qbdi {command}: error: "), err
    return lines[0]


def test_improvise_writes_query_length_and_tempo_and_refuses_overwrite(capsys, tmp_path, model_dir, query_mid):
    out = tmp_path / "o.mid"
    code, stdout, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid,
                            "--bits", "256", "--out", out)
    assert code == 0, err
    assert "chords @ 256 bits" in stdout
    back = pianoroll.read_midi(out)
    query = pianoroll.read_midi(query_mid)
    assert back.n_steps == query.n_steps == 80
    assert back.tempo_bpm == pytest.approx(100.0, rel=1e-5)
    before = out.read_bytes()
    code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid,
                       "--bits", "full", "--out", out)
    assert code == 2
    assert "--force" in one_error_line(err, "improvise") and str(out) in err
    assert out.read_bytes() == before
    code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid,
                       "--bits", "full", "--out", out, "--force")
    assert code == 0, err


def test_same_seed_same_bytes(capsys, tmp_path, model_dir, query_mid):
    paths = [tmp_path / f"{i}.mid" for i in range(3)]
    for p, seed in zip(paths, (5, 5, 6)):
        code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid,
                           "--bits", "32", "--seed", seed, "--out", p)
        assert code == 0, err
    assert paths[0].read_bytes() == paths[1].read_bytes()


@pytest.mark.parametrize("bits", ["abc", "-5", "1.5", "", "12bits"])
def test_bad_bits_is_one_clear_line(capsys, tmp_path, model_dir, query_mid, bits):
    out = tmp_path / "o.mid"
    code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid,
                       "--bits", bits, "--out", out)
    assert code == 2
    assert "bit budget" in one_error_line(err, "improvise")
    assert not out.exists()


@pytest.mark.parametrize("option,value,needle", [
    ("--stats", "median", "--stats"),
    ("--seed", "x", "--seed"),
    ("--threshold", "2", "--threshold"),
])
def test_bad_options(capsys, tmp_path, model_dir, query_mid, option, value, needle):
    code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid,
                       "--bits", "full", "--out", tmp_path / "o.mid", option, value)
    assert code == 2
    assert needle in one_error_line(err, "improvise")


def test_missing_files(capsys, tmp_path, model_dir, query_mid):
    out = tmp_path / "o.mid"
    code, _, err = run(capsys, "improvise", "--model", tmp_path / "nope", "--query", query_mid,
                       "--bits", "full", "--out", out)
    assert code == 2 and "nope" in one_error_line(err, "improvise")
    code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", tmp_path / "none.mid",
                       "--bits", "full", "--out", out)
    assert code == 2 and "none.mid" in one_error_line(err, "improvise")
    not_midi = tmp_path / "text.mid"
    not_midi.write_text("hello")
    code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", not_midi,
                       "--bits", "full", "--out", out)
    assert code == 2 and "text.mid" in one_error_line(err, "improvise")
    empty_dir = tmp_path / "empty_model"
    empty_dir.mkdir()
    code, _, err = run(capsys, "improvise", "--model", empty_dir, "--query", query_mid,
                       "--bits", "full", "--out", out)
    assert code == 2 and "empty_model" in one_error_line(err, "improvise")
    assert not out.exists()


def test_other_meter_is_reported_not_refused(capsys, tmp_path, model_dir, tiny_model):
    spec = tiny_model.spec
    roll = np.zeros((48, spec.n_columns), np.uint8)
    roll[:, 60 - spec.min_pitch] = 1
    roll[::12, spec.n_pitches + 60 - spec.min_pitch] = 1
    q = pianoroll.write_midi(roll, tmp_path / "waltz.mid", time_signature=(3, 4), spec=spec)
    out = tmp_path / "o.mid"
    code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", q, "--bits", "full",
                       "--out", out)
    assert code == 0
    assert "warning" in err and "3/4" in err
    assert pianoroll.read_midi(out).n_steps == 48


def test_musicxml_and_wav(capsys, tmp_path, model_dir, query_mid):
    out, xml, wav = tmp_path / "o.mid", tmp_path / "o.musicxml", tmp_path / "o.wav"
    code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid, "--bits", "full",
                       "--out", out, "--musicxml", xml, "--wav", wav)
    assert code == 0, err
    assert xml.read_bytes().lstrip().startswith(b"<?xml") and b"score-partwise" in xml.read_bytes()
    assert wav.read_bytes()[:4] == b"RIFF"
    code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid, "--bits", "full",
                       "--out", tmp_path / "new.mid", "--wav", wav)
    assert code == 2 and "o.wav" in one_error_line(err, "improvise")
    assert not (tmp_path / "new.mid").exists()


def test_sweep_writes_each_distinct_output_once_and_prints_table_and_verdicts(capsys, tmp_path, model_dir,
                                                                              query_mid):
    out = tmp_path / "sweep"
    code, stdout, err = run(capsys, "sweep", "--model", model_dir, "--query", query_mid, "--out", out,
                            "--seeds", "2")
    assert code == 0, err
    mids = {p.name: p.read_bytes() for p in out.glob("*.mid")}
    for bits in CLAIM_RATES:
        tag = "full" if bits is None else f"{bits}bits"
        one, per_seed = f"chords_{tag}.mid", [f"chords_{tag}_seed{s}.mid" for s in range(2)]
        # either one file (the seeds agree) or one per seed, and then they differ
        assert (one in mids) != all(n in mids for n in per_seed), (tag, sorted(mids))
        if one not in mids:
            assert mids[per_seed[0]] != mids[per_seed[1]]
    assert "chords_full.mid" in mids  # full rate has no channel noise: one file, not one per seed
    # ... holding what `qbdi improvise --bits full` writes with any seed
    code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid, "--bits", "full",
                       "--seed", "9", "--out", tmp_path / "full.mid")
    assert code == 0, err
    assert (tmp_path / "full.mid").read_bytes() == mids["chords_full.mid"]
    with open(out / "claims.csv") as fh:
        reader = csv.DictReader(fh)
        rows, header = list(reader), reader.fieldnames
    assert [r["rate"] for r in rows][:2] == ["query", "full rate"] and len(rows) == 1 + len(CLAIM_RATES)
    assert len(set(header)) == len(header)
    # one meaning of "chance": each row's output against the query's bars shuffled
    assert [h for h in header if "chance" in h] == [h for h in header if h.endswith("_vs_shuffled_query")] != []
    assert float(rows[0]["chroma_cosine_with_query"]) == pytest.approx(1.0)
    assert "full rate" in stdout and "fit corpus" in stdout
    verdicts = [line for line in stdout.splitlines() if line.startswith("claim: ")]
    assert len(verdicts) == 5
    assert all(re.match(r"claim: .+: (yes|partly|NO) \(.+\)$", line) for line in verdicts), verdicts
    # refuses a non-empty directory without --force
    code, _, err = run(capsys, "sweep", "--model", model_dir, "--query", query_mid, "--out", out)
    assert code == 2 and "--force" in one_error_line(err, "sweep")
    code, _, err = run(capsys, "sweep", "--model", model_dir, "--query", query_mid, "--out", out,
                       "--seeds", "0")
    assert code == 2 and "--seeds" in one_error_line(err, "sweep")


def test_without_model_uses_the_default_model(capsys, tmp_path, query_mid, tiny_model, monkeypatch):
    # --model omitted: the CLI must ask training.default_model() (which loads or trains models/default);
    # the tiny model stands in for it so the test does not train the paper's model.
    from qbdi_utils import training

    calls = []

    def fake_default_model(progress=True):
        calls.append(progress)
        return tiny_model

    monkeypatch.setattr(training, "default_model", fake_default_model)
    out = tmp_path / "out.mid"
    code, _, err = run(capsys, "improvise", "--query", query_mid, "--bits", "8", "--out", out)
    assert code == 0, err
    assert calls == [True]
    assert pianoroll.read_midi(out, allow_empty=True).n_steps == pianoroll.read_midi(query_mid).n_steps


def test_output_set_is_all_or_nothing_when_the_commit_fails(capsys, tmp_path, model_dir, query_mid, monkeypatch):
    """A fault after the MIDI was moved into place (a full disk, say) takes the MIDI back out."""
    import errno
    import os

    from qbdi_utils import files

    def fail_after_first(stage):
        if stage == "committed-one":
            raise OSError(errno.ENOSPC, "No space left on device")

    out, wav = tmp_path / "o.mid", tmp_path / "o.wav"
    monkeypatch.setattr(files.atomic, "stage_hook", fail_after_first)
    code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid, "--bits", "8",
                       "--threshold", "0.9", "--out", out, "--wav", wav)
    line = one_error_line(err, "improvise")
    assert code == 2 and "disk full" in line and str(out) in line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv, needle", [
    (["--out", "o.txt"], "--out o.txt: writes MIDI only"),
    (["--out", "o.mid", "--wav", "o.mp3"], "--wav o.mp3: writes WAV audio only"),
    (["--out", "o.mid", "--musicxml", "o.mxl"], "--musicxml o.mxl: writes uncompressed MusicXML only"),
    (["--out", "o.mid", "--seed", "4294967296"], "--seed 4294967296 is more than 4294967295"),
    (["--out", "d/"], "--out d/ names a folder"),
])
def test_output_names_and_bounds_are_checked_before_the_model(capsys, tmp_path, query_mid, argv, needle,
                                                              monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty-model").mkdir()
    code, _, err = run(capsys, "improvise", "--model", tmp_path / "empty-model", "--query", query_mid,
                       "--bits", "8", *argv)
    # loading the empty model folder would be a "corrupt model" error if the options came after it
    assert code == 2 and needle in one_error_line(err, "improvise")
    assert os.listdir(tmp_path) == ["empty-model"]


def test_improvise_prints_the_fidelity_line(capsys, tmp_path, model_dir, query_mid):
    code, stdout, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid,
                            "--bits", "full", "--out", tmp_path / "o.mid")
    assert code == 0, err
    line = [s for s in stdout.splitlines() if s.startswith("fidelity: ")]
    assert len(line) == 1 and "chroma cosine" in line[0] and "fit corpus" in line[0] and "onsets/bar" in line[0]
    # the tiny model records no corpus: said once on stderr, the corpus side is nan
    assert "no corpus to compare the style with" in err and "fit corpus nan" in line[0]
    # held notes: the output's sounding cells and note length beside the query's (corpus side nan)
    assert "held: sounding/bar " in line[0] and "note length " in line[0] and "corpus nan)" in line[0]


def test_sweep_csv_has_the_style_columns_as_numbers(capsys, tmp_path, model_dir, query_mid, monkeypatch):
    from qbdi_utils import style
    from qbdi_utils.model import synthetic_frames

    ref = style.frames_descriptors(synthetic_frames(30, seed=2))
    monkeypatch.setattr(style, "corpus_reference", lambda model, corpus: ref)
    out = tmp_path / "sweep"
    code, stdout, err = run(capsys, "sweep", "--model", model_dir, "--query", query_mid, "--out", out, "--seeds", "1")
    assert code == 0, err
    with open(out / "claims.csv") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows[1:]:
        for k in ("style_fit_corpus", "style_fit_query", "onsets_per_bar", "empty_bar_rate",
                  "sounding_cells_per_bar", "mean_note_length_steps"):
            assert np.isfinite(float(r[k])), (r["rate"], k)
    assert float(rows[0]["style_fit_query"]) == pytest.approx(1.0)
    assert "fit corpus" in stdout and "full rate" in stdout and "sounding/bar" in stdout
    # the query row describes the query itself: its sounding cells per bar counted from its roll
    from qbdi_utils import pianoroll
    q = pianoroll.read_midi(query_mid)
    d = style.bar_descriptors(q)
    want = float((q.roll[:, :q.spec.n_pitches] != 0).sum()) / d.n_bars
    assert float(rows[0]["sounding_cells_per_bar"]) == pytest.approx(want, abs=1e-4)


def test_decode_paper_is_the_default_and_floor_needs_the_models_corpus(capsys, tmp_path, model_dir, query_mid):
    base = ["improvise", "--model", model_dir, "--query", query_mid, "--bits", "64"]
    code, _, err = run(capsys, *base, "--out", tmp_path / "default.mid")
    assert code == 0, err
    code, _, err = run(capsys, *base, "--decode", "paper", "--out", tmp_path / "paper.mid")
    assert code == 0, err
    assert (tmp_path / "paper.mid").read_bytes() == (tmp_path / "default.mid").read_bytes()
    # the tiny model was trained on synthetic frames: it records no corpus to take typical bars from
    code, _, err = run(capsys, *base, "--decode", "floor", "--out", tmp_path / "floor.mid")
    assert code == 2
    assert "corpus" in one_error_line(err, "improvise")
    assert not (tmp_path / "floor.mid").exists()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in base] + ["--decode", "blur", "--out", str(tmp_path / "x.mid")])
    assert exc.value.code == 2
    capsys.readouterr()


def test_decode_floor_loads_the_models_corpus_once(capsys, tmp_path, query_mid, monkeypatch):
    """--decode floor takes the training bars and the fidelity line its style reference from one load of
    the corpus the model records (the reference's cache cold); with the reference cached, --decode paper
    loads nothing and --decode floor once."""
    import functools

    from qbdi_utils import corpus as corpus_mod
    from qbdi_utils import training
    from qbdi_utils.model import PRESETS, synthetic_frames

    monkeypatch.setenv("QBDI_CACHE_DIR", str(tmp_path / "cache"))
    spec = pianoroll.RollSpec()
    folder = tmp_path / "pieces"
    folder.mkdir()
    for i in range(10):
        roll = pianoroll.make_valid(pianoroll.from_frames(synthetic_frames(6, seed=30 + i), spec), spec)
        pianoroll.write_midi(roll, folder / f"p{i}.mid", spec=spec)
    corp = corpus_mod.load_corpus(str(folder), spec=spec, progress=False)
    model, _ = training.train(corp.frames, spec=spec, groups=corp.piece_index, progress=False,
                              config=PRESETS["paper"].replace(input_dim=spec.frame_size, hidden_dim=16,
                                                              latent_dim=4, epochs=1))
    training.record_corpus(model, str(folder), corp)
    model.save(tmp_path / "m")
    loads = []
    real = corpus_mod.load_corpus
    monkeypatch.setattr(corpus_mod, "load_corpus",
                        functools.wraps(real)(lambda *a, **k: loads.append(a[0] if a else k) or real(*a, **k)))
    base = ["improvise", "--model", tmp_path / "m", "--query", query_mid, "--bits", "64"]
    for decode, want in (("floor", 1), ("paper", 0), ("floor", 1)):
        loads.clear()
        code, stdout, err = run(capsys, *base, "--decode", decode, "--out", tmp_path / f"{decode}.mid", "--force")
        assert code == 0, err
        assert "fidelity: " in stdout and "no corpus to compare" not in err
        assert loads == [str(folder.resolve())] * want, (decode, loads)
