"""Tests of `qbdi navigate` (in-process through qbdi_utils.cli.main)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qbdi_utils import pianoroll
from qbdi_utils.cli import main


@pytest.fixture(scope="module")
def query_mid(chord_query_mid):
    """A 8-bar synthetic chord query at 100 bpm, written as MIDI."""
    return chord_query_mid(8)


@pytest.fixture
def model_dir(tiny_model):
    return tiny_model.info["model_dir"]


@pytest.fixture(autouse=True)
def only_our_commands(monkeypatch):
    """Register just the sub-commands these tests use."""
    from qbdi_utils import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["improvise", "train", "navigate"])


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("qbdi navigate: error: "), err
    return lines[0]


def test_continuity_one_writes_the_same_midi_as_improvise(capsys, tmp_path, model_dir, query_mid):
    for bits, stats, seed in (("full", "query", 0), ("64", "corpus", 3), ("0", "query", 1)):
        a, b = tmp_path / f"nav{bits}.mid", tmp_path / f"imp{bits}.mid"
        code, _, err = run(capsys, "navigate", "--model", model_dir, "--query", query_mid, "--source", "query",
                           "--continuity", "1", "--bits", bits, "--stats", stats, "--seed", seed, "--out", a)
        assert code == 0, err
        code, _, err = run(capsys, "improvise", "--model", model_dir, "--query", query_mid, "--bits", bits,
                           "--stats", stats, "--seed", seed, "--out", b)
        assert code == 0, err
        assert a.read_bytes() == b.read_bytes()
        rec = json.loads(a.with_suffix(".json").read_text())
        assert [r["piece_bar"] for r in rec["bars"]] == list(range(1, 9))  # bars count from 1
        assert [r["bar"] for r in rec["bars"]] == list(range(1, 9))
        assert not any(r["jump"] for r in rec["bars"]) and rec["n_jumps"] == 0


def test_json_path_and_same_seed_same_bytes(capsys, tmp_path, model_dir, query_mid):
    outs = [tmp_path / f"{i}.mid" for i in range(3)]
    for out, seed in zip(outs, (7, 7, 8)):
        code, stdout, err = run(capsys, "navigate", "--model", model_dir, "--query", query_mid, "--source", "query",
                                "--continuity", "0.3", "--min-context", "0", "--bits", "32", "--seed", seed,
                                "--out", out)
        assert code == 0, err
        assert "jumps" in stdout
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert outs[0].with_suffix(".json").read_bytes() == outs[1].with_suffix(".json").read_bytes()
    rec = json.loads(outs[0].with_suffix(".json").read_text())
    assert rec["source"] == "query" and rec["continuity"] == 0.3 and rec["bits"] == 32 and rec["seed"] == 7
    assert len(rec["bars"]) == 8 and rec["bars"][0]["piece"] == "chords"
    # a bar that is not a jump follows the previous bar of the query
    for prev, now in zip(rec["bars"], rec["bars"][1:]):
        if not now["jump"]:
            assert now["piece_bar"] == prev["piece_bar"] + 1
    assert pianoroll.read_midi(outs[0]).n_steps == pianoroll.read_midi(query_mid).n_steps


def test_refuses_existing_outputs_including_the_json(capsys, tmp_path, model_dir, query_mid):
    out = tmp_path / "o.mid"
    out.with_suffix(".json").write_text("{}")
    code, _, err = run(capsys, "navigate", "--model", model_dir, "--query", query_mid, "--source", "query",
                       "--out", out)
    assert code == 2 and "--force" in one_error_line(err)
    assert not out.exists() and out.with_suffix(".json").read_text() == "{}"
    code, _, err = run(capsys, "navigate", "--model", model_dir, "--query", query_mid, "--source", "query",
                       "--out", out, "--force")
    assert code == 0, err
    assert json.loads(out.with_suffix(".json").read_text())["n_bars"] == 8


@pytest.mark.parametrize("extra, words", [
    (["--source", "query", "--continuity", "1.5"], "outside [0, 1]"),
    (["--source", "query", "--continuity", "-0.1"], "outside [0, 1]"),
    (["--source", "query", "--continuity", "often"], "not a number"),
    (["--source", "query", "--min-context", "-1"], "negative"),
    (["--source", "query", "--min-context", "1.5"], "whole number"),
    (["--source", "elsewhere"], "not one of"),
    (["--source", "corpus", "--continuity", "0.5"], "--source query only"),
    (["--source", "query", "--bits", "-3"], "negative"),
    (["--source", "query", "--stats", "mood"], "not one of"),
    (["--source", "corpus"], "does not record"),  # the tiny model was not trained by `qbdi train`
])
def test_bad_values_one_line_exit_2(capsys, tmp_path, model_dir, query_mid, extra, words):
    out = tmp_path / "bad.mid"
    code, _, err = run(capsys, "navigate", "--model", model_dir, "--query", query_mid, *extra, "--out", out)
    assert code == 2
    assert words in one_error_line(err)
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_corpus_source_with_a_trained_model_and_when_its_corpus_is_gone(capsys, tmp_path, query_mid):
    from qbdi_utils.model import synthetic_frames

    spec = pianoroll.RollSpec()
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(3):
        roll = pianoroll.make_valid(pianoroll.from_frames(synthetic_frames(6, seed=20 + i), spec), spec)
        pianoroll.write_midi(roll, folder / f"piece{i}.mid", tempo_bpm=90.0, spec=spec)
    model = tmp_path / "model"
    code, _, err = run(capsys, "train", "--corpus", folder, "--out", model, "--epochs", "2",
                       "--hidden-dim", "16", "--latent-dim", "8")
    assert code == 0, err
    out = tmp_path / "c.mid"
    code, _, err = run(capsys, "navigate", "--model", model, "--query", query_mid, "--source", "corpus",
                       "--bits", "64", "--stats", "corpus", "--out", out)
    assert code == 0, err
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["source"] == "corpus" and rec["continuity"] is None and len(rec["bars"]) == 8
    assert {r["piece"] for r in rec["bars"]} <= {"piece0.mid", "piece1.mid", "piece2.mid"}
    assert all(1 <= r["piece_bar"] <= 6 for r in rec["bars"])
    for prev, now in zip(rec["bars"], rec["bars"][1:]):
        follows = now["piece"] == prev["piece"] and now["piece_bar"] == prev["piece_bar"] + 1
        assert now["jump"] == (not follows)
    # the corpus disappears: a clear one-line error, nothing written
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    out2 = tmp_path / "c2.mid"
    code, _, err = run(capsys, "navigate", "--model", model, "--query", query_mid, "--source", "corpus",
                       "--out", out2)
    line = one_error_line(err)
    assert code == 2 and "is gone" in line and str(folder.resolve()) in line and "--corpus" in line
    assert not out2.exists()
    # the query source needs no corpus
    code, _, err = run(capsys, "navigate", "--model", model, "--query", query_mid, "--source", "query",
                       "--out", out2)
    assert code == 0, err
    assert np.asarray(pianoroll.read_midi(out2).roll).shape[0] == pianoroll.read_midi(query_mid).n_steps


def test_navigate_prints_the_fidelity_line(capsys, tmp_path, model_dir, query_mid):
    # continuity 1 replays the query's bar order, so navigate's line equals improvise's
    lines = []
    for argv in (("navigate", "--source", "query", "--continuity", "1"), ("improvise", "--bits", "full")):
        code, stdout, err = run(capsys, *argv, "--model", model_dir, "--query", query_mid,
                                "--out", tmp_path / f"{argv[0]}.mid")
        assert code == 0, err
        lines.append([s for s in stdout.splitlines() if s.startswith("fidelity: ")])
    assert len(lines[0]) == 1 and lines[0] == lines[1]
