"""`qbdi train` on the large-corpus path: --workers, --stream / --memory-budget, --devices, --max-eval-frames."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qbdi_utils import corpus, pianoroll
from qbdi_utils.model import StyleVAE, frames_fingerprint, synthetic_frames
from qbdi_utils.cli import main
from qbdi_utils.cli.values import parse_size

_SMALL = ["--epochs", "1", "--hidden-dim", "16", "--latent-dim", "4"]


@pytest.fixture(scope="module")
def midi_dir(tmp_path_factory):
    """Twelve 6-bar synthetic chord pieces as MIDI files."""
    d = tmp_path_factory.mktemp("scale_midi")
    spec = pianoroll.RollSpec()
    for i in range(12):
        roll = pianoroll.make_valid(pianoroll.from_frames(synthetic_frames(6, seed=100 + i), spec), spec)
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
    model = StyleVAE.load(out)
    frames = corpus.load_corpus(str(midi_dir), progress=False).frames
    assert model.fingerprint == frames_fingerprint(frames)  # the whole corpus, read from shards


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
    model = StyleVAE.load(out)
    assert np.isfinite(model.info["test_r_nats"]) and model.info["history"]["loss"]


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_on_one_machine_train_like_one(tmp_path, midi_dir):
    """The README's multi-worker recipe, run with two worker processes on this machine (TF_CONFIG,
    MultiWorkerMirroredStrategy over localhost): both share one shard store, only the chief writes
    --out, and the model matches a one-process run of the same command up to float rounding."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    cmd = [sys.executable, "-m", "qbdi_utils.cli", "train", "--corpus", str(midi_dir), "--workers", "1",
           "--epochs", "2", "--hidden-dim", "16", "--latent-dim", "4"]
    hosts = [f"localhost:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        conf = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}}
        procs.append(subprocess.Popen(cmd + ["--out", str(tmp_path / f"w{i}")], env={**env, "TF_CONFIG": json.dumps(conf)},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "non-chief" in outs[1][1] and not (tmp_path / "w1").exists()
    ref = subprocess.run(cmd + ["--out", str(tmp_path / "one")], env=env, capture_output=True, text=True,
                         timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    chief, one = StyleVAE.load(tmp_path / "w0"), StyleVAE.load(tmp_path / "one")
    assert chief.fingerprint == one.fingerprint
    assert chief.info["devices"] == 2 and "devices" not in one.info  # two workers, one CPU each
    for curve in ("loss", "val_loss"):  # the loss curves within 1%
        a, b = np.array(chief.info["history"][curve]), np.array(one.info["history"][curve])
        assert len(a) == 2 and np.all(np.abs(a - b) <= 0.01 * np.abs(b)), curve
    for key in ("test_loss_nats", "test_r_nats", "test_d_nats"):
        assert abs(chief.info[key] - one.info[key]) <= 0.01 * abs(one.info[key]), key
    # the same batches and noise; only the gradient all-reduce adds in another order
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(chief.get_weights(), one.get_weights()))
    print(f"largest weight difference, two workers vs one process: {diff:.1e}")
    assert diff < 1e-3
