"""Hostile input, bounded (issue 29): every case is a real ``qbdi`` subprocess that must end with exit 2
and exactly one stderr line (or succeed), inside a CPU-time and address-space budget set with
``resource.setrlimit`` in the child (a runaway dies of SIGXCPU or MemoryError and fails the test; a
hang is caught by a generous ``timeout`` whose only job is to end the suite).

The inputs are generated here (tests/hostile_inputs.py), not committed.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hostile_inputs as H
from qbdi_utils import limits, pianoroll
from qbdi_utils.errors import MidiFileError, ModelError
from qbdi_utils.paths import REPO_ROOT

#: Budgets of one subprocess: (address space in bytes, CPU seconds). TensorFlow needs about 2 GB
#: of address space to load; a command without a model runs in far less.
MODEL_BUDGET = (3 * 2**30, 90)
PLAIN_BUDGET = (1 * 2**30, 30)
#: Ends a child that hangs (blocked, so using no CPU); not a speed assertion.
HANG_GUARD_S = 300


def qbdi(args, cwd, budget=PLAIN_BUDGET, env=None, stdin=None, shell_pipe: str | None = None):
    """Run ``python -m qbdi_utils.cli ARGS`` in ``cwd`` under ``budget``; returns CompletedProcess.

    With ``shell_pipe`` the command's stdout goes through that shell command (``"head -1"``)."""
    mem, cpu = budget

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))

    e = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    e.update(env or {})
    cmd = [sys.executable, "-m", "qbdi_utils.cli", *[str(a) for a in args]]
    if shell_pipe is not None:
        import shlex

        cmd = ["/bin/sh", "-c", " ".join(shlex.quote(c) for c in cmd) + " | " + shell_pipe]
    return subprocess.run(cmd, cwd=cwd, env=e, preexec_fn=limit, capture_output=True, text=True,
                          timeout=HANG_GUARD_S, stdin=subprocess.DEVNULL if stdin is None else stdin)


def one_line_exit_2(p, *words):
    """Exit 2 and exactly one stderr line (warnings aside) holding every one of ``words``."""
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert len(lines) == 1, p.stderr[-2000:]
    for w in words:
        assert w in lines[0], lines[0]
    assert "Traceback" not in p.stderr
    return lines[0]


@pytest.fixture(scope="module")
def model_dir(tiny_model, tmp_path_factory):
    """A copy of the tiny model's folder (tests may damage copies of it)."""
    d = tmp_path_factory.mktemp("hostile_model") / "model"
    shutil.copytree(tiny_model.info["model_dir"], d)
    return d


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------
# time signatures (the only traceback of the probe)

def test_time_signature_zero_is_refused_when_read(tmp_path):
    p = write(tmp_path / "ts0.mid", H.time_sig_zero_midi())
    with pytest.raises(MidiFileError, match=r"time signature 0/4 at tick 0 is not a meter"):
        pianoroll.read_midi(p)


@pytest.mark.parametrize("num, exp, ok", [(0, 2, False), (1, 2, True), (7, 3, True), (4, 7, False),
                                          (4, 0, True), (255, 6, True), (4, 200, False)])
def test_time_signature_validation(tmp_path, num, exp, ok):
    """numerator >= 1, denominator 2**exp a power of two in 1..64."""
    ev = bytes([0xFF, 0x58, 0x04, num, exp, 0x18, 0x08])
    p = write(tmp_path / "ts.mid", H.smf([H.note_track(2, prefix=[(0, ev)])]))
    if ok:
        assert pianoroll.read_midi(p).time_signatures[0][1:] == (num, 2**exp)
    else:
        with pytest.raises(MidiFileError, match="is not a meter"):
            pianoroll.read_midi(p)
    assert limits.valid_time_signature(num, 2**min(exp, 20)) == ok


def test_query_warnings_survive_a_hand_built_zero_numerator(tiny_model):
    """A Piece built without read_midi may still hold 0/4: a warning, not ZeroDivisionError."""
    from qbdi_utils.improvise import query_warnings

    spec = tiny_model.spec
    roll = np.zeros((32, spec.n_columns), np.uint8)
    q = pianoroll.Piece(roll=roll, spec=spec, name="q", time_signatures=[(0, 0, 4), (16, 3, 4)])
    w = query_warnings(tiny_model, q)
    assert any("no meter (0/4)" in x for x in w) and any("3/4" in x for x in w)


@pytest.mark.parametrize("command", ["improvise", "sweep", "navigate"])
def test_time_signature_zero_is_one_line_in_every_query_command(tmp_path, model_dir, command):
    q = write(tmp_path / "ts0.mid", H.time_sig_zero_midi())
    out = tmp_path / ("sweep" if command == "sweep" else "o.mid")
    args = [command, "--model", model_dir, "--query", q, "--out", out]
    if command == "improvise":
        args += ["--bits", "64"]
    if command == "navigate":
        args += ["--source", "query"]
    p = qbdi(args, tmp_path, MODEL_BUDGET)
    one_line_exit_2(p, "ts0.mid", "time signature 0/4", "not a meter")
    assert not out.exists()
