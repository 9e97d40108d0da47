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
    from qbdi_utils.query_checks import query_warnings

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


# --------------------------------------------------------------------------------------------
# model files: headers checked before data are expanded

def _weight_shapes(model_dir: Path) -> dict:
    with np.load(model_dir / "weights.npz") as z:
        return {k: z[k].shape for k in sorted(z.files)}


def test_read_npz_reads_what_np_load_reads(model_dir):
    shapes = _weight_shapes(model_dir)
    got = limits.read_npz(model_dir / "weights.npz", shapes, fix="retrain")
    with np.load(model_dir / "weights.npz") as z:
        for k in shapes:
            np.testing.assert_array_equal(got[k], z[k])
            assert got[k].dtype == z[k].dtype and got[k].flags.writeable


def test_read_npz_refuses_a_zip_bomb_from_its_header(model_dir, tmp_path):
    """1.5 GB of zeros deflated into 2 MB: refused from the member's header, nothing expanded (the
    CLI case below shows it within a memory budget)."""
    shapes = _weight_shapes(model_dir)
    p = write(tmp_path / "weights.npz", H.npz_bomb(shapes, "w00", int(1.5 * 2**30)))
    assert p.stat().st_size < 4 * 2**20
    with pytest.raises(ModelError, match=r"weight shapes do not match the configuration \(w00 is \(402653184,\)"):
        limits.read_npz(p, shapes, fix="retrain")


@pytest.mark.parametrize("damage, words", [
    ("missing_member", "array w03 is missing"),
    ("int_dtype", "not floating point"),
    ("truncated", "is unreadable"),
    ("over_limit", "QBDI_MAX_MODEL_BYTES="),
])
def test_read_npz_refuses_damaged_archives(model_dir, tmp_path, monkeypatch, damage, words):
    shapes = _weight_shapes(model_dir)
    p = tmp_path / "weights.npz"
    with np.load(model_dir / "weights.npz") as z:
        arrays = {k: z[k] for k in z.files}
    if damage == "missing_member":
        arrays.pop("w03")
        np.savez(p, **arrays)
    elif damage == "int_dtype":
        arrays["w01"] = arrays["w01"].astype(np.int32)
        np.savez(p, **arrays)
    elif damage == "truncated":
        data = (model_dir / "weights.npz").read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif damage == "over_limit":
        shutil.copy(model_dir / "weights.npz", p)
        monkeypatch.setenv("QBDI_MAX_MODEL_BYTES", "1000")
    with pytest.raises(ModelError, match=words):
        limits.read_npz(p, shapes, fix="retrain")


def test_read_npz_refuses_a_size_that_disagrees_with_the_header(tmp_path):
    """A member whose zip entry announces more bytes than its .npy header implies is refused
    before its data are read; with the true size it reads."""
    import io
    import zlib

    buf = io.BytesIO()
    np.save(buf, np.arange(4, dtype=np.float32))
    raw = buf.getvalue()
    padded = raw + bytes(16)
    p = write(tmp_path / "weights.npz", H.zip_members([("w00.npy", padded, 0, zlib.crc32(padded), len(padded))]))
    with pytest.raises(ModelError, match=f"announces {len(padded)} bytes, its header {len(raw)}"):
        limits.read_npz(p, {"w00": (4,)}, fix="retrain")
    write(p, H.zip_members([("w00.npy", raw, 0, zlib.crc32(raw), len(raw))]))
    np.testing.assert_array_equal(limits.read_npz(p, {"w00": (4,)}, fix="retrain")["w00"], np.arange(4))


def test_read_npz_refuses_a_fifo_without_blocking(tmp_path):
    p = tmp_path / "weights.npz"
    os.mkfifo(p)
    with pytest.raises(ModelError, match="FIFO"):
        limits.read_npz(p, {"w00": (1,)}, fix="retrain")


@pytest.mark.parametrize("case", ["bomb", "fifo"])
def test_a_hostile_weights_file_is_one_line_within_budget(model_dir, tmp_path, case):
    """The zip bomb (1.5 GB deflated into 2 MB; MODEL_BUDGET leaves no room to expand it) and a FIFO
    as weights.npz: one line, exit 2, no hang."""
    m = tmp_path / "model"
    shutil.copytree(model_dir, m)
    (m / "weights.npz").unlink()
    if case == "bomb":
        write(m / "weights.npz", H.npz_bomb(_weight_shapes(model_dir), "w00", int(1.5 * 2**30)))
        words = ("weight shapes", "w00")
    else:
        os.mkfifo(m / "weights.npz")
        words = ("FIFO",)
    q = write(tmp_path / "q.mid", H.smf([H.note_track(4)]))
    p = qbdi(["improvise", "--model", m, "--query", q, "--bits", "64", "--out", tmp_path / "o.mid"],
             tmp_path, MODEL_BUDGET)
    one_line_exit_2(p, "weights.npz", *words)


# --------------------------------------------------------------------------------------------
# workers that cannot deadlock

UNGUARDED = """\
import sys
from qbdi_utils.corpus import load_corpus
c = load_corpus(sys.argv[1], workers=2, shard_files=1, progress=False)
print("pieces", len(c.pieces), "workers", c.ingest["workers"])
"""


@pytest.mark.parametrize("guarded", [False, True])
def test_a_script_loading_with_workers_finishes_with_or_without_a_main_guard(tmp_path, guarded):
    """Without the guard each worker re-runs the script and used to wait on the store's lock, which
    the parent holds: a hang. Now the worker ends, the parent parses in-process (with a warning)."""
    midis = tmp_path / "midis"
    midis.mkdir()
    for i in range(6):
        write(midis / f"p{i}.mid", H.smf([H.note_track(2 + i)]))
    body = UNGUARDED
    if guarded:
        body = "if __name__ == '__main__':\n" + "".join("    " + ln + "\n" for ln in UNGUARDED.splitlines())
    script = tmp_path / "script.py"
    script.write_text(body)
    mem, cpu = PLAIN_BUDGET

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), QBDI_CACHE_DIR=str(tmp_path / "cache"))
    p = subprocess.run([sys.executable, str(script), str(midis)], cwd=tmp_path, env=env, preexec_fn=limit,
                       capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ["pieces", "6", "workers", "1" if not guarded else "2"]
    assert ("parsing the rest in this process" in p.stderr) == (not guarded)
    assert "Traceback" not in p.stderr


def test_workers_that_cannot_start_fall_back_to_this_process(tmp_path, monkeypatch):
    from qbdi_utils import corpus, shard_workers

    midis = tmp_path / "midis"
    midis.mkdir()
    for i in range(4):
        write(midis / f"p{i}.mid", H.smf([H.note_track(2 + i)]))

    def no_pool(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(shard_workers, "ProcessPoolExecutor", no_pool)
    with pytest.warns(UserWarning, match="could not start"):
        c = corpus.load_corpus(midis, workers=2, shard_files=1, progress=False,
                               cache_root=tmp_path / "cache")
    assert len(c.pieces) == 4 and c.ingest["workers"] == 1


# --------------------------------------------------------------------------------------------
# the small ones

@pytest.mark.parametrize("length", [240, 250, 255])
def test_long_output_names_up_to_name_max_are_written(tmp_path, length):
    """A legal name of 240-255 bytes: the hidden temporary name must not push it over NAME_MAX."""
    from qbdi_utils import files

    name = "n" * (length - 4) + ".mid"
    assert len(name.encode()) == length
    dest = files.write_bytes(tmp_path / name, b"MThd")
    assert dest.read_bytes() == b"MThd" and os.listdir(tmp_path) == [name]
    hidden = files.hidden_name(tmp_path / name)
    assert len(os.fsencode(hidden.name)) <= files.NAME_MAX and files.is_leftover(hidden)
    with files.OutputSet(force=True) as outs:
        outs.add_bytes(tmp_path / name, b"again")
        outs.add_bytes(tmp_path / ("w" * (length - 4) + ".wav"), b"RIFF")
    assert dest.read_bytes() == b"again" and len(os.listdir(tmp_path)) == 2


def test_a_long_names_leftover_is_cleaned(tmp_path):
    from qbdi_utils import files

    name = "x" * 251 + ".mid"
    left = files.hidden_name(tmp_path / name)
    left.write_bytes(b"partial")
    os.utime(left, (0, 0))  # older than STALE_AFTER_S, as if its writer died long ago
    assert files.clean_leftovers(tmp_path) == [left] and not left.exists()


def test_an_unreadable_sub_folder_of_a_corpus_is_listed_in_skipped(tmp_path, monkeypatch):
    """As root every folder is readable, so the permission error is also simulated."""
    from qbdi_utils import corpus

    midis = tmp_path / "midis"
    (midis / "locked").mkdir(parents=True)
    for i in range(2):
        write(midis / f"p{i}.mid", H.smf([H.note_track(2 + i)]))
    write(midis / "locked" / "hidden.mid", H.smf([H.note_track(3)]))
    os.chmod(midis / "locked", 0)
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == midis / "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    try:
        c = corpus.load_corpus(midis, workers=1, progress=False, cache_root=tmp_path / "cache")
    finally:
        os.chmod(midis / "locked", 0o755)
    reasons = dict(c.skipped)
    assert len(c.pieces) == 2
    assert "locked" in reasons and "permission denied" in reasons["locked"], c.skipped


def test_a_header_with_more_than_32767_tracks_reads_its_notes(tmp_path):
    p = write(tmp_path / "tracks.mid", H.many_tracks_midi(40_000))
    piece = pianoroll.read_midi(p)
    assert piece.roll.sum() > 0 and piece.n_steps == 2 * 16


def test_a_legal_unknown_chunk_before_the_track_is_skipped(tmp_path):
    p = write(tmp_path / "unknown.mid", H.unknown_chunk_midi())
    plain = write(tmp_path / "plain.mid", H.smf([H.note_track(2)]))
    np.testing.assert_array_equal(pianoroll.read_midi(p).roll, pianoroll.read_midi(plain).roll)


def test_frames_into_a_closed_pipe_says_nothing(tmp_path):
    """``qbdi frames F | head -1``: the reader may go before the output is written. A pipe whose
    read end is already closed makes that certain: no "Broken pipe" line, exit 141 (as SIGPIPE)."""
    q = write(tmp_path / "q.mid", H.smf([H.note_track(4)]))
    r, w = os.pipe()
    os.close(r)
    try:
        mem, cpu = PLAIN_BUDGET
        p = subprocess.run([sys.executable, "-m", "qbdi_utils.cli", "frames", str(q)], cwd=tmp_path,
                           env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), stdout=w, stderr=subprocess.PIPE,
                           text=True, timeout=HANG_GUARD_S, preexec_fn=lambda: (
                               resource.setrlimit(resource.RLIMIT_AS, (mem, mem)),
                               resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))))
    finally:
        os.close(w)
    assert p.stderr == "" and p.returncode == 141
    shell = qbdi(["frames", q], tmp_path, shell_pipe="head -1")
    assert shell.stderr == "" and shell.stdout.startswith(f"{q}: 4 frames")


# --------------------------------------------------------------------------------------------
# the explorer as a server

@pytest.fixture(scope="module")
def explorer(tiny_model):
    from qbdi_utils.explore import Explorer

    ex = Explorer(model=tiny_model, query="boston_boys_reel")
    yield ex
    ex.close()


def _upload(ex, name, data):
    ex._on_upload({"new": [{"name": name, "content": memoryview(data)}]})
    return ex.status.value


def test_an_upload_over_the_midi_limit_is_a_message_on_the_page(explorer, monkeypatch):
    monkeypatch.setenv("QBDI_MAX_MIDI_BYTES", "1000")
    status = _upload(explorer, "big.mid", H.note_flood_midi(500))
    assert "big.mid" in status and "QBDI_MAX_MIDI_BYTES=" in status and "is more than the limit" in status


def test_upload_errors_name_the_upload_not_server_paths(explorer):
    status = _upload(explorer, "ts0.mid", H.time_sig_zero_midi())
    assert "ts0.mid: time signature 0/4" in status
    assert explorer._tmp.name not in status and "/tmp" not in status and str(REPO_ROOT) not in status


def test_public_message_cuts_paths_to_names(tmp_path):
    from qbdi_utils.explore import public_message

    exc = MidiFileError("file is truncated", tmp_path / "deep" / "x.mid")
    assert public_message(exc) == "x.mid: file is truncated"
    other = ValueError(f"cannot open {tmp_path}/a/b/c.npz here")
    assert public_message(other, str(tmp_path)) == "cannot open c.npz here"


def test_the_kernel_cap_refuses_before_a_kernel_starts():
    import asyncio

    from tornado import web

    from qbdi_utils.explore_server import GuardedKernelManager

    km = GuardedKernelManager(max_kernels=0)
    with pytest.raises(web.HTTPError) as err:
        asyncio.run(km.start_kernel())
    assert err.value.status_code == 503 and "QBDI_EXPLORE_MAX_KERNELS=0" in err.value.reason
    assert km.list_kernel_ids() == []


# --------------------------------------------------------------------------------------------
# the suite: each hostile input through the real command, within its budget

FRAMES_CASES = {
    # name: (file maker or device path, expected exit, words of the one error line)
    "dev_zero": ("/dev/zero", 2, ("character device", "not a regular file")),
    "dev_urandom": ("/dev/urandom", 2, ("character device",)),
    "fifo": ("fifo", 2, ("FIFO",)),
    "flood_1m_notes": (lambda: H.note_flood_midi(1_000_000), 2, ("500,000 MIDI messages", "QBDI_MAX_MIDI_MESSAGES=")),
    "flood_40mb": (lambda: H.note_flood_midi(6_500_000), 2, ("37.2 MiB", "QBDI_MAX_MIDI_BYTES=")),
    "time_sig_zero": (H.time_sig_zero_midi, 2, ("time signature 0/4",)),
    "tracks_40000": (lambda: H.many_tracks_midi(40_000), 0, ()),
    "unknown_chunk": (H.unknown_chunk_midi, 0, ()),
    "slow_tempo": (lambda: H.slow_tempo_midi(155), 0, ()),
}


@pytest.mark.parametrize("case", sorted(FRAMES_CASES))
def test_frames_on_hostile_input(tmp_path, case):
    make, code, words = FRAMES_CASES[case]
    if make == "fifo":
        f = tmp_path / "q.mid"
        os.mkfifo(f)
    elif isinstance(make, str):
        f = make
    else:
        f = write(tmp_path / "q.mid", make())
    p = qbdi(["frames", f], tmp_path)
    if code == 2:
        one_line_exit_2(p, *words)
    else:
        assert p.returncode == 0 and p.stderr == "", p.stderr[-2000:]
        assert " 0 frames" not in p.stdout


def test_a_fifo_as_query_is_refused_before_the_model_loads(tmp_path, model_dir):
    f = tmp_path / "q.mid"
    os.mkfifo(f)
    p = qbdi(["improvise", "--model", model_dir, "--query", f, "--bits", "64", "--out", tmp_path / "o.mid"],
             tmp_path, PLAIN_BUDGET)  # the plain budget: TensorFlow would not even fit
    one_line_exit_2(p, "q.mid", "FIFO")


@pytest.mark.parametrize("bars, code", [(8, 0), (155, 2)])
def test_slow_tempo_wav_is_clamped_and_capped(tmp_path, model_dir, bars, code):
    """Tempo 0xFFFFFF (3.58 bpm) is read as 20 bpm: 8 bars render (96 s of audio), 155 bars would
    be 1,860 s, over QBDI_MAX_AUDIO_SECONDS, refused before the model works."""
    q = write(tmp_path / "slow.mid", H.slow_tempo_midi(bars))
    out, wav = tmp_path / "o.mid", tmp_path / "o.wav"
    p = qbdi(["improvise", "--model", model_dir, "--query", q, "--bits", "64", "--out", out, "--wav", wav],
             tmp_path, MODEL_BUDGET)
    if code == 0:
        assert p.returncode == 0, p.stderr[-2000:]
        assert wav.stat().st_size > 96 * 22050 * 2 and "20 bpm" in p.stdout
    else:
        one_line_exit_2(p, "slow.mid", "1,860 s", "QBDI_MAX_AUDIO_SECONDS=1860")
        assert not out.exists() and not wav.exists()


def test_a_255_byte_output_name_is_written_by_improvise(tmp_path, model_dir):
    q = write(tmp_path / "q.mid", H.smf([H.note_track(4)]))
    out = tmp_path / ("o" * 251 + ".mid")
    p = qbdi(["improvise", "--model", model_dir, "--query", q, "--bits", "64", "--out", out],
             tmp_path, MODEL_BUDGET)
    assert p.returncode == 0, p.stderr[-2000:]
    assert out.is_file() and pianoroll.read_midi(out).n_steps == 4 * 16
