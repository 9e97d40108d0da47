"""`qbdi train` on the large-corpus path: --workers, --stream / --memory-budget, --devices, --max-eval-frames."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from qbdi_utils import corpus, pianoroll, vae
from qbdi_utils.cli import main
from qbdi_utils.cli.train import parse_size

_SMALL = ["--epochs", "1", "--hidden-dim", "16", "--latent-dim", "4"]


@pytest.fixture(scope="module")
def midi_dir(tmp_path_factory):
    """Twelve 6-bar synthetic chord pieces as MIDI files."""
    d = tmp_path_factory.mktemp("scale_midi")
    spec = pianoroll.RollSpec()
    for i in range(12):
        roll = pianoroll.make_valid(pianoroll.from_frames(vae.synthetic_frames(6, seed=100 + i), spec), spec)
        pianoroll.write_midi(roll, d / f"p{i:02d}.mid", tempo_bpm=100.0, spec=spec)
    return d


def _train(capsys, tmp_path, midi_dir, *extra):
    out = tmp_path / "model"
    code = main(["train", "--corpus", str(midi_dir), "--out", str(out), *_SMALL, *extra])
    cap = capsys.readouterr()
    return code, out, cap.out, cap.err


def test_stream_trains_on_the_same_frames_as_memory(capsys, tmp_path, midi_dir):
    code, out, stdout, err = _train(capsys, tmp_path, midi_dir, "--stream", "--workers", "1")
    assert code == 0, err
    assert "streaming" in err and "saved" in stdout
    model = vae.StyleVAE.load(out)
    frames = corpus.load_corpus(str(midi_dir), progress=False).frames
    assert model.fingerprint == vae.frames_fingerprint(frames)  # the whole corpus, read from shards


def test_memory_budget_decides_the_path(capsys, tmp_path, midi_dir):
    code, _, _, err = _train(capsys, tmp_path / "a", midi_dir, "--memory-budget", "1K")
    assert code == 0 and "streaming" in err
    code, _, _, err = _train(capsys, tmp_path / "b", midi_dir, "--memory-budget", "1G")
    assert code == 0 and "streaming" not in err
    # a second run parsed nothing: every file came from the shard store
    assert "0 files parsed, 12 from the cache" in err


@pytest.mark.parametrize("option,value,needle", [
    ("--workers", "0", "--workers 0 must be at least 1"),
    ("--devices", "0", "--devices 0 must be at least 1"),
    ("--devices", "x", "--devices 'x' is not a whole number"),
    ("--memory-budget", "lots", "--memory-budget 'lots' is not a size"),
    ("--memory-budget", "0", "must be a positive size"),
    ("--max-eval-frames", "0", "--max-eval-frames 0 must be at least 1"),
])
def test_bad_scale_options_are_one_line(capsys, tmp_path, midi_dir, option, value, needle):
    code, out, _, err = _train(capsys, tmp_path, midi_dir, option, value)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert not out.exists()


def test_parse_size_against_hand_values():
    assert parse_size("--x", "8G") == 8 * 1024 ** 3
    assert parse_size("--x", "500m") == 500 * 1024 ** 2
    assert parse_size("--x", "1.5K") == 1536
    assert parse_size("--x", "1000000") == 1_000_000
    assert parse_size("--x", "2GB") == 2 * 1024 ** 3


def test_two_logical_devices_from_the_command_line(tmp_path, midi_dir):
    """--devices 2 on a CPU-only machine splits the CPU (before TensorFlow starts) and trains."""
    out = tmp_path / "model2"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, "-m", "qbdi_utils.cli", "train", "--corpus", str(midi_dir),
                          "--out", str(out), *_SMALL, "--devices", "2", "--workers", "1"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    model = vae.StyleVAE.load(out)
    assert np.isfinite(model.info["test_r_nats"]) and model.info["history"]["loss"]
