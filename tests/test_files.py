"""The write discipline of qbdi_utils.files: atomic files, exclusive creation, output sets, folder swaps.

Faults are injected the ways root cannot bypass (these tests run as root in CI): the file-size limit
(RLIMIT_FSIZE in a child process), a file where a folder should be, SIGKILL between two stages,
and ENOSPC/EIO raised by a patched os.write / os.fsync. Permission bits are only tested when not root.
"""

from __future__ import annotations

import csv
import errno
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from qbdi_utils import files, paths, progress, tables
from qbdi_utils.errors import FileSystemError, OutputExistsError, QbdiError

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
CHILD_ENV = {**os.environ, "PYTHONPATH": str(paths.REPO_ROOT)}


def _child(code: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=CHILD_ENV, **kw)


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder (hidden ones included) by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ---------------------------------------------------------------------------------------------
# names

def test_hidden_names_are_hidden_keep_suffix_and_are_recognised(tmp_path):
    a, b = files.hidden_name(tmp_path / "x.npz"), files.hidden_name(tmp_path / "x.npz")
    assert a != b and a.parent == tmp_path and a.name.startswith(".") and a.suffix == ".npz"
    assert files.is_leftover(a) and files.is_leftover(files.hidden_name(tmp_path / "m", "old"))
    assert not files.is_leftover(tmp_path / "x.npz") and not files.is_leftover(tmp_path / ".x.npz")


# ---------------------------------------------------------------------------------------------
# atomic files

def test_write_bytes_creates_exactly_and_leaves_nothing_else(tmp_path):
    data = os.urandom(300_000)
    p = files.write_bytes(tmp_path / "sub" / "a.bin", data)
    assert p.read_bytes() == data
    assert os.listdir(tmp_path / "sub") == ["a.bin"]


def test_without_force_existing_is_refused_and_untouched_with_force_replaced(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(OutputExistsError) as e:
        files.write_text(p, "new")
    assert str(p) in str(e.value) and "--force" in str(e.value)
    assert p.read_text() == "old"
    files.write_text(p, "new", force=True)
    assert p.read_text() == "new" and os.listdir(tmp_path) == ["a.txt"]


def test_force_onto_a_folder_is_an_error(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(FileSystemError, match="folder"):
        files.write_bytes(tmp_path / "d", b"x", force=True)
    assert (tmp_path / "d").is_dir() and os.listdir(tmp_path) == ["d"]


def test_write_with_a_library_writer_keeps_the_suffix(tmp_path):
    a = np.arange(10.0)
    p = files.write_with(tmp_path / "w.npz", lambda tmp: np.savez(tmp, a=a))  # savez adds .npz if missing
    np.testing.assert_array_equal(np.load(p)["a"], a)
    assert os.listdir(tmp_path) == ["w.npz"]


def test_writer_exception_leaves_nothing(tmp_path):
    def bad(tmp):
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        files.write_with(tmp_path / "x.mid", bad)
    assert os.listdir(tmp_path) == []


def _race_writer(path, data, barrier, q, no_links):
    if no_links:
        def no_link(*a, **k):
            raise OSError(errno.EPERM, "Operation not permitted")
        os.link = no_link
    barrier.wait()
    try:
        files.write_bytes(path, data)
        q.put(("won", data[:1]))
    except OutputExistsError:
        q.put(("lost", data[:1]))
    except Exception as exc:  # pragma: no cover - reported as a failure
        q.put(("error", repr(exc)))


@pytest.mark.parametrize("no_links", [False, True], ids=["hard-link", "O_EXCL-fallback"])
def test_two_processes_racing_without_force_exactly_one_wins(tmp_path, no_links):
    ctx = multiprocessing.get_context("fork")
    for rnd in range(4):
        path = tmp_path / f"race{rnd}.bin"
        barrier, q = ctx.Barrier(2), ctx.Queue()
        payload = {b"A": b"A" * 3_000_000, b"B": b"B" * 2_000_000}
        procs = [ctx.Process(target=_race_writer, args=(path, payload[k], barrier, q, no_links))
                 for k in payload]
        for p in procs:
            p.start()
        results = [q.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(60)
        assert sorted(r[0] for r in results) == ["lost", "won"], results
        winner = next(r[1] for r in results if r[0] == "won")
        assert path.read_bytes() == payload[winner]  # the winner's whole content
    assert sorted(os.listdir(tmp_path)) == [f"race{r}.bin" for r in range(4)]  # no temporaries, no claims


def test_no_hard_links_fallback_is_exclusive_and_clean(tmp_path, monkeypatch):
    def no_link(*a, **k):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "link", no_link)
    p = files.write_bytes(tmp_path / "f.mid", b"one")
    with pytest.raises(OutputExistsError):
        files.write_bytes(p, b"two")
    assert p.read_bytes() == b"one" and os.listdir(tmp_path) == ["f.mid"]


def test_fallback_killed_between_claim_and_rename_is_cleaned(tmp_path):
    dest = tmp_path / "f.mid"
    r = _child(f"""
        import os, errno
        from qbdi_utils import files
        def no_link(*a, **k):
            raise OSError(errno.EPERM, "no hard links here")
        os.link = no_link
        files.atomic.stage_hook = lambda stage: os._exit(9) if stage == "claimed" else None
        files.write_bytes({str(dest)!r}, b"content")
    """)
    assert r.returncode == 9, r.stderr
    left = sorted(os.listdir(tmp_path))
    assert "f.mid" in left and dest.stat().st_size == 0 and len(left) == 3  # placeholder, claim, tmp
    files.clean_leftovers(tmp_path)
    assert os.listdir(tmp_path) == []
    files.write_bytes(dest, b"content")  # a rerun without --force now works
    assert dest.read_bytes() == b"content"


@pytest.mark.parametrize("force", [False, True])
def test_file_size_limit_during_atomic_write_keeps_old_content(tmp_path, force):
    dest = tmp_path / "m.bin"
    old = os.urandom(20_000)
    if force:
        dest.write_bytes(old)
    r = _child(f"""
        import resource, signal, sys
        from qbdi_utils import files
        from qbdi_utils.errors import FileSystemError
        assert files.ignore_sigxfsz()
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            files.write_bytes({str(dest)!r}, b"n" * 400_000, force={force})
        except FileSystemError as e:
            print(e)
            sys.exit(3)
    """)
    assert r.returncode == 3, (r.returncode, r.stderr)
    msg = r.stdout.strip()
    assert len(msg.splitlines()) == 1 and str(dest) in msg and "file-size limit" in msg
    if force:
        assert _tree(tmp_path) == {"m.bin": old}  # byte-identical, and nothing else (no partial temp)
    else:
        assert os.listdir(tmp_path) == []


def test_without_ignoring_sigxfsz_the_limit_kills_the_process(tmp_path):
    """Why the CLI calls ignore_sigxfsz: by default the kernel's SIGXFSZ kills before Python sees EFBIG."""
    r = _child(f"""
        import resource, signal
        from qbdi_utils import files
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))
        files.write_bytes({str(tmp_path / "x")!r}, b"n" * 50_000)
    """)
    assert r.returncode == -signal.SIGXFSZ


@pytest.mark.parametrize("fn", ["write", "fsync"])
@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk full"), (errno.EIO, "input/output error")])
def test_disk_full_or_io_error_keeps_old_content(tmp_path, monkeypatch, fn, code, words):
    dest = tmp_path / "x.mid"
    dest.write_bytes(b"old")

    def fail(*a, **k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, fn, fail)
    with pytest.raises(FileSystemError) as e:
        files.write_bytes(dest, b"new" * 1000, force=True)
    msg = str(e.value)
    assert msg.startswith(f"{dest}: cannot write:") and words in msg and "\n" not in msg
    assert e.value.errno == code
    monkeypatch.undo()
    assert _tree(tmp_path) == {"x.mid": b"old"}


def test_file_where_a_folder_should_be(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    for call in (lambda: files.write_bytes(blocker / "x.mid", b"1"),
                 lambda: files.write_bytes(blocker / "a" / "x.mid", b"1"),
                 lambda: files.check_writable(blocker / "out"),
                 lambda: files.check_outputs([blocker / "x.mid"])):
        with pytest.raises(FileSystemError) as e:
            call()
        assert f"{blocker} is a file, not a folder" in str(e.value)
    with pytest.raises(FileSystemError, match="is a file, not a folder"):
        with files.replacing_dir(blocker):
            pass
    assert _tree(tmp_path) == {"f": b"x"}


@pytest.mark.skipif(IS_ROOT, reason="root bypasses permission bits, so a read-only folder is writable")
def test_permission_denied_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(FileSystemError, match="permission denied"):
            files.check_writable(ro)
        with pytest.raises(FileSystemError, match="permission denied"):
            files.write_bytes(ro / "x", b"1")
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("code, words", [
    (errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system"),
    (errno.EFBIG, "file-size limit"), (errno.ENOSPC, "disk full"), (errno.EDQUOT, "quota"),
    (errno.ELOOP, "link loop"), (errno.ENAMETOOLONG, "name too long")])
def test_fs_error_names_path_and_cause(code, words):
    e = files.fs_error(OSError(code, os.strerror(code), "/some/where/x.mid"))
    assert isinstance(e, QbdiError) and e.path == Path("/some/where/x.mid") and e.errno == code
    assert str(e) == f"/some/where/x.mid: cannot write: {files.cause_in_words(OSError(code, ''))}"
    assert words in str(e)


def test_fs_error_missing_folder_and_temporary_names(tmp_path):
    e = files.fs_error(OSError(errno.ENOENT, "x", str(tmp_path / "a" / "b" / "x.mid")))
    assert f"folder {tmp_path / 'a'} does not exist" in str(e)
    tmp = files.hidden_name(tmp_path / "x.mid")
    assert files.fs_error(OSError(errno.ENOSPC, "x", str(tmp))).path == tmp_path / "x.mid"


def test_check_writable_creates_nothing(tmp_path):
    assert files.check_writable(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    files.check_writable(tmp_path)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# csv

def test_write_csv_round_trips_through_the_csv_module(tmp_path):
    rows = [{"name": "a,b", "x": 0.1, "n": 3}, {"name": 'say "hi"', "x": 1 / 3, "n": np.int64(4)},
            {"name": "z", "n": 5}]
    p = files.write_csv(rows, tmp_path / "t.csv")
    with open(p, newline="") as fh:
        back = list(csv.DictReader(fh))
    assert [r["name"] for r in back] == ["a,b", 'say "hi"', "z"]
    assert [float(r["x"]) for r in back[:2]] == [0.1, 1 / 3] and back[2]["x"] == ""
    assert [int(r["n"]) for r in back] == [3, 4, 5]
    assert "\r" not in p.read_text()
    with pytest.raises(OutputExistsError):
        files.write_csv(rows, p)
    files.write_csv([[1, np.float32(0.5)]], p, columns=["a", "b"], force=True, float_format=".4f")
    assert p.read_text() == "a,b\n1,0.5000\n"


def test_csv_text_needs_columns_and_refuses_unknown_keys():
    with pytest.raises(ValueError):
        tables.csv_text([])
    assert tables.csv_text([], ["a", "b"]) == "a,b\n"
    with pytest.raises(ValueError):
        tables.csv_text([{"a": 1, "c": 2}], ["a", "b"])


# ---------------------------------------------------------------------------------------------
# output sets

def test_output_set_commits_all_members(tmp_path):
    with files.OutputSet() as outs:
        outs.add_bytes(tmp_path / "o" / "a.mid", b"midi")
        outs.add_text(tmp_path / "o" / "b.json", "{}")
        outs.add_csv(tmp_path / "o" / "c.csv", [{"k": 1}])
        outs.add_with(tmp_path / "o" / "d.npz", lambda t: np.savez(t, x=np.ones(3)))
        assert not (tmp_path / "o" / "a.mid").exists()  # nothing visible before the commit
    assert sorted(os.listdir(tmp_path / "o")) == ["a.mid", "b.json", "c.csv", "d.npz"]
    assert (tmp_path / "o" / "a.mid").read_bytes() == b"midi"


def test_output_set_failure_leaves_nothing_not_even_its_folders(tmp_path):
    with pytest.raises(RuntimeError):
        with files.OutputSet() as outs:
            outs.add_bytes(tmp_path / "new" / "deeper" / "a.mid", b"midi")
            outs.add_bytes(tmp_path / "new" / "deeper" / "b.wav", b"wav")
            raise RuntimeError("the WAV renderer failed")
    assert os.listdir(tmp_path) == []


def test_output_set_member_created_meanwhile_rolls_back_the_others(tmp_path):
    with pytest.raises(OutputExistsError) as e:
        with files.OutputSet() as outs:
            outs.add_bytes(tmp_path / "a.mid", b"mine")
            outs.add_bytes(tmp_path / "b.wav", b"mine")
            (tmp_path / "b.wav").write_bytes(b"someone else's")  # another run got there first
    assert e.value.path == tmp_path / "b.wav"
    assert _tree(tmp_path) == {"b.wav": b"someone else's"}


def test_output_set_force_failure_in_commit_restores_replaced_files(tmp_path, monkeypatch):
    (tmp_path / "a.mid").write_bytes(b"old a")
    (tmp_path / "b.wav").write_bytes(b"old b")
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error", str(src))
        return real_replace(src, dst)

    outs = files.OutputSet(force=True)
    outs.add_bytes(tmp_path / "a.mid", b"new a")
    outs.add_bytes(tmp_path / "b.wav", b"new b")
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(FileSystemError, match="input/output error"):
        outs.commit()
    monkeypatch.undo()
    assert _tree(tmp_path) == {"a.mid": b"old a", "b.wav": b"old b"}


def test_output_set_refuses_existing_member_before_writing_anything(tmp_path):
    (tmp_path / "b.wav").write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        with files.OutputSet() as outs:
            outs.add_bytes(tmp_path / "a.mid", b"x")
            outs.add_bytes(tmp_path / "b.wav", b"x")
    assert _tree(tmp_path) == {"b.wav": b"keep"}


# ---------------------------------------------------------------------------------------------
# folders

def _write_model(folder: Path, tag: bytes, size: int = 1000) -> None:
    (folder / "weights.npz").write_bytes(tag * size)
    (folder / "model.json").write_bytes(b'{"tag": "' + tag + b'"}')


def test_replacing_dir_creates_refuses_and_replaces(tmp_path):
    m = tmp_path / "M"
    with files.replacing_dir(m) as stage:
        assert stage.parent == tmp_path and stage.name.startswith(".")
        _write_model(stage, b"1")
    assert _tree(m) == {"weights.npz": b"1" * 1000, "model.json": b'{"tag": "1"}'}
    with pytest.raises(OutputExistsError):
        with files.replacing_dir(m) as stage:
            _write_model(stage, b"2")
    assert _tree(m)["model.json"] == b'{"tag": "1"}'
    with files.replacing_dir(m, force=True) as stage:
        _write_model(stage, b"2", 10)
    assert _tree(m) == {"weights.npz": b"2" * 10, "model.json": b'{"tag": "2"}'}
    assert os.listdir(tmp_path) == ["M"]


def test_replacing_dir_exception_keeps_old_folder(tmp_path):
    m = tmp_path / "M"
    m.mkdir()
    _write_model(m, b"1")
    before = _tree(m)
    with pytest.raises(ValueError):
        with files.replacing_dir(m, force=True) as stage:
            _write_model(stage, b"2")
            raise ValueError("loss is not finite")
    assert _tree(m) == before and os.listdir(tmp_path) == ["M"]


def test_file_size_limit_during_folder_replace_keeps_old_folder(tmp_path):
    m = tmp_path / "M"
    m.mkdir()
    _write_model(m, b"1", 20_000)
    before = _tree(m)
    r = _child(f"""
        import resource, sys
        from pathlib import Path
        from qbdi_utils import files
        from qbdi_utils.errors import FileSystemError
        files.ignore_sigxfsz()
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            with files.replacing_dir({str(m)!r}, force=True) as stage:
                (Path(stage) / "model.json").write_text("{{}}")
                files.write_bytes(Path(stage) / "weights.npz", b"2" * 500_000)
        except FileSystemError as e:
            print(e)
            sys.exit(3)
    """)
    assert r.returncode == 3, r.stderr
    assert "file-size limit" in r.stdout
    assert _tree(m) == before and os.listdir(tmp_path) == ["M"]


@pytest.mark.parametrize("stage, expect", [("dir-staged", b"1"), ("dir-swapped-out", b"1"),
                                           ("dir-swapped-in", b"2")])
def test_sigkill_during_folder_replace_then_next_run_repairs(tmp_path, stage, expect):
    m = tmp_path / "M"
    m.mkdir()
    _write_model(m, b"1")
    trees = {b"1": _tree(m)}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from qbdi_utils import files

        def pause(stage):
            if stage == {stage!r}:
                print("PAUSED", flush=True)
                time.sleep(120)

        files.atomic.stage_hook = pause
        with files.replacing_dir({str(m)!r}, force=True) as st:
            (Path(st) / "weights.npz").write_bytes(b"2" * 1000)
            (Path(st) / "model.json").write_bytes(b'{{"tag": "2"}}')
    """)], stdout=subprocess.PIPE, text=True, env=CHILD_ENV)
    try:
        assert proc.stdout.readline().strip() == "PAUSED"
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    trees[b"2"] = {"weights.npz": b"2" * 1000, "model.json": b'{"tag": "2"}'}
    left = [n for n in os.listdir(tmp_path) if n != "M"]
    assert left and all(files.is_leftover(n) for n in left)
    if stage == "dir-swapped-out":
        assert not m.exists()  # the one window: the old folder is the hidden backup right now
    files.clean_leftovers(tmp_path)
    assert os.listdir(tmp_path) == ["M"] and _tree(m) == trees[expect]


def test_clean_leftovers_spares_live_writers_and_removes_dead_or_stale(tmp_path):
    dead = _dead_pid()
    mine = files.hidden_name(tmp_path / "a.mid")                   # this (live) process
    theirs = tmp_path / f".b.mid.qbdi-tmp-{dead}-0.mid"            # a killed run
    stale = tmp_path / f".c.mid.qbdi-tmp-{os.getpid()}-99999.mid"  # live pid, but a day old
    other = tmp_path / ".hidden-but-not-ours"
    for p in (mine, theirs, stale, other):
        p.write_bytes(b"x")
    old = time.time() - files.STALE_AFTER_S - 10
    os.utime(stale, (old, old))
    done = files.clean_leftovers(tmp_path)
    assert sorted(done) == sorted([theirs, stale])
    assert sorted(os.listdir(tmp_path)) == sorted([mine.name, other.name])
    assert files.clean_leftovers(tmp_path / "missing") == []


def test_clean_leftovers_restores_a_backup_only_when_the_folder_is_gone(tmp_path):
    dead = _dead_pid()
    backup = tmp_path / f".M.qbdi-old-{dead}-0"
    backup.mkdir()
    (backup / "model.json").write_text("old")
    files.clean_leftovers(tmp_path)
    assert os.listdir(tmp_path) == ["M"] and (tmp_path / "M" / "model.json").read_text() == "old"
    backup.mkdir()
    (backup / "model.json").write_text("older")
    files.clean_leftovers(tmp_path)
    assert os.listdir(tmp_path) == ["M"] and (tmp_path / "M" / "model.json").read_text() == "old"


# ---------------------------------------------------------------------------------------------
# progress bars

class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_kwargs_policy():
    assert progress.progress_kwargs(_Tty(), desc="x")["desc"] == "x"
    assert "mininterval" not in progress.progress_kwargs(_Tty())
    kw = progress.progress_kwargs(io.StringIO(), mininterval=1.0)
    assert kw["mininterval"] >= progress.NON_TTY_MININTERVAL_S and kw["maxinterval"] >= kw["mininterval"]


def test_progress_to_a_log_writes_a_few_states_not_one_per_step():
    from tqdm import tqdm

    def states(make):
        buf = io.StringIO()
        for _ in make(range(40), buf):
            time.sleep(0.01)
        return buf.getvalue().count("\r") + buf.getvalue().count("\n")

    plain = states(lambda it, buf: tqdm(it, file=buf, mininterval=0.02))
    ours = states(lambda it, buf: progress.progress(it, file=buf, mininterval=0.02))
    assert plain > 10, plain  # the problem: a redraw every few steps
    assert ours <= 3, ours    # start, end (and the closing newline)


def test_failed_writes_remove_the_folders_they_created(tmp_path):
    def bad(tmp):
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError):
        files.write_with(tmp_path / "a" / "b" / "x.wav", bad)
    with pytest.raises(RuntimeError):
        with files.replacing_dir(tmp_path / "c" / "M"):
            raise RuntimeError("training failed")
    assert os.listdir(tmp_path) == []


def _can_mount_privately() -> bool:
    import shutil as _sh

    if not IS_ROOT or _sh.which("unshare") is None:
        return False
    r = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m none /mnt"],
                       capture_output=True, timeout=30)
    return r.returncode == 0


@pytest.mark.skipif(not _can_mount_privately(),
                    reason="needs root with mount rights in a private mount namespace (unshare -m) to make a "
                           "read-only file system; root bypasses permission bits, so nothing else gives EROFS")
def test_read_only_file_system_keeps_old_content(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = textwrap.dedent(f"""
        import sys
        from qbdi_utils import files
        from qbdi_utils.errors import FileSystemError
        for call in (lambda: files.check_writable({str(mnt)!r}),
                     lambda: files.write_bytes({str(mnt / "x.mid")!r}, b"new", force=True)):
            try:
                call()
            except FileSystemError as e:
                print(e)
        print(open({str(mnt / "x.mid")!r}, "rb").read())
    """)
    # a private mount namespace: the read-only tmpfs vanishes with the child
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        f"mount -t tmpfs -o size=1m none {mnt} && printf old > {mnt}/x.mid && "
                        f"mount -o remount,ro {mnt} && {sys.executable} -B -c \"$0\"", script],
                       capture_output=True, text=True, timeout=120, env=CHILD_ENV)
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and len(lines) == 3, (r.stdout, r.stderr)
    assert lines[0] == f"{mnt}: cannot write: read-only file system"
    assert lines[1] == f"{mnt / 'x.mid'}: cannot write: read-only file system"
    assert lines[2] == "b'old'"


def test_check_dir_output(tmp_path):
    m = tmp_path / "M"
    assert files.check_dir_output(m) == m and not m.exists()
    m.mkdir()
    files.check_dir_output(m)  # an empty folder may be filled
    (m / "model.json").write_text("{}")
    with pytest.raises(OutputExistsError):
        files.check_dir_output(m)
    files.check_dir_output(m, force=True)
    with pytest.raises(FileSystemError, match="is a file, not a folder"):
        files.check_dir_output(m / "model.json", force=True)
    with pytest.raises(FileSystemError, match=f"{m / 'model.json'} is a file, not a folder"):
        files.check_dir_output(m / "model.json" / "sub")
    assert _tree(tmp_path) == {"M/model.json": b"{}"}


def test_csv_text_can_leave_out_keys_outside_the_columns():
    rows = [{"a": 1, "b": 2.5, "note": "not shown"}, {"b": 0.125, "a": 3}]
    assert tables.csv_text(rows, ["a", "b"], extra="ignore") == "a,b\n1,2.5\n3,0.125\n"
    with pytest.raises(ValueError, match="note"):
        tables.csv_text(rows, ["a", "b"])
    with pytest.raises(ValueError, match="extra"):
        tables.csv_text(rows, ["a", "b"], extra="drop")
