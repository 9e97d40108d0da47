"""What killed runs leave beside their destinations, removed (or, for a folder backup, restored).

A leftover carries its writer's process id; :func:`clean_leftovers` deals with it once that process is
gone or the leftover is older than :data:`STALE_AFTER_S`; every writer calls :func:`clean_once` per
folder per process.

Imports: files.names, files.faults.
Used in: files.atomic, files.sets; through :mod:`qbdi_utils.files`: tests/test_files.py, tests/test_hostile.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from qbdi_utils.files.faults import fs_error, translated_errors
from qbdi_utils.files.names import LEFTOVER_NAME, leftover_destination

__all__ = [
    "STALE_AFTER_S",
    "clean_leftovers",
    "clean_once",
    "remove_path",
]

STALE_AFTER_S = 24 * 3600
"""A leftover older than this (seconds) is removed even if its process id is in use again."""

_cleaned: set[str] = set()


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


def remove_path(p: Path) -> None:
    """Remove a file, link or whole folder (a missing one is fine)."""
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
        m = LEFTOVER_NAME.match(name)
        if not m:
            continue
        p = folder / name
        try:
            age = now - os.lstat(p).st_mtime
        except FileNotFoundError:
            continue
        if _alive(int(m.group("pid"))) and age < STALE_AFTER_S:
            continue
        dest = leftover_destination(folder, m.group("name"), names)
        with translated_errors(p, "clean up"):
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
                remove_path(p)
        done.append(p)
    return done


def clean_once(folder: Path) -> None:
    """:func:`clean_leftovers` of ``folder``, once per folder per process."""
    key = os.path.abspath(folder)
    if key not in _cleaned:
        clean_leftovers(folder)
        _cleaned.add(key)
