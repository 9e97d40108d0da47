"""How the package writes anything a user keeps: atomic files, output sets, model folders.

The discipline (issue 11):

* **Atomic files.** Data goes to a hidden temporary name in the destination folder
  (``.NAME.qbdi-tmp-PID-N[.ext]``), is flushed and fsync'ed, and only then renamed into place, so a
  reader sees the old file or the whole new one, never a partial one. A NAME so long (up to the
  255-byte NAME_MAX) that the hidden name would not fit is replaced there by a hash of it
  (``.qbdi-long-HASH.qbdi-tmp-PID-N[.ext]``); a folder backup under such a name whose destination
  is gone is kept rather than restored, since its name cannot be recovered.
* **Exclusive creation without force.** When overwriting is not allowed the finished temporary is
  hard-linked to the destination (``os.link`` fails if the destination exists, atomically), then
  unlinked. Of two racing writers exactly one wins; the other gets
  :class:`~qbdi_utils.errors.OutputExistsError`. Where the file system has no hard links, the
  fallback claims the name with ``O_CREAT | O_EXCL`` (an empty placeholder, after leaving a hidden
  ``.NAME.qbdi-claim-PID-N`` marker) and renames the temporary over it; a run killed between the two
  steps leaves an empty placeholder and its marker, and :func:`clean_leftovers` removes both.
* **Output sets.** :class:`OutputSet` stages several files and commits them together: all appear or
  none does (on an exception the temporaries, the members already moved into place and the folders
  the set created are removed; files that were overwritten are put back).
* **Model folders.** :func:`replacing_dir` stages the complete new folder beside the destination
  (``.NAME.qbdi-new-PID-N``) and swaps it in with two renames: destination -> hidden backup
  (``.NAME.qbdi-old-PID-N``), staged -> destination, then the backup is deleted. The one window
  POSIX cannot close is between the two renames, when the destination name is briefly absent; a run
  killed exactly there leaves the complete old folder as the backup, and the next run's
  :func:`clean_leftovers` renames it back. A leftover backup whose destination exists (the swap was
  done, the deletion was not) is deleted.
* **Leftovers** of a killed run are hidden names carrying the writer's process id; they are removed
  (or, for a backup, restored) by :func:`clean_leftovers` once that process is gone (or the leftover
  is older than :data:`STALE_AFTER_S`), which every writer here calls once per folder per process.
* **Errors.** An :class:`OSError` becomes :class:`~qbdi_utils.errors.FileSystemError`, one line naming
  the path and the cause in words (:func:`fs_error`). :func:`check_writable` checks a destination up
  front.

The file-size limit (``ulimit -f``): exceeding it sends SIGXFSZ, whose default action kills the
process before Python sees the error. CPython ignores SIGXFSZ at start-up, so a plain ``python`` /
``qbdi`` process gets ``OSError(EFBIG)``; :func:`ignore_sigxfsz` (called again by the ``qbdi`` command)
keeps it so when an embedding interpreter or a library restored the default. The EFBIG then becomes
a FileSystemError like any other.

Leftover detection uses process ids, so it is exact on one machine; on a folder shared by several
machines a leftover of a live writer elsewhere is only removed after :data:`STALE_AFTER_S`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
import re
import shutil
import signal
import stat
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from qbdi_utils.errors import FileSystemError, OutputExistsError
from qbdi_utils.tables import csv_text

__all__ = [
    "STALE_AFTER_S",
    "EXISTS_HINT",
    "hidden_name",
    "NAME_MAX",
    "LONG_NAME_PREFIX",
    "is_leftover",
    "fs_error",
    "cause_in_words",
    "check_writable",
    "check_outputs",
    "check_dir_output",
    "write_bytes",
    "write_text",
    "write_with",
    "write_csv",
    "OutputSet",
    "replacing_dir",
    "clean_leftovers",
    "ignore_sigxfsz",
]

STALE_AFTER_S = 24 * 3600
"""A leftover older than this (seconds) is removed even if its process id is in use again."""

EXISTS_HINT = "exists; pass --force (force=True) to overwrite it"
"""Message of OutputExistsError raised here (the path is prepended)."""

NAME_MAX = 255
"""Longest file name in bytes (Linux, macOS); a hidden name that would be longer embeds a hash."""
LONG_NAME_PREFIX = "qbdi-long-"
"""Hidden names of destinations longer than NAME_MAX allows start ``.qbdi-long-HASH``."""

_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.qbdi-(?P<kind>tmp|new|old|claim)-(?P<pid>\d+)-(?P<n>\d+)"
                       r"(?P<ext>\.[^.]*)?$")
_counter = itertools.count()
_cleaned: set[str] = set()

# errno -> cause in words, for fs_error
_CAUSES = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a file is where a folder should be",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (the file-size limit, ulimit -f, was reached)",
    errno.EROFS: "read-only file system",
    errno.EEXIST: "already exists",
    errno.ENOTEMPTY: "folder is not empty",
    errno.ENAMETOOLONG: "name too long",
    errno.ELOOP: "too many levels of symbolic links (a link loop)",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files in the system",
    errno.EIO: "input/output error (the device reported a fault)",
    errno.EBUSY: "device or resource busy",
    errno.ETXTBSY: "file busy",
    errno.EXDEV: "on another file system",
    errno.EINVAL: "invalid name or argument for this file system",
}
# link() errors meaning "this file system has no hard links" (fall back to the O_EXCL placeholder)
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}


def _hook(stage: str) -> None:
    """Called between the stages of a write; a no-op (tests replace it to pause or fail there)."""


# ---------------------------------------------------------------------------------------------
# names and errors

def hidden_name(path: str | Path, kind: str = "tmp") -> Path:
    """A fresh hidden sibling of ``path``: ``.NAME.qbdi-KIND-PID-N`` (+ NAME's suffix for ``tmp``).

    Args:
        path: the destination.
        kind: ``tmp`` (a file being written), ``new`` (a folder being staged), ``old`` (a folder
            being replaced) or ``claim`` (marker of the no-hard-link fallback).

    Returns:
        The sibling path (not created). The suffix is kept for ``tmp`` so that libraries that pick a
        format from the extension (matplotlib, numpy's .npz) write the right thing.
    """
    path = Path(path)
    ext = path.suffix if kind == "tmp" else ""
    tail = f".qbdi-{kind}-{os.getpid()}-{next(_counter)}{ext}"
    name = f".{path.name}{tail}"
    if len(os.fsencode(name)) > NAME_MAX:
        # a legal long name (up to NAME_MAX bytes) has no room for the tail: stand for it by a hash
        name = f".{LONG_NAME_PREFIX}{_name_hash(path.name)}{tail}"
    return path.with_name(name)


def _name_hash(name: str) -> str:
    """16 hex digits standing for a file name too long to be embedded in a hidden name."""
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:16]


def _destination(folder: Path, embedded: str, names: list[str]) -> Path | None:
    """The destination a leftover stands for: ``embedded`` itself, or for a long name's hash the
    entry of ``names`` with that hash (None when no such entry exists any more)."""
    if not embedded.startswith(LONG_NAME_PREFIX):
        return folder / embedded
    digest = embedded[len(LONG_NAME_PREFIX):]
    for n in names:
        if not n.startswith(".") and _name_hash(n) == digest:
            return folder / n
    return None


def is_leftover(path: str | Path) -> bool:
    """Whether ``path``'s name is one of the hidden names :func:`hidden_name` makes."""
    return _LEFTOVER.match(Path(path).name) is not None


def cause_in_words(exc: OSError) -> str:
    """The cause of an OSError in a few words ("permission denied", "disk full", ...)."""
    if exc.errno in _CAUSES:
        return _CAUSES[exc.errno]
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


def _blocking_file(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` that exists but is not a folder, if any."""
    for p in [path, *path.parents]:
        try:
            st = os.stat(p)
        except OSError:
            continue
        return None if stat.S_ISDIR(st.st_mode) else p
    return None


def fs_error(exc: OSError, path: str | Path | None = None, action: str = "write") -> FileSystemError:
    """Turn an OSError into a one-line :class:`FileSystemError` naming the path and the cause.

    Args:
        exc: the error.
        path: the path the user knows (default: ``exc.filename``).
        action: verb for the message: "write", "read", "create the folder", ...

    Returns:
        FileSystemError with ``.path`` and ``.errno`` set; raise it ``from None`` or ``from exc``.
    """
    if path is None:
        path = exc.filename if exc.filename is not None else "?"
    path = Path(os.fsdecode(path))
    # a leftover name means nothing to a user: report the destination it stands for
    m = _LEFTOVER.match(path.name)
    if m:
        path = path.with_name(m.group("name"))
    cause = cause_in_words(exc)
    if exc.errno == errno.ENOTDIR:
        blocker = _blocking_file(path.parent)
        if blocker is not None:
            cause = f"{blocker} is a file, not a folder"
    elif exc.errno == errno.ENOENT and action != "read":
        missing = None  # the outermost missing folder
        for p in path.parents:
            if p.exists():
                break
            missing = p
        if missing is not None:
            cause = f"folder {missing} does not exist"
    err = FileSystemError(f"cannot {action}: {cause}", path)
    err.errno = exc.errno
    return err


@contextlib.contextmanager
def _translated(path: Path, action: str = "write"):
    """Re-raise OSError inside the block as FileSystemError about ``path``."""
    try:
        yield
    except FileSystemError:
        raise
    except FileExistsError as exc:
        raise OutputExistsError(EXISTS_HINT, path) from exc
    except OSError as exc:
        raise fs_error(exc, path, action) from exc


def check_writable(folder: str | Path) -> Path:
    """Check up front that files can be created in ``folder`` (or in the folders it would need).

    The nearest existing ancestor must be a folder in which a file can be created: a hidden probe
    file is created there and removed. Nothing else is created.

    Args:
        folder: the folder outputs will go to (it need not exist yet).

    Returns:
        ``folder`` as a Path.

    Raises:
        FileSystemError: a file is where a folder should be, or the folder is not writable
            (permission denied, read-only file system, ...).
    """
    folder = Path(folder)
    probe_dir = next((p for p in [folder, *folder.parents] if os.path.lexists(p)), Path("."))
    if not probe_dir.is_dir():
        raise FileSystemError(f"cannot write: {probe_dir} is a file, not a folder", folder)
    probe = hidden_name(probe_dir / "probe")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        raise fs_error(exc, folder) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return folder


def check_outputs(paths: Iterable[str | Path], *, force: bool = False) -> list[Path]:
    """Check before any work that ``paths`` may be written: absent (unless force) and writable.

    This is the friendly early check; the exclusive creation at write time is what makes racing
    runs safe.

    Args:
        paths: destination files.
        force: existing files may be overwritten.

    Returns:
        The paths as Path objects.

    Raises:
        OutputExistsError: one exists and ``force`` is false.
        FileSystemError: one is a folder, or its folder cannot be written.

    Used in: ``qbdi analyze``.
    """
    out = [Path(p) for p in paths]
    for p in out:
        if p.is_dir():
            raise FileSystemError("cannot write: is a folder, not a file", p)
        if os.path.lexists(p) and not force:
            raise OutputExistsError(EXISTS_HINT, p)
    for parent in dict.fromkeys(p.parent for p in out):
        check_writable(parent)
    return out


def check_dir_output(dest: str | Path, *, force: bool = False) -> Path:
    """Check before any work that :func:`replacing_dir` can later create or replace folder ``dest``.

    Args:
        dest: the folder (e.g. a model directory) to be written.
        force: an existing non-empty folder may be replaced.

    Returns:
        ``dest`` as a Path.

    Raises:
        OutputExistsError: ``dest`` is a non-empty folder and ``force`` is false.
        FileSystemError: ``dest`` (or a folder above it) is a file, or its parent cannot be written.

    Used in: (phase 2) ``qbdi train`` before it loads the corpus.
    """
    dest = Path(dest)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise FileSystemError("cannot write: is a file, not a folder", dest)
    if not force and os.path.isdir(dest) and any(os.scandir(dest)):
        raise OutputExistsError(EXISTS_HINT, dest)
    check_writable(dest.parent)
    return dest


# ---------------------------------------------------------------------------------------------
# leftovers

def _alive(pid: int) -> bool:
    """Whether process ``pid`` may still be writing (unknown counts as alive)."""
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) would send Ctrl-C
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def _remove(p: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            os.unlink(p)


def clean_leftovers(folder: str | Path) -> list[Path]:
    """Remove (or restore) what killed runs left in ``folder``.

    * ``.X.qbdi-tmp-*`` / ``.X.qbdi-new-*``: removed.
    * ``.X.qbdi-old-*`` (a folder being replaced): renamed back to ``X`` when ``X`` is missing (the run
      died between the two renames of :func:`replacing_dir`), else removed.
    * ``.X.qbdi-claim-*``: removed, with ``X`` itself when ``X`` is still the empty placeholder.

    Only leftovers of processes no longer running (or older than :data:`STALE_AFTER_S`) are touched,
    so a concurrent writer's work in progress is left alone.

    Args:
        folder: the folder to clean; a missing folder is fine.

    Returns:
        The leftover paths dealt with.

    Raises:
        FileSystemError: a leftover could not be removed or restored.
    """
    folder = Path(folder)
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise fs_error(exc, folder, "read the folder") from None
    done = []
    now = time.time()
    for name in names:
        m = _LEFTOVER.match(name)
        if not m:
            continue
        p = folder / name
        try:
            age = now - os.lstat(p).st_mtime
        except FileNotFoundError:
            continue
        if _alive(int(m.group("pid"))) and age < STALE_AFTER_S:
            continue
        dest = _destination(folder, m.group("name"), names)
        with _translated(p, "clean up"):
            kind = m.group("kind")
            if kind == "old" and dest is None:
                continue  # a long name's backup whose destination is gone: kept, its name is unknown
            if kind == "old" and not os.path.lexists(dest):
                os.rename(p, dest)
            elif kind == "claim" and dest is None:
                os.unlink(p)
            elif kind == "claim":
                with contextlib.suppress(FileNotFoundError):
                    if dest.is_file() and not dest.is_symlink() and dest.stat().st_size == 0:
                        os.unlink(dest)
                os.unlink(p)
            else:
                _remove(p)
        done.append(p)
    return done


def _clean_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    if key not in _cleaned:
        clean_leftovers(folder)
        _cleaned.add(key)


# ---------------------------------------------------------------------------------------------
# files

def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (ignored where folders cannot be fsync'ed)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _make_parents(folder: Path, created: list[Path] | None = None) -> None:
    """mkdir -p ``folder``, appending the folders it created (outermost first) to ``created``."""
    missing = []
    for p in [folder, *folder.parents]:
        if os.path.isdir(p):
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            os.mkdir(p)
        except FileExistsError:
            if not os.path.isdir(p):
                raise FileSystemError(f"cannot create the folder: {p} is a file, not a folder",
                                      folder) from None
            continue
        except OSError as exc:
            raise fs_error(exc, p, "create the folder") from None
        if created is not None:
            created.append(p)


def _stage(dest: Path, write: Callable[[Path], object]) -> Path:
    """Create a hidden temporary beside ``dest``, let ``write(tmp)`` fill it, fsync it; return tmp."""
    for _ in range(1000):  # a name taken by a leftover of an earlier process with our pid: next one
        tmp = hidden_name(dest)
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise fs_error(exc, dest) from None
    else:
        raise FileSystemError("cannot write: no free temporary name beside it", dest)
    try:
        write(tmp)
        _hook("written")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):
            other = exc.filename is not None and Path(os.fsdecode(exc.filename)) != tmp
            raise fs_error(exc, None if other else dest) from None
        raise
    return tmp


def _bytes_writer(data: bytes) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        finally:
            os.close(fd)
    return write


def _publish(tmp: Path, dest: Path, force: bool) -> None:
    """Move a finished temporary into place: replace (force) or create exclusively. Removes tmp."""
    try:
        if force:
            if os.path.isdir(dest) and not os.path.islink(dest):
                raise FileSystemError("cannot write: is a folder, not a file", dest)
            os.replace(tmp, dest)
        else:
            _link_exclusive(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, FileExistsError):
            raise OutputExistsError(EXISTS_HINT, dest) from None
        if isinstance(exc, OSError):
            if exc.errno == errno.EISDIR:
                raise FileSystemError("cannot write: is a folder, not a file", dest) from None
            raise fs_error(exc, dest) from None
        raise
    _fsync_dir(dest.parent)


def _link_exclusive(tmp: Path, dest: Path) -> None:
    """Give ``tmp``'s content the name ``dest`` only if ``dest`` does not exist (then unlink tmp)."""
    try:
        os.link(tmp, dest)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        _claim_and_replace(tmp, dest)
        return
    os.unlink(tmp)


def _claim_and_replace(tmp: Path, dest: Path) -> None:
    """No-hard-link fallback: claim ``dest`` with O_EXCL, then rename ``tmp`` over the placeholder."""
    claim = hidden_name(dest, "claim")
    os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        os.close(os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        _hook("claimed")
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(claim)


def write_with(path: str | Path, write: Callable[[Path], object], *, force: bool = False,
               mkdir: bool = True) -> Path:
    """Atomically create ``path`` with a callback that writes a file at the temporary path it gets.

    For libraries that write to a path (scipy's wavfile, music21, matplotlib's savefig, numpy's
    savez): ``write(tmp)`` must write the whole file at ``tmp`` (same suffix as ``path``).

    Args:
        path: destination file.
        write: ``write(tmp_path)``; any exception it raises propagates after cleanup.
        force: replace an existing file; otherwise creation is exclusive.
        mkdir: create missing parent folders.

    Returns:
        ``path`` as a Path.

    Raises:
        OutputExistsError: ``path`` exists (also when another process created it meanwhile) and
            ``force`` is false.
        FileSystemError: any file-system fault, naming ``path`` and the cause.
    """
    path = Path(path)
    if not force and os.path.lexists(path):
        raise OutputExistsError(EXISTS_HINT, path)
    created: list[Path] = []
    try:
        if mkdir:
            _make_parents(path.parent, created)
        _clean_once(path.parent)
        tmp = _stage(path, write)
        _hook("staged")
        _publish(tmp, path, force)
    except BaseException:
        _remove_empty(created)
        raise
    return path


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders a failed write created (innermost first), if still empty."""
    for d in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(d)


def write_bytes(path: str | Path, data: bytes, *, force: bool = False, mkdir: bool = True) -> Path:
    """Atomically write ``data`` to ``path`` (force, mkdir as in :func:`write_with`); returns ``path``.

    Raises:
        OutputExistsError, FileSystemError: as :func:`write_with`.
    """
    return write_with(path, _bytes_writer(bytes(data)), force=force, mkdir=mkdir)


def write_text(path: str | Path, text: str, *, force: bool = False, mkdir: bool = True,
               encoding: str = "utf-8") -> Path:
    """Atomically write ``text`` to ``path`` (newlines as given; see :func:`write_with`); returns ``path``.

    Raises:
        OutputExistsError, FileSystemError: as :func:`write_with`.
    """
    return write_bytes(path, text.encode(encoding), force=force, mkdir=mkdir)


def write_csv(rows: Iterable, path: str | Path, *, columns: list[str] | None = None,
              force: bool = False, float_format: str | None = None, extra: str = "error") -> Path:
    """Atomically write a table as CSV (:func:`qbdi_utils.tables.csv_text`), the one CSV writer of the package.

    Args:
        rows: dicts or sequences (see :func:`qbdi_utils.tables.csv_text`).
        path: destination .csv file.
        columns: header (see :func:`qbdi_utils.tables.csv_text`).
        force: replace an existing file.
        float_format: e.g. ".4f"; default exact ``repr``.
        extra: "error" or "ignore" for dict keys outside ``columns`` (see :func:`qbdi_utils.tables.csv_text`).

    Returns:
        ``path`` as a Path.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
        FileSystemError: a file-system fault.

    Used in: ``qbdi analyze`` (through :meth:`OutputSet.add_csv`).
    """
    return write_text(path, csv_text(rows, columns, float_format=float_format, extra=extra), force=force)


# ---------------------------------------------------------------------------------------------
# output sets

class OutputSet:
    """Several output files that appear all together or not at all.

    Use as a context manager; members are staged as hidden temporaries while the block runs and
    moved into place when it ends without an exception::

        with OutputSet(force=args.force) as outs:
            outs.add_bytes(mid_path, midi_bytes)
            outs.add_with(wav_path, lambda tmp: wavfile.write(tmp, sr, audio))
        # here both exist, or (after an exception) neither was created or changed

    Without ``force``, creation is exclusive: if any member exists at commit time (checked at
    ``add_*`` already, and atomically again at commit), the set is rolled back and
    OutputExistsError raised. With ``force``, replaced files are kept as hidden backups until the
    whole set is in place and restored if it fails. A run killed *during the commit* (a few
    renames) can leave the members moved so far, each of them complete.

    Raises (from ``add_*`` and commit): OutputExistsError, FileSystemError.

    Used in: ``qbdi analyze`` (the two CSVs and two plots).
    """

    def __init__(self, *, force: bool = False, mkdir: bool = True):
        """Args: force: replace existing files; mkdir: create missing folders (removed on rollback)."""
        self.force = force
        self.mkdir = mkdir
        self._staged: list[tuple[Path, Path]] = []   # (tmp, dest)
        self._created_dirs: list[Path] = []
        self._done = False

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False

    @property
    def paths(self) -> list[Path]:
        """The destinations added so far."""
        return [d for _, d in self._staged]

    def add_with(self, path: str | Path, write: Callable[[Path], object]) -> Path:
        """Stage ``path`` written by ``write(tmp_path)`` (see :func:`write_with`); returns ``path``.

        Raises:
            OutputExistsError: the path exists and the set is not forced.
            FileSystemError: the temporary file cannot be written.
        """
        path = Path(path)
        if path in self.paths:
            raise ValueError(f"{path} is already in this output set")
        if path.is_dir():
            self.discard()
            raise FileSystemError("cannot write: is a folder, not a file", path)
        if not self.force and os.path.lexists(path):
            self.discard()
            raise OutputExistsError(EXISTS_HINT, path)
        try:
            if self.mkdir:
                _make_parents(path.parent, self._created_dirs)
            _clean_once(path.parent)
            self._staged.append((_stage(path, write), path))
        except BaseException:
            self.discard()
            raise
        return path

    def add_bytes(self, path: str | Path, data: bytes) -> Path:
        """Stage ``data`` as ``path``."""
        return self.add_with(path, _bytes_writer(bytes(data)))

    def add_text(self, path: str | Path, text: str, encoding: str = "utf-8") -> Path:
        """Stage ``text`` as ``path``."""
        return self.add_bytes(path, text.encode(encoding))

    def add_csv(self, path: str | Path, rows: Iterable, *, columns: list[str] | None = None,
                float_format: str | None = None) -> Path:
        """Stage a CSV table (:func:`qbdi_utils.tables.csv_text`) as ``path``."""
        return self.add_text(path, csv_text(rows, columns, float_format=float_format))

    def commit(self) -> list[Path]:
        """Move every staged member into place, or none; returns the destinations.

        Raises:
            OutputExistsError: a member exists and the set is not forced (nothing is left behind).
            FileSystemError: a file-system fault while moving members into place (the set is rolled back).
        """
        if self._done:
            return self.paths
        _hook("staged-all")
        placed: list[Path] = []                 # created (no force) or replaced (force)
        backups: list[tuple[Path, Path]] = []   # (backup, dest) of replaced files
        current = None
        try:
            for tmp, dest in self._staged:
                current = dest
                if self.force:
                    if os.path.isdir(dest) and not os.path.islink(dest):
                        raise FileSystemError("cannot write: is a folder, not a file", dest)
                    if os.path.lexists(dest):
                        b = hidden_name(dest)
                        try:
                            os.link(dest, b, follow_symlinks=False)
                        except OSError as exc:
                            if exc.errno not in _NO_LINKS:
                                raise
                            shutil.copy2(dest, b, follow_symlinks=False)
                        backups.append((b, dest))
                    os.replace(tmp, dest)
                else:
                    _link_exclusive(tmp, dest)
                placed.append(dest)
                _hook("committed-one")
        except BaseException as exc:
            restored = {d for _, d in backups}
            for dest in placed:
                if dest not in restored:
                    with contextlib.suppress(OSError):
                        os.unlink(dest)
            for b, dest in backups:
                with contextlib.suppress(OSError):
                    if os.path.samefile(b, dest):  # not replaced yet; rename() of a link onto itself is a no-op
                        os.unlink(b)
                    else:
                        os.replace(b, dest)
            self.discard()
            if isinstance(exc, FileExistsError):
                raise OutputExistsError(EXISTS_HINT, current) from None
            if isinstance(exc, OSError):
                raise fs_error(exc, current) from None
            raise
        for b, _ in backups:
            with contextlib.suppress(OSError):
                os.unlink(b)
        for d in dict.fromkeys(d.parent for d in placed):
            _fsync_dir(d)
        self._done = True
        return placed

    def discard(self) -> None:
        """Remove the staged temporaries and the folders this set created (if empty)."""
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._staged = []
        _remove_empty(self._created_dirs)
        self._created_dirs = []
        self._done = True


# ---------------------------------------------------------------------------------------------
# folders (models)

@contextlib.contextmanager
def replacing_dir(dest: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Stage a whole folder beside ``dest`` and swap it in at the end, so ``dest`` is always whole.

    Yields an empty hidden staging folder (``.NAME.qbdi-new-PID-N``); write every file of the new
    folder there. When the block ends without an exception the folder is fsync'ed and swapped in:
    without force by one rename (fails if ``dest`` meanwhile exists and is not empty); with force by
    ``dest`` -> ``.NAME.qbdi-old-PID-N``, staging -> ``dest``, then deleting the backup. On an
    exception (or a failed swap) the staging folder is removed and ``dest`` is unchanged. The only
    window in which ``dest`` is absent is between the two renames; a run killed there is repaired
    by :func:`clean_leftovers` (the backup is renamed back), which this function also runs first.

    Args:
        dest: the folder to create or replace.
        force: replace an existing folder.

    Yields:
        The staging folder (a Path).

    Raises:
        OutputExistsError: ``dest`` exists (not as an empty folder) and ``force`` is false.
        FileSystemError: a file-system fault, or ``dest`` is a file.
    """
    dest = Path(dest)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise FileSystemError("cannot write: is a file, not a folder", dest)
    created: list[Path] = []
    _make_parents(dest.parent, created)
    try:
        clean_leftovers(dest.parent)
        if not force and os.path.isdir(dest) and any(os.scandir(dest)):
            raise OutputExistsError(EXISTS_HINT, dest)
        stage = hidden_name(dest, "new")
        with _translated(dest):
            os.mkdir(stage)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield stage
        _hook("dir-staged")
        with _translated(dest):
            for root, _, files in os.walk(stage):
                for f in files:
                    fd = os.open(os.path.join(root, f), os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                _fsync_dir(Path(root))
        _swap_in(stage, dest, force)
    except BaseException:
        _remove(stage)
        _remove_empty(created)
        raise
    _fsync_dir(dest.parent)


def _swap_in(stage: Path, dest: Path, force: bool) -> None:
    try:
        if not force or not os.path.lexists(dest):
            os.rename(stage, dest)   # onto nothing or an empty folder; a non-empty one fails
            return
        backup = hidden_name(dest, "old")
        os.rename(dest, backup)
        _hook("dir-swapped-out")
        try:
            os.rename(stage, dest)
        except BaseException:
            os.rename(backup, dest)
            raise
        _hook("dir-swapped-in")
        _remove(backup)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise OutputExistsError(EXISTS_HINT, dest) from None
        if exc.errno == errno.ENOTDIR:
            raise FileSystemError("cannot write: is a file, not a folder", dest) from None
        raise fs_error(exc, dest) from None


# ---------------------------------------------------------------------------------------------
# process-wide policies

def ignore_sigxfsz() -> bool:
    """Make writes past the file-size limit raise OSError(EFBIG) instead of killing the process.

    Returns:
        True if the handler was set (False off the main thread or without SIGXFSZ).
    """
    sig = getattr(signal, "SIGXFSZ", None)
    if sig is None:
        return False
    try:
        signal.signal(sig, signal.SIG_IGN)
    except ValueError:  # not the main thread
        return False
    return True
