"""Tests of `qbdi analyze` (in-process through qbdi_utils.cli.main)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from qbdi_utils import dynamics, pianoroll, vmo_features
from qbdi_utils.cli import main

SPEC = pianoroll.RollSpec()
# I-vi-IV-V in C, one chord per beat (C E G / A C E / F A C / G B D), and a "B section" of other chords
PHRASE = [[48, 52, 55], [45, 48, 52], [41, 45, 48], [43, 47, 50]]
OTHER = [[50, 53, 57], [52, 55, 59], [53, 57, 60], [49, 53, 56], [47, 50, 54], [46, 50, 53], [44, 48, 51],
         [42, 46, 49]]


def _roll(chords):
    roll = np.zeros((4 * len(chords), SPEC.n_columns), np.uint8)
    for i, ch in enumerate(chords):
        for p in ch:
            roll[4 * i:4 * i + 4, p - SPEC.min_pitch] = 1
            roll[4 * i, SPEC.n_pitches + p - SPEC.min_pitch] = 1
    return roll


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """Bars: A A B1 A B2 (A = the 1-bar phrase, B = two different bars): A occurs 3x at bars 0, 1, 3."""
    chords = PHRASE + PHRASE + OTHER[:4] + PHRASE + OTHER[4:]
    path = tmp_path_factory.mktemp("song") / "song.mid"
    pianoroll.write_midi(_roll(chords), path, tempo_bpm=90.0, spec=SPEC)
    return path, chords


@pytest.fixture(autouse=True)
def only_analyze(monkeypatch):
    from qbdi_utils import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["analyze"])


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_analyze_prints_and_writes_matching_dynamics(capsys, tmp_path, song):
    path, chords = song
    out = tmp_path / "an"
    code, stdout, err = run(capsys, "analyze", "--midi", path, "--out", out)
    assert code == 0, err
    feats = vmo_features.chroma_features(_roll(chords), SPEC, "beat")
    d = vmo_features.pairwise_distances(feats)
    curve = dynamics.ir_curve(feats, dynamics.default_thresholds(d, 200))
    assert f"best threshold: {curve.best_threshold:.6g}" in stdout
    assert f"total IR: {curve.best_ir:.6g} bits" in stdout
    # the planted phrase: one bar, three times, in the 1st, 2nd and 4th bar (bars count from 1)
    assert "4 beats, 3x at bar 1, bar 2, bar 4" in stdout
    for f in ("ir_curve.csv", "ir_curve.png", "motifs.csv", "motifs.png"):
        assert (out / f).stat().st_size > 0
    with open(out / "ir_curve.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 200
    np.testing.assert_allclose([float(r["total_ir_bits"]) for r in rows], curve.ir, rtol=0, atol=0)
    with open(out / "motifs.csv") as f:
        spans = [tuple(int(r[k]) for k in ("start_bar", "start_beat", "end_bar", "end_beat"))
                 for r in csv.DictReader(f) if r["motif"] == "1"]
    assert spans == [(1, 1, 1, 4), (2, 1, 2, 4), (4, 1, 4, 4)]  # the whole bar, its 1st to 4th beat


def test_analyze_refuses_to_overwrite_then_force(capsys, tmp_path, song):
    path, _ = song
    out = tmp_path / "an"
    assert run(capsys, "analyze", "--midi", path, "--out", out)[0] == 0
    code, _, err = run(capsys, "analyze", "--midi", path, "--out", out)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qbdi analyze: error:") and "--force" in lines[0]
    assert run(capsys, "analyze", "--midi", path, "--out", out, "--force")[0] == 0


@pytest.mark.parametrize("argv_tail, needle", [
    (["--min-count", "1"], "--min-count"),
    (["--resolution", "bar"], "--resolution"),
    (["--thresholds", "x"], "--thresholds"),
])
def test_analyze_option_errors_are_one_line(capsys, tmp_path, song, argv_tail, needle):
    path, _ = song
    code, _, err = run(capsys, "analyze", "--midi", path, "--out", tmp_path / "o", *argv_tail)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err
    assert not (tmp_path / "o").exists()


def test_analyze_bad_files(capsys, tmp_path):
    code, _, err = run(capsys, "analyze", "--midi", tmp_path / "missing.mid", "--out", tmp_path / "o")
    assert code == 2 and "missing.mid" in err and len(err.strip().splitlines()) == 1
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"not a midi file")
    code, _, err = run(capsys, "analyze", "--midi", junk, "--out", tmp_path / "o")
    assert code == 2 and "junk.mid" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# issue 11, item 9: folders, --out forms, meter warning, bounds; outputs as one set

def _one_line(err):
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("qbdi analyze: error:") and "Traceback" not in err


def test_analyze_midi_folder_says_folder(capsys, tmp_path):
    code, _, err = run(capsys, "analyze", "--midi", tmp_path, "--out", tmp_path / "o")
    assert code == 2 and _one_line(err) and "is a folder" in err and "no such file" not in err


def test_analyze_out_with_trailing_slash_is_that_folder(capsys, tmp_path, song):
    path, _ = song
    code, _, err = run(capsys, "analyze", "--midi", path, "--out", f"{tmp_path / 'res'}/")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == sorted(
        ["ir_curve.csv", "ir_curve.png", "motifs.csv", "motifs.png"])


def test_analyze_out_empty_or_a_file(capsys, tmp_path, song):
    path, _ = song
    code, _, err = run(capsys, "analyze", "--midi", path, "--out", "")
    assert code == 2 and _one_line(err) and "--out is empty" in err
    f = tmp_path / "f"
    f.write_text("keep")
    for out in (f, f / "sub"):
        code, _, err = run(capsys, "analyze", "--midi", path, "--out", out)
        assert code == 2 and _one_line(err) and "is a file, not a folder" in err and str(f) in err
    assert f.read_text() == "keep" and sorted(tmp_path.iterdir()) == [f]


def test_analyze_counts_a_3_4_file_in_its_own_bars(capsys, tmp_path, song):
    # issue 25: no 4/4 warning any more; the 20 beats of the song are 6 2/3 bars of 3/4
    path, chords = song
    code, _, err = run(capsys, "analyze", "--midi", path, "--out", tmp_path / "a")
    assert code == 0 and err == ""
    waltz = tmp_path / "waltz.mid"
    pianoroll.write_midi(_roll(chords), waltz, tempo_bpm=90.0, spec=SPEC, time_signature=(3, 4))
    code, out, err = run(capsys, "analyze", "--midi", waltz, "--out", tmp_path / "b")
    assert code == 0 and err == ""
    assert f"{len(chords)} beats ({len(chords) / 3:g} bars)" in out


def test_analyze_thresholds_upper_bound(capsys, tmp_path, song):
    from qbdi_utils.cli.analyze import MAX_THRESHOLDS

    path, _ = song
    code, _, err = run(capsys, "analyze", "--midi", path, "--out", tmp_path / "o",
                       "--thresholds", MAX_THRESHOLDS + 1)
    assert code == 2 and _one_line(err) and f"more than {MAX_THRESHOLDS}" in err
    code, _, err = run(capsys, "analyze", "--midi", path, "--out", tmp_path / "o",
                       "--thresholds", "999999999999999999999999")
    assert code == 2 and _one_line(err)
    assert not (tmp_path / "o").exists()


def test_analyze_disk_full_on_a_plot_leaves_no_output(capsys, tmp_path, song, monkeypatch):
    import errno

    from matplotlib.figure import Figure

    path, _ = song
    real = Figure.savefig

    def savefig(self, fname, *a, **k):
        if "motifs" in str(fname):
            raise OSError(errno.ENOSPC, "No space left on device", str(fname))
        return real(self, fname, *a, **k)

    monkeypatch.setattr(Figure, "savefig", savefig)
    out = tmp_path / "new" / "an"
    code, _, err = run(capsys, "analyze", "--midi", path, "--out", out)
    assert code == 2 and _one_line(err) and "disk full" in err and str(out / "motifs.png") in err
    assert list(tmp_path.iterdir()) == []  # no partial set, no leftovers, not even the folders
