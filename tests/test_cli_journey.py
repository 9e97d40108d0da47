"""The command-line user journey of issue 26, each command run as a user runs it: a subprocess.

A small "pop" corpus of four-chord clips in known keys (C, D, F, A flat) plus one waltz is trained once
by ``qbdi train``; then evaluate, improvise, sweep, navigate and analyze are run on it and their printed
lines checked: the model's own corpus by default and a gone corpus in one line, silent outputs
warned with the alternative, warnings once and ``--quiet``, command-line wording, the transposition
report, bars counted from 1, and analyze overlaying several files. Every command but ``train`` runs with
a ``tensorflow`` and a ``keras`` first on the path that raise when imported: only training imports them.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from qbdi_utils import pianoroll

SPEC = pianoroll.RollSpec()
ROOT = Path(__file__).resolve().parents[1]
# I - vi - IV - V - I - IV - V - I in C, as (root, third, fifth) above C3 = 48
PROGRESSION = [(0, 4, 7), (9, 12, 16), (5, 9, 12), (7, 11, 14), (0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7)]
# keys the clips are written in, and the shift that takes each to tonic C (the smallest, ties down)
KEYS = {"C": (0, 0), "D": (2, -2), "F": (5, -5), "Ab": (8, 4)}
LONG_WARNING = "more than the longest training piece"
POISON = "raise RuntimeError('{} was imported by a command that only runs a saved model')\n"


def _no_tensorflow() -> Path:
    """A folder holding a ``tensorflow`` and a ``keras`` package that raise RuntimeError when imported
    (not ImportError, which an optional import would catch); made once per process."""
    here = Path(tempfile.gettempdir()) / f"qbdi-no-tf-{os.getpid()}"
    for name in ("tensorflow", "keras"):
        (here / name).mkdir(parents=True, exist_ok=True)
        (here / name / "__init__.py").write_text(POISON.format(name))
    return here


def qbdi(*argv, check: bool | None = True) -> subprocess.CompletedProcess:
    """Run ``python -m qbdi_utils.cli ARGV`` in a fresh process (one thread); check=True: exit 0.
    Every command but ``train`` runs with TensorFlow and Keras unimportable (:func:`_no_tensorflow`)."""
    first = [str(_no_tensorflow())] if str(argv[0]) != "train" else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(first + [str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
           "TF_NUM_INTEROP_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "qbdi_utils.cli", *map(str, argv)], capture_output=True,
                         text=True, env=env, timeout=900)
    if check:
        assert res.returncode == 0, res.stderr
    return res


def one_error_line(res, command: str) -> str:
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"qbdi {command}: error: "), res.stderr
    return lines[0]


def warnings_of(res) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ": warning: " in ln]


def _clip(shift: int, n_bars: int = 8, seed: int = 0) -> np.ndarray:
    """Block chords of PROGRESSION moved by ``shift`` semitones, a passing melody note on beat 3."""
    rng = np.random.default_rng(seed)
    roll = np.zeros((16 * n_bars, SPEC.n_columns), np.uint8)
    for b in range(n_bars):
        chord = [48 + shift + p for p in PROGRESSION[b % len(PROGRESSION)]]
        top = chord[-1] + 12 + int(rng.choice([0, 2, 4]))
        for p, start, length in [(q, 0, 16) for q in chord] + [(top, 8, 8)]:
            roll[16 * b + start:16 * b + start + length, p - SPEC.min_pitch] = 1
            roll[16 * b + start, SPEC.n_pitches + p - SPEC.min_pitch] = 1
    return roll


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    """A trained model of a small pop corpus, its corpus folder, and a 12-bar query (longer than any clip)."""
    base = tmp_path_factory.mktemp("journey")
    pop = base / "pop"
    pop.mkdir()
    for name, (shift, _) in KEYS.items():
        for k in range(2):
            pianoroll.write_midi(_clip(shift, seed=k), pop / f"{name}_{k}.mid", tempo_bpm=110.0, spec=SPEC)
    pianoroll.write_midi(_clip(0)[:48 * 2], pop / "waltz.mid", tempo_bpm=110.0, spec=SPEC, time_signature=(3, 4))
    query = pianoroll.write_midi(_clip(3, n_bars=12, seed=5), base / "song.mid", tempo_bpm=96.0, spec=SPEC)
    model = base / "mine"
    train = qbdi("train", "--corpus", pop, "--out", model, "--meter", "4/4", "--epochs", "8", "--hidden-dim", "64",
                 "--latent-dim", "16")
    return {"base": base, "pop": pop, "query": query, "model": model, "train": train}


def test_only_train_imports_tensorflow(journey, tmp_path):
    """The poison works (a command importing TensorFlow or Keras would fail), and the commands no other
    test here runs -- frames, info, live on a file -- run without them too."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_no_tensorflow()), str(ROOT)])}
    for name in ("tensorflow", "keras"):
        r = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, capture_output=True, text=True)
        assert r.returncode != 0 and f"RuntimeError: {name} was imported" in r.stderr
    assert "frames" in qbdi("frames", journey["query"]).stdout
    assert '"inference": "numpy"' in qbdi("info", "--json").stdout
    out = tmp_path / "live.mid"
    qbdi("live", "--model", journey["model"], "--in", journey["query"], "--out", out, "--speed", "0",
         "--bits", "64", "--osc-port", "off")
    assert out.stat().st_size > 0


def test_train_reports_skips_in_cli_terms_and_the_transposition(journey):
    err = journey["train"].stderr
    assert "waltz.mid" in err and "--meter any" in err and "meter=None" not in err
    moved = [ln for ln in err.splitlines() if ln.startswith("moved every piece to tonic C")]
    assert len(moved) == 1, err
    expected = ", ".join(f"{s:+d} ({n})" if s else f"0 ({n})"
                         for s, n in sorted(((s, 2) for _, s in KEYS.values()), reverse=True))
    assert f"8 pieces shifted by {expected} semitones" in moved[0], moved[0]


def test_evaluate_defaults_to_the_models_corpus_and_names_a_gone_one(journey, tmp_path):
    res = qbdi("evaluate", "--model", journey["model"])
    assert f"frames of {journey['pop'].resolve()}" in res.stderr
    assert "not the corpus the model was trained on" not in res.stderr
    assert "note F1 = " in res.stdout
    moved = tmp_path / "pop_moved"
    shutil.copytree(journey["pop"], moved)
    hidden = journey["base"] / "pop_hidden"
    journey["pop"].rename(hidden)
    try:
        gone = qbdi("evaluate", "--model", journey["model"], check=False)
        line = one_error_line(gone, "evaluate")
        assert str(journey["pop"].resolve()) in line and "--corpus" in line
        assert "parsing" not in gone.stderr  # it stopped before reading any corpus
        again = qbdi("evaluate", "--model", journey["model"], "--corpus", moved, "--json")
        assert json.loads(again.stdout)["corpus"] == str(moved)
    finally:
        hidden.rename(journey["pop"])


def test_improvise_warns_once_prints_fidelity_and_quiet_silences(journey, tmp_path):
    res = qbdi("improvise", "--model", journey["model"], "--query", journey["query"], "--bits", "64",
               "--out", tmp_path / "a.mid")
    assert [ln for ln in res.stdout.splitlines() if ln.startswith("fidelity: query: chroma cosine")], res.stdout
    long = [w for w in warnings_of(res) if LONG_WARNING in w]
    assert len(long) == 1 and long[0].startswith("qbdi improvise: warning: song has 12 frames"), res.stderr
    quiet = qbdi("improvise", "--model", journey["model"], "--query", journey["query"], "--bits", "64",
                 "--out", tmp_path / "b.mid", "--quiet")
    assert "warning" not in quiet.stderr and "fidelity: " in quiet.stdout
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    exists = qbdi("improvise", "--model", journey["model"], "--query", journey["query"], "--bits", "64",
                  "--out", tmp_path / "a.mid", check=False)
    line = one_error_line(exists, "improvise")
    assert "--force" in line and "force=True" not in line


def test_a_silent_output_is_a_warning_naming_cause_and_alternative(journey, tmp_path):
    out = tmp_path / "silent.mid"
    res = qbdi("improvise", "--model", journey["model"], "--query", journey["query"], "--bits", "0",
               "--threshold", "0.999999", "--out", out, "--quiet")
    assert "warning" not in res.stderr  # --quiet silences this one too
    res = qbdi("improvise", "--model", journey["model"], "--query", journey["query"], "--bits", "0",
               "--threshold", "0.999999", "--out", out, "--force")
    assert pianoroll.read_midi(out, allow_empty=True).roll.sum() == 0  # the case: nothing above the threshold
    silent = [w for w in warnings_of(res) if "no notes" in w]
    # the cause here is the threshold the user gave, and the warning says so
    assert len(silent) == 1 and "--threshold 0.999999" in silent[0] and "lower --threshold" in silent[0], res.stderr
    # a low threshold sounds: no such warning
    res = qbdi("improvise", "--model", journey["model"], "--query", journey["query"], "--bits", "full",
               "--threshold", "0.01", "--out", tmp_path / "loud.mid")
    assert not [w for w in warnings_of(res) if "silent" in w or "no notes" in w], res.stderr


def test_sweep_and_navigate_on_the_users_model(journey, tmp_path):
    res = qbdi("sweep", "--model", journey["model"], "--query", journey["query"], "--out", tmp_path / "sw",
               "--seeds", "2")
    assert len([w for w in warnings_of(res) if LONG_WARNING in w]) == 1, res.stderr
    assert "no corpus to compare" not in res.stderr  # the model's own corpus gave the style side
    assert len([ln for ln in res.stdout.splitlines() if ln.startswith("claim: ")]) == 5
    names = sorted(p.name for p in (tmp_path / "sw").glob("*.mid"))
    assert "song_full.mid" in names and not any(n.startswith("song_full_seed") for n in names)
    with open(tmp_path / "sw" / "claims.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert all(np.isfinite(float(r["style_fit_corpus"])) for r in rows)
    nav = qbdi("navigate", "--model", journey["model"], "--query", journey["query"], "--source", "corpus",
               "--out", tmp_path / "nav.mid")
    assert "fidelity: query: chroma cosine" in nav.stdout
    rec = json.loads((tmp_path / "nav.json").read_text())
    assert [b["bar"] for b in rec["bars"]] == list(range(1, 13))
    assert all(1 <= b["piece_bar"] <= 8 for b in rec["bars"])  # clips of 8 bars, counted from 1


def test_analyze_overlays_several_files_with_bars_from_1(journey, tmp_path):
    a = pianoroll.write_midi(np.concatenate([_clip(0, 4)] * 2), tmp_path / "twice.mid", tempo_bpm=100.0, spec=SPEC)
    res = qbdi("analyze", "--midi", journey["query"], a, "--out", tmp_path / "an", "--thresholds", "40")
    assert res.stdout.startswith("song.mid: ") and "\ntwice.mid: " in res.stdout
    with open(tmp_path / "an" / "ir_curve.csv") as fh:
        files_in = [r["file"] for r in csv.DictReader(fh)]
    assert files_in.count("song") == 40 and files_in.count("twice") == 40
    with open(tmp_path / "an" / "motifs.csv") as fh:
        motifs = [r for r in csv.DictReader(fh) if r["file"] == "twice"]
    # the 4-bar clip played twice: its longest motif is the whole clip, at bars 1-4 and 5-8
    first = [(int(r["start_bar"]), int(r["end_bar"])) for r in motifs if r["motif"] == "1"]
    assert first == [(1, 4), (5, 8)], motifs[:4]
    assert "bars 1-4, bars 5-8" in res.stdout
    assert (tmp_path / "an" / "motifs.png").stat().st_size > 0
