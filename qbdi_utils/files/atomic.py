"""Atomic files: a hidden temporary beside the destination, filled, fsync'ed, then moved into place
(replacing it with ``force``, else created exclusively: a hard link, or an ``O_EXCL`` claim where the
file system has none). See :mod:`qbdi_utils.files` for the discipline.

Imports: errors, tables (csv_text), files.names, files.faults, files.leftovers.
Used in: files.sets; through :mod:`qbdi_utils.files`: every module that writes what a user keeps.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Callable, Iterable

from qbdi_utils.errors import FileSystemError, OutputExistsError
from qbdi_utils.files.faults import EXISTS_HINT, NO_LINK_ERRNOS, fs_error
from qbdi_utils.files.leftovers import clean_once
from qbdi_utils.files.names import hidden_name
from qbdi_utils.tables import csv_text

__all__ = [
    "stage_hook",
    "fsync_dir",
    "make_parents",
    "stage_file",
    "bytes_writer",
    "link_exclusive",
    "remove_empty",
    "write_with",
    "write_bytes",
    "write_text",
    "write_csv",
]


def stage_hook(stage: str) -> None:
    """Called between the stages of a write; a no-op. Tests replace ``qbdi_utils.files.atomic.stage_hook``
    to pause or fail there (the writers of :mod:`qbdi_utils.files.sets` call it through this module too).

    Args:
        stage: "written", "staged", "claimed", "staged-all", "committed-one", "dir-staged",
            "dir-swapped-out" or "dir-swapped-in".
    """


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (ignored where folders cannot be fsync'ed)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_parents(folder: Path, created: list[Path] | None = None) -> None:
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


def stage_file(dest: Path, write: Callable[[Path], object]) -> Path:
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
        stage_hook("written")
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


def bytes_writer(data: bytes) -> Callable[[Path], None]:
    """A ``write(tmp)`` callback (for :func:`write_with`, :func:`stage_file`) that writes ``data`` whole."""
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
            link_exclusive(tmp, dest)
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
    fsync_dir(dest.parent)


def link_exclusive(tmp: Path, dest: Path) -> None:
    """Give ``tmp``'s content the name ``dest`` only if ``dest`` does not exist (then unlink tmp)."""
    try:
        os.link(tmp, dest)
    except OSError as exc:
        if exc.errno not in NO_LINK_ERRNOS:
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
        stage_hook("claimed")
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
            make_parents(path.parent, created)
        clean_once(path.parent)
        tmp = stage_file(path, write)
        stage_hook("staged")
        _publish(tmp, path, force)
    except BaseException:
        remove_empty(created)
        raise
    return path


def remove_empty(created: list[Path]) -> None:
    """Remove the folders a failed write created (innermost first), if still empty."""
    for d in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(d)


def write_bytes(path: str | Path, data: bytes, *, force: bool = False, mkdir: bool = True) -> Path:
    """Atomically write ``data`` to ``path`` (force, mkdir as in :func:`write_with`); returns ``path``.

    Raises:
        OutputExistsError, FileSystemError: as :func:`write_with`.
    """
    return write_with(path, bytes_writer(bytes(data)), force=force, mkdir=mkdir)


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
