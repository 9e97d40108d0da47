"""Fault injection through the ``qbdi`` command (issue 11): each case's exit status and what is left on disk.

The command runs in a child process (``python -B -c 'main()'``) the way a user runs it, with the fault
set up from outside: the file-size limit (``ulimit -f``, RLIMIT_FSIZE, which root cannot bypass),
two runs racing for one output, SIGKILL while outputs are staged, a file where a folder should be.
Phase 1 covers ``frames`` and ``analyze``; train/improvise/sweep/navigate cases follow when those
commands write through :mod:`qbdi_utils.files`.
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from qbdi_utils import files, paths, pianoroll
from qbdi_utils.cli import main

CHILD_ENV = {**os.environ, "PYTHONPATH": str(paths.REPO_ROOT), "MPLBACKEND": "Agg"}
QBDI = [sys.executable, "-B", "-c", "import sys; from qbdi_utils.cli import main; sys.exit(main())"]
OUTPUTS = ["ir_curve.csv", "ir_curve.png", "motifs.csv", "motifs.png"]


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """Eight bars of I-vi-IV-V, one chord per beat."""
    spec = pianoroll.RollSpec()
    chords = [[48, 52, 55], [45, 48, 52], [41, 45, 48], [43, 47, 50]] * 8
    roll = np.zeros((4 * len(chords), spec.n_columns), np.uint8)
    for i, ch in enumerate(chords):
        for p in ch:
            roll[4 * i:4 * i + 4, p - spec.min_pitch] = 1
            roll[4 * i, spec.n_pitches + p - spec.min_pitch] = 1
    return pianoroll.write_midi(roll, tmp_path_factory.mktemp("song") / "song.mid", spec=spec)


def _qbdi(*argv, limit: int | None = None, **kw) -> subprocess.CompletedProcess:
    def preexec():
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([*QBDI, *map(str, argv)], capture_output=True, text=True, timeout=300,
                          env=CHILD_ENV, preexec_fn=preexec, **kw)


def _one_line(r, command="analyze"):
    lines = r.stderr.strip().splitlines()
    return (len(lines) == 1 and lines[0].startswith(f"qbdi {command}: error:")
            and "Traceback" not in r.stderr)


def test_file_size_limit_during_analyze_exit_2_and_nothing_left(tmp_path, song):
    """ulimit -f 20 KB: the IR plot does not fit. Exit 2 (not killed by SIGXFSZ), one line, no outputs.

    (CPython itself ignores SIGXFSZ at start-up; ``main`` ignores it again in case an embedding
    interpreter or a library restored the default, which would kill the process.)
    """
    out = tmp_path / "an"
    r = _qbdi("analyze", "--midi", song, "--out", out, limit=20_000)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert _one_line(r) and "file-size limit" in r.stderr and str(out) in r.stderr
    assert not out.exists()  # the set's folder was created by the run and removed with it
    r = _qbdi("analyze", "--midi", song, "--out", out)  # the same command without the limit works
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == sorted(OUTPUTS)


def test_file_size_limit_with_force_keeps_old_outputs(tmp_path, song):
    out = tmp_path / "an"
    assert _qbdi("analyze", "--midi", song, "--out", out).returncode == 0
    before = {f: (out / f).read_bytes() for f in OUTPUTS}
    r = _qbdi("analyze", "--midi", song, "--out", out, "--force", "--thresholds", "300", limit=20_000)
    assert r.returncode == 2 and _one_line(r) and "file-size limit" in r.stderr
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before  # old set intact, nothing else


def test_two_racing_analyze_runs_exactly_one_wins(tmp_path, song):
    """Both runs pass the early "exists?" check and stage their outputs, then commit at the same time."""
    out, go = tmp_path / "an", tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, sys, time
        from qbdi_utils import files
        from qbdi_utils.cli import main

        def wait_for_go(stage):
            if stage == "staged-all":
                print("READY", flush=True)
                while not os.path.exists({str(go)!r}):
                    time.sleep(0.01)

        files._hook = wait_for_go
        sys.exit(main(["analyze", "--midi", {str(song)!r}, "--out", {str(out)!r}]))
    """)
    procs = [subprocess.Popen([sys.executable, "-B", "-c", code], env=CHILD_ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for p in procs:
            line = ""
            while line.strip() != "READY":
                line = p.stdout.readline()
                assert line, p.stderr.read()
        go.write_text("")
        results = [(p.wait(300), p.stderr.read()) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()
    codes = sorted(c for c, _ in results)
    assert codes == [0, 2], results
    loser = next(err for c, err in results if c == 2)
    assert len(loser.strip().splitlines()) == 1 and "--force" in loser
    assert sorted(os.listdir(out)) == sorted(OUTPUTS)


def test_sigkill_while_staging_leaves_no_visible_output_and_rerun_cleans(tmp_path, song):
    out = tmp_path / "an"
    code = textwrap.dedent(f"""
        import sys, time
        from qbdi_utils import files
        from qbdi_utils.cli import main

        def pause(stage):
            if stage == "written":
                print("PAUSED", flush=True)
                time.sleep(300)

        files._hook = pause
        sys.exit(main(["analyze", "--midi", {str(song)!r}, "--out", {str(out)!r}]))
    """)
    proc = subprocess.Popen([sys.executable, "-B", "-c", code], stdout=subprocess.PIPE, text=True,
                            env=CHILD_ENV)
    try:
        line = ""
        while line.strip() != "PAUSED":  # analyze prints its results first
            line = proc.stdout.readline()
            assert line, "child ended without pausing"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    left = os.listdir(out)
    assert left and all(files.is_leftover(n) for n in left)  # hidden temporaries only
    r = _qbdi("analyze", "--midi", song, "--out", out)  # no --force needed: nothing was published
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == sorted(OUTPUTS)


def test_file_where_a_folder_should_be(tmp_path, song):
    f = tmp_path / "f"
    f.write_text("keep")
    r = _qbdi("analyze", "--midi", song, "--out", f / "x")
    assert r.returncode == 2 and _one_line(r) and f"{f} is a file, not a folder" in r.stderr
    r = _qbdi("frames", f / "x.mid")
    assert r.returncode == 2 and _one_line(r, "frames") and str(f) in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["f"] and f.read_text() == "keep"


def test_a_folder_given_as_midi(tmp_path):
    r = _qbdi("analyze", "--midi", tmp_path, "--out", tmp_path / "o")
    assert r.returncode == 2 and _one_line(r) and "is a folder" in r.stderr
    r = _qbdi("frames", tmp_path)
    assert r.returncode == 2 and _one_line(r, "frames") and "director" in r.stderr


# ---------------------------------------------------------------------------------------------
# the safety net in main(): an OSError or Ctrl-C that escapes a command

@pytest.mark.parametrize("exc, words", [
    (PermissionError(errno.EACCES, "Permission denied", "/srv/x.mid"), ["/srv/x.mid", "permission denied"]),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/y.wav"), ["/mnt/ro/y.wav", "read-only"]),
    (OSError(errno.ENOSPC, "No space left on device"), ["No space left on device"]),
])
def test_main_turns_an_escaping_oserror_into_one_line(monkeypatch, capsys, exc, words):
    from qbdi_utils.cli import frames

    def boom(args):
        raise exc

    monkeypatch.setattr(frames, "run", boom)
    assert main(["frames", "x.mid"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qbdi frames: error:")
    for w in words:
        assert w in err


def test_main_ctrl_c_is_one_line_exit_130(monkeypatch, capsys):
    from qbdi_utils.cli import frames

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(frames, "run", interrupted)
    assert main(["frames", "x.mid"]) == 130
    assert capsys.readouterr().err == "qbdi frames: interrupted\n"
