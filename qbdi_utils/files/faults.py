"""File-system faults in words, the up-front checks of a destination, and the file-size-limit policy.

An :class:`OSError` becomes :class:`~qbdi_utils.errors.FileSystemError`, one line naming the path
the user knows (never a hidden temporary) and the cause in words (:func:`fs_error`).
:func:`check_writable`, :func:`check_outputs` and :func:`check_dir_output` check destinations before
any work. :func:`ignore_sigxfsz` keeps a write past ``ulimit -f`` an ``OSError(EFBIG)`` (then a
FileSystemError) instead of a SIGXFSZ that kills the process.

Imports: errors, files.names.
Used in: the other modules of :mod:`qbdi_utils.files`; through :mod:`qbdi_utils.files`: limits, corpus,
model.persist, cli (checks, the SIGXFSZ policy).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
from pathlib import Path
from typing import Iterable

from qbdi_utils.errors import FileSystemError, OutputExistsError
from qbdi_utils.files.names import LEFTOVER_NAME, hidden_name

__all__ = [
    "EXISTS_HINT",
    "NO_LINK_ERRNOS",
    "cause_in_words",
    "fs_error",
    "translated_errors",
    "check_writable",
    "check_outputs",
    "check_dir_output",
    "ignore_sigxfsz",
]

EXISTS_HINT = "exists; pass --force (force=True) to overwrite it"
"""Message of OutputExistsError raised here (the path is prepended)."""

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
NO_LINK_ERRNOS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}


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
    m = LEFTOVER_NAME.match(path.name)
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
def translated_errors(path: Path, action: str = "write"):
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
