"""Fault injection through the ``qbdi`` command (issue 11): each case's exit status and what is left on disk.

The command runs in a child process (``python -B -c 'main()'``) the way a user runs it, with the fault
set up from outside: the file-size limit (``ulimit -f``, RLIMIT_FSIZE, which root cannot bypass),
two runs racing for one output, SIGKILL while outputs are staged, a file where a folder should be.
Phase 1 covers ``frames`` and ``analyze``; phase 2 ``improvise`` and ``sweep`` (with the tiny model of
tests/conftest.py); phase 3 ``train`` (the model folder saved through
:func:`qbdi_utils.files.replacing_dir`) and damaged model folders given to ``improvise``.
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



def _release_together(procs, go):
    """Wait until every racing child prints READY, release them all at once by creating ``go``,
    and return their (exit status, stderr) pairs; the children are always reaped."""
    try:
        for p in procs:
            line = ""
            while line.strip() != "READY":
                line = p.stdout.readline()
                assert line, p.stderr.read()
        go.write_text("")
        return [(p.wait(300), p.stderr.read()) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()

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

        files.atomic.stage_hook = wait_for_go
        sys.exit(main(["analyze", "--midi", {str(song)!r}, "--out", {str(out)!r}]))
    """)
    procs = [subprocess.Popen([sys.executable, "-B", "-c", code], env=CHILD_ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = _release_together(procs, go)
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

        files.atomic.stage_hook = pause
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


def test_cjk_path_prints_no_font_warnings(tmp_path, song):
    """A file name in a script the plot font lacks: no "Glyph ... missing" lines, just the outputs."""
    folder = tmp_path / "曲"
    folder.mkdir()
    midi = folder / "歌.mid"
    midi.write_bytes(song.read_bytes())
    r = _qbdi("analyze", "--midi", midi, "--out", folder / "出力")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert sorted(os.listdir(folder / "出力")) == sorted(OUTPUTS)


# ---------------------------------------------------------------------------------------------
# improvise and sweep: output sets of MIDI + MusicXML + WAV, and a folder of MIDI + claims.csv

IMPROVISE_OUTPUTS = ["o.mid", "o.musicxml", "o.wav"]


@pytest.fixture
def model_dir(tiny_model):
    return tiny_model.info["model_dir"]


def _improvise(model_dir, song, out, *extra, limit=None):
    # threshold 0.9: the tiny model's bars come out (nearly) empty, so music21 and the synthesizer
    # take a second, not half a minute; the WAV's size is the same (it is as long as the query)
    return _qbdi("improvise", "--model", model_dir, "--query", song, "--bits", "64", "--threshold", "0.9",
                 "--out", out / "o.mid",
                 "--musicxml", out / "o.musicxml", "--wav", out / "o.wav", *extra, limit=limit)


def test_file_size_limit_during_improvise_then_with_force(tmp_path, model_dir, song):
    """ulimit -f 100 KB: the MIDI (tens of bytes here) and MusicXML (a few KB) are staged, the WAV
    (16 s of 16-bit audio, > 500 KB whatever the notes) cannot be written.

    Without outputs: exit 2, one line naming the WAV, nothing left (not the MIDI, no hidden
    temporaries, not even the folder the run created). With --force over an existing set: exit 2,
    the old files byte-identical and nothing else in the folder.
    """
    new = tmp_path / "new"
    r = _improvise(model_dir, song, new, limit=100_000)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert _one_line(r, "improvise") and "file-size limit" in r.stderr and "o.wav" in r.stderr
    assert not new.exists()
    old = tmp_path / "old"
    old.mkdir()
    before = {f: f"old {f}".encode() for f in IMPROVISE_OUTPUTS}
    for f, data in before.items():
        (old / f).write_bytes(data)
    r = _improvise(model_dir, song, old, "--force", limit=100_000)
    assert r.returncode == 2 and _one_line(r, "improvise") and "file-size limit" in r.stderr
    assert {f: (old / f).read_bytes() for f in os.listdir(old)} == before


def test_two_racing_improvise_runs_exactly_one_wins(tmp_path, model_dir, song):
    """Both runs pass the early check, stage their MIDI and are released together at commit time."""
    out, go = tmp_path / "o.mid", tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, sys, time
        from qbdi_utils import files
        from qbdi_utils.cli import main

        def wait_for_go(stage):
            if stage == "staged-all":
                print("READY", flush=True)
                while not os.path.exists({str(go)!r}):
                    time.sleep(0.01)

        files.atomic.stage_hook = wait_for_go
        seed = sys.argv[1]
        sys.exit(main(["improvise", "--model", {str(model_dir)!r}, "--query", {str(song)!r},
                       "--bits", "16", "--seed", seed, "--out", {str(out)!r}]))
    """)
    procs = [subprocess.Popen([sys.executable, "-B", "-c", code, str(seed)], env=CHILD_ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = _release_together(procs, go)
    assert sorted(c for c, _ in results) == [0, 2], results
    loser = next(err for c, err in results if c == 2)
    assert len(loser.strip().splitlines()) == 1 and "--force" in loser and str(out) in loser
    assert sorted(os.listdir(tmp_path)) == ["go", "o.mid"]
    pianoroll.read_midi(out, allow_empty=True)  # the winner's file is whole


def test_file_size_limit_during_sweep_leaves_nothing(tmp_path, model_dir, song):
    """ulimit -f 300 bytes: some MIDI of the sweep's set does not fit; not one file of it is left."""
    out = tmp_path / "sw"
    r = _qbdi("sweep", "--model", model_dir, "--query", song, "--out", out, "--seeds", "1", limit=300)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert _one_line(r, "sweep") and "file-size limit" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("command, argv, needle", [
    ("improvise", ["--out", "{f}/x.mid"], "{f} is a file, not a folder"),
    ("improvise", ["--out", "o.mid", "--wav", "{f}/x.wav"], "{f} is a file, not a folder"),
    ("sweep", ["--out", "{f}"], "is a file, not a folder"),
    ("sweep", ["--out", "{f}/sub"], "{f} is a file, not a folder"),
])
def test_improvise_and_sweep_file_where_a_folder_should_be(tmp_path, model_dir, song, command, argv, needle):
    f = tmp_path / "f"
    f.write_text("keep")
    argv = [a.format(f=f) for a in argv]
    if command == "improvise":
        argv = ["--bits", "8", *[str(tmp_path / a) if a == "o.mid" else a for a in argv]]
    r = _qbdi(command, "--model", model_dir, "--query", song, *argv)
    assert r.returncode == 2 and _one_line(r, command), r.stderr
    assert needle.format(f=f) in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["f"] and f.read_text() == "keep"


@pytest.mark.parametrize("command, argv, needle", [
    ("improvise", ["--bits", "8", "--seed", "-5"], "--seed -5 must be at least 0"),
    ("improvise", ["--bits", "8", "--seed", str(2**32)], "32-bit"),
    ("improvise", ["--bits", "999999999999999999999"], "more than 1000000"),
    ("improvise", ["--bits", "8", "--wav", "x.mp3"], "WAV audio only"),
    ("improvise", ["--bits", "8", "--musicxml", "x.mxl"], ".musicxml or .xml"),
    ("improvise", ["--bits", "8", "--out", ""], "--out is empty"),
    ("improvise", ["--bits", "8", "--out", "d/"], "names a folder"),
    ("sweep", ["--seeds", str(10**9)], "more than 1000"),
])
def test_improvise_and_sweep_option_bounds_are_one_line(tmp_path, model_dir, song, command, argv, needle):
    if command == "sweep" or "--out" not in argv:
        argv = [*argv, "--out", "x.mid" if command == "improvise" else "sw"]
    r = _qbdi(command, "--model", model_dir, "--query", song, *argv, cwd=tmp_path)
    assert r.returncode == 2 and _one_line(r, command), r.stderr
    assert needle in r.stderr
    assert os.listdir(tmp_path) == []


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


# ---------------------------------------------------------------------------------------------
# train (phase 3): the model folder is staged and swapped in whole (files.replacing_dir)

TRAIN_TINY = ["--epochs", "2", "--hidden-dim", "32", "--latent-dim", "4", "--seed", "3"]


@pytest.fixture(scope="module")
def midi_corpus(tmp_path_factory):
    """Four synthetic 6-bar MIDI pieces and one file that is not MIDI (skipped, with its reason)."""
    from qbdi_utils.model import synthetic_frames

    d = tmp_path_factory.mktemp("corpus")
    spec = pianoroll.RollSpec()
    for i in range(4):
        roll = pianoroll.from_frames(synthetic_frames(6, seed=10 + i), spec)
        pianoroll.write_midi(roll, d / f"p{i}.mid", spec=spec)
    (d / "broken.mid").write_bytes(b"not a midi file")
    return d


def _old_model(tiny_model, tmp_path):
    """A copy of the conftest model as the existing model that a --force retrain must not damage."""
    import shutil

    m = tmp_path / "m"
    shutil.copytree(tiny_model.info["model_dir"], m)
    return m, {f: (m / f).read_bytes() for f in sorted(os.listdir(m))}


def _tree(m):
    return {f: (m / f).read_bytes() for f in sorted(os.listdir(m))}


def _last_line_error(r, command="train"):
    """The run ended with one error line (progress bars may come before it), no traceback."""
    lines = r.stderr.strip().splitlines()
    return bool(lines) and lines[-1].startswith(f"qbdi {command}: error:") and "Traceback" not in r.stderr


def test_train_killed_then_file_size_limit_keep_old_model(tmp_path, tiny_model, midi_corpus):
    """SIGKILL while the new model folder is staged, then a rerun past ``ulimit -f``: both times the
    old model stays byte for byte; the second run removes the first one's hidden leftover, and its
    own failure (exit 2, one line naming the limit) leaves nothing beside the model."""
    m, before = _old_model(tiny_model, tmp_path)
    code = textwrap.dedent(f"""
        import sys, time
        from qbdi_utils import files
        from qbdi_utils.cli import main

        def pause(stage):
            if stage == "dir-staged":
                print("PAUSED", flush=True)
                time.sleep(300)

        files.atomic.stage_hook = pause
        sys.exit(main(["train", "--corpus", {str(midi_corpus)!r}, "--out", {str(m)!r}, "--force",
                       *{TRAIN_TINY!r}]))
    """)
    proc = subprocess.Popen([sys.executable, "-B", "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=CHILD_ENV)
    try:
        line = ""
        while line.strip() != "PAUSED":
            line = proc.stdout.readline()
            assert line, "child ended without pausing"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    left = sorted(os.listdir(tmp_path))
    assert "m" in left and _tree(m) == before  # old model whole
    staged = [n for n in left if n != "m"]
    assert staged and all(files.is_leftover(n) for n in staged)  # the killed run's staging folder
    assert sorted(os.listdir(tmp_path / staged[0])) == ["model.json", "skipped.csv", "weights.npz"]

    # new weights: (2496*32 + 32 + 32*4*2 + 4*2 + 4*32 + 32 + 32*2496 + 2496) float32 > 600 KB
    r = _qbdi("train", "--corpus", midi_corpus, "--out", m, "--force", *TRAIN_TINY, limit=200_000)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert _last_line_error(r) and "file-size limit" in r.stderr and str(m) in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["m"]  # leftover cleaned, own staging removed
    assert _tree(m) == before


def test_train_force_replaces_model_whole_with_skipped_csv(tmp_path, tiny_model, midi_corpus):
    """A successful --force retrain swaps in the new folder: only the new files, skipped.csv inside."""
    import csv

    from qbdi_utils.model import StyleVAE

    m, before = _old_model(tiny_model, tmp_path)
    r = _qbdi("train", "--corpus", midi_corpus, "--out", m, "--force", *TRAIN_TINY)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert sorted(os.listdir(m)) == ["model.json", "skipped.csv", "weights.npz"]
    with open(m / "skipped.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["file", "reason"] and len(rows) == 2 and rows[1][0].startswith("broken")
    assert "broken" in r.stderr and "reason" in r.stderr  # the printed table names it too
    model = StyleVAE.load(m)
    assert model.latent_dim == 4 and model.config.hidden_dim == 32


def test_train_unwritable_out_is_reported_before_the_corpus_loads(tmp_path, midi_corpus):
    f = tmp_path / "f"
    f.write_text("keep")
    cache = tmp_path / "cache"
    env = {**CHILD_ENV, "QBDI_CACHE_DIR": str(cache)}
    for out, needle in ((f / "m", f"{f} is a file, not a folder"), (f, "is a file, not a folder")):
        r = subprocess.run([*QBDI, "train", "--corpus", str(midi_corpus), "--out", str(out), *TRAIN_TINY],
                           capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 2 and _one_line(r, "train") and needle in r.stderr, r.stderr
    assert not cache.exists()  # the corpus was never loaded (loading writes its cache)
    assert f.read_text() == "keep" and sorted(os.listdir(tmp_path)) == ["f"]


@pytest.mark.parametrize("argv, needle", [
    (["--seed", "-5"], "--seed -5 must be at least 0"),
    (["--seed", "4294967296"], "is more than 4294967295"),
    (["--epochs", "0"], "--epochs 0 must be at least 1"),
    (["--latent-dim", "99999999999"], "--latent-dim"),
    (["--beta", "inf"], "--beta inf must be a finite number"),
])
def test_train_option_bounds_are_one_line(tmp_path, midi_corpus, argv, needle):
    out = tmp_path / "m"
    r = _qbdi("train", "--corpus", midi_corpus, "--out", out, *TRAIN_TINY, *argv)
    assert r.returncode == 2 and _one_line(r, "train") and needle in r.stderr, r.stderr
    assert os.listdir(tmp_path) == []  # nothing saved, no leftovers


def test_train_diverging_loss_exit_2_nothing_saved(tmp_path, midi_corpus):
    """beta = 1e300 is finite as typed but makes the loss overflow: exit 2, one error line, no model."""
    out = tmp_path / "m"
    r = _qbdi("train", "--corpus", midi_corpus, "--out", out, *TRAIN_TINY, "--beta", "1e300")
    assert r.returncode == 2 and _last_line_error(r), r.stderr[-2000:]
    assert "not a finite number" in r.stderr and "nothing was saved" in r.stderr
    assert os.listdir(tmp_path) == []


def _corrupt(d, variant):
    import json

    meta_path = d / "model.json"
    meta = json.loads(meta_path.read_text())
    if variant == "list":
        meta_path.write_text("[1, 2, 3]")
        return "must hold a JSON object, not a JSON list"
    if variant == "invalid_json":
        meta_path.write_text('{"format": "qbdi-style-vae", ')
        return "is not valid JSON"
    if variant == "latent_negative":
        meta["config"]["latent_dim"] = -3
        words = "latent_dim"
    elif variant == "latent_string":
        meta["config"]["latent_dim"] = "16"
        words = "'latent_dim' must be a whole number"
    elif variant == "threshold":
        meta["threshold"] = 7.5
        words = "field 'threshold' must be a number strictly between 0 and 1"
    elif variant == "shapes":
        meta["config"]["latent_dim"] += 1
        meta["corpus_stats"] = {k: v + [0.0] for k, v in meta["corpus_stats"].items()}
        words = "weight shapes"
    elif variant == "stats_nan":
        meta["corpus_stats"]["mean"][0] = float("nan")
        words = "corpus_stats.mean"
    elif variant == "nan_weights":
        with np.load(d / "weights.npz") as z:
            w = {k: z[k] for k in z.files}
        w["w02"] = w["w02"].copy()
        w["w02"][0, 0] = np.nan
        np.savez(d / "weights.npz", **w)
        return "w02 holds NaN"
    meta_path.write_text(json.dumps(meta))
    return words


CORRUPT = ["list", "invalid_json", "latent_negative", "latent_string", "threshold", "shapes", "stats_nan",
           "nan_weights"]


@pytest.mark.parametrize("variant", CORRUPT)
def test_improvise_with_corrupt_model_is_one_line(tmp_path, tiny_model, song, capsys, variant):
    """Each damaged model folder: exit 2 and one line naming the folder and the field (in-process
    ``main``; the subprocess case below shows the same for the real command)."""
    m, _ = _old_model(tiny_model, tmp_path)
    words = _corrupt(m, variant)
    code = main(["improvise", "--model", str(m), "--query", str(song), "--bits", "64",
                 "--out", str(tmp_path / "o.mid")])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("qbdi improvise: error:"), err
    assert str(m) in err and words in err, err
    assert "--threshold" not in err  # a defect of the file, not an option the user typed
    assert not (tmp_path / "o.mid").exists()


def test_improvise_with_model_json_a_list_subprocess(tmp_path, tiny_model, song):
    m, _ = _old_model(tiny_model, tmp_path)
    _corrupt(m, "list")
    r = _qbdi("improvise", "--model", m, "--query", song, "--bits", "64", "--out", tmp_path / "o.mid")
    assert r.returncode == 2 and _one_line(r, "improvise") and "JSON list" in r.stderr, r.stderr
    assert not (tmp_path / "o.mid").exists()
